package console

import (
	"bytes"
	"errors"
	"testing"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	voicev1alpha1 "github.com/callfleet/callfleet/api/v1alpha1"
	"github.com/callfleet/callfleet/internal/monitortoken"
)

// TestMonitorKeyPerEndpoint: the console signs a Call's monitor token with
// the key derived for the Call's namespace and StreamEndpoint, the key the
// manager gives that endpoint's gateway: the token verifies there, and is
// refused by a gateway of the same endpoint name in another namespace, by
// another endpoint's gateway, and by anything holding only the root. A Call
// with no streamEndpointRef gets no token (no endpoint to derive for).
func TestMonitorKeyPerEndpoint(t *testing.T) {
	root := bytes.Repeat([]byte("r"), 32)
	c := &Console{opts: Options{MonitorRootKey: root}}
	now := time.Unix(1_800_000_000, 0)
	call := &voicev1alpha1.Call{ObjectMeta: metav1.ObjectMeta{Namespace: "tenant-a", Name: "alice"}}
	call.Spec.StreamEndpointRef = &voicev1alpha1.LocalRef{Name: "bots"}

	key, err := c.monitorKey(call)
	if err != nil {
		t.Fatal(err)
	}
	tok, err := monitortoken.Sign(key, monitortoken.Claims{Namespace: "tenant-a", Call: "alice", User: "sup", Expires: now.Add(time.Minute)})
	if err != nil {
		t.Fatal(err)
	}
	gatewayKey := func(ns, ep string) []byte {
		k, err := monitortoken.DeriveKey(root, ns, ep)
		if err != nil {
			t.Fatal(err)
		}
		return k
	}
	if _, err := monitortoken.Verify(gatewayKey("tenant-a", "bots"), tok, now); err != nil {
		t.Errorf("tenant-a/bots's gateway refuses the token: %v", err)
	}
	for name, k := range map[string][]byte{
		"tenant-b/bots's gateway":  gatewayKey("tenant-b", "bots"),
		"tenant-a/other's gateway": gatewayKey("tenant-a", "other"),
		"the root":                 root,
	} {
		if _, err := monitortoken.Verify(k, tok, now); !errors.Is(err, monitortoken.ErrBadSignature) {
			t.Errorf("%s: %v, want ErrBadSignature", name, err)
		}
	}

	call.Spec.StreamEndpointRef = nil
	call.Spec.Stream.URL = "wss://bots.example.com/"
	if _, err := c.monitorKey(call); !errors.Is(err, errNotFound) {
		t.Errorf("Call without streamEndpointRef: %v, want errNotFound", err)
	}
}
