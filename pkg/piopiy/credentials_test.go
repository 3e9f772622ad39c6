package piopiy

import (
	"bytes"
	"encoding/json"
	"fmt"
	"log/slog"
	"strings"
	"testing"
)

func sprintf(verb string, v any) string { return fmt.Sprintf(verb, v) }

func TestCredentialsNeverPrintTheSecret(t *testing.T) {
	holder := struct {
		Name  string
		Creds Credentials
		Ptr   *Credentials
	}{"acct", testCreds, &testCreds}
	for _, v := range []any{testCreds, &testCreds, holder, &holder, []Credentials{testCreds}} {
		assertNoSecret(t, fmt.Sprintf("%T", v), v)
	}
	if got := testCreds.String(); !strings.Contains(got, "2222222") || !strings.Contains(got, redacted) {
		t.Errorf("String() = %q, want the app id and %s", got, redacted)
	}
	b, err := json.Marshal(testCreds)
	if err != nil || string(b) != `{"appid":2222222,"secret":"REDACTED"}` {
		t.Errorf("MarshalJSON = %s, %v", b, err)
	}
	if got := (Credentials{AppID: 1}).String(); !strings.Contains(got, `Secret:""`) {
		t.Errorf("empty secret renders as %q, want it shown empty", got)
	}
	if got := fmt.Sprintf("%q", testCreds); !strings.HasPrefix(got, `"piopiy.Credentials{`) {
		t.Errorf("%%q = %s", got)
	}
}

func TestCredentialsLogValueRedacts(t *testing.T) {
	var buf bytes.Buffer
	for _, h := range []slog.Handler{slog.NewJSONHandler(&buf, nil), slog.NewTextHandler(&buf, nil)} {
		slog.New(h).Info("Placing call", "creds", testCreds)
	}
	if strings.Contains(buf.String(), testSecret) || !strings.Contains(buf.String(), "2222222") {
		t.Errorf("slog output: %s", buf.String())
	}
}

func TestClientNeverPrintsTheSecret(t *testing.T) {
	c, err := NewClient(testCreds)
	if err != nil {
		t.Fatal(err)
	}
	assertNoSecret(t, "*Client", c)
	assertNoSecret(t, "Client", *c) // a copy has no String method: the pointer field must hide the secret
	assertNoSecretIn(t, "authFields", c.auth(), false)
	assertNoSecretIn(t, "make call body", makeCallBody{authFields: c.auth()}, false)
	assertNoSecretIn(t, "make call body pointer", &makeCallBody{authFields: c.auth()}, false)
}

func TestCredentialsValidate(t *testing.T) {
	for _, tc := range []struct {
		creds Credentials
		ok    bool
	}{
		{Credentials{AppID: 1, Secret: "x"}, true},
		{Credentials{AppID: 0, Secret: "x"}, false},
		{Credentials{AppID: -4, Secret: "x"}, false},
		{Credentials{AppID: 1}, false},
	} {
		err := tc.creds.Validate()
		if (err == nil) != tc.ok {
			t.Errorf("Validate(%v) = %v, want ok=%v", tc.creds, err, tc.ok)
		}
		if _, err := NewClient(tc.creds); (err == nil) != tc.ok {
			t.Errorf("NewClient(%v) = %v, want ok=%v", tc.creds, err, tc.ok)
		}
	}
}
