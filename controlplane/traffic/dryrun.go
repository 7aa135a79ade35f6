package traffic

import (
	"context"

	"github.com/bgctl/bg/controlplane/judge"
	"github.com/bgctl/bg/controlplane/model"
)

// FleetSample is one fleet's counts, or why they could not be read.
type FleetSample struct {
	Color  model.Color   `json:"color"`
	Sample *judge.Sample `json:"sample,omitempty"`
	Error  string        `json:"error,omitempty"`
}

// DryRunReport is what a switch would do, with each query run once.
type DryRunReport struct {
	Service   string         `json:"service"`
	From      model.Color    `json:"from"`
	To        model.Color    `json:"to"`
	Plan      model.Plan     `json:"plan"`
	Candidate FleetSample    `json:"candidate"`
	Baseline  FleetSample    `json:"baseline"`
	Verdict   *judge.Verdict `json:"verdict,omitempty"`
}

// DryRun validates the plan and runs both fleets' queries once; nothing changes.
func (c *Controller) DryRun(ctx context.Context, req Request) (DryRunReport, error) {
	t, err := c.traffic(req.Service)
	if err != nil {
		return DryRunReport{}, err
	}
	p, err := c.plan(req.Service, req.Plan)
	if err != nil {
		return DryRunReport{}, err
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
