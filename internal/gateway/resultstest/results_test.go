package resultstest

import (
	"context"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/go-logr/logr"
	"github.com/prometheus/client_golang/prometheus"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	ctrl "sigs.k8s.io/controller-runtime"

	voicev1alpha1 "github.com/callfleet/callfleet/api/v1alpha1"
	"github.com/callfleet/callfleet/internal/controller/streamendpoint"
	"github.com/callfleet/callfleet/internal/gateway"
	"github.com/callfleet/callfleet/internal/sim"
	"github.com/callfleet/callfleet/internal/testenv"
	"github.com/callfleet/callfleet/test/harness"
)

const (
	ns       = "results"
	endpoint = "bots"
	// Callees of the suite: people talk (and hang up after a while),
	// machines greet, beep and record until hung up on.
	person     = "919810000001"
	machine    = "919810000002"
	machineMsg = "919810000003"
	recorded   = "919810000004"
	message    = "https://audio.example.com/sorry-we-missed-you.mp3"
)

// deadline bounds every wait: generous for a loaded 2-core box; never an
// assertion about timing.
const deadline = 90 * time.Second

var h *harness.Harness

func TestMain(m *testing.M) { os.Exit(run(m)) }

func run(m *testing.M) int {
	var err error
	h, err = harness.Start(harness.Options{Setup: func(_ context.Context, mgr ctrl.Manager) error {
		return (&streamendpoint.Reconciler{Client: mgr.GetClient(), Scheme: mgr.GetScheme()}).SetupWithManager(mgr)
	}})
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	defer h.Stop()
	talk := sim.Behaviour{Outcome: sim.OutcomeAnswer, AnswerDelay: 100 * time.Millisecond, HangupAfter: 8 * time.Second}
	box := sim.Behaviour{Outcome: sim.OutcomeVoicemail, AnswerDelay: 100 * time.Millisecond}
	h.Sim.SetScenario(sim.Scenario{Default: talk, Numbers: map[string]sim.Behaviour{
		person: talk, machine: box, machineMsg: box, recorded: talk,
	}})

	stop, err := startStack()
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	defer stop()
	return m.Run()
}

// startStack runs the echo bot and the gateway in front of it, and makes
// the external StreamEndpoint the Calls use.
func startStack() (func(), error) {
	ctx := context.Background()
	if err := h.Env.Client.Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: ns}}); err != nil {
		return nil, err
	}
	dir, err := os.MkdirTemp("", "resultstest-")
	if err != nil {
		return nil, err
	}
	bin := filepath.Join(dir, "echo")
	build := exec.Command("go", "build", "-o", bin, "./examples/bots/echo")
	build.Dir = testenv.RepoRoot()
	if out, err := build.CombinedOutput(); err != nil {
		return nil, fmt.Errorf("building the echo bot: %v\n%s", err, out)
	}
	botAddr, err := freeAddr()
	if err != nil {
		return nil, err
	}
	bot := exec.Command(bin, "--listen="+botAddr, "--handoff-after-turns=0")
	bot.Stderr = os.Stderr
	if os.Getenv("RESULTS_TEST_LOG") == "" {
		bot.Stderr = nil
	}
	if err := bot.Start(); err != nil {
		return nil, err
	}

	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, err
	}
	addr := ln.Addr().String()
	gctx, cancel := context.WithCancel(ctx)
	done := make(chan error, 1)
	go func() {
		done <- gateway.Run(gctx, h.Env.Config, gateway.RunOptions{
			Options: gateway.Options{
				Namespace: ns, Endpoint: endpoint, BotURL: "ws://" + botAddr + "/",
				// The manager's root key: the gateway derives its endpoint's
				// key from it, as the Call controller does to sign ws_url
				// tokens (streamtoken.DeriveKey). The root itself verifies
				// nothing.
				TokenRootKey: h.TokenKey, PodName: "gw-results-0",
				Registerer: prometheus.NewRegistry(), Logger: logr.Discard(),
			},
			Listener: ln, MetricsBindAddress: "0",
		})
	}()
	stop := func() {
		cancel()
		if err := <-done; err != nil {
			fmt.Fprintln(os.Stderr, "stream gateway:", err)
		}
		_ = bot.Process.Kill()
		_ = bot.Wait()
		_ = os.RemoveAll(dir)
	}
	ep := &voicev1alpha1.StreamEndpoint{
		ObjectMeta: metav1.ObjectMeta{Name: endpoint, Namespace: ns},
		Spec: voicev1alpha1.StreamEndpointSpec{
			External:  &voicev1alpha1.ExternalEndpoint{HealthURL: "http://" + addr + "/readyz"},
			PublicURL: "ws://" + addr + "/stream",
		},
	}
	if err := h.Env.Client.Create(ctx, ep); err != nil {
		stop()
		return nil, err
	}
	// The bot answers on its port before a Call needs it.
	end := time.Now().Add(deadline)
	for {
		if resp, err := http.Get("http://" + botAddr + "/"); err == nil {
			_ = resp.Body.Close()
			break
		}
		if time.Now().After(end) {
			stop()
			return nil, fmt.Errorf("echo bot did not listen on %s", botAddr)
		}
		time.Sleep(50 * time.Millisecond)
	}
	return stop, nil
}

func freeAddr() (string, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return "", err
	}
	defer func() { _ = l.Close() }() // only listened to pick a free port
	return l.Addr().String(), nil
}

func createCall(t *testing.T, name, to string, mut func(*voicev1alpha1.Call)) {
	t.Helper()
	c := &voicev1alpha1.Call{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: name}}
	c.Spec.To = to
	c.Spec.StreamEndpointRef = &voicev1alpha1.LocalRef{Name: endpoint}
	c.Spec.MaxDurationSeconds = 120
	if mut != nil {
		mut(c)
	}
	if err := h.Env.Client.Create(context.Background(), c); err != nil {
		t.Fatal(err)
	}
}

func waitCall(t *testing.T, name, what string, cond func(*voicev1alpha1.Call) bool) *voicev1alpha1.Call {
	t.Helper()
	end := time.Now().Add(deadline)
	for {
		c := &voicev1alpha1.Call{}
		if err := h.Env.Client.Get(context.Background(), types.NamespacedName{Namespace: ns, Name: name}, c); err != nil {
			t.Fatal(err)
		}
		if cond(c) {
			return c
		}
		if time.Now().After(end) {
			t.Fatalf("timed out waiting for %s: status %+v", what, c.Status)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

func ended(c *voicev1alpha1.Call) bool {
	return c.Status.Phase == voicev1alpha1.CallCompleted || c.Status.Phase == voicev1alpha1.CallFailed
}

func simRecord(t *testing.T, c *voicev1alpha1.Call) sim.CallRecord {
	t.Helper()
	for _, r := range h.Sim.Calls() {
		if len(c.Status.Attempts) > 0 && r.RequestID == c.Status.Attempts[0].RequestID {
			return r
		}
	}
	t.Fatalf("the sim has no call %s", c.Status.Attempts[0].RequestID)
	return sim.CallRecord{}
}

// TestDispositionReachesCallStatus: the echo bot reports a result after
// the caller's first turn; the gateway writes it to status.result, with
// the disposition the Call's variables asked the bot for.
func TestDispositionReachesCallStatus(t *testing.T) {
	t.Parallel()
	createCall(t, "disposition", person, func(c *voicev1alpha1.Call) {
		c.Spec.Variables = map[string]string{"disposition": "Interested"}
	})
	c := waitCall(t, "disposition", "status.result", func(c *voicev1alpha1.Call) bool { return c.Status.Result != nil })
	r := c.Status.Result
	if r.Disposition != "Interested" || r.ReportedBy != voicev1alpha1.ReportedByBot || r.ReportedAt == nil ||
		r.Summary == "" || r.Data["turns"] != "1" {
		t.Errorf("status.result %+v", r)
	}
	c = waitCall(t, "disposition", "the call ended", ended)
	if o := c.Status.Attempts[0].Outcome; o != voicev1alpha1.OutcomeAnswered || c.Status.Result.Disposition != "Interested" {
		t.Errorf("outcome %s, result %+v", o, c.Status.Result)
	}
}

// TestMachineEndsVoicemail: a machine answers, greets and beeps; the echo
// bot hears the beep and reports voicemail; the gateway hangs up (Hangup,
// the default) and the attempt's outcome is Voicemail, the Call Completed.
func TestMachineEndsVoicemail(t *testing.T) {
	t.Parallel()
	createCall(t, "machine", machine, nil)
	c := waitCall(t, "machine", "the call ended", ended)
	a := c.Status.Attempts[0]
	if c.Status.Phase != voicev1alpha1.CallCompleted || a.Outcome != voicev1alpha1.OutcomeVoicemail ||
		c.Status.Stream == nil || c.Status.Stream.VoicemailTime == nil || !c.Status.Stream.HangupSent {
		t.Fatalf("phase %s, attempt %+v, stream %+v", c.Status.Phase, a, c.Status.Stream)
	}
	rec := simRecord(t, c)
	var socket []string
	for _, p := range rec.Plays {
		if p.Source == "socket" {
			socket = append(socket, p.Action)
		}
	}
	if strings.Join(socket, ",") != "hangup" || rec.Outcome != "voicemail" {
		t.Errorf("sim: socket actions %v, outcome %s (want one hangup on a voicemail box)", socket, rec.Outcome)
	}
}

// TestMachineLeaveMessage: with spec.voicemail LeaveMessage the gateway
// plays the message on the stream and then hangs up; the sim records the
// play, then the hangup.
func TestMachineLeaveMessage(t *testing.T) {
	t.Parallel()
	createCall(t, "leave-message", machineMsg, func(c *voicev1alpha1.Call) {
		c.Spec.Voicemail = &voicev1alpha1.VoicemailPolicy{Action: voicev1alpha1.VoicemailLeaveMessage, AudioURL: message}
	})
	c := waitCall(t, "leave-message", "the call ended", ended)
	if a := c.Status.Attempts[0]; a.Outcome != voicev1alpha1.OutcomeVoicemail || c.Status.Phase != voicev1alpha1.CallCompleted {
		t.Fatalf("phase %s, attempt %+v", c.Status.Phase, a)
	}
	rec := simRecord(t, c)
	var socket []sim.PlayRecord
	for _, p := range rec.Plays {
		if p.Source == "socket" {
			socket = append(socket, p)
		}
	}
	if len(socket) != 2 || socket[0].Action != "play" || socket[0].FileURL != message || socket[1].Action != "hangup" ||
		socket[1].At.Before(socket[0].At) {
		t.Errorf("sim socket actions %+v, want the play of %s then the hangup", socket, message)
	}
}

// TestRecordYieldsRecording: spec.record puts the record action first in
// the PCMO; the recording the sim's CDR reports lands in the attempt.
func TestRecordYieldsRecording(t *testing.T) {
	t.Parallel()
	createCall(t, "recorded", recorded, func(c *voicev1alpha1.Call) {
		c.Spec.Record = true
	})
	c := waitCall(t, "recorded", "the call ended", ended)
	a := c.Status.Attempts[0]
	if !regexp.MustCompile(fmt.Sprintf(`^[0-9]+_%d\.mp3$`, harness.AppID)).MatchString(a.Recording) {
		t.Errorf("attempts[0].recording %q, want the CDR's filename", a.Recording)
	}
	rec := simRecord(t, c)
	if len(rec.Plays) == 0 || rec.Plays[0].Action != "record" || rec.Plays[0].Source != "make-call" {
		t.Errorf("sim plays %+v, want the make-call PCMO's record first", rec.Plays)
	}
}
