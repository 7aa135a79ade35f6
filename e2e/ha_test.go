package e2e

import (
	"encoding/json"
	"fmt"
	"io"
	"math/rand/v2"
	"net/http"
	"os"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

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
window: 5s
bake: 2s
steps: [25, 50, 75, 100]
min_requests: 50
unavailable_budget: 120s
on_unavailable: hold
`

func newHAStack(t *testing.T, n int) *haStack {
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
			Token: s.token, Service: service, PrometheusURL: s.prom.URL(), Analysis: haAnalysis})
		r.bg = harness.StartBG(t, harness.BGOptions{Bin: s.bin, Config: cfg, AdminAddr: r.admin, Token: s.token})
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

// leading reports whether replica i says it holds the leader lock.
func (h *haStack) leading(i int) bool {
	req, _ := http.NewRequest(http.MethodGet, "http://"+h.replicas[i].admin+"/metrics", nil)
	req.Header.Set("Authorization", "Bearer "+h.token)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return false
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return strings.Contains(string(b), "\nbg_leader 1")
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
	ToGreen    int    `json:"to_green_percent"`
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
func (h *haStack) storedTerm(t *testing.T) uint64 {
	t.Helper()
	pair, _, err := h.consul.Client().KV().Get("bg/services/"+service+"/traffic", nil)
	if err != nil || pair == nil {
		t.Fatalf("read stored state: %v", err)
	}
	var st struct {
		Term uint64 `json:"term"`
	}
	if err := json.Unmarshal(pair.Value, &st); err != nil {
		t.Fatal(err)
	}
	return st.Term
}

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
		n := kills()
		for k := 0; k < n; k++ {
			st, err := h.statusOn(0)
			if err != nil {
				t.Fatal(err)
			}
			to := "green"
			if st.Weights.Green == 100 {
				to = "blue"
			}
			gen0 := st.Generation
			via := rand.IntN(len(h.replicas))
			if out, errOut, code := h.on(via, "switch", service, "--to", to); code != 0 {
				t.Fatalf("kill %d: switch via replica %d: exit %d %s %s", k, via, code, out, errOut)
			}
			step := rand.IntN(3)
			old := h.leader(t, 30*time.Second)
			h.waitOn(t, old, 30*time.Second, "target step", func(st statusJSON) bool {
				return st.Switch != nil && st.Switch.Step >= step
			})
			termBefore := h.storedTerm(t)
			h.replicas[old].bg.Kill()
			killedAt := time.Now()
			next := h.leader(t, 60*time.Second, old)
			took := time.Since(killedAt)
			final := h.waitOn(t, next, 90*time.Second, "switch finished", func(st statusJSON) bool {
				return st.Switch != nil && st.Switch.Phase != "progressing" && st.Switch.Phase != "paused"
			})
			if final.Switch.Phase != "promoted" {
				t.Fatalf("kill %d: switch ended %s: %s", k, final.Switch.Phase, final.Switch.Reason)
			}
			// Every persisted step exactly once, in order.
			var steps []int
			for _, e := range h.history(t, gen0) {
				if e.Phase == "switching" || e.Phase == "switched" {
					steps = append(steps, e.ToGreen)
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
			t.Logf("kill %d: leader %d killed at step ≥%d; replica %d led after %v; steps %v", k+1, old, step+1, next, took.Round(100*time.Millisecond), steps)
			h.replicas[old].bg.Restart()
		}
		t.Logf("leader killed %d times; every switch completed with each step recorded once", n)
	})

	t.Run("calls never failed across the kills", func(t *testing.T) {
		if c := h.sumSince(start); c.Failed != 0 {
			t.Fatalf("failed calls: %s", c)
		} else {
			t.Logf("calls across the kills: %s", c)
		}
	})

	t.Run("concurrent switches: exactly one wins", func(t *testing.T) {
		st, _ := h.statusOn(0)
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
}
