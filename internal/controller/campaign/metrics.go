package campaign

import (
	"github.com/prometheus/client_golang/prometheus"
	ctrlmetrics "sigs.k8s.io/controller-runtime/pkg/metrics"
)

var (
	// callsCreated counts Calls (attempts) created for contacts.
	callsCreated = prometheus.NewCounter(prometheus.CounterOpts{
		Name: "callfleet_campaign_calls_created_total",
		Help: "Calls created by Campaigns for their contacts, each attempt one Call.",
	})

	// resultsWrites counts writes to results record ConfigMaps.
	resultsWrites = prometheus.NewCounter(prometheus.CounterOpts{
		Name: "callfleet_campaign_results_writes_total",
		Help: "Writes (creates and updates) of Campaign results ConfigMaps; each carries a batch of contacts.",
	})

	// contactsRecorded counts contacts written to results records.
	contactsRecorded = prometheus.NewCounter(prometheus.CounterOpts{
		Name: "callfleet_campaign_contacts_recorded_total",
		Help: "Contacts written to Campaign results records with their final outcome.",
	})
)

func init() {
	ctrlmetrics.Registry.MustRegister(callsCreated, resultsWrites, contactsRecorded)
}
