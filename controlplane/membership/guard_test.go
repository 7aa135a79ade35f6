package membership

import (
	"reflect"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/bgctl/bg/controlplane/model"
)

var t0 = time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)

// at is t0 plus d.
func at(d time.Duration) time.Time { return t0.Add(d) }

// fleet builds a fleet of endpoints, sorted by ID as a source gives it;
// each is "id" or "id@slot" (see ep).
func fleet(ids ...string) model.Fleet {
	f := model.Fleet{}
	for _, id := range ids {
		f.Endpoints = append(f.Endpoints, ep(id))
	}
	slices.SortFunc(f.Endpoints, func(a, b model.Endpoint) int { return strings.Compare(a.ID, b.ID) })
	return f
}

// ep parses "id" or "id@slot" into an endpoint with a derived address.
func ep(s string) model.Endpoint {
	id, slot, _ := strings.Cut(s, "@")
	return model.Endpoint{ID: id, Node: "n-" + id, Address: "10.0.0." + id, Port: 8080, Weight: 1, Slot: slot}
}

func ids(f model.Fleet) []string {
	out := []string{}
	for _, e := range f.Endpoints {
		out = append(out, e.ID)
	}
	return out
}

// step is one call of Apply: a read at a time, and what must come out.
type step struct {
	at       time.Duration
	read     []string
	carrying bool

	serve   []string      // IDs served
	held    string        // "" not held, else the Reason
	since   time.Duration // of the hold
	until   time.Duration // of the hold; -1 means zero (no deadline)
	recheck time.Duration // -1 means zero
}

const none = time.Duration(-1)

type guardCase struct {
	name   string
	grace  time.Duration
	served []string // fleet served before the first step, not held
	steps  []step
}

func runGuardCases(t *testing.T, cases []guardCase) {
	t.Helper()
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			g := Guard{Grace: tc.grace}
			served, hold := fleet(tc.served...), (*Held)(nil)
			for i, s := range tc.steps {
				read := fleet(s.read...)
				serve, next, recheck := g.Apply(served, hold, read, s.carrying, at(s.at))
				if got := ids(serve); !slices.Equal(got, s.serve) && !(len(got) == 0 && len(s.serve) == 0) {
					t.Fatalf("step %d (read %v at %s): served %v, want %v", i, s.read, s.at, got, s.serve)
				}
				if !slices.IsSortedFunc(serve.Endpoints, func(a, b model.Endpoint) int { return strings.Compare(a.ID, b.ID) }) {
					t.Fatalf("step %d: served fleet not sorted by ID: %v", i, ids(serve))
				}
				checkHold(t, i, next, s, serve, read)
				if want := wantTime(s.recheck); !recheck.Equal(want) {
					t.Fatalf("step %d: recheckAt %v, want %v", i, recheck, want)
				}
				served, hold = serve, next
			}
		})
	}
}

func checkHold(t *testing.T, i int, h *Held, s step, serve, read model.Fleet) {
	t.Helper()
	if s.held == "" {
		if h != nil {
			t.Fatalf("step %d: held %+v, want no hold", i, *h)
		}
		return
	}
	if h == nil {
		t.Fatalf("step %d: not held, want held (%s)", i, s.held)
	}
	if h.Reason != s.held {
		t.Fatalf("step %d: reason %q, want %q", i, h.Reason, s.held)
	}
	if !h.Since.Equal(at(s.since)) || !h.Until.Equal(wantTime(s.until)) {
		t.Fatalf("step %d: held %v..%v, want %v..%v", i, h.Since, h.Until, at(s.since), wantTime(s.until))
	}
	if h.Served != len(serve.Endpoints) || h.Read != len(read.Endpoints) {
		t.Fatalf("step %d: counts served %d read %d, want %d and %d", i, h.Served, h.Read, len(serve.Endpoints), len(read.Endpoints))
	}
}

func wantTime(d time.Duration) time.Time {
	if d == none {
		return time.Time{}
	}
	return at(d)
}

const grace = 30 * time.Second

func TestGuardShrinks(t *testing.T) {
	runGuardCases(t, []guardCase{
		{name: "first read applies", grace: grace, served: nil, steps: []step{
			{read: []string{"1", "2"}, serve: []string{"1", "2"}, recheck: none},
		}},
		{name: "first read empty applies: nothing is known to keep", grace: grace, steps: []step{
			{read: nil, carrying: true, serve: nil, recheck: none},
		}},
		{name: "growth applies", grace: grace, served: []string{"1", "2"}, steps: []step{
			{read: []string{"1", "2", "3"}, carrying: true, serve: []string{"1", "2", "3"}, recheck: none},
		}},
		{name: "no change", grace: grace, served: []string{"1", "2"}, steps: []step{
			{read: []string{"1", "2"}, carrying: true, serve: []string{"1", "2"}, recheck: none},
		}},
		{name: "lose one of four applies", grace: grace, served: []string{"1", "2", "3", "4"}, steps: []step{
			{read: []string{"1", "2", "3"}, carrying: true, serve: []string{"1", "2", "3"}, recheck: none},
		}},
		{name: "exactly half lost applies", grace: grace, served: []string{"1", "2", "3", "4"}, steps: []step{
			{read: []string{"1", "3"}, carrying: true, serve: []string{"1", "3"}, recheck: none},
		}},
		{name: "exactly half of two lost applies", grace: grace, served: []string{"1", "2"}, steps: []step{
			{read: []string{"2"}, carrying: true, serve: []string{"2"}, recheck: none},
		}},
		{name: "more than half lost is held", grace: grace, served: []string{"1", "2", "3", "4"}, steps: []step{
			{read: []string{"1"}, carrying: true, serve: []string{"1", "2", "3", "4"}, held: ReasonShrink, until: grace, recheck: grace},
		}},
		{name: "two of three lost is held", grace: grace, served: []string{"1", "2", "3"}, steps: []step{
			{read: []string{"3"}, serve: []string{"1", "2", "3"}, held: ReasonShrink, until: grace, recheck: grace},
		}},
		{name: "one of three lost applies", grace: grace, served: []string{"1", "2", "3"}, steps: []step{
			{read: []string{"2", "3"}, serve: []string{"2", "3"}, recheck: none},
		}},
		{name: "whole replacement of equal size applies at once", grace: grace, served: []string{"1", "2", "3", "4"}, steps: []step{
			{read: []string{"5", "6", "7", "8"}, carrying: true, serve: []string{"5", "6", "7", "8"}, recheck: none},
		}},
		{name: "replacement with half the count applies at once", grace: grace, served: []string{"1", "2", "3", "4"}, steps: []step{
			{read: []string{"5", "6"}, carrying: true, serve: []string{"5", "6"}, recheck: none},
		}},
	})
}

func TestGuardEmptyReads(t *testing.T) {
	runGuardCases(t, []guardCase{
		{name: "empty read of a carrying fleet is held forever", grace: grace, served: []string{"1", "2"}, steps: []step{
			{at: 0, read: nil, carrying: true, serve: []string{"1", "2"}, held: ReasonShrink, until: grace, recheck: grace},
			{at: 10 * time.Second, read: nil, carrying: true, serve: []string{"1", "2"}, held: ReasonShrink, until: grace, recheck: grace},
			{at: grace, read: nil, carrying: true, serve: []string{"1", "2"}, held: ReasonCarrying, until: none, recheck: none},
			{at: time.Hour, read: nil, carrying: true, serve: []string{"1", "2"}, held: ReasonCarrying, until: none, recheck: none},
			{at: 25 * time.Hour, read: nil, carrying: true, serve: []string{"1", "2"}, held: ReasonCarrying, until: none, recheck: none},
		}},
		{name: "a carrying fleet held forever takes the first non-empty read, however small", grace: grace, served: []string{"1", "2", "3", "4", "5"}, steps: []step{
			{at: 0, read: nil, carrying: true, serve: []string{"1", "2", "3", "4", "5"}, held: ReasonShrink, until: grace, recheck: grace},
			{at: time.Minute, read: nil, carrying: true, serve: []string{"1", "2", "3", "4", "5"}, held: ReasonCarrying, until: none, recheck: none},
			{at: 2 * time.Minute, read: []string{"9"}, carrying: true, serve: []string{"9"}, recheck: none},
		}},
		{name: "a fleet held forever empties once it stops carrying", grace: grace, served: []string{"1", "2"}, steps: []step{
			{at: 0, read: nil, carrying: true, serve: []string{"1", "2"}, held: ReasonShrink, until: grace, recheck: grace},
			{at: time.Minute, read: nil, carrying: true, serve: []string{"1", "2"}, held: ReasonCarrying, until: none, recheck: none},
			{at: time.Minute + time.Second, read: nil, carrying: false, serve: nil, recheck: none},
		}},
		{name: "empty read of an idle fleet applies after the grace", grace: grace, served: []string{"1", "2", "3"}, steps: []step{
			{at: 0, read: nil, serve: []string{"1", "2", "3"}, held: ReasonShrink, until: grace, recheck: grace},
			{at: grace - time.Nanosecond, read: nil, serve: []string{"1", "2", "3"}, held: ReasonShrink, until: grace, recheck: grace},
			{at: grace, read: nil, serve: nil, recheck: none},
			{at: grace + time.Second, read: nil, serve: nil, recheck: none},
		}},
		{name: "single member lost from an idle fleet is held, then applied", grace: grace, served: []string{"1"}, steps: []step{
			{at: 0, read: nil, serve: []string{"1"}, held: ReasonShrink, until: grace, recheck: grace},
			{at: grace, read: nil, serve: nil, recheck: none},
		}},
		{name: "a colour that starts carrying during the grace is kept past it", grace: grace, served: []string{"1", "2"}, steps: []step{
			{at: 0, read: nil, carrying: false, serve: []string{"1", "2"}, held: ReasonShrink, until: grace, recheck: grace},
			{at: 20 * time.Second, read: nil, carrying: true, serve: []string{"1", "2"}, held: ReasonShrink, until: grace, recheck: grace},
			{at: grace, read: nil, carrying: true, serve: []string{"1", "2"}, held: ReasonCarrying, until: none, recheck: none},
		}},
		{name: "a small non-empty read of a carrying fleet applies after the grace", grace: grace, served: []string{"1", "2", "3", "4", "5"}, steps: []step{
			{at: 0, read: []string{"1"}, carrying: true, serve: []string{"1", "2", "3", "4", "5"}, held: ReasonShrink, until: grace, recheck: grace},
			{at: grace, read: []string{"1"}, carrying: true, serve: []string{"1"}, recheck: none},
		}},
	})
}

func TestGuardDuringHold(t *testing.T) {
	four := []string{"1", "2", "3", "4"}
	runGuardCases(t, []guardCase{
		{name: "recovery mid-hold applies and ends the hold", grace: grace, served: four, steps: []step{
			{at: 0, read: []string{"1"}, carrying: true, serve: four, held: ReasonShrink, until: grace, recheck: grace},
			{at: 10 * time.Second, read: []string{"1", "2", "3"}, carrying: true, serve: []string{"1", "2", "3"}, recheck: none},
			// The next loss is judged against what is served now, with a new grace.
			{at: 15 * time.Second, read: nil, carrying: true, serve: []string{"1", "2", "3"}, held: ReasonShrink, since: 15 * time.Second, until: 15*time.Second + grace, recheck: 15*time.Second + grace},
		}},
		{name: "recovery to exactly half of the base ends the hold", grace: grace, served: four, steps: []step{
			{at: 0, read: nil, carrying: true, serve: four, held: ReasonShrink, until: grace, recheck: grace},
			{at: 5 * time.Second, read: []string{"2", "4"}, carrying: true, serve: []string{"2", "4"}, recheck: none},
		}},
		{name: "a second bad read does not extend the hold", grace: grace, served: four, steps: []step{
			{at: 0, read: []string{"1"}, carrying: true, serve: four, held: ReasonShrink, until: grace, recheck: grace},
			{at: 20 * time.Second, read: []string{"2"}, carrying: true, serve: four, held: ReasonShrink, until: grace, recheck: grace},
			{at: 29 * time.Second, read: nil, carrying: true, serve: four, held: ReasonShrink, until: grace, recheck: grace},
			{at: grace, read: []string{"2"}, carrying: true, serve: []string{"2"}, recheck: none},
		}},
		{name: "a bad read is compared with the base, not with what the hold serves", grace: grace, served: four, steps: []step{
			// Serves 1..4 plus 5: five, but the base is still four.
			{at: 0, read: []string{"5"}, serve: []string{"1", "2", "3", "4", "5"}, held: ReasonShrink, until: grace, recheck: grace},
			// Two of four is half of the base (though not of the five served): applies.
			{at: time.Second, read: []string{"5", "6"}, serve: []string{"5", "6"}, recheck: none},
		}},
		{name: "growth during a hold applies and ends it", grace: grace, served: four, steps: []step{
			{at: 0, read: nil, carrying: true, serve: four, held: ReasonShrink, until: grace, recheck: grace},
			{at: 5 * time.Second, read: []string{"1", "2", "3", "4", "5"}, carrying: true, serve: []string{"1", "2", "3", "4", "5"}, recheck: none},
		}},
		{name: "new endpoints in a bad read are served alongside the held ones", grace: grace, served: four, steps: []step{
			{at: 0, read: []string{"9"}, carrying: true, serve: []string{"1", "2", "3", "4", "9"}, held: ReasonShrink, until: grace, recheck: grace},
			// A later bad read drops 9 again: the merge is always base plus the latest read.
			{at: time.Second, read: []string{"1"}, carrying: true, serve: four, held: ReasonShrink, until: grace, recheck: grace},
			{at: grace, read: []string{"1"}, carrying: true, serve: []string{"1"}, recheck: none},
		}},
		{name: "a replacement in a slot takes the held host's place", grace: grace, served: []string{"1@a", "2@b", "3@c", "4@d"}, steps: []step{
			{at: 0, read: []string{"9@b"}, carrying: true, serve: []string{"1", "3", "4", "9"}, held: ReasonShrink, until: grace, recheck: grace},
		}},
		{name: "a replacement that reuses no slot is added", grace: grace, served: []string{"1@a", "2@b", "3@c", "4@d"}, steps: []step{
			{at: 0, read: []string{"9@z"}, carrying: true, serve: []string{"1", "2", "3", "4", "9"}, held: ReasonShrink, until: grace, recheck: grace},
		}},
	})
}

func TestGuardGraceZero(t *testing.T) {
	four := []string{"1", "2", "3", "4"}
	for _, g := range []time.Duration{0, -time.Second} {
		runGuardCases(t, []guardCase{
			{name: "big loss applies at once (" + g.String() + ")", grace: g, served: four, steps: []step{
				{read: []string{"1"}, carrying: true, serve: []string{"1"}, recheck: none},
			}},
			{name: "idle fleet empties at once (" + g.String() + ")", grace: g, served: four, steps: []step{
				{read: nil, carrying: false, serve: nil, recheck: none},
			}},
			{name: "carrying fleet never empties (" + g.String() + ")", grace: g, served: four, steps: []step{
				{at: 0, read: nil, carrying: true, serve: four, held: ReasonCarrying, until: none, recheck: none},
				{at: time.Minute, read: nil, carrying: true, serve: four, held: ReasonCarrying, until: none, recheck: none},
				{at: 2 * time.Minute, read: []string{"7"}, carrying: true, serve: []string{"7"}, recheck: none},
			}},
		})
	}
}

// A hold lasts Since + the current Grace, so a shorter grace ends it sooner.
func TestGuardGraceChangeDuringHold(t *testing.T) {
	served := fleet("1", "2", "3", "4")
	_, hold, _ := Guard{Grace: time.Minute}.Apply(served, nil, fleet(), false, t0)
	serve, next, _ := Guard{Grace: grace}.Apply(served, hold, fleet(), false, at(grace))
	if next != nil || len(serve.Endpoints) != 0 {
		t.Fatalf("hold not ended by the shorter grace: %v %+v", ids(serve), next)
	}
}

// While a hold is in force, reads are compared with its base; the served
// argument is not consulted.
func TestGuardIgnoresServedDuringHold(t *testing.T) {
	g := Guard{Grace: grace}
	_, hold, _ := g.Apply(fleet("1", "2", "3", "4"), nil, fleet("1"), true, t0)
	// Two of the base's four: applies, though it is "growth" from served.
	serve, next, _ := g.Apply(fleet("1"), hold, fleet("1", "2"), true, at(time.Second))
	if next != nil || !slices.Equal(ids(serve), []string{"1", "2"}) {
		t.Fatalf("got %v %+v, want 1 2 applied", ids(serve), next)
	}
	// One of four: still held with the base, though served had one.
	serve, next, _ = g.Apply(fleet("9"), hold, fleet("1"), true, at(time.Second))
	if next == nil || !slices.Equal(ids(serve), []string{"1", "2", "3", "4"}) {
		t.Fatalf("got %v %+v, want the base held", ids(serve), next)
	}
}

func TestGuardKeepsReadValuesDuringHold(t *testing.T) {
	served := fleet("1", "2", "3", "4")
	read := fleet("2")
	read.Endpoints[0].Weight, read.Endpoints[0].Version = 50, "v2"
	serve, hold, _ := Guard{Grace: grace}.Apply(served, nil, read, true, t0)
	if hold == nil {
		t.Fatal("not held")
	}
	got := serve.Endpoints[1]
	if got.ID != "2" || got.Weight != 50 || got.Version != "v2" {
		t.Fatalf("endpoint 2 served as %+v, want the read's weight and version", got)
	}
	if !reflect.DeepEqual(hold.Base, served) {
		t.Fatalf("base %v, want %v", ids(hold.Base), ids(served))
	}
}

func TestGuardDoesNotModifyArguments(t *testing.T) {
	served := fleet("1@a", "2", "3", "4")
	read := fleet("9@a")
	servedCopy, readCopy := clone(served), clone(read)
	g := Guard{Grace: grace}
	_, hold, _ := g.Apply(served, nil, read, true, t0)
	if hold == nil {
		t.Fatal("not held")
	}
	holdCopy := *hold
	holdCopy.Base = clone(hold.Base)
	g.Apply(served, hold, fleet(), true, at(time.Hour))
	if !reflect.DeepEqual(served, servedCopy) || !reflect.DeepEqual(read, readCopy) {
		t.Fatal("Apply modified its fleets")
	}
	if !reflect.DeepEqual(*hold, holdCopy) {
		t.Fatalf("Apply modified the hold: %+v, was %+v", *hold, holdCopy)
	}
}

func clone(f model.Fleet) model.Fleet {
	return model.Fleet{Endpoints: slices.Clone(f.Endpoints)}
}

func TestApplyMembership(t *testing.T) {
	g := Guard{Grace: grace}
	var st State
	st, re := g.ApplyMembership(st, model.Membership{Blue: fleet("1", "2", "3", "4"), Green: fleet("5", "6")}, nil, t0)
	if !re.IsZero() || st.Blue != nil || st.Green != nil || len(st.Served.Blue.Endpoints) != 4 || len(st.Served.Green.Endpoints) != 2 {
		t.Fatalf("first read: %+v recheck %v", st, re)
	}

	// Blue carries and reads empty at 0; green is idle and reads empty at 10s.
	carrying := func(c model.Color) bool { return c == model.Blue }
	st, re = g.ApplyMembership(st, model.Membership{Green: fleet("5", "6")}, carrying, t0)
	if st.Blue == nil || st.Green != nil || !re.Equal(at(grace)) {
		t.Fatalf("blue lost: holds %+v %+v recheck %v", st.Blue, st.Green, re)
	}
	read := model.Membership{}
	st, re = g.ApplyMembership(st, read, carrying, at(10*time.Second))
	if st.Blue == nil || st.Green == nil || !re.Equal(at(grace)) || !st.Green.Until.Equal(at(10*time.Second+grace)) {
		t.Fatalf("both lost: holds %+v %+v recheck %v", st.Blue, st.Green, re)
	}
	if !reflect.DeepEqual(st.Read, read) {
		t.Fatalf("Read = %+v, want the last read", st.Read)
	}
	if st.Hold(model.Blue) != st.Blue || st.Hold(model.Green) != st.Green {
		t.Fatal("Hold does not return the colour's hold")
	}

	// At blue's deadline: blue is kept (carrying), green's grace still runs.
	st, re = g.ApplyMembership(st, st.Read, carrying, at(grace))
	if st.Blue == nil || st.Blue.Reason != ReasonCarrying || len(st.Served.Blue.Endpoints) != 4 ||
		st.Green == nil || !re.Equal(at(10*time.Second+grace)) {
		t.Fatalf("at blue's deadline: %+v %+v recheck %v", st.Blue, st.Green, re)
	}
	// At green's deadline: green empties, blue still held with no deadline.
	st, re = g.ApplyMembership(st, st.Read, carrying, at(10*time.Second+grace))
	if st.Green != nil || len(st.Served.Green.Endpoints) != 0 || st.Blue == nil || !re.IsZero() {
		t.Fatalf("at green's deadline: %+v %+v recheck %v", st.Blue, st.Green, re)
	}
	// nil carrying: both colours count as carrying.
	st2, _ := g.ApplyMembership(State{Served: model.Membership{Green: fleet("5")}}, model.Membership{}, nil, at(time.Hour))
	if st2.Green == nil {
		t.Fatal("nil carrying did not protect green")
	}
}

// A colour emptied after its grace while idle, that then starts carrying
// traffic (a follower's stale read when the leader aborts back to it),
// serves its last known members again, held. Found by the fault
// simulation (controlplane/sim seed 1455).
func TestApplyMembershipServesKnownWhenCarryingStarts(t *testing.T) {
	g := Guard{Grace: grace}
	var st State
	st, _ = g.ApplyMembership(st, model.Membership{Blue: fleet("1", "2"), Green: fleet("5", "6")}, nil, t0)
	greenOnly := func(c model.Color) bool { return c == model.Green }
	st, _ = g.ApplyMembership(st, model.Membership{}, greenOnly, t0)
	st, _ = g.ApplyMembership(st, st.Read, greenOnly, at(grace))
	if len(st.Served.Blue.Endpoints) != 0 || st.Blue != nil {
		t.Fatalf("idle blue after its grace: served %v hold %+v, want emptied", ids(st.Served.Blue), st.Blue)
	}
	blueOnly := func(c model.Color) bool { return c == model.Blue }
	st, _ = g.ApplyMembership(st, st.Read, blueOnly, at(grace+time.Second))
	if got := ids(st.Served.Blue); len(got) != 2 || st.Blue == nil || st.Blue.Reason != ReasonCarrying {
		t.Fatalf("blue carries again: served %v hold %+v, want its last known 2 members held", got, st.Blue)
	}
	st, _ = g.ApplyMembership(st, model.Membership{Blue: fleet("3")}, blueOnly, at(grace+2*time.Second))
	if got := ids(st.Served.Blue); len(got) != 1 || got[0] != "3" {
		t.Fatalf("a read with members ends it: served %v", got)
	}
}

func TestCarries(t *testing.T) {
	blue := model.InitialTraffic()
	split := blue
	split.GreenPercent = 10
	preview := blue
	preview.Preview = model.Green
	rolling := blue
	rolling.Phase = model.PhaseSwitching
	rolling.Roll = &model.Roll{From: model.Blue, To: model.Green, Phase: model.RollRolling}
	rolledBack := blue
	rolledBack.Roll = &model.Roll{From: model.Blue, To: model.Green, Phase: model.RollRolledBack}
	switching := blue
	switching.GreenPercent = 0
	switching.Phase = model.PhaseSwitching
	switching.Rollout = &model.Rollout{From: model.Blue, To: model.Green, Phase: model.RolloutProgressing}
	for _, tc := range []struct {
		name        string
		t           model.Traffic
		blue, green bool
	}{
		{"all on blue", blue, true, false},
		{"split", split, true, true},
		{"preview of green", preview, true, true},
		{"running roll to green", rolling, true, true},
		{"rolled back roll", rolledBack, true, false},
		{"progressive switch at 0 %", switching, true, true},
	} {
		if b, g := Carries(tc.t, model.Blue), Carries(tc.t, model.Green); b != tc.blue || g != tc.green {
			t.Errorf("%s: blue %v green %v, want %v %v", tc.name, b, g, tc.blue, tc.green)
		}
	}
}
