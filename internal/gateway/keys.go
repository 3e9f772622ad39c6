package gateway

import (
	"context"

	"github.com/callfleet/callfleet/internal/streamtoken"
)

// tokenKeys are the keys a ws_url token may be signed with now.
func (g *Gateway) tokenKeys() streamtoken.Keys {
	if g.keyFile != nil {
		return g.keyFile.Keys()
	}
	return streamtoken.Keys{g.opts.TokenKey}
}

// watchKeys rereads the mounted key Secret until ctx ends. Sockets already
// open are never affected by a key change: the token is checked once,
// before the upgrade.
func (g *Gateway) watchKeys(ctx context.Context) {
	if g.keyFile == nil {
		return
	}
	g.keyFile.Watch(ctx, g.opts.KeyReloadInterval,
		func(ks streamtoken.Keys) {
			g.lm.keyReloads.WithLabelValues("changed").Inc()
			g.lm.tokenKeys.Set(float64(len(ks)))
			// Never the keys themselves.
			g.log.Info("stream token keys reloaded", "keys", len(ks))
		},
		func(err error) {
			g.lm.keyReloads.WithLabelValues("error").Inc()
			g.log.Error(err, "rereading the stream token key; the keys in use stay")
		})
}

// monitorKeys are the keys a monitor token may be signed with now (nil:
// monitoring off).
func (g *Gateway) monitorKeys() [][]byte {
	if g.monKeyFile != nil {
		return g.monKeyFile.Keys()
	}
	if g.opts.MonitorKey == nil {
		return nil
	}
	return [][]byte{g.opts.MonitorKey}
}

// watchMonitorKeys rereads the mounted monitor key until ctx ends, as
// watchKeys does the stream token key: a rotated root reaches the gateway
// without a restart, and open listen-in sockets are not affected.
func (g *Gateway) watchMonitorKeys(ctx context.Context) {
	if g.monKeyFile == nil {
		return
	}
	g.monKeyFile.Watch(ctx, g.opts.KeyReloadInterval,
		func(ks streamtoken.Keys) {
			g.log.Info("monitor token keys reloaded", "keys", len(ks))
		},
		func(err error) {
			g.log.Error(err, "rereading the monitor token key; the keys in use stay")
		})
}
