package sim

import (
	"context"
	"fmt"
	"time"

	"github.com/bgctl/bg/controlplane/model"
	"github.com/bgctl/bg/controlplane/traffic"
)

// The simulated services: web switches progressively, cache (stateful)
// rolls host by host.
const (
	service = "web"
	cache   = "cache"
)

var services = []string{service, cache}

// Options shape one run; Random fills them from the seed.
type Options struct {
	Replicas int
	// GreenBadAt: from then on green's error ratio is 20 % (zero: never).
	GreenBadAt time.Duration
	// Faults run during the fault phase, in time order.
	Faults []Fault
	// Abort: the operator aborts at this time (zero: never).
	Abort time.Duration
	// CacheBadAt: from then on the cache's green hosts fail (zero: never).
	CacheBadAt time.Duration
	// Gates: web's plan has a smoke gate at pre, step and post that rolls
	// back when it fails.
	Gates bool
	// Scrape: Prometheus scrapes this often (zero: reads see live counters).
	Scrape time.Duration
	// StaleGreen: green's web counters start with a failed earlier
	// attempt's requests at 20 % errors (issue 13's stale data): a healthy
	// green must not be judged on them.
	StaleGreen bool
	// Converge: the operator desires web v2 instead of switching, and the
	// convergence loop switches (never drawn by Random: the seeds keep
	// their runs).
	Converge bool
	// AbortUntold: the operator's abort does not reach the loop (the admin
	// replica could not write its mark); the loop must see it itself.
	AbortUntold bool
}

// Fault is one injected failure.
type Fault struct {
	At      time.Duration
	Kind    FaultKind
	Replica int           // which replica, where it applies (-1: the leader then, -2: a follower then)
	For     time.Duration // how long it lasts
	Service string        // which service, for reads and keys ("": web)
	Slot    int           // Vanish: which slot's replacement (1..4)
}

// FaultKind names an injected failure.
type FaultKind string

const (
	ConsulOutage FaultKind = "consul-outage"   // every replica loses Consul
	Partition    FaultKind = "partition"       // one replica loses Consul
	Crash        FaultKind = "crash"           // kill -9, restart after For
	Pause        FaultKind = "pause"           // the process stops for For, then resumes
	DeleteKey    FaultKind = "delete-key"      // the state key disappears
	EmptyRead    FaultKind = "empty-read"      // a health read with no passing instance
	HalvedRead   FaultKind = "halved-read"     // a health read with 1 of 4 per colour
	PromOutage   FaultKind = "prometheus-down" // queries fail
	PromNaN      FaultKind = "prometheus-nan"  // queries return NaN
	Vanish       FaultKind = "vanish"          // a cache replacement leaves Consul, then returns
	NoTraffic    FaultKind = "no-traffic"      // queries answer, with too few requests to judge
	GateFail     FaultKind = "gate-fail"       // web's gate webhooks answer 503
	Nack         FaultKind = "nack"            // a proxy rejects every route
	Disconnect   FaultKind = "disconnect"      // a proxy's stream drops, then reconnects
)

var kinds = []FaultKind{ConsulOutage, Partition, Crash, Pause, DeleteKey, EmptyRead, HalvedRead, PromOutage, PromNaN, Vanish, NoTraffic, GateFail, Nack, Disconnect}

// Random draws a run from seed.
func Random(seed int64) Options {
	s := newScheduler(seed)
	o := Options{Replicas: 1 + s.rng.Intn(3)}
	if s.rng.Intn(2) == 0 {
		o.GreenBadAt = s.jitter(0, 15*time.Second)
	}
	if s.rng.Intn(6) == 0 {
		o.Abort = s.jitter(3*time.Second, 20*time.Second)
	}
	if s.rng.Intn(4) == 0 {
		o.CacheBadAt = s.jitter(2*time.Second, 15*time.Second)
	}
	o.Gates = s.rng.Intn(2) == 0
	n := 2 + s.rng.Intn(5)
	for range n {
		f := Fault{At: s.jitter(500*time.Millisecond, 30*time.Second), Kind: kinds[s.rng.Intn(len(kinds))], Replica: s.rng.Intn(o.Replicas+1) - 1,
			Service: services[s.rng.Intn(len(services))], Slot: 1 + s.rng.Intn(4)}
		f.For = s.jitter(200*time.Millisecond, 8*time.Second)
		o.Faults = append(o.Faults, f)
	}
	// Drawn from the seed, not the generator, so the faults above are
	// those the seed always had.
	o.Scrape = []time.Duration{0, 250 * time.Millisecond, time.Second}[seed%3]
	o.StaleGreen = seed%2 == 0
	return o
}

// World is one simulated deployment.
type World struct {
	s        *Scheduler
	consul   *Consul
	replicas []*Replica
	opts     Options

	promDown, promNaN, greenBad bool
	noTraffic                   bool
	gateFail                    bool
	blindSince                  time.Time // since when no verdict is possible (zero: metrics judge)
	grace                       time.Duration
	ttl                         time.Duration
	plan                        model.Plan
	roll                        model.RollParams
	vanished                    map[string]bool // cache hosts gone from Consul
	counters                    map[string]*fleetCounter
	cacheBad                    bool

	// invariant bookkeeping
	violations  []string
	decided     map[string]*decision // service/switch or roll ID → the rollback decided
	maxGen      map[string]uint64
	rollSlots   map[string][]model.SlotState // service/roll ID → slot states last stored
	switchSteps map[string]storedStep        // service/switch ID → step last stored
	termOf      map[uint64]string
	seen        map[string]*observed // replica id#inc → last observation
	lapse       map[string]time.Time // replica id → when it became unreachable
	deadAt      map[string]time.Time // ACK report key → when its session's process died
	switchID    string
	promotedBad bool
	// Options.Converge: web's switches seen, when its desire failed.
	convSwitches map[string]bool
	failedAt     time.Time
}

type decision struct {
	by      string
	dropped bool
	// durable: Consul holds it (the state ended back, or an intent). Only
	// then can other replicas know of it; until then only the decider is
	// bound (a replica cut off from Consul cannot tell anyone).
	durable bool
}

type observed struct {
	unsaved bool
	step    map[string]int // switch → step seen
	gen     uint64
	green   int
	share   map[string]int  // switch ID → candidate share seen
	back    map[string]bool // switch ID → seen ended back
}

// New builds a world for opts with a seeded scheduler.
func New(seed int64, opts Options) *World {
	w := &World{s: newScheduler(seed), opts: opts, grace: 3 * time.Second, ttl: 2 * time.Second, vanished: map[string]bool{}, maxGen: map[string]uint64{},
		decided: map[string]*decision{}, convSwitches: map[string]bool{}, termOf: map[uint64]string{}, seen: map[string]*observed{}, lapse: map[string]time.Time{}, deadAt: map[string]time.Time{}}
	w.plan = model.Plan{
		Steps: []int{10, 50, 100}, Bake: model.Duration(2 * time.Second), Interval: model.Duration(500 * time.Millisecond),
		MinRequests: 100, Confidence: 0.99, Margin: 0.1,
		UnavailableBudget: model.Duration(4 * time.Second), OnUnavailable: model.OnUnavailableRollback,
		InsufficientBudget: model.Duration(4 * time.Second), OnInsufficient: model.OnUnavailableRollback, Rollback: model.RollbackInstant,
	}
	if opts.Gates {
		w.plan.Gates = []model.Gate{{Name: "smoke", URL: "http://smoke.sim/run", Stages: []string{model.GatePre, model.GateStep, model.GatePost},
			Timeout: model.Duration(time.Second), OnFailure: model.GateRollback}}
	}
	w.roll = model.RollParams{MaxUnavailable: 1, MinAvailable: 3, DrainTimeout: model.Duration(400 * time.Millisecond),
		Bake: model.Duration(800 * time.Millisecond), ReplaceTimeout: model.Duration(5 * time.Second), Interval: model.Duration(200 * time.Millisecond),
		Judged: true, UnavailableBudget: model.Duration(4 * time.Second), OnUnavailable: model.OnUnavailableRollback}
	w.consul = newConsul(w)
	for i := range opts.Replicas {
		r := &Replica{w: w, id: fmt.Sprintf("r%d", i)}
		for j := range 2 {
			r.proxies = append(r.proxies, &proxy{node: fmt.Sprintf("proxy-%d-%d", i, j)})
		}
		w.replicas = append(w.replicas, r)
	}
	return w
}

// truth is what Consul's health API says of a service: four hosts per
// colour; the cache's are on slots s1..s4, minus the replacements that
// vanished.
func (w *World) truth(svc string) model.Membership {
	m := model.Membership{}
	for i := 1; i <= 4; i++ {
		b := model.Endpoint{ID: fmt.Sprintf("b%d", i), Address: fmt.Sprintf("10.0.0.%d", i), Port: 8080, Weight: 1}
		g := model.Endpoint{ID: fmt.Sprintf("g%d", i), Address: fmt.Sprintf("10.0.1.%d", i), Port: 8080, Weight: 1}
		if svc == cache {
			b.ID, g.ID = "c"+b.ID, "c"+g.ID
			b.Address, g.Address = fmt.Sprintf("10.1.0.%d", i), fmt.Sprintf("10.1.1.%d", i)
			b.Slot, g.Slot = fmt.Sprintf("s%d", i), fmt.Sprintf("s%d", i)
		}
		if w.opts.Converge && svc == service {
			b.Version, g.Version = "v1", "v2"
		}
		m.Blue.Endpoints = append(m.Blue.Endpoints, b)
		if !w.vanished[g.ID] {
			m.Green.Endpoints = append(m.Green.Endpoints, g)
		}
	}
	return m
}

// Run plays the scenario: boot, operator switch, faults for 40 s, then
// everything heals and runs quiet for 30 s; the invariants are checked
// after every event and at the end.
func (w *World) Run() []string {
	start := w.s.Now()
	for _, r := range w.replicas {
		r.start()
	}
	w.s.After(100*time.Millisecond, "", w.electionTick)
	if w.opts.Converge {
		w.s.After(time.Second, "operator: desire web v2", w.operatorDesire)
	} else {
		w.s.After(time.Second, "operator: switch web to green", w.operatorSwitch)
	}
	w.s.After(1500*time.Millisecond, "operator: roll cache to green", w.operatorRoll)
	if w.opts.CacheBadAt > 0 {
		w.s.After(w.opts.CacheBadAt, "cache's green turns bad", func() { w.cacheBad = true })
	}
	if w.opts.GreenBadAt > 0 {
		w.s.After(w.opts.GreenBadAt, "green turns bad", func() { w.greenBad = true })
	}
	if w.opts.Abort > 0 {
		w.s.After(w.opts.Abort, "operator: abort", w.operatorAbort)
	}
	for _, f := range w.opts.Faults {
		w.inject(f)
	}
	w.s.After(40*time.Second, "heal everything", w.heal)
	end := start.Add(70 * time.Second)
	for w.s.step(end) && len(w.violations) == 0 {
	}
	if len(w.violations) == 0 {
		w.final()
		if w.opts.Converge {
			w.finalConverge()
		}
	}
	return w.violations
}

func (w *World) byID(id string) *Replica {
	for _, r := range w.replicas {
		if r.id == id {
			return r
		}
	}
	return nil
}

func (w *World) leader() *Replica {
	for _, r := range w.replicas {
		if r.alive && r.leading && r.id == w.consul.holder && r.term == w.consul.term && r.published {
			return r
		}
	}
	return nil
}

// operatorSwitch: `bg switch web --to green`, sent to the leader (the
// admin API forwards there), retried until some leader takes it.
func (w *World) operatorSwitch() {
	r := w.leader()
	if r == nil || !w.consul.reachable(r) {
		w.s.After(500*time.Millisecond, "operator: retry switch", w.operatorSwitch)
		return
	}
	res, err := r.ctrl.Switch(context.Background(), traffic.Request{Service: service, To: model.Green})
	if err != nil {
		w.s.trace("switch refused: %v", err)
		w.s.After(500*time.Millisecond, "operator: retry switch", w.operatorSwitch)
		return
	}
	if res.Status.Switch != nil {
		w.switchID = res.Status.Switch.ID
	}
	w.s.trace("switch %s started", w.switchID)
	w.check()
}

// operatorRoll: `bg switch cache --to green`, a roll host by host.
func (w *World) operatorRoll() {
	r := w.leader()
	if r == nil || !w.consul.reachable(r) {
		w.s.After(500*time.Millisecond, "operator: retry roll", w.operatorRoll)
		return
	}
	res, err := r.ctrl.Switch(context.Background(), traffic.Request{Service: cache, To: model.Green})
	if err != nil {
		w.s.trace("roll refused: %v", err)
		w.s.After(500*time.Millisecond, "operator: retry roll", w.operatorRoll)
		return
	}
	if res.Status.Roll != nil {
		w.s.trace("roll %s started", res.Status.Roll.ID)
	}
	w.check()
}

func (w *World) operatorAbort() {
	r := w.leader()
	if r == nil || !w.consul.reachable(r) {
		w.s.After(500*time.Millisecond, "operator: retry abort", w.operatorAbort)
		return
	}
	res, err := r.ctrl.Abort(context.Background(), traffic.Request{Service: service, Reason: "operator abort"})
	if err != nil {
		w.s.trace("abort failed: %v", err)
		w.s.After(500*time.Millisecond, "operator: retry abort", w.operatorAbort)
		return
	}
	if r.loop != nil && !w.opts.AbortUntold { // the admin API tells the loop, as serve does
		if err := r.loop.Aborted(traffic.WithActor(context.Background(), "operator"), service, res.Changed); err != nil {
			w.s.trace("abort applied; convergence not told: %v", err)
		}
	}
	w.check()
}

// electionTick runs the lock: sessions of replicas that stopped renewing
// lapse after the TTL; a free lock goes to a live replica that reaches
// Consul; a replica that lost the lock notices.
func (w *World) electionTick() {
	c := w.consul
	now := w.s.Now()
	changed := false
	for _, r := range w.replicas {
		ok := r.alive && !r.partitioned && !now.Before(r.pausedUntil)
		if ok || c.down {
			delete(w.lapse, r.id) // an outage of the servers stops every session clock
			continue
		}
		if _, seen := w.lapse[r.id]; !seen {
			w.lapse[r.id] = now
		}
	}
	if h := c.holder; h != "" {
		at, lapsed := w.lapse[h]
		if hr := w.byID(h); hr.inc != c.holderInc {
			// The holder's process died: its session is not renewed by
			// the new incarnation, which has a session of its own.
			if t, ok := w.lapse[h+"#old"]; ok {
				at, lapsed = t, true
			} else {
				w.lapse[h+"#old"] = now
				at, lapsed = now, true
			}
		}
		if lapsed && now.Sub(at) >= w.ttl {
			w.s.trace("session of %s invalidated", h)
			c.holder, changed = "", true
			delete(w.lapse, h+"#old")
		}
	}
	for _, r := range w.replicas {
		if !r.leading || !r.alive || now.Before(r.pausedUntil) {
			continue
		}
		lost := c.holder != r.id || c.term != r.term
		if c.reachable(r) && lost {
			r.deposed()
			changed = true
		} else if at, gone := w.lapse[r.id]; gone && now.Sub(at) >= w.ttl {
			r.deposed() // its lock monitor gives up
			changed = true
		}
	}
	if c.holder == "" && !c.down {
		var cands []*Replica
		for _, r := range w.replicas {
			if r.alive && !r.partitioned && !now.Before(r.pausedUntil) {
				cands = append(cands, r)
			}
		}
		if len(cands) > 0 {
			r := cands[w.s.rng.Intn(len(cands))]
			c.term++
			c.holder, c.holderInc = r.id, r.inc
			w.termOf[c.term] = r.id
			r.elected(c.term)
			changed = true
		}
	}
	if w.lapseReports() || changed {
		w.check() // every other event checks after itself
	}
	w.s.After(100*time.Millisecond, "", w.electionTick)
}

// inject schedules one fault and its end.
func (w *World) inject(f Fault) {
	pick := func() *Replica {
		if f.Replica == -2 {
			for _, r := range w.replicas {
				if r.alive && r != w.leader() {
					return r
				}
			}
		}
		if f.Replica < 0 || f.Replica >= len(w.replicas) {
			if l := w.leader(); l != nil {
				return l
			}
			return w.replicas[0]
		}
		return w.replicas[f.Replica]
	}
	w.s.After(f.At, fmt.Sprintf("fault %s for %s", f.Kind, f.For), func() {
		switch f.Kind {
		case ConsulOutage:
			w.consul.down = true
			w.s.After(f.For, "consul back", func() { w.consul.down = false; w.notifyWatchers() })
		case Partition:
			r := pick()
			r.partitioned = true
			w.s.trace("%s partitioned", r.id)
			w.s.After(f.For, r.id+" partition healed", func() { r.partitioned = false; w.notifyWatchers(); r.readAgain() })
		case Crash:
			r := pick()
			if !r.alive {
				return
			}
			w.crash(r)
			w.s.After(f.For, r.id+" restarts", func() {
				if !r.alive {
					r.start()
				}
			})
		case Pause:
			r := pick()
			r.pausedUntil = w.s.Now().Add(f.For)
			w.s.trace("%s paused until +%s", r.id, f.For)
		case DeleteKey:
			w.consul.deleteKey(svcOf(f))
		case EmptyRead, HalvedRead:
			r, svc := pick(), svcOf(f)
			m := model.Membership{}
			if f.Kind == HalvedRead {
				t := w.truth(svc)
				m.Blue.Endpoints, m.Green.Endpoints = t.Blue.Endpoints[:1], t.Green.Endpoints[:min(1, len(t.Green.Endpoints))]
			}
			if r.alive {
				rt{r, r.inc}.live("read", func() { r.read(svc, m) })()
				inc := r.inc
				w.s.After(f.For, r.id+" reads the fleets again", rt{r, inc}.live("read", func() { r.read(svc, w.truth(svc)) }))
			}
		case Vanish:
			id := fmt.Sprintf("cg%d", f.Slot)
			w.vanished[id] = true
			w.readAll(cache)
			w.s.After(f.For, id+" registers again", func() { delete(w.vanished, id); w.readAll(cache) })
		case PromOutage:
			w.promDown = true
			w.promChanged()
			w.s.After(f.For, "prometheus back", func() { w.promDown = false; w.promChanged() })
		case PromNaN:
			w.promNaN = true
			w.promChanged()
			w.s.After(f.For, "prometheus sane", func() { w.promNaN = false; w.promChanged() })
		case Nack, Disconnect:
			r := pick()
			p := r.proxies[f.Slot%len(r.proxies)]
			if f.Kind == Nack {
				p.nacking = true
				w.s.After(f.For, p.node+" accepts routes again", func() { p.nacking = false })
				break
			}
			p.connected, p.away = false, true
			r.schedulePublish()
			inc := r.inc
			w.s.After(f.For, p.node+" reconnects", func() {
				p.away = false
				if r.alive && r.inc == inc && r.published && !p.connected {
					r.connect(p)
				}
			})
		case GateFail:
			w.gateFail = true
			w.s.After(f.For, "gates pass again", func() { w.gateFail = false })
		case NoTraffic:
			w.noTraffic = true
			w.promChanged()
			w.s.After(f.For, "traffic back", func() { w.noTraffic = false; w.promChanged() })
		}
		w.check()
	})
}

func (r *Replica) readAgain() {
	x := rt{r, r.inc}
	for _, svc := range services {
		r.w.s.After(r.w.s.jitter(time.Millisecond, 30*time.Millisecond), "", x.live("read", func() { r.read(svc, r.w.truth(svc)) }))
	}
}

// readAll: every live replica's health watch sees a change of svc.
func (w *World) readAll(svc string) {
	for _, r := range w.replicas {
		if r.alive {
			x := rt{r, r.inc}
			w.s.After(w.s.jitter(time.Millisecond, 30*time.Millisecond), "", x.live("read", func() { r.read(svc, w.truth(svc)) }))
		}
	}
}

func svcOf(f Fault) string {
	if f.Service == "" {
		return service
	}
	return f.Service
}

// crash kills a replica: a rollback it decided but never stored dies with
// it (nobody else can know of it), so the invariant stops tracking it.
func (w *World) crash(r *Replica) {
	w.s.trace("%s crashes", r.id)
	for id, d := range w.decided {
		if d.by == r.id && !d.durable && !w.storedBack(id) {
			d.dropped = true
			w.s.trace("rollback of %s decided by %s died unsaved", id, r.id)
		}
	}
	r.alive, r.leading = false, false
	for _, p := range r.proxies {
		p.connected = false // its streams drop; they come back when it does
	}
}

// heal ends every fault: the run then converges.
func (w *World) heal() {
	w.consul.down, w.promDown, w.promNaN, w.noTraffic, w.gateFail = false, false, false, false, false
	w.promChanged()
	clear(w.vanished)
	for _, r := range w.replicas {
		r.partitioned = false
		r.pausedUntil = time.Time{}
		for _, p := range r.proxies {
			p.nacking = false
		}
		if !r.alive {
			r.start()
		} else {
			r.readAgain()
		}
	}
	w.notifyWatchers()
}

// notifyWatchers schedules a state-watch round on every replica.
func (w *World) notifyWatchers() {
	for _, r := range w.replicas {
		if !r.alive {
			continue
		}
		x := rt{r, r.inc}
		w.s.After(w.s.jitter(time.Millisecond, 30*time.Millisecond), "", x.live("watch", r.deliver))
	}
}

// promChanged records since when Prometheus cannot give a verdict.
func (w *World) promChanged() {
	blind := w.promDown || w.promNaN || w.noTraffic
	switch {
	case blind && w.blindSince.IsZero():
		w.blindSince = w.s.Now()
	case !blind:
		w.blindSince = time.Time{}
	}
}
