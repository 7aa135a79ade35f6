package harness

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/prometheus/client_golang/api"
	v1 "github.com/prometheus/client_golang/api/prometheus/v1"
	"github.com/prometheus/common/model"
)

// promStartTimeout bounds one start. Measured on the 2-core dev machine
// (Debian's 2.42): /-/ready answers 70–95 ms after exec, a restart on the
// same data dir 45–125 ms (WAL replay ~2 ms); Stop takes 5–30 ms. Ready is
// not scraping, though: see WaitTargetsUp.
const promStartTimeout = 30 * time.Second

// Prometheus is one real Prometheus server on 127.0.0.1 scraping a target
// list every second. Targets come from a file_sd file, so SetTargets works
// without a reload.
type Prometheus struct {
	t     TB
	p     *proc
	addr  string
	dir   string // prometheus.yml and targets.json
	probe *http.Client

	mu      sync.Mutex
	targets []string
}

// StartPrometheus starts Prometheus scraping targets (host:port, path
// /metrics) and waits until it answers queries. It is stopped when the test
// ends. The first scrape comes ~5 s later; call WaitTargetsUp before
// expecting data.
func StartPrometheus(t TB, targets []string) *Prometheus {
	t.Helper()
	return StartPrometheusWith(t, targets, PrometheusOptions{})
}

// PrometheusOptions change how the harness Prometheus scrapes.
type PrometheusOptions struct {
	// BearerToken, if set, is sent as "Authorization: Bearer ..." to every
	// target (bg's admin /metrics needs it; backends ignore it).
	BearerToken string
}

// StartPrometheusWith is StartPrometheus with options.
func StartPrometheusWith(t TB, targets []string, o PrometheusOptions) *Prometheus {
	t.Helper()
	bin := prometheusBinary(t)
	// A freshly picked port can be taken before Prometheus binds it; retry
	// with a new port rather than flake.
	var lastErr error
	for attempt := 0; attempt < 3; attempt++ {
		pr := &Prometheus{
			t:     t,
			addr:  "127.0.0.1:" + strconv.Itoa(FreePort(t)),
			dir:   t.TempDir(),
			probe: &http.Client{Timeout: 2 * time.Second},
		}
		if err := pr.writeTargets(targets); err != nil {
			t.Fatalf("harness: prometheus targets: %v", err)
		}
		cfg := filepath.Join(pr.dir, "prometheus.yml")
		if err := os.WriteFile(cfg, promConfig(filepath.Join(pr.dir, "targets.json"), o.BearerToken), 0o644); err != nil {
			t.Fatalf("harness: prometheus config: %v", err)
		}
		args := []string{
			"--config.file=" + cfg,
			"--web.listen-address=" + pr.addr,
			"--storage.tsdb.path=" + t.TempDir(),
			// Debian's defaults point at /etc/prometheus; the harness needs no
			// consoles, and an empty dir keeps other builds working too.
			"--web.console.templates=" + pr.dir,
			"--web.console.libraries=" + pr.dir,
		}
		pr.p = newProc(t, fmt.Sprintf("prometheus-%d", attempt), bin, args, nil)
		t.Cleanup(pr.Stop)
		if lastErr = pr.start(); lastErr == nil {
			return pr
		}
		pr.p.kill()
		t.Logf("harness: prometheus attempt %d failed: %v", attempt+1, lastErr)
	}
	t.Fatalf("harness: prometheus did not start: %v", lastErr)
	return nil
}

// promConfig is JSON, which is valid YAML and needs no quoting rules.
// scrape_timeout must not exceed the 1 s interval (the default is 10 s).
func promConfig(targetsFile, bearerToken string) []byte {
	job := map[string]any{
		"job_name": "bg-e2e",
		"file_sd_configs": []any{map[string]any{
			"files": []string{targetsFile},
			// A backstop: file_sd also watches the file with inotify.
			"refresh_interval": "1s",
		}},
	}
	if bearerToken != "" {
		job["authorization"] = map[string]any{"type": "Bearer", "credentials": bearerToken}
	}
	cfg := map[string]any{
		"global": map[string]any{
			"scrape_interval":     "1s",
			"scrape_timeout":      "1s",
			"evaluation_interval": "1s",
		},
		"scrape_configs": []any{job},
	}
	b, _ := json.MarshalIndent(cfg, "", "  ")
	return b
}

// Addr is the HTTP address, host:port.
func (pr *Prometheus) Addr() string { return pr.addr }

// URL is the base URL for API clients, e.g. http://127.0.0.1:41234.
func (pr *Prometheus) URL() string { return "http://" + pr.addr }

// LogPath is the server's log file (appended across restarts).
func (pr *Prometheus) LogPath() string { return pr.p.logPath }

// SetTargets replaces the scraped targets without a restart. file_sd reads
// the file at once, but the scrape manager applies target changes on a fixed
// 5 s tick (no flag in 2.42): measured 5.3 s until a new target is up.
func (pr *Prometheus) SetTargets(targets []string) {
	pr.t.Helper()
	if err := pr.writeTargets(targets); err != nil {
		pr.t.Fatalf("harness: prometheus targets: %v", err)
	}
}

// Targets is the current target list.
func (pr *Prometheus) Targets() []string {
	pr.mu.Lock()
	defer pr.mu.Unlock()
	return append([]string(nil), pr.targets...)
}

// writeTargets writes a temp file and renames it, so Prometheus never reads
// a half-written list.
func (pr *Prometheus) writeTargets(targets []string) error {
	pr.mu.Lock()
	defer pr.mu.Unlock()
	groups := []map[string]any{}
	if len(targets) > 0 {
		groups = append(groups, map[string]any{"targets": targets})
	}
	b, err := json.Marshal(groups)
	if err != nil {
		return err
	}
	tmp := filepath.Join(pr.dir, ".targets.json.tmp")
	if err := os.WriteFile(tmp, b, 0o644); err != nil {
		return err
	}
	if err := os.Rename(tmp, filepath.Join(pr.dir, "targets.json")); err != nil {
		return err
	}
	pr.targets = append([]string(nil), targets...)
	return nil
}

// Stop sends SIGTERM and waits, with SIGKILL after 10 s. The TSDB and its
// WAL stay, so Start brings the scraped history back.
func (pr *Prometheus) Stop() {
	pr.p.stop(10 * time.Second)
}

// Start restarts a stopped server on the same port, config and data dir.
func (pr *Prometheus) Start() {
	pr.t.Helper()
	if err := pr.start(); err != nil {
		pr.t.Fatalf("harness: prometheus restart: %v", err)
	}
}

// start waits for /-/ready, which answers 503 until the TSDB is open (WAL
// replayed) and the scrape manager runs.
func (pr *Prometheus) start() error {
	return pr.p.startReady("prometheus", promStartTimeout, 20*time.Millisecond, pr.ready)
}

func (pr *Prometheus) ready() error {
	resp, err := pr.probe.Get(pr.URL() + "/-/ready")
	if err != nil {
		return err
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("/-/ready: %s", resp.Status)
	}
	return nil
}

// WaitTargetsUp waits until every current target has been scraped
// successfully, i.e. queries over them have data. Measured: 5.2 s after a
// fresh start, 6 s after Start (the scrape manager's 5 s reload tick).
func (pr *Prometheus) WaitTargetsUp(timeout time.Duration) {
	pr.t.Helper()
	want := pr.Targets()
	deadline := time.Now().Add(timeout)
	var last error
	for {
		if last = pr.targetsUp(want); last == nil {
			return
		}
		if time.Now().After(deadline) {
			pr.t.Fatalf("harness: prometheus targets not up after %v: %v", timeout, last)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// WaitScrapedAfter waits until every current target is up and was last
// scraped after t0, so instant queries see every sample counted before t0
// (a counter read earlier may lag its target by up to a scrape interval).
func (pr *Prometheus) WaitScrapedAfter(t0 time.Time, timeout time.Duration) {
	pr.t.Helper()
	want := pr.Targets()
	deadline := time.Now().Add(timeout)
	for {
		last, err := pr.scrapes()
		if err == nil {
			for _, w := range want {
				if at, ok := last[w]; !ok || !at.After(t0) {
					err = fmt.Errorf("target %s last scraped at %s, not after %s", w, at.Format(time.RFC3339Nano), t0.Format(time.RFC3339Nano))
					break
				}
			}
		}
		if err == nil {
			return
		}
		if time.Now().After(deadline) {
			pr.t.Fatalf("harness: prometheus: %v (after %v)", err, timeout)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// scrapes returns each healthy target's last scrape start.
func (pr *Prometheus) scrapes() (map[string]time.Time, error) {
	resp, err := pr.probe.Get(pr.URL() + "/api/v1/targets?state=active")
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	var body struct {
		Data struct {
			ActiveTargets []struct {
				ScrapeURL  string    `json:"scrapeUrl"`
				Health     string    `json:"health"`
				LastScrape time.Time `json:"lastScrape"`
			} `json:"activeTargets"`
		} `json:"data"`
	}
	if err := json.NewDecoder(resp.Body).Decode(&body); err != nil {
		return nil, fmt.Errorf("/api/v1/targets: %w", err)
	}
	out := map[string]time.Time{}
	for _, at := range body.Data.ActiveTargets {
		if at.Health == "up" {
			out[strings.TrimSuffix(strings.TrimPrefix(at.ScrapeURL, "http://"), "/metrics")] = at.LastScrape
		}
	}
	return out, nil
}

// InstantQueries is how many instant queries (/api/v1/query) the server
// has answered since it started, from its own /metrics.
func (pr *Prometheus) InstantQueries() (float64, error) {
	resp, err := pr.probe.Get(pr.URL() + "/metrics")
	if err != nil {
		return 0, err
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		return 0, err
	}
	sum := 0.0
	for _, line := range strings.Split(string(body), "\n") {
		if !strings.HasPrefix(line, "prometheus_http_requests_total{") || !strings.Contains(line, `handler="/api/v1/query"`) {
			continue
		}
		f := strings.Fields(line)
		v, err := strconv.ParseFloat(f[len(f)-1], 64)
		if err != nil {
			return 0, fmt.Errorf("/metrics: %q: %w", line, err)
		}
		sum += v
	}
	return sum, nil
}

// Query runs an instant PromQL query at at and returns its vector, e.g. to
// show what bg read at some moment.
func (pr *Prometheus) Query(expr string, at time.Time) (model.Vector, error) {
	c, err := api.NewClient(api.Config{Address: pr.URL()})
	if err != nil {
		return nil, err
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	v, _, _, err := v1.NewAPI(c).Query(ctx, expr, at)
	if err != nil {
		return nil, err
	}
	vec, ok := v.(model.Vector)
	if !ok {
		return nil, fmt.Errorf("%s: got %v, want a vector", expr, v.Type())
	}
	return vec, nil
}

func (pr *Prometheus) targetsUp(want []string) error {
	resp, err := pr.probe.Get(pr.URL() + "/api/v1/targets?state=active")
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	var body struct {
		Data struct {
			ActiveTargets []struct {
				ScrapeURL string `json:"scrapeUrl"`
				Health    string `json:"health"`
				LastError string `json:"lastError"`
			} `json:"activeTargets"`
		} `json:"data"`
	}
	if err := json.NewDecoder(resp.Body).Decode(&body); err != nil {
		return fmt.Errorf("/api/v1/targets: %w", err)
	}
	health := map[string]string{}
	for _, at := range body.Data.ActiveTargets {
		h := at.Health
		if at.LastError != "" {
			h += " (" + at.LastError + ")"
		}
		health[strings.TrimSuffix(strings.TrimPrefix(at.ScrapeURL, "http://"), "/metrics")] = h
	}
	for _, w := range want {
		if h := health[w]; h != "up" {
			return fmt.Errorf("target %s: %q", w, h)
		}
	}
	return nil
}

// prometheusBinary finds prometheus: $BG_PROMETHEUS_BIN, then PATH.
// Missing: fatal under CI=true (CI must install it), else skip.
func prometheusBinary(t TB) string {
	t.Helper()
	if p := os.Getenv("BG_PROMETHEUS_BIN"); p != "" {
		if _, err := os.Stat(p); err != nil {
			t.Fatalf("harness: BG_PROMETHEUS_BIN=%s: %v", p, err)
		}
		return p
	}
	if p, err := exec.LookPath("prometheus"); err == nil {
		return p
	}
	msg := "harness: prometheus binary not found (BG_PROMETHEUS_BIN, PATH); run scripts/install-test-deps.sh"
	if strings.EqualFold(os.Getenv("CI"), "true") {
		t.Fatalf("%s", msg)
	}
	t.Skipf("%s", msg)
	return ""
}
