// Package release is the release scheduler: it switches several services
// together, providers before their consumers, and takes them back together
// when one fails (issue 14). Like package rollout it is a pure state
// machine: Decide takes the release state and one event and returns the
// next state and the effects to carry out. It does no I/O, starts no
// goroutines and reads no clock: time comes in events.
//
// The release state is all that persists (next to the member services'
// own states); after a leader change the new leader decodes it, asks for
// the outstanding effects (Resync) and feeds what it observes of each
// member's switch. Effects are idempotent, so nothing is started twice and
// nothing half-switched is forgotten. docs/releases.md explains the design.
package release

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/bgctl/bg/controlplane/model"
)

// Phase says where a release stands.
type Phase string

const (
	// Pending: planned and stored, nothing started yet.
	Pending Phase = "pending"
	// Running: members start as their providers are promoted.
	Running Phase = "running"
	// Paused: no member starts; running member switches continue.
	Paused Phase = "paused"
	// Promoted: every member's switch was promoted. Final.
	Promoted Phase = "promoted"
	// RollingBack: a member failed or the release was aborted; running
	// member switches are aborted and promoted members are rolled back,
	// consumers before providers.
	RollingBack Phase = "rolling_back"
	// RolledBack: a member failed and every member is back on its
	// original colour (or never moved). Final.
	RolledBack Phase = "rolled_back"
	// Aborted: an operator aborted the release and every member is back
	// on its original colour (or never moved). Final.
	Aborted Phase = "aborted"
)

// Phases lists every release phase in lifecycle order.
var Phases = []Phase{Pending, Running, Paused, Promoted, RollingBack, RolledBack, Aborted}

// Validate rejects an unknown phase.
func (p Phase) Validate() error {
	if slices.Contains(Phases, p) {
		return nil
	}
	return fmt.Errorf("unknown release phase %q", p)
}

// Ended is true for the final phases: promoted, rolled_back, aborted.
func (p Phase) Ended() bool { return p == Promoted || p == RolledBack || p == Aborted }

// MemberPhase says where one member service stands in its release.
type MemberPhase string

const (
	// MemberWaiting: not started; waits for its providers, a free slot
	// (max_parallel) or its deploy window.
	MemberWaiting MemberPhase = "waiting"
	// MemberStarting: the release asked for its switch (stored before the
	// request); the switch's ID is not known yet.
	MemberStarting MemberPhase = "starting"
	// MemberSwitching: its switch (SwitchID) runs.
	MemberSwitching MemberPhase = "switching"
	// MemberPromoted: its switch was promoted: all its traffic is on To.
	MemberPromoted MemberPhase = "promoted"
	// MemberAborting: its switch is being aborted (by the release, or by
	// hand); waits until every proxy has ACKed the flip back.
	MemberAborting MemberPhase = "aborting"
	// MemberRollingBack: going back to From: the release rolls back its
	// promoted switch, or its own switch rolled back; waits until every
	// proxy has ACKed the flip back.
	MemberRollingBack MemberPhase = "rolling_back"
	// MemberRolledBack: back on From, confirmed, after a rollback (its own
	// switch's, or the release's). Final.
	MemberRolledBack MemberPhase = "rolled_back"
	// MemberAborted: back on From, confirmed, after an abort. Final.
	MemberAborted MemberPhase = "aborted"
	// MemberSkipped: never moved: the release ended before its turn, or
	// its start was refused. Final.
	MemberSkipped MemberPhase = "skipped"
	// MemberDetached: its service was switched outside the release, or its
	// state no longer shows the release's switch; the release no longer
	// acts on it. Final.
	MemberDetached MemberPhase = "detached"
)

// MemberPhases lists every member phase in lifecycle order.
var MemberPhases = []MemberPhase{
	MemberWaiting, MemberStarting, MemberSwitching, MemberPromoted, MemberAborting,
	MemberRollingBack, MemberRolledBack, MemberAborted, MemberSkipped, MemberDetached,
}

// Validate rejects an unknown member phase.
func (p MemberPhase) Validate() error {
	if slices.Contains(MemberPhases, p) {
		return nil
	}
	return fmt.Errorf("unknown member phase %q", p)
}

// Settled is true for the final member phases: the member is back on its
// original colour (or never moved), or detached.
func (p MemberPhase) Settled() bool {
	return p == MemberRolledBack || p == MemberAborted || p == MemberSkipped || p == MemberDetached
}

// Moving is true while a member's traffic is not all on From or all on To
// under the release's control: its switch is requested, runs, or goes back.
func (p MemberPhase) Moving() bool {
	return p == MemberStarting || p == MemberSwitching || p == MemberAborting || p == MemberRollingBack
}

// Release-specific causes, beside model's. They are model.Cause values
// so metrics and clients read one typed cause; model.Causes does not list
// them yet (wiring adds them).
const (
	// CauseStartRefused: the control plane refused to start a member's
	// switch (not for a closed window, which only holds it).
	CauseStartRefused model.Cause = "start_refused"
	// CauseSwitchedOutside: a member's service was switched outside the
	// release, or its state no longer shows the release's switch.
	CauseSwitchedOutside model.Cause = "switched_outside"
)

// ValidateCause accepts "" (none), model's causes and the release's own.
func ValidateCause(c model.Cause) error {
	if c == CauseStartRefused || c == CauseSwitchedOutside {
		return nil
	}
	return c.Validate()
}

// Spec asks for one member when a release is planned.
type Spec struct {
	Service string
	// DependsOn names the services Service calls. Those in the release are
	// its providers: it starts only once they are promoted. Others are
	// ignored for ordering.
	DependsOn []string
	// From is the colour serving all of Service's traffic now; To the
	// colour the release moves it to.
	From, To model.Color
	// Base is the ID of Service's latest switch when the release was
	// planned ("" if it never had one): an observation still showing it
	// means nothing happened to the service since.
	Base string
}

// Window holds a waiting member while its deploy window is closed.
type Window struct {
	// Until is when the window opens again; zero: unknown, until a
	// WindowOpened event.
	Until  time.Time `json:"until,omitzero"`
	Reason string    `json:"reason,omitempty"`
}

// Member is one service of a release.
type Member struct {
	Service string `json:"service"`
	// DependsOn are its providers in the release (sorted).
	DependsOn []string `json:"depends_on,omitempty"`
	// Level is 0 without providers, else one more than its highest provider's.
	Level int         `json:"level"`
	From  model.Color `json:"from"`
	To    model.Color `json:"to"`
	// Base is the service's latest switch when the release was planned.
	Base  string      `json:"base,omitempty"`
	Phase MemberPhase `json:"phase"`
	// SwitchID is the member's switch, once observed (gen-N, roll-N).
	SwitchID string `json:"switch_id,omitempty"`
	// RollbackID is the release's switch back to From, once observed.
	RollbackID string      `json:"rollback_id,omitempty"`
	Reason     string      `json:"reason,omitempty"`
	Cause      model.Cause `json:"cause,omitempty"`
	// Window is set while a closed deploy window holds the member.
	Window *Window `json:"window,omitempty"`
	// StartedAt is when its start was requested; EndedAt when it was
	// promoted or settled.
	StartedAt time.Time `json:"started_at,omitzero"`
	EndedAt   time.Time `json:"ended_at,omitzero"`
}

// Release is the persisted state of one release.
type Release struct {
	ID     string `json:"id"`
	Name   string `json:"name"`
	Phase  Phase  `json:"phase"`
	Reason string `json:"reason,omitempty"` // why it holds or ended
	// Member is the member whose failure rolls the release back ("" for
	// an operator abort, or while nothing failed); Cause says why.
	Member      string      `json:"member,omitempty"`
	Cause       model.Cause `json:"cause,omitempty"`
	MaxParallel int         `json:"max_parallel"`
	// Force: the release was started with --force; ForceReason is the
	// operator's reason, recorded once here for every member.
	Force       bool      `json:"force,omitempty"`
	ForceReason string    `json:"force_reason,omitempty"`
	CreatedAt   time.Time `json:"created_at"`
	StartedAt   time.Time `json:"started_at,omitzero"`
	EndedAt     time.Time `json:"ended_at,omitzero"`
	// Gates are the release's own gates (stages pre and post); a release
	// of a configured group has its group's, one of --services none.
	Gates []model.Gate `json:"gates,omitempty"`
	// Gate is the stage whose gates the release waits for ("" none):
	// pre before its first member starts, post after its last member is
	// promoted. CallGates is owed while it is set.
	Gate string `json:"gate,omitempty"`
	// GateResults are the latest calls of the release's gates.
	GateResults []model.GateResult `json:"gate_results,omitempty"`
	// GatesSkipped: a forced release skipped its gates (recorded once).
	GatesSkipped bool `json:"gates_skipped,omitempty"`
	// Generation increases by one on every stored change.
	Generation uint64 `json:"generation"`
	// Members in start order: by level, then by name.
	Members []Member `json:"members"`
}

// New plans a release: members ordered by dependency level, all waiting.
// A dependency on a service outside the release is ignored for ordering.
// gates are the release's own (its group's): stages pre and post only.
func New(id, name string, specs []Spec, maxParallel int, now time.Time, gates ...model.Gate) (Release, error) {
	var errs []error
	if err := validateID(id); err != nil {
		errs = append(errs, fmt.Errorf("id: %w", err))
	}
	if strings.TrimSpace(name) == "" {
		errs = append(errs, errors.New("name: required"))
	}
	if maxParallel < 1 {
		errs = append(errs, fmt.Errorf("max_parallel: %d must be at least 1", maxParallel))
	}
	if len(specs) == 0 {
		errs = append(errs, errors.New("members: at least one service"))
	}
	errs = append(errs, validateGates(gates))
	in := map[string]bool{}
	for i, s := range specs {
		if err := s.validate(); err != nil {
			errs = append(errs, fmt.Errorf("members[%d]: %w", i, err))
		}
		if in[s.Service] {
			errs = append(errs, fmt.Errorf("members[%d]: service %q is listed twice", i, s.Service))
		}
		in[s.Service] = true
	}
	if err := errors.Join(errs...); err != nil {
		return Release{}, err
	}
	deps := make(map[string][]string, len(specs))
	for _, s := range specs {
		var providers []string
		for _, d := range s.DependsOn {
			if in[d] {
				providers = append(providers, d)
			}
		}
		slices.Sort(providers)
		deps[s.Service] = providers
	}
	levels, err := Levels(deps)
	if err != nil {
		return Release{}, err
	}
	r := Release{ID: id, Name: name, Phase: Pending, MaxParallel: maxParallel, CreatedAt: now, Generation: 1, Gates: slices.Clone(gates)}
	for _, s := range specs {
		r.Members = append(r.Members, Member{
			Service: s.Service, DependsOn: deps[s.Service], Level: levels[s.Service],
			From: s.From, To: s.To, Base: s.Base, Phase: MemberWaiting,
		})
	}
	slices.SortFunc(r.Members, func(a, b Member) int {
		if a.Level != b.Level {
			return a.Level - b.Level
		}
		return strings.Compare(a.Service, b.Service)
	})
	return r, nil
}

func (s Spec) validate() error {
	var errs []error
	if err := validateName(s.Service); err != nil {
		errs = append(errs, fmt.Errorf("service: %w", err))
	}
	seen := map[string]bool{}
	for j, d := range s.DependsOn {
		switch {
		case validateName(d) != nil:
			errs = append(errs, fmt.Errorf("depends_on[%d]: %w", j, validateName(d)))
		case seen[d]:
			errs = append(errs, fmt.Errorf("depends_on[%d]: %q is listed twice", j, d))
		}
		seen[d] = true
	}
	errs = append(errs, validateColours(s.From, s.To))
	return errors.Join(errs...)
}

// validateGates checks a release's gates with the service gate schema;
// step is refused: a release has no steps.
func validateGates(gates []model.Gate) error {
	var errs []error
	names := map[string]bool{}
	for i, g := range gates {
		if err := g.Validate(); err != nil {
			errs = append(errs, fmt.Errorf("gates[%d]: %w", i, err))
		}
		if g.At(model.GateStep) {
			errs = append(errs, fmt.Errorf("gates[%d].stages: step: a release has no steps; its gates run pre or post", i))
		}
		if names[g.Name] {
			errs = append(errs, fmt.Errorf("gates[%d].name: %q used twice", i, g.Name))
		}
		names[g.Name] = true
	}
	return errors.Join(errs...)
}

// GatesAt are the release's gates that run at stage.
func (r Release) GatesAt(stage string) []model.Gate {
	var out []model.Gate
	for _, g := range r.Gates {
		if g.At(stage) {
			out = append(out, g)
		}
	}
	return out
}

func validateID(id string) error {
	if id == "" {
		return errors.New("required")
	}
	if strings.ContainsAny(id, "/ \t\n") {
		return fmt.Errorf("%q must not contain '/' or spaces (it names a KV key)", id)
	}
	return nil
}

func validateName(s string) error {
	if strings.TrimSpace(s) == "" {
		return errors.New("empty service name")
	}
	return nil
}

func validateColours(from, to model.Color) error {
	if _, err := model.ParseColor(string(from)); err != nil {
		return fmt.Errorf("from: %w", err)
	}
	if _, err := model.ParseColor(string(to)); err != nil {
		return fmt.Errorf("to: %w", err)
	}
	if from == to {
		return fmt.Errorf("to: %s is already the colour serving (from)", to)
	}
	return nil
}

// Levels computes each service's dependency level: 0 without providers,
// else one more than its highest provider's. deps maps a service to the
// services it calls; names that are not keys are outside the graph and
// ignored. A cycle is an error naming it ("a → b → a": a calls b, b
// calls a).
func Levels(deps map[string][]string) (map[string]int, error) {
	names := make([]string, 0, len(deps))
	for n := range deps {
		names = append(names, n)
	}
	slices.Sort(names)
	const (
		unseen = iota
		onPath
		done
	)
	state := make(map[string]int, len(deps))
	level := make(map[string]int, len(deps))
	var path []string
	var visit func(n string) error
	visit = func(n string) error {
		switch state[n] {
		case done:
			return nil
		case onPath:
			i := slices.Index(path, n)
			cycle := append(slices.Clone(path[i:]), n)
			return fmt.Errorf("depends_on cycle: %s", strings.Join(cycle, " → "))
		}
		state[n] = onPath
		path = append(path, n)
		providers := slices.Clone(deps[n])
		slices.Sort(providers)
		l := 0
		for _, p := range providers {
			if _, ok := deps[p]; !ok {
				continue // outside the graph
			}
			if err := visit(p); err != nil {
				return err
			}
			l = max(l, level[p]+1)
		}
		path = path[:len(path)-1]
		state[n], level[n] = done, l
		return nil
	}
	for _, n := range names {
		if err := visit(n); err != nil {
			return nil, err
		}
	}
	return level, nil
}

// Order lists the members' services level by level: the start order.
func (r Release) Order() [][]string {
	var out [][]string
	for _, m := range r.Members {
		for len(out) <= m.Level {
			out = append(out, nil)
		}
		out[m.Level] = append(out[m.Level], m.Service)
	}
	return out
}

// Find returns the member for service.
func (r Release) Find(service string) (Member, bool) {
	if i := r.index(service); i >= 0 {
		return r.Members[i], true
	}
	return Member{}, false
}

func (r Release) index(service string) int {
	return slices.IndexFunc(r.Members, func(m Member) bool { return m.Service == service })
}

// InFlight counts the members whose switch is requested or runs: what
// max_parallel bounds.
func (r Release) InFlight() int {
	n := 0
	for _, m := range r.Members {
		if m.Phase == MemberStarting || m.Phase == MemberSwitching {
			n++
		}
	}
	return n
}

// Decode reads a stored release strictly (unknown fields are errors) and
// validates it.
func Decode(b []byte) (Release, error) {
	var r Release
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&r); err != nil {
		return Release{}, fmt.Errorf("release: %w", err)
	}
	if dec.More() {
		return Release{}, errors.New("release: trailing data after the JSON object")
	}
	if err := r.Validate(); err != nil {
		return Release{}, fmt.Errorf("release %s: %w", r.ID, err)
	}
	return r, nil
}

// Validate rejects a release state Decide cannot continue from. Every
// problem is reported, one per field.
func (r Release) Validate() error {
	var errs []error
	add := func(format string, args ...any) { errs = append(errs, fmt.Errorf(format, args...)) }
	if err := validateID(r.ID); err != nil {
		add("id: %w", err)
	}
	if strings.TrimSpace(r.Name) == "" {
		add("name: required")
	}
	if err := r.Phase.Validate(); err != nil {
		add("phase: %w", err)
	}
	if err := ValidateCause(r.Cause); err != nil {
		add("cause: %w", err)
	}
	if r.MaxParallel < 1 {
		add("max_parallel: %d must be at least 1", r.MaxParallel)
	}
	if r.Force && strings.TrimSpace(r.ForceReason) == "" {
		add("force_reason: a forced release records why")
	}
	if r.Generation == 0 {
		add("generation: must be at least 1")
	}
	if r.CreatedAt.IsZero() {
		add("created_at: required")
	}
	switch r.Phase {
	case Pending:
		if !r.StartedAt.IsZero() {
			add("started_at: set while pending")
		}
	case Running, Paused, Promoted:
		if r.StartedAt.IsZero() {
			add("started_at: required once started (phase %s)", r.Phase)
		}
	}
	if r.Phase.Ended() == r.EndedAt.IsZero() {
		add("ended_at: set exactly when the release has ended (phase %s)", r.Phase)
	}
	failing := r.Phase == RollingBack || r.Phase == RolledBack || r.Phase == Aborted
	if failing != (r.Cause != "") {
		add("cause: %q does not fit phase %s", r.Cause, r.Phase)
	}
	if r.Member != "" && !failing {
		add("member: %q named while nothing failed (phase %s)", r.Member, r.Phase)
	}
	if r.Member != "" && r.index(r.Member) < 0 {
		add("member: %q is not a member", r.Member)
	}
	if r.Phase == Aborted && (r.Member != "" || r.Cause != model.CauseAborted) {
		add("phase aborted: an operator abort names no member and has cause %s", model.CauseAborted)
	}
	if r.Phase == RolledBack && r.Member == "" && r.Cause != model.CauseGateFailed {
		add("phase rolled_back: names the failing member (or a failing release gate)")
	}
	if err := validateGates(r.Gates); err != nil {
		add("%w", err)
	}
	switch r.Gate {
	case "":
	case model.GatePre:
		if r.Phase != Running && r.Phase != Paused || slices.ContainsFunc(r.Members, func(m Member) bool { return m.Phase != MemberWaiting }) {
			add("gate: pre gates pending while %s with members started", r.Phase)
		}
	case model.GatePost:
		if r.Phase != Running && r.Phase != Paused || slices.ContainsFunc(r.Members, func(m Member) bool { return m.Phase != MemberPromoted }) {
			add("gate: post gates pending while %s before every member is promoted", r.Phase)
		}
	default:
		add("gate: %q is not pre or post", r.Gate)
	}
	if r.Gate != "" && len(r.GatesAt(r.Gate)) == 0 {
		add("gate: %s pending, but the release has no %s gates", r.Gate, r.Gate)
	}
	if len(r.Members) == 0 {
		add("members: at least one service")
	}
	deps := map[string][]string{}
	for i, m := range r.Members {
		if _, dup := deps[m.Service]; dup {
			add("members[%d]: service %q is listed twice", i, m.Service)
		}
		deps[m.Service] = m.DependsOn
		if err := m.validate(r.Phase); err != nil {
			add("members[%d] (%s): %w", i, m.Service, err)
		}
	}
	if len(errs) > 0 {
		return errors.Join(errs...)
	}
	for i, m := range r.Members {
		for _, d := range m.DependsOn {
			if _, ok := deps[d]; !ok {
				add("members[%d].depends_on: %q is not a member", i, d)
			}
		}
	}
	if len(errs) > 0 {
		return errors.Join(errs...)
	}
	levels, err := Levels(deps)
	if err != nil {
		return fmt.Errorf("members: %w", err)
	}
	for i, m := range r.Members {
		if m.Level != levels[m.Service] {
			add("members[%d].level: %d, but its providers put it at %d", i, m.Level, levels[m.Service])
		}
		if i > 0 {
			p := r.Members[i-1]
			if p.Level > m.Level || p.Level == m.Level && p.Service > m.Service {
				add("members[%d]: out of order (by level, then service)", i)
			}
		}
		// Nothing is started, or still moved forward, before its providers
		// are promoted (detached providers were changed outside the release).
		if m.Phase == MemberStarting || m.Phase == MemberSwitching || m.Phase == MemberPromoted ||
			m.Phase == MemberAborting || m.Phase == MemberRollingBack {
			for _, d := range m.DependsOn {
				if p, _ := r.Find(d); p.Phase != MemberPromoted && p.Phase != MemberDetached {
					add("members[%d]: %s while its provider %s is %s", i, m.Phase, d, p.Phase)
				}
			}
		}
	}
	if (r.Phase == Running || r.Phase == Paused) && r.InFlight() > r.MaxParallel {
		add("members: %d switching, above max_parallel %d", r.InFlight(), r.MaxParallel)
	}
	return errors.Join(errs...)
}

// memberPhasesIn are the member phases each release phase allows.
var memberPhasesIn = map[Phase][]MemberPhase{
	Pending:     {MemberWaiting},
	Running:     {MemberWaiting, MemberStarting, MemberSwitching, MemberPromoted},
	Paused:      {MemberWaiting, MemberStarting, MemberSwitching, MemberPromoted},
	Promoted:    {MemberPromoted},
	RollingBack: {MemberPromoted, MemberAborting, MemberRollingBack, MemberRolledBack, MemberAborted, MemberSkipped, MemberDetached},
	RolledBack:  {MemberRolledBack, MemberAborted, MemberSkipped, MemberDetached},
	Aborted:     {MemberRolledBack, MemberAborted, MemberSkipped, MemberDetached},
}

func (m Member) validate(rp Phase) error {
	var errs []error
	add := func(format string, args ...any) { errs = append(errs, fmt.Errorf(format, args...)) }
	if err := validateName(m.Service); err != nil {
		add("service: %w", err)
	}
	if err := validateColours(m.From, m.To); err != nil {
		errs = append(errs, err)
	}
	if err := m.Phase.Validate(); err != nil {
		add("phase: %w", err)
	} else if allowed, ok := memberPhasesIn[rp]; ok && !slices.Contains(allowed, m.Phase) {
		add("phase: %s in a release that is %s", m.Phase, rp)
	}
	if err := ValidateCause(m.Cause); err != nil {
		add("cause: %w", err)
	}
	if m.Level < 0 {
		add("level: negative")
	}
	if !slices.IsSorted(m.DependsOn) || slices.Contains(m.DependsOn, m.Service) {
		add("depends_on: must be sorted and not name the member itself")
	}
	switch m.Phase {
	case MemberStarting:
		if m.SwitchID != "" {
			add("switch_id: %q set while its start is not observed yet", m.SwitchID)
		}
	case MemberSwitching, MemberPromoted:
		if m.SwitchID == "" {
			add("switch_id: required while %s", m.Phase)
		}
	}
	switch {
	case m.Phase == MemberSkipped || m.Phase == MemberDetached:
		// either: skipped or detached before or after a start request
	case (m.Phase == MemberWaiting) != m.StartedAt.IsZero():
		add("started_at: set exactly when its start was requested")
	}
	if (m.Phase.Settled() || m.Phase == MemberPromoted) == m.EndedAt.IsZero() {
		add("ended_at: set exactly when promoted or settled")
	}
	if m.Window != nil && m.Phase != MemberWaiting {
		add("window: holds only a waiting member")
	}
	return errors.Join(errs...)
}
