package e2e

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os/exec"
	"slices"
	"strings"
	"testing"
	"time"

	apiv1 "github.com/bgctl/bg/controlplane/api/v1"
	"github.com/bgctl/bg/controlplane/config"
	"github.com/bgctl/bg/controlplane/release"
	"github.com/bgctl/bg/e2e/harness"
)

// Releases (issue 14) end to end: four services on real Consul, judged by
// a real Prometheus scraping every backend, called by grpc-go xDS
// clients, released together by `bg release start … --wait`.
//
//	web → api → auth, and search on its own.

// relServices are the released services: their providers (depends_on)
// and how many backends each colour has.
var relServices = []struct {
	name        string
	deps        []string
	blue, green int
}{
	{"auth", nil, 1, 1},
	{"api", []string{"auth"}, 2, 2},
	{"web", []string{"api"}, 1, 1},
	{"search", nil, 1, 1},
}

const relMembers = "web,api,auth,search"

// relAnalysis is a short plan: two steps, 2 s each at least, analysed
// every second; min_requests well under what one client sends a fleet in
// a second; a generous insufficient-data budget (a loaded box may starve a
// client for a moment).
const relAnalysis = `
interval: 1s
bake: 2s
steps: [50, 100]
min_requests: 50
unavailable_budget: 10s
insufficient_budget: 60s
`

// relReplica is one `bg serve`.
type relReplica struct {
	bg         *harness.BG
	admin, xds string
}

// relStack is a real Consul and Prometheus, the four services' fleets,
// one or more `bg serve` replicas and one xDS client per service.
type relStack struct {
	t        *testing.T
	consul   *harness.Consul
	bin      string
	token    string
	prom     *harness.Prometheus
	replicas []*relReplica
	backends map[string]*harness.Backend // by ID: SERVICE-COLOUR-i
	clients  map[string]*harness.Traffic // by service
}

func newRelStack(t *testing.T, replicas int) *relStack {
	t.Helper()
	return newRelStackWith(t, replicas, "")
}

// newRelStackWith is newRelStack with more top-level config (e.g. releases).
func newRelStackWith(t *testing.T, replicas int, top string) *relStack {
	t.Helper()
	return newRelStackYAML(t, replicas, top, "")
}

// newRelStackYAML also gives every service svcYAML (e.g. an auto block).
func newRelStackYAML(t *testing.T, replicas int, top, svcYAML string) *relStack {
	t.Helper()
	s := &relStack{t: t, consul: harness.StartConsul(t), bin: harness.BuildBG(t), token: "e2e-secret",
		backends: map[string]*harness.Backend{}, clients: map[string]*harness.Traffic{}}
	var targets []string
	var svcs []harness.BGService
	for _, rs := range relServices {
		for _, fleet := range []struct {
			color, version string
			n              int
		}{{"blue", "v1", rs.blue}, {"green", "v2", rs.green}} {
			for i := 1; i <= fleet.n; i++ {
				id := fmt.Sprintf("%s-%s-%d", rs.name, fleet.color, i)
				b := harness.StartBackend(t, harness.BackendOptions{Service: rs.name, Color: fleet.color, ID: id, Version: fleet.version})
				if err := b.Register(s.consul.Client()); err != nil {
					t.Fatalf("register %s: %v", id, err)
				}
				s.backends[id] = b
				targets = append(targets, b.MetricsAddr())
			}
		}
		svcs = append(svcs, harness.BGService{Name: rs.name, DependsOn: rs.deps, Analysis: relAnalysis, YAML: svcYAML})
	}
	s.prom = harness.StartPrometheus(t, targets)
	s.prom.WaitTargetsUp(30 * time.Second)
	for i := 0; i < replicas; i++ {
		r := &relReplica{admin: fmt.Sprintf("127.0.0.1:%d", harness.FreePort(t)), xds: fmt.Sprintf("127.0.0.1:%d", harness.FreePort(t))}
		cfg := harness.WriteBGConfig(t, harness.BGConfig{ConsulAddr: s.consul.HTTPAddr(), XDSAddr: r.xds, AdminAddr: r.admin, Token: s.token,
			PrometheusURL: s.prom.URL(), Services: svcs, TopYAML: "release:\n  max_parallel: 4\n" + top})
		var env []string
		if replicas > 1 {
			// bg's election defaults, as users run it (see newHAStack).
			env = []string{"BG_LEADER_LOCK_DELAY=" + config.DefaultLockDelay.String(), "BG_LEADER_CHECK_TTL=" + config.DefaultCheckTTL.String()}
		}
		r.bg = harness.StartBG(t, harness.BGOptions{Bin: s.bin, Config: cfg, AdminAddr: r.admin, Token: s.token, Env: env})
		s.replicas = append(s.replicas, r)
	}
	return s
}

// startClients connects one xDS client (2 workers) per service to
// replica r and waits until every one is served by blue only.
func (s *relStack) startClients(r int) {
	s.t.Helper()
	for _, rs := range relServices {
		c := harness.StartTraffic(s.t, harness.TrafficOptions{XDSAddr: s.replicas[r].xds, NodeID: rs.name + "-client", Service: rs.name, Workers: 2})
		c.Ready(s.t, 30*time.Second)
		s.clients[rs.name] = c
	}
	s.expectAll(map[string]string{"auth": "blue", "api": "blue", "web": "blue", "search": "blue"}, 20*time.Second)
}

// cli runs bg against replica r's admin API.
func (s *relStack) cli(r int, args ...string) (string, string, int) {
	return harness.RunCLIEnv(s.t, s.bin, []string{"BG_ADDR=" + s.replicas[r].admin, "BG_TOKEN=" + s.token}, args...)
}

func (s *relStack) mustCLI(r int, args ...string) string {
	s.t.Helper()
	out, errOut, code := s.cli(r, args...)
	if code != 0 {
		s.t.Fatalf("bg %s: exit %d\nstdout: %s\nstderr: %s", strings.Join(args, " "), code, out, errOut)
	}
	return out
}

// relRun is a `bg release start … --wait -o json` running in the background.
type relRun struct {
	cmd         *exec.Cmd
	out, errOut bytes.Buffer
	started     time.Time
}

func (s *relStack) startRelease(r int, args ...string) *relRun {
	s.t.Helper()
	run := &relRun{started: time.Now()}
	run.cmd = exec.Command(s.bin, append([]string{"release", "start"}, append(args, "--wait", "--timeout", "3m", "-o", "json")...)...)
	run.cmd.Env = append(run.cmd.Environ(), "BG_ADDR="+s.replicas[r].admin, "BG_TOKEN="+s.token)
	run.cmd.Stdout, run.cmd.Stderr = &run.out, &run.errOut
	if err := run.cmd.Start(); err != nil {
		s.t.Fatal(err)
	}
	s.t.Cleanup(func() {
		if run.cmd.ProcessState == nil {
			_ = run.cmd.Process.Kill()
			_ = run.cmd.Wait()
		}
	})
	return run
}

// wait returns the exit code, the final release and how long it took.
func (run *relRun) wait(t *testing.T) (int, apiv1.ReleaseStatus, time.Duration) {
	t.Helper()
	_ = run.cmd.Wait()
	took := time.Since(run.started)
	var st apiv1.ReleaseStatus
	if err := json.Unmarshal(run.out.Bytes(), &st); err != nil {
		t.Fatalf("release --wait -o json printed no release (%v, exit %d): stdout %q stderr %q", err, run.cmd.ProcessState.ExitCode(), run.out.String(), run.errOut.String())
	}
	return run.cmd.ProcessState.ExitCode(), st, took
}

// releaseStatus reads one release over the admin API of replica r.
func (s *relStack) releaseStatus(r int, id string) (apiv1.ReleaseStatus, error) {
	var st apiv1.ReleaseStatus
	err := s.get(r, "/v1/releases/"+id, &st)
	return st, err
}

// relSvcStatus is the part of a service's status these tests read.
type relSvcStatus struct {
	Weights    apiv1.Weights `json:"weights"`
	Generation uint64        `json:"generation"`
	SwitchID   string        `json:"switch_id"`
	Release    string        `json:"release"`
	Proxies    struct {
		Connected int `json:"connected"`
		Acked     int `json:"acked"`
	} `json:"proxies"`
	Switch *struct {
		ID          string    `json:"id"`
		Phase       string    `json:"phase"`
		Cause       string    `json:"cause"`
		ConfirmedAt time.Time `json:"confirmed_at"`
	} `json:"switch"`
}

func (s *relStack) svcStatus(r int, svc string) relSvcStatus {
	s.t.Helper()
	var st relSvcStatus
	if err := s.get(r, "/v1/services/"+svc, &st); err != nil {
		s.t.Fatalf("status %s: %v", svc, err)
	}
	return st
}

var relHTTP = &http.Client{Timeout: 3 * time.Second}

func (s *relStack) get(r int, path string, v any) error {
	req, _ := http.NewRequest(http.MethodGet, "http://"+s.replicas[r].admin+path, nil)
	req.Header.Set("Authorization", "Bearer "+s.token)
	resp, err := relHTTP.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		return err
	}
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("GET %s: HTTP %d: %s", path, resp.StatusCode, body)
	}
	return json.Unmarshal(body, v)
}

// relHistory is one service's history entry.
type relHistory struct {
	Generation uint64    `json:"generation"`
	At         time.Time `json:"at"`
	Replica    string    `json:"replica"`
	Term       uint64    `json:"term"`
	Reason     string    `json:"reason"`
	ToGreen    int       `json:"to_green_percent"`
	Phase      string    `json:"phase"`
	Detail     string    `json:"detail"`
}

func (s *relStack) history(r int, svc string) []relHistory {
	s.t.Helper()
	var h []relHistory
	if err := json.Unmarshal([]byte(s.mustCLI(r, "history", svc, "--limit", "500", "-o", "json")), &h); err != nil {
		s.t.Fatal(err)
	}
	return h
}

// tagged are the history entries that record a switch of release id
// ("switch gen-N of release ID": one per switch the release started).
func tagged(h []relHistory, id string) []relHistory {
	var out []relHistory
	for _, e := range h {
		if strings.Contains(e.Detail, " of release "+id) {
			out = append(out, e)
		}
	}
	return out
}

// switchTimes are when a switch's first history entry was written and
// when it was promoted (zero if never), from its history entries.
func switchTimes(h []relHistory, switchID string) (first, promoted time.Time) {
	for _, e := range h {
		if !strings.Contains(e.Detail, "switch "+switchID+" ") {
			continue
		}
		if first.IsZero() {
			first = e.At
		}
		if promoted.IsZero() && strings.Contains(e.Detail, "switch "+switchID+" promoted") {
			promoted = e.At
		}
	}
	return first, promoted
}

func (s *relStack) marks() map[string]harness.Mark {
	m := map[string]harness.Mark{}
	for svc, c := range s.clients {
		m[svc] = c.Mark()
	}
	return m
}

// since counts each service's client calls since marks.
func (s *relStack) since(m map[string]harness.Mark) map[string]harness.Counts {
	out := map[string]harness.Counts{}
	for svc, c := range s.clients {
		out[svc] = c.Since(m[svc])
	}
	return out
}

// expectAll waits until each service's client sees only its colour, then
// checks a further second is entirely that colour.
func (s *relStack) expectAll(colors map[string]string, timeout time.Duration) {
	s.t.Helper()
	for svc, color := range colors {
		s.clients[svc].WaitFor(s.t, timeout, func(n harness.Counts) bool {
			return n.Failed == 0 && n.OK() > 0 && colorCount(n, color) == n.OK()
		})
	}
	m := s.marks()
	time.Sleep(time.Second)
	for svc, n := range s.since(m) {
		if color := colors[svc]; n.OK() == 0 || colorCount(n, color) != n.OK() || n.Failed != 0 {
			s.t.Fatalf("%s: want 100%% %s, got %s", svc, color, n)
		}
	}
}

// member returns the release's member svc.
func member(t *testing.T, st apiv1.ReleaseStatus, svc string) release.Member {
	t.Helper()
	m, ok := st.Release.Find(svc)
	if !ok {
		t.Fatalf("release %s has no member %s: %+v", st.Release.ID, svc, st.Release.Members)
	}
	return m
}

// timeline logs each member: level, phase, when it started and ended
// relative to the release's creation.
func timeline(t *testing.T, st apiv1.ReleaseStatus) {
	t.Helper()
	r := st.Release
	at := func(x time.Time) string {
		if x.IsZero() {
			return "-"
		}
		return x.Sub(r.CreatedAt).Round(10 * time.Millisecond).String()
	}
	t.Logf("release %s %s in %v (order %v)%s", r.ID, r.Phase, r.EndedAt.Sub(r.CreatedAt).Round(10*time.Millisecond), st.Order,
		strings.TrimSuffix(" "+r.Member+" "+string(r.Cause)+" "+r.Reason, "   "))
	for _, m := range r.Members {
		t.Logf("  %-6s level %d %-11s switch %-7s back %-7s started +%s ended +%s %s", m.Service, m.Level, m.Phase, m.SwitchID, m.RollbackID, at(m.StartedAt), at(m.EndedAt), m.Reason)
	}
}

// bgLog is bg's log lines that mention releases, for a failure's report.
func (s *relStack) bgLog() string {
	var out []string
	for i, r := range s.replicas {
		for _, l := range strings.Split(r.bg.Log(), "\n") {
			if strings.Contains(l, "release") || strings.Contains(l, "level=ERROR") || strings.Contains(l, "level=WARN") {
				out = append(out, fmt.Sprintf("[%d] %s", i, l))
			}
		}
	}
	return strings.Join(out, "\n")
}

func TestReleases(t *testing.T) {
	s := newRelStack(t, 1)
	s.startClients(0)
	all := func(color string) map[string]string {
		return map[string]string{"auth": color, "api": color, "web": color, "search": color}
	}

	t.Run("happy path: providers first, search beside auth, every service green, no failed call", func(t *testing.T) {
		before := s.marks()
		code, st, took := s.startRelease(0, "checkout", "--services", relMembers).wait(t)
		timeline(t, st)
		if code != 0 || st.Release.Phase != release.Promoted {
			t.Fatalf("exit %d, release %s; log:\n%s", code, st.Release.Phase, s.bgLog())
		}
		id := st.Release.ID
		if fmt.Sprint(st.Order) != "[[auth search] [api] [web]]" {
			t.Errorf("order %v, want [[auth search] [api] [web]]", st.Order)
		}
		auth, api, web, search := member(t, st, "auth"), member(t, st, "api"), member(t, st, "web"), member(t, st, "search")
		for _, m := range []release.Member{auth, api, web, search} {
			if m.Phase != release.MemberPromoted || m.To != "green" || m.SwitchID == "" || m.StartedAt.IsZero() || m.EndedAt.IsZero() {
				t.Errorf("%s: %+v", m.Service, m)
			}
			if w := st.Weights[m.Service]; w != (apiv1.Weights{Green: 100}) {
				t.Errorf("%s: weights %+v", m.Service, w)
			}
		}
		if api.StartedAt.Before(auth.EndedAt) {
			t.Errorf("api started %v, before auth was promoted %v", api.StartedAt, auth.EndedAt)
		}
		if web.StartedAt.Before(api.EndedAt) {
			t.Errorf("web started %v, before api was promoted %v", web.StartedAt, api.EndedAt)
		}
		if !search.StartedAt.Before(auth.EndedAt) {
			t.Errorf("search started %v, not before auth was promoted %v: not in parallel", search.StartedAt, auth.EndedAt)
		}
		// Each service's own record agrees: one switch of the release,
		// progressive (stepped through 50 %), promoted.
		first, promoted := map[string]time.Time{}, map[string]time.Time{}
		for _, m := range []release.Member{auth, api, web, search} {
			sv := s.svcStatus(0, m.Service)
			if sv.Release != id || sv.SwitchID != m.SwitchID || sv.Switch == nil || sv.Switch.ID != m.SwitchID || sv.Switch.Phase != "promoted" {
				t.Errorf("%s: status release %q switch %q %+v; want %s's %s promoted", m.Service, sv.Release, sv.SwitchID, sv.Switch, id, m.SwitchID)
			}
			h := s.history(0, m.Service)
			if tg := tagged(h, id); len(tg) != 1 {
				t.Errorf("%s: %d history entries start a switch of %s, want 1: %+v", m.Service, len(tg), id, tg)
			}
			first[m.Service], promoted[m.Service] = switchTimes(h, m.SwitchID)
			steps := []int{}
			for _, e := range h {
				if strings.Contains(e.Detail, m.SwitchID+" ") && (len(steps) == 0 || steps[len(steps)-1] != e.ToGreen) {
					steps = append(steps, e.ToGreen)
				}
			}
			if !slices.Equal(steps, []int{50, 100}) {
				t.Errorf("%s: history splits %v, want [50 100]", m.Service, steps)
			}
		}
		for _, m := range []release.Member{auth, api, web, search} {
			lag := m.EndedAt.Sub(promoted[m.Service])
			t.Logf("measured: %s: switch promoted (history) → release saw it: %v", m.Service, lag.Round(time.Millisecond))
			// The release is told of the change (Controller.Subscribe), not
			// left to find it on its 1 s tick (up to ~1 s per level).
			if lag > 500*time.Millisecond {
				t.Errorf("%s: the release saw its promotion %v after it was stored, want it at once (not on the 1 s tick)", m.Service, lag)
			}
		}
		if promoted["auth"].After(first["api"]) || promoted["api"].After(first["web"]) || !first["search"].Before(promoted["auth"]) {
			t.Errorf("histories disagree with the order: first entries %v, promoted %v", first, promoted)
		}
		if out := s.mustCLI(0, "release", "status", "checkout"); !strings.Contains(out, "promoted") || !strings.Contains(out, "auth, search → api → web") {
			t.Errorf("release status checkout:\n%s", out)
		}
		s.expectAll(all("green"), 10*time.Second)
		failed := 0
		for svc, n := range s.since(before) {
			t.Logf("%s calls during the release: %s", svc, n)
			failed += n.Failed
		}
		if failed != 0 {
			t.Errorf("%d failed calls during a healthy release", failed)
		}
		r := st.Release
		t.Logf("measured: release %v (bg release --wait %v); auth promoted +%v, api +%v → +%v, web +%v → +%v; search +%v → +%v",
			r.EndedAt.Sub(r.CreatedAt).Round(10*time.Millisecond), took.Round(10*time.Millisecond),
			auth.EndedAt.Sub(r.CreatedAt).Round(10*time.Millisecond),
			api.StartedAt.Sub(r.CreatedAt).Round(10*time.Millisecond), api.EndedAt.Sub(r.CreatedAt).Round(10*time.Millisecond),
			web.StartedAt.Sub(r.CreatedAt).Round(10*time.Millisecond), web.EndedAt.Sub(r.CreatedAt).Round(10*time.Millisecond),
			search.StartedAt.Sub(r.CreatedAt).Round(10*time.Millisecond), search.EndedAt.Sub(r.CreatedAt).Round(10*time.Millisecond))
	})

	back := t.Run("back to blue by a release", func(t *testing.T) {
		before := s.marks()
		code, st, took := s.startRelease(0, "back", "--services", relMembers, "--to", "blue").wait(t)
		timeline(t, st)
		if code != 0 || st.Release.Phase != release.Promoted {
			t.Fatalf("exit %d, release %s; log:\n%s", code, st.Release.Phase, s.bgLog())
		}
		s.expectAll(all("blue"), 10*time.Second)
		for svc, n := range s.since(before) {
			if n.Failed != 0 {
				t.Errorf("%s: failed calls going back: %s", svc, n)
			}
		}
		t.Logf("measured: back to blue in %v", took.Round(10*time.Millisecond))
	})
	if !back {
		t.Fatal("not every service is back on blue: the failing release cannot run")
	}

	t.Run("api failing: auth and search rolled back after api, web never starts, all on blue, ACK-confirmed", func(t *testing.T) {
		for id, b := range s.backends {
			if strings.HasPrefix(id, "api-green-") {
				b.SetFailRatio(0.2)
				defer b.SetFailRatio(0)
			}
		}
		s.prom.WaitScrapedAfter(time.Now(), 10*time.Second)
		before := s.marks()
		run := s.startRelease(0, "checkout", "--services", relMembers, "--to", "green")
		code, st, took := run.wait(t)
		timeline(t, st)
		r := st.Release
		if code != 10 || r.Phase != release.RolledBack || r.Member != "api" {
			t.Fatalf("exit %d, release %s member %q (%s); stderr %s\nlog:\n%s", code, r.Phase, r.Member, r.Reason, run.errOut.String(), s.bgLog())
		}
		if !strings.Contains(run.errOut.String(), "rolled back") || !strings.Contains(run.errOut.String(), "api") {
			t.Errorf("stderr does not name the rollback and api: %q", run.errOut.String())
		}
		auth, api, web, search := member(t, st, "auth"), member(t, st, "api"), member(t, st, "web"), member(t, st, "search")
		if api.Phase != release.MemberRolledBack || api.Cause != "analysis_failed" || api.SwitchID == "" {
			t.Errorf("api: %+v", api)
		}
		if auth.Phase != release.MemberRolledBack || auth.RollbackID == "" || auth.SwitchID == "" {
			t.Errorf("auth: %+v, want rolled back by the release's switch back", auth)
		}
		if auth.EndedAt.Before(api.EndedAt) {
			t.Errorf("auth back at %v, before api's rollback was confirmed at %v", auth.EndedAt, api.EndedAt)
		}
		if search.Phase != release.MemberRolledBack && search.Phase != release.MemberAborted {
			t.Errorf("search: %+v, want rolled back (or aborted)", search)
		}
		if web.Phase != release.MemberSkipped || web.SwitchID != "" || !web.StartedAt.IsZero() {
			t.Errorf("web: %+v, want skipped, never started", web)
		}
		// auth's EndedAt is now its rollback's: its promotion is in its
		// history.
		authHistory := s.history(0, "auth")
		_, authPromoted := switchTimes(authHistory, auth.SwitchID)
		apiFirst, _ := switchTimes(s.history(0, "api"), api.SwitchID)
		if authPromoted.IsZero() || apiFirst.IsZero() || apiFirst.Before(authPromoted) || api.StartedAt.Before(authPromoted) {
			t.Errorf("api started %v (first history entry %v), auth promoted %v: want api after auth", api.StartedAt, apiFirst, authPromoted)
		}
		// auth went back only once api's rollback was confirmed (ACKed).
		apiStatus := s.svcStatus(0, "api")
		authBack, _ := switchTimes(authHistory, auth.RollbackID)
		if apiStatus.Switch == nil || apiStatus.Switch.ConfirmedAt.IsZero() || authBack.IsZero() || authBack.Before(apiStatus.Switch.ConfirmedAt) {
			t.Errorf("auth's switch back %s written %v; api's rollback confirmed %+v: want auth back after", auth.RollbackID, authBack, apiStatus.Switch)
		} else {
			t.Logf("api's rollback confirmed %v after api started; auth's switch back %v later", apiStatus.Switch.ConfirmedAt.Sub(api.StartedAt).Round(10*time.Millisecond),
				authBack.Sub(apiStatus.Switch.ConfirmedAt).Round(time.Millisecond))
		}
		for _, m := range r.Members {
			if w := st.Weights[m.Service]; w != (apiv1.Weights{Blue: 100}) {
				t.Errorf("%s: weights %+v, want blue 100", m.Service, w)
			}
			// Confirmed: every proxy holds the service's generation, and its
			// switch's rollback (api) carries confirmed_at.
			sv := s.svcStatus(0, m.Service)
			if sv.Proxies.Connected == 0 || sv.Proxies.Acked != sv.Proxies.Connected {
				t.Errorf("%s: proxies %+v", m.Service, sv.Proxies)
			}
			h := s.history(0, m.Service)
			tg := tagged(h, r.ID)
			switch m.Service {
			case "api":
				if sv.Switch == nil || sv.Switch.ID != api.SwitchID || sv.Switch.Phase != "rolled_back" || sv.Switch.ConfirmedAt.IsZero() {
					t.Errorf("api status switch %+v: want its rollback confirmed", sv.Switch)
				}
				if len(tg) != 1 {
					t.Errorf("api: %d tagged switches, want 1: %+v", len(tg), tg)
				}
			case "auth", "search":
				if m.RollbackID != "" && (sv.SwitchID != m.RollbackID || sv.Release != r.ID) {
					t.Errorf("%s: status switch %q release %q, want the release's switch back %s", m.Service, sv.SwitchID, sv.Release, m.RollbackID)
				}
				if m.RollbackID != "" && len(tg) != 2 {
					t.Errorf("%s: %d tagged switches, want 2 (there and back): %+v", m.Service, len(tg), tg)
				}
			case "web":
				if len(tg) != 0 {
					t.Errorf("web: history shows switches of %s: %+v", r.ID, tg)
				}
			}
		}
		if out := s.mustCLI(0, "release", "history"); !strings.Contains(out, r.ID) || !strings.Contains(out, "rolled_back") {
			t.Errorf("release history:\n%s", out)
		}
		for id, b := range s.backends {
			if strings.HasPrefix(id, "api-green-") {
				b.SetFailRatio(0)
			}
		}
		s.expectAll(all("blue"), 10*time.Second)
		for svc, n := range s.since(before) {
			t.Logf("%s calls during the failing release: %s", svc, n)
			if svc != "api" && n.Failed != 0 {
				t.Errorf("%s: failed calls: %s", svc, n)
			}
		}
		var firstErr, lastGreen time.Time
		for _, call := range s.clients["api"].Calls(before["api"]) {
			if call.Err != "" && (firstErr.IsZero() || call.Start.Before(firstErr)) {
				firstErr = call.Start
			}
			if (call.Color == "green" || call.Err != "") && call.Start.After(lastGreen) {
				lastGreen = call.Start
			}
		}
		t.Logf("measured: api's first failed call → its last call on green: %v", lastGreen.Sub(firstErr).Round(10*time.Millisecond))
		t.Logf("measured: rolled back in %v (bg release --wait %v); api failed +%v, auth back +%v (%v after api)",
			r.EndedAt.Sub(r.CreatedAt).Round(10*time.Millisecond), took.Round(10*time.Millisecond),
			api.EndedAt.Sub(r.CreatedAt).Round(10*time.Millisecond), auth.EndedAt.Sub(r.CreatedAt).Round(10*time.Millisecond),
			auth.EndedAt.Sub(api.EndedAt).Round(10*time.Millisecond))
	})
}

// leading reports whether replica i says it holds the leader lock.
func (s *relStack) leading(i int) bool {
	req, _ := http.NewRequest(http.MethodGet, "http://"+s.replicas[i].admin+"/metrics", nil)
	req.Header.Set("Authorization", "Bearer "+s.token)
	resp, err := relHTTP.Do(req)
	if err != nil {
		return false
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return strings.Contains(string(b), "\nbg_leader 1")
}

// leader polls every 20 ms until exactly one replica not in skip leads.
func (s *relStack) leader(t *testing.T, timeout time.Duration, skip ...int) (int, time.Time) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for {
		var leaders []int
		for i := range s.replicas {
			if !slices.Contains(skip, i) && s.leading(i) {
				leaders = append(leaders, i)
			}
		}
		at := time.Now()
		switch {
		case len(leaders) == 1:
			return leaders[0], at
		case len(leaders) > 1:
			t.Fatalf("two leaders at once: %v", leaders)
		case at.After(deadline):
			t.Fatalf("no leader within %s", timeout)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// A leader killed (-9) while the second level (api) switches: the release
// completes under the new leader, each member switched once, api's switch
// resumed rather than started again.
func TestReleaseLeaderDies(t *testing.T) {
	s := newRelStack(t, 3)
	old, _ := s.leader(t, 30*time.Second)
	// The clients and the CLI use a replica that survives (a follower
	// forwards commands to whoever leads).
	f := (old + 1) % len(s.replicas)
	s.startClients(f)
	before := s.marks()
	run := s.startRelease(f, "checkout", "--services", relMembers)

	// Kill the leader while api is mid-plan (50 % green).
	var mid apiv1.ReleaseStatus
	deadline := time.Now().Add(60 * time.Second)
	for {
		st, err := s.releaseStatus(f, "checkout-1")
		if err == nil {
			if m, _ := st.Release.Find("api"); m.Phase == release.MemberSwitching && st.Weights["api"].Green > 0 && st.Weights["api"].Green < 100 {
				mid = st
				break
			}
			if st.Release.Phase.Ended() {
				t.Fatalf("release ended before api switched: %s", st.Release.Phase)
			}
		}
		if time.Now().After(deadline) {
			t.Fatalf("api not switching within 60s (last %v); log:\n%s", err, s.bgLog())
		}
		time.Sleep(50 * time.Millisecond)
	}
	apiSwitch := member(t, mid, "api").SwitchID
	killedAt := time.Now()
	s.replicas[old].bg.Kill()
	next, ledAt := s.leader(t, 30*time.Second, old)
	t.Logf("leader %d killed with api at %+v (switch %s, release +%v); replica %d led after %v",
		old, mid.Weights["api"], apiSwitch, killedAt.Sub(mid.Release.CreatedAt).Round(10*time.Millisecond), next, ledAt.Sub(killedAt).Round(10*time.Millisecond))

	code, st, took := run.wait(t)
	timeline(t, st)
	r := st.Release
	if code != 0 || r.Phase != release.Promoted {
		t.Fatalf("exit %d, release %s; stderr %s\nlog:\n%s", code, r.Phase, run.errOut.String(), s.bgLog())
	}
	if api := member(t, st, "api"); api.SwitchID != apiSwitch {
		t.Errorf("api's switch is %s after the takeover, %s before: started again", api.SwitchID, apiSwitch)
	}
	terms := map[string]uint64{}
	for _, m := range r.Members {
		if m.Phase != release.MemberPromoted {
			t.Errorf("%s: %+v", m.Service, m)
		}
		if w := st.Weights[m.Service]; w != (apiv1.Weights{Green: 100}) {
			t.Errorf("%s: weights %+v", m.Service, w)
		}
		h := s.history(f, m.Service)
		tg := tagged(h, r.ID)
		if len(tg) != 1 {
			t.Errorf("%s: %d history entries start a switch of %s, want 1: %+v", m.Service, len(tg), r.ID, tg)
			continue
		}
		terms[m.Service] = tg[0].Term
		steps := []int{}
		for _, e := range h {
			if strings.Contains(e.Detail, "switch "+m.SwitchID+" ") && (len(steps) == 0 || steps[len(steps)-1] != e.ToGreen) {
				steps = append(steps, e.ToGreen)
			}
		}
		if !slices.Equal(steps, []int{50, 100}) {
			t.Errorf("%s: history splits %v, want [50 100]", m.Service, steps)
		}
	}
	// auth and api were started by the old leader, web by the new one.
	if terms["web"] <= terms["api"] || terms["api"] != terms["auth"] {
		t.Errorf("terms of the members' starts %v: want auth and api under the old leader's term, web under a later one", terms)
	}
	s.expectAll(map[string]string{"auth": "green", "api": "green", "web": "green", "search": "green"}, 10*time.Second)
	failed := 0
	for svc, n := range s.since(before) {
		t.Logf("%s calls during the release: %s", svc, n)
		failed += n.Failed
	}
	if failed != 0 {
		t.Errorf("%d failed calls", failed)
	}
	api, web := member(t, st, "api"), member(t, st, "web")
	t.Logf("measured: release %v (bg release --wait %v); leader killed at +%v, new leader after %v, api promoted +%v, web +%v → +%v",
		r.EndedAt.Sub(r.CreatedAt).Round(10*time.Millisecond), took.Round(10*time.Millisecond),
		killedAt.Sub(r.CreatedAt).Round(10*time.Millisecond), ledAt.Sub(killedAt).Round(10*time.Millisecond),
		api.EndedAt.Sub(r.CreatedAt).Round(10*time.Millisecond), web.StartedAt.Sub(r.CreatedAt).Round(10*time.Millisecond),
		web.EndedAt.Sub(r.CreatedAt).Round(10*time.Millisecond))
}
