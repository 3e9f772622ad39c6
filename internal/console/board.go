package console

import (
	"encoding/json"
	"sync"
	"time"

	"k8s.io/apimachinery/pkg/api/meta"

	voicev1alpha1 "github.com/callfleet/callfleet/api/v1alpha1"
)

// CallRow is a Call as the board shows it; the browser renders the same
// JSON it is pushed.
type CallRow struct {
	Name        string     `json:"name"`
	To          string     `json:"to"`
	Phase       string     `json:"phase"`
	Stream      string     `json:"stream"`
	Handoff     string     `json:"handoff"`
	Agent       string     `json:"agent"`
	Attempts    int32      `json:"attempts"`
	Disposition string     `json:"disposition"`
	Campaign    string     `json:"campaign"`
	Answered    *time.Time `json:"answered,omitempty"`
	Ended       *time.Time `json:"ended,omitempty"`
	Deleted     bool       `json:"deleted,omitempty"`
}

func callRow(c *voicev1alpha1.Call) CallRow {
	r := CallRow{Name: c.Name, To: c.Spec.To, Phase: string(c.Status.Phase), Campaign: c.Labels[voicev1alpha1.LabelCampaign]}
	if r.Phase == "" {
		r.Phase = string(voicev1alpha1.CallPending)
	}
	if s := c.Status.Stream; s != nil {
		r.Stream = string(s.State)
	}
	if h := c.Status.Handoff; h != nil {
		r.Handoff, r.Agent = string(h.Phase), h.Agent
	}
	if res := c.Status.Result; res != nil {
		r.Disposition = res.Disposition
	}
	if n := len(c.Status.Attempts); n > 0 {
		a := c.Status.Attempts[n-1]
		r.Attempts = a.Number
		if a.AnswerTime != nil {
			t := a.AnswerTime.Time
			r.Answered = &t
		}
		if a.EndTime != nil {
			t := a.EndTime.Time
			r.Ended = &t
		}
	}
	return r
}

// CampaignRow is a Campaign's progress and what it waits for.
type CampaignRow struct {
	Name      string `json:"name"`
	Total     int64  `json:"total"`
	Pending   int64  `json:"pending"`
	Active    int64  `json:"active"`
	Succeeded int64  `json:"succeeded"`
	Failed    int64  `json:"failed"`
	Skipped   int64  `json:"skipped"`
	Suspended bool   `json:"suspended"`
	// Waiting says why no more calls go out now (the Ready condition's
	// reason and message when it is not True), "" when nothing waits.
	Waiting    string     `json:"waiting"`
	NextWindow *time.Time `json:"nextWindow,omitempty"`
	Deleted    bool       `json:"deleted,omitempty"`
}

func campaignRow(c *voicev1alpha1.Campaign) CampaignRow {
	s := c.Status
	r := CampaignRow{Name: c.Name, Total: s.Total, Pending: s.Pending, Active: s.Active, Succeeded: s.Succeeded,
		Failed: s.Failed, Skipped: s.Skipped, Suspended: c.Spec.Suspend}
	if cond := meta.FindStatusCondition(s.Conditions, voicev1alpha1.ConditionReady); cond != nil && cond.Status != "True" {
		r.Waiting = cond.Reason
		if cond.Message != "" {
			r.Waiting += ": " + cond.Message
		}
	}
	if s.NextWindowTime != nil {
		t := s.NextWindowTime.Time
		r.NextWindow = &t
	}
	return r
}

// event is one Server-Sent Event: its name and JSON data.
type event struct {
	name string // call or campaign
	data []byte
}

func newEvent(name string, v any) event {
	b, _ := json.Marshal(v) // rows of strings, numbers and times always marshal
	return event{name: name, data: b}
}

// broker fans the console's one watch out to the event streams of the
// browsers looking at a namespace. A browser that falls behind is cut off
// (its EventSource reconnects and gets a fresh snapshot) so one slow
// connection never holds up the others or grows memory.
type broker struct {
	mu   sync.Mutex
	subs map[string]map[*subscriber]struct{} // by namespace
}

type subscriber struct {
	ch   chan event
	gone chan struct{}
	once sync.Once
}

const subscriberQueue = 256

func newBroker() *broker { return &broker{subs: map[string]map[*subscriber]struct{}{}} }

func (b *broker) subscribe(ns string) *subscriber {
	s := &subscriber{ch: make(chan event, subscriberQueue), gone: make(chan struct{})}
	b.mu.Lock()
	if b.subs[ns] == nil {
		b.subs[ns] = map[*subscriber]struct{}{}
	}
	b.subs[ns][s] = struct{}{}
	b.mu.Unlock()
	return s
}

func (b *broker) unsubscribe(ns string, s *subscriber) {
	b.mu.Lock()
	delete(b.subs[ns], s)
	if len(b.subs[ns]) == 0 {
		delete(b.subs, ns)
	}
	b.mu.Unlock()
	s.once.Do(func() { close(s.gone) })
}

func (b *broker) publish(ns string, e event) {
	b.mu.Lock()
	defer b.mu.Unlock()
	for s := range b.subs[ns] {
		select {
		case s.ch <- e:
		default:
			delete(b.subs[ns], s)
			s.once.Do(func() { close(s.gone) })
		}
	}
}

func (b *broker) subscribers(ns string) int {
	b.mu.Lock()
	defer b.mu.Unlock()
	return len(b.subs[ns])
}
