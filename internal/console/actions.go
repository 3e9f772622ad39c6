package console

import (
	"encoding/json"
	"fmt"
	"net/http"
	"regexp"
	"strings"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/apimachinery/pkg/util/validation"
	"k8s.io/client-go/rest"
	"sigs.k8s.io/controller-runtime/pkg/client"

	voicev1alpha1 "github.com/callfleet/callfleet/api/v1alpha1"
)

// Actions of the call page.
const (
	ActionPause       = "pause"
	ActionResume      = "resume"
	ActionHandoff     = "handoff"
	ActionHangup      = "hangup"
	ActionDisposition = "disposition"
)

var dispositionRE = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9_.-]{0,62}$`)

// intervention is one action as a JSON merge patch of the Call (or of its
// status, for a disposition).
type intervention struct {
	status bool
	patch  map[string]any
}

// interventionFor turns a submitted action into its patch.
func interventionFor(action string, form func(string) string, now metav1.Time) (intervention, error) {
	switch action {
	case ActionPause, ActionResume:
		state := voicev1alpha1.StreamPaused
		if action == ActionResume {
			state = voicev1alpha1.StreamActive
		}
		return intervention{patch: map[string]any{"spec": map[string]any{"stream": map[string]any{"state": state}}}}, nil
	case ActionHangup:
		return intervention{patch: map[string]any{"spec": map[string]any{"hangup": true}}}, nil
	case ActionHandoff:
		pool := strings.TrimSpace(form("pool"))
		if len(validation.IsDNS1123Subdomain(pool)) > 0 {
			return intervention{}, fmt.Errorf("%w: choose an AgentPool", errBadRequest)
		}
		return intervention{patch: map[string]any{"spec": map[string]any{"handoff": map[string]any{
			"agentPoolRef": map[string]any{"name": pool}, "requested": true,
		}}}}, nil
	case ActionDisposition:
		d := strings.TrimSpace(form("disposition"))
		if !dispositionRE.MatchString(d) {
			return intervention{}, fmt.Errorf("%w: a disposition is a short token such as Interested (letters, digits, . _ -)", errBadRequest)
		}
		res := map[string]any{"disposition": d, "reportedBy": voicev1alpha1.ReportedBySupervisor, "reportedAt": now}
		if s := strings.TrimSpace(form("summary")); s != "" {
			if len(s) > 1024 {
				return intervention{}, fmt.Errorf("%w: the summary is at most 1 KiB", errBadRequest)
			}
			res["summary"] = s
		}
		return intervention{status: true, patch: map[string]any{"status": map[string]any{"result": res}}}, nil
	}
	return intervention{}, fmt.Errorf("%w: no action %q", errNotFound, action)
}

// act applies an intervention with the user's own token, so the apiserver
// authorizes it exactly as it would a kubectl patch by that user.
func (c *Console) act(w http.ResponseWriter, r *http.Request, u User) {
	nn, err := c.target(r)
	if err != nil {
		c.fail(w, r, err)
		return
	}
	action := r.PathValue("action")
	iv, err := interventionFor(action, r.PostFormValue, metav1.NewTime(c.opts.Now()))
	if err != nil {
		c.fail(w, r, err)
		return
	}
	if err := c.patchAsUser(r, u, nn, iv); err != nil {
		switch {
		case apierrors.IsForbidden(err):
			err = fmt.Errorf("%w: %s", ErrForbidden, apiMessage(err))
		case apierrors.IsUnauthorized(err):
			err = ErrUnauthenticated
		case apierrors.IsNotFound(err):
			err = fmt.Errorf("%w: no Call %s", errNotFound, nn)
		case apierrors.IsInvalid(err):
			err = fmt.Errorf("%w: %s", errBadRequest, err.Error())
		}
		c.fail(w, r, err)
		return
	}
	c.log.Info("intervention", "user", u.Name, "call", nn.String(), "action", action)
	http.Redirect(w, r, "/ns/"+nn.Namespace+"/calls/"+nn.Name+"?done="+action, http.StatusSeeOther)
}

func (c *Console) patchAsUser(r *http.Request, u User, nn types.NamespacedName, iv intervention) error {
	cfg := rest.AnonymousClientConfig(c.cfg)
	cfg.BearerToken = u.token
	cl, err := client.New(cfg, client.Options{Scheme: c.scheme, Mapper: c.mapper})
	if err != nil {
		return err
	}
	body, err := json.Marshal(iv.patch)
	if err != nil {
		return err
	}
	obj := &voicev1alpha1.Call{}
	obj.Namespace, obj.Name = nn.Namespace, nn.Name
	p := client.RawPatch(types.MergePatchType, body)
	if iv.status {
		return cl.Status().Patch(r.Context(), obj, p)
	}
	return cl.Patch(r.Context(), obj, p)
}

func apiMessage(err error) string {
	if s, ok := err.(apierrors.APIStatus); ok {
		return s.Status().Message
	}
	return err.Error()
}
