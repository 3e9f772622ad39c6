package e2e

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os/exec"
	"path/filepath"
	"slices"
	"syscall"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"

	voicev1alpha1 "github.com/callfleet/callfleet/api/v1alpha1"
	"github.com/callfleet/callfleet/internal/failpoint"
	"github.com/callfleet/callfleet/internal/sim"
	"github.com/callfleet/callfleet/internal/testenv"
)

// TestManagerKilledMidDial kills the manager with SIGKILL at the two points
// where at-most-once dialing could break, restarts it, and checks that each
// attempt was dialed at most once and that its outcome is not lost.
func TestManagerKilledMidDial(t *testing.T) {
	env, err := testenv.Start()
	must(t, err)
	t.Cleanup(func() { _ = env.Stop() })
	kubeconfig := filepath.Join(t.TempDir(), "kubeconfig")
	must(t, env.WriteKubeconfig(kubeconfig))
	ctx := context.Background()
	k8s := env.Client

	const appID, secret = 5150001, "crash-test-secret"
	// Redeliveries every 3, 6 and 9 s: the restarted manager is up in time to
	// take the events it missed while it was dead.
	s, err := sim.New(sim.Config{Apps: []sim.App{{AppID: appID, Secret: secret}}, RedeliveryScale: 0.01,
		Logger: slog.New(slog.NewTextHandler(io.Discard, nil))})
	must(t, err)
	simURL, err := s.Start("127.0.0.1:0")
	must(t, err)
	t.Cleanup(func() { _ = s.Close(context.Background()) })
	webhookAddr := freeAddr(t)
	const token = "crash-test-token"
	s.SetWebhookURL("http://" + webhookAddr + "/piopiy/events/" + token)
	s.SetScenario(sim.Scenario{Default: sim.Behaviour{Outcome: sim.OutcomeAnswer, AnswerDelay: 200 * time.Millisecond, HangupAfter: time.Second}})

	must(t, k8s.Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: "crash"}}))
	must(t, k8s.Create(ctx, &corev1.Secret{ObjectMeta: metav1.ObjectMeta{Namespace: "crash", Name: "piopiy"},
		StringData: map[string]string{"appId": fmt.Sprint(appID), "secret": secret, "from": "918000000009"}}))
	sink := streamSink(t)
	manager := binary(t, "cmd/manager")
	runManager := func(t *testing.T, failpoints string) *process {
		env := []string{"KUBECONFIG=" + kubeconfig, "CALLFLEET_WEBHOOK_TOKEN=" + token,
			"CALLFLEET_STREAM_TOKEN_KEY=0123456789abcdef0123456789abcdef"}
		if failpoints != "" {
			env = append(env, failpoint.EnvVar+"="+failpoints)
		}
		return start(t, "manager "+failpoints, manager, env,
			"--metrics-bind-address=0", "--health-probe-bind-address=0", "--webhook-bind-address="+webhookAddr,
			"--piopiy-rest-url="+simURL, "--piopiy-action-url="+simURL, "--default-account=crash/piopiy",
			// The CDR lookup waits past the sim's first redelivery (3 s): the
			// restarted manager's receiver may not be listening yet when the
			// call's first CDR goes out, and the documented sim redelivers
			// only after a failed delivery.
			"--settle-timeout=20s", "--cdr-grace=8s")
	}

	cases := []struct {
		name      string
		failpoint string
		to        string
		wantDials int
		wantPhase voicev1alpha1.CallPhase
		wantBy    string
		// afterKill: the states the attempt may be in once the process died.
		afterKill []voicev1alpha1.AttemptState
	}{
		// Killed after the intent was written, before the POST: Piopiy never
		// saw the call. The attempt is settled as unknown and not redialled,
		// because the manager cannot tell this case from the next one.
		{"after intent", failpoint.DialAfterIntent, "919100000001", 0, voicev1alpha1.CallFailed, "Timeout",
			[]voicev1alpha1.AttemptState{voicev1alpha1.AttemptIntent}},
		// Killed after the POST placed the call, before its request id was
		// recorded: the webhooks, matched by the attempt id in extra_params,
		// settle it and the outcome is kept. Piopiy's first event races the
		// reply, so the dying process's own receiver may already have
		// recorded the call as Dialed.
		{"after post", failpoint.DialAfterPost, "919100000002", 1, voicev1alpha1.CallCompleted, "Webhook",
			[]voicev1alpha1.AttemptState{voicev1alpha1.AttemptIntent, voicev1alpha1.AttemptDialed}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			m := runManager(t, tc.failpoint)
			c := &voicev1alpha1.Call{ObjectMeta: metav1.ObjectMeta{Namespace: "crash", Name: "c-" + tc.failpoint}}
			c.Spec.To = tc.to
			c.Spec.Stream.URL = sink
			c.Spec.RingTimeoutSeconds = 5
			c.Spec.MaxDurationSeconds = 60
			c.Spec.Retry = voicev1alpha1.RetryPolicy{MaxAttempts: 3, BackoffSeconds: 1, MaxBackoffSeconds: 1,
				Outcomes: []voicev1alpha1.CallOutcome{voicev1alpha1.OutcomeFailed, voicev1alpha1.OutcomeBusy, voicev1alpha1.OutcomeNoAnswer}}
			must(t, k8s.Create(ctx, c))

			err := m.wait(t, 2*time.Minute)
			var exit *exec.ExitError
			if !errors.As(err, &exit) || exit.Sys().(syscall.WaitStatus).Signal() != syscall.SIGKILL {
				t.Fatalf("manager was not killed at %s: %v", tc.failpoint, err)
			}
			got := &voicev1alpha1.Call{}
			must(t, k8s.Get(ctx, client.ObjectKeyFromObject(c), got))
			if n := len(got.Status.Attempts); n != 1 || !slices.Contains(tc.afterKill, got.Status.Attempts[0].State) {
				t.Fatalf("after the kill, want one attempt in %v: %+v", tc.afterKill, got.Status.Attempts)
			}

			runManager(t, "")
			deadline := time.Now().Add(90 * time.Second)
			for got.Status.Phase != voicev1alpha1.CallCompleted && got.Status.Phase != voicev1alpha1.CallFailed {
				if time.Now().After(deadline) {
					b, _ := json.Marshal(got.Status)
					t.Fatalf("Call not terminal after restart: %s", b)
				}
				time.Sleep(200 * time.Millisecond)
				must(t, k8s.Get(ctx, client.ObjectKeyFromObject(c), got))
			}
			dials := 0
			for _, r := range s.Calls() {
				if r.To == tc.to {
					dials++
				}
			}
			b, _ := json.Marshal(got.Status)
			if dials != tc.wantDials {
				t.Fatalf("sim saw %d dials to %s, want %d; status %s", dials, tc.to, tc.wantDials, b)
			}
			if got.Status.Phase != tc.wantPhase || len(got.Status.Attempts) != 1 || got.Status.Attempts[0].SettledBy != tc.wantBy {
				t.Fatalf("want phase %s with one attempt settled by %s; status %s", tc.wantPhase, tc.wantBy, b)
			}
		})
	}
}
