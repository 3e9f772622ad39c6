package gateway

import (
	"encoding/json"
	"fmt"
	"testing"
)

func TestMonitorHubDropsSlowListener(t *testing.T) {
	drops := 0
	h := newMonitorHub(4, func() { drops++ })
	slow := h.join([]byte(`{"type":"hello"}`))
	fast := h.join([]byte(`{"type":"hello"}`))
	frame := make([]byte, 320)
	for i := 0; i < 10*monitorQueue; i++ {
		h.audio(MonitorSourceCall, frame) // never blocks: nobody reads slow
		for len(fast.q) > 0 {
			<-fast.q
		}
	}
	select {
	case <-slow.gone:
	default:
		t.Fatal("the listener that never read is still attached")
	}
	if slow.why != whySlow || drops != 1 {
		t.Errorf("why %q, drops %d; want %q, 1", slow.why, drops, whySlow)
	}
	select {
	case <-fast.gone:
		t.Fatal("the listener that kept up was dropped")
	default:
	}
	if n := h.listeners(); n != 1 {
		t.Errorf("listeners = %d, want 1", n)
	}
	h.close("call ended")
	<-fast.gone
	if n := h.listeners(); n != 0 || fast.why != "call ended" {
		t.Errorf("after close: listeners %d, why %q", n, fast.why)
	}
	if h.join(nil) != nil {
		t.Error("joined a closed hub")
	}
}

func TestMonitorHubLateJoinerGetsLastLines(t *testing.T) {
	h := newMonitorHub(3, nil)
	for i := 1; i <= 5; i++ {
		h.line(MonitorMessage{Type: MsgAssist, Text: fmt.Sprint("line ", i)})
	}
	l := h.join([]byte(`{"type":"hello"}`))
	var got []string
	for len(l.q) > 0 {
		it := <-l.q
		var m MonitorMessage
		if err := json.Unmarshal(it.b, &m); err != nil || !it.text {
			t.Fatalf("item %q text=%v: %v", it.b, it.text, err)
		}
		got = append(got, m.Type+":"+m.Text)
	}
	want := []string{"hello:", "assist:line 3", "assist:line 4", "assist:line 5"}
	if fmt.Sprint(got) != fmt.Sprint(want) {
		t.Errorf("late joiner got %q, want %q", got, want)
	}
}

func TestMonitorHubLineBounded(t *testing.T) {
	h := newMonitorHub(1, nil)
	big := make([]byte, 3*maxLineBytes)
	for i := range big {
		big[i] = 'a'
	}
	h.line(MonitorMessage{Type: MsgAssist, Text: string(big)})
	var m MonitorMessage
	if err := json.Unmarshal(h.lines[0], &m); err != nil || len(m.Text) != maxLineBytes {
		t.Fatalf("kept %d bytes of text (err %v), want %d", len(m.Text), err, maxLineBytes)
	}
}

func TestMonitorHubCostsNothingWithoutListeners(t *testing.T) {
	h := newMonitorHub(1, nil)
	frame := make([]byte, 320)
	if a := testing.AllocsPerRun(1000, func() { h.audio(MonitorSourceBot, frame) }); a != 0 {
		t.Errorf("audio with no listener allocates %v times a frame", a)
	}
}
