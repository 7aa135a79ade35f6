package release

import (
	"cmp"
	"errors"
	"fmt"
	"reflect"
	"slices"
	"strings"
	"time"

	"github.com/bgctl/bg/controlplane/model"
)

// Errors for commands and events that do not apply.
var (
	ErrEnded         = errors.New("the release has ended")
	ErrStarted       = errors.New("the release has already started")
	ErrNotStarted    = errors.New("the release has not started")
	ErrRollingBack   = errors.New("the release is rolling back")
	ErrUnknownMember = errors.New("not a member of the release")
	ErrNeedsReason   = errors.New("--force needs --reason")
	ErrBadEvent      = errors.New("malformed event")
)

// Event is an observation or a command. Every event carries the time it
// is handled at: Decide reads no clock.
type Event interface{ at() time.Time }

// Start begins a pending release: the members without providers start,
// up to MaxParallel. Force (with Reason) is recorded once for the
// release and passed to every member's switch: it skips what a forced
// switch skips (windows, gates).
type Start struct {
	Now    time.Time
	Force  bool
	Reason string
}

// Tick starts what may start now (a window reopened by the clock).
type Tick struct{ Now time.Time }

// SwitchPhase is where a member's switch stands, as its service's stored
// state shows it (a progressive switch, an instant one, or a roll).
type SwitchPhase string

const (
	SwitchRunning     SwitchPhase = "running"      // progressing, paused, held, waiting for gates
	SwitchRollingBack SwitchPhase = "rolling_back" // failed, going back gradually
	SwitchPromoted    SwitchPhase = "promoted"     // all traffic on its colour (an instant switch at once)
	SwitchRolledBack  SwitchPhase = "rolled_back"  // bg took it back to stable
	SwitchAborted     SwitchPhase = "aborted"      // an operator (or the release) took it back
)

// Validate rejects an unknown switch phase.
func (p SwitchPhase) Validate() error {
	switch p {
	case SwitchRunning, SwitchRollingBack, SwitchPromoted, SwitchRolledBack, SwitchAborted:
		return nil
	}
	return fmt.Errorf("unknown switch phase %q", p)
}

// MemberObserved is what a member service's stored state shows of its
// latest switch, read after the effects it follows. The executor sends one
// after carrying out an effect on the member, whenever the member's state
// changes, and for every member after a leader change.
type MemberObserved struct {
	Now     time.Time
	Service string
	// SwitchID is the service's latest switch ("" if it never had one).
	SwitchID string
	// Release is the release that started that switch ("" if started alone).
	Release string
	To      model.Color // where that switch moves traffic
	Phase   SwitchPhase
	Cause   model.Cause // why it went back; required for rollbacks
	Reason  string
	// Confirmed: the switch went back (or is the release's switch back) and
	// every proxy has ACKed the flip.
	Confirmed bool
}

// StartRefused says the control plane refused a member's StartSwitch.
// Window: refused because its deploy window is closed (until Until, zero
// if unknown): the member waits for it instead of failing the release.
type StartRefused struct {
	Now     time.Time
	Service string
	Reason  string
	Window  bool
	Until   time.Time
}

// Abort takes the release back by hand: it ends aborted.
type Abort struct {
	Now    time.Time
	Reason string
}

// Pause stops members from starting; running member switches continue.
type Pause struct{ Now time.Time }

// Resume lets members start again.
type Resume struct{ Now time.Time }

// WindowClosed: the deploy window of Service ("" for every member) closed
// until Until (zero: unknown, until WindowOpened). Waiting members it
// holds do not start; running ones continue. Ignored by a forced release.
type WindowClosed struct {
	Now     time.Time
	Service string
	Until   time.Time
	Reason  string
}

// WindowOpened: the deploy window of Service ("" for every member) opened.
type WindowOpened struct {
	Now     time.Time
	Service string
}

// GatesResult reports the calls of the release's gates at Stage (pre or
// post), one result per gate. All passed: the release goes on (pre: its
// members may start; post: it ends promoted). A failing gate with
// on_failure rollback takes the release back (cause gate_failed, naming
// the gate); a failing hold gate (or one without a result) keeps it
// waiting, and the gates are called again at the next tick. A result for
// a stage the release does not wait for is ignored (late or replayed).
type GatesResult struct {
	Now     time.Time
	Stage   string
	Results []model.GateResult
}

// Resync asks for the effects a stored state still owes (after a leader
// change or a restart): a start, abort or rollback that was decided and
// stored but may not have been carried out. The state does not change.
type Resync struct{ Now time.Time }

func (e Start) at() time.Time          { return e.Now }
func (e Tick) at() time.Time           { return e.Now }
func (e MemberObserved) at() time.Time { return e.Now }
func (e StartRefused) at() time.Time   { return e.Now }
func (e Abort) at() time.Time          { return e.Now }
func (e Pause) at() time.Time          { return e.Now }
func (e Resume) at() time.Time         { return e.Now }
func (e WindowClosed) at() time.Time   { return e.Now }
func (e WindowOpened) at() time.Time   { return e.Now }
func (e Resync) at() time.Time         { return e.Now }
func (e GatesResult) at() time.Time    { return e.Now }

// Effect is something a decision asks the executor to carry out, in the
// order given. Persist comes first: nothing else runs unless the new state
// was stored (fenced). Every other effect is idempotent: carried out twice
// it acts once, and it always ends with a MemberObserved (or StartRefused)
// for its member.
type Effect interface{ effect() }

// Persist stores the new release state (fenced check-and-set).
type Persist struct{}

// StartSwitch starts the member's switch of Service to To with its
// service's plan, tagged with the release ID. If the service's latest
// switch is already this release's switch to To, it starts nothing and
// reports that switch. Force: the switch skips what a forced switch skips.
type StartSwitch struct {
	Service string
	To      model.Color
	Force   bool
}

// AbortSwitch aborts the member's switch SwitchID ("" = this release's
// switch on Service, whose ID was not observed) if it still runs, and
// reports once every proxy has ACKed the flip back. If the release never
// started a switch on Service, it reports StartRefused.
type AbortSwitch struct {
	Service  string
	SwitchID string
}

// RollBack puts all of Service's traffic back on To (the member's From)
// with an instant switch tagged with the release ID, and reports once
// every proxy has ACKed it. If the service already serves To entirely
// (its own switch went back), it switches nothing and only confirms.
type RollBack struct {
	Service  string
	SwitchID string // the member's switch being undone
	To       model.Color
}

// CallGates calls the release's gates at Stage (pre or post) and reports
// a GatesResult. Owed (Resync) while the release waits for that stage.
type CallGates struct {
	Stage string
	Gates []model.Gate
}

func (Persist) effect()     {}
func (CallGates) effect()   {}
func (StartSwitch) effect() {}
func (AbortSwitch) effect() {}
func (RollBack) effect()    {}

// Decide applies one event. The input is never modified. On an error the
// input is returned with no effects; a nil effect list means nothing
// changed. When the state changes its generation increases by one and
// Persist comes first.
func Decide(r Release, ev Event) (Release, []Effect, error) {
	if ev == nil {
		return r, nil, ErrBadEvent
	}
	if _, ok := ev.(Resync); ok {
		return r, r.outstanding(), nil
	}
	next := r.clone()
	effs, err := next.apply(ev)
	if err != nil {
		return r, nil, err
	}
	if !next.Phase.Ended() {
		effs = append(effs, next.settle(ev.at())...)
	}
	if reflect.DeepEqual(r, next) {
		if len(effs) == 0 {
			return r, nil, nil
		}
		return r, effs, nil
	}
	next.Generation++
	return next, append([]Effect{Persist{}}, effs...), nil
}

func (r *Release) apply(ev Event) ([]Effect, error) {
	switch e := ev.(type) {
	case Start:
		if err := r.start(e); err != nil {
			return nil, err
		}
		return r.enterGate(model.GatePre), nil
	case Tick:
		return r.callGates(), nil // a held gate is called again
	case GatesResult:
		return r.gated(e)
	case MemberObserved:
		return r.observed(e)
	case StartRefused:
		return r.refused(e)
	case Abort:
		switch {
		case r.Phase.Ended():
			return nil, ErrEnded
		case r.Phase == RollingBack:
			return nil, nil // already going back; the first cause stands
		}
		r.Phase, r.Member, r.Cause, r.Reason = RollingBack, "", model.CauseAborted, cmp.Or(strings.TrimSpace(e.Reason), "aborted by hand")
		return r.stopAll(e.Now), nil
	case Pause:
		if err := r.pausable(); err != nil || r.Phase == Paused {
			return nil, err
		}
		r.Phase, r.Reason = Paused, "paused by hand"
		return nil, nil
	case Resume:
		if err := r.pausable(); err != nil || r.Phase == Running {
			return nil, err
		}
		r.Phase, r.Reason = Running, ""
		return nil, nil
	case WindowClosed:
		return nil, r.window(e.Service, func(m *Member) {
			if r.Force || !e.Until.IsZero() && !e.Now.Before(e.Until) {
				return // forced past windows, or open again already
			}
			m.Window = &Window{Until: e.Until, Reason: e.Reason}
		})
	case WindowOpened:
		return nil, r.window(e.Service, func(m *Member) { m.Window = nil })
	}
	return nil, fmt.Errorf("%w: unknown event %T", ErrBadEvent, ev)
}

func (r *Release) start(e Start) error {
	switch {
	case r.Phase.Ended():
		return ErrEnded
	case r.Phase != Pending:
		return ErrStarted
	case e.Force && strings.TrimSpace(e.Reason) == "":
		return fmt.Errorf("%w: say why this release overrides windows and gates", ErrNeedsReason)
	}
	r.Phase, r.StartedAt = Running, e.Now
	if e.Force {
		r.Force, r.ForceReason = true, strings.TrimSpace(e.Reason)
		r.GatesSkipped = len(r.Gates) > 0 // forced past the release's gates
		for i := range r.Members {
			r.Members[i].Window = nil // forced past windows
		}
	}
	return nil
}

func (r *Release) pausable() error {
	switch r.Phase {
	case Pending:
		return ErrNotStarted
	case RollingBack:
		return ErrRollingBack
	case Promoted, RolledBack, Aborted:
		return ErrEnded
	}
	return nil
}

// window applies f to the waiting member service names ("" = all).
func (r *Release) window(service string, f func(*Member)) error {
	if service != "" && r.index(service) < 0 {
		return fmt.Errorf("%w: %q", ErrUnknownMember, service)
	}
	if r.Phase.Ended() {
		return nil
	}
	for i := range r.Members {
		m := &r.Members[i]
		if m.Phase == MemberWaiting && (service == "" || m.Service == service) {
			f(m)
		}
	}
	return nil
}

// observation kinds: what an observed switch is to a member.
type obsKind int

const (
	obsBase    obsKind = iota // the switch the service had when the release was planned
	obsForward                // the member's switch (to To)
	obsBack                   // the release's switch back to From
	obsForeign                // anything else: switched outside the release
)

func (r *Release) classify(m Member, e MemberObserved) obsKind {
	switch {
	case e.SwitchID != "" && e.SwitchID == m.SwitchID:
		return obsForward
	case e.SwitchID != "" && e.SwitchID == m.RollbackID:
		return obsBack
	case e.SwitchID != "" && e.Release == r.ID && e.To == m.To:
		return obsForward
	case e.SwitchID != "" && e.Release == r.ID:
		return obsBack
	case e.SwitchID == m.Base:
		return obsBase
	}
	return obsForeign
}

func (e MemberObserved) validate() error {
	if e.SwitchID == "" {
		return nil
	}
	if _, err := model.ParseColor(string(e.To)); err != nil {
		return fmt.Errorf("%w: %s: to: %v", ErrBadEvent, e.Service, err)
	}
	if err := e.Phase.Validate(); err != nil {
		return fmt.Errorf("%w: %s: %v", ErrBadEvent, e.Service, err)
	}
	if err := ValidateCause(e.Cause); err != nil {
		return fmt.Errorf("%w: %s: %v", ErrBadEvent, e.Service, err)
	}
	if (e.Phase == SwitchRollingBack || e.Phase == SwitchRolledBack) && e.Cause == "" {
		return fmt.Errorf("%w: %s: a switch going back needs its cause", ErrBadEvent, e.Service)
	}
	return nil
}

func (r *Release) observed(e MemberObserved) ([]Effect, error) {
	i := r.index(e.Service)
	if i < 0 {
		return nil, fmt.Errorf("%w: %q", ErrUnknownMember, e.Service)
	}
	if err := e.validate(); err != nil {
		return nil, err
	}
	m := &r.Members[i]
	if r.Phase.Ended() || m.Phase.Settled() {
		return nil, nil
	}
	switch r.classify(*m, e) {
	case obsForward:
		return r.forward(i, e), nil
	case obsBack:
		return r.back(i, e), nil
	case obsBase:
		if m.Phase == MemberWaiting || m.Phase == MemberStarting || m.Phase == MemberAborting && m.SwitchID == "" {
			return nil, nil // nothing happened yet, or the start is still to come
		}
	}
	// Switched outside the release, or the member's switch is missing
	// from its state: the release no longer knows what it serves.
	why := "its state shows no switch"
	if e.SwitchID != "" {
		why = fmt.Sprintf("its latest switch is %s (to %s, %s)", e.SwitchID, e.To, e.Phase)
	}
	why = "switched outside the release: " + why
	r.settleMember(m, MemberDetached, CauseSwitchedOutside, why, e.Now)
	return r.fail(m.Service, CauseSwitchedOutside, why, e.Now), nil
}

// forward applies an observation of the member's own switch.
func (r *Release) forward(i int, e MemberObserved) []Effect {
	m := &r.Members[i]
	if m.StartedAt.IsZero() {
		m.StartedAt = e.Now // started without a start request being stored
	}
	switch e.Phase {
	case SwitchRunning:
		switch m.Phase {
		case MemberWaiting, MemberStarting, MemberSwitching:
			m.Phase, m.SwitchID, m.Window = MemberSwitching, e.SwitchID, nil
		case MemberAborting:
			m.SwitchID = e.SwitchID // the switch being aborted, now known
		}
		return nil
	case SwitchPromoted:
		switch m.Phase {
		case MemberWaiting, MemberStarting, MemberSwitching, MemberAborting:
			// An abort that came too late leaves it promoted: the release
			// rolls it back in its turn.
			m.Phase, m.SwitchID, m.Window, m.EndedAt = MemberPromoted, e.SwitchID, nil, e.Now
			if m.Reason == reasonAborting {
				m.Reason = ""
			}
		}
		return nil
	}
	if m.Phase == MemberPromoted {
		return nil // a promoted switch does not go back; only the release's RollBack does
	}
	phase, cause := MemberRollingBack, e.Cause
	switch {
	case e.Phase == SwitchRolledBack && e.Confirmed:
		phase = MemberRolledBack
	case e.Phase == SwitchAborted:
		phase, cause = MemberAborting, cmp.Or(cause, model.CauseAborted)
		if e.Confirmed {
			phase = MemberAborted
		}
	}
	if m.Phase == MemberRollingBack && phase == MemberAborting || m.Phase == phase && m.SwitchID == e.SwitchID {
		return nil
	}
	asked := r.Phase == RollingBack && m.Phase == MemberAborting && m.Cause == ""
	reason := cmp.Or(e.Reason, string(cause))
	m.SwitchID, m.Window = e.SwitchID, nil
	if asked && e.Phase == SwitchAborted {
		cause, reason = "", reasonAborting // the release's own abort, not a failure of this member
	}
	r.settleMember(m, phase, cause, reason, e.Now)
	if cause == "" {
		return nil
	}
	return r.fail(m.Service, cause, reason, e.Now)
}

// back applies an observation of the release's switch back to From.
func (r *Release) back(i int, e MemberObserved) []Effect {
	m := &r.Members[i]
	if m.Phase != MemberRollingBack {
		return nil
	}
	m.RollbackID = e.SwitchID
	switch e.Phase {
	case SwitchRunning:
	case SwitchPromoted:
		if e.Confirmed {
			r.settleMember(m, MemberRolledBack, m.Cause, m.Reason, e.Now)
		}
	default: // the switch back was itself undone: no longer ours
		why := fmt.Sprintf("switched outside the release: its switch back %s was %s", e.SwitchID, e.Phase)
		r.settleMember(m, MemberDetached, CauseSwitchedOutside, why, e.Now)
	}
	return nil
}

func (r *Release) refused(e StartRefused) ([]Effect, error) {
	i := r.index(e.Service)
	if i < 0 {
		return nil, fmt.Errorf("%w: %q", ErrUnknownMember, e.Service)
	}
	m := &r.Members[i]
	if r.Phase.Ended() {
		return nil, nil
	}
	reason := cmp.Or(e.Reason, "start refused")
	switch {
	case m.Phase == MemberStarting && e.Window:
		m.Phase, m.StartedAt, m.Window = MemberWaiting, time.Time{}, &Window{Until: e.Until, Reason: reason}
		return nil, nil
	case m.Phase == MemberStarting:
		r.settleMember(m, MemberSkipped, CauseStartRefused, reason, e.Now)
		return r.fail(m.Service, CauseStartRefused, "start refused: "+reason, e.Now), nil
	case m.Phase == MemberAborting && m.SwitchID == "":
		r.settleMember(m, MemberSkipped, "", "not started: "+reason, e.Now) // the release stopped it before it began
	}
	return nil, nil
}

// settleMember records a member's outcome; final phases record when.
func (r *Release) settleMember(m *Member, p MemberPhase, cause model.Cause, reason string, now time.Time) {
	m.Phase, m.Cause, m.Reason, m.Window = p, cause, reason, nil
	if p.Settled() {
		m.EndedAt = now
	}
}

// Member reasons set by the release itself.
const (
	reasonSkipped    = "not started"
	reasonAborting   = "aborted by the release"
	reasonRolledBack = "rolled back by the release"
)

// fail starts taking the release back because member failed; a release
// already going back keeps its first failure.
func (r *Release) fail(member string, cause model.Cause, reason string, now time.Time) []Effect {
	if r.Phase == RollingBack || r.Phase.Ended() {
		return nil
	}
	r.Phase, r.Member, r.Cause, r.Reason = RollingBack, member, cause, member+": "+reason
	return r.stopAll(now)
}

// enterGate makes the release wait for its gates at stage, if it has any
// and is not forced, and asks for them to be called.
func (r *Release) enterGate(stage string) []Effect {
	if r.Force || len(r.GatesAt(stage)) == 0 {
		return nil
	}
	r.Gate, r.Reason = stage, "waiting for the release's "+stage+" gates"
	return r.callGates()
}

// callGates asks for the gates the release waits for (none if it does not).
func (r Release) callGates() []Effect {
	if r.Gate == "" || r.Phase.Ended() {
		return nil
	}
	return []Effect{CallGates{Stage: r.Gate, Gates: slices.Clone(r.GatesAt(r.Gate))}}
}

// gated applies the results of the release's gates at one stage.
func (r *Release) gated(e GatesResult) ([]Effect, error) {
	if e.Stage != model.GatePre && e.Stage != model.GatePost {
		return nil, fmt.Errorf("%w: gate stage %q is not pre or post", ErrBadEvent, e.Stage)
	}
	if r.Phase.Ended() || r.Gate != e.Stage {
		return nil, nil // late or replayed: the release no longer waits for them
	}
	var held, failed *model.GateResult
	for _, g := range r.GatesAt(e.Stage) {
		res, missing := model.GateResult{Detail: "no result reported"}, true
		if i := slices.IndexFunc(e.Results, func(x model.GateResult) bool { return x.Gate == g.Name }); i >= 0 {
			res, missing = e.Results[i], false
		}
		res.Gate, res.Stage, res.Step, res.At, res.Attempts = g.Name, e.Stage, 0, e.Now, 1
		if i := slices.IndexFunc(r.GateResults, func(x model.GateResult) bool { return x.Gate == g.Name && x.Stage == e.Stage }); i >= 0 {
			res.Attempts = r.GateResults[i].Attempts + 1
			r.GateResults[i] = res
		} else {
			r.GateResults = append(r.GateResults, res)
		}
		switch {
		case res.Passed:
		case g.OnFailure == model.GateRollback && !missing: // a missing result is asked again
			if failed == nil {
				failed = &res
			}
		default:
			if held == nil {
				held = &res
			}
		}
	}
	switch {
	case failed != nil:
		r.Gate = ""
		r.Phase, r.Member, r.Cause, r.Reason = RollingBack, "", model.CauseGateFailed, "release "+failed.String()
		return r.stopAll(e.Now), nil
	case held != nil:
		r.Reason = "held by release " + held.String()
		return nil, nil
	}
	r.Gate = ""
	if e.Stage == model.GatePost {
		r.Phase, r.EndedAt, r.Reason = Promoted, e.Now, "every member promoted; post gates passed"
	} else {
		r.Reason = "pre gates passed"
	}
	return nil, nil
}

// stopAll skips the waiting members and aborts the running switches.
func (r *Release) stopAll(now time.Time) []Effect {
	r.Gate = "" // no gate is waited for on the way back
	var effs []Effect
	for i := range r.Members {
		m := &r.Members[i]
		switch m.Phase {
		case MemberWaiting:
			r.settleMember(m, MemberSkipped, "", reasonSkipped, now)
		case MemberStarting, MemberSwitching:
			m.Phase, m.Reason = MemberAborting, reasonAborting
			effs = append(effs, AbortSwitch{Service: m.Service, SwitchID: m.SwitchID})
		}
	}
	return effs
}

// settle does what follows from the state after an event: windows that
// reopened by the clock, starts, the end of a promoted release, and the
// next level of rollbacks.
func (r *Release) settle(now time.Time) []Effect {
	for i := range r.Members {
		if w := r.Members[i].Window; w != nil && !w.Until.IsZero() && !now.Before(w.Until) {
			r.Members[i].Window = nil
		}
	}
	var effs []Effect
	switch r.Phase {
	case Running:
		if r.Gate != model.GatePre {
			effs = r.schedule(now)
		}
		fallthrough
	case Paused:
		if r.Gate == "" && !slices.ContainsFunc(r.Members, func(m Member) bool { return m.Phase != MemberPromoted }) {
			if g := r.enterGate(model.GatePost); g != nil {
				effs = append(effs, g...)
				break
			}
			r.Phase, r.EndedAt, r.Reason = Promoted, now, "every member promoted"
		}
	case RollingBack:
		effs = r.unwind(now)
	}
	return effs
}

// schedule starts waiting members whose providers are all promoted and
// whose window is open, by level then name, while fewer than MaxParallel
// members are starting or switching.
func (r *Release) schedule(now time.Time) []Effect {
	var effs []Effect
	inFlight := r.InFlight()
	for i := range r.Members {
		if inFlight >= r.MaxParallel {
			break
		}
		m := &r.Members[i]
		if m.Phase != MemberWaiting || m.Window != nil || !r.providersPromoted(*m) {
			continue
		}
		m.Phase, m.StartedAt, m.Reason = MemberStarting, now, ""
		effs = append(effs, StartSwitch{Service: m.Service, To: m.To, Force: r.Force})
		inFlight++
	}
	return effs
}

func (r *Release) providersPromoted(m Member) bool {
	for _, d := range m.DependsOn {
		if p, _ := r.Find(d); p.Phase != MemberPromoted {
			return false
		}
	}
	return true
}

// unwind rolls back the promoted members of the highest level that has
// any, once no member above that level still moves (consumers before
// providers, one level at a time), and ends the release when every member
// has settled.
func (r *Release) unwind(now time.Time) []Effect {
	top := -1
	for _, m := range r.Members {
		if m.Phase == MemberPromoted {
			top = max(top, m.Level)
		}
	}
	var effs []Effect
	busyAbove := slices.ContainsFunc(r.Members, func(m Member) bool { return m.Level > top && m.Phase.Moving() })
	if top >= 0 && !busyAbove {
		for i := range r.Members {
			m := &r.Members[i]
			if m.Level == top && m.Phase == MemberPromoted {
				m.Phase, m.Reason, m.EndedAt = MemberRollingBack, reasonRolledBack, time.Time{}
				effs = append(effs, RollBack{Service: m.Service, SwitchID: m.SwitchID, To: m.From})
			}
		}
	}
	if !slices.ContainsFunc(r.Members, func(m Member) bool { return !m.Phase.Settled() }) {
		r.Phase, r.EndedAt = RolledBack, now
		if r.Member == "" && r.Cause == model.CauseAborted {
			r.Phase = Aborted
		}
	}
	return effs
}

// outstanding are the effects the state owes: starts, aborts and
// rollbacks decided and stored, perhaps never carried out.
func (r Release) outstanding() []Effect {
	if r.Phase.Ended() {
		return nil
	}
	effs := r.callGates()
	for _, m := range r.Members {
		switch m.Phase {
		case MemberStarting:
			effs = append(effs, StartSwitch{Service: m.Service, To: m.To, Force: r.Force})
		case MemberAborting:
			effs = append(effs, AbortSwitch{Service: m.Service, SwitchID: m.SwitchID})
		case MemberRollingBack:
			effs = append(effs, RollBack{Service: m.Service, SwitchID: m.SwitchID, To: m.From})
		}
	}
	return effs
}

// clone is a deep copy: Decide never writes into its input.
func (r Release) clone() Release {
	c := r
	c.Members = slices.Clone(r.Members)
	c.Gates = slices.Clone(r.Gates)
	c.GateResults = slices.Clone(r.GateResults)
	for i := range c.Gates {
		c.Gates[i].Stages = slices.Clone(r.Gates[i].Stages)
	}
	for i := range c.Members {
		c.Members[i].DependsOn = slices.Clone(r.Members[i].DependsOn)
		if w := r.Members[i].Window; w != nil {
			cw := *w
			c.Members[i].Window = &cw
		}
	}
	return c
}
