package gateway

import (
	"testing"
	"time"
)

// The stream patch names every field the gateway owns, null when unset, so
// what an earlier socket left is cleared.
func TestStreamReportPatch(t *testing.T) {
	conn := time.Date(2026, 5, 1, 12, 0, 0, 0, time.UTC)
	disc := conn.Add(90 * time.Second)
	for _, tc := range []struct {
		name string
		r    streamReport
		want string
	}{
		{
			"connected",
			streamReport{State: "Connected", Pod: "gw-0", Attempt: 2, Connected: conn},
			`{"status":{"stream":{"state":"Connected","pod":"gw-0","attempt":2,"connectedTime":"2026-05-01T12:00:00Z","disconnectedTime":null,"closeCode":null,"reason":null,"monitoring":null,"announcementsPlayed":null,"hangupSent":null,"voicemailTime":null}}}`,
		},
		{
			"closed after a hangup",
			streamReport{State: "Disconnected", Pod: "gw-0", Attempt: 1, Connected: conn, Disconnected: &disc, CloseCode: 1000, Reason: "call ended", Announcements: []string{"a", "b"}, HangupSent: true},
			`{"status":{"stream":{"state":"Disconnected","pod":"gw-0","attempt":1,"connectedTime":"2026-05-01T12:00:00Z","disconnectedTime":"2026-05-01T12:01:30Z","closeCode":1000,"reason":"call ended","monitoring":null,"announcementsPlayed":["a","b"],"hangupSent":true,"voicemailTime":null}}}`,
		},
		{
			"a voicemail box reported",
			streamReport{State: "Connected", Connected: conn, VoicemailTime: &disc, HangupSent: true},
			`{"status":{"stream":{"state":"Connected","pod":null,"attempt":null,"connectedTime":"2026-05-01T12:00:00Z","disconnectedTime":null,"closeCode":null,"reason":null,"monitoring":null,"announcementsPlayed":null,"hangupSent":true,"voicemailTime":"2026-05-01T12:01:30Z"}}}`,
		},
		{
			"monitoring",
			streamReport{State: "Connected", Connected: conn, Monitoring: true, Reason: "kept"},
			`{"status":{"stream":{"state":"Connected","pod":null,"attempt":null,"connectedTime":"2026-05-01T12:00:00Z","disconnectedTime":null,"closeCode":null,"reason":"kept","monitoring":true,"announcementsPlayed":null,"hangupSent":null,"voicemailTime":null}}}`,
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
			b, err := tc.r.patch()
			if err != nil {
				t.Fatal(err)
			}
			if string(b) != tc.want {
				t.Errorf("patch\n got %s\nwant %s", b, tc.want)
			}
		})
	}
}

func TestStreamReportEqual(t *testing.T) {
	now := time.Now()
	a := streamReport{State: "Connected", Connected: now, Announcements: []string{"x"}}
	b := a.clone()
	if !a.equal(b) {
		t.Fatal("clone differs")
	}
	b.Announcements = append(b.Announcements, "y")
	if a.equal(b) {
		t.Fatal("announcements ignored")
	}
	c := a.clone()
	c.Disconnected = &now
	if a.equal(c) || c.equal(a) {
		t.Fatal("disconnected ignored")
	}
	d := a.clone()
	d.Attempt = 3
	if a.equal(d) {
		t.Fatal("attempt ignored")
	}
	v := a.clone()
	v.VoicemailTime = &now
	if a.equal(v) || v.equal(a) || !v.equal(v.clone()) {
		t.Fatal("voicemailTime ignored")
	}
}
