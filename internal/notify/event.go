package notify

import (
	"fmt"
	"time"

	cloudevents "github.com/cloudevents/sdk-go/v2"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	voicev1alpha1 "github.com/callfleet/callfleet/api/v1alpha1"
)

// Event types, one per fact.
const (
	TypeCallCompleted      = "dev.callfleet.call.completed"
	TypeCampaignStarted    = "dev.callfleet.campaign.started"
	TypeCampaignSuspended  = "dev.callfleet.campaign.suspended"
	TypeCampaignResumed    = "dev.callfleet.campaign.resumed"
	TypeCampaignCompleted  = "dev.callfleet.campaign.completed"
	TypeCampaignStopped    = "dev.callfleet.campaign.stopped"
	sourcePrefix           = "/apis/voice.callfleet.dev/v1alpha1/namespaces/"
	contentTypeCloudEvents = "application/cloudevents+json"
)

// CallCompletedData is the data of a call.completed event.
type CallCompletedData struct {
	Call      string `json:"call"`
	Namespace string `json:"namespace"`
	// Campaign is the owning Campaign's name, if any.
	Campaign string `json:"campaign,omitempty"`
	To       string `json:"to"`
	// Phase is Completed or Failed.
	Phase voicev1alpha1.CallPhase `json:"phase"`
	// Outcome is the last attempt's outcome.
	Outcome     voicev1alpha1.CallOutcome    `json:"outcome,omitempty"`
	Message     string                       `json:"message,omitempty"`
	Attempts    int                          `json:"attempts"`
	Disposition string                       `json:"disposition,omitempty"`
	Summary     string                       `json:"summary,omitempty"`
	Data        map[string]string            `json:"data,omitempty"`
	ReportedBy  voicev1alpha1.ResultReporter `json:"reportedBy,omitempty"`
	// Recording is the last recording Piopiy reported for the Call.
	Recording  string    `json:"recording,omitempty"`
	DurationS  int32     `json:"durationSeconds,omitempty"`
	FinishedAt time.Time `json:"finishedAt"`
}

// CampaignData is the data of every campaign.* event.
type CampaignData struct {
	Campaign  string `json:"campaign"`
	Namespace string `json:"namespace"`
	Total     int64  `json:"total"`
	Active    int64  `json:"active"`
	Succeeded int64  `json:"succeeded"`
	Failed    int64  `json:"failed"`
	Skipped   int64  `json:"skipped"`
	Reason    string `json:"reason,omitempty"`
	Message   string `json:"message,omitempty"`
}

// Finished reports whether a Call is done (Completed or Failed) and when.
func Finished(call *voicev1alpha1.Call) (time.Time, bool) {
	if call.Status.Phase != voicev1alpha1.CallCompleted && call.Status.Phase != voicev1alpha1.CallFailed {
		return time.Time{}, false
	}
	// The Ready condition turns True when the outcome is recorded; its
	// transition time does not move once set, so the event's time is stable.
	if c := meta.FindStatusCondition(call.Status.Conditions, voicev1alpha1.ConditionReady); c != nil && c.Status == metav1.ConditionTrue {
		return c.LastTransitionTime.Time, true
	}
	if n := len(call.Status.Attempts); n > 0 && call.Status.Attempts[n-1].EndTime != nil {
		return call.Status.Attempts[n-1].EndTime.Time, true
	}
	return call.CreationTimestamp.Time, true
}

// CallCompleted is the call.completed event of a finished Call. Its id is
// the Call's UID: one Call, one completion, whoever sends it how often.
func CallCompleted(call *voicev1alpha1.Call, campaign string) (cloudevents.Event, error) {
	at, _ := Finished(call)
	d := CallCompletedData{
		Call: call.Name, Namespace: call.Namespace, Campaign: campaign, To: call.Spec.To,
		Phase: call.Status.Phase, Attempts: len(call.Status.Attempts), FinishedAt: at.UTC(),
	}
	for _, a := range call.Status.Attempts {
		d.Outcome, d.Message, d.DurationS = a.Outcome, a.Message, a.DurationSeconds
		if a.Recording != "" {
			d.Recording = a.Recording
		}
	}
	if r := call.Status.Result; r != nil {
		d.Disposition, d.Summary, d.Data, d.ReportedBy = r.Disposition, r.Summary, r.Data, r.ReportedBy
	}
	return newEvent(string(call.UID)+".completed", TypeCallCompleted,
		sourcePrefix+call.Namespace+"/calls/"+call.Name, call.Name, at, d)
}

// campaignEvent builds a campaign.* event; id is the ledger's.
func campaignEvent(c *voicev1alpha1.Campaign, e ledgerEntry) (cloudevents.Event, error) {
	return newEvent(e.ID, e.Type, sourcePrefix+c.Namespace+"/campaigns/"+c.Name, c.Name, e.Time.Time, e.Data)
}

func newEvent(id, typ, source, subject string, at time.Time, data any) (cloudevents.Event, error) {
	ev := cloudevents.NewEvent(cloudevents.VersionV1)
	ev.SetID(id)
	ev.SetType(typ)
	ev.SetSource(source)
	ev.SetSubject(subject)
	ev.SetTime(at.UTC())
	if err := ev.SetData(cloudevents.ApplicationJSON, data); err != nil {
		return ev, fmt.Errorf("encoding %s data: %w", typ, err)
	}
	return ev, ev.Validate()
}
