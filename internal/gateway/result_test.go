package gateway

import (
	"strings"
	"testing"
	"unicode/utf8"
)

func TestBoundResult(t *testing.T) {
	many := map[string]string{}
	for i := 0; i < 20; i++ {
		many[string(rune('a'+i))] = "v"
	}
	for _, tc := range []struct {
		name    string
		in      BotMessage
		wantCut []string
		check   func(t *testing.T, disp, summary string, data map[string]string)
	}{
		{"within bounds: kept as sent", BotMessage{Disposition: "Interested", Summary: "wants a callback", Data: map[string]string{"slot": "tue-10"}}, nil,
			func(t *testing.T, d, s string, data map[string]string) {
				if d != "Interested" || s != "wants a callback" || data["slot"] != "tue-10" {
					t.Errorf("got %q %q %v", d, s, data)
				}
			}},
		{"disposition with spaces and a leading dash", BotMessage{Disposition: "-call back later"}, []string{"disposition"},
			func(t *testing.T, d, _ string, _ map[string]string) {
				if d != "call_back_later" {
					t.Errorf("disposition %q", d)
				}
			}},
		{"long disposition", BotMessage{Disposition: strings.Repeat("x", 100)}, []string{"disposition"},
			func(t *testing.T, d, _ string, _ map[string]string) {
				if len(d) != maxDisposition {
					t.Errorf("disposition of %d bytes", len(d))
				}
			}},
		{"summary over 1 KiB cut on a rune boundary", BotMessage{Summary: strings.Repeat("é", 600)}, []string{"summary"},
			func(t *testing.T, _, s string, _ map[string]string) {
				if len(s) > maxSummary || !utf8.ValidString(s) || len(s) != 1024 {
					t.Errorf("summary of %d bytes, valid %v", len(s), utf8.ValidString(s))
				}
			}},
		{"more than 16 pairs", BotMessage{Data: many}, []string{"data"},
			func(t *testing.T, _, _ string, data map[string]string) {
				if len(data) != maxDataPairs || data["a"] != "v" || data["t"] != "" {
					t.Errorf("data %v", data)
				}
			}},
		{"long value", BotMessage{Data: map[string]string{"k": strings.Repeat("v", 1000)}}, []string{"data"},
			func(t *testing.T, _, _ string, data map[string]string) {
				if len(data["k"]) != maxDataValue {
					t.Errorf("value of %d bytes", len(data["k"]))
				}
			}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r, cut := boundResult(tc.in)
			if strings.Join(cut, ",") != strings.Join(tc.wantCut, ",") {
				t.Errorf("cut %v, want %v", cut, tc.wantCut)
			}
			tc.check(t, r.Disposition, r.Summary, r.Data)
		})
	}
}
