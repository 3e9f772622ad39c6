package v1alpha1_test

import (
	"context"
	"fmt"
	"os"
	"strings"
	"testing"

	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/yaml"

	voicev1alpha1 "github.com/callfleet/callfleet/api/v1alpha1"
	"github.com/callfleet/callfleet/internal/testenv"
)

var env *testenv.Env

func TestMain(m *testing.M) {
	var err error
	env, err = testenv.Start()
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	code := m.Run()
	_ = env.Stop()
	os.Exit(code)
}

// manifest parses YAML the way kubectl would send it, so the apiserver sees
// exactly what a user's file says (including fields Go types would drop).
func manifest(t *testing.T, namespace, doc string) *unstructured.Unstructured {
	t.Helper()
	u := &unstructured.Unstructured{}
	if err := yaml.Unmarshal([]byte(doc), &u.Object); err != nil {
		t.Fatalf("bad test manifest: %v", err)
	}
	u.SetNamespace(namespace)
	return u
}

func namespace(t *testing.T) string {
	t.Helper()
	ns := strings.ToLower(strings.NewReplacer("/", "-", "_", "-").Replace(t.Name()))
	if len(ns) > 50 {
		ns = ns[:50]
	}
	ns = strings.Trim(ns, "-")
	u := &unstructured.Unstructured{}
	u.SetAPIVersion("v1")
	u.SetKind("Namespace")
	u.SetName(ns)
	if err := env.Client.Create(context.Background(), u); err != nil {
		t.Fatalf("creating namespace: %v", err)
	}
	return ns
}

const callHeader = "apiVersion: voice.callfleet.dev/v1alpha1\nkind: Call\nmetadata:\n  name: c\n"

func TestCallValidationRejectsNonsense(t *testing.T) {
	ns := namespace(t)
	cases := []struct {
		name, spec, want string
	}{
		{"to missing", `{streamEndpointRef: {name: bots}}`, `spec.to: Required value`},
		{"to with plus", `{to: "+919876543210", streamEndpointRef: {name: bots}}`, `spec.to in body should match '^[1-9][0-9]{6,15}$'`},
		{"to too short", `{to: "12345", streamEndpointRef: {name: bots}}`, `spec.to in body should match`},
		{"to too long", `{to: "12345678901234567", streamEndpointRef: {name: bots}}`, `spec.to: Too long: may not be more than 16 bytes`},
		{"to with letters", `{to: "91987abc3210", streamEndpointRef: {name: bots}}`, `spec.to in body should match`},
		{"to leading zero", `{to: "0919876543210", streamEndpointRef: {name: bots}}`, `spec.to in body should match`},
		{"from with dashes", `{to: "919876543210", from: "91-98765", streamEndpointRef: {name: bots}}`, `spec.from in body should match`},
		{"no stream target", `{to: "919876543210"}`, `set exactly one of streamEndpointRef`},
		{"both stream targets", `{to: "919876543210", streamEndpointRef: {name: bots}, stream: {url: "wss://bot.example.com/ws"}}`, `set exactly one of streamEndpointRef`},
		{"stream url http", `{to: "919876543210", stream: {url: "https://bot.example.com"}}`, `spec.stream.url in body should match`},
		{"listen mode unknown", `{to: "919876543210", streamEndpointRef: {name: bots}, stream: {listenMode: everyone}}`, `spec.stream.listenMode: Unsupported value: "everyone"`},
		{"voice quality 44100", `{to: "919876543210", streamEndpointRef: {name: bots}, stream: {voiceQuality: 44100}}`, `spec.stream.voiceQuality: Unsupported value: 44100`},
		{"voice quality 32000 (streamAudio plays only 8000 or 16000)", `{to: "919876543210", streamEndpointRef: {name: bots}, stream: {voiceQuality: 32000}}`, `voiceQuality 32000 cannot be answered: Piopiy plays bot audio (streamAudio) only at 8000 or 16000 Hz`},
		{"stream connect timeout zero", `{to: "919876543210", streamEndpointRef: {name: bots}, stream: {connectTimeoutSeconds: 0}}`, `spec.stream.connectTimeoutSeconds in body should be greater than or equal to 1`},
		{"stream connect timeout too long", `{to: "919876543210", streamEndpointRef: {name: bots}, stream: {connectTimeoutSeconds: 600}}`, `spec.stream.connectTimeoutSeconds in body should be less than or equal to 300`},
		{"stream state unknown", `{to: "919876543210", streamEndpointRef: {name: bots}, stream: {state: Muted}}`, `spec.stream.state: Unsupported value: "Muted"`},
		{"retry zero attempts", `{to: "919876543210", streamEndpointRef: {name: bots}, retry: {maxAttempts: 0}}`, `spec.retry.maxAttempts in body should be greater than or equal to 1`},
		{"retry too many attempts", `{to: "919876543210", streamEndpointRef: {name: bots}, retry: {maxAttempts: 50}}`, `spec.retry.maxAttempts in body should be less than or equal to 10`},
		{"retry on unknown outcome", `{to: "919876543210", streamEndpointRef: {name: bots}, retry: {outcomes: [Answered]}}`, `retry.outcomes may list only NoAnswer, Busy and Failed`},
		{"backoff cap below backoff", `{to: "919876543210", streamEndpointRef: {name: bots}, retry: {backoffSeconds: 600, maxBackoffSeconds: 60}}`, `maxBackoffSeconds must be at least backoffSeconds`},
		{"max duration too long", `{to: "919876543210", streamEndpointRef: {name: bots}, maxDurationSeconds: 86400}`, `spec.maxDurationSeconds in body should be less than or equal to 7200`},
		{"ring timeout too short", `{to: "919876543210", streamEndpointRef: {name: bots}, ringTimeoutSeconds: 1}`, `spec.ringTimeoutSeconds in body should be greater than or equal to 5`},
		{"variable name with dash", `{to: "919876543210", streamEndpointRef: {name: bots}, variables: {first-name: Asha}}`, `variable names must be identifiers`},
		{"a 70 KB variable", `{to: "919876543210", streamEndpointRef: {name: bots}, variables: {notes: "` + strings.Repeat("a", 70_000) + `"}}`, `variables may hold at most 8 KiB in total`},
		{"variables over 8 KiB together", `{to: "919876543210", streamEndpointRef: {name: bots}, variables: {` + manyVariables(9, 1000) + `}}`, `variables may hold at most 8 KiB in total`},
		{"reserved variable", `{to: "919876543210", streamEndpointRef: {name: bots}, variables: {callfleet_attempt: x}}`, `variable names starting with 'callfleet_' are reserved`},
		{"announcement with both sources", `{to: "919876543210", streamEndpointRef: {name: bots}, announcements: [{name: hi, fileName: hi.wav, url: "https://x.example/hi.wav"}]}`, `set exactly one of fileName (uploaded to Piopiy) and url`},
		{"announcement duplicate names", `{to: "919876543210", streamEndpointRef: {name: bots}, announcements: [{name: hi, fileName: a.wav}, {name: hi, fileName: b.wav}]}`, `Duplicate value`},
		{"handoff without pool", `{to: "919876543210", streamEndpointRef: {name: bots}, handoff: {requested: true}}`, `spec.handoff.agentPoolRef: Required value`},
		{"handoff unknown fallback", `{to: "919876543210", streamEndpointRef: {name: bots}, handoff: {agentPoolRef: {name: p}, onNoAgent: Voicemail}}`, `spec.handoff.onNoAgent: Unsupported value: "Voicemail"`},
		{"unknown route", `{to: "919876543210", streamEndpointRef: {name: bots}, route: Mars}`, `spec.route: Unsupported value: "Mars"`},
		{"voicemail message without audio", `{to: "919876543210", streamEndpointRef: {name: bots}, voicemail: {action: LeaveMessage}}`, `voicemail.action LeaveMessage needs voicemail.audioURL`},
		{"voicemail unknown action", `{to: "919876543210", streamEndpointRef: {name: bots}, voicemail: {action: Transfer}}`, `spec.voicemail.action: Unsupported value: "Transfer"`},
		{"voicemail audio not http", `{to: "919876543210", streamEndpointRef: {name: bots}, voicemail: {action: LeaveMessage, audioURL: "ftp://x/a.mp3"}}`, `spec.voicemail.audioURL in body should match`},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			obj := manifest(t, ns, callHeader+"spec: "+tc.spec)
			err := env.Client.Create(context.Background(), obj)
			if err == nil {
				t.Fatalf("apiserver accepted a Call it should reject (want %q)", tc.want)
			}
			if !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("error does not say %q:\n%v", tc.want, err)
			}
		})
	}
}

func TestCallDefaultsAndReadBack(t *testing.T) {
	ns := namespace(t)
	ctx := context.Background()
	obj := manifest(t, ns, callHeader+`spec: {to: "919876543210", streamEndpointRef: {name: bots}}`)
	if err := env.Client.Create(ctx, obj); err != nil {
		t.Fatalf("create: %v", err)
	}
	var call voicev1alpha1.Call
	if err := env.Client.Get(ctx, client.ObjectKey{Namespace: ns, Name: "c"}, &call); err != nil {
		t.Fatalf("get: %v", err)
	}
	s := call.Spec
	if s.To != "919876543210" || s.StreamEndpointRef.Name != "bots" {
		t.Fatalf("read back wrong spec: %+v", s)
	}
	checks := map[string]bool{
		"stream.listenMode=caller":        s.Stream.ListenMode == voicev1alpha1.ListenCaller,
		"stream.voiceQuality=8000":        s.Stream.VoiceQuality == 8000,
		"stream.state=Active":             s.Stream.State == voicev1alpha1.StreamActive,
		"stream.startOnAnswer=true":       s.Stream.StartOnAnswer != nil && *s.Stream.StartOnAnswer,
		"stream.connectTimeoutSeconds=10": s.Stream.ConnectTimeoutSeconds == 10,
		"ringTimeoutSeconds=40":           s.RingTimeoutSeconds == 40,
		"maxDurationSeconds=600":          s.MaxDurationSeconds == 600,
		"retry.maxAttempts=1":             s.Retry.MaxAttempts == 1,
		"retry.outcomes=[NoAnswer Busy]":  fmt.Sprint(s.Retry.Outcomes) == "[NoAnswer Busy]",
		"retry.maxBackoffSeconds=3600":    s.Retry.MaxBackoffSeconds == 3600,
	}
	for what, ok := range checks {
		if !ok {
			t.Errorf("default %s not applied: %+v", what, s)
		}
	}
}

func TestCallDialFieldsFreezeOnceDialingStarted(t *testing.T) {
	ns := namespace(t)
	ctx := context.Background()
	call := &voicev1alpha1.Call{}
	call.Namespace, call.Name = ns, "c"
	call.Spec.To = "919876543210"
	call.Spec.StreamEndpointRef = &voicev1alpha1.LocalRef{Name: "bots"}
	if err := env.Client.Create(ctx, call); err != nil {
		t.Fatalf("create: %v", err)
	}
	// Before any attempt the number can still be fixed.
	call.Spec.To = "919876543211"
	if err := env.Client.Update(ctx, call); err != nil {
		t.Fatalf("changing to before dialing was rejected: %v", err)
	}
	call.Status.Attempts = []voicev1alpha1.CallAttempt{{Number: 1, ID: "a1", State: voicev1alpha1.AttemptIntent, IntentTime: call.CreationTimestamp}}
	if err := env.Client.Status().Update(ctx, call); err != nil {
		t.Fatalf("status update: %v", err)
	}
	call.Spec.To = "919876543212"
	err := env.Client.Update(ctx, call)
	if err == nil || !strings.Contains(err.Error(), "cannot change once dialing has started") {
		t.Fatalf("changing to after dialing started: want rejection, got %v", err)
	}
	call.Spec.To = "919876543211"
	call.Spec.Stream.State = voicev1alpha1.StreamPaused
	call.Spec.Hangup = true
	if err := env.Client.Update(ctx, call); err != nil {
		t.Fatalf("live controls (stream.state, hangup) must stay editable: %v", err)
	}
	call.Spec.Hangup = false
	if err := env.Client.Update(ctx, call); err == nil || !strings.Contains(err.Error(), "hangup cannot be undone") {
		t.Fatalf("undoing hangup: want rejection, got %v", err)
	}
}

func TestOtherKindsValidation(t *testing.T) {
	ns := namespace(t)
	cases := []struct {
		name, doc, want string
	}{
		{"endpoint without image or external", "kind: StreamEndpoint\nspec: {replicas: 1}", "set exactly one of image"},
		{"endpoint ingress without publicURL", "kind: StreamEndpoint\nspec: {image: bot:1, ingress: {}}", "ingress needs publicURL"},
		{"endpoint publicURL http", "kind: StreamEndpoint\nspec: {image: bot:1, publicURL: http://x}", "spec.publicURL in body should match"},
		{"endpoint goodbye longer than the grace", "kind: StreamEndpoint\nspec: {image: bot:1, drain: {gracePeriodSeconds: 5}}", "goodbyeSeconds must be shorter than gracePeriodSeconds"},
		{"endpoint drain beyond a call's longest", "kind: StreamEndpoint\nspec: {image: bot:1, drain: {gracePeriodSeconds: 7201}}", "spec.drain.gracePeriodSeconds: Invalid value: 7201"},
		{"endpoint goodbye not a URL", "kind: StreamEndpoint\nspec: {image: bot:1, drain: {goodbyeURL: \"bye.wav\"}}", "spec.drain.goodbyeURL in body should match"},
		{"endpoint bot reconnect negative", "kind: StreamEndpoint\nspec: {image: bot:1, gateway: {botReconnectSeconds: -1}}", "spec.gateway.botReconnectSeconds"},
		{"pool without agents", "kind: AgentPool\nspec: {agents: []}", "spec.agents in body should have at least 1 items"},
		{"pool duplicate numbers", "kind: AgentPool\nspec: {agents: [{name: a, number: \"919800000001\"}, {name: b, number: \"919800000001\"}]}", "each agent number may appear once"},
		{"pool bad strategy", "kind: AgentPool\nspec: {strategy: Random, agents: [{name: a, number: \"919800000001\"}]}", `spec.strategy: Unsupported value: "Random"`},
		{"campaign without contacts", "kind: Campaign\nspec: {callTemplate: {spec: {streamEndpointRef: {name: bots}}}}", "a Campaign needs contacts or contactsFrom"},
		{"campaign window backwards", "kind: Campaign\nspec: {callTemplate: {spec: {streamEndpointRef: {name: bots}}}, contacts: [{number: \"919800000001\"}], schedule: {windows: [{start: \"18:00\", end: \"09:00\"}]}}", "start must be before its end"},
		{"campaign window bad time", "kind: Campaign\nspec: {callTemplate: {spec: {streamEndpointRef: {name: bots}}}, contacts: [{number: \"919800000001\"}], schedule: {windows: [{start: \"9am\", end: \"18:00\"}]}}", "spec.schedule.windows[0].start in body should match"},
		{"campaign notify without secret", "kind: Campaign\nspec: {callTemplate: {spec: {streamEndpointRef: {name: bots}}}, contacts: [{number: \"919800000001\"}], notify: {url: \"https://hooks.example.com\"}}", "spec.notify.secretRef: Required value"},
		{"campaign template without stream target", "kind: Campaign\nspec: {callTemplate: {spec: {}}, contacts: [{number: \"919800000001\"}]}", "set exactly one of streamEndpointRef and stream.url"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			obj := manifest(t, ns, "apiVersion: voice.callfleet.dev/v1alpha1\nmetadata: {name: x}\n"+tc.doc)
			err := env.Client.Create(context.Background(), obj)
			if err == nil {
				t.Fatalf("apiserver accepted an object it should reject (want %q)", tc.want)
			}
			if !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("error does not say %q:\n%v", tc.want, err)
			}
		})
	}
}

// manyVariables is n variables of size bytes each, as a YAML flow mapping's
// entries.
func manyVariables(n, size int) string {
	var b strings.Builder
	for i := range n {
		if i > 0 {
			b.WriteString(", ")
		}
		fmt.Fprintf(&b, "v%d: %s", i, strings.Repeat("x", size))
	}
	return b.String()
}

// TestCallVariablesUpToTheLimit: 32 variables, 8 KiB in all, are accepted;
// the limit refuses only what Piopiy's webhooks could not echo.
func TestCallVariablesUpToTheLimit(t *testing.T) {
	ns := namespace(t)
	// 32 names "vNN" of 2-3 bytes plus 250-byte values: 8,078 bytes.
	obj := manifest(t, ns, callHeader+`spec: {to: "919876543210", streamEndpointRef: {name: bots}, variables: {`+manyVariables(32, 250)+`}}`)
	if err := env.Client.Create(context.Background(), obj); err != nil {
		t.Fatalf("32 variables within 8 KiB refused: %v", err)
	}
}
