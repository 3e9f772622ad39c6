package campaign

import (
	"fmt"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	voicev1alpha1 "github.com/callfleet/callfleet/api/v1alpha1"
)

// pacer is callsPerMinute as a GCRA (generic cell rate algorithm): a token
// bucket whose whole state is one time, the theoretical arrival time (TAT),
// kept in status.paceTime. A Call may start at now when TAT − tolerance ≤
// now; starting it moves TAT to max(TAT, now) + interval.
//
// The burst is one second's share of callsPerMinute (at least 1), and the
// interval is chosen so that no 60-second window ever holds more than
// callsPerMinute starts: the n-th start of a run beginning at t0 needs
// t0 + (n−burst+1)·interval ≤ tn, so starts in [t0, t0+60s) satisfy
// n−burst+1 < 60s/interval = callsPerMinute−burst+1, that is n <
// callsPerMinute. The long-run rate is callsPerMinute−burst+1 a minute: at
// most 1.7% under the figure asked for.
type pacer struct {
	interval  time.Duration
	tolerance time.Duration
	burst     int
}

func newPacer(callsPerMinute int32) pacer {
	cpm := max(int64(callsPerMinute), 1)
	burst := max(cpm/60, 1)
	interval := time.Minute / time.Duration(cpm-burst+1)
	return pacer{interval: interval, tolerance: time.Duration(burst-1) * interval, burst: int(burst)}
}

// take starts one Call at now if the bucket allows, returning the new TAT.
func (p pacer) take(tat, now time.Time) (time.Time, bool) {
	if tat.Before(now) {
		tat = now
	}
	if tat.Sub(now) > p.tolerance {
		return tat, false
	}
	return tat.Add(p.interval), true
}

// charge records a Call started at at (one found already made, after a
// restart) without asking whether it was allowed.
func (p pacer) charge(tat, at time.Time) time.Time {
	if tat.Before(at) {
		tat = at
	}
	return tat.Add(p.interval)
}

// wait is how long from now until take allows a Call.
func (p pacer) wait(tat, now time.Time) time.Duration {
	return max(tat.Sub(now)-p.tolerance, 0)
}

func (p pacer) String() string {
	return fmt.Sprintf("one Call every %s, bursts of %d", p.interval, p.burst)
}

// paceTime reads status.paceTime.
func paceTime(st *voicev1alpha1.CampaignStatus) time.Time {
	if st.PaceTime == nil {
		return time.Time{}
	}
	return st.PaceTime.Time
}

func setPaceTime(st *voicev1alpha1.CampaignStatus, t time.Time) {
	if t.IsZero() {
		return
	}
	mt := metav1.NewMicroTime(t.UTC().Truncate(time.Microsecond))
	st.PaceTime = &mt
}

// endpointSlots returns how many Calls may be in flight for a StreamEndpoint
// with capacity streams, activeStreams of them busy, ownStreaming of those
// this Campaign's: the free slots plus the ones this Campaign holds.
// activeStreams counts connected streams only, so the Campaign's own Calls
// still dialing or ringing are in inflight, not in activeStreams.
func endpointSlots(capacity, activeStreams int32, ownStreaming int) int {
	others := max(int(activeStreams)-ownStreaming, 0)
	return max(int(capacity)-others, 0)
}
