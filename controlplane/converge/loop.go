package converge

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sort"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	apiv1 "github.com/bgctl/bg/controlplane/api/v1"
	"github.com/bgctl/bg/controlplane/config"
	"github.com/bgctl/bg/controlplane/model"
	"github.com/bgctl/bg/controlplane/release"
	"github.com/bgctl/bg/controlplane/state"
	"github.com/bgctl/bg/controlplane/traffic"
)

// Actor is who the loop's switches and writes are recorded as.
const Actor = "bg:converge"

// Controller is what the loop needs from the traffic controller: the
// status a user sees, and the entry point a POST /switch uses.
type Controller interface {
	Status(name string) (apiv1.Status, error)
	Switch(ctx context.Context, req traffic.Request) (traffic.Result, error)
}

// Options configure a Loop.
type Options struct {
	// Auto is every configured service's auto block (enabled or not).
	Auto map[string]config.Auto
	// Owner names the running release that owns a service ("" none).
	Owner func(service string) string
	// Tick is how often every service is evaluated (default 1s).
	Tick time.Duration
	// Timeout bounds a switch's wait for ACKs (switch.timeout).
	Timeout time.Duration
	// Backoff is how long the loop waits after a switch it could not
	// start (a gate, a conflict) before trying again (default 10s).
	Backoff time.Duration
	Now     func() time.Time
	Log     *slog.Logger
	Metrics *Metrics
	// Go runs a switch's start off the loop (default: a goroutine; the
	// fault simulation schedules it).
	Go func(func())
	// Releases starts a group's release (bg desire --set) and reads how it
	// ended; nil: groups only report.
	Releases Releases
}

// Releases is what groups need from the release executor.
type Releases interface {
	Start(ctx context.Context, req apiv1.ReleaseRequest) (apiv1.ReleaseStatus, error)
	Get(ctx context.Context, id string) (apiv1.ReleaseStatus, error)
	List(ctx context.Context) ([]apiv1.ReleaseStatus, error)
}

// releaseAttempt prefixes a group's attempt: the release's ID follows.
const releaseAttempt = "release:"

// svc is the loop's memory of one service. Guarded by Loop.mu.
type svc struct {
	auto     config.Auto
	stored   *state.StoredDesired
	ready    *Ready
	last     Decision
	serving  []string
	pending  time.Time // not converged since
	lastErr  string
	retryAt  time.Time
	starting bool
	removed  bool // by a reload: no longer evaluated or desirable
}

// Loop is the convergence loop. Every replica evaluates (for status);
// only the leader (Lead) acts.
type Loop struct {
	ctrl  Controller
	store state.Desires
	o     Options

	mu       sync.Mutex
	services map[string]*svc
	names    []string
	lead     context.Context // nil unless leading
	writeMu  sync.Mutex      // one desired-state write at a time
	roundMu  sync.Mutex      // one evaluation at a time (Round, refresh)
	poke     chan struct{}
	wakes    atomic.Int64 // times Run began to wait (tests: an idle loop waits once)
}

// New builds a loop over the configured services.
func New(ctrl Controller, store state.Desires, o Options) *Loop {
	if o.Tick <= 0 {
		o.Tick = time.Second
	}
	if o.Backoff <= 0 {
		o.Backoff = 10 * time.Second
	}
	if o.Now == nil {
		o.Now = time.Now
	}
	if o.Log == nil {
		o.Log = slog.New(slog.DiscardHandler)
	}
	if o.Go == nil {
		o.Go = func(f func()) { go f() }
	}
	l := &Loop{ctrl: ctrl, store: store, o: o, services: map[string]*svc{}, poke: make(chan struct{}, 1)}
	for name, a := range o.Auto {
		l.services[name] = &svc{auto: a}
		l.names = append(l.names, name)
	}
	sort.Strings(l.names)
	return l
}

// SetServices follows a config reload: services added get a loop entry,
// removed ones are no longer evaluated nor desirable (their entry stays,
// for a start still on its way; their desired state stays in Consul), and
// every service's auto settings become autos'.
func (l *Loop) SetServices(autos map[string]config.Auto) {
	l.roundMu.Lock()
	defer l.roundMu.Unlock()
	l.mu.Lock()
	defer l.mu.Unlock()
	names := make([]string, 0, len(autos))
	for name, a := range autos {
		if s := l.services[name]; s != nil {
			s.auto, s.removed = a, false
		} else {
			l.services[name] = &svc{auto: a}
		}
		names = append(names, name)
	}
	for name, s := range l.services {
		if _, ok := autos[name]; !ok {
			s.removed = true
		}
	}
	sort.Strings(names)
	l.names = names
}

// known: a configured service (not removed by a reload).
func (l *Loop) known(name string) bool {
	l.mu.Lock()
	defer l.mu.Unlock()
	s := l.services[name]
	return s != nil && !s.removed
}

// Lead makes this replica act until ctx ends (leadership lost). It returns at once.
func (l *Loop) Lead(ctx context.Context) {
	l.Elected(ctx)
	go func() {
		<-ctx.Done()
		l.deposeCtx(ctx)
	}()
}

// Elected makes this replica act, with ctx, until Deposed (the fault
// simulation's leadership; Lead for a context that ends with it).
func (l *Loop) Elected(ctx context.Context) {
	l.mu.Lock()
	l.lead = ctx
	for _, s := range l.services {
		s.ready = nil // a new leader settles anew
	}
	l.mu.Unlock()
	l.Poke()
}

// Deposed: this replica no longer acts.
func (l *Loop) Deposed() {
	l.mu.Lock()
	l.lead = nil
	l.mu.Unlock()
}

func (l *Loop) deposeCtx(ctx context.Context) {
	l.mu.Lock()
	if l.lead == ctx {
		l.lead = nil
	}
	l.mu.Unlock()
}

// Poke evaluates soon (a membership change).
func (l *Loop) Poke() {
	select {
	case l.poke <- struct{}{}:
	default:
	}
}

// Run evaluates every service on each tick and poke until ctx ends.
func (l *Loop) Run(ctx context.Context) {
	t := time.NewTimer(l.o.Tick)
	defer t.Stop()
	for {
		l.Round(ctx)
		last := time.Now()
		for {
			// Between events only a clock can change a decision
			// (settling, a window, a backoff): the loop ticks only while
			// one does. Otherwise it sleeps until a poke or a slow
			// refresh (desires stored by a leader, seen here for status):
			// an idle replica is not woken every tick to find nothing to do.
			d := idleRefresh - time.Since(last)
			if l.timely() {
				d = l.o.Tick
			}
			t.Reset(max(d, 0))
			l.wakes.Add(1)
			select {
			case <-ctx.Done():
				return
			case <-l.poke:
			case <-t.C:
				if !l.timely() && time.Since(last) < idleRefresh {
					continue
				}
			}
			break
		}
	}
}

// idleRefresh is how often a loop with nothing time-dependent re-reads the
// desired states: a follower's status of a desire written by the leader
// lags by at most this; the leader learns its own at once.
const idleRefresh = 30 * time.Second

// timely: some service's decision can change with the clock alone, so the
// next tick must evaluate. Every other change arrives as a poke
// (membership, a switch beginning or ending, a desire, an abort).
func (l *Loop) timely() bool {
	l.mu.Lock()
	defer l.mu.Unlock()
	now := l.o.Now()
	for _, s := range l.services {
		if s.removed {
			continue
		}
		switch {
		case s.starting, now.Before(s.retryAt):
			return true
		}
		switch s.last.Kind {
		case Settling, WindowClosed, Start, WaitingForGroup:
			return true
		}
	}
	return false
}

// Round reads every desired state and evaluates each service once; the
// leader carries out what it decides.
func (l *Loop) Round(ctx context.Context) {
	l.roundMu.Lock()
	defer l.roundMu.Unlock()
	rctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	all, err := l.store.ListDesired(rctx)
	cancel()
	if err != nil {
		l.o.Log.Warn("cannot read the desired versions; convergence waits", "error", err)
		return
	}
	for _, name := range l.names {
		l.evaluate(ctx, name, all)
	}
	l.groups(all)
}

// groups decides each group desired together: members whose own decision
// is Start wait for the others, and the leader starts one release of the
// members still to switch once every member is ready or converged.
func (l *Loop) groups(all map[string]state.StoredDesired) {
	seen := map[string]bool{}
	for _, name := range l.names {
		sd, ok := all[name]
		if !ok || len(sd.Desired.Group) == 0 {
			continue
		}
		key := strings.Join(sd.Desired.Group, ",")
		if seen[key] {
			continue
		}
		seen[key] = true
		var members []string
		for _, m := range sd.Desired.Group {
			if md, ok := all[m]; ok && strings.Join(md.Desired.Group, ",") == key {
				members = append(members, m) // a member desired alone since has left the group
			}
		}
		l.mu.Lock()
		own := map[string]Decision{}
		act := l.lead != nil && l.o.Releases != nil
		for _, m := range members {
			s := l.services[m]
			if s == nil {
				act = false
				continue
			}
			own[m] = s.last
			act = act && s.auto.Enabled && !s.starting && !l.o.Now().Before(s.retryAt)
		}
		g := DecideGroup(members, own)
		if g.Holder != "" {
			for _, m := range members {
				if s := l.services[m]; s != nil && s.last.Kind == Start {
					s.last = Decision{Kind: WaitingForGroup, Version: s.last.Version, To: s.last.To, Ready: s.last.Ready,
						Reason: g.Holder + ": " + g.Why.String()}
				}
			}
		}
		start := act && len(g.Start) > 0
		lead := l.lead
		if start {
			for _, m := range members {
				l.services[m].starting = true
			}
		}
		l.mu.Unlock()
		if start {
			versions := map[string]string{}
			for _, m := range members {
				versions[m] = all[m].Desired.Version
			}
			l.o.Go(func() { l.startGroup(lead, members, g.Start, versions) })
		}
	}
}

// startGroup starts one release of the members to switch and records it
// as every member's attempt.
func (l *Loop) startGroup(ctx context.Context, members, switching []string, versions map[string]string) {
	if len(switching) == 0 {
		return
	}
	defer func() {
		l.mu.Lock()
		for _, m := range members {
			l.services[m].starting = false
		}
		l.mu.Unlock()
		l.Poke()
	}()
	var parts []string
	for _, m := range members {
		parts = append(parts, m+"="+versions[m])
	}
	reason := "converge to desired versions " + strings.Join(parts, ",")
	// Recorded first, as for a single switch: a successor that finds a
	// pending attempt looks for the release started after it.
	pending := PendingAttempt(l.o.Now())
	setAttempt := func(m, from, to, what string) error {
		v := versions[m]
		_, err := l.write(ctx, m, func(cur *model.Desired) (model.Desired, bool, error) {
			if cur == nil || cur.Version != v || len(cur.Group) == 0 || cur.Failed != nil || cur.Attempt != from {
				return model.Desired{}, false, nil
			}
			next := *cur
			next.Attempt = to
			if what != "" {
				next = next.Logged(model.DesireEvent{At: l.o.Now(), Actor: Actor, What: what, Version: v})
			}
			return next, true, nil
		})
		return err
	}
	prev := map[string]string{}
	l.mu.Lock()
	for _, m := range switching {
		if s := l.services[m]; s.stored != nil {
			prev[m] = s.stored.Desired.Attempt
		}
	}
	l.mu.Unlock()
	for _, m := range switching {
		if err := setAttempt(m, prev[m], pending, ""); err != nil {
			l.o.Log.Warn("converging release not started: its attempt could not be recorded", "service", m, "error", err)
			l.mu.Lock()
			for _, m := range members {
				l.services[m].retryAt = l.o.Now().Add(l.o.Backoff)
			}
			l.mu.Unlock()
			return
		}
	}
	l.o.Log.Info("converging: starting a release", "services", switching, "versions", parts)
	st, err := l.o.Releases.Start(traffic.WithActor(ctx, Actor), apiv1.ReleaseRequest{Name: "converge", Services: switching, Reason: reason})
	if err != nil {
		for _, m := range switching {
			if werr := setAttempt(m, pending, "", ""); werr != nil {
				l.o.Log.Warn("cannot clear the pending attempt", "service", m, "error", werr)
			}
		}
		l.mu.Lock()
		for _, m := range members {
			s := l.services[m]
			s.lastErr, s.retryAt = err.Error(), l.o.Now().Add(l.o.Backoff)
		}
		l.mu.Unlock()
		l.o.Log.Warn("converging release not started; trying again later", "services", switching, "error", err, "retry_in", l.o.Backoff)
		return
	}
	id := releaseAttempt + st.Release.ID
	for _, m := range switching { // a converged member has nothing to fail
		if err := setAttempt(m, pending, id, "started "+id); err != nil {
			l.o.Log.Error("release started but its attempt not recorded", "service", m, "release", st.Release.ID, "error", err)
		}
	}
}

// evaluate decides for one service and, when leading, acts.
func (l *Loop) evaluate(ctx context.Context, name string, all map[string]state.StoredDesired) {
	if _, desired := all[name]; !desired {
		// Nothing to converge to, and no trigger to find one: no status read
		// (a thousand idle services cost nothing).
		l.mu.Lock()
		s := l.services[name]
		idle := s.auto.Trigger != config.TriggerVersion || !s.auto.Enabled
		if idle {
			s.stored, s.ready, s.last, s.pending, s.lastErr = nil, nil, Decision{Kind: NoDesire}, time.Time{}, ""
		}
		l.mu.Unlock()
		if idle {
			l.o.Metrics.observe(name, s.auto.Enabled, NoDesire, time.Time{}, l.o.Now())
			return
		}
	}
	st, err := l.ctrl.Status(name)
	if err != nil {
		return
	}
	rel := l.releaseEnded(ctx, name, all[name].Desired)
	now := l.o.Now()
	l.mu.Lock()
	s := l.services[name]
	if sd, ok := all[name]; ok {
		s.stored = &sd
	} else {
		s.stored = nil
	}
	in := l.input(name, s, st, now)
	if rel != nil {
		in.Last = rel
	}
	lead := l.lead
	l.mu.Unlock()

	// trigger: version desires what the idle fleet runs, once.
	if v := triggered(s.auto, in); v != "" && lead != nil && lead.Err() == nil {
		prev := ""
		if in.Serving != "" {
			prev = only(in.Fleets[in.Serving])
		}
		if _, err := l.write(lead, name, func(cur *model.Desired) (model.Desired, bool, error) {
			d := model.Desired{Version: v, Actor: Actor + " (consul meta)", At: now, Previous: prev,
				Reason: fmt.Sprintf("every passing %s member runs %s", in.Serving.Other(), v)}
			if cur != nil {
				d.Log = cur.Log
			}
			return d.Logged(model.DesireEvent{At: now, Actor: d.Actor, What: "desired", Version: v, Reason: d.Reason}), true, nil
		}); err != nil {
			l.o.Log.Warn("cannot store the version the fleet runs as desired", "service", name, "version", v, "error", err)
		}
		return // next round decides on it
	}

	d := Decide(in)
	l.mu.Lock()
	s.ready, s.last = d.Ready, d
	s.serving = nil
	if in.Serving != "" {
		s.serving = in.Fleets[in.Serving].Versions
	}
	switch {
	case d.Kind == Converged || d.Kind == NoDesire:
		s.pending, s.lastErr = time.Time{}, ""
	case s.pending.IsZero():
		s.pending = now
		if in.Desired != nil && in.Desired.At.Before(now) {
			s.pending = in.Desired.At
		}
	}
	act := lead != nil && lead.Err() == nil && s.auto.Enabled
	start := act && d.Kind == Start && len(in.Desired.Group) == 0 && !s.starting && !now.Before(s.retryAt)
	if start {
		s.starting = true
	}
	pending := s.pending
	l.mu.Unlock()
	l.o.Metrics.observe(name, s.auto.Enabled, d.Kind, pending, now)

	if act && d.Record != nil {
		f, attempt := *d.Record, in.Desired.Attempt // the attempt decided on: its ID, or pending@ before it was known
		if _, err := l.write(lead, name, func(cur *model.Desired) (model.Desired, bool, error) {
			if cur == nil || cur.Version != d.Version || cur.Attempt != attempt || cur.Failed != nil {
				return model.Desired{}, false, nil // changed meanwhile
			}
			next := *cur
			next.Failed = &f
			return next.Logged(model.DesireEvent{At: now, Actor: Actor, What: "failed: " + failText(&f), Version: d.Version}), true, nil
		}); err != nil {
			l.o.Log.Warn("cannot record the failed convergence", "service", name, "error", err)
		} else {
			l.o.Log.Warn("converging switch did not promote; the version is not retried until desired again or bg desire --retry",
				"service", name, "version", d.Version, "switch", f.SwitchID, "cause", f.Cause, "reason", f.Reason)
		}
	}
	if start {
		want := *in.Desired
		l.o.Go(func() { l.start(lead, name, want, d) })
	}
}

// releaseEnded is how a group's release attempt ended (nil: no such
// attempt, or it runs, or it cannot be read now).
func (l *Loop) releaseEnded(ctx context.Context, service string, d model.Desired) *Ended {
	if d.Failed != nil || l.o.Releases == nil || len(d.Group) == 0 {
		return nil
	}
	var st apiv1.ReleaseStatus
	if id, ok := strings.CutPrefix(d.Attempt, releaseAttempt); ok {
		var err error
		if st, err = l.o.Releases.Get(ctx, id); err != nil {
			return nil
		}
	} else if at, ok := strings.CutPrefix(d.Attempt, pendingAttempt); ok {
		// The leader that started it died before recording its ID: the
		// first converge release of this service created since.
		since, err := time.Parse(time.RFC3339Nano, at)
		if err != nil {
			return nil
		}
		all, err := l.o.Releases.List(ctx)
		if err != nil {
			return nil
		}
		found := false
		for _, r := range all {
			if _, member := r.Release.Find(service); member && r.Release.Name == "converge" && !r.Release.CreatedAt.Before(since) &&
				(!found || r.Release.CreatedAt.Before(st.Release.CreatedAt)) {
				st, found = r, true
			}
		}
		if !found {
			return nil
		}
	} else {
		return nil
	}
	if !st.Release.Phase.Ended() {
		return nil
	}
	e := &Ended{ID: d.Attempt, Reason: st.Release.Reason, At: st.Release.EndedAt, Outcome: Promoted}
	switch st.Release.Phase {
	case release.RolledBack:
		e.Outcome = RolledBack
	case release.Aborted:
		e.Outcome = Aborted
	}
	return e
}

// input builds the decision's input from status. Holds l.mu.
func (l *Loop) input(name string, s *svc, st apiv1.Status, now time.Time) Input {
	in := Input{Now: now, Ready: s.ready, MinMembers: s.auto.MinMembers, Settle: s.auto.Settle, WindowOpen: true,
		Running: st.Phase == model.PhaseSwitching, Fleets: map[model.Color]Fleet{}}
	if s.stored != nil {
		d := s.stored.Desired
		in.Desired = &d
	}
	switch {
	case st.Weights.Blue == 100:
		in.Serving = model.Blue
	case st.Weights.Green == 100:
		in.Serving = model.Green
	}
	for col, fs := range st.Fleets {
		f := Fleet{}
		for _, m := range fs.Members {
			f.Versions = append(f.Versions, m.Version)
		}
		in.Fleets[col] = f
	}
	if w := st.Window; w != nil && !w.Open {
		in.WindowOpen, in.NextOpen = false, w.NextOpen
	}
	if l.o.Owner != nil && l.o.Owner(name) != "" {
		in.InRelease = true
	}
	in.Last = ended(st)
	return in
}

// ended is the service's latest switch or roll, if it ended. Traffic
// aborted back after it ended (phase aborted) counts as an abort of it.
func ended(st apiv1.Status) *Ended {
	e := endedAs(st)
	if e != nil && st.Phase == model.PhaseAborted && e.Outcome != Aborted {
		e.Outcome, e.Reason = Aborted, st.Reason
	}
	return e
}

func endedAs(st apiv1.Status) *Ended {
	if st.Phase == model.PhaseSwitching || st.SwitchID == "" {
		return nil
	}
	if r := st.Switch; r != nil && r.ID == st.SwitchID {
		e := &Ended{ID: r.ID, Reason: r.Reason, At: r.EndedAt, Started: r.StartedAt}
		switch r.Phase {
		case model.RolloutPromoted:
			e.Outcome = Promoted
		case model.RolloutRolledBack:
			e.Outcome = RolledBack
		case model.RolloutAborted:
			e.Outcome = Aborted
		default:
			return nil
		}
		return e
	}
	if r := st.Roll; r != nil && r.ID == st.SwitchID {
		e := &Ended{ID: r.ID, Reason: r.Reason, At: r.EndedAt, Started: r.StartedAt}
		switch r.Phase {
		case model.RollCompleted:
			e.Outcome = Promoted
		case model.RollRolledBack:
			e.Outcome = RolledBack
		case model.RollAborted:
			e.Outcome = Aborted
		default:
			return nil
		}
		return e
	}
	return &Ended{ID: st.SwitchID, Outcome: Promoted} // an instant switch
}

// only is the one version every member of f runs ("" if none or several).
func only(f Fleet) string {
	if len(f.Versions) == 0 {
		return ""
	}
	v := f.Versions[0]
	if v == "" || !f.only(v) {
		return ""
	}
	return v
}

// triggered is the version trigger's new desire: every passing member of
// the idle fleet runs one version the serving fleet does not, and it is
// neither desired now nor the one the desire replaced nor in the log.
func triggered(a config.Auto, in Input) string {
	if a.Trigger != config.TriggerVersion || in.Serving == "" || in.Running {
		return ""
	}
	v := only(in.Fleets[in.Serving.Other()])
	if v == "" || model.ValidateVersion(v) != nil {
		return ""
	}
	if _, other := in.Fleets[in.Serving].count(v); other == 0 && len(in.Fleets[in.Serving].Versions) > 0 {
		return "" // the serving fleet runs it too
	}
	if d := in.Desired; d != nil {
		if d.Version == v || d.Previous == v {
			return ""
		}
		for _, ev := range d.Log {
			if ev.Version == v {
				return ""
			}
		}
	}
	return v
}

// start starts the switch Decide asked for, on the leader, and records it
// as the desired version's attempt.
func (l *Loop) start(ctx context.Context, name string, want model.Desired, d Decision) {
	defer func() {
		l.mu.Lock()
		l.services[name].starting = false
		l.mu.Unlock()
		l.Poke()
	}()
	reason := fmt.Sprintf("converge to desired version %s", want.Version)
	if want.Reason != "" {
		reason += " (" + want.Reason + ")"
	}
	// Recorded first, so that a successor knows the switch as ours even if
	// this leader dies before it learns the switch's ID.
	mine := func(cur *model.Desired) bool {
		return cur != nil && cur.Version == want.Version && cur.At.Equal(want.At) && cur.Failed == nil
	}
	pending := PendingAttempt(l.o.Now())
	if ok, err := l.write(ctx, name, func(cur *model.Desired) (model.Desired, bool, error) {
		if !mine(cur) {
			return model.Desired{}, false, nil
		}
		next := *cur
		next.Attempt = pending
		return next, true, nil
	}); err != nil || !ok {
		l.o.Log.Warn("converging switch not started: its attempt could not be recorded", "service", name, "error", err)
		l.mu.Lock()
		l.services[name].retryAt = l.o.Now().Add(l.o.Backoff)
		l.mu.Unlock()
		return
	}
	l.o.Log.Info("converging: starting a switch", "service", name, "to", d.To, "version", want.Version)
	res, err := l.ctrl.Switch(traffic.WithActor(ctx, Actor), traffic.Request{Service: name, To: d.To, Reason: reason, Timeout: l.o.Timeout})
	id := res.Status.SwitchID
	if err == nil && id == "" {
		err = errors.New("the switch started but status names no switch")
	}
	if err != nil {
		l.mu.Lock()
		s := l.services[name]
		s.lastErr, s.retryAt = err.Error(), l.o.Now().Add(l.o.Backoff)
		l.mu.Unlock()
		l.o.Log.Warn("converging switch not started; trying again later", "service", name, "error", err, "retry_in", l.o.Backoff)
		if _, werr := l.write(ctx, name, func(cur *model.Desired) (model.Desired, bool, error) {
			if !mine(cur) || cur.Attempt != pending {
				return model.Desired{}, false, nil
			}
			next := *cur
			next.Attempt = ""
			return next, true, nil
		}); werr != nil {
			l.o.Log.Warn("cannot clear the pending attempt", "service", name, "error", werr)
		}
		return
	}
	if _, err := l.write(ctx, name, func(cur *model.Desired) (model.Desired, bool, error) {
		if !mine(cur) || cur.Attempt != pending {
			return model.Desired{}, false, nil // desired anew or overridden meanwhile: the attempt is not its
		}
		next := *cur
		next.Attempt = id
		return next.Logged(model.DesireEvent{At: l.o.Now(), Actor: Actor, What: "started " + id, Version: want.Version}), true, nil
	}); err != nil {
		l.o.Log.Error("switch started but its attempt not recorded: a rollback of it will not be remembered", "service", name, "switch", id, "error", err)
	}
	l.mu.Lock()
	l.services[name].lastErr = ""
	l.mu.Unlock()
}

// ErrUnknownService: a desire for a service bg does not switch.
var ErrUnknownService = traffic.ErrUnknownService

// write changes a service's desired state with check-and-set, retrying a
// conflict once on a fresh read. f returns the next state and whether to
// write it.
func (l *Loop) write(ctx context.Context, name string, f func(cur *model.Desired) (model.Desired, bool, error)) (bool, error) {
	changed, err := l.writeSet(ctx, []string{name}, func(_ string, cur *model.Desired) (model.Desired, bool, error) { return f(cur) })
	return changed[name], err
}

// writeSet changes several services' desired states in one check-and-set
// transaction (all or none), retrying a conflict once on a fresh read. f
// returns each one's next state and whether to write it; an error from f
// writes nothing. It reports which were written.
func (l *Loop) writeSet(ctx context.Context, names []string, f func(name string, cur *model.Desired) (model.Desired, bool, error)) (map[string]bool, error) {
	l.writeMu.Lock()
	defer l.writeMu.Unlock()
	for attempt := 0; ; attempt++ {
		all, err := l.store.ListDesired(ctx)
		if err != nil {
			return nil, err
		}
		var writes []state.DesiredWrite
		for _, name := range names {
			var cur *model.Desired
			var prev state.Index
			if sd, ok := all[name]; ok {
				cur, prev = &sd.Desired, sd.Index
			}
			next, ok, err := f(name, cur)
			if err != nil {
				return nil, err
			}
			if ok {
				writes = append(writes, state.DesiredWrite{Service: name, Desired: next, Prev: prev})
			}
		}
		if len(writes) == 0 {
			return nil, nil
		}
		idx, err := l.store.SaveDesiredSet(ctx, writes)
		if errors.Is(err, state.ErrConflict) && attempt == 0 {
			continue
		}
		if err != nil {
			return nil, err
		}
		changed := make(map[string]bool, len(writes))
		l.mu.Lock()
		for _, w := range writes {
			l.services[w.Service].stored = &state.StoredDesired{Desired: w.Desired, Index: idx[w.Service]}
			changed[w.Service] = true
		}
		l.mu.Unlock()
		return changed, nil
	}
}

// Desire stores the version a service should run (POST
// /v1/services/S/desired). The same version again changes nothing; Retry
// clears the version's failure so the loop tries it again.
func (l *Loop) Desire(ctx context.Context, name string, req apiv1.DesireRequest) (apiv1.DesireResult, error) {
	return l.desire(ctx, name, req, nil)
}

// DesireSet stores several services' desired versions as one group (POST
// /v1/desired, bg desire --set): they converge as one release, in
// dependency order, rolled back together. Every entry is checked, then all
// are stored in one transaction, or none is: a group stored in part would
// converge as a smaller group, out of its order.
func (l *Loop) DesireSet(ctx context.Context, req apiv1.DesireSetRequest) (apiv1.DesireSetResult, error) {
	if len(req.Set) == 0 {
		return apiv1.DesireSetResult{}, fmt.Errorf("%w: set: no service", ErrBadDesire)
	}
	if len(req.Set) > state.MaxDesiredSet {
		return apiv1.DesireSetResult{}, fmt.Errorf("%w: set: %d services; at most %d are stored together", ErrBadDesire, len(req.Set), state.MaxDesiredSet)
	}
	var group []string
	for name, v := range req.Set {
		if !l.known(name) {
			return apiv1.DesireSetResult{}, fmt.Errorf("%w %q", ErrUnknownService, name)
		}
		if err := model.ValidateVersion(v); err != nil {
			return apiv1.DesireSetResult{}, fmt.Errorf("%w: %s: %v", ErrBadDesire, name, err)
		}
		group = append(group, name)
	}
	if len(req.Reason) > 500 {
		return apiv1.DesireSetResult{}, fmt.Errorf("%w: reason: longer than 500 characters", ErrBadDesire)
	}
	sort.Strings(group)
	names := group
	if len(group) == 1 {
		group = nil // a group of one converges alone
	}
	actor, now := actorOf(ctx), l.o.Now()
	serving := make(map[string]string, len(names))
	for _, name := range names {
		serving[name] = l.serving(name)
	}
	changed, err := l.writeSet(ctx, names, func(name string, cur *model.Desired) (model.Desired, bool, error) {
		return nextDesire(name, cur, apiv1.DesireRequest{Version: req.Set[name], Reason: req.Reason}, group, actor, now, serving[name])
	})
	if err != nil {
		return apiv1.DesireSetResult{}, fmt.Errorf("desire %v (none stored): %w", req.Set, err)
	}
	if len(changed) > 0 {
		l.o.Log.Info("desired versions stored", "set", req.Set, "actor", actor)
		l.Poke()
	}
	out := apiv1.DesireSetResult{Services: map[string]apiv1.DesireResult{}}
	for _, name := range names {
		l.refresh(ctx, name)
		out.Services[name] = apiv1.DesireResult{Changed: changed[name], Convergence: l.convergence(name, true)}
		out.Changed = out.Changed || changed[name]
	}
	return out, nil
}

func (l *Loop) desire(ctx context.Context, name string, req apiv1.DesireRequest, group []string) (apiv1.DesireResult, error) {
	if !l.known(name) {
		return apiv1.DesireResult{}, fmt.Errorf("%w %q", ErrUnknownService, name)
	}
	if req.Version == "" && !req.Retry {
		return apiv1.DesireResult{}, fmt.Errorf("%w: version: required (or retry)", ErrBadDesire)
	}
	if req.Version != "" {
		if err := model.ValidateVersion(req.Version); err != nil {
			return apiv1.DesireResult{}, fmt.Errorf("%w: %v", ErrBadDesire, err)
		}
	}
	if len(req.Reason) > 500 {
		return apiv1.DesireResult{}, fmt.Errorf("%w: reason: longer than 500 characters", ErrBadDesire)
	}
	actor, now := actorOf(ctx), l.o.Now()
	serving := l.serving(name)
	changed, err := l.write(ctx, name, func(cur *model.Desired) (model.Desired, bool, error) {
		return nextDesire(name, cur, req, group, actor, now, serving)
	})
	if err != nil {
		return apiv1.DesireResult{}, err
	}
	if req.Retry {
		// A group failed together: every member is retried together.
		l.mu.Lock()
		var group []string
		if s := l.services[name]; s.stored != nil {
			group = s.stored.Desired.Group
		}
		l.mu.Unlock()
		for _, m := range group {
			if m == name {
				continue
			}
			ch, err := l.write(ctx, m, func(cur *model.Desired) (model.Desired, bool, error) {
				if cur == nil || cur.Failed == nil || strings.Join(cur.Group, ",") != strings.Join(group, ",") {
					return model.Desired{}, false, nil
				}
				next := *cur
				next.Failed, next.Attempt = nil, ""
				return next.Logged(model.DesireEvent{At: now, Actor: actor, What: "retry (with " + name + ")", Version: cur.Version, Reason: req.Reason}), true, nil
			})
			if err != nil {
				return apiv1.DesireResult{}, fmt.Errorf("%s retried, but not %s of its group: %w", name, m, err)
			}
			changed = changed || ch
		}
	}
	if changed {
		l.o.Log.Info("desired version stored", "service", name, "version", req.Version, "retry", req.Retry, "actor", actor)
		l.Poke()
	}
	l.refresh(ctx, name)
	return apiv1.DesireResult{Changed: changed, Convergence: l.convergence(name, true)}, nil
}

// actorOf is who asks, for the desired state's log.
func actorOf(ctx context.Context) string {
	if actor := traffic.ActorFrom(ctx); actor != "" {
		return actor
	}
	return "api"
}

// serving is the version the fleet taking all of name's traffic runs
// (empty if none takes all, or its members disagree): a new desire
// remembers it as Previous.
func (l *Loop) serving(name string) string {
	st, err := l.ctrl.Status(name)
	if err != nil {
		return ""
	}
	for col, fs := range st.Fleets {
		if st.Weights.Blue == 100 && col == model.Blue || st.Weights.Green == 100 && col == model.Green {
			var f Fleet
			for _, m := range fs.Members {
				f.Versions = append(f.Versions, m.Version)
			}
			return only(f)
		}
	}
	return ""
}

// nextDesire is what a desire (or a retry) makes of a service's stored
// desired state cur (nil: none), and whether to write it.
func nextDesire(name string, cur *model.Desired, req apiv1.DesireRequest, group []string, actor string, now time.Time, serving string) (model.Desired, bool, error) {
	switch {
	case req.Retry && cur == nil:
		return model.Desired{}, false, fmt.Errorf("%w: %s has no desired version to retry", ErrBadDesire, name)
	case req.Retry && req.Version != "" && req.Version != cur.Version:
		return model.Desired{}, false, fmt.Errorf("%w: --retry names %s but %s is desired; desire %s instead", ErrBadDesire, req.Version, cur.Version, req.Version)
	case req.Retry:
		if cur.Failed == nil {
			return model.Desired{}, false, nil
		}
		next := *cur
		next.Failed, next.Attempt = nil, ""
		return next.Logged(model.DesireEvent{At: now, Actor: actor, What: "retry", Version: cur.Version, Reason: req.Reason}), true, nil
	case cur != nil && cur.Version == req.Version && strings.Join(cur.Group, ",") == strings.Join(group, ","):
		return model.Desired{}, false, nil // the same desire again (a re-run pipeline)
	}
	d := model.Desired{Version: req.Version, Reason: req.Reason, Actor: actor, At: now, Previous: serving, Group: group}
	if cur != nil {
		d.Log = cur.Log
	}
	return d.Logged(model.DesireEvent{At: now, Actor: actor, What: "desired", Version: req.Version, Reason: req.Reason}), true, nil
}

// refresh decides for one service now, so the answer to a desire says
// where it stands (it acts only as a round would).
func (l *Loop) refresh(ctx context.Context, name string) {
	l.roundMu.Lock()
	defer l.roundMu.Unlock()
	if all, err := l.store.ListDesired(ctx); err == nil {
		l.evaluate(ctx, name, all)
	}
}

// ErrBadDesire: a desire that is refused as asked (bad version, nothing to retry).
var ErrBadDesire = errors.New("bad desired version")

// Convergence is a service's convergence status (nil for an unknown
// service, or when nothing is desired and auto is off).
func (l *Loop) Convergence(name string) *apiv1.Convergence {
	c := l.convergence(name, false)
	if c.State == "" {
		return nil
	}
	return &c
}

// Get is GET /v1/services/S/desired.
func (l *Loop) Get(name string) (apiv1.Convergence, error) {
	if !l.known(name) {
		return apiv1.Convergence{}, fmt.Errorf("%w %q", ErrUnknownService, name)
	}
	return l.convergence(name, true), nil
}

func (l *Loop) convergence(name string, always bool) apiv1.Convergence {
	l.mu.Lock()
	defer l.mu.Unlock()
	s := l.services[name]
	if s == nil || !always && s.stored == nil && !s.auto.Enabled {
		return apiv1.Convergence{}
	}
	d := s.last
	c := apiv1.Convergence{Auto: s.auto.Enabled, Serving: append([]string{}, s.serving...), State: d.Kind, Detail: d.String(),
		To: d.To, Have: d.Have, Want: d.Want, SettleLeft: model.Duration(d.Left.Round(time.Second)), WindowUntil: d.Until,
		LastError: s.lastErr, PendingSince: s.pending}
	if c.State == "" {
		c.State, c.Detail = NoDesire, Decision{Kind: NoDesire}.String()
	}
	if s.stored != nil {
		dd := s.stored.Desired
		c.Desired = &dd
	}
	if !s.auto.Enabled && c.State != Converged && c.State != "" {
		c.Detail += " (auto off: bg does not switch by itself)"
	}
	return c
}

// Aborted is told of an explicit abort of a service (POST /abort). An
// abort that moved traffic (back from the desired version, too) is an
// operator's decision bg must not undo; one that changed nothing clears a
// pending convergence (settling, waiting for a window). Either way the
// version is marked aborted, and bg does not switch to it by itself until
// it is desired anew or retried. A converged service an abort did not
// move is left as it is.
func (l *Loop) Aborted(ctx context.Context, name string, changed bool) error {
	return l.override(ctx, name, model.FailAborted, changed)
}

// Switched is told of an explicit switch of a service (POST /switch):
// explicit switches take precedence, so bg stops converging the service
// by itself (the version is marked overridden) until a version is desired
// anew or retried; otherwise bg would undo the operator's switch.
func (l *Loop) Switched(ctx context.Context, name string) error {
	return l.override(ctx, name, model.FailOverridden, true)
}

func (l *Loop) override(ctx context.Context, name string, cause model.FailCause, evenConverged bool) error {
	l.mu.Lock()
	sv := l.services[name]
	if sv == nil {
		l.mu.Unlock()
		return nil
	}
	kind := sv.last.Kind
	l.mu.Unlock()
	if !evenConverged && (kind == Converged || kind == NoDesire || kind == "") {
		return nil
	}
	actor := traffic.ActorFrom(ctx)
	if actor == "" {
		actor = "api"
	}
	now := l.o.Now()
	what := "abort"
	if cause == model.FailOverridden {
		what = "explicit switch"
	}
	_, err := l.write(ctx, name, func(cur *model.Desired) (model.Desired, bool, error) {
		if cur == nil || cur.Failed != nil {
			return model.Desired{}, false, nil
		}
		next := *cur
		next.Failed = &model.DesiredFailure{Cause: cause, Reason: what + " by " + actor, SwitchID: cur.Attempt, At: now}
		return next.Logged(model.DesireEvent{At: now, Actor: actor, What: what + ": bg stops converging until desired anew or --retry", Version: cur.Version}), true, nil
	})
	if err == nil {
		l.Poke()
	}
	return err
}
