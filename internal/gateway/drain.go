package gateway

import (
	"context"
	"fmt"
	"net/http"
	"sync"
	"time"

	"github.com/coder/websocket"

	voicev1alpha1 "github.com/callfleet/callfleet/api/v1alpha1"
	"github.com/callfleet/callfleet/pkg/piopiy"
)

// Rejection reasons of the drain and capacity checks (the reason label of
// stream_rejections_total).
const (
	rejectDraining   = "draining"    // the gateway is stopping: Piopiy should reach another pod
	rejectAtCapacity = "at_capacity" // MaxStreams streams are open on this pod
)

// endedByDrain labels streams the drain ended with a goodbye and hangup.
const endedByDrain = "drain"

// shutdownCause is the last resort: a socket Piopiy did not close after the
// drain's hangup.
var shutdownCause = endCause{by: endedByShutdown, code: websocket.StatusGoingAway, reason: "gateway shutting down", closePlatform: true, botCode: websocket.StatusGoingAway}

// drainState is the gateway's way out, started once by SIGTERM or the
// preStop hook (DrainHandler).
type drainState struct {
	beginOnce sync.Once
	begin     chan struct{} // closed when the drain starts
	doneOnce  sync.Once
	done      chan struct{} // closed when Shutdown has returned

	mu      sync.Mutex
	goodbye bool // the goodbye phase began: sessions set up later get it at once
}

func newDrainState() *drainState {
	return &drainState{begin: make(chan struct{}), done: make(chan struct{})}
}

// Drain asks Run to shut down as SIGTERM does.
func (g *Gateway) Drain() { g.drain.beginOnce.Do(func() { close(g.drain.begin) }) }

// DrainHandler starts the drain and answers once it is over: the bot
// container's preStop hook calls it, so the kubelet stops the bot only after
// the gateway has let its calls end.
func (g *Gateway) DrainHandler() http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		g.Drain()
		select {
		case <-g.drain.done:
			_, _ = w.Write([]byte("drained\n"))
		case <-r.Context().Done():
		}
	})
}

// Shutdown drains the gateway: readyz fails and new streams are refused at
// once; live streams go on until they end or ShutdownDrain is nearly over;
// then the calls still up hear GoodbyeURL and are hung up, which ends
// their sockets from Piopiy's side with a normal close. Only a socket still
// open when the drain is over is closed with 1001. It returns once every
// stream has reported its end, or when ctx ends.
func (g *Gateway) Shutdown(ctx context.Context) error {
	g.stopping.Store(true)
	g.lm.draining.Set(1)
	defer g.drain.doneOnce.Do(func() { close(g.drain.done) })
	empty := g.reg.close()
	start := time.Now()
	lead := min(g.opts.GoodbyeLead, g.opts.ShutdownDrain/2)
	if g.opts.ShutdownDrain <= 0 {
		lead = g.opts.GoodbyeLead
	}
	end := start.Add(max(g.opts.ShutdownDrain, lead))
	g.log.Info("draining", "streams", g.reg.len(), "until", end.Format(time.RFC3339))

	if wait(ctx, empty, time.Until(end.Add(-lead))) {
		return nil
	}
	g.drain.mu.Lock()
	g.drain.goodbye = true
	g.drain.mu.Unlock()
	for _, s := range g.reg.all() {
		s.goodbye(ctx)
	}
	if wait(ctx, empty, time.Until(end)) {
		return nil
	}
	for _, s := range g.reg.all() {
		s.finish(shutdownCause)
	}
	select {
	case <-empty:
		return nil
	case <-ctx.Done():
		return fmt.Errorf("gateway shutdown: %d streams still closing: %w", g.reg.len(), ctx.Err())
	}
}

// wait reports whether empty closed within d (false on timeout or ctx).
func wait(ctx context.Context, empty <-chan struct{}, d time.Duration) bool {
	if d <= 0 {
		select {
		case <-empty:
			return true
		default:
			return false
		}
	}
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-empty:
		return true
	case <-t.C:
	case <-ctx.Done():
	}
	return false
}

// inGoodbye reports whether sessions should be ended at once (the drain's
// goodbye phase has begun).
func (g *Gateway) inGoodbye() bool {
	g.drain.mu.Lock()
	defer g.drain.mu.Unlock()
	return g.drain.goodbye
}

// goodbye ends the call politely: the goodbye audio (if any) then a hangup,
// in one PCMO so Piopiy plays the one before doing the other. Piopiy then
// ends the call and closes the socket itself.
//
// A call bridged to a human (or whose bridge is ringing the agent) is not
// hung up: only this socket's streaming stops, and the person goes on with
// the agent. A handoff still waiting for an agent has no bridge to carry it
// without this socket, so that call gets the goodbye like the others.
func (s *session) goodbye(ctx context.Context) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.ended() || s.ctl.hangupSent {
		return
	}
	if s.ctl.bridged != "" || (s.ctl.handoffOn && len(s.ctl.bridges) > 0) {
		if s.ctl.state == voicev1alpha1.StreamStopped {
			return
		}
		if err := s.stopLocked(ctx, "gateway draining: streaming ended, the handoff goes on"); err != nil {
			s.log.Error(err, "drain stop")
		}
		return
	}
	var p piopiy.PCMO
	if u := s.g.opts.GoodbyeURL; u != "" && s.ctl.state != voicev1alpha1.StreamStopped {
		p = append(p, piopiy.PlayURL(u))
	}
	p = append(p, piopiy.Hangup())
	b, err := piopiy.PCMOFrame(p)
	if err == nil {
		err = s.send(ctx, "goodbye", b)
	}
	if err != nil {
		// The platform socket is failing: the last resort will close it.
		s.log.Error(err, "drain goodbye")
		return
	}
	s.ctl.hangupSent = true
	s.rep.HangupSent = true
	s.drained.Store(true)
	s.g.lm.drainHangups.Inc()
	s.log.Info("drain: goodbye and hangup sent")
}
