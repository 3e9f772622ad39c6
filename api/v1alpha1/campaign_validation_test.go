package v1alpha1_test

import (
	"context"
	"strings"
	"testing"

	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
)

// TestCampaignValidationRejectsNonsense: the Campaign's bad input of issue
// 12 is refused at apply time with a message a person understands.
func TestCampaignValidationRejectsNonsense(t *testing.T) {
	ns := namespace(t)
	const base = "kind: Campaign\nspec:\n  callTemplate: {spec: {streamEndpointRef: {name: bots}}}\n  contacts: [{number: \"919800000001\"}]\n"
	cases := []struct {
		name, doc, want string
	}{
		{"window end not after start", base + "  schedule: {windows: [{start: \"10:00\", end: \"10:00\"}]}", "start must be before its end"},
		{"unknown schedule zone", base + "  schedule: {timeZone: Mars/Olympus}", "timeZone must be an IANA time zone"},
		{"unknown contact zone", "kind: Campaign\nspec: {callTemplate: {spec: {streamEndpointRef: {name: bots}}}, contacts: [{number: \"919800000001\", timeZone: Atlantis/Capital}]}", "timeZone must be an IANA time zone"},
		{"Local is not a zone", base + "  schedule: {timeZone: Local}", "timeZone must be an IANA time zone"},
		{"deadline before start", base + "  schedule: {startTime: \"2026-06-10T09:00:00Z\", deadline: \"2026-06-09T09:00:00Z\"}", "schedule.deadline must be after schedule.startTime"},
		{"deadline not a time", base + "  schedule: {deadline: \"next week\"}", "spec.schedule.deadline"},
		{"blackout not a date", base + "  schedule: {blackoutDates: [\"25/12/2026\"]}", "spec.schedule.blackoutDates[0] in body should match"},
		{"retry for an unknown outcome", base + "  retry: {policies: [{outcome: Maybe}]}", `spec.retry.policies[0].outcome: Unsupported value: "Maybe"`},
		{"retry for Answered", base + "  retry: {policies: [{outcome: Answered}]}", "a retry policy is for NoAnswer, Busy, Failed or Voicemail"},
		{"two policies for one outcome", base + "  retry: {policies: [{outcome: Busy}, {outcome: Busy}]}", "Duplicate value"},
		{"retry maxAttempts too high", base + "  retry: {policies: [{outcome: Busy, maxAttempts: 11}]}", "should be less than or equal to 10"},
		{"bad stop mode", base + "  stop: true\n  stopMode: Now", `Unsupported value: "Now"`},
		{"contact id with a comma", "kind: Campaign\nspec: {callTemplate: {spec: {streamEndpointRef: {name: bots}}}, contacts: [{id: \"a,b\", number: \"919800000001\"}]}", "spec.contacts[0].id in body should match"},
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
	// Good ones pass, and stop cannot be undone.
	good := manifest(t, ns, "apiVersion: voice.callfleet.dev/v1alpha1\nmetadata: {name: good}\n"+base+
		"  schedule: {timeZone: Asia/Kolkata, startTime: \"2026-06-10T09:00:00+05:30\", deadline: \"2026-06-30T18:00:00+05:30\", blackoutDates: [\"2026-06-15\"]}\n"+
		"  retry: {policies: [{outcome: NoAnswer, delaySeconds: 1800, maxAttempts: 3}, {outcome: Voicemail, delaySeconds: 3600, maxAttempts: 2}]}\n  stop: true\n")
	if err := env.Client.Create(context.Background(), good); err != nil {
		t.Fatalf("a good Campaign was refused: %v", err)
	}
	if err := unstructured.SetNestedField(good.Object, false, "spec", "stop"); err != nil {
		t.Fatal(err)
	}
	if err := env.Client.Update(context.Background(), good); err == nil || !strings.Contains(err.Error(), "stop cannot be undone") {
		t.Fatalf("undoing stop: %v", err)
	}
}
