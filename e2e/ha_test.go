package e2e

import (
	"encoding/json"
	"fmt"
	"io"
	"math/rand/v2"
	"net/http"
	"os"
	"slices"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/bgctl/bg/controlplane/config"
	"github.com/bgctl/bg/controlplane/leader"
	"github.com/bgctl/bg/e2e/harness"
)

// replica is one `bg serve` of an HA group, reaching Consul through its
// own proxy so it alone can be cut off.
type replica struct {
	bg          *harness.BG
	admin, xds  string
	consulProxy *harness.TCPProxy
}

type haStack struct {
	*stack
	replicas []*replica
}

const haAnalysis = `
interval: 1s
bake: 2s
steps: [25, 50, 75, 100]
min_requests: 50
unavailable_budget: 120s
on_unavailable: hold
`

func newHAStack(t *testing.T, n int) *haStack { return newHAStackWith(t, n, "") }

// newHAStackWith is newHAStack with extra top-level YAML in every
// replica's config (e.g. notifications).
func newHAStackWith(t *testing.T, n int, topYAML string) *haStack {
	s := &stack{t: t, consul: harness.StartConsul(t), bin: harness.BuildBG(t), backends: map[string]*harness.Backend{}, token: "e2e-secret"}
	for i := 1; i <= 2; i++ {
		s.addBackend("blue", i, "v1")
		s.addBackend("green", i, "v2")
	}
	var targets []string
	for _, b := range s.backends {
		targets = append(targets, b.MetricsAddr())
	}
	s.prom = harness.StartPrometheus(t, targets)
	s.prom.WaitTargetsUp(30 * time.Second)
	h := &haStack{stack: s}
	for i := 0; i < n; i++ {
		r := &replica{
			admin:       fmt.Sprintf("127.0.0.1:%d", harness.FreePort(t)),
			xds:         fmt.Sprintf("127.0.0.1:%d", harness.FreePort(t)),
			consulProxy: harness.StartTCPProxy(t, s.consul.HTTPAddr()),
		}
		cfg := harness.WriteBGConfig(t, harness.BGConfig{ConsulAddr: r.consulProxy.Addr(), XDSAddr: r.xds, AdminAddr: r.admin,
			Token: s.token, Service: service, PrometheusURL: s.prom.URL(), Analysis: haAnalysis, TopYAML: topYAML})
		// The harness config sets leader.lock_delay 1s; run with bg's
		// defaults, as users do (the environment overrides the file).
		r.bg = harness.StartBG(t, harness.BGOptions{Bin: s.bin, Config: cfg, AdminAddr: r.admin, Token: s.token,
			Env: []string{"BG_LEADER_LOCK_DELAY=" + config.DefaultLockDelay.String(), "BG_LEADER_CHECK_TTL=" + config.DefaultCheckTTL.String()}})
		h.replicas = append(h.replicas, r)
	}
	s.admin = h.replicas[0].admin
	// One client per replica: a killed replica only takes its own streams.
	for i, r := range h.replicas {
		c := harness.StartTraffic(t, harness.TrafficOptions{XDSAddr: r.xds, NodeID: fmt.Sprintf("client-%d", i), Service: service, Workers: 2})
		c.Ready(t, 30*time.Second)
		s.clients = append(s.clients, c)
	}
	return h
}

// haClient bounds every call to a replica's admin API: a replica stopped
// with SIGSTOP accepts connections but never answers.
var haClient = &http.Client{Timeout: 2 * time.Second}

// leading reports whether replica i says it holds the leader lock.
func (h *haStack) leading(i int) bool {
	on, err := h.leaderMetric(i)
	return err == nil && on
}

// leaderMetric reads replica i's bg_leader.
func (h *haStack) leaderMetric(i int) (bool, error) {
	req, _ := http.NewRequest(http.MethodGet, "http://"+h.replicas[i].admin+"/metrics", nil)
	req.Header.Set("Authorization", "Bearer "+h.token)
	resp, err := haClient.Do(req)
	if err != nil {
		return false, err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		return false, err
	}
	switch {
	case strings.Contains(string(b), "\nbg_leader 1"):
		return true, nil
	case strings.Contains(string(b), "\nbg_leader 0"):
		return false, nil
	}
	return false, fmt.Errorf("replica %d: no bg_leader in /metrics", i)
}

// takeover polls every 20 ms until exactly one replica not in skip leads,
// and returns it with when it was first seen leading.
func (h *haStack) takeover(t *testing.T, timeout time.Duration, skip ...int) (int, time.Time) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for {
		var leaders []int
		for i := range h.replicas {
			if !contains(skip, i) && h.leading(i) {
				leaders = append(leaders, i)
			}
		}
		at := time.Now()
		if len(leaders) == 1 {
			return leaders[0], at
		}
		if len(leaders) > 1 {
			t.Fatalf("two leaders at once: %v", leaders)
		}
		if at.After(deadline) {
			t.Fatalf("no leader within %s", timeout)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// controlJSON is the control part of a replica's status.
type controlJSON struct {
	Replica  string `json:"replica"`
	Leading  bool   `json:"leading"`
	Election struct {
		Term  uint64 `json:"term"`
		Check struct {
			ID     string `json:"id"`
			Status string `json:"status"`
		} `json:"check"`
		LastTakeoverSeconds float64 `json:"last_takeover_seconds"`
	} `json:"election"`
}

func (h *haStack) control(t *testing.T, i int) controlJSON {
	t.Helper()
	req, _ := http.NewRequest(http.MethodGet, "http://"+h.replicas[i].admin+"/v1/services/"+service, nil)
	req.Header.Set("Authorization", "Bearer "+h.token)
	resp, err := haClient.Do(req)
	if err != nil {
		t.Fatalf("replica %d status: %v", i, err)
	}
	defer resp.Body.Close()
	var st struct {
		Control controlJSON `json:"control"`
	}
	if err := json.NewDecoder(resp.Body).Decode(&st); err != nil {
		t.Fatalf("replica %d status: %v", i, err)
	}
	return st.Control
}

// spread is min / median / max of ds.
func spread(ds []time.Duration) string {
	s := slices.Clone(ds)
	slices.Sort(s)
	if len(s) == 0 {
		return "none"
	}
	r := func(d time.Duration) time.Duration { return d.Round(10 * time.Millisecond) }
	return fmt.Sprintf("min %v / median %v / max %v over %d", r(s[0]), r(median(s)), r(s[len(s)-1]), len(s))
}

func median(sorted []time.Duration) time.Duration {
	n := len(sorted)
	if n%2 == 1 {
		return sorted[n/2]
	}
	return (sorted[n/2-1] + sorted[n/2]) / 2
}

// leader waits for exactly one leader among replicas not in skip.
func (h *haStack) leader(t *testing.T, timeout time.Duration, skip ...int) int {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for {
		var leaders []int
		for i := range h.replicas {
			if !contains(skip, i) && h.leading(i) {
				leaders = append(leaders, i)
			}
		}
		if len(leaders) == 1 {
			return leaders[0]
		}
		if len(leaders) > 1 {
			t.Fatalf("two leaders at once: %v", leaders)
		}
		if time.Now().After(deadline) {
			t.Fatalf("no leader within %s", timeout)
		}
		time.Sleep(200 * time.Millisecond)
	}
}

func contains(xs []int, x int) bool {
	for _, v := range xs {
		if v == x {
			return true
		}
	}
	return false
}

// on runs the CLI against replica i.
func (h *haStack) on(i int, args ...string) (string, string, int) {
	return harness.RunCLIEnv(h.t, h.bin, []string{"BG_ADDR=" + h.replicas[i].admin, "BG_TOKEN=" + h.token}, args...)
}

type cliResult struct {
	out, errOut string
	code        int
}

// onAsync runs the CLI against replica i in the background.
func (h *haStack) onAsync(i int, args ...string) <-chan cliResult {
	done := make(chan cliResult, 1)
	go func() {
		out, errOut, code := h.on(i, args...)
		done <- cliResult{out, errOut, code}
	}()
	return done
}

// restartStopped starts again every replica a failed subtest left
// stopped, so the next subtests still run three.
func (h *haStack) restartStopped() {
	for _, r := range h.replicas {
		if !r.bg.Running() {
			r.bg.Restart()
		}
	}
}

// statusOn reads status from replica i.
func (h *haStack) statusOn(i int) (statusJSON, error) {
	s := *h.stack
	s.admin = h.replicas[i].admin
	var st statusJSON
	err := s.statusInto(service, &st)
	return st, err
}

// waitOn polls replica i's status.
func (h *haStack) waitOn(t *testing.T, i int, timeout time.Duration, what string, ok func(statusJSON) bool) statusJSON {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for {
		st, err := h.statusOn(i)
		if err == nil && ok(st) {
			return st
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s: not reached on replica %d in %s; last %+v %+v (%v)", what, i, timeout, st, st.Switch, err)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

type historyEntry struct {
	Generation uint64 `json:"generation"`
	Actor      string `json:"actor"`
	Replica    string `json:"replica"`
	Term       uint64 `json:"term"`
	FromGreen  int    `json:"from_green_percent"`
	ToGreen    int    `json:"to_green_percent"`
	Reason     string `json:"reason"`
	Phase      string `json:"phase"`
	Detail     string `json:"detail"`
}

// history reads the service's history straight from Consul KV.
func (h *haStack) history(t *testing.T, after uint64) []historyEntry {
	t.Helper()
	pairs, _, err := h.consul.Client().KV().List("bg/history/"+service+"/", nil)
	if err != nil {
		t.Fatal(err)
	}
	var out []historyEntry
	for _, p := range pairs {
		var e historyEntry
		if err := json.Unmarshal(p.Value, &e); err != nil {
			t.Fatalf("history %s: %v", p.Key, err)
		}
		if e.Generation > after {
			out = append(out, e)
		}
	}
	return out
}

// storedTerm is the leader term recorded in the stored traffic state.
func (h *haStack) storedTerm(t *testing.T) uint64 { return h.stored(t).Term }

// storedHead is the part of the stored traffic state the HA tests read.
type storedHead struct {
	Term       uint64 `json:"term"`
	Generation uint64 `json:"generation"`
}

func (h *haStack) stored(t *testing.T) storedHead {
	t.Helper()
	pair, _, err := h.consul.Client().KV().Get("bg/services/"+service+"/traffic", nil)
	if err != nil || pair == nil {
		t.Fatalf("read stored state: %v", err)
	}
	var st storedHead
	if err := json.Unmarshal(pair.Value, &st); err != nil {
		t.Fatal(err)
	}
	return st
}

// converged waits until every replica's status shows the stored
// generation, and fails when one lags by more than maxFollowerLag: a
// follower's view is eventually consistent, never stale for long.
func (h *haStack) converged(t *testing.T) statusJSON {
	t.Helper()
	start := time.Now()
	for {
		want := h.stored(t).Generation
		var last statusJSON
		lagging := -1
		for i := range h.replicas {
			st, err := h.statusOn(i)
			if err != nil || st.Generation != want {
				lagging = i
				last = st
				break
			}
			last = st
		}
		if lagging < 0 {
			if lag := time.Since(start); lag > 200*time.Millisecond {
				t.Logf("replicas reached stored generation %d after %v", want, lag.Round(10*time.Millisecond))
			}
			return last
		}
		if time.Since(start) > maxFollowerLag {
			t.Fatalf("replica %d shows generation %d %d s after; stored is %d", lagging, last.Generation, int(maxFollowerLag.Seconds()), want)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// maxFollowerLag bounds how long a replica's status may trail the stored
// state: one blocking-query round trip plus headroom for a loaded box.
const maxFollowerLag = 5 * time.Second

// maxKillTakeover bounds kill -9 → another replica leads. With the
// defaults (check TTL 2.4s, a heartbeat every 1.2 s, lock delay 100ms) it
// is 1.3–2.5 s plus polling; the rest is headroom for a loaded CI box.
const maxKillTakeover = 3500 * time.Millisecond

func kills() int {
	if n, err := strconv.Atoi(os.Getenv("BG_E2E_KILLS")); err == nil && n > 0 {
		return n
	}
	return 10
}

func TestHighAvailability(t *testing.T) {
	h := newHAStack(t, 3)
	h.expectAll("blue", 20*time.Second)
	start := h.marks()

	t.Run("kill -9 of the leader mid-switch: a standby resumes, no step repeated or skipped", func(t *testing.T) {
		defer h.restartStopped()
		n := kills()
		var tooks, frees []time.Duration
		missed := 0
		for k := 0; k < n; k++ {
			old := h.leader(t, 30*time.Second)
			st, err := h.statusOn(old)
			if err != nil {
				t.Fatal(err)
			}
			to := "green"
			if st.Weights.Green == 100 {
				to = "blue"
			}
			gen0 := st.Generation
			via := rand.IntN(len(h.replicas))
			// The CLI returns once every replica's proxies hold the first
			// step, which can take longer than the whole switch while a
			// replica killed in the previous round still has an ACK report
			// (until its session lapses): run it aside, kill meanwhile.
			cli := h.onAsync(via, "switch", service, "--to", to)
			step := rand.IntN(3)
			seen := h.waitOn(t, old, 30*time.Second, "target step", func(st statusJSON) bool {
				return st.Switch != nil && st.Generation > gen0 && (st.Switch.Step >= step || st.Switch.Phase != "progressing")
			})
			if seen.Switch.Phase != "progressing" {
				// Seen too late (a busy machine): the kill must come mid-switch.
				if missed++; missed > 3 {
					t.Fatalf("kill %d: switch ended %s before the target step was seen, %d times", k+1, seen.Switch.Phase, missed)
				}
				t.Logf("kill %d: switch %s (gen %d→%d) %s before step %d was seen; again", k+1, seen.Switch.ID, gen0, seen.Generation, seen.Switch.Phase, step+1)
				<-cli
				k--
				continue
			}
			termBefore := h.storedTerm(t)
			killedAt := time.Now()
			h.replicas[old].bg.Kill()
			next, at := h.takeover(t, 60*time.Second, old)
			took := at.Sub(killedAt)
			tooks = append(tooks, took)
			free := time.Duration(h.control(t, next).Election.LastTakeoverSeconds * float64(time.Second))
			frees = append(frees, free)
			final := h.waitOn(t, next, 90*time.Second, "switch finished", func(st statusJSON) bool {
				return st.Switch != nil && st.Switch.Phase != "progressing" && st.Switch.Phase != "paused"
			})
			if final.Switch.Phase != "promoted" {
				t.Fatalf("kill %d: switch ended %s: %s", k, final.Switch.Phase, final.Switch.Reason)
			}
			// Every persisted step exactly once, in order. Entries that move
			// no traffic are not steps: a new leader whose first analysis
			// has no fresh scrape of both fleets stores when the step began
			// to lack data ("holding: …", the insufficient budget's start),
			// at the same split.
			var steps []int
			for _, e := range h.history(t, gen0) {
				if (e.Phase == "switching" || e.Phase == "switched") && e.FromGreen != e.ToGreen {
					steps = append(steps, e.ToGreen)
				} else if e.Phase == "switching" {
					t.Logf("kill %d: stored at %d%% without a move: %s", k+1, e.ToGreen, e.Reason)
				}
			}
			want := []int{25, 50, 75, 100}
			if to == "blue" {
				want = []int{75, 50, 25, 0}
			}
			// Writes carry the writer's term: the new leader's is higher.
			if term := h.storedTerm(t); term <= termBefore {
				t.Fatalf("kill %d: stored term %d after takeover, was %d", k, term, termBefore)
			}
			if fmt.Sprint(steps) != fmt.Sprint(want) {
				t.Fatalf("kill %d (leader %d at step %d): history split sequence %v, want %v", k, old, step, steps, want)
			}
			// The CLI talks to the leader (a follower forwards): killed, it
			// may lose its answer, but it must not fail otherwise.
			if r := <-cli; r.code != 0 && !strings.Contains(r.errOut, "unreachable") && !(via == old && strings.Contains(r.errOut, "cannot reach")) {
				t.Fatalf("kill %d: switch via replica %d: exit %d %s %s", k+1, via, r.code, r.out, r.errOut)
			}
			t.Logf("kill %d: leader %d killed at step ≥%d; replica %d led after %v (%v after it saw the lock free); steps %v",
				k+1, old, step+1, next, took.Round(10*time.Millisecond), free.Round(10*time.Millisecond), steps)
			h.replicas[old].bg.Restart()
		}
		t.Logf("leader killed %d times; every switch completed with each step recorded once", n)
		t.Logf("kill -9 → another replica leads: %s (lock seen free → leading: %s)", spread(tooks), spread(frees))
		for k, took := range tooks {
			if took > maxKillTakeover {
				t.Errorf("kill %d: takeover took %v; want ≤ %v (target 3s)", k+1, took, maxKillTakeover)
			}
		}
		if m := median(slices.Sorted(slices.Values(tooks))); m > 3*time.Second {
			t.Errorf("median takeover %v; target 3s", m)
		}
	})

	t.Run("calls never failed across the kills", func(t *testing.T) {
		if c := h.sumSince(start); c.Failed != 0 {
			t.Fatalf("failed calls: %s", c)
		} else {
			t.Logf("calls across the kills: %s", c)
		}
	})

	t.Run("SIGTERM of the leader: another leads within 1.5s, its session and check are gone", func(t *testing.T) {
		defer h.restartStopped()
		var tooks []time.Duration
		for k := 0; k < 3; k++ {
			old := h.leader(t, 30*time.Second)
			ctl := h.control(t, old)
			sent := time.Now()
			exited := make(chan struct{})
			go func() {
				defer close(exited)
				h.replicas[old].bg.Stop() // SIGTERM, then waits for the exit
			}()
			next, at := h.takeover(t, 10*time.Second, old)
			took := at.Sub(sent)
			tooks = append(tooks, took)
			<-exited
			if took > 1500*time.Millisecond {
				t.Errorf("SIGTERM %d: replica %d led %v after replica %d was told to stop; want ≤ 1.5s", k+1, next, took, old)
			}
			checks, _, err := h.consul.Client().Health().Checks(leader.CheckService, nil)
			if err != nil {
				t.Fatal(err)
			}
			for _, c := range checks {
				if c.CheckID == ctl.Election.Check.ID {
					t.Errorf("SIGTERM %d: the stopped replica's check %s is still registered (%s)", k+1, c.CheckID, c.Status)
				}
			}
			sessions, _, err := h.consul.Client().Session().List(nil)
			if err != nil {
				t.Fatal(err)
			}
			for _, se := range sessions {
				if strings.HasSuffix(se.Name, " "+ctl.Replica) {
					t.Errorf("SIGTERM %d: the stopped replica's session %s still exists", k+1, se.ID)
				}
			}
			t.Logf("SIGTERM %d: replica %d stopped; replica %d led after %v", k+1, old, next, took.Round(10*time.Millisecond))
			h.replicas[old].bg.Restart()
		}
		t.Logf("SIGTERM → another replica leads: %s", spread(tooks))
	})

	t.Run("a leader paused past its check TTL is fenced: on resume it writes nothing and stops leading", func(t *testing.T) {
		st := h.converged(t)
		to := "green"
		if st.Weights.Green == 100 {
			to = "blue"
		}
		old := h.leader(t, 30*time.Second)
		oldID := h.control(t, old).Replica
		pid := h.replicas[old].bg.Pid()
		// Long bakes: the switch is still progressing when the old leader
		// resumes, so it has writes it would make.
		if out, errOut, code := h.on(old, "switch", service, "--to", to, "--bake", "6s"); code != 0 {
			t.Fatalf("switch: exit %d %s %s", code, out, errOut)
		}
		h.waitOn(t, old, 30*time.Second, "second step", func(st statusJSON) bool {
			return st.Switch != nil && st.Switch.Phase == "progressing" && st.Switch.Step >= 1
		})
		if err := syscall.Kill(pid, syscall.SIGSTOP); err != nil {
			t.Fatal(err)
		}
		stoppedAt := time.Now()
		resumed := false
		resume := func() {
			if !resumed {
				resumed = true
				_ = syscall.Kill(pid, syscall.SIGCONT)
			}
		}
		t.Cleanup(resume)
		time.Sleep(200 * time.Millisecond) // a write already in flight lands
		gen0 := h.stored(t).Generation
		next, at := h.takeover(t, 30*time.Second, old)
		took := at.Sub(stoppedAt)
		if took > maxKillTakeover {
			t.Errorf("replica %d led %v after the leader was paused; want ≤ %v", next, took, maxKillTakeover)
		}
		newTerm := h.control(t, next).Election.Term
		// The new leader advances the switch while the old one is paused.
		deadline := stoppedAt.Add(15 * time.Second)
		advanced := false
		for !advanced && time.Now().Before(deadline) {
			for _, e := range h.history(t, gen0) {
				if e.Replica != oldID && e.Term == newTerm {
					advanced = true
				}
			}
			time.Sleep(200 * time.Millisecond)
		}
		if !advanced {
			t.Fatalf("the new leader (replica %d, term %d) wrote no step within 15s of the pause", next, newTerm)
		}
		time.Sleep(time.Until(deadline))
		resume()
		resumedAt := time.Now()
		for {
			on, err := h.leaderMetric(old)
			if err == nil && !on {
				break
			}
			if time.Since(resumedAt) > time.Second {
				t.Fatalf("resumed replica %d: bg_leader %v (%v) a second after SIGCONT; want 0", old, on, err)
			}
			time.Sleep(20 * time.Millisecond)
		}
		notLeading := time.Since(resumedAt)
		final := h.waitOn(t, next, 90*time.Second, "switch finished", func(st statusJSON) bool {
			return st.Switch != nil && st.Switch.Phase != "progressing" && st.Switch.Phase != "paused"
		})
		if final.Switch.Phase != "promoted" {
			t.Fatalf("switch ended %s: %s", final.Switch.Phase, final.Switch.Reason)
		}
		var steps []int
		for _, e := range h.history(t, gen0) {
			if e.Replica == oldID || e.Term < newTerm {
				t.Errorf("history gen %d written by replica %s term %d after the pause (old leader %s; new term %d)", e.Generation, e.Replica, e.Term, oldID, newTerm)
			}
			if e.Phase == "switching" || e.Phase == "switched" {
				steps = append(steps, e.ToGreen)
			}
		}
		if term := h.storedTerm(t); term != newTerm {
			t.Errorf("stored state has term %d; the new leader's is %d", term, newTerm)
		}
		if h.leading(old) {
			t.Errorf("resumed replica %d leads again", old)
		}
		t.Logf("leader %d paused 15s: replica %d led after %v and advanced the switch (steps after the pause %v); resumed, the old one read bg_leader 0 after %v and wrote nothing",
			old, next, took.Round(10*time.Millisecond), steps, notLeading.Round(10*time.Millisecond))
	})

	t.Run("concurrent switches: exactly one wins", func(t *testing.T) {
		// Each replica serves status from its own watch of the stored
		// state; the two CLIs below must both see the state they race on.
		st := h.converged(t)
		to := "green"
		if st.Weights.Green == 100 {
			to = "blue"
		}
		var wg sync.WaitGroup
		codes := make([]int, 2)
		errs := make([]string, 2)
		for i := 0; i < 2; i++ {
			wg.Add(1)
			go func(i int) {
				defer wg.Done()
				_, errs[i], codes[i] = h.on(i+1, "switch", service, "--to", to)
			}(i)
		}
		wg.Wait()
		ok, refused := 0, 0
		for i, c := range codes {
			switch {
			case c == 0:
				ok++
			case c == 3 && (strings.Contains(errs[i], "is progressing") || strings.Contains(errs[i], "already serves")):
				refused++
			}
		}
		if ok != 1 || refused != 1 {
			t.Fatalf("exit codes %v, stderr %q", codes, errs)
		}
		if _, errOut, code := h.on(0, "abort", service); code != 0 {
			t.Fatalf("abort: %d %s", code, errOut)
		}
	})

	t.Run("a replica cut off from Consul stops acting and keeps serving", func(t *testing.T) {
		old := h.leader(t, 30*time.Second)
		before := h.clients[old].Mark()
		h.replicas[old].consulProxy.Cut()
		next := h.leader(t, 60*time.Second, old)
		if h.leading(old) {
			t.Fatalf("cut-off replica %d still leads", old)
		}
		time.Sleep(2 * time.Second)
		if c := h.clients[old].Since(before); c.Failed != 0 || c.OK() == 0 {
			t.Fatalf("clients of the cut-off replica: %s", c)
		}
		h.replicas[old].consulProxy.Heal()
		t.Logf("replica %d cut off; replica %d took over", old, next)
		h.leader(t, 30*time.Second)
	})

	t.Run("consul stopped 30s mid-switch: nothing advances, nothing shrinks, then it resumes", func(t *testing.T) {
		st, _ := h.statusOn(0)
		to := "green"
		if st.Weights.Green == 100 {
			to = "blue"
		}
		ld := h.leader(t, 30*time.Second)
		if _, errOut, code := h.on(ld, "switch", service, "--to", to, "--bake", "4s"); code != 0 {
			t.Fatalf("switch: %s", errOut)
		}
		at := h.waitOn(t, ld, 30*time.Second, "second step", func(st statusJSON) bool { return st.Switch != nil && st.Switch.Step == 1 })
		before := h.marks()
		h.consul.Stop()
		time.Sleep(30 * time.Second)
		for i := range h.replicas {
			st, err := h.statusOn(i)
			if err != nil || st.Switch == nil {
				t.Fatalf("replica %d: %+v (%v)", i, st, err)
			}
			// A follower may lag (it serves its last config); none may be ahead.
			if st.Generation > at.Generation || st.Switch.ID == at.Switch.ID && (st.Switch.Step > 1 || st.Weights != at.Weights) {
				t.Fatalf("replica %d advanced while consul was down: %+v %+v", i, st.Weights, st.Switch)
			}
		}
		for i := range h.replicas {
			var ctl struct {
				Control struct {
					Leading bool `json:"leading"`
					Consul  struct {
						Reachable bool `json:"reachable"`
					} `json:"consul"`
				} `json:"control"`
			}
			s := *h.stack
			s.admin = h.replicas[i].admin
			if err := s.statusInto(service, &ctl); err != nil || ctl.Control.Consul.Reachable || ctl.Control.Leading {
				t.Fatalf("replica %d status while consul was down: %+v (%v); want consul unreachable, not leading", i, ctl.Control, err)
			}
		}
		c := h.sumSince(before)
		if c.Failed != 0 {
			t.Fatalf("calls failed while consul was down: %s", c)
		}
		for id := range h.backends {
			if c.ByServer[id] == 0 && ((to == "green") == strings.Contains(id, "green") || at.Weights.Blue > 0 && strings.Contains(id, "blue")) {
				t.Fatalf("%s got no calls while consul was down (fleet shrunk?): %s", id, c)
			}
		}
		h.consul.Start()
		ld = h.leader(t, 60*time.Second)
		h.waitOn(t, ld, 90*time.Second, "promoted after consul came back", func(st statusJSON) bool {
			return st.Switch != nil && st.Switch.Phase == "promoted"
		})
	})

	// The leader dies as the candidate fails: at the failure's onset, before
	// any verdict (the next leader must judge it), or the moment its
	// analysis fails the candidate (the rollback is decided, maybe stored).
	for _, at := range []string{"onset", "verdict"} {
		t.Run("a rollback survives the leader's death at the failure's "+at, func(t *testing.T) {
			defer h.restartStopped()
			h.rollbackOnLeaderDeath(t, at)
		})
	}
}

func (h *haStack) rollbackOnLeaderDeath(t *testing.T, moment string) {
	st, err := h.statusOn(0)
	if err != nil {
		t.Fatal(err)
	}
	to, stable := "green", "blue"
	if st.Weights.Green == 100 {
		to, stable = "blue", "green"
	}
	ld := h.leader(t, 30*time.Second)
	if out, errOut, code := h.on(ld, "switch", service, "--to", to, "--bake", "6s"); code != 0 {
		t.Fatalf("switch: exit %d %s %s", code, out, errOut)
	}
	st = h.waitOn(t, ld, 60*time.Second, "second step", func(st statusJSON) bool {
		return st.Switch != nil && st.Switch.Phase == "progressing" && st.Switch.Step >= 1
	})
	id := st.Switch.ID
	setFail := func(r float64) {
		for _, b := range h.backends {
			if strings.Contains(b.Options().ID, to) {
				b.SetFailRatio(r)
			}
		}
	}
	setFail(0.3)
	onset := time.Now()
	t.Cleanup(func() { setFail(0) })
	for deadline := onset.Add(60 * time.Second); ; {
		if time.Now().After(deadline) {
			t.Fatalf("the leader's analysis did not fail the candidate within 60s")
		}
		st, err := h.statusOn(ld)
		failed := false
		if err == nil && st.Switch != nil && st.Switch.ID == id {
			failed = st.Switch.Phase == "rolled_back"
			for _, v := range st.Switch.Verdicts {
				failed = failed || v.Outcome == "fail"
			}
		}
		if err == nil && st.Switch != nil && st.Switch.Phase == "promoted" {
			t.Fatalf("switch promoted despite the failing candidate")
		}
		if moment == "onset" {
			if failed {
				t.Skipf("the leader failed the candidate within %v of the onset, before the kill", time.Since(onset))
			}
			if time.Since(onset) >= 300*time.Millisecond { // before the failure is judged
				break
			}
		} else if failed {
			break
		}
		time.Sleep(10 * time.Millisecond)
	}
	killMarks := h.marks()
	killedAt := time.Now()
	h.replicas[ld].bg.Kill()
	var stored struct {
		Rollout struct {
			Phase string `json:"phase"`
		} `json:"rollout"`
	}
	if pair, _, err := h.consul.Client().KV().Get("bg/services/"+service+"/traffic", nil); err == nil && pair != nil {
		_ = json.Unmarshal(pair.Value, &stored)
	}
	next, at := h.takeover(t, 30*time.Second, ld)
	h.replicas[ld].bg.Restart()
	for i := range h.replicas {
		h.waitOn(t, i, 60*time.Second, "every replica serves the rollback", func(st statusJSON) bool {
			return st.Switch != nil && st.Switch.ID == id && st.Switch.Phase == "rolled_back"
		})
	}
	final, _ := h.statusOn(next)
	if final.Switch.Reason == "" {
		t.Errorf("rolled back without a reason: %+v", final.Switch)
	}
	// The survivors' clients: the last call to the candidate (or failed).
	var last time.Time
	for i, c := range h.clients {
		if i == ld {
			continue // its replica was down until restarted
		}
		for _, call := range c.Calls(killMarks[i]) {
			if (call.Color == to || call.Err != "") && call.Start.After(last) {
				last = call.Start
			}
		}
	}
	onStable := max(last.Sub(killedAt), 0)
	// At the verdict the rollback is decided: 5s. At the onset the next
	// leader takes over (~2.5s) and judges it first.
	limit := 5 * time.Second
	if moment == "onset" {
		limit = 15 * time.Second
	}
	if onStable > limit {
		t.Errorf("clients still called %s %v after the kill; want all on %s within %v", to, onStable, stable, limit)
	}
	setFail(0)
	h.expectAll(stable, 30*time.Second)
	t.Logf("leader %d killed at the failure's %s (%v after it; stored phase then %q); replica %d led after %v; survivors' clients all on %s %v after the kill; reason: %s",
		ld, moment, killedAt.Sub(onset).Round(10*time.Millisecond), stored.Rollout.Phase, next, at.Sub(killedAt).Round(10*time.Millisecond),
		stable, onStable.Round(10*time.Millisecond), final.Switch.Reason)
}
