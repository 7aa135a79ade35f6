package traffic

import (
	"context"
	"fmt"
	"time"

	apiv1 "github.com/bgctl/bg/controlplane/api/v1"
	"github.com/bgctl/bg/controlplane/model"
)

// The status types are the admin API's wire types (controlplane/api/v1).
type (
	Weights     = apiv1.Weights
	Member      = apiv1.Member
	FleetStatus = apiv1.FleetStatus
	ProxyCounts = apiv1.ProxyCounts
	Status      = apiv1.Status
)

// Status reports one service.
func (c *Controller) Status(name string) (Status, error) {
	c.mu.Lock()
	s := c.services[name]
	if s == nil {
		c.mu.Unlock()
		return Status{}, fmt.Errorf("%w %q", ErrUnknownService, name)
	}
	t, unsaved := s.traffic, s.unsaved
	st := Status{
		Service: name, Strategy: s.effective().Strategy, Weights: Weights{Blue: t.Percent(model.Blue), Green: t.Percent(model.Green)},
		Stable: t.Stable, Target: t.Target, Phase: t.Phase, Generation: t.Generation, Reason: t.Reason,
		SwitchID: t.LatestSwitchID(), Release: t.Release,
		Fleets: map[model.Color]FleetStatus{}, MembershipReadAt: s.readAt, Ignored: s.skipped,
	}
	if t.Rollout != nil {
		r := *t.Rollout
		r.Verdicts = append([]model.StepVerdict(nil), r.Verdicts...)
		r.GateResults = append([]model.GateResult(nil), r.GateResults...)
		st.Switch = &r
	}
	svc := s.effective()
	for _, p := range svc.Pools {
		st.Pools = append(st.Pools, p.String())
	}
	st.MirrorPercent, st.Preview = svc.MirrorPercent, t.Preview
	st.NoEnvoyListener = svc.ListenerPort == 0
	if !svc.Stateful() {
		st.Candidate = t.Candidate()
	}
	if t.Roll != nil {
		r := *t.Roll
		r.Slots = append([]model.Slot(nil), r.Slots...)
		st.Roll = &r
	}
	for _, col := range model.Colors {
		fs := FleetStatus{Versions: []string{}, Members: []Member{}}
		if s.membership != nil {
			f := s.guarded.Read.Fleet(col)
			fs.Healthy, fs.Served = len(f.Endpoints), len(s.membership.Fleet(col).Endpoints)
			if v := f.Versions(); v != nil {
				fs.Versions = v
			}
			for _, e := range f.Endpoints {
				fs.Members = append(fs.Members, Member{ID: e.ID, Address: fmt.Sprintf("%s:%d", e.Address, e.Port), Version: e.Version})
			}
			if h := s.guarded.Hold(col); h != nil {
				hc := *h
				fs.Held = &hc
			}
		}
		st.Fleets[col] = fs
	}
	c.mu.Unlock()
	c.mu.Lock()
	a := c.acks
	c.mu.Unlock()
	if a != nil {
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
		r := a.Status(ctx, name, t.Generation)
		cancel()
		st.Acks = &r
		st.Proxies = ProxyCounts{Connected: r.Subscribed, Acked: r.Acked}
	} else {
		st.Proxies.Connected, st.Proxies.Acked = c.pusher.RouteStatus(name)
	}
	st.Window = c.windowStatus(name, c.now())
	st.Unsaved = unsaved
	c.mu.Lock()
	if c.control != nil {
		st.Control = c.control()
	}
	notes, conv := c.notes, c.converge
	c.mu.Unlock()
	if notes != nil {
		st.Notifications = notes()
	}
	if conv != nil {
		st.Converge = conv(name)
	}
	return st, nil
}

// SetNotificationStatus makes status show the notification targets whose
// last delivery failed.
func (c *Controller) SetNotificationStatus(f func() []apiv1.NotificationStatus) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.notes = f
}

// SetConvergeStatus makes status show each service's desired version and
// why it is not converging (controlplane/converge). f must not call Status.
func (c *Controller) SetConvergeStatus(f func(service string) *apiv1.Convergence) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.converge = f
}

// StatusAll reports every service, sorted by name.
func (c *Controller) StatusAll() []Status {
	out := make([]Status, 0, len(c.names))
	for _, n := range c.names {
		if st, err := c.Status(n); err == nil {
			out = append(out, st)
		}
	}
	return out
}

// SetControlInfo adds cluster facts (leader, Consul reachability) to status.
func (c *Controller) SetControlInfo(f func() any) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.control = f
}
