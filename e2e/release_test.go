package e2e

import (
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/bgctl/bg/e2e/harness"
)

// gateServer is a gate webhook answering with a settable status; it
// records each call's payload and when it came.
type gateServer struct {
	*httptest.Server
	status atomic.Int32
	mu     sync.Mutex
	calls  []gateCall
}

type gateCall struct {
	at   time.Time
	body map[string]any
}

func startGate(t *testing.T) *gateServer {
	g := &gateServer{}
	g.status.Store(http.StatusOK)
	g.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		var p map[string]any
		body, _ := io.ReadAll(r.Body)
		_ = json.Unmarshal(body, &p)
		g.mu.Lock()
		g.calls = append(g.calls, gateCall{at: time.Now(), body: p})
		g.mu.Unlock()
		code := int(g.status.Load())
		w.WriteHeader(code)
		if code >= 300 {
			fmt.Fprint(w, "checkout smoke test failed")
		}
	}))
	t.Cleanup(g.Close)
	return g
}

// take returns the calls so far and forgets them.
func (g *gateServer) take() []gateCall {
	g.mu.Lock()
	defer g.mu.Unlock()
	out := g.calls
	g.calls = nil
	return out
}

func (g *gateServer) stages() []string {
	g.mu.Lock()
	defer g.mu.Unlock()
	var out []string
	for _, c := range g.calls {
		out = append(out, fmt.Sprintf("%v@%v", c.body["stage"], c.body["step"]))
	}
	return out
}

type releaseStatus struct {
	Pools     []string `json:"pools"`
	Candidate string   `json:"candidate"`
	Preview   string   `json:"preview"`
	Window    *struct {
		Open     bool      `json:"open"`
		Reason   string    `json:"reason"`
		NextOpen time.Time `json:"next_open"`
	} `json:"window"`
}

type historyJSON struct {
	Generation uint64 `json:"generation"`
	Actor      string `json:"actor"`
	Reason     string `json:"reason"`
	Detail     string `json:"detail"`
	Override   string `json:"override"`
	ToGreen    int    `json:"to_green_percent"`
}

func (s *stack) history(t *testing.T) []historyJSON {
	t.Helper()
	var h []historyJSON
	if err := json.Unmarshal([]byte(s.mustCLI("history", service, "-o", "json")), &h); err != nil {
		t.Fatal(err)
	}
	return h
}

func TestCanaryPoolsAndGates(t *testing.T) {
	gate := startGate(t)
	s := newStackWith(t, stackOptions{blue: 2, green: 2, analysis: e2eAnalysis, serviceYAML: `
pools:
  - header: x-bg-pool
    value: staff
gates:
  - name: smoke
    url: ` + gate.URL + `
    stages: [step]
    timeout: 2s
`})
	s.startClients(2)
	staff := harness.StartTraffic(t, harness.TrafficOptions{XDSAddr: s.xdsAddr, NodeID: "staff", Service: service, Workers: 2,
		Metadata: map[string]string{"x-bg-pool": "staff"}})
	staff.Ready(t, 30*time.Second)
	s.expectAll("blue", 20*time.Second)

	t.Run("calls with the pool header reach green while plain calls stay on blue", func(t *testing.T) {
		before := s.marks()
		s.mustCLI("preview", service)
		var rs releaseStatus
		if err := s.statusInto(service, &rs); err != nil || rs.Candidate != "green" || rs.Preview != "green" || len(rs.Pools) != 1 {
			t.Fatalf("status after preview: %+v (%v)", rs, err)
		}
		// preview returned after every proxy ACKed: from here on, staff
		// calls are green and nobody else's is.
		time.Sleep(200 * time.Millisecond)
		sm, pm := staff.Mark(), s.marks()
		time.Sleep(2 * time.Second)
		if n := staff.Since(sm); n.Green == 0 || n.Green != n.OK() || n.Failed != 0 {
			t.Fatalf("staff calls: want all green, got %s", n)
		}
		if n := s.sumSince(pm); n.Blue == 0 || n.Blue != n.OK() || n.Failed != 0 {
			t.Fatalf("plain calls: want all blue, got %s", n)
		}
		if n := s.sumSince(before); n.Failed != 0 || n.Green != 0 {
			t.Fatalf("plain calls across the preview: %s", n)
		}
		if st := s.status(); st.Weights.Blue != 100 {
			t.Fatalf("preview moved the split: %+v", st.Weights)
		}
		s.mustCLI("preview", service, "--off")
		time.Sleep(200 * time.Millisecond)
		sm = staff.Mark()
		time.Sleep(time.Second)
		if n := staff.Since(sm); n.Blue == 0 || n.Blue != n.OK() {
			t.Fatalf("staff calls after preview --off: want all blue, got %s", n)
		}
	})

	t.Run("a gate returning 500 rolls the switch back", func(t *testing.T) {
		gate.status.Store(http.StatusInternalServerError)
		before := s.marks()
		wait := s.startWait(t, "--to", "green")
		code, rep, errOut := wait()
		if code != 10 || rep.Switch == nil || rep.Switch.Phase != "rolled_back" || rep.Weights.Blue != 100 {
			t.Fatalf("exit %d, report %+v / %+v, stderr %s", code, rep, rep.Switch, errOut)
		}
		if !strings.Contains(rep.Switch.Reason, "gate smoke (step) failed: HTTP 500: checkout smoke test failed") {
			t.Fatalf("rollback reason %q", rep.Switch.Reason)
		}
		// The gate ran only once the first step had passed its analysis.
		if len(rep.Switch.Verdicts) == 0 || rep.Switch.Verdicts[0].Outcome != "pass" {
			t.Fatalf("verdicts before the gate: %+v", rep.Switch.Verdicts)
		}
		if got := gate.stages(); len(got) == 0 || got[0] != "step@1" {
			t.Fatalf("gate calls %v, want step@1 first", got)
		}
		found := false
		for _, e := range s.history(t) {
			if strings.Contains(e.Detail, "gate smoke (step) failed: HTTP 500") || strings.Contains(e.Reason, "gate smoke (step) failed") {
				found = true
			}
		}
		if !found {
			t.Fatalf("history does not record the failed gate: %+v", s.history(t))
		}
		s.expectAll("blue", 10*time.Second)
		if n := s.sumSince(before); n.Failed*1000 > n.Total() {
			t.Fatalf("failed calls: %s", n)
		}
	})

	t.Run("passing gates let the switch promote", func(t *testing.T) {
		gate.status.Store(http.StatusOK)
		gate.take()
		code, rep, errOut := s.startWait(t, "--to", "green")()
		if code != 0 || rep.Switch.Phase != "promoted" || rep.Weights.Green != 100 {
			t.Fatalf("exit %d, report %+v / %+v, stderr %s", code, rep, rep.Switch, errOut)
		}
		if got := gate.stages(); strings.Join(got, ",") != "step@1,step@2" {
			t.Fatalf("gate calls %v, want one between each pair of steps", got)
		}
		s.expectAll("green", 10*time.Second)
	})
}

func TestDeployFreeze(t *testing.T) {
	from := time.Now().UTC().Add(-time.Hour).Truncate(time.Minute)
	to := time.Now().UTC().Add(2 * time.Hour).Truncate(time.Minute)
	s := newStackWith(t, stackOptions{blue: 1, green: 1, serviceYAML: `
windows:
  time_zone: Europe/Berlin
  freeze:
    - from: "` + from.Format(time.RFC3339) + `"
      to: "` + to.Format(time.RFC3339) + `"
      reason: e2e freeze
`})
	s.startClients(1)
	s.expectAll("blue", 20*time.Second)

	t.Run("a switch in a freeze is refused with the next open time", func(t *testing.T) {
		out, errOut, code := s.cli("switch", service, "--to", "green", "--instant")
		if code != 3 || !strings.Contains(errOut, `freeze "e2e freeze"`) || !strings.Contains(errOut, "next open") {
			t.Fatalf("exit %d\nstdout %s\nstderr %s", code, out, errOut)
		}
		var rs releaseStatus
		if err := s.statusInto(service, &rs); err != nil || rs.Window == nil || rs.Window.Open || !rs.Window.NextOpen.Equal(to) {
			t.Fatalf("window status %+v (%v), want closed until %s", rs.Window, err, to)
		}
		if st := s.status(); st.Weights.Blue != 100 || st.Generation != 1 {
			t.Fatalf("a refused switch changed state: %+v", st)
		}
		if _, errOut, code := s.cli("switch", service, "--to", "green", "--force"); code != 2 || !strings.Contains(errOut, "--reason") {
			t.Fatalf("--force without --reason: exit %d, %s", code, errOut)
		}
	})

	t.Run("a forced switch goes through and is recorded as an override", func(t *testing.T) {
		s.flip(t, "green", "switch", service, "--to", "green", "--force", "--reason", "INC-42 hotfix")
		h := s.history(t)
		last := h[len(h)-1]
		if last.ToGreen != 100 || !strings.Contains(last.Override, "switch --force") || !strings.Contains(last.Override, "INC-42 hotfix") || !strings.HasPrefix(last.Actor, "cli:") {
			t.Fatalf("history entry of the forced switch: %+v", last)
		}
		metrics := s.metrics(t)
		for _, want := range []string{`bg_overrides_total{service="web"} 1`, `bg_window_refusals_total{service="web"} 1`} {
			if !strings.Contains(metrics, want) {
				t.Fatalf("metrics lack %s", want)
			}
		}
	})
}

func (s *stack) metrics(t *testing.T) string {
	t.Helper()
	req, _ := http.NewRequest(http.MethodGet, "http://"+s.admin+"/metrics", nil)
	req.Header.Set("Authorization", "Bearer "+s.token)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return string(b)
}
