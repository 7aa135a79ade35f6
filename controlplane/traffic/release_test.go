package traffic_test

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/bgctl/bg/controlplane/membership"
	"github.com/bgctl/bg/controlplane/model"
	"github.com/bgctl/bg/controlplane/state/memstate"
	"github.com/bgctl/bg/controlplane/traffic"
	"github.com/bgctl/bg/controlplane/window"
	"github.com/bgctl/bg/controlplane/xds"
)

func releaseController(t *testing.T, svc model.Service, plan *model.Plan) (*traffic.Controller, *memstate.Store) {
	t.Helper()
	store := memstate.New()
	c := traffic.New([]model.Service{svc}, "0.0.0.0", store, xds.NewServer(quiet, nil), quiet, traffic.NewMetrics(nil))
	if plan != nil {
		c.SetAnalysis(nil, map[string]model.Plan{svc.Name: *plan})
	}
	ctx := context.Background()
	c.OnMembership(membership.Update{Service: svc.Name, Membership: webMembership()})
	if err := c.LoadState(ctx); err != nil {
		t.Fatal(err)
	}
	if err := c.Publish(); err != nil {
		t.Fatal(err)
	}
	return c, store
}

func TestWindowsRefuseUnlessForced(t *testing.T) {
	now := time.Now()
	sch, err := window.Parse(window.Spec{TimeZone: "Europe/Berlin", Freeze: []window.Freeze{{
		From: now.Add(-time.Hour).Format(time.RFC3339), To: now.Add(time.Hour).Truncate(time.Second).Format(time.RFC3339), Reason: "release freeze",
	}}})
	if err != nil {
		t.Fatal(err)
	}
	c, store := releaseController(t, webService, nil)
	c.SetWindows(map[string]*window.Schedule{"web": sch})
	ctx := traffic.WithActor(context.Background(), "cli:alice@laptop")

	_, err = c.Switch(ctx, traffic.Request{Service: "web", To: model.Green, Instant: true})
	if !errors.Is(err, traffic.ErrWindowClosed) || !strings.Contains(err.Error(), `freeze "release freeze"`) || !strings.Contains(err.Error(), "next open") {
		t.Fatalf("switch in a freeze: %v", err)
	}
	if st, _ := c.Status("web"); st.Generation != 1 || st.Weights.Blue != 100 || st.Window == nil || st.Window.Open {
		t.Fatalf("refused switch changed state or status lacks the window: %+v", st)
	}
	if _, err := c.Switch(ctx, traffic.Request{Service: "web", To: model.Green, Force: true}); !errors.Is(err, traffic.ErrNeedsReason) {
		t.Fatalf("forced without a reason: %v", err)
	}
	// Forced, without --instant and without any Prometheus: it moves at once.
	res, err := c.Switch(ctx, traffic.Request{Service: "web", To: model.Green, Force: true, Reason: "INC-42", Timeout: time.Second})
	if err != nil || res.Status.Weights.Green != 100 {
		t.Fatalf("forced switch: %+v %v", res.Status.Weights, err)
	}
	e := store.Last()
	if e.Override != "switch --force: windows, gates and analysis skipped (INC-42)" || e.Actor != "cli:alice@laptop" || e.ToGreen != 100 {
		t.Fatalf("history entry %+v", e)
	}
	// Aborts are never held by windows.
	if _, err := c.Abort(ctx, traffic.Request{Service: "web", Timeout: time.Second}); err != nil {
		t.Fatalf("abort in a freeze: %v", err)
	}
	if e := store.Last(); e.Override != "" || e.ToGreen != 0 {
		t.Fatalf("abort entry %+v", e)
	}
}

func TestPreviewPools(t *testing.T) {
	svc := webService
	svc.Pools = []model.Pool{{Header: "x-bg-pool", Value: "staff"}}
	c, _ := releaseController(t, svc, nil)
	ctx := context.Background()
	req := traffic.PreviewRequest{Service: "web", Timeout: time.Second}

	res, err := c.Preview(ctx, req)
	if err != nil || res.Status.Preview != model.Green || res.Status.Candidate != model.Green || res.Status.Weights.Blue != 100 || res.Status.Generation != 2 {
		t.Fatalf("preview: %+v %v", res.Status, err)
	}
	if res, err := c.Preview(ctx, req); err != nil || res.Changed {
		t.Fatalf("repeated preview must change nothing: %+v %v", res, err)
	}
	if _, err := c.Preview(ctx, traffic.PreviewRequest{Service: "web", To: model.Blue}); !errors.Is(err, traffic.ErrBadPlan) {
		t.Fatalf("preview of the serving colour: %v", err)
	}
	// An instant switch takes over: the preview ends.
	res, err = c.Switch(ctx, traffic.Request{Service: "web", To: model.Green, Instant: true, Timeout: time.Second})
	if err != nil || res.Status.Preview != "" || res.Status.Candidate != "" {
		t.Fatalf("switch after preview: %+v %v", res.Status, err)
	}
	// Preview blue, then abort: back to known-good, preview off.
	if res, err = c.Preview(ctx, req); err != nil || res.Status.Preview != model.Blue {
		t.Fatalf("preview of the idle blue: %+v %v", res.Status, err)
	}
	if res, err = c.Preview(ctx, traffic.PreviewRequest{Service: "web", Off: true, Timeout: time.Second}); err != nil || res.Status.Preview != "" {
		t.Fatalf("preview off: %+v %v", res.Status, err)
	}

	plain, _ := releaseController(t, webService, nil)
	if _, err := plain.Preview(ctx, req); !errors.Is(err, traffic.ErrNoPreview) {
		t.Fatalf("preview without pools: %v", err)
	}
}

func TestPreGatesHoldInstantSwitch(t *testing.T) {
	var mu sync.Mutex
	code := http.StatusServiceUnavailable
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		mu.Lock()
		defer mu.Unlock()
		w.WriteHeader(code)
	}))
	defer srv.Close()
	plan := model.Plan{Steps: []int{100}, Gates: []model.Gate{{Name: "smoke", URL: srv.URL, Stages: []string{model.GatePre},
		Timeout: model.Duration(time.Second), OnFailure: model.GateRollback}}}
	c, _ := releaseController(t, webService, &plan)
	ctx := context.Background()
	req := traffic.Request{Service: "web", To: model.Green, Instant: true, Timeout: time.Second}
	if _, err := c.Switch(ctx, req); !errors.Is(err, traffic.ErrGateFailed) || !strings.Contains(err.Error(), "HTTP 503") {
		t.Fatalf("failing pre gate: %v", err)
	}
	if st, _ := c.Status("web"); st.Generation != 1 {
		t.Fatalf("a failed gate changed state: %+v", st)
	}
	mu.Lock()
	code = http.StatusOK
	mu.Unlock()
	if res, err := c.Switch(ctx, req); err != nil || res.Status.Weights.Green != 100 {
		t.Fatalf("passing pre gate: %+v %v", res.Status.Weights, err)
	}
	// Forced: the gate is not called at all.
	mu.Lock()
	code = http.StatusInternalServerError
	mu.Unlock()
	if res, err := c.Switch(ctx, traffic.Request{Service: "web", To: model.Blue, Force: true, Reason: "r", Timeout: time.Second}); err != nil || res.Status.Weights.Blue != 100 {
		t.Fatalf("forced past a failing gate: %+v %v", res.Status.Weights, err)
	}
}

func TestDarkPlanStartsAtZero(t *testing.T) {
	plan := model.Plan{Steps: []int{5, 50, 100}, Bake: model.Duration(time.Second), Interval: model.Duration(time.Second),
		MinRequests: 10, Confidence: 0.99, UnavailableBudget: model.Duration(time.Second), OnUnavailable: model.OnUnavailableRollback,
		InsufficientBudget: model.Duration(time.Second), OnInsufficient: model.OnUnavailableRollback, Rollback: model.RollbackInstant, Dark: true}
	c, _ := releaseController(t, webService, &plan)
	for _, tc := range []struct {
		steps []int
		want  string
	}{{nil, "[0 5 50 100]"}, {[]int{25, 100}, "[0 25 100]"}, {[]int{0, 25, 100}, "[0 25 100]"}} {
		p, err := c.Plan("web", traffic.PlanOverrides{Steps: tc.steps})
		if err != nil || fmt.Sprint(p.Steps) != tc.want {
			t.Errorf("steps %v: plan %v (%v), want %s", tc.steps, p.Steps, err, tc.want)
		}
	}
	if _, err := c.Promote(context.Background(), traffic.Request{Service: "web", Force: true}); !errors.Is(err, traffic.ErrNeedsReason) {
		t.Errorf("promote --force without a reason: %v", err)
	}
}

// Every forced command needs a reason, decided in the core (the admin API
// and the CLI only forward): pause, resume and preview as well.
func TestForcedCommandsNeedAReason(t *testing.T) {
	svc := webService
	svc.Pools = []model.Pool{{Header: "x-bg-pool", Value: "staff"}}
	c, _ := releaseController(t, svc, nil)
	ctx := context.Background()
	for name, call := range map[string]func() error{
		"pause": func() error { _, err := c.Pause(ctx, traffic.Request{Service: "web", Force: true}); return err },
		"resume": func() error {
			_, err := c.Resume(ctx, traffic.Request{Service: "web", Force: true, Reason: " "})
			return err
		},
		"preview": func() error {
			_, err := c.Preview(ctx, traffic.PreviewRequest{Service: "web", Force: true})
			return err
		},
	} {
		if err := call(); !errors.Is(err, traffic.ErrNeedsReason) {
			t.Errorf("%s --force without a reason: %v, want ErrNeedsReason", name, err)
		}
	}
	if st, _ := c.Status("web"); st.Generation != 1 || st.Preview != "" {
		t.Errorf("a refused command changed state: %+v", st)
	}
}
