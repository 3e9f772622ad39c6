package main

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"time"
)

// proc is a child process whose output goes to its log file.
type proc struct {
	name    string
	logPath string
	cmd     *exec.Cmd
	done    chan struct{}
	err     error

	mu       sync.Mutex
	stopping bool
}

// startProc starts bin with args, appending env to the demo's environment;
// stdout and stderr go to <logDir>/<name>.log (truncated first).
func startProc(logDir, name, bin string, env []string, args ...string) (*proc, error) {
	logPath := filepath.Join(logDir, name+".log")
	f, err := os.Create(logPath)
	if err != nil {
		return nil, err
	}
	if _, err := fmt.Fprintf(f, "# %s %s\n", bin, strings.Join(args, " ")); err != nil {
		_ = f.Close() // the write's error is the one to report
		return nil, fmt.Errorf("writing %s: %w", logPath, err)
	}
	cmd := exec.Command(bin, args...)
	cmd.Stdout, cmd.Stderr = f, f
	cmd.Env = append(os.Environ(), env...)
	cmd.SysProcAttr = sysProcAttr()
	if err := cmd.Start(); err != nil {
		_ = f.Close() // the start's error is the one to report
		return nil, fmt.Errorf("starting %s: %w", name, err)
	}
	p := &proc{name: name, logPath: logPath, cmd: cmd, done: make(chan struct{})}
	go func() {
		p.err = cmd.Wait()
		_ = f.Close() // the process wrote its log through its own descriptor; this one was only handed over
		close(p.done)
	}()
	return p, nil
}

// exitedUnexpectedly reports whether the process ended without being asked.
func (p *proc) exitedUnexpectedly() bool {
	select {
	case <-p.done:
		p.mu.Lock()
		defer p.mu.Unlock()
		return !p.stopping
	default:
		return false
	}
}

// stop sends SIGTERM (which every callfleet binary handles as a graceful
// shutdown) and kills the process after grace.
func (p *proc) stop(grace time.Duration) error {
	p.mu.Lock()
	p.stopping = true
	p.mu.Unlock()
	select {
	case <-p.done:
		return p.exitErr()
	default:
	}
	_ = p.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-p.done:
		return p.exitErr()
	case <-time.After(grace):
		_ = p.cmd.Process.Kill()
		<-p.done
		return fmt.Errorf("did not stop within %s: killed", grace)
	}
}

// kill ends the process at once.
func (p *proc) kill() {
	p.mu.Lock()
	p.stopping = true
	p.mu.Unlock()
	_ = p.cmd.Process.Kill()
}

func (p *proc) exitErr() error {
	var exit *exec.ExitError
	if errors.As(p.err, &exit) {
		if ws, ok := exit.Sys().(syscall.WaitStatus); ok && ws.Signaled() && ws.Signal() == syscall.SIGTERM {
			return nil
		}
	}
	return p.err
}

// tailFile returns the last n lines of a file.
func tailFile(path string, n int) []string {
	f, err := os.Open(path)
	if err != nil {
		return []string{fmt.Sprintf("(%v)", err)}
	}
	defer func() { _ = f.Close() }() // read only
	var lines []string
	sc := bufio.NewScanner(f)
	sc.Buffer(make([]byte, 64*1024), 1024*1024)
	for sc.Scan() {
		lines = append(lines, sc.Text())
		if len(lines) > 4*n {
			lines = append(lines[:0], lines[len(lines)-n:]...)
		}
	}
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return lines
}

// portUser is one address the demo listens on and the flag that sets it.
type portUser struct {
	what, flag, addr string
}

// checkPorts fails, naming every conflict, when an address is taken.
func checkPorts(users []portUser) error {
	var taken []string
	seen := map[string]string{}
	for _, u := range users {
		if u.addr == "" || u.addr == "0" {
			continue
		}
		_, port, err := net.SplitHostPort(u.addr)
		if err != nil {
			return fmt.Errorf("%s: %q is not host:port: %w", u.flag, u.addr, err)
		}
		if port == "0" {
			continue
		}
		if other, ok := seen[u.addr]; ok {
			taken = append(taken, fmt.Sprintf("  %s (%s) and %s both use %s", u.what, u.flag, other, u.addr))
			continue
		}
		seen[u.addr] = u.what
		l, err := net.Listen("tcp", u.addr)
		if err != nil {
			taken = append(taken, fmt.Sprintf("  %s: %s is in use (%v); stop what holds it or pass %s=<host:port>", u.what, u.addr, errors.Unwrap(err), u.flag))
			continue
		}
		_ = l.Close() // only listened to see the port is free
	}
	if len(taken) > 0 {
		return fmt.Errorf("ports taken (is another `make demo` running?):\n%s", strings.Join(taken, "\n"))
	}
	return nil
}

// waitReady polls check until it returns nil, p exits, or timeout passes.
func waitReady(ctx context.Context, p *proc, timeout time.Duration, what string, check func() error) error {
	deadline := time.Now().Add(timeout)
	var last error
	for {
		if last = check(); last == nil {
			return nil
		}
		if p != nil {
			select {
			case <-p.done:
				return fmt.Errorf("%s exited (%v) before it was ready; last lines of %s:\n%s", p.name, p.err, p.logPath, indent(tailFile(p.logPath, 15)))
			default:
			}
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("%s not ready after %s: %v", what, timeout, last)
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(150 * time.Millisecond):
		}
	}
}

func httpOK(url string) func() error {
	c := &http.Client{Timeout: 2 * time.Second}
	return func() error {
		resp, err := c.Get(url)
		if err != nil {
			return err
		}
		_ = resp.Body.Close() // only the status is read
		if resp.StatusCode/100 != 2 {
			return fmt.Errorf("GET %s: %s", url, resp.Status)
		}
		return nil
	}
}

func tcpOpen(addr string) func() error {
	return func() error {
		c, err := net.DialTimeout("tcp", addr, time.Second)
		if err != nil {
			return err
		}
		return c.Close()
	}
}

func indent(lines []string) string {
	var b strings.Builder
	for _, l := range lines {
		b.WriteString("    ")
		b.WriteString(l)
		b.WriteByte('\n')
	}
	return b.String()
}
