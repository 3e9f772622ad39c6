package notify_test

import (
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/callfleet/callfleet/internal/notify"
	"github.com/callfleet/callfleet/internal/testenv"
)

// docBlock returns the fenced block of lang in docs/results.md holding marker.
func docBlock(t *testing.T, lang, marker string) string {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(testenv.RepoRoot(), "docs", "results.md"))
	if err != nil {
		t.Fatal(err)
	}
	for _, part := range strings.Split(string(b), "```"+lang+"\n")[1:] {
		block, _, _ := strings.Cut(part, "```")
		if strings.Contains(block, marker) {
			return block
		}
	}
	t.Fatalf("docs/results.md has no %s block with %q", lang, marker)
	return ""
}

// TestDocsVerifyExamples runs the Go and Python verifiers of docs/results.md
// on signatures the notifier makes: a good one passes; another key, a
// changed body and an old timestamp fail.
func TestDocsVerifyExamples(t *testing.T) {
	key := []byte("change-me-to-a-long-random-string")
	body := []byte(`{"specversion":"1.0","id":"u1.completed","type":"dev.callfleet.call.completed"}`)
	now := time.Now()
	cases := []struct {
		name, key, body, header string
		want                    string
	}{
		{"good", string(key), string(body), notify.Sign(key, body, now), "ok"},
		{"other key", "nope", string(body), notify.Sign(key, body, now), "bad"},
		{"changed body", string(key), string(body) + " ", notify.Sign(key, body, now), "bad"},
		{"old", string(key), string(body), notify.Sign(key, body, now.Add(-time.Hour)), "bad"},
	}
	dir := t.TempDir()

	goDir := filepath.Join(dir, "gocheck")
	must(t, os.MkdirAll(goDir, 0o755))
	must(t, os.WriteFile(filepath.Join(goDir, "verify.go"), []byte(docBlock(t, "go", "func verify(")), 0o644))
	must(t, os.WriteFile(filepath.Join(goDir, "driver.go"), []byte(`package main

import (
	"fmt"
	"io"
	"os"
	"time"
)

func main() {
	body, _ := io.ReadAll(os.Stdin)
	if verify([]byte(os.Args[1]), body, os.Args[2], time.Now()) {
		fmt.Print("ok")
	} else {
		fmt.Print("bad")
	}
}
`), 0o644))
	must(t, os.WriteFile(filepath.Join(goDir, "go.mod"), []byte("module gocheck\n\ngo 1.22\n"), 0o644))
	goBin := filepath.Join(dir, "gocheck-bin")
	build := exec.Command("go", "build", "-o", goBin, ".")
	build.Dir = goDir
	build.Env = append(os.Environ(), "GOFLAGS=", "GOWORK=off")
	if out, err := build.CombinedOutput(); err != nil {
		t.Fatalf("the Go example does not build: %v\n%s", err, out)
	}

	py := filepath.Join(dir, "check.py")
	must(t, os.WriteFile(py, []byte(docBlock(t, "python", "def verify(")+`
import sys
body = sys.stdin.buffer.read()
print("ok" if verify(sys.argv[1].encode(), body, sys.argv[2]) else "bad", end="")
`), 0o644))

	for _, tc := range cases {
		for lang, argv := range map[string][]string{"go": {goBin}, "python": {"python3", py}} {
			cmd := exec.Command(argv[0], append(argv[1:], tc.key, tc.header)...)
			cmd.Stdin = strings.NewReader(tc.body)
			out, err := cmd.Output()
			if err != nil {
				t.Fatalf("%s example, %s: %v", lang, tc.name, err)
			}
			if string(out) != tc.want {
				t.Errorf("%s example, %s: %q, want %q", lang, tc.name, out, tc.want)
			}
		}
	}
}
