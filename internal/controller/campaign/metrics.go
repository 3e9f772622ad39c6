package campaign

import (
	"github.com/prometheus/client_golang/prometheus"
	ctrlmetrics "sigs.k8s.io/controller-runtime/pkg/metrics"
)

var (
	// callsCreated counts Calls created for contacts.
	callsCreated = prometheus.NewCounter(prometheus.CounterOpts{
		Name: "callfleet_campaign_calls_created_total",
		Help: "Calls created by Campaigns for their contacts.",
	})

	// contactsSkipped counts contacts the cursor passed without a Call.
	contactsSkipped = prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "callfleet_campaign_contacts_skipped_total",
		Help: "Contacts skipped by Campaigns, by reason: invalid (a bad row) or do_not_call.",
	}, []string{"reason"})

	// callsFinished counts Campaign Calls counted as finished, by result.
	callsFinished = prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "callfleet_campaign_calls_finished_total",
		Help: "Campaign Calls counted as finished, by result: succeeded (an outcome in successOutcomes) or failed.",
	}, []string{"result"})
)

func init() {
	ctrlmetrics.Registry.MustRegister(callsCreated, contactsSkipped, callsFinished)
}
