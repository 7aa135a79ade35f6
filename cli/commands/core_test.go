package commands_test

import (
	"context"
	"log/slog"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/bgctl/bg/cli/commands"
	"github.com/bgctl/bg/controlplane/admin"
	"github.com/bgctl/bg/controlplane/membership"
	"github.com/bgctl/bg/controlplane/model"
	"github.com/bgctl/bg/controlplane/state/memstate"
	"github.com/bgctl/bg/controlplane/traffic"
	"github.com/bgctl/bg/controlplane/xds"
)

// coreServer runs the admin API over a real traffic controller (no
// Prometheus, no proxies), so the CLI meets the control plane's own
// decisions; stored is the service's initial state (nil: all on blue).
func coreServer(t *testing.T, stored *model.Traffic) (string, *traffic.Controller) {
	t.Helper()
	quiet := slog.New(slog.DiscardHandler)
	store := memstate.New()
	if stored != nil {
		if _, err := store.Save(context.Background(), "web", *stored, 0, model.HistoryEntry{}); err != nil {
			t.Fatal(err)
		}
	}
	svc := model.Service{Name: "web", ListenerPort: 10000, Protocol: model.ProtocolHTTP2}
	hour := model.Duration(time.Hour)
	plan := model.Plan{Steps: []int{50, 100}, Bake: hour, Interval: hour, MinRequests: 10, Confidence: 0.99,
		UnavailableBudget: hour, OnUnavailable: model.OnUnavailableRollback,
		InsufficientBudget: hour, OnInsufficient: model.OnUnavailableRollback, Rollback: model.RollbackInstant}
	c := traffic.New([]model.Service{svc}, "0.0.0.0", store, xds.NewServer(quiet, nil), quiet, traffic.NewMetrics(nil))
	c.SetAnalysis(nil, map[string]model.Plan{"web": plan})
	c.OnMembership(membership.Update{Service: "web", Membership: model.Membership{
		Blue:  model.Fleet{Endpoints: []model.Endpoint{{ID: "b1", Address: "10.0.0.1", Port: 8080, Weight: 1}}},
		Green: model.Fleet{Endpoints: []model.Endpoint{{ID: "g1", Address: "10.0.1.1", Port: 8080, Weight: 1}}},
	}})
	if err := c.LoadState(context.Background()); err != nil {
		t.Fatal(err)
	}
	if err := c.Publish(); err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(admin.Handler(c, admin.Options{
		DefaultTimeout: time.Second, Proxies: func() []xds.ProxyInfo { return nil },
		Gatherer: prometheus.NewRegistry(), Log: quiet,
	}))
	t.Cleanup(srv.Close)
	return srv.Listener.Addr().String(), c
}

func generation(t *testing.T, c *traffic.Controller) uint64 {
	t.Helper()
	st, err := c.Status("web")
	if err != nil {
		t.Fatal(err)
	}
	return st.Generation
}

// `--force` without `--reason` exits 2: the control plane refuses it.
func TestCoreForceNeedsReason(t *testing.T) {
	addr, c := coreServer(t, nil)
	for _, args := range [][]string{
		{"switch", "web", "--instant", "--to", "green", "--force"},
		{"switch", "web", "--to", "green", "--force", "--reason", " "},
		{"switch", "web", "--force"},
		{"abort", "web", "--force"},
		{"promote", "web", "--force"},
		{"preview", "web", "--force"},
	} {
		t.Run(strings.Join(args, " "), func(t *testing.T) {
			code, out, errOut := run(t, append([]string{"--addr", addr}, args...)...)
			expect(t, code, out, errOut, commands.ExitUsage, "--force needs --reason")
			if g := generation(t, c); g != 1 {
				t.Errorf("generation %d after a refused command", g)
			}
		})
	}
}

// Without --to the control plane switches to the idle colour; a forced
// switch moves at once, --wait or not.
func TestCoreIdleColourAndForce(t *testing.T) {
	addr, _ := coreServer(t, nil)
	code, out, errOut := run(t, "--addr", addr, "switch", "web", "--dry-run")
	expect(t, code, out, errOut, commands.ExitOK)
	if !strings.Contains(out, "switch web from blue to green") {
		t.Errorf("dry run: %q", out)
	}
	code, out, errOut = run(t, "--addr", addr, "switch", "web", "--instant")
	expect(t, code, out, errOut, commands.ExitOK)
	if !strings.HasPrefix(out, "web: blue 0% / green 100% (generation 2, applied)") {
		t.Errorf("switch without --to from blue: %q", out)
	}
	code, out, errOut = run(t, "--addr", addr, "switch", "web", "--force", "--reason", "INC-42", "--wait")
	expect(t, code, out, errOut, commands.ExitOK)
	if !strings.HasPrefix(out, "web: blue 100% / green 0% (generation 3, applied)") {
		t.Errorf("forced switch without --to from green: %q", out)
	}
	// No Prometheus: an unforced progressive switch is refused.
	code, out, errOut = run(t, "--addr", addr, "switch", "web", "--to", "green")
	expect(t, code, out, errOut, commands.ExitRefused, "prometheus")
}

func TestCoreIdleColourRefusedWhenSplit(t *testing.T) {
	addr, c := coreServer(t, &model.Traffic{Stable: model.Blue, Target: model.Green, GreenPercent: 30, Phase: model.PhaseSwitched, Generation: 5})
	for _, args := range [][]string{{"switch", "web", "--instant"}, {"switch", "web", "--dry-run"}} {
		code, out, errOut := run(t, append([]string{"--addr", addr}, args...)...)
		expect(t, code, out, errOut, commands.ExitUsage, "traffic is split; name the colour with --to")
	}
	if g := generation(t, c); g != 5 {
		t.Errorf("generation %d after a refused switch", g)
	}
	code, out, errOut := run(t, "--addr", addr, "switch", "web", "--instant", "--to", "green")
	expect(t, code, out, errOut, commands.ExitOK)
}
