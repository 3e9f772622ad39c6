// Package scheme builds the runtime.Scheme every callfleet binary uses.
package scheme

import (
	"k8s.io/apimachinery/pkg/runtime"
	clientgoscheme "k8s.io/client-go/kubernetes/scheme"

	voicev1alpha1 "github.com/callfleet/callfleet/api/v1alpha1"
)

// New returns a scheme with client-go's built-in types and callfleet's.
func New() *runtime.Scheme {
	s := runtime.NewScheme()
	if err := clientgoscheme.AddToScheme(s); err != nil {
		panic(err)
	}
	if err := voicev1alpha1.AddToScheme(s); err != nil {
		panic(err)
	}
	return s
}
