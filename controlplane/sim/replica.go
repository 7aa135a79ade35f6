package sim

import (
	"context"
	"io"
	"log/slog"
	"math"
	"time"

	endpoint "github.com/envoyproxy/go-control-plane/envoy/config/endpoint/v3"
	"github.com/envoyproxy/go-control-plane/pkg/cache/types"

	"github.com/bgctl/bg/controlplane/acks"
	"github.com/bgctl/bg/controlplane/converge"
	"github.com/bgctl/bg/controlplane/fleetmetrics"
	"github.com/bgctl/bg/controlplane/gate"
	"github.com/bgctl/bg/controlplane/membership"
	"github.com/bgctl/bg/controlplane/model"
	"github.com/bgctl/bg/controlplane/state"
	"github.com/bgctl/bg/controlplane/traffic"
	"github.com/bgctl/bg/controlplane/translator"
	"github.com/bgctl/bg/controlplane/xds"
)

// Replica is one `bg serve` process. A crash ends an incarnation: every
// callback of the old one is dropped, and a restart builds a new
// controller that knows only what Consul tells it.
type Replica struct {
	w           *World
	id          string
	inc         int // incarnation
	alive       bool
	partitioned bool
	pausedUntil time.Time // a paused process runs nothing until then
	term        uint64    // the lock term this replica holds, 0 = none
	leading     bool      // it believes it leads
	ctrl        *traffic.Controller
	loop        *converge.Loop // Options.Converge
	published   bool
	loaded      bool
	seen        map[string]uint64 // state watch: ModifyIndex seen per service
	everServed  map[string]bool   // service/colour → it served members once
	lastRead    map[string]model.Membership
	queries     map[string][]time.Time // service → this incarnation's metric reads in the last round interval
	proxies     []*proxy
	routes      routes
	publishing  bool                                       // a report write is scheduled
	eds         map[string]*endpoint.ClusterLoadAssignment // cluster → last pushed
}

// rt is one incarnation's traffic.Runtime on the world's scheduler.
type rt struct {
	r   *Replica
	inc int
}

func (x rt) live(what string, f func()) func() {
	return func() {
		r := x.r
		if !r.alive || r.inc != x.inc {
			return
		}
		if r.w.s.Now().Before(r.pausedUntil) {
			r.w.s.At(r.pausedUntil, "", x.live(what, f)) // a paused process catches up afterwards
			return
		}
		f()
		r.w.check()
	}
}

func (x rt) Now() time.Time { return x.r.w.s.Now() }
func (x rt) After(d time.Duration, f func()) {
	x.r.w.s.After(d, "", x.live("timer", f))
}
func (x rt) Go(f func()) {
	x.r.w.s.After(x.r.w.s.jitter(time.Millisecond, 40*time.Millisecond), "", x.live("work", f))
}
func (x rt) Post(_ string, run func()) { x.r.w.s.After(0, "", x.live("msg", run)) }
func (x rt) Call(_ string, run func()) { run() }

// pusher stands for the replica's xDS server and its proxies, which ACK
// every route at once. It keeps the endpoints pushed, for invariant 5.
type pusher struct{ r *Replica }

func (p pusher) Load(res translator.Resources) {
	_ = p.UpdateEndpoints(res.Endpoints)
	for _, svc := range services {
		p.r.push(svc, 0) // Publish marks each route's generation next
	}
}
func (p pusher) UpdateService(res translator.Resources) error {
	return p.UpdateEndpoints(res.Endpoints)
}
func (p pusher) UpdateEndpoints(cla map[string]types.Resource) error {
	for name, r := range cla {
		p.r.eds[name] = r.(*endpoint.ClusterLoadAssignment)
	}
	p.r.w.checkEDS(p.r)
	return nil
}
func (p pusher) UpdateRouteGen(name string, _ types.Resource, gen uint64) (uint64, error) {
	p.r.push(name, gen)
	return p.r.routes.seq[name], nil
}
func (p pusher) MarkRouteGen(name string, gen uint64)          { p.r.mark(name, gen) }
func (pusher) WaitRoute(context.Context, string) xds.AckResult { return xds.AckResult{} }
func (pusher) RouteStatus(string) (subscribed, acked int)      { return 0, 0 }

// gates is the simulated gate webhook: 200, or 503 during a gate-fail fault.
type gates struct{ w *World }

func (g gates) Call(_ context.Context, gt model.Gate, p gate.Payload) model.GateResult {
	res := model.GateResult{Gate: gt.Name, Stage: p.Stage, Step: p.Step - 1, Passed: true, Status: 200}
	if g.w.gateFail {
		res.Passed, res.Status, res.Detail = false, 503, "smoke test failed"
	}
	return res
}

// prometheus is the simulated Prometheus every replica queries: each
// fleet's counters grow with simulated time, 4,000 requests a second at
// 1 % errors (20 % for a bad green), none while traffic is gone. With
// Options.Scrape they move only at scrapes, and a read is as old as the
// last scrape (Reading.Scraped says when), as Prometheus's are.
type prometheus struct {
	w *World
	r *Replica // who asks
}

func (p prometheus) Read(_ context.Context, q fleetmetrics.Query) (fleetmetrics.Reading, error) {
	w := p.w
	p.r.queried(q.Service)
	if w.promDown {
		return fleetmetrics.Reading{}, fleetmetrics.ErrUnavailable
	}
	c := w.counter(q.Service, q.Color)
	req, errs := c.requests, c.errors
	if w.promNaN {
		req = math.NaN()
	}
	r := fleetmetrics.Reading{Requests: map[string]float64{"{}": req}, Errors: map[string]float64{"{}": errs}}
	if q.Scraped {
		r.Scraped = w.scrapedAt()
	}
	return r, nil
}

// maxReadsPerInterval: a round reads both fleets; within one round
// interval come at most that round, the next, and the at-once read of a
// new starting point (a new term), with room to spare. More is rounds
// run back to back, hammering Prometheus.
const maxReadsPerInterval = 8

// queried records one metrics read of svc and checks that analysis rounds
// keep their interval (a switch's plan interval, a roll's tick).
func (r *Replica) queried(svc string) {
	every := r.w.plan.Interval.D()
	if svc == cache {
		every = r.w.roll.Interval.D()
	}
	now := r.w.s.Now()
	q := append(r.queries[svc], now)
	for len(q) > 0 && now.Sub(q[0]) >= every {
		q = q[1:]
	}
	r.queries[svc] = q
	if len(q) > maxReadsPerInterval {
		r.w.violate("%s read %s's metrics %d times within %s: analysis rounds do not keep their interval", r.id, svc, len(q), every)
	}
}

// fleetCounter is one simulated fleet's request and error counters.
type fleetCounter struct {
	requests, errors float64
	at               time.Time
}

// scrapedAt is when Prometheus last scraped: now without Options.Scrape;
// otherwise every Scrape from 3/7 of one after the start (so a switch
// begins between scrapes).
func (w *World) scrapedAt() time.Time {
	now, every := w.s.Now(), w.opts.Scrape
	if every <= 0 {
		return now
	}
	first := simStart.Add(every * 3 / 7)
	if now.Before(first) {
		return simStart
	}
	return first.Add(now.Sub(first).Truncate(every))
}

// staleRequests and staleErrors are what green's web counters hold from
// a failed earlier attempt when Options.StaleGreen is set: 20 % errors.
const staleRequests, staleErrors = 1e6, 2e5

// counter brings a fleet's counters up to the last scrape and returns them.
func (w *World) counter(svc string, c model.Color) fleetCounter {
	if w.counters == nil {
		w.counters = map[string]*fleetCounter{}
	}
	k := svc + "/" + string(c)
	fc := w.counters[k]
	if fc == nil {
		fc = &fleetCounter{at: simStart}
		if w.opts.StaleGreen && svc == service && c == model.Green {
			fc.requests, fc.errors = staleRequests, staleErrors
		}
		w.counters[k] = fc
	}
	at := w.scrapedAt()
	if dt := at.Sub(fc.at).Seconds(); dt > 0 && !w.noTraffic {
		n := math.Round(4000 * dt)
		ratio := 0.01
		if c == model.Green && (w.greenBad && svc == service || w.cacheBad && svc == cache) {
			ratio = 0.2
		}
		fc.requests += n
		fc.errors += math.Round(n * ratio)
	}
	if at.After(fc.at) {
		fc.at = at
	}
	return *fc
}

var quiet = slog.New(slog.NewTextHandler(io.Discard, nil))

// start boots a new incarnation: read fleets, load state, publish,
// follow the state watch, campaign.
func (r *Replica) start() {
	w := r.w
	r.inc++
	r.alive, r.partitioned, r.term, r.leading, r.published, r.loaded = true, false, 0, false, false, false
	r.seen = map[string]uint64{}
	r.everServed = map[string]bool{}
	r.lastRead = map[string]model.Membership{}
	r.queries = map[string][]time.Time{}
	r.eds = map[string]*endpoint.ClusterLoadAssignment{}
	r.routes, r.publishing = newRoutes(), false
	for _, p := range r.proxies {
		p.connected = false
	}
	c := traffic.New([]model.Service{{Name: service, ListenerPort: 10000},
		{Name: cache, ListenerPort: 10001, Strategy: model.StrategyRolling, Affinity: model.Affinity{Header: "x-session"}}},
		"0.0.0.0", store{w.consul, r}, pusher{r}, quiet, traffic.NewMetrics(nil))
	x := rt{r, r.inc}
	c.SetRuntime(x)
	c.UseElection()
	c.SetReplica(r.id)
	c.SetShrinkGrace(w.grace)
	c.SetAnalysis(prometheus{w, r}, map[string]model.Plan{service: w.plan, cache: w.plan})
	c.SetRolling(map[string]model.RollParams{cache: w.roll})
	c.SetGates(gates{w})
	c.SetAcks(simAcks{acks.NewAggregator(ackKV{r}, ackPrefix, r.id, r, quiet)})
	r.ctrl = c
	r.loop = nil
	if w.opts.Converge {
		r.loop = r.newLoop(x)
		c.SetConvergeStatus(r.loop.Convergence)
	}
	for _, svc := range services {
		w.s.After(w.s.jitter(time.Millisecond, 30*time.Millisecond), r.id+" reads "+svc, x.live("read", func() { r.read(svc, w.truth(svc)) }))
	}
	w.s.After(w.s.jitter(time.Millisecond, 50*time.Millisecond), r.id+" loads state", x.live("load", r.load))
}

// read delivers one health read of a service to the controller.
func (r *Replica) read(svc string, m model.Membership) {
	if !r.w.consul.reachable(r) {
		return
	}
	r.lastRead[svc] = m
	r.ctrl.OnMembership(membership.Update{Service: svc, Membership: m})
}

// load mirrors serve's publishWhenComplete: load, publish, then follow.
func (r *Replica) load() {
	x := rt{r, r.inc}
	if err := r.ctrl.LoadState(context.Background()); err != nil {
		r.w.s.After(100*time.Millisecond, "", x.live("load", r.load))
		return
	}
	r.loaded = true
	if err := r.ctrl.Publish(); err != nil {
		r.w.s.After(50*time.Millisecond, "", x.live("load", r.load))
		return
	}
	r.published = true
	r.w.s.trace("%s published", r.id)
	if r.loop != nil {
		r.convergeTick(x)
	}
	for _, p := range r.proxies {
		r.w.s.After(r.w.s.jitter(time.Millisecond, 200*time.Millisecond), "", x.live("connect", func() {
			if !p.connected && !p.away {
				r.connect(p)
			}
		}))
	}
	r.deliver()
	if r.leading {
		r.ctrl.Start()
	}
}

// deliver is one round of the state watch: every key whose index changed
// since the last round, and every key that disappeared.
func (r *Replica) deliver() {
	c := r.w.consul
	if !r.published || !c.reachable(r) {
		return
	}
	for name, st := range c.states {
		if r.seen[name] == st.idx {
			continue
		}
		r.seen[name] = st.idx
		t, idx, found, err := store{c, r}.Load(context.Background(), name)
		if err == nil && found {
			r.ctrl.OnStored(name, t, idx, true)
		}
	}
	// Like consulkv.Watch: every delivery is a new index, and every
	// configured service whose key is absent is reported, seen or not (a
	// key written back and deleted again between two polls is never seen).
	for _, name := range services {
		if _, ok := c.states[name]; !ok {
			delete(r.seen, name)
			r.ctrl.OnStored(name, model.Traffic{}, state.Index(0), false)
		}
	}
	for name, st := range c.intents {
		key := name + "/intent"
		if r.seen[key] == st.idx {
			continue
		}
		r.seen[key] = st.idx
		if in, found, err := (store{c, r}).LoadIntent(context.Background(), name); err == nil && found {
			r.ctrl.OnIntent(name, in, true)
		}
	}
}

// elected: the lock is ours in a new term.
func (r *Replica) elected(term uint64) {
	r.term, r.leading = term, true
	r.w.s.trace("%s leads (term %d)", r.id, term)
	r.ctrl.Elected()
	if r.loop != nil {
		r.loop.Elected(context.Background())
	}
	x := rt{r, r.inc}
	var lead func()
	lead = func() {
		if !r.leading || r.term != term {
			return
		}
		if err := r.ctrl.LoadState(context.Background()); err != nil {
			r.w.s.After(500*time.Millisecond, "", x.live("lead", lead))
			return
		}
		if r.published {
			r.ctrl.Start()
		}
	}
	r.w.s.After(r.w.s.jitter(time.Millisecond, 20*time.Millisecond), "", x.live("lead", lead))
}

// deposed: it notices it lost the lock.
func (r *Replica) deposed() {
	if !r.leading {
		return
	}
	r.leading = false
	r.w.s.trace("%s deposed", r.id)
	r.ctrl.Deposed()
	if r.loop != nil {
		r.loop.Deposed()
	}
}

// status is what the replica serves now for svc.
func (r *Replica) status(svc string) (traffic.Status, bool) {
	if !r.alive || !r.published {
		return traffic.Status{}, false
	}
	st, err := r.ctrl.Status(svc)
	return st, err == nil
}
