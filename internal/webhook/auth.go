package webhook

import (
	"context"
	"crypto/subtle"
	"errors"
	"net/http"
	"strings"

	"k8s.io/apimachinery/pkg/types"
	"k8s.io/apimachinery/pkg/util/validation"

	voicev1alpha1 "github.com/callfleet/callfleet/api/v1alpha1"
	"github.com/callfleet/callfleet/internal/account"
	"github.com/callfleet/callfleet/internal/callstate"
	"github.com/callfleet/callfleet/pkg/piopiy"
)

// refused is the result of an authenticated webhook naming a Call its URL
// may not touch: another account's Call, another app's id, or (on the global
// URL) a Call whose account has a URL of its own.
const refused callstate.Result = "refused"

// scope is what the URL a webhook came in on proves about its sender.
type scope struct {
	// account is the account whose URL it was; nil for the global URL.
	account *account.Account
}

func (sc scope) String() string {
	if sc.account == nil {
		return "global"
	}
	return sc.account.Source
}

// authenticate checks the URL's token and returns who sent the webhook, or
// the HTTP status to refuse it with.
func (rc *Receiver) authenticate(ctx context.Context, path string) (scope, int) {
	if rest, ok := strings.CutPrefix(path, AccountPathPrefix); ok && rc.Accounts != nil {
		parts := strings.Split(rest, "/")
		if len(parts) != 3 || len(validation.IsDNS1123Label(parts[0])) > 0 || len(validation.IsDNS1123Subdomain(parts[1])) > 0 {
			return scope{}, http.StatusUnauthorized
		}
		acct, err := rc.Accounts.Lookup(ctx, types.NamespacedName{Namespace: parts[0], Name: parts[1]})
		switch {
		case errors.Is(err, account.ErrNotFound), errors.Is(err, account.ErrInvalid):
			// The same answer as a wrong token: a stranger learns nothing
			// about which Secrets exist.
			return scope{}, http.StatusUnauthorized
		case err != nil:
			return scope{}, http.StatusServiceUnavailable
		}
		for _, want := range acct.WebhookTokens {
			if subtle.ConstantTimeCompare([]byte(parts[2]), []byte(want)) == 1 {
				return scope{account: acct}, http.StatusOK
			}
		}
		return scope{}, http.StatusUnauthorized
	}
	token, ok := strings.CutPrefix(path, PathPrefix)
	if !ok || rc.Token == "" || subtle.ConstantTimeCompare([]byte(token), []byte(rc.Token)) != 1 {
		return scope{}, http.StatusUnauthorized
	}
	return scope{}, http.StatusOK
}

// permitted says whether a webhook that came in on sc may change call: the
// Call must dial with the URL's account (or, on the global URL, with an
// account that has no URL of its own), and the webhook's appid must be that
// account's.
func (rc *Receiver) permitted(ctx context.Context, sc scope, call *voicev1alpha1.Call, wh *piopiy.Webhook) (callstate.Result, error) {
	if rc.Accounts == nil {
		return "", nil
	}
	key := rc.Accounts.KeyFor(call)
	acct := sc.account
	if acct == nil {
		var err error
		acct, err = rc.Accounts.Lookup(ctx, key)
		if errors.Is(err, account.ErrNotFound) || errors.Is(err, account.ErrInvalid) {
			// Without the account there is no appid to check against.
			return refused, nil
		}
		if err != nil {
			return "", err
		}
		if len(acct.WebhookTokens) > 0 {
			return refused, nil
		}
	} else if acct.Key != key {
		return refused, nil
	}
	if appID(wh) != acct.Credentials.AppID {
		return refused, nil
	}
	return "", nil
}

// mayReach says whether a Call in namespace ns could belong to the URL's
// account, before anything is read: an account Secret serves the Calls of
// its own namespace, the default account those of every namespace.
func (sc scope) mayReach(ns string, accounts *account.Resolver) bool {
	if sc.account == nil || accounts == nil {
		return true
	}
	return sc.account.Key.Namespace == ns || sc.account.Key == accounts.Default
}

func appID(wh *piopiy.Webhook) int64 {
	if wh.Event != nil {
		return wh.Event.AppID
	}
	return wh.CDR.AppID
}
