package account

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"testing"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/client/fake"

	voicev1alpha1 "github.com/callfleet/callfleet/api/v1alpha1"
	"github.com/callfleet/callfleet/internal/scheme"
)

// TestResolveGeneration: the keys of a Secret choose its generation, and a
// Secret mixing both is refused rather than guessed at.
func TestResolveGeneration(t *testing.T) {
	objs := []client.Object{
		secret("v2", map[string]string{KeyAppID: "4242001", KeySecret: "s"}),
		secret("v3", map[string]string{KeyToken: "tok-xyz", KeyAppID: "app-7", KeyFrom: "918000000001"}),
		secret("v3-no-app", map[string]string{KeyToken: "tok-xyz"}),
		secret("both", map[string]string{KeyToken: "tok-xyz", KeySecret: "s", KeyAppID: "1"}),
		secret("empty-token", map[string]string{KeyToken: " "}),
	}
	c := fake.NewClientBuilder().WithScheme(scheme.New()).WithObjects(objs...).Build()
	cases := []struct {
		name    string
		want    Generation
		appID   string
		wantErr error
	}{
		{"v2", GenerationV2, "", nil},
		{"v3", GenerationV3, "app-7", nil},
		{"v3-no-app", GenerationV3, "", nil},
		{"both", "", "", ErrInvalid},
		{"empty-token", "", "", ErrInvalid},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			r := &Resolver{Reader: c}
			call := &voicev1alpha1.Call{ObjectMeta: metav1.ObjectMeta{Namespace: "ns"}}
			call.Spec.AccountRef = &voicev1alpha1.SecretRef{Name: tc.name}
			acct, err := r.Resolve(context.Background(), call)
			if !errors.Is(err, tc.wantErr) || (err != nil) != (tc.wantErr != nil) {
				t.Fatalf("err = %v, want %v", err, tc.wantErr)
			}
			if err != nil {
				return
			}
			if acct.Generation != tc.want || acct.V3.AppID != tc.appID {
				t.Fatalf("got %s app %q, want %s app %q", acct.Generation, acct.V3.AppID, tc.want, tc.appID)
			}
			for _, s := range []string{fmt.Sprint(acct), fmt.Sprintf("%+v", acct), fmt.Sprintf("%#v", *acct), fmt.Sprint(acct.V3)} {
				if strings.Contains(s, "tok-xyz") {
					t.Fatalf("token printed: %s", s)
				}
			}
		})
	}
}
