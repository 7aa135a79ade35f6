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

// Rolling reports whether a service rolls host by host now (its config,
// or its instances' Consul meta); false for an unknown service.
func (c *Controller) Rolling(name string) bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	s := c.services[name]
	return s != nil && s.effective().Strategy == model.StrategyRolling
}

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
	st.ConfigNote = s.configNote(c.pushed)
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
		if st.Strategy == model.StrategyRolling {
			st.SessionsAtRisk, st.SessionsAtRiskUnlisted = r.NoSessions, r.NoSessionsUnlisted
		}
	} else {
		st.Proxies.Connected, st.Proxies.Acked = c.pusher.RouteStatus(name)
	}
	st.Window = c.windowStatus(name, c.now())
	st.Unsaved = unsaved
	c.mu.Lock()
	if c.control != nil {
		st.Control = c.control()
	}
	notes, reload, conv := c.notes, c.reload, c.converge
	c.mu.Unlock()
	if notes != nil {
		st.Notifications = notes()
	}
	if reload != nil {
		r := reload()
		st.Reload = &r
	}
	if conv != nil {
		st.Converge = conv(name)
	}
	return st, nil
}

// SetReloadStatus makes status show the config in force and its last reload.
func (c *Controller) SetReloadStatus(f func() apiv1.ReloadStatus) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.reload = f
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
	names := c.serviceNames()
	out := make([]Status, 0, len(names))
	for _, n := range names {
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
