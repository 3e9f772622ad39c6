package console

import (
	"html/template"
	"strings"
	"testing"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	voicev1alpha1 "github.com/callfleet/callfleet/api/v1alpha1"
)

// TestPagesRender executes every page template with realistic data: a
// template error would otherwise show as a page cut short.
func TestPagesRender(t *testing.T) {
	pages, err := template.New("").Funcs(funcs).ParseFS(assets, "assets/*.html")
	if err != nil {
		t.Fatal(err)
	}
	now := metav1.NewTime(time.Unix(1_800_000_000, 0))
	call := &voicev1alpha1.Call{ObjectMeta: metav1.ObjectMeta{Namespace: "sales", Name: "alice"}}
	call.Spec.To = "919800000001"
	call.Spec.Handoff = &voicev1alpha1.CallHandoff{AgentPoolRef: voicev1alpha1.LocalRef{Name: "agents"}}
	call.Status.Phase = voicev1alpha1.CallHandedOff
	call.Status.Attempts = []voicev1alpha1.CallAttempt{{Number: 1, State: voicev1alpha1.AttemptDialed, DialTime: &now, AnswerTime: &now}}
	call.Status.Handoff = &voicev1alpha1.CallHandoffStatus{Phase: voicev1alpha1.HandoffBridged, Agent: "agent-0"}
	call.Status.Result = &voicev1alpha1.CallResult{Disposition: "Interested", ReportedBy: voicev1alpha1.ReportedBySupervisor}
	camp := &voicev1alpha1.Campaign{ObjectMeta: metav1.ObjectMeta{Namespace: "sales", Name: "spring"}}
	camp.Status.Conditions = []metav1.Condition{{Type: voicev1alpha1.ConditionReady, Status: "False", Reason: "OutsideWindow", Message: "the next window opens at 09:00"}}
	pg := Page{User: "system:serviceaccount:sales:supervisor", Namespace: "sales", CSRF: "csrf-token"}
	for _, tc := range []struct {
		page string
		data any
		want []string
	}{
		{"login.html", loginData{Error: "Sign in with a Kubernetes token.", Namespace: "sales"}, []string{`id="login"`, "Sign in with a Kubernetes token."}},
		{"error.html", errorData{Status: 403, Message: "forbidden: no"}, []string{`<h1 id="status">403</h1>`}},
		{"board.html", boardData{Page: pg, Calls: []CallRow{callRow(call)}, Campaigns: []CampaignRow{campaignRow(camp)}},
			[]string{`data-page="board"`, `data-name="alice"`, "HandedOff", "agent-0", "Interested", "OutsideWindow: the next window opens at 09:00", `value="csrf-token"`}},
		{"call.html", callData{Page: pg, Call: call, Row: callRow(call), Monitor: true, Pools: []string{"agents"}},
			[]string{`data-call="alice"`, `id="listen"`, `id="hangup"`, "<option>agents</option>", "Bridged", `data-csrf="csrf-token"`}},
		{"campaign.html", campaignData{Page: pg, Campaign: camp, Row: campaignRow(camp), Calls: []CallRow{callRow(call)}},
			[]string{`data-campaign="spring"`, "OutsideWindow", `data-name="alice"`}},
	} {
		t.Run(tc.page, func(t *testing.T) {
			var b strings.Builder
			if err := pages.ExecuteTemplate(&b, tc.page, tc.data); err != nil {
				t.Fatal(err)
			}
			out := b.String()
			if !strings.HasSuffix(strings.TrimSpace(out), "</html>") {
				t.Errorf("page cut short:\n%s", out)
			}
			for _, w := range tc.want {
				if !strings.Contains(out, w) {
					t.Errorf("page lacks %q", w)
				}
			}
		})
	}
}
