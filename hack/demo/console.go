package main

import (
	"context"
	"fmt"
	"io"
	"os/exec"
	"path/filepath"
	"strings"
	"time"
)

// demoConsole is the running supervisor console and how to sign in to it.
type demoConsole struct {
	url, token, user string
}

// startConsole runs the console (docs/console.md) with the demo's admin
// kubeconfig as its own identity, and makes a ServiceAccount "supervisor"
// with the RBAC of examples/console/supervisor-rbac.yaml whose token signs
// in: what the console does for the person signed in is done with that
// token, so the supervisor's RBAC, not the admin's, decides.
func startConsole(ctx context.Context, c config, st *stack, logDir, bin, kubeconfig, kubectl, monitorKey string) (*demoConsole, error) {
	rbac := filepath.Join(c.root, "examples", "console", "supervisor-rbac.yaml")
	if b, err := exec.CommandContext(ctx, kubectl, "--kubeconfig", kubeconfig, "apply", "-n", c.namespace, "-f", rbac).CombinedOutput(); err != nil {
		return nil, fmt.Errorf("applying %s: %v\n%s", rbac, err, b)
	}
	tok, err := exec.CommandContext(ctx, kubectl, "--kubeconfig", kubeconfig, "create", "token", "supervisor", "-n", c.namespace, "--duration=8h").Output()
	if err != nil {
		return nil, fmt.Errorf("kubectl create token supervisor: %w", err)
	}
	con, err := startProc(logDir, "console", bin,
		[]string{"CALLFLEET_CONSOLE_SESSION_KEY=" + randomHex(32), "CALLFLEET_MONITOR_TOKEN_KEY=" + monitorKey},
		"--kubeconfig="+kubeconfig, "--listen="+c.consoleAddr, "--namespaces="+c.namespace, "--zap-encoder=console")
	if err != nil {
		return nil, err
	}
	st.addProc(con)
	if err := waitReady(ctx, con, 2*time.Minute, "console", httpOK("http://"+c.consoleAddr+"/healthz")); err != nil {
		return nil, err
	}
	return &demoConsole{url: "http://" + c.consoleAddr + "/?ns=" + c.namespace, token: strings.TrimSpace(string(tok)), user: "supervisor"}, nil
}

func (d *demoConsole) print(out io.Writer) {
	sayf(out, "\nSupervisor console: %s\n  sign in with this token (ServiceAccount %s, valid 8h):\n  %s\n", d.url, d.user, d.token)
}
