package streamendpoint

import (
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"strings"
	"time"

	voicev1alpha1 "github.com/callfleet/callfleet/api/v1alpha1"
)

const (
	// healthTimeout bounds one health check; a handler slower than this to
	// say it is healthy is not one to send calls to.
	healthTimeout = 2 * time.Second
	// healthyInterval and unhealthyInterval pace the health checks. Nothing
	// in the cluster changes when an external handler comes or goes, so
	// polling is the only way to notice; a handler coming back is noticed
	// sooner because Calls are waiting for it.
	healthyInterval   = 10 * time.Second
	unhealthyInterval = 2 * time.Second
)

// Messages of the Ready condition of an external endpoint. They are the
// same whatever the health URL answered: the status is readable by the
// endpoint's tenant, and what a URL answers (a version banner, a 403 from
// a metadata service, "connection refused") would make the controller a
// scanner of the network it runs in. The manager's log has the detail.
const (
	healthyMessage   = "the health URL answered 2xx"
	unhealthyMessage = "the health URL did not answer 2xx within 2s"
)

// healthResult is the outcome of one health check.
type healthResult struct {
	healthy bool
	// message is for the Ready condition: one of the two above.
	message string
	// detail says what happened, for the manager's log only.
	detail string
}

// checkHealth GETs healthURL: healthy on a 2xx answer within healthTimeout.
// Redirects are not followed: they could lead anywhere.
func checkHealth(ctx context.Context, c *http.Client, healthURL string) healthResult {
	ctx, cancel := context.WithTimeout(ctx, healthTimeout)
	defer cancel()
	bad := func(format string, args ...any) healthResult {
		return healthResult{message: unhealthyMessage, detail: fmt.Sprintf(format, args...)}
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, healthURL, nil)
	if err != nil {
		return bad("health check: %v", err)
	}
	req.Header.Set("User-Agent", "callfleet-streamendpoint-controller")
	noRedirects := *c
	noRedirects.CheckRedirect = func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }
	resp, err := noRedirects.Do(req)
	if err != nil {
		// err is a *url.Error: it names the method and the URL, without
		// its password.
		return bad("health check failed: %v", err)
	}
	defer func() { _ = resp.Body.Close() }()
	// Drain a little so the connection can be reused by the next check.
	_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, 4<<10))
	detail := fmt.Sprintf("health check GET %s answered %s", req.URL.Redacted(), resp.Status)
	if resp.StatusCode < 200 || resp.StatusCode > 299 {
		return bad("%s", detail)
	}
	return healthResult{healthy: true, message: healthyMessage, detail: detail}
}

// healthURLAllowed says whether the controller may GET healthURL for ep: only
// the host Piopiy is sent to anyway (publicURL's), or a Service of the
// endpoint's own namespace. Anything else (loopback, the cluster's other
// namespaces, a cloud metadata address) is the manager's network, not the
// tenant's handler.
func healthURLAllowed(ep *voicev1alpha1.StreamEndpoint) error {
	hu, err := url.Parse(ep.Spec.External.HealthURL)
	if err != nil {
		return fmt.Errorf("spec.external.healthURL: %w", err)
	}
	host := strings.ToLower(strings.TrimSuffix(hu.Hostname(), "."))
	if ip := net.ParseIP(host); ip != nil && (ip.IsLinkLocalUnicast() || ip.IsLinkLocalMulticast() || ip.IsUnspecified()) {
		return fmt.Errorf("spec.external.healthURL host %s is a link-local or unspecified address", host)
	}
	if pu, err := url.Parse(ep.Spec.PublicURL); err == nil && host != "" &&
		host == strings.ToLower(strings.TrimSuffix(pu.Hostname(), ".")) {
		return nil
	}
	for _, suffix := range []string{"." + ep.Namespace + ".svc", "." + ep.Namespace + ".svc.cluster.local"} {
		if svc, ok := strings.CutSuffix(host, suffix); ok && svc != "" && !strings.Contains(svc, ".") {
			return nil
		}
	}
	return fmt.Errorf("spec.external.healthURL host %q is neither spec.publicURL's host nor a Service of namespace %s (<service>.%s.svc)", hu.Hostname(), ep.Namespace, ep.Namespace)
}
