package release

import (
	"encoding/json"
	"fmt"
	"reflect"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/bgctl/bg/controlplane/model"
)

// world is a fake control plane under one release: member services whose
// switches take one plan duration to promote (or fail part-way), ACKs that
// take ack, a simulated clock, and the leader's queue of events. It
// carries out effects as bg's executor must: idempotently, reporting each
// outcome as a fresh read of the member's state.
type world struct {
	t    testing.TB
	rid  string
	now  time.Time
	plan time.Duration // D: one switch's duration
	ack  time.Duration // time for every proxy to ACK a flip back
	// fail: the member's switch fails its analysis this long after it starts.
	fail map[string]time.Duration
	// gatePass: a release gate passes from this long after t0; a gate not
	// listed always fails. Each call answers after gateLatency.
	gatePass  map[string]time.Duration
	gateCalls int
	svcs      map[string]*fakeService
	timers    []timer
	seq       int
	inbox     []func() Event // the leader's queue; observations are read when delivered
	stored    Release        // the last persisted release (Decide never writes into it)
	levels    map[string]int

	starts    map[string]int       // switches started per service
	startedAt map[string]time.Time // when each member's switch started
	rollbacks []rollbackAt         // switches back carried out, in order
	log       []string             // every effect carried out, with its time
	steps     int
}

type fakeService struct {
	from, to model.Color // the release's
	serving  model.Color
	gen      int
	latest   *fakeSwitch
}

type fakeSwitch struct {
	id, release string
	to          model.Color
	phase       SwitchPhase
	cause       model.Cause
	reason      string
	confirmed   bool
}

type timer struct {
	at     time.Time
	seq    int
	leader bool // an ACK wait: dies with the leader
	fire   func()
}

type rollbackAt struct {
	at      time.Duration
	service string
}

func newWorld(t testing.TB, r Release, plan, ack time.Duration, fail map[string]time.Duration) *world {
	w := &world{t: t, rid: r.ID, now: t0, plan: plan, ack: ack, fail: fail, svcs: map[string]*fakeService{},
		starts: map[string]int{}, startedAt: map[string]time.Time{}, levels: map[string]int{}}
	for _, m := range r.Members {
		s := &fakeService{from: m.From, to: m.To, serving: m.From}
		if m.Base != "" {
			if _, err := fmt.Sscanf(m.Base, "gen-%d", &s.gen); err != nil {
				t.Fatalf("base %q: %v", m.Base, err)
			}
			s.latest = &fakeSwitch{id: m.Base, to: m.From, phase: SwitchPromoted, confirmed: true}
		}
		w.svcs[m.Service] = s
		w.levels[m.Service] = m.Level
	}
	w.stored = r
	return w
}

func mustJSON(t testing.TB, r Release) []byte {
	b, err := json.Marshal(r)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func (w *world) after(d time.Duration, leader bool, f func()) {
	w.seq++
	w.timers = append(w.timers, timer{at: w.now.Add(d), seq: w.seq, leader: leader, fire: f})
}

// command delivers an operator's command at d.
func (w *world) command(d time.Duration, ev func(now time.Time) Event) {
	w.seq++
	w.timers = append(w.timers, timer{at: t0.Add(d), seq: w.seq, fire: func() { w.send(ev) }})
}

func (w *world) send(ev func(now time.Time) Event) {
	w.inbox = append(w.inbox, func() Event { return ev(w.now) })
}

func (w *world) observe(svc string) {
	w.inbox = append(w.inbox, func() Event {
		s := w.svcs[svc]
		o := MemberObserved{Now: w.now, Service: svc}
		if l := s.latest; l != nil {
			o.SwitchID, o.Release, o.To, o.Phase, o.Cause, o.Reason, o.Confirmed = l.id, l.release, l.to, l.phase, l.cause, l.reason, l.confirmed
		}
		return o
	})
}

func (w *world) refuse(svc, why string) {
	w.send(func(now time.Time) Event { return StartRefused{Now: now, Service: svc, Reason: why} })
}

// next is the leader's next event: its queue first, else the next timer.
func (w *world) next() (Event, bool) {
	for {
		if len(w.inbox) > 0 {
			f := w.inbox[0]
			w.inbox = w.inbox[1:]
			return f(), true
		}
		if len(w.timers) == 0 {
			return nil, false
		}
		slices.SortFunc(w.timers, func(a, b timer) int {
			if c := a.at.Compare(b.at); c != 0 {
				return c
			}
			return a.seq - b.seq
		})
		tm := w.timers[0]
		w.timers = w.timers[1:]
		w.now = tm.at
		tm.fire()
	}
}

func (w *world) confirm(svc string, sw *fakeSwitch) func() {
	return func() {
		sw.confirmed = true
		w.observe(svc)
	}
}

// exec carries out one effect of a decision that led to r.
func (w *world) exec(e Effect, r Release) {
	w.log = append(w.log, fmt.Sprintf("%v %T%+v", w.now.Sub(t0), e, e))
	switch e := e.(type) {
	case Persist:
		w.stored = r
	case CallGates:
		w.gateCalls++
		// The call is the leader's: it dies with it (Resync calls again).
		w.after(gateLatency, true, func() {
			ev := GatesResult{Now: w.now, Stage: e.Stage}
			for _, g := range e.Gates {
				from, ok := w.gatePass[g.Name]
				pass := ok && !w.now.Before(t0.Add(from))
				ev.Results = append(ev.Results, model.GateResult{Gate: g.Name, Stage: e.Stage, Passed: pass})
			}
			w.inbox = append(w.inbox, func() Event { return ev })
		})
	case StartSwitch:
		s := w.svcs[e.Service]
		if l := s.latest; l != nil && l.release == w.rid && l.to == e.To {
			w.observe(e.Service) // started already: report it
			return
		}
		if l := s.latest; l != nil && (l.phase == SwitchRunning || l.phase == SwitchRollingBack) || s.serving != e.To.Other() {
			w.refuse(e.Service, "a switch is running or "+string(e.To)+" serves already")
			return
		}
		s.gen++
		sw := &fakeSwitch{id: fmt.Sprintf("gen-%d", s.gen), release: w.rid, to: e.To, phase: SwitchRunning}
		s.latest = sw
		w.starts[e.Service]++
		w.startedAt[e.Service] = w.now
		w.observe(e.Service)
		if d, ok := w.fail[e.Service]; ok {
			w.after(d, false, func() {
				if sw.phase == SwitchRunning {
					sw.phase, sw.cause, sw.reason = SwitchRolledBack, model.CauseAnalysisFailed, "analysis failed"
					w.observe(e.Service)
					w.after(w.ack, true, w.confirm(e.Service, sw))
				}
			})
			return
		}
		w.after(w.plan, false, func() {
			if sw.phase == SwitchRunning {
				sw.phase, s.serving = SwitchPromoted, sw.to
				w.observe(e.Service)
			}
		})
	case AbortSwitch:
		s := w.svcs[e.Service]
		l := s.latest
		if l == nil || l.release != w.rid || l.to != s.to {
			w.refuse(e.Service, "no switch of the release")
			return
		}
		switch {
		case l.phase == SwitchRunning:
			l.phase, l.cause, l.reason = SwitchAborted, model.CauseAborted, "release "+w.rid+" rolling back"
			w.observe(e.Service)
			w.after(w.ack, true, w.confirm(e.Service, l))
		case l.phase != SwitchPromoted && !l.confirmed:
			w.after(w.ack, true, w.confirm(e.Service, l))
		default:
			w.observe(e.Service)
		}
	case RollBack:
		s := w.svcs[e.Service]
		l := s.latest
		if s.serving == e.To {
			if l.confirmed {
				w.observe(e.Service)
			} else {
				w.after(w.ack, true, w.confirm(e.Service, l))
			}
			return
		}
		// Consumers before providers: every member above this one that the
		// release moved is back on its colour, confirmed.
		for svc, lv := range w.levels {
			o := w.svcs[svc]
			if lv > w.levels[e.Service] && o.latest != nil && o.latest.release == w.rid &&
				(o.serving != o.from || !o.latest.confirmed || o.latest.phase == SwitchRunning) {
				w.t.Errorf("%v: %s (level %d) rolled back before %s (level %d) was back and confirmed",
					w.now.Sub(t0), e.Service, w.levels[e.Service], svc, lv)
			}
		}
		s.gen++
		sw := &fakeSwitch{id: fmt.Sprintf("gen-%d", s.gen), release: w.rid, to: e.To, phase: SwitchPromoted}
		s.latest, s.serving = sw, e.To
		w.rollbacks = append(w.rollbacks, rollbackAt{at: w.now.Sub(t0), service: e.Service})
		w.observe(e.Service)
		w.after(w.ack, true, w.confirm(e.Service, sw))
	}
}

type crashMode int

const (
	noCrash            crashMode = iota
	crashBeforePersist           // the decision is lost: the new leader starts from the last stored state
	crashAfterPersist            // the state is stored, its effects are not carried out
	roundTripEveryStep           // no crash: the state is stored and read back after every step
)

// run drives r through the world until it ends, crashing the leader at
// step crashAt (counted from 1) as mode says.
func (w *world) run(r Release, mode crashMode, crashAt int) Release {
	w.t.Helper()
	w.send(func(now time.Time) Event { return Start{Now: now} })
	crashed := false
	for !r.Phase.Ended() {
		ev, ok := w.next()
		if !ok {
			w.t.Fatalf("stuck at %v: %+v", w.now.Sub(t0), r)
		}
		if w.steps++; w.steps > 10000 {
			w.t.Fatalf("no end after %d steps", w.steps)
		}
		out, effs, err := Decide(r, ev)
		if err != nil {
			w.t.Fatalf("%v: %T%+v: %v", w.now.Sub(t0), ev, ev, err)
		}
		if crashed || crashAt == 0 || mode == roundTripEveryStep {
			// Before a crash the run is the crash-free one, checked already;
			// after it, the new leader has read the state back.
			checkTransition(w.t, r, out, effs, ev, !crashed)
		}
		if !crashed && w.steps == crashAt && (mode == crashBeforePersist || mode == crashAfterPersist) {
			crashed = true
			if mode == crashAfterPersist && len(effs) > 0 && effs[0] == Effect(Persist{}) {
				w.exec(effs[0], out) // Persist, if anything changed; nothing else
			}
			r = w.takeOver(ev, mode)
			continue
		}
		r = out
		for _, e := range effs {
			w.exec(e, r)
		}
		if mode == roundTripEveryStep {
			back, err := Decode(mustJSON(w.t, r))
			if err != nil {
				w.t.Fatal(err)
			}
			r = back
		}
	}
	return r
}

// takeOver is a new leader: the queue and ACK waits of the old one are
// gone; it reads the stored release, observes every member, asks for what
// the state owes, and ticks. An operator command lost with the decision
// is given again (the CLI saw it fail).
func (w *world) takeOver(lost Event, mode crashMode) Release {
	w.inbox = nil
	w.timers = slices.DeleteFunc(w.timers, func(t timer) bool { return t.leader })
	r, err := Decode(mustJSON(w.t, w.stored))
	if err != nil {
		w.t.Fatalf("stored release: %v", err)
	}
	for _, m := range r.Members {
		w.observe(m.Service)
	}
	w.send(func(now time.Time) Event { return Resync{Now: now} })
	w.send(func(now time.Time) Event { return Tick{Now: now} })
	if mode == crashBeforePersist {
		switch lost.(type) {
		case Start, Abort, Pause, Resume, WindowClosed, WindowOpened:
			w.inbox = append(w.inbox, func() Event { return lost })
		}
	}
	return r
}

// checkEnd checks the world after the release ended: nothing started twice,
// every service on To (promoted) or on From, confirmed (rolled back).
func (w *world) checkEnd(r Release) {
	w.t.Helper()
	for svc, n := range w.starts {
		if n > 1 {
			w.t.Errorf("%s started %d times", svc, n)
		}
	}
	for _, m := range r.Members {
		s := w.svcs[m.Service]
		switch {
		case r.Phase == Promoted && s.serving != m.To:
			w.t.Errorf("promoted release: %s serves %s", m.Service, s.serving)
		case r.Phase != Promoted && m.Phase != MemberDetached && s.serving != m.From:
			w.t.Errorf("%s release: %s serves %s, not its original %s", r.Phase, m.Service, s.serving, m.From)
		case r.Phase != Promoted && s.latest != nil && s.latest.release == w.rid && !s.latest.confirmed:
			w.t.Errorf("%s release: %s's flip back is not confirmed", r.Phase, m.Service)
		}
	}
}

// waves groups the switches back by the time they were carried out.
func (w *world) waves() []string {
	var out []string
	for i, rb := range w.rollbacks {
		if i == 0 || rb.at != w.rollbacks[i-1].at {
			out = append(out, rb.at.String()+":")
		}
		out[len(out)-1] += " " + rb.service
	}
	return out
}

// outcome is a release's result without times: what a leader change must
// not alter.
func outcome(r Release) string {
	var b strings.Builder
	fmt.Fprintf(&b, "%s member=%s cause=%s reason=%q\n", r.Phase, r.Member, r.Cause, r.Reason)
	for _, m := range r.Members {
		fmt.Fprintf(&b, "  %s %s switch=%s back=%s cause=%s reason=%q\n", m.Service, m.Phase, m.SwitchID, m.RollbackID, m.Cause, m.Reason)
	}
	return b.String()
}

// scenario is one release through the world.
type scenario struct {
	name     string
	specs    func() []Spec
	max      int
	fail     map[string]time.Duration
	gates    []model.Gate
	gatePass map[string]time.Duration
	commands func(w *world)
	// expected
	phase  Phase
	member string
	end    time.Duration
	starts map[string]time.Duration // when each member's switch started
	waves  []string
}

func (sc scenario) release(t testing.TB) Release {
	r, err := New("rel-7", sc.name, sc.specs(), sc.max, t0, sc.gates...)
	if err != nil {
		t.Fatal(err)
	}
	return r
}

func (sc scenario) play(t testing.TB, mode crashMode, crashAt int) (Release, *world) {
	r := sc.release(t)
	w := newWorld(t, r, D, 5*time.Second, sc.fail)
	w.gatePass = sc.gatePass
	if sc.commands != nil {
		sc.commands(w)
	}
	out := w.run(r, mode, crashAt)
	w.checkEnd(out)
	return out, w
}

const (
	ack         = 5 * time.Second
	gateLatency = time.Second
)

func chainScenarios() []scenario {
	all := func(d time.Duration, svcs ...string) map[string]time.Duration {
		m := map[string]time.Duration{}
		for _, s := range svcs {
			m[s] = d
		}
		return m
	}
	merge := func(ms ...map[string]time.Duration) map[string]time.Duration {
		out := map[string]time.Duration{}
		for _, m := range ms {
			for k, v := range m {
				out[k] = v
			}
		}
		return out
	}
	h := D / 2
	return []scenario{
		{name: "every member promoted, level by level", specs: chainSpecs, max: 4,
			phase: Promoted, end: 3 * D, starts: merge(all(0, "auth", "mail"), all(D, "api"), all(2*D, "web"))},
		{name: "max_parallel 1: one at a time", specs: chainSpecs, max: 1,
			phase: Promoted, end: 4 * D, starts: map[string]time.Duration{"auth": 0, "mail": D, "api": 2 * D, "web": 3 * D}},
		{name: "auth fails: mail aborted, nothing to roll back", specs: chainSpecs, max: 4, fail: all(h, "auth"),
			phase: RolledBack, member: "auth", end: h + ack, starts: all(0, "auth", "mail")},
		{name: "mail fails: auth aborted", specs: chainSpecs, max: 4, fail: all(h, "mail"),
			phase: RolledBack, member: "mail", end: h + ack, starts: all(0, "auth", "mail")},
		{name: "api fails: level 0 rolled back after api's rollback is confirmed", specs: chainSpecs, max: 4, fail: all(h, "api"),
			phase: RolledBack, member: "api", end: D + h + 2*ack, starts: merge(all(0, "auth", "mail"), all(D, "api")),
			waves: []string{(D + h + ack).String() + ": auth mail"}},
		{name: "web fails: api, then auth and mail", specs: chainSpecs, max: 4, fail: all(h, "web"),
			phase: RolledBack, member: "web", end: 2*D + h + 3*ack, starts: merge(all(0, "auth", "mail"), all(D, "api"), all(2*D, "web")),
			waves: []string{(2*D + h + ack).String() + ": api", (2*D + h + 2*ack).String() + ": auth mail"}},
		{name: "aborted while api switches", specs: chainSpecs, max: 4,
			commands: func(w *world) {
				w.command(D+h, func(now time.Time) Event { return Abort{Now: now, Reason: "wrong build"} })
			},
			phase: Aborted, end: D + h + 2*ack, starts: merge(all(0, "auth", "mail"), all(D, "api")),
			waves: []string{(D + h + ack).String() + ": auth mail"}},
		{name: "paused at 5m, resumed at 2D: api waits", specs: chainSpecs, max: 4,
			commands: func(w *world) {
				w.command(h, func(now time.Time) Event { return Pause{Now: now} })
				w.command(2*D, func(now time.Time) Event { return Resume{Now: now} })
			},
			phase: Promoted, end: 4 * D, starts: merge(all(0, "auth", "mail"), all(2*D, "api"), all(3*D, "web"))},
		{name: "a held pre gate passes at 20m: members start then; post gate passes", specs: chainSpecs, max: 4,
			gates:    []model.Gate{gate("change", model.GateHold, model.GatePre), gate("soak", model.GateRollback, model.GatePost)},
			gatePass: map[string]time.Duration{"change": 20 * time.Minute, "soak": 0},
			commands: func(w *world) { w.command(20*time.Minute, func(now time.Time) Event { return Tick{Now: now} }) },
			phase:    Promoted, end: 20*time.Minute + gateLatency + 3*D + gateLatency,
			starts: merge(all(20*time.Minute+gateLatency, "auth", "mail"), all(20*time.Minute+gateLatency+D, "api"), all(20*time.Minute+gateLatency+2*D, "web"))},
		{name: "a failing pre gate: nothing starts, rolled back", specs: chainSpecs, max: 4,
			gates: []model.Gate{gate("smoke", model.GateRollback, model.GatePre)},
			phase: RolledBack, end: gateLatency, starts: map[string]time.Duration{}},
		{name: "a failing post gate: web, then api, then auth and mail go back", specs: chainSpecs, max: 4,
			gates: []model.Gate{gate("soak", model.GateRollback, model.GatePost)},
			phase: RolledBack, end: 3*D + gateLatency + 3*ack, starts: merge(all(0, "auth", "mail"), all(D, "api"), all(2*D, "web")),
			waves: []string{(3*D + gateLatency).String() + ": web", (3*D + gateLatency + ack).String() + ": api", (3*D + gateLatency + 2*ack).String() + ": auth mail"}},
		{name: "api's window closes mid-release until 1h", specs: chainSpecs, max: 4,
			commands: func(w *world) {
				w.command(h, func(now time.Time) Event {
					return WindowClosed{Now: now, Service: "api", Until: t0.Add(time.Hour), Reason: "freeze"}
				})
				w.command(time.Hour, func(now time.Time) Event { return Tick{Now: now} })
			},
			phase: Promoted, end: time.Hour + 2*D, starts: merge(all(0, "auth", "mail"), all(time.Hour, "api"), all(time.Hour+D, "web"))},
	}
}

func (sc scenario) check(t *testing.T, r Release, w *world) {
	t.Helper()
	if r.Phase != sc.phase || r.Member != sc.member {
		t.Errorf("ended %s naming %q, want %s naming %q", r.Phase, r.Member, sc.phase, sc.member)
	}
	if got := r.EndedAt.Sub(t0); got != sc.end {
		t.Errorf("ended after %v, want %v", got, sc.end)
	}
	got := map[string]time.Duration{}
	for s, at := range w.startedAt {
		got[s] = at.Sub(t0)
	}
	if !reflect.DeepEqual(got, sc.starts) {
		t.Errorf("switches started at %v, want %v", got, sc.starts)
	}
	if !slices.Equal(w.waves(), sc.waves) {
		t.Errorf("switches back\n  %s\nwant\n  %s", strings.Join(w.waves(), "\n  "), strings.Join(sc.waves, "\n  "))
	}
}

func TestSimChain(t *testing.T) {
	for _, sc := range chainScenarios() {
		t.Run(sc.name, func(t *testing.T) {
			r, w := sc.play(t, noCrash, 0)
			sc.check(t, r, w)
		})
	}
}

// TestLeaderChangeAtEveryStep replays every chain scenario with the
// leader lost at every step: once with the decision lost, once with it
// stored but its effects not carried out; and once with the state read
// back from JSON after every step. Nothing starts twice, nothing is
// forgotten, and the outcome is the same.
func TestLeaderChangeAtEveryStep(t *testing.T) {
	for _, sc := range chainScenarios() {
		t.Run(sc.name, func(t *testing.T) {
			base, bw := sc.play(t, noCrash, 0)
			rt, rw := sc.play(t, roundTripEveryStep, 0)
			if d := diff(rt, base); len(d) > 0 || !slices.Equal(rw.log, bw.log) {
				t.Errorf("read back after every step differs:\n  %s\n%s\nwant\n%s", strings.Join(d, "\n  "), strings.Join(rw.log, "\n"), strings.Join(bw.log, "\n"))
			}
			for _, mode := range []crashMode{crashBeforePersist, crashAfterPersist} {
				for k := 1; k <= bw.steps; k++ {
					r, w := sc.play(t, mode, k)
					if got, want := outcome(r), outcome(base); got != want {
						t.Errorf("mode %d, leader lost at step %d of %d:\n%swant\n%s", mode, k, bw.steps, got, want)
					}
					if !sameStarts(w.starts, bw.starts) {
						t.Errorf("mode %d, step %d: switches started %v, want %v", mode, k, w.starts, bw.starts)
					}
				}
			}
		})
	}
}

func sameStarts(a, b map[string]int) bool { return reflect.DeepEqual(a, b) }

// org27 is a realistic dependency graph of 27 services in 4 levels
// (7, 9, 7, 4), with dependencies outside the release (legacy-cms, smtp).
func org27() []Spec {
	deps := map[string][]string{
		// level 0: foundations
		"auth": nil, "catalog": nil, "config": nil, "geo": nil, "inventory": nil, "ledger": nil, "notify": {"smtp"},
		// level 1
		"accounts": {"auth", "config"}, "payments": {"ledger", "auth"}, "pricing": {"catalog", "config"},
		"search": {"catalog"}, "shipping": {"geo", "inventory"}, "stock": {"inventory"},
		"email": {"notify"}, "sms": {"notify"}, "reviews": {"catalog", "auth"},
		// level 2
		"cart": {"accounts", "pricing", "stock"}, "orders": {"payments", "stock", "shipping"},
		"recommend": {"search", "accounts"}, "loyalty": {"accounts", "payments"},
		"returns": {"shipping", "payments"}, "support": {"accounts", "email", "sms"}, "invoices": {"payments", "email"},
		// level 3: the edges
		"web": {"cart", "orders", "recommend", "search", "legacy-cms"}, "mobile-bff": {"cart", "orders", "loyalty"},
		"admin": {"returns", "support", "invoices", "reviews"}, "partner-api": {"orders", "pricing"},
	}
	var specs []Spec
	for s, d := range deps {
		specs = append(specs, Spec{Service: s, DependsOn: d, From: B, To: G, Base: "gen-1"})
	}
	slices.SortFunc(specs, func(a, b Spec) int { return strings.Compare(a.Service, b.Service) })
	return specs
}

func TestSim27Services(t *testing.T) {
	r, err := New("rel-27", "everything", org27(), 9, t0)
	if err != nil {
		t.Fatal(err)
	}
	order := r.Order()
	widths := make([]int, len(order))
	for i, l := range order {
		widths[i] = len(l)
	}
	if len(r.Members) != 27 || !slices.Equal(widths, []int{7, 9, 7, 4}) {
		t.Fatalf("graph: %d services in levels %v", len(r.Members), widths)
	}
	levelOf := func(svc string) int { m, _ := r.Find(svc); return m.Level }
	atLevel := func(l int) []string { return order[l] }
	wave := func(at time.Duration, l int) string { return at.String() + ": " + strings.Join(atLevel(l), " ") }

	t.Run("every level in parallel: 4 plan durations, not 27", func(t *testing.T) {
		for _, mp := range []int{9, 27} {
			sc := scenario{name: "all", specs: org27, max: mp}
			out, w := sc.play(t, noCrash, 0)
			if out.Phase != Promoted || out.EndedAt.Sub(t0) != 4*D {
				t.Errorf("max_parallel %d: %s after %v, want promoted after %v (27 one by one: %v)", mp, out.Phase, out.EndedAt.Sub(t0), 4*D, 27*D)
			}
			for svc, at := range w.startedAt {
				if want := t0.Add(time.Duration(levelOf(svc)) * D); !at.Equal(want) {
					t.Errorf("%s (level %d) started at %v, want %v", svc, levelOf(svc), at.Sub(t0), want.Sub(t0))
				}
			}
		}
	})
	t.Run("max_parallel 4 bounds the width, not the order", func(t *testing.T) {
		sc := scenario{name: "capped", specs: org27, max: 4}
		out, _ := sc.play(t, noCrash, 0)    // checkStep asserts ≤ 4 switching after every step
		bound := time.Duration(2+3+2+1) * D // ⌈7/4⌉ + ⌈9/4⌉ + ⌈7/4⌉ + ⌈4/4⌉
		if out.Phase != Promoted || out.EndedAt.Sub(t0) > bound || out.EndedAt.Sub(t0) < 7*D {
			t.Errorf("%s after %v, want promoted within [7D, %v] (27 switches, 4 at a time)", out.Phase, out.EndedAt.Sub(t0), bound)
		}
	})
	t.Run("admin fails deep in the graph: levels 2, 1, 0 rolled back in turn", func(t *testing.T) {
		h := 3*D + D/2
		sc := scenario{name: "admin fails", specs: org27, max: 9, fail: map[string]time.Duration{"admin": D / 2}}
		out, w := sc.play(t, noCrash, 0)
		if out.Phase != RolledBack || out.Member != "admin" || out.Cause != model.CauseAnalysisFailed {
			t.Errorf("ended %s naming %s (%s)", out.Phase, out.Member, out.Cause)
		}
		if want := h + 4*ack; out.EndedAt.Sub(t0) != want {
			t.Errorf("ended after %v, want %v", out.EndedAt.Sub(t0), want)
		}
		want := []string{wave(h+ack, 2), wave(h+2*ack, 1), wave(h+3*ack, 0)}
		if !slices.Equal(w.waves(), want) {
			t.Errorf("switches back\n  %s\nwant\n  %s", strings.Join(w.waves(), "\n  "), strings.Join(want, "\n  "))
		}
		for _, m := range out.Members {
			want := MemberRolledBack
			if m.Level == 3 && m.Service != "admin" {
				want = MemberAborted
			}
			if m.Phase != want {
				t.Errorf("%s (level %d): %s, want %s", m.Service, m.Level, m.Phase, want)
			}
		}
	})
	t.Run("orders fails at level 2: level 3 never starts", func(t *testing.T) {
		h := 2*D + D/2
		sc := scenario{name: "orders fails", specs: org27, max: 9, fail: map[string]time.Duration{"orders": D / 2}}
		out, w := sc.play(t, noCrash, 0)
		want := []string{wave(h+ack, 1), wave(h+2*ack, 0)}
		if out.Phase != RolledBack || out.Member != "orders" || !slices.Equal(w.waves(), want) {
			t.Errorf("ended %s naming %s; switches back\n  %s\nwant\n  %s", out.Phase, out.Member, strings.Join(w.waves(), "\n  "), strings.Join(want, "\n  "))
		}
		for _, svc := range atLevel(3) {
			if m, _ := out.Find(svc); m.Phase != MemberSkipped || w.starts[svc] != 0 {
				t.Errorf("%s: %s, started %d times", svc, m.Phase, w.starts[svc])
			}
		}
	})
	t.Run("leader lost at every step of the failing release", func(t *testing.T) {
		if testing.Short() {
			t.Skip("short")
		}
		sc := scenario{name: "admin fails", specs: org27, max: 9, fail: map[string]time.Duration{"admin": D / 2}}
		base, bw := sc.play(t, noCrash, 0)
		for k := 1; k <= bw.steps; k++ {
			mode := crashAfterPersist
			if k%2 == 0 {
				mode = crashBeforePersist
			}
			r, w := sc.play(t, mode, k)
			if got, want := outcome(r), outcome(base); got != want {
				t.Fatalf("leader lost at step %d (mode %d):\n%swant\n%s", k, mode, got, want)
			}
			if !sameStarts(w.starts, bw.starts) {
				t.Fatalf("step %d: switches started %v, want %v", k, w.starts, bw.starts)
			}
		}
	})
}
