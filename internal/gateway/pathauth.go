package gateway

import (
	"net/http"
	"net/url"

	"github.com/callfleet/callfleet/internal/streamtoken"
)

// verifyStreamURL authenticates a stream request by its URL, whichever
// form carries the token (see streamtoken.PathSegment).
func (g *Gateway) verifyStreamURL(u *url.URL) (streamtoken.Claims, *rejection) {
	q, rej := streamQuery(u)
	if rej != nil {
		return streamtoken.Claims{}, rej
	}
	return g.verifyToken(q)
}

// streamQuery is the ws_url's parameters as the gateway authenticates them:
// the query, with the token taken from the path (/s/<token>) when the
// platform dropped the query. A path and a query that carry different
// tokens are refused: one of them was not ours.
func streamQuery(u *url.URL) (url.Values, *rejection) {
	q := u.Query()
	tok, ok := streamtoken.FromPath(u.Path)
	if !ok {
		return q, nil
	}
	if qt := q.Get(streamtoken.ParamToken); qt != "" && qt != tok {
		return q, reject(http.StatusForbidden, rejectMismatch)
	}
	q.Set(streamtoken.ParamToken, tok)
	return q, nil
}
