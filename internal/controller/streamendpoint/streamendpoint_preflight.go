package streamendpoint

import (
	"fmt"
	"strings"
	"time"

	"k8s.io/apimachinery/pkg/util/validation"

	voicev1alpha1 "github.com/callfleet/callfleet/api/v1alpha1"
)

// stalledError is a problem that retrying cannot fix: the spec, or an object
// in the way, has to change first. It sets Stalled=True with its reason.
type stalledError struct {
	reason  string
	message string
	// recheckAfter, when set, looks again later: for problems outside the
	// endpoint's spec (an object in the way) that no watch reports fixed.
	recheckAfter time.Duration
}

func (e *stalledError) Error() string { return e.message }

func stalled(reason, format string, args ...any) *stalledError {
	return &stalledError{reason: reason, message: fmt.Sprintf(format, args...)}
}

// preflightManaged checks what the CRD's validation cannot see before
// anything is created: a spec failing here would produce objects the
// apiserver rejects or pods that can never start.
func preflightManaged(ep *voicev1alpha1.StreamEndpoint, defaultGatewayImage string) error {
	// The name becomes a Service name and label values: a DNS-1035 label.
	if errs := validation.IsDNS1035Label(ep.Name); len(errs) > 0 {
		return stalled(ReasonInvalidName, "name %q cannot name the endpoint's Service: %s", ep.Name, strings.Join(errs, "; "))
	}
	if ep.Spec.Image == "" {
		return stalled(ReasonInvalidSpec, "spec.image is empty: set the bot image, or spec.external for a handler run elsewhere")
	}
	if gatewayEnabled(ep) {
		if ep.Spec.Gateway.Image == "" && defaultGatewayImage == "" {
			return stalled(ReasonMissingGatewayImage, "no gateway image: set spec.gateway.image, or start the manager with a default gateway image")
		}
		// The containers share the pod's network namespace.
		ports := []struct {
			field string
			port  int32
		}{
			{"spec.port", botPort(ep)},
			{"spec.gateway.port", gatewayPort(ep)},
			{"the gateway's metrics port", metricsPort},
		}
		for i := range ports {
			for j := i + 1; j < len(ports); j++ {
				if ports[i].port == ports[j].port {
					return stalled(ReasonPortConflict, "%s and %s are both %d: the bot and the gateway share the pod's network", ports[i].field, ports[j].field, ports[i].port)
				}
			}
		}
	}
	if ep.Spec.Ingress != nil {
		if _, err := parsePublicURL(ep.Spec.PublicURL); err != nil {
			return stalled(ReasonInvalidPublicURL, "spec.ingress needs a ws:// or wss:// spec.publicURL with a host to route: %v", err)
		}
	}
	return nil
}

// preflightExternal checks an external endpoint: callfleet cannot derive a URL
// for a handler it does not run.
func preflightExternal(ep *voicev1alpha1.StreamEndpoint) error {
	if ep.Spec.PublicURL == "" {
		return stalled(ReasonMissingPublicURL, "spec.external needs spec.publicURL: the ws:// or wss:// URL at which Piopiy reaches the handler")
	}
	if err := healthURLAllowed(ep); err != nil {
		return stalled(ReasonHealthURLNotAllowed, "%v", err)
	}
	return nil
}
