// Package httpservertest attacks a server the way a slowloris client does,
// for tests of the servers httpserver bounds.
package httpservertest

import (
	"bufio"
	"errors"
	"net"
	"net/http"
	"os"
	"sync"
	"testing"
	"time"
)

// IdleConnections opens n connections to addr and leaves them idle: every
// other one first sends one keep-alive request (and reads its answer), the
// rest send nothing at all. It returns how many the server closed before
// wait passed (wait only bounds the test; it is not what is measured).
func IdleConnections(t testing.TB, addr string, n int, wait time.Duration) int {
	t.Helper()
	deadline := time.Now().Add(wait)
	var (
		wg     sync.WaitGroup
		mu     sync.Mutex
		closed int
		errs   []error
	)
	for i := range n {
		c, err := net.Dial("tcp", addr)
		if err != nil {
			t.Fatalf("connection %d: %v", i, err)
		}
		_ = c.SetDeadline(deadline)
		// The request goes out at once, before the server's header timeout
		// can start, however loaded the machine.
		req, _ := http.NewRequest(http.MethodGet, "http://"+addr+"/idle-probe", nil)
		if i%2 == 1 {
			if err := req.Write(c); err != nil {
				t.Fatalf("connection %d: writing its request: %v", i, err)
			}
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			defer func() { _ = c.Close() }()
			br := bufio.NewReader(c)
			if i%2 == 1 {
				resp, err := http.ReadResponse(br, req)
				if err != nil {
					mu.Lock()
					errs = append(errs, err)
					mu.Unlock()
					return
				}
				_ = resp.Body.Close()
			}
			// Idle now: the next read returns when the server closes.
			_, err := br.ReadByte()
			mu.Lock()
			defer mu.Unlock()
			if err != nil && !errors.Is(err, os.ErrDeadlineExceeded) {
				closed++
			}
		}()
	}
	wg.Wait()
	if len(errs) > 0 {
		t.Errorf("%d keep-alive requests failed, first: %v", len(errs), errs[0])
	}
	return closed
}
