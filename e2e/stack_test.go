package e2e

import (
	"encoding/json"
	"fmt"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/bgctl/bg/e2e/harness"
)

// stack is a real Consul, two gRPC fleets registered by tag, `bg serve`
// and proxyless grpc-go xDS clients dialing xds:///web.
type stack struct {
	t        *testing.T
	consul   *harness.Consul
	bin      string
	bg       *harness.BG
	xdsAddr  string
	admin    string
	token    string
	backends map[string]*harness.Backend
	clients  []*harness.Traffic
	prom     *harness.Prometheus
}

// stackOptions shape a stack; the zero value has no Prometheus.
type stackOptions struct {
	blue, green int
	// analysis, if set, starts a real Prometheus scraping every backend
	// (1 s interval) and gives bg this YAML as the service's analysis block.
	analysis string
	// latency also judges latency on the backends' histogram, with
	// latencyYAML's extra lines under analysis.latency (needs analysis).
	latency     bool
	latencyYAML string
	// serviceYAML is extra YAML under the service (pools, gates, release
	// windows).
	serviceYAML string
	// env is added to bg serve's environment (BG_* overrides).
	env []string
	// greenVersion is the green hosts' Consul meta version ("": v2).
	greenVersion string
}

const service = "web"

func newStack(t *testing.T, blue, green int) *stack {
	return newStackWith(t, stackOptions{blue: blue, green: green})
}

func newStackWith(t *testing.T, o stackOptions) *stack {
	t.Helper()
	s := &stack{t: t, consul: harness.StartConsul(t), bin: harness.BuildBG(t), backends: map[string]*harness.Backend{}, token: "e2e-secret"}
	for i := 1; i <= o.blue; i++ {
		s.addBackend("blue", i, "v1")
	}
	greenVersion := o.greenVersion
	if greenVersion == "" {
		greenVersion = "v2"
	}
	for i := 1; i <= o.green; i++ {
		s.addBackend("green", i, greenVersion)
	}
	s.xdsAddr = fmt.Sprintf("127.0.0.1:%d", harness.FreePort(t))
	s.admin = fmt.Sprintf("127.0.0.1:%d", harness.FreePort(t))
	bc := harness.BGConfig{ConsulAddr: s.consul.HTTPAddr(), XDSAddr: s.xdsAddr, AdminAddr: s.admin, Token: s.token, Service: service, ServiceYAML: o.serviceYAML}
	if o.analysis != "" {
		var targets []string
		for _, b := range s.backends {
			targets = append(targets, b.MetricsAddr())
		}
		s.prom = harness.StartPrometheus(t, targets)
		s.prom.WaitTargetsUp(30 * time.Second)
		bc.PrometheusURL, bc.Analysis = s.prom.URL(), o.analysis
		bc.Latency, bc.LatencyYAML = o.latency, o.latencyYAML
	}
	path := harness.WriteBGConfig(t, bc)
	s.bg = harness.StartBG(t, harness.BGOptions{Bin: s.bin, Config: path, AdminAddr: s.admin, Token: s.token, Env: o.env})
	return s
}

// addBackend starts and registers web-COLOR-i.
func (s *stack) addBackend(color string, i int, version string) *harness.Backend {
	id := fmt.Sprintf("%s-%s-%d", service, color, i)
	b := harness.StartBackend(s.t, harness.BackendOptions{Service: service, Color: color, ID: id, Version: version})
	if err := b.Register(s.consul.Client()); err != nil {
		s.t.Fatalf("register %s: %v", id, err)
	}
	s.backends[id] = b
	return b
}

// startClients connects n independent xDS clients (one ADS stream each).
func (s *stack) startClients(n int) {
	for i := 0; i < n; i++ {
		c := harness.StartTraffic(s.t, harness.TrafficOptions{XDSAddr: s.xdsAddr, NodeID: fmt.Sprintf("client-%d", i), Service: service, Workers: 4})
		c.Ready(s.t, 30*time.Second)
		s.clients = append(s.clients, c)
	}
}

// cli runs bg with the admin address and token in its environment.
func (s *stack) cli(args ...string) (stdout, stderr string, code int) {
	return s.cliToken(s.token, args...)
}

func (s *stack) cliToken(token string, args ...string) (string, string, int) {
	return harness.RunCLIEnv(s.t, s.bin, []string{"BG_ADDR=" + s.admin, "BG_TOKEN=" + token}, args...)
}

// mustCLI runs a command that must exit 0.
func (s *stack) mustCLI(args ...string) string {
	s.t.Helper()
	out, errOut, code := s.cli(args...)
	if code != 0 {
		s.t.Fatalf("bg %s: exit %d\nstdout: %s\nstderr: %s", strings.Join(args, " "), code, out, errOut)
	}
	return out
}

type statusJSON struct {
	Service string `json:"service"`
	Weights struct {
		Blue  int `json:"blue"`
		Green int `json:"green"`
	} `json:"weights"`
	Stable     string `json:"stable"`
	Generation uint64 `json:"generation"`
	Fleets     map[string]struct {
		Healthy  int      `json:"healthy"`
		Versions []string `json:"versions"`
	} `json:"fleets"`
	Proxies struct {
		Connected int `json:"connected"`
		Acked     int `json:"acked"`
	} `json:"proxies"`
	Switch *switchJSON `json:"switch"`
}

type switchJSON struct {
	ID       string `json:"id"`
	Phase    string `json:"phase"`
	Step     int    `json:"step"`
	Reason   string `json:"reason"`
	Verdicts []struct {
		Step     int    `json:"step"`
		Percent  int    `json:"percent"`
		Outcome  string `json:"outcome"`
		Reason   string `json:"reason"`
		Analyses int    `json:"analyses"`
	} `json:"verdicts"`
	Overrides   []string  `json:"overrides"`
	DetectedAt  time.Time `json:"detected_at"`
	ConfirmedAt time.Time `json:"confirmed_at"`
	StartedAt   time.Time `json:"started_at"`
	EndedAt     time.Time `json:"ended_at"`
	Cause       string    `json:"cause"`
	// Evidence is what the judge saw since the switch began.
	Evidence          *evidenceJSON `json:"evidence"`
	InsufficientSince time.Time     `json:"insufficient_since"`
}

type evidenceJSON struct {
	Candidate         countsJSON `json:"candidate"`
	Baseline          countsJSON `json:"baseline"`
	ErrorsE           float64    `json:"errors_e"`
	LatencyE          float64    `json:"latency_e"`
	CandidateQuantile float64    `json:"candidate_quantile"` // seconds
	BaselineQuantile  float64    `json:"baseline_quantile"`
}

type countsJSON struct {
	Requests float64 `json:"requests"`
	Errors   float64 `json:"errors"`
}

// statusInto decodes the admin API's status of svc into v (cheap enough
// to poll every few milliseconds, unlike running the CLI).
func (s *stack) statusInto(svc string, v any) error {
	req, err := http.NewRequest(http.MethodGet, "http://"+s.admin+"/v1/services/"+svc, nil)
	if err != nil {
		return err
	}
	req.Header.Set("Authorization", "Bearer "+s.token)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("status: HTTP %d", resp.StatusCode)
	}
	return json.NewDecoder(resp.Body).Decode(v)
}

func (s *stack) status() statusJSON {
	s.t.Helper()
	var st statusJSON
	out := s.mustCLI("status", service, "-o", "json")
	if err := json.Unmarshal([]byte(out), &st); err != nil {
		s.t.Fatalf("status json: %v\n%s", err, out)
	}
	return st
}

// sumSince adds every client's counts since its mark.
func (s *stack) sumSince(marks []harness.Mark) harness.Counts {
	total := harness.Counts{ByServer: map[string]int{}}
	for i, c := range s.clients {
		n := c.Since(marks[i])
		for k, v := range n.ByServer {
			total.ByServer[k] += v
		}
		total.Blue += n.Blue
		total.Green += n.Green
		total.Failed += n.Failed
		total.Other += n.Other
		total.Errors = append(total.Errors, n.Errors...)
	}
	return total
}

func (s *stack) marks() []harness.Mark {
	m := make([]harness.Mark, len(s.clients))
	for i, c := range s.clients {
		m[i] = c.Mark()
	}
	return m
}

// expectAll waits until every client sees only color, then checks a
// further full second is entirely that colour.
func (s *stack) expectAll(color string, timeout time.Duration) {
	s.t.Helper()
	for _, c := range s.clients {
		c.WaitFor(s.t, timeout, func(n harness.Counts) bool {
			return n.Failed == 0 && n.OK() > 0 && colorCount(n, color) == n.OK()
		})
	}
	m := s.marks()
	time.Sleep(time.Second)
	n := s.sumSince(m)
	if n.OK() == 0 || colorCount(n, color) != n.OK() || n.Failed != 0 {
		s.t.Fatalf("want 100%% %s, got %s", color, n)
	}
}

func colorCount(n harness.Counts, color string) int {
	if color == "green" {
		return n.Green
	}
	return n.Blue
}
