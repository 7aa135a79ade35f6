package release

import (
	"encoding/json"
	"errors"
	"fmt"
	"reflect"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/bgctl/bg/controlplane/model"
)

const (
	B = model.Blue
	G = model.Green
	D = 10 * time.Minute // one plan's duration in the fixtures
)

// t0 is when the fixtures' release started.
var t0 = time.Date(2026, 3, 2, 9, 0, 0, 0, time.UTC)

func at(d time.Duration) time.Time { return t0.Add(d) }

// chainSpecs: web calls api and mail, api calls auth and crm (crm is not
// in the release). Levels: auth 0, mail 0, api 1, web 2. api goes from
// green to blue, the others from blue to green.
func chainSpecs() []Spec {
	return []Spec{
		{Service: "web", DependsOn: []string{"api", "mail"}, From: B, To: G, Base: "gen-4"},
		{Service: "api", DependsOn: []string{"auth", "crm"}, From: G, To: B, Base: "gen-9"},
		{Service: "auth", From: B, To: G},
		{Service: "mail", From: B, To: G, Base: "gen-2"},
	}
}

// chain is the pending release of chainSpecs.
func chain(maxParallel int) Release {
	r, err := New("rel-1", "checkout", chainSpecs(), maxParallel, t0.Add(-time.Minute))
	if err != nil {
		panic(err)
	}
	return r
}

// ms sets one member's phase, switch and times in a fixture.
type ms struct {
	svc        string
	phase      MemberPhase
	id         string
	start, end time.Duration
	cause      model.Cause
	reason     string
}

func st(svc string, start time.Duration) ms { return ms{svc: svc, phase: MemberStarting, start: start} }
func sw(svc, id string, start time.Duration) ms {
	return ms{svc: svc, phase: MemberSwitching, id: id, start: start}
}
func pr(svc, id string, start, end time.Duration) ms {
	return ms{svc: svc, phase: MemberPromoted, id: id, start: start, end: end}
}

func (s ms) apply(r *Release) {
	m := mem(r, s.svc)
	m.Phase, m.SwitchID, m.Cause, m.Reason = s.phase, s.id, s.cause, s.reason
	m.StartedAt, m.EndedAt = time.Time{}, time.Time{}
	if s.phase != MemberWaiting {
		m.StartedAt = at(s.start)
	}
	if s.phase == MemberPromoted || s.phase.Settled() {
		m.EndedAt = at(s.end)
	}
}

// live is the chain release running since t0 at generation gen.
func live(gen uint64, states ...ms) Release {
	r := chain(4)
	r.Phase, r.StartedAt, r.Generation = Running, t0, gen
	for _, s := range states {
		s.apply(&r)
	}
	return r
}

// with is a deep copy of r changed by f.
func with(r Release, f func(*Release)) Release {
	c := r.clone()
	f(&c)
	return c
}

func mem(r *Release, svc string) *Member {
	i := r.index(svc)
	if i < 0 {
		panic("no member " + svc)
	}
	return &r.Members[i]
}

// set applies member states to r.
func set(r *Release, states ...ms) {
	for _, s := range states {
		s.apply(r)
	}
}

// failing marks r rolling back because member failed.
func failing(r *Release, member string, cause model.Cause, reason string) {
	r.Phase, r.Member, r.Cause, r.Reason = RollingBack, member, cause, reason
}

// obs is what a member's state shows of a switch of release rel-1.
func obs(d time.Duration, svc, id string, to model.Color, p SwitchPhase) MemberObserved {
	return MemberObserved{Now: at(d), Service: svc, SwitchID: id, Release: "rel-1", To: to, Phase: p}
}

func back(o MemberObserved, cause model.Cause, reason string, confirmed bool) MemberObserved {
	o.Cause, o.Reason, o.Confirmed = cause, reason, confirmed
	return o
}

type tc struct {
	name string
	in   Release
	ev   Event
	want func(*Release) // applied to a deep copy of in; nil: unchanged
	effs []Effect       // without the leading Persist, which want implies
	err  error          // errors.Is target
	has  string         // substring of the error
}

func run(t *testing.T, cases []tc) {
	t.Helper()
	seen := map[string]bool{}
	for _, c := range cases {
		if seen[c.name] {
			t.Fatalf("duplicate case %q", c.name)
		}
		seen[c.name] = true
		t.Run(c.name, func(t *testing.T) {
			if err := c.in.Validate(); err != nil {
				t.Fatalf("fixture does not validate: %v", err)
			}
			snap := c.in.clone()
			out, effs, err := Decide(c.in, c.ev)
			if !reflect.DeepEqual(c.in, snap) {
				t.Fatalf("input modified:\n  %s", strings.Join(diff(c.in, snap), "\n  "))
			}
			if c.err != nil || c.has != "" {
				if err == nil {
					t.Fatalf("no error; got %+v", effs)
				}
				if c.err != nil && !errors.Is(err, c.err) {
					t.Errorf("error %v, want %v", err, c.err)
				}
				if !strings.Contains(err.Error(), c.has) {
					t.Errorf("error %q does not mention %q", err, c.has)
				}
				if effs != nil || !reflect.DeepEqual(out, snap) {
					t.Errorf("an error must return the input and no effects: %v", effs)
				}
				return
			}
			if err != nil {
				t.Fatalf("error: %v", err)
			}
			want, wantEffs := snap.clone(), c.effs
			if c.want != nil {
				c.want(&want)
				want.Generation++
				wantEffs = append([]Effect{Persist{}}, c.effs...)
			}
			if !reflect.DeepEqual(effs, wantEffs) {
				t.Errorf("effects\n  %s\nwant\n  %s", show(effs), show(wantEffs))
			}
			if d := diff(out, want); len(d) > 0 {
				t.Errorf("result differs:\n  %s", strings.Join(d, "\n  "))
			}
			checkStep(t, c.in, out, effs, c.ev)
		})
	}
}

func show(effs []Effect) string {
	if effs == nil {
		return "nil"
	}
	s := make([]string, len(effs))
	for i, e := range effs {
		s[i] = fmt.Sprintf("%T%+v", e, e)
	}
	return strings.Join(s, "\n  ")
}

// diff lists the fields in which got and want differ.
func diff(got, want Release) []string {
	var out []string
	cmp := func(prefix string, g, w reflect.Value) {
		for i := 0; i < g.NumField(); i++ {
			name := g.Type().Field(i).Name
			if prefix == "" && name == "Members" {
				continue
			}
			if !reflect.DeepEqual(g.Field(i).Interface(), w.Field(i).Interface()) {
				out = append(out, fmt.Sprintf("%s%s: got %+v, want %+v", prefix, name, g.Field(i).Interface(), w.Field(i).Interface()))
			}
		}
	}
	cmp("", reflect.ValueOf(got), reflect.ValueOf(want))
	if len(got.Members) != len(want.Members) {
		return append(out, fmt.Sprintf("Members: %d, want %d", len(got.Members), len(want.Members)))
	}
	for i := range got.Members {
		cmp(got.Members[i].Service+".", reflect.ValueOf(got.Members[i]), reflect.ValueOf(want.Members[i]))
	}
	return out
}

// checkStep checks what must hold after every transition.
func checkStep(t testing.TB, in, out Release, effs []Effect, ev Event) {
	t.Helper()
	checkTransition(t, in, out, effs, ev, true)
}

// checkTransition is checkStep; readBack: also store the result as JSON
// and read it back.
func checkTransition(t testing.TB, in, out Release, effs []Effect, ev Event, readBack bool) {
	t.Helper()
	if err := out.Validate(); err != nil {
		t.Errorf("result does not validate: %v", err)
	}
	persisted := len(effs) > 0 && effs[0] == Effect(Persist{})
	for _, e := range effs[min(1, len(effs)):] {
		if e == Effect(Persist{}) {
			t.Errorf("Persist must come first, once: %s", show(effs))
		}
	}
	if persisted {
		if out.Generation != in.Generation+1 {
			t.Errorf("generation %d, want %d", out.Generation, in.Generation+1)
		}
	}
	if persisted && readBack {
		b, err := json.Marshal(out)
		if err != nil {
			t.Fatalf("cannot store: %v", err)
		}
		back, err := Decode(b)
		if err != nil {
			t.Errorf("stored state cannot be read back: %v", err)
		} else if d := diff(back, out); len(d) > 0 {
			t.Errorf("read back differs:\n  %s", strings.Join(d, "\n  "))
		}
	}
	if !persisted && !reflect.DeepEqual(in, out) {
		t.Errorf("state changed without Persist:\n  %s", strings.Join(diff(out, in), "\n  "))
	}
	if in.Phase.Ended() && (persisted || len(effs) > 0) {
		t.Errorf("an ended release changed or acted: %s", show(effs))
	}
	_, resync := ev.(Resync)
	for _, e := range effs {
		switch e := e.(type) {
		case StartSwitch:
			m, _ := out.Find(e.Service)
			was, _ := in.Find(e.Service)
			if m.Phase != MemberStarting || e.To != m.To || e.Force != out.Force {
				t.Errorf("%+v for a member %s", e, m.Phase)
			}
			if !resync && was.Phase != MemberWaiting {
				t.Errorf("%+v for a member that was %s: started twice", e, was.Phase)
			}
			for _, d := range m.DependsOn {
				if p, _ := out.Find(d); p.Phase != MemberPromoted {
					t.Errorf("%s started while its provider %s is %s", m.Service, d, p.Phase)
				}
			}
			if out.Phase != Running && !resync {
				t.Errorf("%s started in a %s release", m.Service, out.Phase)
			}
		case CallGates:
			if out.Phase.Ended() || e.Stage != out.Gate || !reflect.DeepEqual(e.Gates, out.GatesAt(e.Stage)) {
				t.Errorf("%+v while the release is %s waiting for gates %q", e, out.Phase, out.Gate)
			}
		case AbortSwitch:
			if m, _ := out.Find(e.Service); m.Phase != MemberAborting || e.SwitchID != m.SwitchID {
				t.Errorf("%+v for a member %s (%s)", e, m.Phase, m.SwitchID)
			}
		case RollBack:
			m, _ := out.Find(e.Service)
			if m.Phase != MemberRollingBack || e.To != m.From || e.SwitchID != m.SwitchID {
				t.Errorf("%+v for a member %s", e, m.Phase)
			}
			for _, o := range out.Members {
				if o.Level > m.Level && (o.Phase.Moving() || o.Phase == MemberPromoted) {
					t.Errorf("%s (level %d) rolled back while %s (level %d) is %s", m.Service, m.Level, o.Service, o.Level, o.Phase)
				}
			}
		}
	}
	// Release gates: no member starts before the pre gates passed, and a
	// release ends promoted only once its post gates passed (unless forced).
	if out.Gate == model.GatePre && slices.ContainsFunc(out.Members, func(m Member) bool { return m.Phase != MemberWaiting }) {
		t.Errorf("a member started while the pre gates are pending")
	}
	if out.Phase == Promoted && !out.Force {
		for _, g := range out.GatesAt(model.GatePost) {
			if !slices.ContainsFunc(out.GateResults, func(r model.GateResult) bool { return r.Gate == g.Name && r.Stage == model.GatePost && r.Passed }) {
				t.Errorf("promoted without post gate %s passing", g.Name)
			}
		}
	}
	if in.Gate == model.GatePre && out.Gate == "" && out.Phase == Running && !out.Force {
		for _, g := range out.GatesAt(model.GatePre) {
			if !slices.ContainsFunc(out.GateResults, func(r model.GateResult) bool { return r.Gate == g.Name && r.Stage == model.GatePre && r.Passed }) {
				t.Errorf("members may start without pre gate %s passing", g.Name)
			}
		}
	}
	if out.InFlight() > out.MaxParallel {
		t.Errorf("%d switching, above max_parallel %d", out.InFlight(), out.MaxParallel)
	}
	for _, m := range out.Members {
		switch {
		case out.Phase == Promoted && m.Phase != MemberPromoted:
			t.Errorf("promoted release with %s %s", m.Service, m.Phase)
		case (out.Phase == RolledBack || out.Phase == Aborted) && !m.Phase.Settled():
			t.Errorf("%s release with %s %s", out.Phase, m.Service, m.Phase)
		}
	}
}
