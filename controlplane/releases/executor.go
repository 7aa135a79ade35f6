// Package releases runs releases in `bg serve`: the executor of the pure
// release scheduler (controlplane/release). It plans a release from the
// configuration and the services' states, stores every decision (fenced,
// check-and-set) before carrying it out, starts, aborts and rolls back
// the member switches through the traffic controller, feeds back what
// each member's state shows, and owns its members: nothing else may
// switch them while the release runs (traffic.ReleaseGuard).
//
// Only the leader runs releases. Each running release has its own loop
// (a traffic.Runtime key, "release/ID"): its state, decisions and effects
// are handled there, one message at a time. A member whose served state
// changes is observed there at once (Controller.Subscribe), so the next
// level starts as soon as its providers are promoted; a tick every
// Options.Tick, the safety net, observes every member, asks for the
// effects the state still owes (Resync: a start, abort or rollback that
// did not get through, or an ACK wait that gave up) and lets the
// scheduler start what may start (Tick).
// Readers (status, the guard, metrics) see a copy taken after each stored
// change, under the executor's lock. docs/releases.md, "Executor".
package releases

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	apiv1 "github.com/bgctl/bg/controlplane/api/v1"
	"github.com/bgctl/bg/controlplane/gate"
	"github.com/bgctl/bg/controlplane/model"
	"github.com/bgctl/bg/controlplane/notify"
	"github.com/bgctl/bg/controlplane/release"
	"github.com/bgctl/bg/controlplane/state"
	"github.com/bgctl/bg/controlplane/traffic"
	"github.com/bgctl/bg/controlplane/wait"
)

// Errors the admin API maps to HTTP statuses.
var (
	// ErrUnknownRelease: no release is stored with that ID (404).
	ErrUnknownRelease = errors.New("unknown release")
	// ErrBadRequest: the request names no services, several ways, or a
	// bad name (400).
	ErrBadRequest = errors.New("bad release request")
)

// Controller is what the executor needs of the traffic controller
// (*traffic.Controller).
type Controller interface {
	Switch(ctx context.Context, req traffic.Request) (traffic.Result, error)
	Abort(ctx context.Context, req traffic.Request) (traffic.Result, error)
	TrafficState(service string) (model.Traffic, error)
	Acked(ctx context.Context, service string, gen uint64) bool
	Progressive(service string) bool
	WindowAt(service string) *traffic.WindowStatus
	// Lead makes the controller act until ctx ends; it returns once the
	// services' states are loaded and running switches resumed.
	Lead(ctx context.Context)
	// Subscribe tells f, on the service's loop, each time a service's
	// served state changes (traffic.Controller.Subscribe).
	Subscribe(f func(service string)) (cancel func())
	// FailSwitch rolls back a member's running switch on a verdict of the
	// release's (release.watch_consumers).
	FailSwitch(ctx context.Context, service, switchID string, cause model.Cause, reason string, timeout time.Duration) (traffic.Result, error)
}

// GateCaller calls one gate (gate.Caller; a fake in tests).
type GateCaller interface {
	Call(ctx context.Context, g model.Gate, p gate.Payload) model.GateResult
}

// Options configure the executor.
type Options struct {
	// Services are the configured services, in order (a release of --all).
	Services []string
	// Dependencies maps a service to the services it calls (depends_on).
	Dependencies map[string][]string
	// Groups maps a configured release group to its services.
	Groups map[string][]string
	// GroupGates maps a configured release group to its own gates
	// (releases[].gates): a release of that group waits for its pre gates
	// before its first member starts and for its post gates after its last
	// member is promoted.
	GroupGates map[string][]model.Gate
	// Gates calls release gates (nil: gate.Caller{}, plain HTTP).
	Gates GateCaller
	// MaxParallel is release.max_parallel: a release's default cap.
	MaxParallel int
	// Keep is release.keep: how many ended releases stay stored (50 if
	// unset); the leader deletes older ended ones, never a running one.
	Keep int
	// Timeout bounds each ACK wait of a member's switch (switch.timeout).
	Timeout time.Duration
	// Notify, when set, is told when a release starts and when it ends
	// (release_started, release_promoted, release_rolled_back,
	// release_aborted); it must not block.
	Notify func(notify.Event)
	// Consumers, when set, judges the consumers of each switching member
	// (release.watch_consumers) on every tick.
	Consumers *ConsumerWatch
	// Tick is how often a running release observes every member (1s), on
	// top of observing each one as it changes.
	Tick    time.Duration
	Runtime traffic.Runtime
	Log     *slog.Logger
	Metrics *Metrics
}

// Executor runs the releases of the replica that leads.
type Executor struct {
	ctrl    Controller
	store   state.Releases
	rt      traffic.Runtime
	log     *slog.Logger
	m       *Metrics
	opts    Options
	tick    time.Duration
	timeout time.Duration

	// svcMu guards opts.Services, which a config reload replaces.
	svcMu sync.Mutex

	mu      sync.Mutex // guards the fields below
	leading bool
	loaded  bool
	loadErr error
	epoch   uint64
	runs    map[string]*run            // this term's running releases, by ID
	views   map[string]release.Release // their state as last stored
}

// run is one running release. Its fields are owned by its loop (key),
// except id, key and epoch, which never change, and pending, which the
// executor's mutex guards.
type run struct {
	id, key string
	epoch   uint64
	rel     release.Release
	idx     state.Index
	// pending: members whose change is posted to the loop and not yet
	// observed there (changes coalesce until it runs).
	pending map[string]bool
	// watches: consumers judged while their providers switch (loop-owned).
	watches map[string]*watch
}

// startKey is the loop that plans releases, one at a time: two starts
// never claim the same service.
const startKey = "releases"

// New builds an executor over the controller and the release store.
func New(ctrl Controller, store state.Releases, o Options) *Executor {
	e := &Executor{ctrl: ctrl, store: store, rt: o.Runtime, log: o.Log, m: o.Metrics, opts: o, tick: o.Tick, timeout: o.Timeout,
		runs: map[string]*run{}, views: map[string]release.Release{}}
	if e.tick <= 0 {
		e.tick = time.Second
	}
	if e.timeout <= 0 {
		e.timeout = 30 * time.Second
	}
	if e.opts.MaxParallel < 1 {
		e.opts.MaxParallel = 4
	}
	if e.opts.Keep < 1 {
		e.opts.Keep = 50
	}
	if e.opts.Gates == nil {
		e.opts.Gates = gate.Caller{}
	}
	if e.log == nil {
		e.log = slog.New(slog.DiscardHandler)
	}
	if e.m == nil {
		e.m = NewMetrics(nil)
	}
	e.m.members.source(e.running)
	return e
}

// Guard names the running release that owns service (traffic.ReleaseGuard):
// a member that has not settled. While this replica leads but has not
// loaded its releases yet, it cannot tell, and says so.
func (e *Executor) Guard(service string) (string, error) {
	e.mu.Lock()
	defer e.mu.Unlock()
	if !e.leading {
		return "", nil // writes are fenced; commands go to the leader
	}
	if !e.loaded {
		msg := "the releases are not loaded yet"
		if e.loadErr != nil {
			msg += " (" + e.loadErr.Error() + ")"
		}
		return "", fmt.Errorf("%w: %s", traffic.ErrNotReady, msg)
	}
	return e.ownerLocked(service), nil
}

func (e *Executor) ownerLocked(service string) string {
	for id, r := range e.views {
		if m, ok := r.Find(service); ok && !m.Phase.Settled() {
			return id
		}
	}
	return ""
}

// Leading says whether this replica runs releases now: it leads and has
// loaded them.
func (e *Executor) Leading() bool {
	e.mu.Lock()
	defer e.mu.Unlock()
	return e.leading && e.loaded
}

// running copies the running releases' states (metrics).
func (e *Executor) running() []release.Release {
	e.mu.Lock()
	defer e.mu.Unlock()
	out := make([]release.Release, 0, len(e.views))
	for _, r := range e.views {
		out = append(out, r)
	}
	return out
}

// Lead runs releases until ctx ends (leadership lost). The guard refuses
// commands on every service until the releases are loaded; the controller
// leads first, so members are observed in the states it serves. Each
// running release is then resumed where it was stored: every member is
// observed, the effects it owes are carried out again (Resync), and what
// may start starts (Tick).
func (e *Executor) Lead(ctx context.Context) {
	epoch := e.elect()
	unsubscribe := e.ctrl.Subscribe(e.onChange)
	go func() {
		<-ctx.Done()
		unsubscribe()
		e.depose(epoch)
	}()
	e.ctrl.Lead(ctx)
	var all []state.StoredRelease
	for ctx.Err() == nil {
		var err error
		lctx, cancel := context.WithTimeout(ctx, 10*time.Second)
		all, err = e.store.ListReleases(lctx)
		cancel()
		if err == nil {
			break
		}
		e.log.Error("cannot load the releases; every service refuses commands until they load", "error", err)
		e.mu.Lock()
		e.loadErr = err
		e.mu.Unlock()
		wait.Sleep(ctx, time.Second)
	}
	var runs []*run
	e.mu.Lock()
	if e.epoch != epoch || !e.leading {
		e.mu.Unlock()
		return
	}
	for _, s := range all {
		if s.Release.Phase.Ended() {
			continue
		}
		r := &run{id: s.Release.ID, key: "release/" + s.Release.ID, epoch: epoch, rel: s.Release, idx: s.Index}
		e.runs[r.id], e.views[r.id] = r, s.Release
		runs = append(runs, r)
	}
	e.loaded, e.loadErr = true, nil
	e.mu.Unlock()
	for _, r := range runs {
		e.log.Info("resuming release", "release", r.id, "phase", r.rel.Phase, "generation", r.rel.Generation)
		e.rt.Post(r.key, func() { e.resume(r) })
	}
	e.rt.Post(startKey, func() { e.prune(epoch) })
}

// elect starts a term: no release runs until they are loaded.
func (e *Executor) elect() uint64 {
	e.mu.Lock()
	defer e.mu.Unlock()
	e.epoch++
	e.leading, e.loaded, e.loadErr = true, false, nil
	clear(e.runs)
	clear(e.views)
	return e.epoch
}

// depose ends the term that began at epoch, unless a later one began.
func (e *Executor) depose(epoch uint64) {
	e.mu.Lock()
	defer e.mu.Unlock()
	if e.epoch != epoch {
		return
	}
	e.epoch++
	e.leading, e.loaded = false, false
	clear(e.runs)
	clear(e.views)
	e.m.consumerEvidence.Reset() // the next leader judges them
}

// current says whether r is still this term's run of its release.
func (e *Executor) current(r *run) bool {
	e.mu.Lock()
	defer e.mu.Unlock()
	return e.leading && e.epoch == r.epoch && e.runs[r.id] == r
}

// resume continues a stored release in a new term. Runs on its loop.
func (e *Executor) resume(r *run) {
	if !e.current(r) {
		return
	}
	e.observeAll(r)
	e.owed(r)
	e.event(r, release.Tick{Now: e.rt.Now()})
	e.scheduleTick(r)
}

// onChange is told that a service's served state changed (on that
// service's loop): each running release of which it is an unsettled
// member observes it on its own loop at once, rather than on its next
// tick. Changes that come while one is posted coalesce.
func (e *Executor) onChange(service string) {
	var posts []*run
	e.mu.Lock()
	for id, r := range e.runs {
		if m, ok := e.views[id].Find(service); !ok || m.Phase.Settled() || r.pending[service] {
			continue
		}
		if r.pending == nil {
			r.pending = map[string]bool{}
		}
		r.pending[service] = true
		posts = append(posts, r)
	}
	e.mu.Unlock()
	for _, r := range posts {
		e.rt.Post(r.key, func() { e.onMemberChanged(r, service) })
	}
}

// onMemberChanged observes one member whose state changed; the scheduler
// starts, aborts or rolls back what follows. Runs on the release's loop.
func (e *Executor) onMemberChanged(r *run, service string) {
	e.mu.Lock()
	delete(r.pending, service)
	e.mu.Unlock()
	if !e.current(r) || r.rel.Phase.Ended() {
		return
	}
	if m, ok := r.rel.Find(service); ok && !m.Phase.Settled() {
		e.observeMember(r, m)
	}
}

func (e *Executor) scheduleTick(r *run) {
	e.rt.After(e.tick, func() { e.rt.Post(r.key, func() { e.onTick(r) }) })
}

// onTick observes every member, carries out what the state still owes,
// and lets the scheduler act on the clock. Runs on the release's loop.
func (e *Executor) onTick(r *run) {
	if !e.current(r) {
		return
	}
	e.observeAll(r)
	e.watchConsumers(r)
	e.reopenWindows(r)
	e.owed(r)
	e.event(r, release.Tick{Now: e.rt.Now()})
	if e.current(r) {
		e.scheduleTick(r)
	}
}

// owed carries out the effects the stored state owes (Resync): each is
// idempotent, and cheap when already done.
func (e *Executor) owed(r *run) {
	_, effs, err := release.Decide(r.rel, release.Resync{Now: e.rt.Now()})
	if err == nil {
		// The Tick that always follows calls the pending gates: once a tick.
		e.carry(r, slices.DeleteFunc(effs, func(x release.Effect) bool { _, ok := x.(release.CallGates); return ok }))
	}
}

// reopenWindows tells the scheduler that a member held by a window with no
// known opening time may start: its window is open now.
func (e *Executor) reopenWindows(r *run) {
	for _, m := range r.rel.Members {
		if m.Phase != release.MemberWaiting || m.Window == nil || !m.Window.Until.IsZero() {
			continue
		}
		if ws := e.ctrl.WindowAt(m.Service); ws == nil || ws.Open {
			e.event(r, release.WindowOpened{Now: e.rt.Now(), Service: m.Service})
		}
	}
}

// observeAll feeds what every unsettled member's state shows.
func (e *Executor) observeAll(r *run) {
	if r.rel.Phase.Ended() {
		return
	}
	for _, m := range slices.Clone(r.rel.Members) {
		if m.Phase.Settled() {
			continue
		}
		e.observeMember(r, m)
	}
}

// observeMember feeds what member m's state shows now.
func (e *Executor) observeMember(r *run, m release.Member) {
	t, err := e.ctrl.TrafficState(m.Service)
	if err != nil {
		return
	}
	var acked func() bool
	if m.Phase.Moving() {
		acked = e.ackedFn(m.Service, t)
	} else {
		acked = func() bool { return false } // not read for waiting or promoted members
	}
	e.event(r, Observe(e.rt.Now(), m.Service, t, acked))
}

func (e *Executor) ackedFn(service string, t model.Traffic) func() bool {
	return func() bool { return e.ctrl.Acked(context.Background(), service, t.Generation) }
}

// event decides one event and carries out its effects.
func (e *Executor) event(r *run, ev release.Event) {
	effs, err := e.decide(r, ev)
	if err != nil {
		e.log.Warn("release event not applied", "release", r.id, "event", fmt.Sprintf("%T", ev), "error", err)
		return
	}
	e.carry(r, effs)
}

// decide applies one event: the scheduler's decision, stored first when
// it changes the state (fenced, check-and-set on the stored revision).
// It returns the effects still to carry out; none unless stored. Runs on
// the release's loop.
func (e *Executor) decide(r *run, ev release.Event) ([]release.Effect, error) {
	if !e.current(r) {
		return nil, fmt.Errorf("%w: release %s is not run by this replica's term", state.ErrNotLeader, r.id)
	}
	next, effs, err := release.Decide(r.rel, ev)
	if err != nil || len(effs) == 0 {
		return nil, err
	}
	if _, ok := effs[0].(release.Persist); !ok {
		return effs, nil
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	idx, err := e.store.SaveRelease(ctx, next, r.idx)
	cancel()
	if err != nil {
		e.reload(r)
		return nil, fmt.Errorf("store release %s: %w (nothing was carried out)", r.id, err)
	}
	prev := r.rel
	r.rel, r.idx = next, idx
	e.stored(r, prev)
	return effs[1:], nil
}

// reload reads the stored release after a failed write, so the next
// decision starts from what is stored.
func (e *Executor) reload(r *run) {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	rel, idx, found, err := e.store.LoadRelease(ctx, r.id)
	if err != nil || !found {
		e.log.Warn("cannot reload the release after a failed write", "release", r.id, "found", found, "error", err)
		return
	}
	prev := r.rel
	r.rel, r.idx = rel, idx
	e.stored(r, prev)
}

// stored publishes a stored change: the readers' copy, metrics and logs.
func (e *Executor) stored(r *run, prev release.Release) {
	next := r.rel
	e.mu.Lock()
	if e.runs[r.id] == r {
		if next.Phase.Ended() {
			delete(e.runs, r.id)
			delete(e.views, r.id)
		} else {
			e.views[r.id] = next
		}
	}
	e.mu.Unlock()
	for _, m := range next.Members {
		if p, ok := prev.Find(m.Service); !ok || p.Phase != m.Phase {
			e.log.Info("release member", "release", r.id, "service", m.Service, "phase", m.Phase, "switch", m.SwitchID, "reason", m.Reason)
		}
	}
	if prev.Phase != next.Phase {
		e.log.Info("release", "release", r.id, "phase", next.Phase, "member", next.Member, "cause", next.Cause, "reason", next.Reason)
		e.notify(prev, next)
		if !prev.Phase.Ended() && next.Phase.Ended() {
			e.m.outcomes.WithLabelValues(string(next.Phase)).Inc()
			e.endWatches(r)
			e.rt.Post(startKey, func() { e.prune(r.epoch) })
		}
	}
}

// carry carries out effects in order; what each reports goes back through
// the scheduler, whose effects are carried out in turn. Runs on the
// release's loop.
func (e *Executor) carry(r *run, effs []release.Effect) {
	for len(effs) > 0 {
		eff := effs[0]
		effs = effs[1:]
		if !e.current(r) {
			return
		}
		var ev release.Event
		switch x := eff.(type) {
		case release.StartSwitch:
			ev = e.startSwitch(r, x)
		case release.AbortSwitch:
			ev = e.abortSwitch(r, x)
		case release.RollBack:
			ev = e.rollBack(r, x)
		case release.CallGates:
			ev = e.callGates(r, x)
		}
		if ev == nil {
			continue // not carried out now; the next Resync asks again
		}
		more, err := e.decide(r, ev)
		if err != nil {
			e.log.Warn("release event not applied", "release", r.id, "event", fmt.Sprintf("%T", ev), "error", err)
			continue
		}
		effs = append(effs, more...)
	}
}

// observe is what the member's state shows now.
func (e *Executor) observe(service string, t model.Traffic) release.MemberObserved {
	return Observe(e.rt.Now(), service, t, e.ackedFn(service, t))
}

// reason is what a member switch's history and status say.
func (r *run) reason(what string) string {
	if r.rel.Force {
		return fmt.Sprintf("release %s (forced: %s): %s", r.id, r.rel.ForceReason, what)
	}
	return fmt.Sprintf("release %s: %s", r.id, what)
}

// refusal is true for errors that refuse a switch for good (until someone
// changes something); others (not leading, Consul, conflicts) are
// retried at the next tick.
func refusal(err error) bool {
	for _, target := range []error{traffic.ErrBusy, traffic.ErrEmptyFleet, traffic.ErrBadPlan, traffic.ErrNoAnalysis,
		traffic.ErrGateFailed, traffic.ErrUnknownService, traffic.ErrNeedsReason} {
		if errors.Is(err, target) {
			return true
		}
	}
	return false
}

// startSwitch starts the member's switch, tagged with the release, with
// its service's plan: progressive (or a roll) when it can be judged,
// instant otherwise. If the release's switch to To is there already, it
// only reports it.
func (e *Executor) startSwitch(r *run, s release.StartSwitch) release.Event {
	t, err := e.ctrl.TrafficState(s.Service)
	if err != nil {
		e.log.Warn("release member not started yet", "release", r.id, "service", s.Service, "error", err)
		return nil
	}
	if t.Release == r.id && memberTo(t) == s.To {
		return e.observe(s.Service, t)
	}
	req := traffic.Request{Service: s.Service, To: s.To, Instant: !e.ctrl.Progressive(s.Service), Force: s.Force,
		Reason: r.reason("switch to " + string(s.To)), Timeout: e.timeout, Release: r.id}
	_, err = e.ctrl.Switch(context.Background(), req)
	switch {
	case errors.Is(err, traffic.ErrWindowClosed):
		ev := release.StartRefused{Now: e.rt.Now(), Service: s.Service, Reason: err.Error(), Window: true}
		if ws := e.ctrl.WindowAt(s.Service); ws != nil {
			ev.Until = ws.NextOpen
		}
		return ev
	case refusal(err):
		return release.StartRefused{Now: e.rt.Now(), Service: s.Service, Reason: err.Error()}
	case err != nil:
		e.log.Warn("release member not started yet; retrying", "release", r.id, "service", s.Service, "error", err)
		return nil
	}
	if t, err = e.ctrl.TrafficState(s.Service); err != nil {
		return nil
	}
	if t.Release != r.id {
		// Nothing was started (already on To?): refuse rather than wait.
		return release.StartRefused{Now: e.rt.Now(), Service: s.Service, Reason: "no switch was started: " + t.Reason}
	}
	return e.observe(s.Service, t)
}

// memberTo is where the latest switch moves traffic.
func memberTo(t model.Traffic) model.Color {
	id := t.LatestSwitchID()
	switch {
	case t.Rollout != nil && t.Rollout.ID == id:
		return t.Rollout.To
	case t.Roll != nil && t.Roll.ID == id:
		return t.Roll.To
	}
	return t.Target
}

// ownSwitch says whether t's latest switch is member m's own: its
// observed ID, or the release's switch to the member's To.
func ownSwitch(relID string, m release.Member, id string, t model.Traffic) bool {
	latest := t.LatestSwitchID()
	if latest == "" {
		return false
	}
	if id != "" {
		return latest == id
	}
	return t.Release == relID && memberTo(t) == m.To
}

// abortSwitch aborts the member's switch if it still runs forward, and
// reports what its state shows (confirmed once every proxy holds the flip
// back). If the release never started a switch there, the start is
// reported refused.
func (e *Executor) abortSwitch(r *run, a release.AbortSwitch) release.Event {
	t, err := e.ctrl.TrafficState(a.Service)
	m, ok := r.rel.Find(a.Service)
	if err != nil || !ok {
		return nil
	}
	if !ownSwitch(r.id, m, a.SwitchID, t) {
		if a.SwitchID == "" && t.LatestSwitchID() == m.Base {
			return release.StartRefused{Now: e.rt.Now(), Service: a.Service, Reason: "the release stopped before its switch started"}
		}
		return e.observe(a.Service, t) // switched outside: the scheduler detaches it
	}
	if t.Forward() {
		_, err := e.ctrl.Abort(context.Background(), traffic.Request{Service: a.Service, Release: r.id, Reason: r.reason("aborted: " + r.rel.Reason), Timeout: e.timeout})
		if err != nil && !errors.Is(err, traffic.ErrNotRunning) {
			e.log.Warn("release member not aborted yet; retrying", "release", r.id, "service", a.Service, "error", err)
			return nil
		}
		if t, err = e.ctrl.TrafficState(a.Service); err != nil {
			return nil
		}
	}
	return e.observe(a.Service, t)
}

// rollBack puts the member back on its original colour with a switch
// tagged with the release: instant, or a roll back for a stateful member
// whose roll completed. If it is back already (its own switch went back)
// or going back, it only reports it.
func (e *Executor) rollBack(r *run, b release.RollBack) release.Event {
	t, err := e.ctrl.TrafficState(b.Service)
	if err != nil {
		return nil
	}
	if t.ProgressiveRunning() || t.RollRunning() || t.Serving() == b.To {
		return e.observe(b.Service, t)
	}
	roll := t.Roll != nil && t.Roll.ID == t.LatestSwitchID()
	req := traffic.Request{Service: b.Service, To: b.To, Instant: !roll, Back: true, Release: r.id, Timeout: e.timeout,
		Reason: r.reason(fmt.Sprintf("back to %s (%s)", b.To, r.rel.Reason))}
	if _, err := e.ctrl.Switch(context.Background(), req); err != nil {
		e.log.Error("release member not rolled back yet; retrying", "release", r.id, "service", b.Service, "to", b.To, "error", err)
		return nil
	}
	if t, err = e.ctrl.TrafficState(b.Service); err != nil {
		return nil
	}
	return e.observe(b.Service, t)
}

// callGates calls the release's gates at one stage, one after the other,
// and reports their results. The payload names the release: service is
// the release's name, switch its ID, stage pre or post, steps its number
// of members.
func (e *Executor) callGates(r *run, c release.CallGates) release.Event {
	ev := release.GatesResult{Stage: c.Stage}
	for _, g := range c.Gates {
		p := gate.Payload{Service: r.rel.Name, Switch: r.id, Stage: c.Stage, Steps: len(r.rel.Members), Generation: r.rel.Generation}
		res := e.opts.Gates.Call(context.Background(), g, p)
		e.log.Info("release gate", "release", r.id, "gate", g.Name, "stage", c.Stage, "passed", res.Passed, "status", res.Status, "detail", res.Detail)
		ev.Results = append(ev.Results, res)
	}
	ev.Now = e.rt.Now()
	return ev
}

// releaseName is what a release name (and group name) may be: it names a
// KV key, as the release's ID with a counter.
var releaseName = regexp.MustCompile(`^[a-z0-9]([a-z0-9-]*[a-z0-9])?$`)

// Start plans and starts a release: each named service (or every one, or
// a configured group) from the colour serving it to its idle colour (or
// req.To), in dependency order. It is refused while a member switches, is
// in another running release, or (unless forced) is outside its deploy
// windows. It returns once the release is stored; the first members start
// right after.
func (e *Executor) Start(ctx context.Context, req apiv1.ReleaseRequest) (apiv1.ReleaseStatus, error) {
	var out apiv1.ReleaseStatus
	var err error
	e.rt.Call(startKey, func() { out, err = e.start(ctx, req) })
	return out, err
}

func (e *Executor) start(ctx context.Context, req apiv1.ReleaseRequest) (apiv1.ReleaseStatus, error) {
	epoch, err := e.ready()
	if err != nil {
		return apiv1.ReleaseStatus{}, err
	}
	services, name, err := e.resolve(req)
	if err != nil {
		return apiv1.ReleaseStatus{}, err
	}
	maxParallel := req.MaxParallel
	switch {
	case maxParallel < 0:
		return apiv1.ReleaseStatus{}, fmt.Errorf("%w: max_parallel: %d must be at least 1 (0: release.max_parallel)", ErrBadRequest, maxParallel)
	case maxParallel == 0:
		maxParallel = e.opts.MaxParallel
	}
	var to model.Color
	if req.To != "" {
		if to, err = model.ParseColor(req.To); err != nil {
			return apiv1.ReleaseStatus{}, fmt.Errorf("%w: to: %v", ErrBadRequest, err)
		}
	}
	if req.Force && strings.TrimSpace(req.Reason) == "" {
		return apiv1.ReleaseStatus{}, fmt.Errorf("%w: say why this release overrides windows, gates and analysis", traffic.ErrNeedsReason)
	}
	specs := make([]release.Spec, 0, len(services))
	var closed []string
	for _, s := range services {
		t, err := e.ctrl.TrafficState(s)
		if err != nil {
			return apiv1.ReleaseStatus{}, err
		}
		e.mu.Lock()
		owner := e.ownerLocked(s)
		e.mu.Unlock()
		switch {
		case owner != "":
			return apiv1.ReleaseStatus{}, fmt.Errorf("%w: %s is a member of release %s; a service is in one release at a time", traffic.ErrInRelease, s, owner)
		case t.ProgressiveRunning():
			ro := t.Rollout
			return apiv1.ReleaseStatus{}, fmt.Errorf("%w: %s is switching (switch %s to %s, %s); a release cannot start while one of its services switches",
				traffic.ErrBusy, s, ro.ID, ro.To, ro.Phase)
		case t.RollRunning():
			return apiv1.ReleaseStatus{}, fmt.Errorf("%w: %s is rolling (roll %s to %s, %s); a release cannot start while one of its services switches",
				traffic.ErrBusy, s, t.Roll.ID, t.Roll.To, t.Roll.Phase)
		}
		from := t.Serving()
		if from == "" {
			return apiv1.ReleaseStatus{}, fmt.Errorf("%w: %s's traffic is split (blue %d%%, green %d%%); finish or abort its switch first",
				traffic.ErrBadPlan, s, t.Percent(model.Blue), t.Percent(model.Green))
		}
		dst := to
		if dst == "" {
			dst = from.Other()
		}
		if dst == from {
			return apiv1.ReleaseStatus{}, fmt.Errorf("%w: %s already serves all of its traffic on %s", traffic.ErrBadPlan, s, dst)
		}
		if ws := e.ctrl.WindowAt(s); !req.Force && ws != nil && !ws.Open {
			next := "no open time within 400 days"
			if !ws.NextOpen.IsZero() {
				next = "closed until " + ws.NextOpen.Format(time.RFC3339)
			}
			closed = append(closed, fmt.Sprintf("%s (%s; %s)", s, ws.Reason, next))
		}
		specs = append(specs, release.Spec{Service: s, DependsOn: e.opts.Dependencies[s], From: from, To: dst, Base: t.LatestSwitchID()})
	}
	if len(closed) > 0 {
		return apiv1.ReleaseStatus{}, fmt.Errorf("%w: release %s waits for every member's window: %s (use --force --reason to override)",
			traffic.ErrWindowClosed, name, strings.Join(closed, "; "))
	}
	id, err := e.nextID(ctx, name)
	if err != nil {
		return apiv1.ReleaseStatus{}, err
	}
	now := e.rt.Now()
	var gates []model.Gate
	if req.Group != "" {
		gates = e.opts.GroupGates[req.Group] // a release of --services or --all has none
	}
	planned, err := release.New(id, name, specs, maxParallel, now, gates...)
	if err != nil {
		return apiv1.ReleaseStatus{}, fmt.Errorf("%w: %v", traffic.ErrBadPlan, err)
	}
	next, effs, err := release.Decide(planned, release.Start{Now: now, Force: req.Force, Reason: req.Reason})
	if err != nil {
		if errors.Is(err, release.ErrNeedsReason) {
			err = fmt.Errorf("%w: %v", traffic.ErrNeedsReason, err)
		}
		return apiv1.ReleaseStatus{}, err
	}
	idx, err := e.store.SaveRelease(ctx, next, 0)
	if err != nil {
		return apiv1.ReleaseStatus{}, fmt.Errorf("store release %s: %w (nothing was started)", id, err)
	}
	r := &run{id: id, key: "release/" + id, epoch: epoch, rel: next, idx: idx}
	e.mu.Lock()
	if e.epoch == epoch && e.leading {
		e.runs[id], e.views[id] = r, next
	}
	e.mu.Unlock()
	e.log.Info("release started", "release", id, "services", services, "order", next.Order(), "max_parallel", maxParallel, "force", req.Force)
	e.notify(planned, next)
	e.rt.Post(r.key, func() {
		e.carry(r, effs[1:])
		if e.current(r) {
			e.scheduleTick(r)
		}
	})
	return e.status(next), nil
}

// ready returns the term releases run in, or why they cannot.
func (e *Executor) ready() (uint64, error) {
	e.mu.Lock()
	defer e.mu.Unlock()
	switch {
	case !e.leading:
		return 0, fmt.Errorf("%w: this replica does not lead", state.ErrNotLeader)
	case !e.loaded:
		return 0, fmt.Errorf("%w: the releases are not loaded yet", traffic.ErrNotReady)
	}
	return e.epoch, nil
}

// resolve names a request's services and the release's name.
func (e *Executor) resolve(req apiv1.ReleaseRequest) ([]string, string, error) {
	ways := 0
	for _, set := range []bool{len(req.Services) > 0, req.All, req.Group != ""} {
		if set {
			ways++
		}
	}
	if ways != 1 {
		return nil, "", fmt.Errorf("%w: name the services one way: services, all or group", ErrBadRequest)
	}
	name := req.Name
	var services []string
	switch {
	case req.All:
		services = e.services()
		if name == "" {
			name = "all"
		}
	case req.Group != "":
		g, ok := e.opts.Groups[req.Group]
		if !ok {
			return nil, "", fmt.Errorf("%w: group: %q is not a configured release group (releases[].name)", ErrBadRequest, req.Group)
		}
		services = slices.Clone(g)
		if name == "" {
			name = req.Group
		}
	default:
		services = slices.Clone(req.Services)
		seen := map[string]bool{}
		for i, s := range services {
			if !slices.Contains(e.services(), s) {
				return nil, "", fmt.Errorf("%w %q (services[%d])", traffic.ErrUnknownService, s, i)
			}
			if seen[s] {
				return nil, "", fmt.Errorf("%w: services[%d]: %q is listed twice", ErrBadRequest, i, s)
			}
			seen[s] = true
		}
	}
	if name == "" {
		return nil, "", fmt.Errorf("%w: name: required", ErrBadRequest)
	}
	if len(name) > 50 || !releaseName.MatchString(name) {
		return nil, "", fmt.Errorf("%w: name: %q must be lowercase letters, digits and inner dashes, at most 50 characters", ErrBadRequest, name)
	}
	if len(services) == 0 {
		return nil, "", fmt.Errorf("%w: no services", ErrBadRequest)
	}
	return services, name, nil
}

// nextID is NAME-N, N one more than any stored or pruned release of that
// name: an ID is never given twice.
func (e *Executor) nextID(ctx context.Context, name string) (string, error) {
	all, err := e.store.ListReleases(ctx)
	if err != nil {
		return "", err
	}
	n := 0
	if p, ok := e.store.(state.ReleasePruner); ok {
		ids, _, err := p.PrunedIDs(ctx)
		if err != nil {
			return "", err
		}
		n = ids[name]
	}
	for _, s := range all {
		if k, ok := idNumber(s.Release.ID, name); ok {
			n = max(n, k)
		}
	}
	return fmt.Sprintf("%s-%d", name, n+1), nil
}

// idNumber is N of a release ID NAME-N of the given name.
func idNumber(id, name string) (int, bool) {
	rest, ok := strings.CutPrefix(id, name+"-")
	if !ok {
		return 0, false
	}
	k, err := strconv.Atoi(rest)
	return k, err == nil && k > 0
}

// splitID splits a release ID NAME-N.
func splitID(id string) (string, int, bool) {
	i := strings.LastIndexByte(id, '-')
	if i < 1 {
		return "", 0, false
	}
	k, ok := idNumber(id, id[:i])
	return id[:i], k, ok
}

// prune deletes the oldest ended releases beyond Options.Keep (by
// creation; a running, paused or rolling-back release is never deleted),
// fenced and check-and-set on each release's revision, and records the
// highest pruned number of each name so nextID never gives it again. It
// runs on the start loop, after a release ends and when a term begins, so
// it never interleaves with the choice of a new ID. A failed prune is
// logged; the next one tries again.
func (e *Executor) prune(epoch uint64) {
	p, ok := e.store.(state.ReleasePruner)
	if !ok {
		return
	}
	for {
		e.mu.Lock()
		current := e.leading && e.epoch == epoch
		e.mu.Unlock()
		if !current {
			return
		}
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		more, err := e.pruneOnce(ctx, p)
		cancel()
		if err != nil {
			e.log.Warn("stored releases not pruned; the next release that ends tries again", "keep", e.opts.Keep, "error", err)
			return
		}
		if !more {
			return
		}
	}
}

// pruneOnce deletes up to state.MaxPrunedPerWrite of the releases to
// prune, in one write; more says whether some are left.
func (e *Executor) pruneOnce(ctx context.Context, p state.ReleasePruner) (more bool, err error) {
	all, err := e.store.ListReleases(ctx)
	if err != nil {
		return false, err
	}
	var ended []state.StoredRelease
	for _, s := range all {
		if s.Release.Phase.Ended() {
			ended = append(ended, s)
		}
	}
	excess := len(ended) - e.opts.Keep
	if excess <= 0 {
		return false, nil
	}
	del := ended[:min(excess, state.MaxPrunedPerWrite)]
	ids, idx, err := p.PrunedIDs(ctx)
	if err != nil {
		return false, err
	}
	names := make([]string, 0, len(del))
	for _, d := range del {
		if name, k, ok := splitID(d.Release.ID); ok && k > ids[name] {
			ids[name] = k
		}
		names = append(names, d.Release.ID)
	}
	if err := p.PruneReleases(ctx, del, ids, idx); err != nil {
		return false, err
	}
	e.log.Info("pruned stored releases", "releases", names, "keep", e.opts.Keep)
	return excess > len(del), nil
}

// Abort takes the release back by hand: running member switches are
// aborted, promoted members rolled back, consumers first; it ends aborted.
func (e *Executor) Abort(ctx context.Context, id string, cmd apiv1.ReleaseCommand) (apiv1.ReleaseStatus, error) {
	return e.command(ctx, id, func(now time.Time) release.Event { return release.Abort{Now: now, Reason: cmd.Reason} })
}

// Pause stops members from starting; running member switches continue.
func (e *Executor) Pause(ctx context.Context, id string, _ apiv1.ReleaseCommand) (apiv1.ReleaseStatus, error) {
	return e.command(ctx, id, func(now time.Time) release.Event { return release.Pause{Now: now} })
}

// Resume lets members start again.
func (e *Executor) Resume(ctx context.Context, id string, _ apiv1.ReleaseCommand) (apiv1.ReleaseStatus, error) {
	return e.command(ctx, id, func(now time.Time) release.Event { return release.Resume{Now: now} })
}

// command applies an operator's command on the release's loop: stored,
// answered, and its effects carried out right after.
func (e *Executor) command(ctx context.Context, id string, ev func(time.Time) release.Event) (apiv1.ReleaseStatus, error) {
	if _, err := e.ready(); err != nil {
		return apiv1.ReleaseStatus{}, err
	}
	e.mu.Lock()
	r := e.runs[id]
	e.mu.Unlock()
	if r == nil {
		rel, _, found, err := e.store.LoadRelease(ctx, id)
		switch {
		case err != nil:
			return apiv1.ReleaseStatus{}, err
		case !found:
			return apiv1.ReleaseStatus{}, fmt.Errorf("%w %q", ErrUnknownRelease, id)
		case rel.Phase.Ended():
			return apiv1.ReleaseStatus{}, fmt.Errorf("%w: release %s ended %s", release.ErrEnded, id, rel.Phase)
		}
		return apiv1.ReleaseStatus{}, fmt.Errorf("%w: release %s is not loaded by this replica yet", traffic.ErrNotReady, id)
	}
	var out apiv1.ReleaseStatus
	var err error
	e.rt.Call(r.key, func() {
		var effs []release.Effect
		if effs, err = e.decide(r, ev(e.rt.Now())); err != nil {
			return
		}
		out = e.status(r.rel)
		if len(effs) > 0 {
			e.rt.Post(r.key, func() { e.carry(r, effs) })
		}
	})
	return out, err
}

// Get reads one stored release.
func (e *Executor) Get(ctx context.Context, id string) (apiv1.ReleaseStatus, error) {
	rel, _, found, err := e.store.LoadRelease(ctx, id)
	switch {
	case err != nil:
		return apiv1.ReleaseStatus{}, err
	case !found:
		return apiv1.ReleaseStatus{}, fmt.Errorf("%w %q", ErrUnknownRelease, id)
	}
	return e.status(rel), nil
}

// List reads every stored release, newest first.
func (e *Executor) List(ctx context.Context) ([]apiv1.ReleaseStatus, error) {
	all, err := e.store.ListReleases(ctx)
	if err != nil {
		return nil, err
	}
	out := make([]apiv1.ReleaseStatus, 0, len(all))
	for i := len(all) - 1; i >= 0; i-- {
		out = append(out, e.status(all[i].Release))
	}
	return out, nil
}

// status is a release with its order and each member's split now.
func (e *Executor) status(rel release.Release) apiv1.ReleaseStatus {
	st := apiv1.ReleaseStatus{Release: rel, Order: rel.Order(), Weights: map[string]apiv1.Weights{}}
	for _, m := range rel.Members {
		if t, err := e.ctrl.TrafficState(m.Service); err == nil {
			st.Weights[m.Service] = apiv1.Weights{Blue: t.Percent(model.Blue), Green: t.Percent(model.Green)}
		}
	}
	return st
}

// SetServices replaces the configured services (a config reload added or
// removed some): --all and --services name them from now on. A running
// release keeps its members.
func (e *Executor) SetServices(names []string) {
	e.svcMu.Lock()
	defer e.svcMu.Unlock()
	e.opts.Services = slices.Clone(names)
}

// services copies the configured services, in order.
func (e *Executor) services() []string {
	e.svcMu.Lock()
	defer e.svcMu.Unlock()
	return slices.Clone(e.opts.Services)
}
