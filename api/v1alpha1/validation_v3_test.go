package v1alpha1_test

import (
	"context"
	"strings"
	"testing"

	"k8s.io/apimachinery/pkg/runtime"

	voicev1alpha1 "github.com/callfleet/callfleet/api/v1alpha1"
)

const agentUUID = "bdd32bcb-767c-40a5-be4a-5f45eeb348a6"

// TestV3CallValidation: a spec.agent (Piopiy v3) Call is accepted without a
// stream target, and every v2-only stream control is refused with a message
// saying why.
func TestV3CallValidation(t *testing.T) {
	ns := namespace(t)
	ok := []string{
		`{to: "919876543210", agent: {id: "` + agentUUID + `"}}`,
		`{to: "919876543210", agent: {pipeline: [{action: play, file_name: hi.mp3}, {action: hangup}]}}`,
		`{to: "919876543210", agent: {id: "` + agentUUID + `"}, handoff: {agentPoolRef: {name: p}}, stream: {}}`,
	}
	for i, spec := range ok {
		obj := manifest(t, ns, strings.Replace(callHeader, "name: c", "name: ok"+string(rune('a'+i)), 1)+"spec: "+spec)
		if err := env.Client.Create(context.Background(), obj); err != nil {
			t.Errorf("valid v3 Call %s refused: %v", spec, err)
		}
	}
	cases := []struct{ name, spec, want string }{
		{"agent empty", `{to: "919876543210", agent: {}}`, `spec.agent needs id (a Piopiy-hosted AI agent) or pipeline`},
		{"agent id not a uuid", `{to: "919876543210", agent: {id: sales-bot}}`, `spec.agent.id in body should match`},
		{"agent with endpoint", `{to: "919876543210", agent: {id: "` + agentUUID + `"}, streamEndpointRef: {name: bots}}`, `streams no audio to a WebSocket`},
		{"agent with stream url", `{to: "919876543210", agent: {id: "` + agentUUID + `"}, stream: {url: "wss://bot.example.com/ws"}}`, `streams no audio to a WebSocket`},
		{"agent with paused stream", `{to: "919876543210", agent: {id: "` + agentUUID + `"}, stream: {state: Paused}}`, `control the Piopiy v2 audio stream`},
		{"agent with listen mode", `{to: "919876543210", agent: {id: "` + agentUUID + `"}, stream: {listenMode: both}}`, `control the Piopiy v2 audio stream`},
		{"agent with voice quality", `{to: "919876543210", agent: {id: "` + agentUUID + `"}, stream: {voiceQuality: 16000}}`, `control the Piopiy v2 audio stream`},
		{"agent with announcements", `{to: "919876543210", agent: {id: "` + agentUUID + `"}, announcements: [{name: hi, fileName: hi.wav}]}`, `announcements are played by the stream gateway`},
		{"agent with keepStreaming", `{to: "919876543210", agent: {id: "` + agentUUID + `"}, handoff: {agentPoolRef: {name: p}, keepStreaming: true}}`, `a spec.agent (v3) call has no stream to keep`},
		{"agent with short duration", `{to: "919876543210", agent: {id: "` + agentUUID + `"}, maxDurationSeconds: 20}`, `Piopiy v3 refuses a shorter max_duration_sec`},
		{"pipeline empty", `{to: "919876543210", agent: {pipeline: []}}`, `spec.agent.pipeline in body should have at least 1 items`},
		{"pipeline item not an object", `{to: "919876543210", agent: {pipeline: [play]}}`, `spec.agent.pipeline[0]: Invalid value: "string"`},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			err := env.Client.Create(context.Background(), manifest(t, ns, callHeader+"spec: "+tc.spec))
			if err == nil {
				t.Fatalf("apiserver accepted a Call it should reject (want %q)", tc.want)
			}
			if !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("error does not say %q:\n%v", tc.want, err)
			}
		})
	}
}

// TestV3AgentCannotChange: spec.agent picks the generation, so it can be
// neither added, removed nor edited.
func TestV3AgentCannotChange(t *testing.T) {
	ns := namespace(t)
	ctx := context.Background()
	call := &voicev1alpha1.Call{}
	call.Namespace, call.Name = ns, "c"
	call.Spec.To = "919876543210"
	call.Spec.Agent = &voicev1alpha1.CallAgent{ID: agentUUID}
	if err := env.Client.Create(ctx, call); err != nil {
		t.Fatal(err)
	}
	call.Spec.Agent.Pipeline = []runtime.RawExtension{{Raw: []byte(`{"action":"hangup"}`)}}
	if err := env.Client.Update(ctx, call); err == nil || !strings.Contains(err.Error(), "spec.agent cannot change") {
		t.Fatalf("editing spec.agent: want rejection, got %v", err)
	}
	call.Spec.Agent = nil
	call.Spec.Stream.URL = "wss://bot.example.com/ws"
	if err := env.Client.Update(ctx, call); err == nil || !strings.Contains(err.Error(), "spec.agent cannot be added or removed") {
		t.Fatalf("removing spec.agent: want rejection, got %v", err)
	}
}

func TestV3CampaignTemplate(t *testing.T) {
	ns := namespace(t)
	doc := "apiVersion: voice.callfleet.dev/v1alpha1\nkind: Campaign\nmetadata: {name: x}\nspec: {callTemplate: {spec: {agent: {id: \"" + agentUUID + "\"}}}, contacts: [{number: \"919800000001\"}]}"
	if err := env.Client.Create(context.Background(), manifest(t, ns, doc)); err != nil {
		t.Fatalf("a Campaign of v3 Calls was refused: %v", err)
	}
}
