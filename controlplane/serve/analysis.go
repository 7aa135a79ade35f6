package serve

import (
	"fmt"
	"log/slog"
	"net/http"
	"time"

	commoncfg "github.com/prometheus/common/config"

	promclient "github.com/prometheus/client_golang/prometheus"

	"github.com/bgctl/bg/controlplane/config"
	"github.com/bgctl/bg/controlplane/fleetmetrics/prometheus"
	"github.com/bgctl/bg/controlplane/model"
)

// analysis builds each service's default plan and, when Prometheus is
// configured, the source that judges switches. A nil source means
// progressive switches are refused with a clear error.
func analysis(cfg *config.Config, log *slog.Logger, reg promclient.Registerer) (*prometheus.Source, map[string]model.Plan, error) {
	plans, templates := plansOf(cfg)
	if cfg.Prometheus.Address == "" {
		log.Info("prometheus.address not set: progressive switches are disabled, --instant still works")
		return nil, plans, nil
	}
	var rt http.RoundTripper
	if h := cfg.Prometheus.HTTP; h.Configured() {
		// Prometheus's own HTTP client config: CA and certificate files
		// re-read when they change, the bearer token or password file on
		// every request.
		var err error
		if rt, err = commoncfg.NewRoundTripperFromConfig(h.ClientConfig(), "bg-prometheus"); err != nil {
			return nil, nil, fmt.Errorf("prometheus.http: %w", err)
		}
	}
	src, err := prometheus.New(cfg.Prometheus.Address, templates, log, rt)
	if err != nil {
		return nil, nil, err
	}
	if err := src.Register(reg); err != nil {
		return nil, nil, err
	}
	return src, plans, nil
}

// plansOf is each service's default plan and PromQL templates.
func plansOf(cfg *config.Config) (map[string]model.Plan, map[string]prometheus.Templates) {
	plans := map[string]model.Plan{}
	templates := map[string]prometheus.Templates{}
	for _, s := range cfg.Services {
		a := s.Analysis
		plans[s.Name] = model.Plan{
			Steps: append([]int(nil), a.Steps...), Bake: model.Duration(a.Bake), Interval: model.Duration(a.Interval),
			MinRequests: a.MinRequests, Confidence: a.Confidence, Margin: a.Margin,
			UnavailableBudget: model.Duration(a.UnavailableBudget), OnUnavailable: string(a.OnUnavailable),
			InsufficientBudget: model.Duration(a.InsufficientBudget), OnInsufficient: string(a.OnInsufficient),
			Rollback: string(a.Rollback), Gates: s.ModelGates(), Dark: s.Mirror.Percent > 0,
		}
		t := prometheus.Templates{Requests: a.Requests, Errors: a.Errors}
		if l := a.Latency; l.Enabled {
			unit := time.Millisecond
			if l.Unit == "s" {
				unit = time.Second
			}
			p := plans[s.Name]
			p.Latency = &model.LatencyPlan{Quantile: l.Quantile, Relative: l.Relative, Absolute: model.Duration(l.Absolute), Unit: model.Duration(unit)}
			plans[s.Name] = p
			t.Latency = l.Query
		}
		templates[s.Name] = t
	}
	return plans, templates
}
