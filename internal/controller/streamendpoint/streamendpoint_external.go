package streamendpoint

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"time"
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

// healthResult is the outcome of one health check.
type healthResult struct {
	healthy bool
	// message is for the Ready condition. It holds nothing that changes from
	// one check to the next (no latencies), so an unchanged verdict does not
	// rewrite status.
	message string
}

// checkHealth GETs healthURL: healthy on a 2xx answer within healthTimeout.
func checkHealth(ctx context.Context, c *http.Client, healthURL string) healthResult {
	ctx, cancel := context.WithTimeout(ctx, healthTimeout)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, healthURL, nil)
	if err != nil {
		return healthResult{message: fmt.Sprintf("health check: %v", err)}
	}
	req.Header.Set("User-Agent", "callfleet-streamendpoint-controller")
	resp, err := c.Do(req)
	if err != nil {
		// err is a *url.Error: it names the method and the URL, without
		// its password.
		return healthResult{message: fmt.Sprintf("health check failed: %v", err)}
	}
	defer func() { _ = resp.Body.Close() }()
	// Drain a little so the connection can be reused by the next check.
	_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, 4<<10))
	// Redacted: status is readable by more people than the spec's author.
	msg := fmt.Sprintf("health check GET %s answered %s", req.URL.Redacted(), resp.Status)
	return healthResult{healthy: resp.StatusCode >= 200 && resp.StatusCode <= 299, message: msg}
}
