package console

import (
	"bytes"
	"encoding/json"
	"errors"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

var testKey = bytes.Repeat([]byte("s"), 32)

func TestInterventions(t *testing.T) {
	now := metav1.NewTime(time.Unix(1_800_000_000, 0).UTC())
	for _, tc := range []struct {
		action string
		form   map[string]string
		status bool
		want   string // the merge patch
		err    error
	}{
		{action: "pause", want: `{"spec":{"stream":{"state":"Paused"}}}`},
		{action: "resume", want: `{"spec":{"stream":{"state":"Active"}}}`},
		{action: "hangup", want: `{"spec":{"hangup":true}}`},
		{action: "handoff", form: map[string]string{"pool": "sales-agents"}, want: `{"spec":{"handoff":{"agentPoolRef":{"name":"sales-agents"},"requested":true}}}`},
		{action: "handoff", form: map[string]string{"pool": "Not A Pool"}, err: errBadRequest},
		{action: "handoff", err: errBadRequest},
		{action: "disposition", form: map[string]string{"disposition": "Interested", "summary": "wants a call back"}, status: true,
			want: `{"status":{"result":{"disposition":"Interested","reportedAt":"2027-01-15T08:00:00Z","reportedBy":"Supervisor","summary":"wants a call back"}}}`},
		{action: "disposition", form: map[string]string{"disposition": "no spaces allowed"}, err: errBadRequest},
		{action: "disposition", form: map[string]string{"disposition": "Ok", "summary": strings.Repeat("x", 1025)}, err: errBadRequest},
		{action: "delete", err: errNotFound},
	} {
		t.Run(tc.action, func(t *testing.T) {
			iv, err := interventionFor(tc.action, func(k string) string { return tc.form[k] }, now)
			if tc.err != nil {
				if !errors.Is(err, tc.err) {
					t.Fatalf("err = %v, want %v", err, tc.err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			got, _ := json.Marshal(iv.patch)
			if string(got) != tc.want || iv.status != tc.status {
				t.Errorf("patch %s (status %v), want %s (status %v)", got, iv.status, tc.want, tc.status)
			}
		})
	}
}

func TestSessionCookie(t *testing.T) {
	now := time.Unix(1_800_000_000, 0)
	s, err := newSessions(testKey, time.Hour, true)
	if err != nil {
		t.Fatal(err)
	}
	ck, err := s.seal("the-user-token", now)
	if err != nil {
		t.Fatal(err)
	}
	if !ck.HttpOnly || !ck.Secure || ck.SameSite != http.SameSiteStrictMode || strings.Contains(ck.Value, "the-user-token") {
		t.Fatalf("cookie %+v", ck)
	}
	req := func(c *http.Cookie) *http.Request {
		r := httptest.NewRequest("GET", "/", nil)
		if c != nil {
			r.AddCookie(c)
		}
		return r
	}
	got, err := s.open(req(ck), now.Add(59*time.Minute))
	if err != nil || got.Token != "the-user-token" || got.Session == "" {
		t.Fatalf("open = %+v, %v", got, err)
	}
	other, _ := newSessions(bytes.Repeat([]byte("o"), 32), time.Hour, true)
	tampered := *ck
	tampered.Value = ck.Value[:len(ck.Value)-2] + "AA"
	for name, tc := range map[string]struct {
		s *sessions
		r *http.Request
		t time.Time
	}{
		"no cookie": {s, req(nil), now},
		"expired":   {s, req(ck), now.Add(time.Hour)},
		"other key": {other, req(ck), now},
		"tampered":  {s, req(&tampered), now},
	} {
		if _, err := tc.s.open(tc.r, tc.t); !errors.Is(err, ErrUnauthenticated) {
			t.Errorf("%s: open = %v, want ErrUnauthenticated", name, err)
		}
	}
	if _, err := newSessions(testKey[:16], time.Hour, false); err == nil {
		t.Error("a 16-byte session key was accepted")
	}
}

func TestCSRF(t *testing.T) {
	s, _ := newSessions(testKey, time.Hour, false)
	u := User{Name: "sup", session: "session-1"}
	good := s.csrfToken(u.session)
	post := func(form url.Values, hdr map[string]string) *http.Request {
		r := httptest.NewRequest("POST", "http://console.example/ns/a/calls/b/hangup", strings.NewReader(form.Encode()))
		r.Header.Set("Content-Type", "application/x-www-form-urlencoded")
		for k, v := range hdr {
			r.Header.Set(k, v)
		}
		return r
	}
	for _, tc := range []struct {
		name string
		r    *http.Request
		u    User
		ok   bool
	}{
		{"form token", post(url.Values{"csrf": {good}}, nil), u, true},
		{"header token, same origin", post(nil, map[string]string{"X-CSRF-Token": good, "Origin": "http://console.example", "Sec-Fetch-Site": "same-origin"}), u, true},
		{"no token", post(nil, nil), u, false},
		{"another session's token", post(url.Values{"csrf": {s.csrfToken("session-2")}}, nil), u, false},
		{"cross-site", post(url.Values{"csrf": {good}}, map[string]string{"Sec-Fetch-Site": "cross-site"}), u, false},
		{"other origin", post(url.Values{"csrf": {good}}, map[string]string{"Origin": "https://evil.example"}), u, false},
		{"bearer header needs none", post(nil, nil), User{Name: "api"}, true},
	} {
		err := s.checkCSRF(tc.r, tc.u)
		if (err == nil) != tc.ok || (err != nil && !errors.Is(err, ErrForbidden)) {
			t.Errorf("%s: checkCSRF = %v, want ok=%v", tc.name, err, tc.ok)
		}
	}
}

func TestBrokerDropsSlowSubscriber(t *testing.T) {
	b := newBroker()
	slow := b.subscribe("sales")
	other := b.subscribe("support")
	for i := 0; i < subscriberQueue+1; i++ {
		b.publish("sales", newEvent("call", CallRow{Name: "c"}))
	}
	select {
	case <-slow.gone:
	default:
		t.Fatal("a subscriber that never read is still subscribed")
	}
	if b.subscribers("sales") != 0 || b.subscribers("support") != 1 || len(other.ch) != 0 {
		t.Errorf("subscribers sales %d support %d, support queued %d", b.subscribers("sales"), b.subscribers("support"), len(other.ch))
	}
}
