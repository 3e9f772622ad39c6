package piopiy

import (
	"bytes"
	"encoding/json"
	"flag"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"
)

var update = flag.Bool("update", false, "rewrite the golden files in testdata/golden")

// testSecret is distinctive so a leak is easy to grep for.
const testSecret = "s3cr3t-DO-NOT-LEAK-7f3a"

var testCreds = Credentials{AppID: 2222222, Secret: testSecret}

// assertGolden compares got, indented, with testdata/golden/<name>.json, or
// rewrites the file under -update. The comparison is byte-exact: request
// bodies are built from structs, so their field order is deterministic.
func assertGolden(t *testing.T, name string, got []byte) {
	t.Helper()
	var buf bytes.Buffer
	if err := json.Indent(&buf, got, "", "  "); err != nil {
		t.Fatalf("golden %s: output is not JSON: %v\n%s", name, err, got)
	}
	buf.WriteByte('\n')
	path := filepath.Join("testdata", "golden", name+".json")
	if *update {
		if err := os.WriteFile(path, buf.Bytes(), 0o644); err != nil {
			t.Fatal(err)
		}
		return
	}
	want, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("golden %s: %v (run go test -run %s ./pkg/piopiy -update)", name, err, t.Name())
	}
	if !bytes.Equal(want, buf.Bytes()) {
		t.Errorf("golden %s differs\n--- want\n%s--- got\n%s", name, want, buf.Bytes())
	}
}

// recorded is one request a fake Piopiy received.
type recorded struct {
	Method string
	Path   string
	Header http.Header
	Body   []byte
}

// fakePiopiy is an httptest server that records requests and answers with
// the handler of the test; the default handler answers a plausible success.
type fakePiopiy struct {
	*httptest.Server
	mu       sync.Mutex
	requests []recorded
	handle   func(w http.ResponseWriter, r *http.Request, n int)
}

func newFake(t *testing.T, handle func(w http.ResponseWriter, r *http.Request, n int)) *fakePiopiy {
	t.Helper()
	f := &fakePiopiy{handle: handle}
	f.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		r.Body = io.NopCloser(bytes.NewReader(body))
		f.mu.Lock()
		f.requests = append(f.requests, recorded{Method: r.Method, Path: r.URL.Path, Header: r.Header.Clone(), Body: body})
		n := len(f.requests)
		f.mu.Unlock()
		if f.handle == nil {
			writeJSON(w, 200, successFor(r.URL.Path))
			return
		}
		f.handle(w, r, n)
	}))
	t.Cleanup(f.Close)
	return f
}

func (f *fakePiopiy) count() int {
	f.mu.Lock()
	defer f.mu.Unlock()
	return len(f.requests)
}

func (f *fakePiopiy) last() recorded {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.requests[len(f.requests)-1]
}

// client returns a Client pointed at the fake with fast retries.
func (f *fakePiopiy) client(t *testing.T, opts ...Option) *Client {
	t.Helper()
	base := []Option{WithRESTBaseURL(f.URL), WithActionBaseURL(f.URL + "/"), WithLookupRetries(3, time.Millisecond)}
	c, err := NewClient(testCreds, append(base, opts...)...)
	if err != nil {
		t.Fatal(err)
	}
	return c
}

func writeJSON(w http.ResponseWriter, status int, body string) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	_, _ = io.WriteString(w, body)
}

const (
	testRequestID   = "8cfa1ecc7bd64dc4b1d0ee2a1b1d8a6f3e2d1c0b9a8"
	makeCallSuccess = `{"data":{"status":"progress","request_id":"` + testRequestID + `"},"status":"progress","request_id":"` + testRequestID + `","code":200}`
	cdrObject       = `{"duration":9,"from":918071387000,"to":"919876543210","time":1700000000123,"leg":"a","direction":"outbound","status":"answered","cmiuuid":"c-1","request_id":"` + testRequestID + `","start_time":1700000000,"answer_time":1700000005,"end_time":"1700000014","call_rate":"0.50","balance":12.25}`
)

func successFor(path string) string {
	switch {
	case strings.Contains(path, "make_call"):
		return makeCallSuccess
	case strings.HasSuffix(path, "cmiuuid_cdr"):
		return `{"cdr":` + cdrObject + `,"code":200}`
	case strings.HasSuffix(path, "requestid_cdr"):
		return `{"count":1,"cdr":[` + cdrObject + `],"code":200}`
	}
	return `{"code":200,"status":"ok"}`
}

// assertNoSecret fails when the secret shows up in any rendering of v.
func assertNoSecret(t *testing.T, what string, v any) {
	t.Helper()
	assertNoSecretIn(t, what, v, true)
}

// assertNoSecretIn is assertNoSecret, skipping JSON for request bodies (whose
// JSON is the wire form and must hold the secret).
func assertNoSecretIn(t *testing.T, what string, v any, checkJSON bool) {
	t.Helper()
	var renders []string
	for _, verb := range []string{"%v", "%+v", "%#v", "%s", "%q", "%x", "%d"} {
		renders = append(renders, sprintf(verb, v))
	}
	if b, err := json.Marshal(v); err == nil && checkJSON {
		renders = append(renders, string(b))
	}
	if e, ok := v.(error); ok {
		renders = append(renders, e.Error())
	}
	for _, r := range renders {
		if strings.Contains(r, testSecret) {
			t.Errorf("%s leaks the secret: %s", what, r)
		}
	}
}
