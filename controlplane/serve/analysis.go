package serve

import (
	"log/slog"

	promclient "github.com/prometheus/client_golang/prometheus"

	"github.com/bgctl/bg/controlplane/config"
	"github.com/bgctl/bg/controlplane/fleetmetrics"
	"github.com/bgctl/bg/controlplane/fleetmetrics/prometheus"
	"github.com/bgctl/bg/controlplane/model"
)

// analysis builds each service's default plan and, when Prometheus is
// configured, the source that judges switches. A nil source means
// progressive switches are refused with a clear error.
func analysis(cfg *config.Config, log *slog.Logger, reg promclient.Registerer) (fleetmetrics.Source, map[string]model.Plan, error) {
	plans := map[string]model.Plan{}
	templates := map[string]prometheus.Templates{}
	for _, s := range cfg.Services {
		a := s.Analysis
		plans[s.Name] = model.Plan{
			Steps: append([]int(nil), a.Steps...), Bake: model.Duration(a.Bake), Interval: model.Duration(a.Interval),
			Window: model.Duration(a.Window), MinRequests: a.MinRequests, Confidence: a.Confidence, Margin: a.Margin,
			UnavailableBudget: model.Duration(a.UnavailableBudget), OnUnavailable: string(a.OnUnavailable), Rollback: string(a.Rollback),
			Gates: s.ModelGates(), Dark: s.Mirror.Percent > 0,
		}
		templates[s.Name] = prometheus.Templates{Requests: a.Requests, Errors: a.Errors}
	}
	if cfg.Prometheus.Address == "" {
		log.Info("prometheus.address not set: progressive switches are disabled, --instant still works")
		return nil, plans, nil
	}
	src, err := prometheus.New(cfg.Prometheus.Address, templates, log)
	if err != nil {
		return nil, nil, err
	}
	if err := src.Register(reg); err != nil {
		return nil, nil, err
	}
	return src, plans, nil
}
