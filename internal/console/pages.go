package console

import (
	"encoding/json"
	"fmt"
	"html/template"
	"net/http"
	"net/url"
	"path"
	"slices"
	"strings"
	"time"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/apimachinery/pkg/util/validation"
	"sigs.k8s.io/controller-runtime/pkg/client"

	voicev1alpha1 "github.com/callfleet/callfleet/api/v1alpha1"
	"github.com/callfleet/callfleet/internal/controller/campaign"
	"github.com/callfleet/callfleet/internal/monitortoken"
)

var funcs = template.FuncMap{
	"since": func(t *time.Time) string {
		if t == nil {
			return ""
		}
		return time.Since(*t).Round(time.Second).String()
	},
	"rfc3339": func(t *time.Time) string {
		if t == nil {
			return ""
		}
		return t.UTC().Format(time.RFC3339)
	},
}

// Page is what every page template gets.
type Page struct {
	User      string
	Namespace string
	CSRF      string
}

func (c *Console) page(u User, ns string) Page {
	p := Page{User: u.Name, Namespace: ns}
	if u.session != "" {
		p.CSRF = c.sess.csrfToken(u.session)
	}
	return p
}

type loginData struct {
	Error     string
	Namespace string
}

type errorData struct {
	Status  int
	Message string
}

func (c *Console) index(w http.ResponseWriter, r *http.Request) {
	if _, err := c.user(r); err == nil {
		if ns := r.URL.Query().Get("ns"); validNamespace(ns) {
			http.Redirect(w, r, "/ns/"+ns, http.StatusSeeOther)
			return
		}
	}
	ns := r.URL.Query().Get("ns")
	if !validNamespace(ns) {
		ns = "default"
	}
	c.render(w, r, http.StatusOK, "login.html", loginData{Namespace: ns})
}

// login checks the pasted token with a TokenReview and sets the sealed
// cookie. The form is same-origin only (SameSite cookies and the check of
// Sec-Fetch-Site/Origin), so no site can sign a browser in as someone else.
func (c *Console) login(w http.ResponseWriter, r *http.Request) {
	if site := r.Header.Get("Sec-Fetch-Site"); site != "" && site != "same-origin" && site != "none" {
		c.fail(w, r, fmt.Errorf("%w: cross-site sign-in", ErrForbidden))
		return
	}
	tok := strings.TrimSpace(r.PostFormValue("token"))
	ns := strings.TrimSpace(r.PostFormValue("namespace"))
	if !validNamespace(ns) {
		c.render(w, r, http.StatusBadRequest, "login.html", loginData{Error: "Name a namespace.", Namespace: ns})
		return
	}
	if _, err := c.rev.Authenticate(r.Context(), tok); err != nil {
		c.log.Info("sign-in refused", "remote", r.RemoteAddr)
		c.render(w, r, http.StatusUnauthorized, "login.html", loginData{Error: "That token was not accepted by the cluster.", Namespace: ns})
		return
	}
	ck, err := c.sess.seal(tok, c.opts.Now())
	if err != nil {
		c.fail(w, r, err)
		return
	}
	ck.Secure = ck.Secure || tlsRequest(r)
	http.SetCookie(w, ck)
	http.Redirect(w, r, "/ns/"+ns, http.StatusSeeOther)
}

func tlsRequest(r *http.Request) bool {
	return r.TLS != nil || r.Header.Get("X-Forwarded-Proto") == "https"
}

func (c *Console) logout(w http.ResponseWriter, r *http.Request) {
	if u, err := c.user(r); err == nil {
		if err := c.sess.checkCSRF(r, u); err != nil {
			c.fail(w, r, err)
			return
		}
	}
	http.SetCookie(w, c.sess.clear())
	http.Redirect(w, r, "/", http.StatusSeeOther)
}

func validNamespace(ns string) bool { return ns != "" && len(validation.IsDNS1123Label(ns)) == 0 }

// target reads and checks the namespace and name in the path.
func (c *Console) target(r *http.Request) (types.NamespacedName, error) {
	nn := types.NamespacedName{Namespace: r.PathValue("ns"), Name: r.PathValue("name")}
	if !validNamespace(nn.Namespace) || (r.PathValue("name") != "" && len(validation.IsDNS1123Subdomain(nn.Name)) > 0) {
		return nn, fmt.Errorf("%w: not a namespace and name", errBadRequest)
	}
	if len(c.opts.Namespaces) > 0 && !slices.Contains(c.opts.Namespaces, nn.Namespace) {
		return nn, fmt.Errorf("%w: this console does not watch namespace %s", errNotFound, nn.Namespace)
	}
	return nn, nil
}

type boardData struct {
	Page
	Calls     []CallRow
	Campaigns []CampaignRow
}

func (c *Console) boardPage(w http.ResponseWriter, r *http.Request, u User) {
	nn, err := c.target(r)
	if err == nil {
		err = c.rev.Authorize(r.Context(), u, Access{Verb: "list", Resource: "calls", Namespace: nn.Namespace})
	}
	if err != nil {
		c.fail(w, r, err)
		return
	}
	d := boardData{Page: c.page(u, nn.Namespace)}
	var calls voicev1alpha1.CallList
	if err := c.cache.List(r.Context(), &calls, client.InNamespace(nn.Namespace)); err != nil {
		c.fail(w, r, err)
		return
	}
	for i := range calls.Items {
		d.Calls = append(d.Calls, callRow(&calls.Items[i]))
	}
	slices.SortFunc(d.Calls, func(a, b CallRow) int { return strings.Compare(a.Name, b.Name) })
	if c.rev.Authorize(r.Context(), u, Access{Verb: "list", Resource: "campaigns", Namespace: nn.Namespace}) == nil {
		var camps voicev1alpha1.CampaignList
		if err := c.cache.List(r.Context(), &camps, client.InNamespace(nn.Namespace)); err == nil {
			for i := range camps.Items {
				d.Campaigns = append(d.Campaigns, campaignRow(&camps.Items[i]))
			}
		}
	}
	c.render(w, r, http.StatusOK, "board.html", d)
}

// events streams the namespace's Call (and, when allowed, Campaign) rows as
// Server-Sent Events: a snapshot, then every change the watch sees.
func (c *Console) events(w http.ResponseWriter, r *http.Request, u User) {
	nn, err := c.target(r)
	ctx := r.Context()
	for _, verb := range []string{"list", "watch"} {
		if err == nil {
			err = c.rev.Authorize(ctx, u, Access{Verb: verb, Resource: "calls", Namespace: nn.Namespace})
		}
	}
	if err != nil {
		c.fail(w, r, err)
		return
	}
	campaigns := c.rev.Authorize(ctx, u, Access{Verb: "list", Resource: "campaigns", Namespace: nn.Namespace}) == nil
	fl, ok := w.(http.Flusher)
	if !ok {
		c.fail(w, r, fmt.Errorf("streaming unsupported"))
		return
	}
	// Subscribe before the snapshot: a change between the two is sent
	// twice, never lost.
	sub := c.board.subscribe(nn.Namespace)
	defer c.board.unsubscribe(nn.Namespace, sub)
	var calls voicev1alpha1.CallList
	if err := c.cache.List(ctx, &calls, client.InNamespace(nn.Namespace)); err != nil {
		c.fail(w, r, err)
		return
	}
	h := w.Header()
	h.Set("Content-Type", "text/event-stream")
	h.Set("X-Accel-Buffering", "no")
	w.WriteHeader(http.StatusOK)
	send := func(e event) bool {
		if e.name == "campaign" && !campaigns {
			return true
		}
		_, err := fmt.Fprintf(w, "event: %s\ndata: %s\n\n", e.name, e.data)
		return err == nil
	}
	_, _ = fmt.Fprint(w, "retry: 1000\n\n")
	for i := range calls.Items {
		send(newEvent("call", callRow(&calls.Items[i])))
	}
	if campaigns {
		var camps voicev1alpha1.CampaignList
		if c.cache.List(ctx, &camps, client.InNamespace(nn.Namespace)) == nil {
			for i := range camps.Items {
				send(newEvent("campaign", campaignRow(&camps.Items[i])))
			}
		}
	}
	fl.Flush()

	end := time.NewTimer(c.streamTTL(u))
	defer end.Stop()
	beat := time.NewTicker(15 * time.Second)
	defer beat.Stop()
	for {
		select {
		case e := <-sub.ch:
			if !send(e) {
				return
			}
			fl.Flush()
		case <-beat.C:
			if _, err := fmt.Fprint(w, ": keepalive\n\n"); err != nil {
				return
			}
			fl.Flush()
		case <-sub.gone:
			return // too slow: the browser reconnects for a fresh snapshot
		case <-end.C:
			return // reconnects, authenticated and authorized again
		case <-ctx.Done():
			return
		}
	}
}

func (c *Console) streamTTL(u User) time.Duration {
	d := c.opts.StreamTTL
	if !u.expires.IsZero() {
		d = min(d, u.expires.Sub(c.opts.Now()))
	}
	return max(d, time.Second)
}

type callData struct {
	Page
	Call      *voicev1alpha1.Call
	Row       CallRow
	Pools     []string
	Monitor   bool
	Done      string
	Campaign  string
	HasResult bool
}

func (c *Console) callPage(w http.ResponseWriter, r *http.Request, u User) {
	nn, err := c.target(r)
	if err == nil {
		err = c.rev.Authorize(r.Context(), u, Access{Verb: "get", Resource: "calls", Namespace: nn.Namespace, Name: nn.Name})
	}
	call := &voicev1alpha1.Call{}
	if err == nil {
		err = c.getCall(r, nn, call)
	}
	if err != nil {
		c.fail(w, r, err)
		return
	}
	d := callData{Page: c.page(u, nn.Namespace), Call: call, Row: callRow(call), Done: r.URL.Query().Get("done"),
		Campaign: call.Labels[voicev1alpha1.LabelCampaign], HasResult: call.Status.Result != nil}
	// Listen-in goes to the gateway of the Call's StreamEndpoint, the only
	// one holding the key the token is signed with.
	d.Monitor = c.opts.MonitorRootKey != nil && call.Spec.StreamEndpointRef != nil &&
		c.rev.Authorize(r.Context(), u, Access{Verb: "get", Resource: "calls", Subresource: "monitor", Namespace: nn.Namespace, Name: nn.Name}) == nil
	if c.rev.Authorize(r.Context(), u, Access{Verb: "list", Resource: "agentpools", Namespace: nn.Namespace}) == nil {
		var pools voicev1alpha1.AgentPoolList
		if c.cache.List(r.Context(), &pools, client.InNamespace(nn.Namespace)) == nil {
			for _, p := range pools.Items {
				d.Pools = append(d.Pools, p.Name)
			}
			slices.Sort(d.Pools)
		}
	}
	c.render(w, r, http.StatusOK, "call.html", d)
}

func (c *Console) getCall(r *http.Request, nn types.NamespacedName, call *voicev1alpha1.Call) error {
	err := c.cache.Get(r.Context(), nn, call)
	if apierrors.IsNotFound(err) {
		return fmt.Errorf("%w: no Call %s", errNotFound, nn)
	}
	return err
}

type campaignData struct {
	Page
	Campaign *voicev1alpha1.Campaign
	Row      CampaignRow
	Calls    []CallRow
}

func (c *Console) campaignPage(w http.ResponseWriter, r *http.Request, u User) {
	nn, err := c.target(r)
	if err == nil {
		err = c.rev.Authorize(r.Context(), u, Access{Verb: "get", Resource: "campaigns", Namespace: nn.Namespace, Name: nn.Name})
	}
	camp := &voicev1alpha1.Campaign{}
	if err == nil {
		if err = c.cache.Get(r.Context(), nn, camp); apierrors.IsNotFound(err) {
			err = fmt.Errorf("%w: no Campaign %s", errNotFound, nn)
		}
	}
	if err != nil {
		c.fail(w, r, err)
		return
	}
	d := campaignData{Page: c.page(u, nn.Namespace), Campaign: camp, Row: campaignRow(camp)}
	if c.rev.Authorize(r.Context(), u, Access{Verb: "list", Resource: "calls", Namespace: nn.Namespace}) == nil {
		var calls voicev1alpha1.CallList
		if c.cache.List(r.Context(), &calls, client.InNamespace(nn.Namespace)) == nil {
			for i := range calls.Items {
				if row := callRow(&calls.Items[i]); row.Campaign == campaign.LabelValue(nn.Name) {
					d.Calls = append(d.Calls, row)
				}
			}
			slices.SortFunc(d.Calls, func(a, b CallRow) int { return strings.Compare(a.Name, b.Name) })
		}
	}
	c.render(w, r, http.StatusOK, "campaign.html", d)
}

// monitorToken signs a monitor token for this user and Call, once the
// cluster allows the user "get" on calls/monitor, and returns the URL of
// the gateway socket to open with it.
func (c *Console) monitorToken(w http.ResponseWriter, r *http.Request, u User) {
	nn, err := c.target(r)
	if err == nil && c.opts.MonitorRootKey == nil {
		err = fmt.Errorf("%w: listen-in is not configured", errNotFound)
	}
	if err == nil {
		err = c.rev.Authorize(r.Context(), u, Access{Verb: "get", Resource: "calls", Subresource: "monitor", Namespace: nn.Namespace, Name: nn.Name})
	}
	call := &voicev1alpha1.Call{}
	if err == nil {
		err = c.getCall(r, nn, call)
	}
	var base string
	if err == nil {
		base, err = c.gatewayURL(r, call)
	}
	var key []byte
	if err == nil {
		key, err = c.monitorKey(call)
	}
	var tok string
	if err == nil {
		tok, err = monitortoken.Sign(key, monitortoken.Claims{
			Namespace: nn.Namespace, Call: nn.Name, User: u.Name, Expires: c.opts.Now().Add(c.opts.MonitorTTL),
		})
	}
	if err != nil {
		c.fail(w, r, err)
		return
	}
	u2, _ := url.Parse(base)
	u2.Path = path.Join("/", u2.Path, "monitor", nn.Namespace, nn.Name)
	u2.RawQuery = url.Values{monitortoken.ParamToken: {tok}}.Encode()
	c.log.Info("monitor token issued", "user", u.Name, "call", nn.String())
	w.Header().Set("Content-Type", "application/json")
	_ = json.NewEncoder(w).Encode(map[string]string{"url": u2.String()})
}

// monitorKey is the key the gateway serving call verifies monitor tokens
// with: the one derived for the Call's namespace and StreamEndpoint, as the
// manager derives it for that endpoint's pods. A Call without a
// streamEndpointRef names no endpoint, so no key can be derived for it.
func (c *Console) monitorKey(call *voicev1alpha1.Call) ([]byte, error) {
	ref := call.Spec.StreamEndpointRef
	if ref == nil {
		return nil, fmt.Errorf("%w: listen-in needs the Call's streamEndpointRef (the monitor key is per StreamEndpoint)", errNotFound)
	}
	return monitortoken.DeriveKey(c.opts.MonitorRootKey, call.Namespace, ref.Name)
}

// gatewayURL is the ws(s) base of the gateway serving the Call: its
// StreamEndpoint's URL, else the Call's own stream URL.
func (c *Console) gatewayURL(r *http.Request, call *voicev1alpha1.Call) (string, error) {
	raw := call.Spec.Stream.URL
	if ref := call.Spec.StreamEndpointRef; ref != nil {
		ep := &voicev1alpha1.StreamEndpoint{}
		if err := c.cache.Get(r.Context(), types.NamespacedName{Namespace: call.Namespace, Name: ref.Name}, ep); err != nil {
			if apierrors.IsNotFound(err) {
				return "", fmt.Errorf("%w: StreamEndpoint %s", errNotFound, ref.Name)
			}
			return "", err
		}
		raw = ep.Status.URL
	}
	u, err := url.Parse(raw)
	if raw == "" || err != nil || (u.Scheme != "ws" && u.Scheme != "wss") {
		return "", fmt.Errorf("%w: the Call's stream has no gateway URL yet", errNotFound)
	}
	u.RawQuery, u.Fragment = "", ""
	return u.String(), nil
}
