package gateway

import (
	"context"
	"errors"
	"net/http"
	"net/url"
	"strconv"
	"strings"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/types"

	voicev1alpha1 "github.com/callfleet/callfleet/api/v1alpha1"
	"github.com/callfleet/callfleet/internal/streamtoken"
)

// Rejection reasons (the reason label of stream_rejections_total).
const (
	rejectMissing      = "missing_token"
	rejectMalformed    = "malformed"
	rejectBadSignature = "bad_signature"
	rejectExpired      = "expired"
	rejectMismatch     = "mismatch"        // call/attempt in the query differ from the token's
	rejectNamespace    = "wrong_namespace" // token for a namespace this gateway does not serve
	rejectUnknownCall  = "unknown_call"
	rejectEndpoint     = "wrong_endpoint" // the Call streams to another endpoint
	rejectStale        = "stale_attempt"  // not the Call's current attempt
	rejectDuplicate    = "duplicate"      // a socket is already open for this attempt
	rejectNotReady     = "not_ready"      // starting or shutting down
	rejectBot          = "bot_unavailable"
)

// rejection is a refusal before the upgrade: an HTTP status and a reason.
type rejection struct {
	status int
	reason string
}

func reject(status int, reason string) *rejection { return &rejection{status: status, reason: reason} }

// verifyToken checks the ws_url query: a valid, unexpired token for a Call
// of our namespace, matching the call and attempt named in clear. Bad
// credentials are 401; valid ones that do not grant this stream are 403.
func (g *Gateway) verifyToken(q url.Values) (streamtoken.Claims, *rejection) {
	tok := q.Get(streamtoken.ParamToken)
	if tok == "" {
		return streamtoken.Claims{}, reject(http.StatusUnauthorized, rejectMissing)
	}
	c, err := g.tokenKeys().Verify(tok, g.opts.Now())
	switch {
	case errors.Is(err, streamtoken.ErrExpired):
		return c, reject(http.StatusForbidden, rejectExpired)
	case errors.Is(err, streamtoken.ErrBadSignature):
		return c, reject(http.StatusUnauthorized, rejectBadSignature)
	case err != nil:
		return c, reject(http.StatusUnauthorized, rejectMalformed)
	}
	// The clear copies are for routing and logs; they must agree with what
	// was signed, or a log line could name a call the socket is not for.
	if cp := q.Get(streamtoken.ParamCall); cp != "" && cp != c.Namespace+"/"+c.Call {
		return c, reject(http.StatusForbidden, rejectMismatch)
	}
	if ap := q.Get(streamtoken.ParamAttempt); ap != "" && ap != strconv.Itoa(int(c.Attempt)) {
		return c, reject(http.StatusForbidden, rejectMismatch)
	}
	if c.Namespace != g.opts.Namespace {
		return c, reject(http.StatusForbidden, rejectNamespace)
	}
	return c, nil
}

// lookupCall finds the Call a verified token names and checks that this
// gateway serves it and that the attempt is the current one.
func (g *Gateway) lookupCall(ctx context.Context, c streamtoken.Claims) (*voicev1alpha1.Call, *rejection, error) {
	key := types.NamespacedName{Namespace: c.Namespace, Name: c.Call}
	call := &voicev1alpha1.Call{}
	err := g.client.Get(ctx, key, call)
	if err == nil && currentAttempt(call) < c.Attempt && g.apiReader != nil {
		// The controller records an attempt before dialing, but our cache may
		// not have seen that write yet: ask the apiserver before refusing.
		err = g.apiReader.Get(ctx, key, call)
	}
	if apierrors.IsNotFound(err) {
		return nil, reject(http.StatusNotFound, rejectUnknownCall), nil
	}
	if err != nil {
		return nil, nil, err
	}
	if !g.serves(call) {
		return nil, reject(http.StatusForbidden, rejectEndpoint), nil
	}
	if currentAttempt(call) != c.Attempt {
		return nil, reject(http.StatusForbidden, rejectStale), nil
	}
	return call, nil, nil
}

// currentAttempt is the number of the Call's last attempt (0 if none).
func currentAttempt(call *voicev1alpha1.Call) int32 {
	if n := len(call.Status.Attempts); n > 0 {
		return call.Status.Attempts[n-1].Number
	}
	return 0
}

// serves reports whether calls of this Call belong on this gateway.
func (g *Gateway) serves(call *voicev1alpha1.Call) bool {
	if ref := call.Spec.StreamEndpointRef; ref != nil {
		return g.opts.Endpoint == "" || ref.Name == g.opts.Endpoint
	}
	if u := call.Spec.Stream.URL; u != "" {
		if g.opts.PublicURL != "" {
			return underURL(u, g.opts.PublicURL)
		}
		return g.opts.Endpoint == ""
	}
	return false
}

// underURL reports whether u is base or below it, ignoring queries.
func underURL(u, base string) bool {
	pu, err1 := url.Parse(u)
	pb, err2 := url.Parse(base)
	if err1 != nil || err2 != nil {
		return false
	}
	if !strings.EqualFold(pu.Scheme, pb.Scheme) || !strings.EqualFold(pu.Host, pb.Host) {
		return false
	}
	bp := strings.TrimSuffix(pb.Path, "/")
	return pu.Path == bp || pu.Path == bp+"/" || strings.HasPrefix(pu.Path, bp+"/") || bp == ""
}
