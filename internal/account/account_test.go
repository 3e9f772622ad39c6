package account

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/client/fake"

	voicev1alpha1 "github.com/callfleet/callfleet/api/v1alpha1"
	"github.com/callfleet/callfleet/internal/scheme"
)

func secret(name string, data map[string]string) *corev1.Secret {
	return &corev1.Secret{ObjectMeta: metav1.ObjectMeta{Namespace: "ns", Name: name}, StringData: data, Data: toBytes(data)}
}

func toBytes(m map[string]string) map[string][]byte {
	out := map[string][]byte{}
	for k, v := range m {
		out[k] = []byte(v)
	}
	return out
}

func TestResolve(t *testing.T) {
	objs := []client.Object{
		secret("good", map[string]string{KeyAppID: "4242001", KeySecret: "s", KeyFrom: "918000000001"}),
		secret("no-secret", map[string]string{KeyAppID: "4242001"}),
		secret("bad-appid", map[string]string{KeyAppID: "abc", KeySecret: "s"}),
		secret("bad-from", map[string]string{KeyAppID: "1", KeySecret: "s", KeyFrom: "+91"}),
	}
	c := fake.NewClientBuilder().WithScheme(scheme.New()).WithObjects(objs...).Build()
	cases := []struct {
		name    string
		ref     string
		def     string
		wantErr error
	}{
		{"accountRef", "good", "", nil},
		{"default", "", "good", nil},
		{"no ref, no default", "", "", ErrNotFound},
		{"missing Secret", "nope", "", ErrNotFound},
		{"no secret key", "no-secret", "", ErrInvalid},
		{"app id not a number", "bad-appid", "", ErrInvalid},
		{"from with plus", "bad-from", "", ErrInvalid},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			r := &Resolver{Reader: c}
			if tc.def != "" {
				r.Default = types.NamespacedName{Namespace: "ns", Name: tc.def}
			}
			call := &voicev1alpha1.Call{ObjectMeta: metav1.ObjectMeta{Namespace: "ns"}}
			if tc.ref != "" {
				call.Spec.AccountRef = &voicev1alpha1.SecretRef{Name: tc.ref}
			}
			acct, err := r.Resolve(context.Background(), call)
			if !errors.Is(err, tc.wantErr) {
				t.Fatalf("err = %v, want %v", err, tc.wantErr)
			}
			if err == nil && (acct.Credentials.AppID != 4242001 || acct.From != "918000000001") {
				t.Fatalf("account = %+v", acct)
			}
			if err != nil && strings.Contains(err.Error(), "\"s\"") {
				t.Fatalf("error leaks the secret: %v", err)
			}
		})
	}
}

func TestResolveCachesUntilTTL(t *testing.T) {
	c := fake.NewClientBuilder().WithScheme(scheme.New()).WithObjects(
		secret("good", map[string]string{KeyAppID: "1", KeySecret: "old"})).Build()
	now := time.Unix(0, 0)
	r := &Resolver{Reader: c, TTL: time.Minute, Now: func() time.Time { return now }}
	call := &voicev1alpha1.Call{ObjectMeta: metav1.ObjectMeta{Namespace: "ns"}, Spec: voicev1alpha1.CallSpec{CallParameters: voicev1alpha1.CallParameters{AccountRef: &voicev1alpha1.SecretRef{Name: "good"}}}}
	if _, err := r.Resolve(context.Background(), call); err != nil {
		t.Fatal(err)
	}
	s := &corev1.Secret{}
	_ = c.Get(context.Background(), types.NamespacedName{Namespace: "ns", Name: "good"}, s)
	s.Data[KeySecret] = []byte("rotated")
	_ = c.Update(context.Background(), s)
	if a, _ := r.Resolve(context.Background(), call); a.Credentials.Secret != "old" {
		t.Fatal("cached account not used within TTL")
	}
	now = now.Add(2 * time.Minute)
	if a, _ := r.Resolve(context.Background(), call); a.Credentials.Secret != "rotated" {
		t.Fatal("rotated Secret not read after TTL")
	}
}
