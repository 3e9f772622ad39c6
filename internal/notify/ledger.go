package notify

import (
	"encoding/json"
	"fmt"
	"strings"

	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	voicev1alpha1 "github.com/callfleet/callfleet/api/v1alpha1"
)

// States of a ledger entry.
const (
	statePending   = "pending"
	stateDelivered = "delivered"
	stateRejected  = "rejected"
	stateExpired   = "expired"
)

// Condition types and reasons of the Campaign read here. Suspended exists
// today; Stopped is read whether it comes as its own condition or as a
// Ready reason, and any other condition is ignored, so new ones do no harm.
const (
	campaignSuspended = "Suspended"
	campaignStopped   = "Stopped"
	reasonCompleted   = "Completed"
)

// maxLedger bounds the annotation: older settled entries are dropped first.
const maxLedger = 32

// ledgerEntry is one campaign.* event, with its data as of when it was seen.
type ledgerEntry struct {
	ID    string       `json:"id"`
	Type  string       `json:"type"`
	Time  metav1.Time  `json:"time"`
	State string       `json:"state"`
	Data  CampaignData `json:"data"`
	// Generation is the observedGeneration of the condition the entry came
	// from: a resume is a Suspended=False written at a later generation
	// than the suspension (times have only second resolution).
	Generation int64 `json:"generation,omitempty"`
}

type ledger []ledgerEntry

func readLedger(c *voicev1alpha1.Campaign) ledger {
	var l ledger
	if s := c.Annotations[AnnotationLedger]; s != "" {
		_ = json.Unmarshal([]byte(s), &l) // a mangled ledger is rebuilt from status
	}
	return l
}

func (l ledger) has(id string) bool {
	for _, e := range l {
		if e.ID == id {
			return true
		}
	}
	return false
}

// lastOf returns the latest entry of typ.
func (l ledger) lastOf(typ string) *ledgerEntry {
	var last *ledgerEntry
	for i := range l {
		if l[i].Type == typ && (last == nil || !l[i].Time.Before(&last.Time)) {
			last = &l[i]
		}
	}
	return last
}

// derive adds the events the Campaign's status shows and the ledger lacks.
// Ids come from the status facts (their times), so deriving again after a
// restart, or from a stale cache, finds the same ids.
func (l *ledger) derive(c *voicev1alpha1.Campaign) bool {
	before := len(*l)
	var gen int64
	add := func(typ, suffix string, at metav1.Time, reason, msg string) {
		id := fmt.Sprintf("%s.%s", c.UID, suffix)
		if l.has(id) {
			return
		}
		st := c.Status
		*l = append(*l, ledgerEntry{ID: id, Type: typ, Time: at, State: statePending, Generation: gen, Data: CampaignData{
			Campaign: c.Name, Namespace: c.Namespace, Total: st.Total, Active: st.Active,
			Succeeded: st.Succeeded, Failed: st.Failed, Skipped: st.Skipped, Reason: reason, Message: msg,
		}})
	}
	st := &c.Status
	if st.StartTime != nil {
		add(TypeCampaignStarted, "started", *st.StartTime, "", "")
	}
	if s := meta.FindStatusCondition(st.Conditions, campaignSuspended); s != nil {
		t := s.LastTransitionTime
		gen = s.ObservedGeneration
		switch s.Status {
		case metav1.ConditionTrue:
			add(TypeCampaignSuspended, fmt.Sprintf("suspended.%d", t.Unix()), t, s.Reason, s.Message)
		case metav1.ConditionFalse:
			// Resumed only after a suspension this ledger saw, and written
			// after it (a stale read still showing the False from before the
			// suspension is not a resume). The id names the suspension it
			// ends, so one suspension is resumed once.
			if last := l.lastOf(TypeCampaignSuspended); last != nil && s.ObservedGeneration > last.Generation {
				add(TypeCampaignResumed, "resumed."+strings.TrimPrefix(last.ID, string(c.UID)+".suspended."), t, s.Reason, s.Message)
			}
		}
		gen = 0
	}
	if s := meta.FindStatusCondition(st.Conditions, campaignStopped); s != nil && s.Status == metav1.ConditionTrue {
		add(TypeCampaignStopped, fmt.Sprintf("stopped.%d", s.LastTransitionTime.Unix()), s.LastTransitionTime, s.Reason, s.Message)
	}
	if s := meta.FindStatusCondition(st.Conditions, voicev1alpha1.ConditionReady); s != nil {
		t := s.LastTransitionTime
		switch {
		case s.Reason == campaignStopped:
			add(TypeCampaignStopped, fmt.Sprintf("stopped.%d", t.Unix()), t, s.Reason, s.Message)
		case s.Status == metav1.ConditionTrue && s.Reason == reasonCompleted:
			add(TypeCampaignCompleted, fmt.Sprintf("completed.%d", t.Unix()), t, s.Reason, s.Message)
		}
	}
	return len(*l) != before
}

// trim keeps the ledger bounded: pending entries always stay; settled ones
// go oldest first. A dropped entry that status still shows would be
// derived again, so the newest settled entries of each type are kept.
func (l ledger) trim() ledger {
	if len(l) <= maxLedger {
		return l
	}
	keep := make([]bool, len(l))
	latest := map[string]int{}
	for i, e := range l {
		if e.State == statePending {
			keep[i] = true
		}
		if j, ok := latest[e.Type]; !ok || !e.Time.Before(&l[j].Time) {
			latest[e.Type] = i
		}
	}
	for _, i := range latest {
		keep[i] = true
	}
	extra := maxLedger
	for _, k := range keep {
		if k {
			extra--
		}
	}
	for i := len(l) - 1; i >= 0 && extra > 0; i-- {
		if !keep[i] {
			keep[i], extra = true, extra-1
		}
	}
	out := make(ledger, 0, maxLedger)
	for i, e := range l {
		if keep[i] {
			out = append(out, e)
		}
	}
	return out
}
