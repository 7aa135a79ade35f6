package traffic

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"time"

	apiv1 "github.com/bgctl/bg/controlplane/api/v1"
	"github.com/bgctl/bg/controlplane/gate"
	"github.com/bgctl/bg/controlplane/model"
	"github.com/bgctl/bg/controlplane/window"
)

// Errors of the release controls.
var (
	ErrWindowClosed = errors.New("outside the deploy windows")
	ErrGateFailed   = errors.New("a gate failed")
	ErrNeedsReason  = errors.New("--force needs --reason")
	ErrNoPreview    = errors.New("nothing to preview")
)

// SetWindows gives services their deploy windows (nil or absent: always open).
func (c *Controller) SetWindows(ws map[string]*window.Schedule) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.windows = ws
}

// WindowStatus says whether a switch may start now and, if not, when
// (the admin API's wire type).
type WindowStatus = apiv1.WindowStatus

func (c *Controller) windowStatus(name string, now time.Time) *WindowStatus {
	c.mu.Lock()
	sch := c.windows[name]
	c.mu.Unlock()
	if sch == nil {
		return nil
	}
	d := sch.At(now)
	return &WindowStatus{Open: d.Open, Reason: d.Reason, NextOpen: d.NextOpen, Schedule: sch.String()}
}

// checkWindow refuses to start a switch while the service's windows are closed.
func (c *Controller) checkWindow(name string) error {
	ws := c.windowStatus(name, c.now())
	if ws == nil || ws.Open {
		return nil
	}
	next := "no open time within 400 days"
	if !ws.NextOpen.IsZero() {
		next = "next open " + ws.NextOpen.Format(time.RFC3339)
	}
	c.m.windowRefusals.Add(name, "", 1)
	return fmt.Errorf("%w: %s is %s; %s (use --force --reason to override)", ErrWindowClosed, name, ws.Reason, next)
}

// overrideKey marks a forced command; its text goes into the history entry.
type overrideKey struct{}

func withOverride(ctx context.Context, text string) context.Context {
	return context.WithValue(ctx, overrideKey{}, text)
}

func overrideFrom(ctx context.Context) string {
	s, _ := ctx.Value(overrideKey{}).(string)
	return s
}

// forced checks that a forced command gives its reason and marks ctx so the
// change is recorded as an override.
func (c *Controller) forced(ctx context.Context, req Request, command, skips string) (context.Context, error) {
	if !req.Force {
		return ctx, nil
	}
	if strings.TrimSpace(req.Reason) == "" {
		return ctx, fmt.Errorf("%w: say why this %s overrides %s", ErrNeedsReason, command, skips)
	}
	c.log.Warn("override: "+command+" --force", "service", req.Service, "skips", skips, "reason", req.Reason)
	return withOverride(ctx, fmt.Sprintf("%s --force: %s skipped (%s)", command, skips, req.Reason)), nil
}

// callGates calls every gate of a stage at once and returns their results.
func (c *Controller) callGates(ctx context.Context, name string, t model.Traffic, stage string, gates []model.Gate) []model.GateResult {
	p := gate.Payload{Service: name, Stage: stage, Generation: t.Generation, To: t.Target, From: t.Stable, Percent: t.Percent(t.Target), Step: 1, Steps: 1}
	if r := t.Rollout; r != nil {
		p.Switch, p.From, p.To, p.Step, p.Steps, p.Percent = r.ID, r.From, r.To, r.Step+1, len(r.Plan.Steps), t.Percent(r.To)
	}
	out := make([]model.GateResult, len(gates))
	var wg sync.WaitGroup
	for i, g := range gates {
		wg.Add(1)
		go func() {
			defer wg.Done()
			c.mu.Lock()
			caller := c.gates
			c.mu.Unlock()
			out[i] = caller.Call(ctx, g, p)
			result := "passed"
			if !out[i].Passed {
				result = "failed"
				c.log.Warn("gate failed", "service", name, "gate", g.Name, "stage", stage, "status", out[i].Status, "detail", out[i].Detail)
			}
			c.m.gateCalls.WithLabelValues(name, g.Name, stage, result).Inc()
		}()
	}
	wg.Wait()
	return out
}

// preGatesInstant runs the pre gates before an instant switch: a failure
// refuses the switch and nothing moves.
func (c *Controller) preGatesInstant(ctx context.Context, req Request) error {
	c.mu.Lock()
	gates := c.plans[req.Service].GatesAt(model.GatePre)
	s := c.services[req.Service]
	var t model.Traffic
	if s != nil {
		t = s.traffic
	}
	c.mu.Unlock()
	if len(gates) == 0 {
		return nil
	}
	t.Target = req.To
	t.Stable = t.Serving()
	for _, res := range c.callGates(ctx, req.Service, t, model.GatePre, gates) {
		if !res.Passed {
			return fmt.Errorf("%w: %s; nothing was changed (use --force --reason to override)", ErrGateFailed, res)
		}
	}
	return nil
}

// PreviewRequest turns canary pools and mirroring on towards a colour
// before a switch, or off.
type PreviewRequest struct {
	Service string
	To      model.Color // "" = the idle colour
	Off     bool
	Force   bool // allow a colour without passing instances
	Reason  string
	Timeout time.Duration
}

// Preview points a service's pools and mirroring at a colour (or stops them).
func (c *Controller) Preview(ctx context.Context, req PreviewRequest) (Result, error) {
	s, err := c.lookup(req.Service)
	if err != nil {
		return Result{}, err
	}
	if err := c.refuseRetiring(s, "a preview"); err != nil {
		return Result{}, err
	}
	ctx, err = c.forced(ctx, Request{Service: req.Service, Force: req.Force, Reason: req.Reason}, "preview", "the empty-fleet check")
	if err != nil {
		return Result{}, err
	}
	svc := c.effective(s)
	if !req.Off && (svc.Stateful() || len(svc.Pools) == 0 && svc.MirrorPercent == 0) {
		return Result{}, fmt.Errorf("%w: %s has no pools or mirror configured (a rolling service has none)", ErrNoPreview, req.Service)
	}
	reason := req.Reason
	return c.apply(ctx, Request{Service: req.Service, Force: req.Force, Timeout: req.Timeout}, func(t model.Traffic) (model.Traffic, bool, model.Color, error) {
		to := req.To
		if req.Off {
			if t.Preview == "" {
				return t, false, "", nil
			}
			next := t
			next.Preview, next.Generation = "", t.Generation+1
			next.Reason = orDefault(reason, "preview off")
			return next, true, "", nil
		}
		if to == "" {
			if t.Serving() == "" {
				return t, false, "", fmt.Errorf("%w: traffic is split; name the colour with --to", ErrBadPlan)
			}
			to = t.Serving().Other()
		}
		if t.Serving() == to {
			return t, false, "", fmt.Errorf("%w: %s already serves all of %s; preview the idle colour", ErrBadPlan, to, req.Service)
		}
		if t.Preview == to {
			return t, false, to, nil
		}
		next := t
		next.Preview, next.Generation = to, t.Generation+1
		next.Reason = orDefault(reason, "preview "+string(to)+": pools and mirroring on")
		return next, true, to, nil
	})
}
