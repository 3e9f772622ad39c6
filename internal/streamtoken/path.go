package streamtoken

import (
	"fmt"
	"net/url"
	"strconv"
	"strings"
)

// PathSegment introduces the token in a stream URL's path: the URL
// <base>/s/<token> names and authenticates the stream by itself.
//
// Nothing public shows Piopiy keeping a ws_url's query string (every TeleCMI
// example dials a bare wss://host/path), so the token travels in the path
// as well as in the query: if the query is dropped the path still carries
// it, and where both arrive the gateway checks they agree. A token is
// base64url and '.', so it needs no escaping in a path.
const PathSegment = "s"

// FromPath returns the token of a path ending in /s/<token>.
func FromPath(path string) (string, bool) {
	rest, tok, ok := cutLast(path)
	if !ok || tok == "" {
		return "", false
	}
	_, seg, ok := cutLast(rest)
	if !ok || seg != PathSegment {
		return "", false
	}
	return tok, true
}

func cutLast(p string) (string, string, bool) {
	i := strings.LastIndexByte(p, '/')
	if i < 0 {
		return "", "", false
	}
	return p[:i], p[i+1:], true
}

// URL returns the ws_url of a stream: base with /s/<token> appended to its
// path and call, attempt and token in its query; and the same URL without
// the token, for status and logs.
func URL(base string, key []byte, c Claims) (full, shown string, err error) {
	u, err := url.Parse(base)
	if err != nil {
		return "", "", fmt.Errorf("stream URL %q: %w", base, err)
	}
	tok, err := Sign(key, c)
	if err != nil {
		return "", "", err
	}
	q := u.Query()
	q.Set(ParamCall, c.Namespace+"/"+c.Call)
	q.Set(ParamAttempt, strconv.Itoa(int(c.Attempt)))
	u.RawQuery = q.Encode()
	shown = u.String()
	q.Set(ParamToken, tok)
	u.RawQuery = q.Encode()
	u.Path = strings.TrimSuffix(u.Path, "/") + "/" + PathSegment + "/" + tok
	u.RawPath = ""
	return u.String(), shown, nil
}
