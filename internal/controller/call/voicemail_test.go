package call_test

import (
	"context"
	"testing"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"sigs.k8s.io/controller-runtime/pkg/client"

	voicev1alpha1 "github.com/callfleet/callfleet/api/v1alpha1"
)

// reportVoicemail does what the gateway does when the bot hears a
// voicemail box: once the call is answered, it records
// status.stream.voicemailTime and then ends the call (here through
// spec.hangup, the gateway sends a hangup frame).
func reportVoicemail(t *testing.T, ns, name string) {
	t.Helper()
	ctx := context.Background()
	waitForPhase(t, ns, name, 90*time.Second, voicev1alpha1.CallInProgress)
	c := &voicev1alpha1.Call{}
	if err := k8s.Get(ctx, types.NamespacedName{Namespace: ns, Name: name}, c); err != nil {
		t.Fatal(err)
	}
	patch := []byte(`{"status":{"stream":{"voicemailTime":"` + metav1.Now().UTC().Format(time.RFC3339) + `"}}}`)
	if err := k8s.Status().Patch(ctx, c, client.RawPatch(types.MergePatchType, patch)); err != nil {
		t.Fatal(err)
	}
	orig := c.DeepCopy()
	c.Spec.Hangup = true
	if err := k8s.Patch(ctx, c, client.MergeFrom(orig)); err != nil {
		t.Fatal(err)
	}
}
