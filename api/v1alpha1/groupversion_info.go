// Package v1alpha1 contains the callfleet API: Call, StreamEndpoint,
// AgentPool and Campaign in the voice.callfleet.dev group.
//
// All validation is OpenAPI + CEL in the CRDs (no admission webhooks), so the
// types work with `kubectl apply --dry-run=server` and GitOps diff tools.
//
// +kubebuilder:object:generate=true
// +groupName=voice.callfleet.dev
package v1alpha1

import (
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"
)

var (
	// GroupVersion is the group version used to register these objects.
	GroupVersion = schema.GroupVersion{Group: "voice.callfleet.dev", Version: "v1alpha1"}

	// SchemeBuilder adds the Go types to a scheme. It is apimachinery's
	// (controller-runtime's scheme.Builder is deprecated for API packages,
	// which should not depend on controller-runtime).
	SchemeBuilder runtime.SchemeBuilder
)

// AddToScheme adds the types in this group-version to the given scheme. It
// reads SchemeBuilder when called, so it sees what the types' init functions
// registered (a method value taken at package initialisation would not).
func AddToScheme(s *runtime.Scheme) error { return SchemeBuilder.AddToScheme(s) }

// register adds objects to SchemeBuilder in GroupVersion, as
// controller-runtime's scheme.Builder.Register did.
func register(objects ...runtime.Object) {
	SchemeBuilder.Register(func(s *runtime.Scheme) error {
		s.AddKnownTypes(GroupVersion, objects...)
		metav1.AddToGroupVersion(s, GroupVersion)
		return nil
	})
}
