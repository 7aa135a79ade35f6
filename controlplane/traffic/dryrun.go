package traffic

import (
	"context"
	"fmt"

	apiv1 "github.com/bgctl/bg/controlplane/api/v1"
	"github.com/bgctl/bg/controlplane/judge"
	"github.com/bgctl/bg/controlplane/model"
)

// FleetSample and DryRunReport are the admin API's wire types.
type (
	FleetSample  = apiv1.FleetSample
	DryRunReport = apiv1.DryRunReport
)

// DryRun validates the plan and runs both fleets' queries once; nothing
// changes. Without req.To it shows a switch to the idle colour, as Switch
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
	read := func(fs *FleetSample) {
		smp, err := c.sampleOne(ctx, req.Service, fs.Color, p)
		if err != nil {
			fs.Error = err.Error()
			return
		}
		fs.Sample = &smp
	}
	read(&rep.Candidate)
	read(&rep.Baseline)
	if rep.Candidate.Sample != nil && rep.Baseline.Sample != nil {
		v := judge.Judge(*rep.Candidate.Sample, *rep.Baseline.Sample, judge.Params{Confidence: p.Confidence, Margin: p.Margin, MinRequests: p.MinRequests})
		rep.Verdict = &v
	}
	return rep, nil
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
