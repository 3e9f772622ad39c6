package sim

import (
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"net"
	"net/http"
	"slices"
	"sync"
	"time"
)

// Faults are misbehaviours switched on on purpose. The zero value is a
// well-behaved Piopiy. Probabilities are in [0,1]: 0 never, 1 always.
type Faults struct {
	REST            RESTFaults                // every REST request
	RESTNumbers     map[string]RESTFaults     // make-call to this "to" number: replaces REST for that request
	Delivery        DeliveryFaults            // every webhook
	DeliveryNumbers map[string]DeliveryFaults // webhooks of calls to this number: replace Delivery
}

// Ambiguous-create modes: the call IS placed, then the caller cannot know.
const (
	AmbiguousClose = "close" // hijack the connection and reset it (no reply at all)
	Ambiguous5xx   = "5xx"   // reply 5xx although the call was placed
	AmbiguousHang  = "hang"  // hold the reply until the client gives up
)

// RESTFaults are applied in this order: latency, reset, 429, 5xx, then the
// request is processed, then (make-call only) the ambiguous create.
type RESTFaults struct {
	Latency       time.Duration // extra delay before the request is handled
	LatencyProb   float64       // chance Latency applies; 0 with Latency > 0 means every request
	ResetProb     float64       // connection reset before anything is done
	TooManyProb   float64       // 429, nothing done
	ServerErrProb float64       // ServerErrStatus (default 503), nothing done
	ServerErrCode int           // status for ServerErrProb and Ambiguous5xx (default 503)
	AmbiguousProb float64       // make-call only: the call is placed, then the reply is lost
	AmbiguousMode string        // close (default) | 5xx | hang
}

// DeliveryFaults act on webhook deliveries. Events restricts them to some
// statuses ("started", "ringing", ..., "hangup", "stream_connected",
// "STREAM_DISCONNECTED", and "cdr" for CDRs); empty means all.
type DeliveryFaults struct {
	Delay         time.Duration // the first attempt waits this long (later events of the call wait behind it)
	DelayProb     float64       // chance Delay applies; 0 with Delay > 0 means every event
	DuplicateProb float64       // delivered twice in a row
	ReorderProb   float64       // held back until the call's next event has been delivered
	DropProb      float64       // first attempt lost; redelivered on the 5/10/15-minute schedule
	Events        []string
}

func (f Faults) validate() error {
	check := func(name string, r RESTFaults) error {
		for _, p := range []float64{r.LatencyProb, r.ResetProb, r.TooManyProb, r.ServerErrProb, r.AmbiguousProb} {
			if p < 0 || p > 1 {
				return fmt.Errorf("%s: probability %v outside [0,1]", name, p)
			}
		}
		switch r.AmbiguousMode {
		case "", AmbiguousClose, Ambiguous5xx, AmbiguousHang:
		default:
			return fmt.Errorf("%s: ambiguousMode %q (want close|5xx|hang)", name, r.AmbiguousMode)
		}
		if r.ServerErrCode != 0 && (r.ServerErrCode < 500 || r.ServerErrCode > 599) {
			return fmt.Errorf("%s: serverErrCode %d is not 5xx", name, r.ServerErrCode)
		}
		if r.Latency < 0 {
			return fmt.Errorf("%s: negative latency", name)
		}
		return nil
	}
	checkD := func(name string, d DeliveryFaults) error {
		for _, p := range []float64{d.DelayProb, d.DuplicateProb, d.ReorderProb, d.DropProb} {
			if p < 0 || p > 1 {
				return fmt.Errorf("%s: probability %v outside [0,1]", name, p)
			}
		}
		if d.Delay < 0 {
			return fmt.Errorf("%s: negative delay", name)
		}
		return nil
	}
	if err := check("rest", f.REST); err != nil {
		return err
	}
	for n, r := range f.RESTNumbers {
		if err := check("restNumbers["+n+"]", r); err != nil {
			return err
		}
	}
	if err := checkD("delivery", f.Delivery); err != nil {
		return err
	}
	for n, d := range f.DeliveryNumbers {
		if err := checkD("deliveryNumbers["+n+"]", d); err != nil {
			return err
		}
	}
	return nil
}

func (d DeliveryFaults) appliesTo(status string) bool {
	return len(d.Events) == 0 || slices.Contains(d.Events, status)
}

// roller makes the fault dice deterministic for a given Config.Seed.
type roller struct {
	mu  sync.Mutex
	rng *rand.Rand
}

func newRoller(seed int64) *roller {
	return &roller{rng: rand.New(rand.NewPCG(uint64(seed), uint64(seed)^0x9e3779b97f4a7c15))}
}

// roll reports whether an event of probability p happens.
func (r *roller) roll(p float64) bool {
	if p <= 0 {
		return false
	}
	if p >= 1 {
		return true
	}
	r.mu.Lock()
	v := r.rng.Float64()
	r.mu.Unlock()
	return v < p
}

// restFaultsFor picks the REST faults for a request (to = "" when not a make-call).
func (s *Sim) restFaultsFor(to string) RESTFaults {
	s.mu.RLock()
	defer s.mu.RUnlock()
	if to != "" {
		if f, ok := s.faults.RESTNumbers[to]; ok {
			return f
		}
	}
	return s.faults.REST
}

func (s *Sim) deliveryFaultsFor(to string) DeliveryFaults {
	s.mu.RLock()
	defer s.mu.RUnlock()
	if f, ok := s.faults.DeliveryNumbers[to]; ok {
		return f
	}
	return s.faults.Delivery
}

// preFaults runs the faults that happen before a request is processed. It
// reports false when the request has been answered (or killed) already.
func (s *Sim) preFaults(w http.ResponseWriter, r *http.Request, f RESTFaults) bool {
	if f.Latency > 0 && (f.LatencyProb == 0 || s.dice.roll(f.LatencyProb)) {
		t := time.NewTimer(f.Latency)
		select {
		case <-t.C:
		case <-r.Context().Done():
			t.Stop()
			return false
		}
	}
	if s.dice.roll(f.ResetProb) {
		s.log.Info("fault: connection reset", "path", r.URL.Path)
		resetConn(w)
		return false
	}
	if s.dice.roll(f.TooManyProb) {
		s.log.Info("fault: 429", "path", r.URL.Path)
		writeError(w, &apiError{Code: http.StatusTooManyRequests, Message: "too many requests"})
		return false
	}
	if s.dice.roll(f.ServerErrProb) {
		code := serverErrCode(f)
		s.log.Info("fault: 5xx", "path", r.URL.Path, "code", code)
		writeError(w, &apiError{Code: code, Message: http.StatusText(code)})
		return false
	}
	return true
}

func serverErrCode(f RESTFaults) int {
	if f.ServerErrCode != 0 {
		return f.ServerErrCode
	}
	return http.StatusServiceUnavailable
}

// ambiguous loses the reply of a create that did place the call. It reports
// true when it has taken over the response.
func (s *Sim) ambiguous(w http.ResponseWriter, r *http.Request, f RESTFaults, requestID string) bool {
	if !s.dice.roll(f.AmbiguousProb) {
		return false
	}
	mode := f.AmbiguousMode
	if mode == "" {
		mode = AmbiguousClose
	}
	s.log.Info("fault: ambiguous create", "mode", mode, "request_id", requestID)
	switch mode {
	case Ambiguous5xx:
		code := serverErrCode(f)
		writeError(w, &apiError{Code: code, Message: http.StatusText(code)})
	case AmbiguousHang:
		select {
		case <-r.Context().Done():
		case <-s.ctx.Done():
		}
		resetConn(w)
	default:
		resetConn(w)
	}
	return true
}

// resetConn hijacks the connection and closes it with SO_LINGER 0 so the
// client sees a TCP RST, the way a dying load balancer looks.
func resetConn(w http.ResponseWriter) {
	hj, ok := w.(http.Hijacker)
	if !ok {
		// HTTP/2 or a test recorder: the best we can do is abort the handler.
		panic(http.ErrAbortHandler)
	}
	conn, _, err := hj.Hijack()
	if err != nil {
		panic(http.ErrAbortHandler)
	}
	if tc, ok := conn.(*net.TCPConn); ok {
		_ = tc.SetLinger(0)
	}
	_ = conn.Close()
}

// Wire forms with Go duration strings.

type restFaultsJSON struct {
	Latency       Duration `json:"latency,omitempty"`
	LatencyProb   float64  `json:"latencyProb,omitempty"`
	ResetProb     float64  `json:"resetProb,omitempty"`
	TooManyProb   float64  `json:"tooManyProb,omitempty"`
	ServerErrProb float64  `json:"serverErrProb,omitempty"`
	ServerErrCode int      `json:"serverErrCode,omitempty"`
	AmbiguousProb float64  `json:"ambiguousProb,omitempty"`
	AmbiguousMode string   `json:"ambiguousMode,omitempty"`
}

func (f RESTFaults) MarshalJSON() ([]byte, error) {
	return json.Marshal(restFaultsJSON{Duration(f.Latency), f.LatencyProb, f.ResetProb, f.TooManyProb, f.ServerErrProb, f.ServerErrCode, f.AmbiguousProb, f.AmbiguousMode})
}

func (f *RESTFaults) UnmarshalJSON(b []byte) error {
	var w restFaultsJSON
	if err := strictUnmarshal(b, &w); err != nil {
		return err
	}
	*f = RESTFaults{time.Duration(w.Latency), w.LatencyProb, w.ResetProb, w.TooManyProb, w.ServerErrProb, w.ServerErrCode, w.AmbiguousProb, w.AmbiguousMode}
	return nil
}

type deliveryFaultsJSON struct {
	Delay         Duration `json:"delay,omitempty"`
	DelayProb     float64  `json:"delayProb,omitempty"`
	DuplicateProb float64  `json:"duplicateProb,omitempty"`
	ReorderProb   float64  `json:"reorderProb,omitempty"`
	DropProb      float64  `json:"dropProb,omitempty"`
	Events        []string `json:"events,omitempty"`
}

func (d DeliveryFaults) MarshalJSON() ([]byte, error) {
	return json.Marshal(deliveryFaultsJSON{Duration(d.Delay), d.DelayProb, d.DuplicateProb, d.ReorderProb, d.DropProb, d.Events})
}

func (d *DeliveryFaults) UnmarshalJSON(b []byte) error {
	var w deliveryFaultsJSON
	if err := strictUnmarshal(b, &w); err != nil {
		return err
	}
	*d = DeliveryFaults{time.Duration(w.Delay), w.DelayProb, w.DuplicateProb, w.ReorderProb, w.DropProb, w.Events}
	return nil
}

type faultsJSON struct {
	REST            RESTFaults                `json:"rest"`
	RESTNumbers     map[string]RESTFaults     `json:"restNumbers,omitempty"`
	Delivery        DeliveryFaults            `json:"delivery"`
	DeliveryNumbers map[string]DeliveryFaults `json:"deliveryNumbers,omitempty"`
}

func (f Faults) MarshalJSON() ([]byte, error) {
	return json.Marshal(faultsJSON(f))
}

func (f *Faults) UnmarshalJSON(b []byte) error {
	var w faultsJSON
	if err := strictUnmarshal(b, &w); err != nil {
		return err
	}
	*f = Faults(w)
	return nil
}
