package converge

import (
	"fmt"
	"testing"
	"time"

	"github.com/bgctl/bg/controlplane/model"
)

var t0 = time.Date(2026, 12, 1, 4, 0, 0, 0, time.UTC)

func fleet(vs ...string) Fleet { return Fleet{Versions: vs} }

func desired(v string) *model.Desired {
	return &model.Desired{Version: v, Actor: "ci", At: t0.Add(-time.Hour)}
}

// base: blue serves v1 on 2 members, green runs v2 on 2 members, ready
// for long enough, window open.
func base() Input {
	return Input{
		Now: t0, Desired: desired("v2"), Serving: model.Blue,
		Fleets:     map[model.Color]Fleet{model.Blue: fleet("v1", "v1"), model.Green: fleet("v2", "v2")},
		Ready:      &Ready{Color: model.Green, Version: "v2", Since: t0.Add(-time.Minute)},
		Settle:     30 * time.Second,
		WindowOpen: true,
	}
}

func TestDecide(t *testing.T) {
	type tc struct {
		name string
		edit func(*Input)
		want Decision
	}
	failedV2 := &model.DesiredFailure{Cause: model.FailRolledBack, Reason: "error ratio 0.3 > 0.01", SwitchID: "web@7", At: t0.Add(-time.Minute)}
	cases := []tc{
		{"nothing desired", func(in *Input) { in.Desired = nil }, Decision{Kind: NoDesire}},
		{"ready, settled, window open: start", func(in *Input) {},
			Decision{Kind: Start, Version: "v2", To: model.Green}},
		{"serving already runs it", func(in *Input) { in.Fleets[model.Blue] = fleet("v2", "v2") },
			Decision{Kind: Converged, Version: "v2"}},
		{"green serves it after the switch", func(in *Input) { in.Serving = model.Green },
			Decision{Kind: Converged, Version: "v2"}},
		{"no fleet runs it", func(in *Input) { in.Fleets[model.Green] = fleet("v1") },
			Decision{Kind: NoFleetRunsVersion, Version: "v2"}},
		{"empty idle fleet", func(in *Input) { in.Fleets[model.Green] = fleet() },
			Decision{Kind: NoFleetRunsVersion, Version: "v2"}},
		{"mixed candidate fleet", func(in *Input) { in.Fleets[model.Green] = fleet("v2", "v1") },
			Decision{Kind: MixedFleet, Version: "v2", To: model.Green}},
		{"capacity: 1 of the serving fleet's 2", func(in *Input) { in.Fleets[model.Green] = fleet("v2") },
			Decision{Kind: WaitingForCapacity, Version: "v2", To: model.Green, Have: 1, Want: 2}},
		{"capacity: min_members 4 over a fleet of 2", func(in *Input) { in.MinMembers = 4; in.Fleets[model.Green] = fleet("v2", "v2", "v2") },
			Decision{Kind: WaitingForCapacity, Version: "v2", To: model.Green, Have: 3, Want: 4}},
		{"capacity: min_members 1 is below the serving fleet's size", func(in *Input) { in.MinMembers = 1; in.Fleets[model.Green] = fleet("v2") },
			Decision{Kind: Start, Version: "v2", To: model.Green}},
		{"capacity: an empty serving fleet still wants one member", func(in *Input) {
			in.Fleets[model.Blue] = fleet()
			in.Fleets[model.Green] = fleet()
		}, Decision{Kind: NoFleetRunsVersion, Version: "v2"}},
		{"settling: just became ready", func(in *Input) { in.Ready = nil },
			Decision{Kind: Settling, Version: "v2", To: model.Green, Left: 30 * time.Second}},
		{"settling: 12 s left", func(in *Input) { in.Ready.Since = t0.Add(-18 * time.Second) },
			Decision{Kind: Settling, Version: "v2", To: model.Green, Left: 12 * time.Second}},
		{"settling restarts when the ready version changed", func(in *Input) { in.Ready.Version = "v1.9" },
			Decision{Kind: Settling, Version: "v2", To: model.Green, Left: 30 * time.Second}},
		{"settling restarts when the ready colour changed", func(in *Input) { in.Ready.Color = model.Blue },
			Decision{Kind: Settling, Version: "v2", To: model.Green, Left: 30 * time.Second}},
		{"settle 0 starts at once", func(in *Input) { in.Ready, in.Settle = nil, 0 },
			Decision{Kind: Start, Version: "v2", To: model.Green}},
		{"window closed until", func(in *Input) { in.WindowOpen, in.NextOpen = false, t0.Add(2*time.Hour) },
			Decision{Kind: WindowClosed, Version: "v2", To: model.Green, Until: t0.Add(2 * time.Hour)}},
		{"window closed waits for capacity first", func(in *Input) { in.WindowOpen = false; in.Fleets[model.Green] = fleet("v2") },
			Decision{Kind: WaitingForCapacity, Version: "v2", To: model.Green, Have: 1, Want: 2}},
		{"a switch runs", func(in *Input) { in.Running = true },
			Decision{Kind: SwitchRunning, Version: "v2"}},
		{"traffic split", func(in *Input) { in.Serving = "" },
			Decision{Kind: SwitchRunning, Version: "v2"}},
		{"a release owns the service", func(in *Input) { in.InRelease = true },
			Decision{Kind: SwitchRunning, Version: "v2"}},
		{"our attempt rolled back: record the failure", func(in *Input) {
			in.Desired.Attempt = "web@7"
			in.Last = &Ended{ID: "web@7", Outcome: RolledBack, Reason: "error ratio 0.3 > 0.01", At: t0.Add(-time.Minute)}
		}, Decision{Kind: Failed, Version: "v2", Reason: "rolled back: error ratio 0.3 > 0.01", Record: failedV2}},
		{"our attempt aborted by an operator: record it", func(in *Input) {
			in.Desired.Attempt = "web@7"
			in.Last = &Ended{ID: "web@7", Outcome: Aborted, Reason: "abort", At: t0}
		}, Decision{Kind: Failed, Version: "v2", Reason: "aborted: abort",
			Record: &model.DesiredFailure{Cause: model.FailAborted, Reason: "abort", SwitchID: "web@7", At: t0}}},
		{"our attempt promoted", func(in *Input) {
			in.Desired.Attempt = "web@7"
			in.Serving = model.Green
			in.Last = &Ended{ID: "web@7", Outcome: Promoted}
		}, Decision{Kind: Converged, Version: "v2"}},
		{"someone else's switch rolled back: not ours to remember", func(in *Input) {
			in.Desired.Attempt = "web@7"
			in.Last = &Ended{ID: "web@9", Outcome: RolledBack}
		}, Decision{Kind: Start, Version: "v2", To: model.Green}},
		{"failed version is not retried", func(in *Input) {
			in.Desired.Attempt, in.Desired.Failed = "web@7", failedV2
			in.Last = &Ended{ID: "web@7", Outcome: RolledBack, Reason: "error ratio 0.3 > 0.01"}
		}, Decision{Kind: Failed, Version: "v2", Reason: "rolled back: error ratio 0.3 > 0.01"}},
		{"failed version is not retried, even much later", func(in *Input) {
			in.Desired.Failed = failedV2
			in.Now = t0.Add(48 * time.Hour)
			in.Last = nil
		}, Decision{Kind: Failed, Version: "v2", Reason: "rolled back: error ratio 0.3 > 0.01"}},
		{"retry: the failure is cleared, the old switch is history", func(in *Input) {
			in.Desired.Attempt, in.Desired.Failed = "", nil
			in.Last = &Ended{ID: "web@7", Outcome: RolledBack}
		}, Decision{Kind: Start, Version: "v2", To: model.Green}},
		{"a failed version that serves anyway (switched by hand) is converged", func(in *Input) {
			in.Desired.Failed = failedV2
			in.Serving = model.Green
		}, Decision{Kind: Converged, Version: "v2"}},
		{"desire changed mid-switch: wait for the running switch", func(in *Input) {
			in.Desired = desired("v3") // a new desire has no attempt
			in.Running = true
		}, Decision{Kind: SwitchRunning, Version: "v3"}},
		{"desire changed mid-switch: its rollback is not v3's failure", func(in *Input) {
			in.Desired = desired("v3")
			in.Last = &Ended{ID: "web@7", Outcome: RolledBack}
			in.Fleets[model.Green] = fleet("v3", "v3")
			in.Ready = nil
		}, Decision{Kind: Settling, Version: "v3", To: model.Green, Left: 30 * time.Second}},
		{"desire changed after promotion: v3 goes to the other colour", func(in *Input) {
			in.Desired = desired("v3")
			in.Serving = model.Green
			in.Fleets[model.Blue] = fleet("v3", "v3")
			in.Ready = &Ready{Color: model.Blue, Version: "v3", Since: t0.Add(-time.Hour)}
		}, Decision{Kind: Start, Version: "v3", To: model.Blue}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			in := base()
			c.edit(&in)
			got := Decide(in)
			if err := got.Kind.Validate(); err != nil {
				t.Fatal(err)
			}
			// Ready is checked by TestDecideReady.
			got.Ready = nil
			if !same(got, c.want) {
				t.Errorf("Decide = %+v (%s)\nwant     %+v", got, got, c.want)
			}
		})
	}
}

func same(a, b Decision) bool {
	if (a.Record == nil) != (b.Record == nil) || a.Record != nil && *a.Record != *b.Record {
		return false
	}
	a.Record, b.Record = nil, nil
	return a == b
}

// TestDecideReady: readiness is kept across rounds and settles in time; a
// fleet that drops below capacity starts settling anew.
func TestDecideReady(t *testing.T) {
	in := base()
	in.Ready = nil
	var kinds []Kind
	for i, step := range []struct {
		at    time.Duration
		green Fleet
	}{
		{0, fleet("v2")},                     // 1/2
		{1 * time.Second, fleet("v2", "v2")}, // ready: settling 30s
		{20 * time.Second, fleet("v2", "v2")},
		{25 * time.Second, fleet("v2")},       // lost one: capacity
		{26 * time.Second, fleet("v2", "v2")}, // settles anew
		{55 * time.Second, fleet("v2", "v2")},
		{56 * time.Second, fleet("v2", "v2")},
	} {
		in.Now = t0.Add(step.at)
		in.Fleets[model.Green] = step.green
		d := Decide(in)
		in.Ready = d.Ready
		kinds = append(kinds, d.Kind)
		if i == 2 && d.Left != 11*time.Second {
			t.Errorf("step %d: %s left, want 11s", i, d.Left)
		}
	}
	want := []Kind{WaitingForCapacity, Settling, Settling, WaitingForCapacity, Settling, Settling, Start}
	for i := range want {
		if kinds[i] != want[i] {
			t.Fatalf("kinds %v, want %v", kinds, want)
		}
	}
}

// TestDecideSeveralServices: each service decides from its own input; one
// service's state never leaks into another's.
func TestDecideSeveralServices(t *testing.T) {
	web, api, auth := base(), base(), base()
	api.Desired = desired("v7")
	api.Fleets = map[model.Color]Fleet{model.Blue: fleet("v6", "v6", "v6"), model.Green: fleet("v7", "v7")}
	api.Ready = nil
	auth.Desired = nil
	got := map[string]Kind{}
	for name, in := range map[string]Input{"web": web, "api": api, "auth": auth} {
		got[name] = Decide(in).Kind
	}
	want := map[string]Kind{"web": Start, "api": WaitingForCapacity, "auth": NoDesire}
	for k, v := range want {
		if got[k] != v {
			t.Errorf("%s: %s, want %s", k, got[k], v)
		}
	}
}

func TestDecisionString(t *testing.T) {
	for _, c := range []struct {
		d    Decision
		want string
	}{
		{Decision{Kind: WaitingForCapacity, To: model.Green, Have: 3, Want: 4}, "waiting for capacity (3/4 passing on green)"},
		{Decision{Kind: Settling, Left: 12 * time.Second}, "settling (12s left)"},
		{Decision{Kind: WindowClosed, Until: t0}, "window closed until 2026-12-01T04:00:00Z"},
		{Decision{Kind: Failed, Reason: "rolled back: error ratio"}, "failed (rolled back: error ratio)"},
	} {
		if got := c.d.String(); got != c.want {
			t.Errorf("%q, want %q", got, c.want)
		}
	}
	if err := Kind("bogus").Validate(); err == nil {
		t.Error("unknown kind accepted")
	}
}

func TestDecideGroup(t *testing.T) {
	start := Decision{Kind: Start, To: model.Green}
	for _, c := range []struct {
		name   string
		own    map[string]Decision
		start  []string
		holder string
	}{
		{"every member ready: one release of all", map[string]Decision{"api": start, "web": start}, []string{"api", "web"}, ""},
		{"a converged member is left out", map[string]Decision{"api": {Kind: Converged}, "web": start}, []string{"web"}, ""},
		{"all converged: nothing", map[string]Decision{"api": {Kind: Converged}, "web": {Kind: Converged}}, nil, ""},
		{"one settling holds the other", map[string]Decision{"api": {Kind: Settling, Left: time.Second}, "web": start}, nil, "api"},
		{"capacity holds", map[string]Decision{"api": start, "web": {Kind: WaitingForCapacity, Have: 1, Want: 2}}, nil, "web"},
		{"window holds", map[string]Decision{"api": {Kind: WindowClosed}, "web": start}, nil, "api"},
		{"a failed member holds, before a waiting one", map[string]Decision{"api": {Kind: Settling}, "web": {Kind: Failed, Reason: "rolled back"}}, nil, "web"},
		{"a running switch holds", map[string]Decision{"api": start, "web": {Kind: SwitchRunning}}, nil, "web"},
	} {
		t.Run(c.name, func(t *testing.T) {
			g := DecideGroup([]string{"api", "web"}, c.own)
			if fmt.Sprint(g.Start) != fmt.Sprint(c.start) || g.Holder != c.holder {
				t.Errorf("DecideGroup = start %v holder %q, want %v %q", g.Start, g.Holder, c.start, c.holder)
			}
			if g.Holder != "" && g.Why != c.own[g.Holder] {
				t.Errorf("why %+v", g.Why)
			}
		})
	}
}

// A pending attempt (recorded before the switch started) claims the
// switch that started after it: a leader that died before learning the
// ID leaves its successor able to remember the rollback.
func TestPendingAttempt(t *testing.T) {
	p := PendingAttempt(t0)
	for _, c := range []struct {
		e    Ended
		want bool
	}{
		{Ended{ID: "gen-7", Started: t0.Add(time.Millisecond)}, true},
		{Ended{ID: "gen-7", Started: t0}, true},
		{Ended{ID: "gen-6", Started: t0.Add(-time.Second)}, false}, // an older switch
		{Ended{ID: "gen-7"}, false},                                // start unknown
	} {
		if got := Attempted(p, c.e); got != c.want {
			t.Errorf("Attempted(%s, %+v) = %v", p, c.e, got)
		}
	}
	if Attempted("", Ended{ID: ""}) || !Attempted("gen-7", Ended{ID: "gen-7"}) || Attempted("pending@bogus", Ended{ID: "x", Started: t0}) {
		t.Error("plain attempts")
	}
	in := base()
	in.Desired.Attempt = p
	in.Last = &Ended{ID: "gen-7", Outcome: RolledBack, Reason: "error ratio", Started: t0.Add(time.Second)}
	if d := Decide(in); d.Kind != Failed || d.Record == nil || d.Record.SwitchID != "gen-7" {
		t.Fatalf("a pending attempt's rollback: %+v", d)
	}
}
