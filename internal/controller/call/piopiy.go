package call

import (
	"context"
	"crypto/sha256"
	"fmt"
	"sync"

	"github.com/callfleet/callfleet/pkg/piopiy"
)

// PiopiyAPI is the part of pkg/piopiy's client the controller uses; tests may
// substitute it, but the suites run against piopiy-sim.
type PiopiyAPI interface {
	MakeCall(ctx context.Context, req piopiy.MakeCallRequest) (*piopiy.MakeCallResponse, error)
	CallAction(ctx context.Context, cmiuuid string, action piopiy.CallActionKind) error
	CDRsByRequestID(ctx context.Context, requestID string) ([]piopiy.CDR, error)
}

// ClientCache builds one client per account and reuses it, so connection
// pools are shared by every Call of an account.
type ClientCache struct {
	Options []piopiy.Option

	mu      sync.Mutex
	clients map[[32]byte]PiopiyAPI
}

// For returns the client of creds.
func (c *ClientCache) For(creds piopiy.Credentials) (PiopiyAPI, error) {
	key := sha256.Sum256(fmt.Appendf(nil, "%d\x00%s", creds.AppID, creds.Secret))
	c.mu.Lock()
	defer c.mu.Unlock()
	if cl, ok := c.clients[key]; ok {
		return cl, nil
	}
	cl, err := piopiy.NewClient(creds, c.Options...)
	if err != nil {
		return nil, err
	}
	if c.clients == nil {
		c.clients = map[[32]byte]PiopiyAPI{}
	}
	c.clients[key] = cl
	return cl, nil
}
