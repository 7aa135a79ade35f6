package e2e

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/api"
	v1 "github.com/prometheus/client_golang/api/prometheus/v1"
	"github.com/prometheus/common/model"

	"github.com/bgctl/bg/e2e/harness"
)

// dashboardPath is the Grafana dashboard shipped with bg.
const dashboardPath = "../dashboards/bg.json"

// dashboardVars are what Grafana substitutes in the dashboard's queries:
// $service by a regex matching the e2e service, intervals by fixed windows
// a 1 s scrape fills.
var dashboardVars = []struct{ from, to string }{
	{"${service}", service},
	{"$service", service},
	{"${__rate_interval}", "30s"},
	{"$__rate_interval", "30s"},
	{"${__interval}", "15s"},
	{"$__interval", "15s"},
	{"${__range}", "5m"},
	{"$__range", "5m"},
}

// dashboardExpr is one PromQL expression found in the dashboard.
type dashboardExpr struct {
	where string // e.g. `panel "Traffic split" A` or `annotation "Rollbacks"`
	expr  string // as substituted
}

// newDashboardStack is newStackWith(blue, green, e2eAnalysis, latency
// judged) whose Prometheus also scrapes bg's own /metrics (it needs the
// admin token). Latency is judged so the judged-latency panels have data.
func newDashboardStack(t *testing.T, blue, green int) *stack {
	t.Helper()
	s := &stack{t: t, consul: harness.StartConsul(t), bin: harness.BuildBG(t), backends: map[string]*harness.Backend{}, token: "e2e-secret"}
	for i := 1; i <= blue; i++ {
		s.addBackend("blue", i, "v1")
	}
	for i := 1; i <= green; i++ {
		s.addBackend("green", i, "v2")
	}
	s.xdsAddr = fmt.Sprintf("127.0.0.1:%d", harness.FreePort(t))
	s.admin = fmt.Sprintf("127.0.0.1:%d", harness.FreePort(t))
	var targets []string
	for _, b := range s.backends {
		targets = append(targets, b.MetricsAddr())
	}
	s.prom = harness.StartPrometheusWith(t, targets, harness.PrometheusOptions{BearerToken: s.token})
	s.prom.WaitTargetsUp(30 * time.Second)
	path := harness.WriteBGConfig(t, harness.BGConfig{ConsulAddr: s.consul.HTTPAddr(), XDSAddr: s.xdsAddr, AdminAddr: s.admin,
		Token: s.token, Service: service, PrometheusURL: s.prom.URL(), Analysis: e2eAnalysis, Latency: true})
	s.bg = harness.StartBG(t, harness.BGOptions{Bin: s.bin, Config: path, AdminAddr: s.admin, Token: s.token})
	s.prom.SetTargets(append(targets, s.admin))
	return s
}

// TestDashboardQueries runs every query of dashboards/bg.json against a
// real Prometheus scraping bg and the demo backends, after a promoted
// switch, an abort and a rollback: each must parse and return data.
func TestDashboardQueries(t *testing.T) {
	exprs, panels := loadDashboard(t)
	if len(exprs) == 0 {
		t.Fatal("no expressions found in the dashboard")
	}
	s := newDashboardStack(t, 2, 2)
	s.prom.WaitTargetsUp(30 * time.Second) // bg's /metrics too: proves the token reaches it
	s.startClients(2)
	s.expectAll("blue", 20*time.Second)

	if code, rep, errOut := s.startWait(t, "--to", "green")(); code != 0 || rep.Switch == nil || rep.Switch.Phase != "promoted" {
		t.Fatalf("healthy switch: exit %d, report %+v, stderr %s", code, rep.Switch, errOut)
	}
	s.expectAll("green", 10*time.Second)
	s.mustCLI("abort", service)
	s.expectAll("blue", 10*time.Second)

	wait := s.startWait(t, "--to", "green", "--bake", "3s")
	s.waitSwitch(t, 30*time.Second, "second step", func(st statusJSON) bool {
		return st.Switch != nil && st.Switch.Step == 1 && st.Weights.Green == 50
	})
	s.setGreenFailRatio(0.2)
	code, rep, errOut := wait()
	s.setGreenFailRatio(0)
	if code != 10 || rep.Switch == nil || rep.Switch.Phase != "rolled_back" {
		t.Fatalf("failing switch: exit %d, report %+v, stderr %s", code, rep.Switch, errOut)
	}
	s.waitSwitch(t, 20*time.Second, "rollback confirmed", func(st statusJSON) bool {
		return st.Switch != nil && !st.Switch.ConfirmedAt.IsZero()
	})

	c, err := api.NewClient(api.Config{Address: s.prom.URL()})
	if err != nil {
		t.Fatal(err)
	}
	papi := v1.NewAPI(c)
	// The release panels show running releases only: they are checked
	// below, while a release runs.
	var pending, releasePanels []dashboardExpr
	for _, e := range exprs {
		if strings.Contains(e.expr, "bg_release_member_phase") {
			releasePanels = append(releasePanels, e)
		} else {
			pending = append(pending, e)
		}
	}
	if len(releasePanels) == 0 {
		t.Fatal("no release panel in the dashboard")
	}
	waitSeries(t, papi, pending)
	// The new series count what happened: 3 + 2 steps, one abort, one
	// failed analysis, a measured candidate error ratio, and the last
	// switch's evidence (its error test failed it at the threshold,
	// 1/(1-confidence)) and judged latency quantiles.
	for _, want := range []struct {
		expr string
		min  float64
	}{
		{`bg_switch_steps_total{service="web"}`, 5},
		{`bg_rollbacks_total{service="web",reason="aborted"}`, 1},
		{`bg_rollbacks_total{service="web",reason="analysis_failed"}`, 1},
		{`bg_analysis_error_ratio{service="web",role="candidate"}`, 0},
		{`bg_switch_phase{service="web",phase="rolled_back"}`, 1},
		{`bg_prometheus_query_errors_total{service="web"}`, 0},
		{`bg_analysis_evidence{service="web",test="errors"}`, 99.9}, // 1/(1-0.99) is 99.99999999999991 in float64
		{`bg_analysis_evidence{service="web",test="latency"}`, 0},
		{`bg_analysis_evidence_threshold{service="web"}`, 99.9},
		{`bg_analysis_latency_quantile_seconds{service="web",role="candidate"}`, 1e-9},
		{`bg_analysis_latency_quantile_seconds{service="web",role="baseline"}`, 1e-9},
	} {
		v, _, _, err := papi.Query(context.Background(), want.expr, time.Now())
		vec, _ := v.(model.Vector)
		if err != nil || len(vec) != 1 || float64(vec[0].Value) < want.min {
			t.Fatalf("%s = %v (err %v), want one series ≥ %v", want.expr, v, err, want.min)
		}
		t.Logf("%s = %v", want.expr, vec[0].Value)
	}
	// A release of web (to green, healthy now): its panel has a series
	// while it runs.
	s.mustCLI("release", "start", "dash", "--services", service, "--to", "green")
	waitSeries(t, papi, releasePanels)
	t.Logf("dashboard %s: %d panels, %d expressions checked; every one parses and returns ≥ 1 series", filepath.Base(dashboardPath), panels, len(exprs))
}

// waitSeries queries each expression until every one returns a series.
// Series appear with bg's next scrapes (1 s) and a rate needs two samples
// in its window, so the empty ones are retried for a while. A parse error
// fails at once.
func waitSeries(t *testing.T, papi v1.API, pending []dashboardExpr) {
	t.Helper()
	total := len(pending)
	deadline := time.Now().Add(30 * time.Second)
	for len(pending) > 0 {
		var still []dashboardExpr
		var why []string
		for _, e := range pending {
			ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
			v, warns, _, err := papi.Query(ctx, e.expr, time.Now())
			cancel()
			if err != nil {
				t.Fatalf("%s: query error: %v\n  expr: %s", e.where, err, e.expr)
			}
			for _, w := range warns {
				t.Logf("%s: warning: %s", e.where, w)
			}
			if n := seriesCount(v); n == 0 {
				still = append(still, e)
				why = append(why, fmt.Sprintf("%s returned no series\n  expr: %s", e.where, e.expr))
			}
		}
		pending = still
		if len(pending) > 0 && time.Now().After(deadline) {
			t.Fatalf("%d of %d dashboard expressions return nothing:\n%s", len(pending), total, strings.Join(why, "\n"))
		}
		if len(pending) > 0 {
			time.Sleep(500 * time.Millisecond)
		}
	}
}

func seriesCount(v model.Value) int {
	switch v := v.(type) {
	case model.Vector:
		return len(v)
	case model.Matrix:
		return len(v)
	case *model.Scalar, *model.String:
		return 1
	}
	return 0
}

// TestDashboardStructure checks what Grafana needs without a stack: uid,
// schema, variables, and that every query uses the datasource variable.
func TestDashboardStructure(t *testing.T) {
	exprs, panels := loadDashboard(t)
	var d struct {
		UID           string `json:"uid"`
		SchemaVersion int    `json:"schemaVersion"`
		Templating    struct {
			List []struct {
				Name       string `json:"name"`
				Type       string `json:"type"`
				Query      any    `json:"query"`
				Definition string `json:"definition"`
				Multi      bool   `json:"multi"`
				IncludeAll bool   `json:"includeAll"`
			} `json:"list"`
		} `json:"templating"`
	}
	raw := readDashboard(t)
	if err := json.Unmarshal(raw, &d); err != nil {
		t.Fatal(err)
	}
	if d.UID != "bg" || d.SchemaVersion < 38 {
		t.Fatalf("uid %q schemaVersion %d, want bg and ≥ 38", d.UID, d.SchemaVersion)
	}
	vars := map[string]bool{}
	for _, v := range d.Templating.List {
		switch v.Name {
		case "datasource":
			vars[v.Name] = v.Type == "datasource" && v.Query == "prometheus"
		case "service":
			vars[v.Name] = v.Type == "query" && v.Multi && v.IncludeAll && strings.Contains(v.Definition, "label_values(bg_service_weight_percent, service)")
		}
	}
	if !vars["datasource"] || !vars["service"] {
		t.Fatalf("templating variables datasource/service missing or wrong: %+v", d.Templating.List)
	}
	// Every datasource reference is the variable, so the dashboard works
	// with whatever uid the Prometheus datasource has.
	dsRe := regexp.MustCompile(`"uid":\s*"([^"]*)"`)
	for _, m := range dsRe.FindAllStringSubmatch(string(raw), -1) {
		if u := m[1]; u != "${datasource}" && u != "-- Grafana --" && u != "bg" {
			t.Errorf("hard-coded datasource uid %q", u)
		}
	}
	t.Logf("%d panels, %d expressions", panels, len(exprs))
}

func readDashboard(t *testing.T) []byte {
	t.Helper()
	raw, err := os.ReadFile(dashboardPath)
	if err != nil {
		t.Fatal(err)
	}
	return raw
}

// loadDashboard returns every expr in the dashboard (panels, panels nested
// in rows, annotations), substituted, and the number of non-row panels.
func loadDashboard(t *testing.T) ([]dashboardExpr, int) {
	t.Helper()
	var d map[string]any
	if err := json.Unmarshal(readDashboard(t), &d); err != nil {
		t.Fatalf("%s: %v", dashboardPath, err)
	}
	var out []dashboardExpr
	panels := 0
	var walkPanels func(ps []any)
	walkPanels = func(ps []any) {
		for _, p := range ps {
			pm, _ := p.(map[string]any)
			if pm == nil {
				continue
			}
			title, _ := pm["title"].(string)
			if pm["type"] != "row" {
				panels++
			}
			targets, _ := pm["targets"].([]any)
			for _, tg := range targets {
				tm, _ := tg.(map[string]any)
				if e, _ := tm["expr"].(string); e != "" {
					ref, _ := tm["refId"].(string)
					out = append(out, dashboardExpr{where: fmt.Sprintf("panel %q %s", title, ref), expr: substitute(e)})
				}
			}
			nested, _ := pm["panels"].([]any)
			walkPanels(nested)
		}
	}
	ps, _ := d["panels"].([]any)
	walkPanels(ps)
	if a, _ := d["annotations"].(map[string]any); a != nil {
		list, _ := a["list"].([]any)
		for _, an := range list {
			am, _ := an.(map[string]any)
			name, _ := am["name"].(string)
			e, _ := am["expr"].(string)
			if tg, _ := am["target"].(map[string]any); e == "" && tg != nil {
				e, _ = tg["expr"].(string)
			}
			if e != "" {
				out = append(out, dashboardExpr{where: fmt.Sprintf("annotation %q", name), expr: substitute(e)})
			}
		}
	}
	return out, panels
}

func substitute(e string) string {
	for _, v := range dashboardVars {
		e = strings.ReplaceAll(e, v.from, v.to)
	}
	return e
}
