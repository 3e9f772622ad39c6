package main

import (
	"bytes"
	"errors"
	"flag"
	"strings"
	"testing"
)

func TestParseApps(t *testing.T) {
	for _, tc := range []struct {
		in   string
		n    int
		fail bool
	}{
		{"1111111:secret,2222222:s2", 2, false},
		{" 1111111:se:cret ", 1, false}, // a secret may contain ':'
		{"", 0, true},
		{"abc:x", 0, true},
		{"1111111", 0, true},
		{"1111111:", 0, true},
	} {
		apps, err := parseApps(tc.in)
		if (err != nil) != tc.fail || len(apps) != tc.n {
			t.Errorf("%q: %v %v", tc.in, apps, err)
		}
	}
}

func TestHelpDocumentsFlagsAndScenario(t *testing.T) {
	var out bytes.Buffer
	if err := run([]string{"--help"}, &out); !errors.Is(err, flag.ErrHelp) {
		t.Fatalf("--help: %v", err)
	}
	for _, want := range []string{"--listen", "-apps", "-webhook-url", "-scenario", "-redelivery-scale", "-rest-ambiguous-prob", "hangupAfter", "noAnswer", "/sim/calls"} {
		if !strings.Contains(out.String(), strings.TrimLeft(want, "-")) {
			t.Errorf("help lacks %s", want)
		}
	}
}

func TestBadFlags(t *testing.T) {
	var out bytes.Buffer
	for _, args := range [][]string{{"--apps", "x"}, {"--scenario", "/nonexistent.yaml"}, {"--log-level", "loud"}, {"--rest-ambiguous-mode", "maybe", "--rest-ambiguous-prob", "1"}} {
		if err := run(args, &out); err == nil {
			t.Errorf("%v accepted", args)
		}
	}
}
