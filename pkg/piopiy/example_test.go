package piopiy_test

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"

	"github.com/callfleet/callfleet/pkg/piopiy"
)

func ExampleClient_MakeCall() {
	// A stand-in for Piopiy; real code leaves the base URLs at their defaults.
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		_, _ = io.WriteString(w, `{"status":"progress","request_id":"QjMMHp1YqE1TuUSFAHFGmYU6Mo6Xo2RMGYzgvQa6Ywj","code":200}`)
	}))
	defer srv.Close()

	c, err := piopiy.NewClient(piopiy.Credentials{AppID: 1234567, Secret: "app-secret"},
		piopiy.WithRESTBaseURL(srv.URL), piopiy.WithActionBaseURL(srv.URL))
	if err != nil {
		panic(err)
	}
	resp, err := c.MakeCall(context.Background(), piopiy.MakeCallRequest{
		From:        "918071387000",
		To:          "919876543210",
		ExtraParams: map[string]string{"attempt": "default/call-a/1"},
		PCMO: piopiy.PCMO{piopiy.Stream(piopiy.StreamOptions{
			WSURL:          "wss://bots.example.com/stream?call=default/call-a",
			ListenMode:     piopiy.ListenCaller,
			StreamOnAnswer: true,
		})},
	})
	switch {
	case errors.Is(err, piopiy.ErrAmbiguous):
		fmt.Println("may have been placed: settle before dialing again")
	case err != nil:
		fmt.Println("not placed:", err)
	default:
		fmt.Println("placed", resp.RequestID, resp.Status)
	}
	// Output: placed QjMMHp1YqE1TuUSFAHFGmYU6Mo6Xo2RMGYzgvQa6Ywj progress
}

func ExampleParseWebhook() {
	body := []byte(`{"status":"STREAM_DISCONNECTED","cmiuuid":"c-1","time":1700000000123,
		"ws_status":"{\"status\":\"disconnected\",\"message\":{\"code\":1006,\"reason\":\"Abnormal closure\"}}"}`)
	w, err := piopiy.ParseWebhook(body)
	if err != nil {
		panic(err)
	}
	e := w.Event
	fmt.Println(w.Kind, e.Status, e.CMIUUID, e.WSStatus.Code, e.WSStatus.Reason, e.Time.Format("2006-01-02"))
	// Output: event stream_disconnected c-1 1006 Abnormal closure 2023-11-14
}

func ExampleStreamAudioFrame() {
	frame, err := piopiy.StreamAudioFrame(piopiy.AudioRaw, 8000, []byte{0, 0, 1, 0})
	if err != nil {
		panic(err)
	}
	fmt.Println(string(frame))
	fmt.Println(string(piopiy.BreakFrame()))
	// Output:
	// {"type":"streamAudio","data":{"audioDataType":"raw","sampleRate":8000,"audioData":"AAABAA=="}}
	// {"action":"break"}
}

func ExamplePCMOFrame() {
	// Hand the caller to a human mid-call, on the live stream socket.
	frame, err := piopiy.PCMOFrame(piopiy.PCMO{piopiy.Bridge(piopiy.BridgeOptions{
		From:    "918071387000",
		Numbers: []string{"919812345678"},
	})})
	if err != nil {
		panic(err)
	}
	fmt.Println(string(frame))
	// Output: [{"action":"bridge","from":918071387000,"connect":[{"type":"pstn","number":919812345678}],"duration":5400,"timeout":40,"loop":1}]
}
