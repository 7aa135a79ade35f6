package traffic

import (
	"context"
	"fmt"

	apiv1 "github.com/bgctl/bg/controlplane/api/v1"
	"github.com/bgctl/bg/controlplane/fleetmetrics"
	"github.com/bgctl/bg/controlplane/judge"
	"github.com/bgctl/bg/controlplane/model"
)

// FleetSample and DryRunReport are the admin API's wire types.
type (
	FleetSample  = apiv1.FleetSample
	DryRunReport = apiv1.DryRunReport
)

// DryRun validates the plan and reads both fleets' counters once (their
// totals so far); nothing changes. Without req.To it shows a switch to the idle colour, as Switch
// would run it.
func (c *Controller) DryRun(ctx context.Context, req Request) (DryRunReport, error) {
	t, err := c.traffic(req.Service)
	if err != nil {
		return DryRunReport{}, err
	}
	p, err := c.plan(req.Service, req.Plan)
	if err != nil {
		return DryRunReport{}, err
	}
	if req.To == "" {
		if req.To, err = idleColor(t); err != nil {
			return DryRunReport{}, err
		}
	}
	from := t.Serving()
	if from == "" {
		from = t.Stable
	}
	rep := DryRunReport{Service: req.Service, From: from, To: req.To, Plan: p,
		Candidate: FleetSample{Color: req.To}, Baseline: FleetSample{Color: from}}
	// One read of each fleet's counters shows the queries answer; a switch
	// counts from its own start, so there is no verdict to give here.
	cand, base, err := c.read(ctx, req.Service, from, req.To, p, false)
	for _, x := range []struct {
		fs *FleetSample
		r  fleetmetrics.Reading
	}{{&rep.Candidate, cand}, {&rep.Baseline, base}} {
		switch {
		case err != nil:
			x.fs.Error = err.Error()
		case len(x.r.Requests) == 0:
			x.fs.Error = "no request series: the fleet has had no traffic, or Prometheus does not scrape it"
		default:
			x.fs.Sample = &judge.Sample{Requests: total(x.r.Requests), Errors: total(x.r.Errors)}
			x.fs.Series = len(x.r.Requests)
		}
	}
	return rep, nil
}

func total(m map[string]float64) float64 {
	sum := 0.0
	for _, v := range m {
		sum += v
	}
	return sum
}

// idleColor is where a switch without a colour goes: the colour not
// serving any traffic. Deciding it here, in one place, keeps every client
// in agreement. While a switch or roll runs there is no idle colour (the
// answer is the running switch, as for any second switch); neither is
// there while traffic is split.
func idleColor(t model.Traffic) (model.Color, error) {
	switch {
	case t.ProgressiveRunning() || t.RollRunning():
		return "", busyAny(t)
	case t.Serving() == "":
		return "", fmt.Errorf("%w: traffic is split; name the colour with --to", ErrBadPlan)
	}
	return t.Serving().Other(), nil
}
