package release

import (
	"encoding/json"
	"reflect"
	"strings"
	"testing"
	"time"
)

func TestNewOrdersByLevel(t *testing.T) {
	spec := func(s string, deps ...string) Spec { return Spec{Service: s, DependsOn: deps, From: B, To: G} }
	cases := []struct {
		name   string
		specs  []Spec
		order  [][]string
		levels map[string]int
		deps   map[string][]string // providers kept in the release
	}{
		{name: "chain with an independent service and a dependency outside", specs: chainSpecs(),
			order:  [][]string{{"auth", "mail"}, {"api"}, {"web"}},
			levels: map[string]int{"auth": 0, "mail": 0, "api": 1, "web": 2},
			deps:   map[string][]string{"web": {"api", "mail"}, "api": {"auth"}}},
		{name: "diamond", specs: []Spec{spec("a", "b", "c"), spec("b", "d"), spec("c", "d"), spec("d")},
			order:  [][]string{{"d"}, {"b", "c"}, {"a"}},
			levels: map[string]int{"a": 2, "b": 1, "c": 1, "d": 0},
			deps:   map[string][]string{"a": {"b", "c"}, "b": {"d"}, "c": {"d"}}},
		{name: "a shortcut does not lower a level: the longest path counts", specs: []Spec{spec("x", "z", "y"), spec("y", "z"), spec("z")},
			order:  [][]string{{"z"}, {"y"}, {"x"}},
			levels: map[string]int{"x": 2, "y": 1, "z": 0},
			deps:   map[string][]string{"x": {"y", "z"}, "y": {"z"}}},
		{name: "independent services share level 0", specs: []Spec{spec("c"), spec("a"), spec("b")},
			order:  [][]string{{"a", "b", "c"}},
			levels: map[string]int{"a": 0, "b": 0, "c": 0}},
		{name: "only outside dependencies", specs: []Spec{spec("web", "cdn", "dns")},
			order: [][]string{{"web"}}, levels: map[string]int{"web": 0}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			r, err := New("rel-9", "group", c.specs, 3, t0)
			if err != nil {
				t.Fatal(err)
			}
			if err := r.Validate(); err != nil {
				t.Fatalf("a new release does not validate: %v", err)
			}
			if !reflect.DeepEqual(r.Order(), c.order) {
				t.Errorf("order %v, want %v", r.Order(), c.order)
			}
			for _, m := range r.Members {
				if m.Level != c.levels[m.Service] {
					t.Errorf("%s: level %d, want %d", m.Service, m.Level, c.levels[m.Service])
				}
				if !reflect.DeepEqual(m.DependsOn, c.deps[m.Service]) {
					t.Errorf("%s: depends_on %v, want %v", m.Service, m.DependsOn, c.deps[m.Service])
				}
				if m.Phase != MemberWaiting || m.SwitchID != "" || !m.StartedAt.IsZero() {
					t.Errorf("%s: not waiting: %+v", m.Service, m)
				}
			}
			if r.Phase != Pending || r.Generation != 1 || r.MaxParallel != 3 || !r.CreatedAt.Equal(t0) {
				t.Errorf("release %+v", r)
			}
		})
	}
}

func TestNewFull(t *testing.T) {
	r := chain(2)
	want := Release{ID: "rel-1", Name: "checkout", Phase: Pending, MaxParallel: 2, CreatedAt: t0.Add(-time.Minute), Generation: 1,
		Members: []Member{
			{Service: "auth", Level: 0, From: B, To: G, Phase: MemberWaiting},
			{Service: "mail", Level: 0, From: B, To: G, Base: "gen-2", Phase: MemberWaiting},
			{Service: "api", DependsOn: []string{"auth"}, Level: 1, From: G, To: B, Base: "gen-9", Phase: MemberWaiting},
			{Service: "web", DependsOn: []string{"api", "mail"}, Level: 2, From: B, To: G, Base: "gen-4", Phase: MemberWaiting},
		}}
	if d := diff(r, want); len(d) > 0 {
		t.Errorf("New:\n  %s", strings.Join(d, "\n  "))
	}
}

func TestNewRefuses(t *testing.T) {
	spec := func(s string, deps ...string) Spec { return Spec{Service: s, DependsOn: deps, From: B, To: G} }
	cases := []struct {
		name        string
		id, rname   string
		specs       []Spec
		maxParallel int
		has         []string
	}{
		{name: "a two-service cycle", specs: []Spec{spec("a", "b"), spec("b", "a")}, has: []string{"depends_on cycle: a → b → a"}},
		{name: "a cycle further down, named from where it closes", specs: []Spec{spec("a", "b"), spec("b", "c"), spec("c", "d"), spec("d", "b")},
			has: []string{"depends_on cycle: b → c → d → b"}},
		{name: "a service calling itself", specs: []Spec{spec("a", "a")}, has: []string{"depends_on cycle: a → a"}},
		{name: "a duplicate service", specs: []Spec{spec("a"), spec("b"), spec("a")}, has: []string{`members[2]: service "a" is listed twice`}},
		{name: "an empty service", specs: []Spec{spec(" ")}, has: []string{"members[0]: service: empty service name"}},
		{name: "an empty dependency", specs: []Spec{spec("a", "")}, has: []string{"members[0]: depends_on[0]: empty service name"}},
		{name: "a dependency listed twice", specs: []Spec{spec("a", "b", "b"), spec("b")}, has: []string{`members[0]: depends_on[1]: "b" is listed twice`}},
		{name: "an unknown colour", specs: []Spec{{Service: "a", From: "red", To: G}}, has: []string{`members[0]: from: invalid colour "red"`}},
		{name: "to the colour already serving", specs: []Spec{{Service: "a", From: G, To: G}}, has: []string{"members[0]: to: green is already the colour serving"}},
		{name: "no members", specs: nil, has: []string{"members: at least one service"}},
		{name: "max_parallel 0", specs: []Spec{spec("a")}, maxParallel: -1, has: []string{"max_parallel: 0 must be at least 1"}},
		{name: "no id", id: "-", specs: []Spec{spec("a")}, has: []string{"id: required"}},
		{name: "an id that is no KV key", id: "rel/1", specs: []Spec{spec("a")}, has: []string{`id: "rel/1" must not contain`}},
		{name: "no name", rname: "-", specs: []Spec{spec("a")}, has: []string{"name: required"}},
		{name: "every problem at once", id: "-", rname: "-", specs: []Spec{spec("a", "a", "a"), spec("a")}, maxParallel: -1,
			has: []string{"id: required", "name: required", "max_parallel", "depends_on[1]", "listed twice"}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			id, name, mp := "rel-1", "group", 2
			switch c.id {
			case "":
			case "-":
				id = ""
			default:
				id = c.id
			}
			if c.rname == "-" {
				name = ""
			}
			if c.maxParallel < 0 {
				mp = 0
			}
			r, err := New(id, name, c.specs, mp, t0)
			if err == nil {
				t.Fatalf("accepted: %+v", r)
			}
			for _, h := range c.has {
				if !strings.Contains(err.Error(), h) {
					t.Errorf("error %q does not say %q", err, h)
				}
			}
		})
	}
}

func TestLevels(t *testing.T) {
	got, err := Levels(map[string][]string{"web": {"api", "cdn"}, "api": {"db"}, "db": nil, "cron": {"db", "web"}})
	if err != nil {
		t.Fatal(err)
	}
	want := map[string]int{"db": 0, "api": 1, "web": 2, "cron": 3}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("levels %v, want %v", got, want)
	}
	if _, err := Levels(map[string][]string{"x": {"y"}, "y": {"z"}, "z": {"x"}, "w": nil}); err == nil || err.Error() != "depends_on cycle: x → y → z → x" {
		t.Errorf("cycle: %v", err)
	}
}

// stored states the decoder must accept, one per phase.
func storedStates() map[string]Release {
	return map[string]Release{
		"pending":  chain(4),
		"running":  live(5, pr("auth", "gen-1", 0, D), sw("mail", "gen-3", 0), st("api", D)),
		"promoted": promotedChain(),
		"rolling back": with(live(5, sw("auth", "gen-1", 0), sw("mail", "gen-3", 0)), func(r *Release) {
			failing(r, "auth", analysis, "auth: x")
			set(r, ms{svc: "auth", phase: MemberRollingBack, id: "gen-1", cause: analysis, reason: "x"}, ms{svc: "mail", phase: MemberAborting, id: "gen-3", reason: reasonAborting})
			setSkipped(r, time.Minute, "api", "web")
			mem(r, "mail").Window = nil
		}),
		"held by a window": with(live(5, sw("auth", "gen-1", 0)), func(r *Release) {
			mem(r, "mail").Window = &Window{Until: at(time.Hour), Reason: "freeze"}
			r.Force, r.ForceReason = false, ""
		}),
	}
}

func TestDecodeRoundTrip(t *testing.T) {
	for name, r := range storedStates() {
		t.Run(name, func(t *testing.T) {
			b, err := json.Marshal(r)
			if err != nil {
				t.Fatal(err)
			}
			back, err := Decode(b)
			if err != nil {
				t.Fatalf("%v\n%s", err, b)
			}
			if d := diff(back, r); len(d) > 0 {
				t.Errorf("read back differs:\n  %s", strings.Join(d, "\n  "))
			}
		})
	}
	b, _ := json.Marshal(chain(4))
	if !strings.Contains(string(b), `"members":[{"service":"auth","level":0,"from":"blue","to":"green","phase":"waiting"}`) {
		t.Errorf("stored form: %s", b)
	}
}

func TestDecodeRefuses(t *testing.T) {
	good := live(5, pr("auth", "gen-1", 0, D), sw("mail", "gen-3", 0), st("api", D))
	cases := []struct {
		name string
		f    func(*Release)
		json func(string) string
		has  string
	}{
		{name: "an unknown field", json: func(s string) string {
			return strings.Replace(s, `"phase":"running"`, `"phase":"running","colour":"red"`, 1)
		}, has: `unknown field "colour"`},
		{name: "an unknown member field", json: func(s string) string { return strings.Replace(s, `"service":"auth"`, `"service":"auth","weight":3`, 1) }, has: `unknown field "weight"`},
		{name: "trailing data", json: func(s string) string { return s + "{}" }, has: "trailing data"},
		{name: "a wrong type", json: func(s string) string { return strings.Replace(s, `"max_parallel":4`, `"max_parallel":"4"`, 1) }, has: "max_parallel"},
		{name: "an unknown phase", f: func(r *Release) { r.Phase = "exploded" }, has: `phase: unknown release phase "exploded"`},
		{name: "an unknown member phase", f: func(r *Release) { mem(r, "web").Phase = "lost" }, has: `members[3] (web): phase: unknown member phase "lost"`},
		{name: "an unknown cause", f: func(r *Release) { mem(r, "auth").Cause = "bad_luck" }, has: `cause: unknown cause "bad_luck"`},
		{name: "members out of order", f: func(r *Release) { r.Members[0], r.Members[1] = r.Members[1], r.Members[0] }, has: "members[1]: out of order"},
		{name: "a wrong level", f: func(r *Release) { mem(r, "web").Level = 1 }, has: "members[3].level: 1, but its providers put it at 2"},
		{name: "a provider that is not a member", f: func(r *Release) { mem(r, "api").DependsOn = []string{"auth", "crm"} }, has: `members[2].depends_on: "crm" is not a member`},
		{name: "a stored cycle", f: func(r *Release) { mem(r, "auth").DependsOn = []string{"web"} }, has: "depends_on cycle"},
		{name: "a duplicate member", f: func(r *Release) { r.Members[1].Service = "auth" }, has: `service "auth" is listed twice`},
		{name: "above max_parallel", f: func(r *Release) { r.MaxParallel = 1 }, has: "2 switching, above max_parallel 1"},
		{name: "started before its provider is promoted", f: func(r *Release) { set(r, sw("auth", "gen-1", 0)) }, has: "starting while its provider auth is switching"},
		{name: "switching without its switch", f: func(r *Release) { mem(r, "mail").SwitchID = "" }, has: "switch_id: required while switching"},
		{name: "starting with a switch", f: func(r *Release) { mem(r, "api").SwitchID = "gen-10" }, has: "switch_id: \"gen-10\" set while its start is not observed"},
		{name: "a rollback in a running release", f: func(r *Release) { mem(r, "mail").Phase = MemberRollingBack }, has: "phase: rolling_back in a release that is running"},
		{name: "ended without an end", f: func(r *Release) {
			r.Phase = Promoted
			set(r, pr("mail", "gen-3", 0, D), pr("api", "g", D, D), pr("web", "g", D, D))
		}, has: "ended_at: set exactly when the release has ended"},
		{name: "rolled back naming no member", f: func(r *Release) {
			r.Phase, r.Cause, r.EndedAt = RolledBack, analysis, at(D)
			set(r, ms{svc: "auth", phase: MemberRolledBack, id: "gen-1", end: D}, ms{svc: "mail", phase: MemberAborted, id: "gen-3", end: D}, ms{svc: "api", phase: MemberAborted, end: D})
			setSkipped(r, D, "web")
		}, has: "phase rolled_back: names the failing member"},
		{name: "a member named while nothing failed", f: func(r *Release) { r.Member = "auth" }, has: `member: "auth" named while nothing failed`},
		{name: "forced without a reason", f: func(r *Release) { r.Force = true }, has: "force_reason"},
		{name: "generation 0", f: func(r *Release) { r.Generation = 0 }, has: "generation: must be at least 1"},
		{name: "a window on a switching member", f: func(r *Release) { mem(r, "mail").Window = &Window{} }, has: "window: holds only a waiting member"},
		{name: "a waiting member with a start time", f: func(r *Release) { mem(r, "web").StartedAt = t0 }, has: "started_at: set exactly when its start was requested"},
		{name: "promoted without a time", f: func(r *Release) { mem(r, "auth").EndedAt = time.Time{} }, has: "ended_at: set exactly when promoted or settled"},
		{name: "a member going nowhere", f: func(r *Release) { mem(r, "web").To = B }, has: "to: blue is already the colour serving"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			r := good.clone()
			if c.f != nil {
				c.f(&r)
			}
			b, err := json.Marshal(r)
			if err != nil {
				t.Fatal(err)
			}
			s := string(b)
			if c.json != nil {
				s = c.json(s)
			}
			if _, err := Decode([]byte(s)); err == nil || !strings.Contains(err.Error(), c.has) {
				t.Errorf("error %v, want one saying %q", err, c.has)
			}
		})
	}
}
