package main

import (
	"bytes"
	"os"
	"path/filepath"
	"testing"
)

// TestMonitorKeys: the monitor root key is optional (unset: listen-in off,
// no error); from a file it is trimmed and "previous" beside it joins it
// for a rotation; a short key is refused rather than derived from.
func TestMonitorKeys(t *testing.T) {
	t.Setenv("CALLFLEET_MONITOR_TOKEN_KEY", "")
	if ks, err := monitorKeys(""); err != nil || ks != nil {
		t.Errorf("unset: %d keys, %v; want none and no error", len(ks), err)
	}

	dir := t.TempDir()
	cur := bytes.Repeat([]byte("c"), 48)
	prev := bytes.Repeat([]byte("p"), 48)
	if err := os.WriteFile(filepath.Join(dir, "key"), append(cur, '\n'), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "previous"), prev, 0o600); err != nil {
		t.Fatal(err)
	}
	ks, err := monitorKeys(filepath.Join(dir, "key"))
	if err != nil || len(ks) != 2 || !bytes.Equal(ks[0], cur) || !bytes.Equal(ks[1], prev) {
		t.Errorf("file with previous: %d keys, %v; want the current then the previous", len(ks), err)
	}

	t.Setenv("CALLFLEET_MONITOR_TOKEN_KEY", string(cur))
	if ks, err := monitorKeys(""); err != nil || len(ks) != 1 || !bytes.Equal(ks[0], cur) {
		t.Errorf("env: %d keys, %v", len(ks), err)
	}
	t.Setenv("CALLFLEET_MONITOR_TOKEN_KEY", "short")
	if _, err := monitorKeys(""); err == nil {
		t.Error("a short key from the environment was accepted")
	}
	if _, err := monitorKeys(filepath.Join(dir, "missing")); err == nil {
		t.Error("a missing key file was accepted")
	}
}
