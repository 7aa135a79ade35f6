package traffic

import (
	"context"
	"fmt"
	"time"

	"github.com/bgctl/bg/controlplane/acks"
	"github.com/bgctl/bg/controlplane/membership"
	"github.com/bgctl/bg/controlplane/model"
)

// Weights is the split in percent.
type Weights struct {
	Blue  int `json:"blue"`
	Green int `json:"green"`
}

// Member is one passing instance.
type Member struct {
	ID      string `json:"id"`
	Address string `json:"address"`
	Version string `json:"version,omitempty"`
}

// FleetStatus summarises one colour's passing instances.
type FleetStatus struct {
	Healthy  int      `json:"healthy"`
	Versions []string `json:"versions"`
	Members  []Member `json:"members"`
	// Held: a read lost most of this fleet; the members above are the last
	// known ones, kept until Held.Until (never emptied while it carries traffic).
	Held *membership.Held `json:"held,omitempty"`
}

// ProxyCounts says how many proxies use the service's route and how many
// hold its current generation.
type ProxyCounts struct {
	Connected int `json:"connected"`
	Acked     int `json:"acked"`
}

// Status is what `bg status` shows for one service.
type Status struct {
	Service    string                      `json:"service"`
	Strategy   model.Strategy              `json:"strategy"`
	Weights    Weights                     `json:"weights"`
	Stable     model.Color                 `json:"stable"`
	Target     model.Color                 `json:"target,omitempty"`
	Phase      model.Phase                 `json:"phase"`
	Generation uint64                      `json:"generation"`
	Reason     string                      `json:"reason,omitempty"`
	Fleets     map[model.Color]FleetStatus `json:"fleets"`
	// Proxies counts every replica's proxies using the route and those
	// holding the current generation; Acks has them per replica.
	Proxies ProxyCounts  `json:"proxies"`
	Acks    *acks.Result `json:"acks,omitempty"`
	// MembershipReadAt is the last successful Consul read.
	MembershipReadAt time.Time `json:"membership_read_at,omitzero"`
	Ignored          []string  `json:"ignored_instances,omitempty"`
	// Switch is the last progressive switch: plan, step, verdicts, why it holds or ended.
	Switch *model.Rollout `json:"switch,omitempty"`
	// Roll is the last host-by-host switch of a stateful service: each slot's
	// old host and replacement and where they stand.
	Roll *model.Roll `json:"roll,omitempty"`
	// Pools are the service's canary pools; Candidate is where they and
	// mirrored requests go now ("" = off); Preview is set by bg preview.
	Pools         []string    `json:"pools,omitempty"`
	MirrorPercent int         `json:"mirror_percent,omitempty"`
	Candidate     model.Color `json:"candidate,omitempty"`
	Preview       model.Color `json:"preview,omitempty"`
	// Window says whether a switch may start now (absent: always).
	Window *WindowStatus `json:"window,omitempty"`
	// Control says which replica answered, whether it acts, and whether it
	// reaches Consul: while no leader reaches Consul, switches are paused.
	Control any `json:"control,omitempty"`
}

// Status reports one service.
func (c *Controller) Status(name string) (Status, error) {
	c.mu.Lock()
	s := c.services[name]
	if s == nil {
		c.mu.Unlock()
		return Status{}, fmt.Errorf("%w %q", ErrUnknownService, name)
	}
	t := s.traffic
	st := Status{
		Service: name, Strategy: s.effective().Strategy, Weights: Weights{Blue: t.Percent(model.Blue), Green: t.Percent(model.Green)},
		Stable: t.Stable, Target: t.Target, Phase: t.Phase, Generation: t.Generation, Reason: t.Reason,
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
	if !svc.Rolling() {
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
			f := s.membership.Fleet(col)
			fs.Healthy = len(f.Endpoints)
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
	c.mu.Lock()
	if c.control != nil {
		st.Control = c.control()
	}
	c.mu.Unlock()
	return st, nil
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
