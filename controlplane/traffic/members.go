package traffic

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/bgctl/bg/controlplane/model"
)

// ErrInRelease: the service is a member of a running release, which alone
// may switch it until the release ends (or the member settles).
var ErrInRelease = errors.New("the service is in a running release")

// ReleaseGuard names the running release that owns a service ("" for
// none), or fails when it cannot tell yet (a new leader that has not
// loaded its releases).
type ReleaseGuard func(service string) (release string, err error)

// SetReleaseGuard makes switch, abort, pause, resume and promote of a
// service owned by a running release fail with ErrInRelease, except when
// the request carries that release's tag (Request.Release). A request
// tagged with a release that does not own the service fails too, so a
// deposed leader's release cannot act on anything.
func (c *Controller) SetReleaseGuard(g ReleaseGuard) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.releaseGuard = g
}

// checkRelease refuses a command on a service another release owns. It
// runs before the command reaches the service's loop: a release that
// claims the service meanwhile sees the switch as made outside it, and
// rolls back (the safe side).
func (c *Controller) checkRelease(service, release string) error {
	c.mu.Lock()
	g := c.releaseGuard
	c.mu.Unlock()
	if g == nil {
		return nil
	}
	owner, err := g(service)
	switch {
	case err != nil:
		return err
	case owner == release:
		return nil
	case owner == "":
		return fmt.Errorf("%w: %s is no longer a member of release %s", ErrInRelease, service, release)
	}
	return fmt.Errorf("%w: %s is a member of release %s, which alone switches it until it ends; abort, pause or wait for the release (bg release status %s)",
		ErrInRelease, service, owner, owner)
}

// TrafficState is the service's traffic state as this replica serves it.
func (c *Controller) TrafficState(service string) (model.Traffic, error) {
	return c.traffic(service)
}

// Acked says whether every proxy (of every replica, with SetAcks) holds
// the service's generation gen, asked now without waiting.
func (c *Controller) Acked(ctx context.Context, service string, gen uint64) bool {
	c.mu.Lock()
	a := c.acks
	c.mu.Unlock()
	if a == nil {
		subscribed, acked := c.pusher.RouteStatus(service)
		return acked >= subscribed
	}
	ctx, cancel := context.WithTimeout(ctx, 2*time.Second)
	defer cancel()
	return a.Status(ctx, service, gen).AckResult().Complete()
}

// Progressive says whether a switch of service without Instant is judged
// step by step (a plan and a metrics source) or rolled host by host (a
// stateful service): what a release starts for it. False: the switch
// would be refused, so a release switches it instantly.
func (c *Controller) Progressive(service string) bool {
	s, err := c.lookup(service)
	if err != nil {
		return false
	}
	if c.effective(s).Stateful() {
		return true
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	_, ok := c.plans[service]
	return ok && c.source != nil
}

// WindowAt says whether the service's deploy windows let a switch start
// now (nil: no windows, always open).
func (c *Controller) WindowAt(service string) *WindowStatus {
	return c.windowStatus(service, c.now())
}

// Runtime is where the controller's loops, timers and clock come from.
func (c *Controller) Runtime() Runtime { return c.rt }

// Now is the controller's clock.
func (c *Controller) Now() time.Time { return c.now() }

// guardCommand checks a command's service exists and no release it is
// not tagged with owns it.
func (c *Controller) guardCommand(req Request) error {
	if _, err := c.lookup(req.Service); err != nil {
		return err
	}
	return c.checkRelease(req.Service, req.Release)
}
