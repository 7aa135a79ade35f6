package traffic

import (
	"context"
	"fmt"
	"time"

	"github.com/bgctl/bg/controlplane/fleetmetrics"
	"github.com/bgctl/bg/controlplane/judge"
	"github.com/bgctl/bg/controlplane/model"
	"github.com/bgctl/bg/controlplane/rollout"
)

// SetAnalysis gives the controller its metrics source and each service's
// default plan. Without a source, progressive switches are refused.
func (c *Controller) SetAnalysis(src fleetmetrics.Source, plans map[string]model.Plan) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.source, c.plans = src, plans
}

// sample reads candidate and baseline over the plan's window.
func (c *Controller) sample(ctx context.Context, service string, r *model.Rollout) (cand, base judge.Sample, err error) {
	if cand, err = c.sampleOne(ctx, service, r.To, r.Plan); err != nil {
		return cand, base, err
	}
	base, err = c.sampleOne(ctx, service, r.From, r.Plan)
	return cand, base, err
}

// sampleOne reads one fleet's counts, bounded by the plan's interval.
func (c *Controller) sampleOne(ctx context.Context, service string, color model.Color, p model.Plan) (judge.Sample, error) {
	c.mu.Lock()
	src := c.source
	c.mu.Unlock()
	if src == nil {
		return judge.Sample{}, fmt.Errorf("%w: prometheus.address is not configured", fleetmetrics.ErrUnavailable)
	}
	ctx, cancel := context.WithTimeout(ctx, max(p.Interval.D(), minQueryTimeout))
	defer cancel()
	return src.Sample(ctx, fleetmetrics.Query{Service: service, Color: color, Window: p.Window.D()})
}

// minQueryTimeout keeps very short intervals from starving slow queries.
const minQueryTimeout = 2 * time.Second

// analyse runs one interval's analysis. Unreadable or invalid counts are
// "metrics unavailable", never a verdict.
func (c *Controller) analyse(ctx context.Context, service string, r *model.Rollout) rollout.Analysis {
	now := c.now()
	cand, base, err := c.sample(ctx, service, r)
	if err != nil {
		c.m.analyses.WithLabelValues(service, "unavailable").Inc()
		return rollout.Analysis{Now: now, Unavailable: err.Error()}
	}
	v := judge.Judge(cand, base, judge.Params{Confidence: r.Plan.Confidence, Margin: r.Plan.Margin, MinRequests: r.Plan.MinRequests})
	c.m.analyses.WithLabelValues(service, string(v.Outcome)).Inc()
	if v.Outcome == judge.Invalid {
		return rollout.Analysis{Now: now, Unavailable: "invalid counts: " + v.Reason}
	}
	c.m.setErrorRatios(service, v)
	return rollout.Analysis{Now: now, Verdict: v}
}
