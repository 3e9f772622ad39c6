package notify

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"time"

	cloudevents "github.com/cloudevents/sdk-go/v2"
)

// Sink is a resolved destination: where to post and the key to sign with.
type Sink struct {
	URL string
	Key []byte
}

// RejectedError is a sink's 4xx answer (other than 408 and 429): sending
// the same event again would be refused again, so it is not retried.
type RejectedError struct{ Status int }

func (e *RejectedError) Error() string {
	return fmt.Sprintf("sink refused the event with HTTP %d", e.Status)
}

// IsRejected reports whether err is a permanent refusal by the sink.
func IsRejected(err error) bool {
	var r *RejectedError
	return errors.As(err, &r)
}

// Sender posts events in CloudEvents structured mode, signed.
type Sender struct {
	// HTTP is the client (default: one with a 10 s timeout).
	HTTP *http.Client
	// Now stamps signatures (tests).
	Now func() time.Time
}

// Send posts ev to sink once. A nil error means the sink answered 2xx.
func (s *Sender) Send(ctx context.Context, sink Sink, ev cloudevents.Event) error {
	body, err := json.Marshal(ev) // the SDK's structured JSON format
	if err != nil {
		return fmt.Errorf("encoding event %s: %w", ev.ID(), err)
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, sink.URL, bytes.NewReader(body))
	if err != nil {
		return &RejectedError{Status: 0}
	}
	now := time.Now
	if s.Now != nil {
		now = s.Now
	}
	req.Header.Set("Content-Type", contentTypeCloudEvents)
	req.Header.Set(SignatureHeader, Sign(sink.Key, body, now()))
	hc := s.HTTP
	if hc == nil {
		hc = defaultHTTP
	}
	resp, err := hc.Do(req)
	if err != nil {
		return fmt.Errorf("posting event %s: %w", ev.ID(), err)
	}
	_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, 64<<10))
	_ = resp.Body.Close()
	switch c := resp.StatusCode; {
	case c >= 200 && c < 300:
		return nil
	case c >= 400 && c < 500 && c != http.StatusRequestTimeout && c != http.StatusTooManyRequests:
		return &RejectedError{Status: c}
	default:
		return fmt.Errorf("posting event %s: sink answered HTTP %d", ev.ID(), c)
	}
}

var defaultHTTP = &http.Client{Timeout: 10 * time.Second}
