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
	"k8s.io/apimachinery/pkg/runtime/schema"
	"sigs.k8s.io/controller-runtime/pkg/scheme"
)

var (
	// GroupVersion is the group version used to register these objects.
	GroupVersion = schema.GroupVersion{Group: "voice.callfleet.dev", Version: "v1alpha1"}

	// SchemeBuilder adds the Go types to a scheme.
	SchemeBuilder = &scheme.Builder{GroupVersion: GroupVersion}

	// AddToScheme adds the types in this group-version to the given scheme.
	AddToScheme = SchemeBuilder.AddToScheme
)
