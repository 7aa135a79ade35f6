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
	apiv1 "github.com/bgctl/bg/controlplane/api/v1"
	"github.com/bgctl/bg/controlplane/config"
	"github.com/bgctl/bg/controlplane/converge"
	"github.com/bgctl/bg/controlplane/model"
	"github.com/bgctl/bg/controlplane/state/memstate"
	"github.com/bgctl/bg/controlplane/xds"
)

// desireServer runs the admin API with a real convergence loop (auto off,
// leading) over memstate and the fake controller.
func desireServer(t *testing.T, c *fakeController) (string, *converge.Loop, *memstate.Store) {
	t.Helper()
	store := memstate.New()
	loop := converge.New(c, store, converge.Options{Auto: map[string]config.Auto{"web": config.DefaultAuto()}})
	ctx, cancel := context.WithCancel(context.Background())
	t.Cleanup(cancel)
	loop.Lead(ctx)
	srv := httptest.NewServer(admin.Handler(c, admin.Options{
		DefaultTimeout: time.Second, Proxies: func() []xds.ProxyInfo { return nil },
		Gatherer: prometheus.NewRegistry(), Log: slog.New(slog.DiscardHandler), Converge: loop,
	}))
	t.Cleanup(srv.Close)
	return srv.Listener.Addr().String(), loop, store
}

func TestDesireCommand(t *testing.T) {
	c := newFake()
	c.status.Fleets[model.Blue] = apiv1.FleetStatus{Healthy: 2, Versions: []string{"v1"}, Members: []apiv1.Member{{Version: "v1"}, {Version: "v1"}}}
	c.status.Fleets[model.Green] = apiv1.FleetStatus{Healthy: 1, Versions: []string{"v2"}, Members: []apiv1.Member{{Version: "v2"}}}
	addr, loop, store := desireServer(t, c)
	code, out, errOut := run(t, "--addr", addr, "desire", "web", "--version", "v2", "--reason", "deploy 42")
	expect(t, code, out, errOut, commands.ExitOK)
	all, _ := store.ListDesired(context.Background())
	if d := all["web"].Desired; d.Version != "v2" || d.Reason != "deploy 42" || !strings.HasPrefix(d.Actor, "cli:") {
		t.Fatalf("stored %+v", d)
	}
	loop.Round(context.Background())
	code, out, errOut = run(t, "--addr", addr, "desire", "web")
	expect(t, code, out, errOut, commands.ExitOK)
	for _, want := range []string{"web: desired v2, serving v1: waiting for capacity (1/2 passing on green) (auto off", "desired v2: deploy 42"} {
		if !strings.Contains(out, want) {
			t.Errorf("bg desire web lacks %q:\n%s", want, out)
		}
	}
	c.mu.Lock()
	c.status.Converge = loop.Convergence("web") // traffic.Controller's SetConvergeStatus hook in bg serve
	c.mu.Unlock()
	code, out, errOut = run(t, "--addr", addr, "status", "web")
	expect(t, code, out, errOut, commands.ExitOK)
	if !strings.Contains(out, "web: desired v2, serving v1: waiting for capacity (1/2 passing on green)") {
		t.Errorf("status lacks the convergence line:\n%s", out)
	}
	// Bad input: a clear error, nothing stored.
	for _, args := range [][]string{
		{"desire", "web", "--version", "v 2"},
		{"desire", "web", "--version", ""},
		{"desire", "web", "--reason", "x"},
		{"desire", "nope", "--version", "v3"},
		{"desire", "web", "--retry", "--version", "v9"},
	} {
		code, out, errOut = run(t, append([]string{"--addr", addr}, args...)...)
		expect(t, code, out, errOut, commands.ExitUsage)
	}
	all, _ = store.ListDesired(context.Background())
	if d := all["web"].Desired; len(all) != 1 || d.Version != "v2" || len(d.Log) != 1 {
		t.Fatalf("refused commands changed the store: %+v", all)
	}
}

func TestWaitExitCodes(t *testing.T) {
	c := newFake()
	addr := server(t, c, "")
	setConv := func(d *model.Desired) {
		c.mu.Lock()
		c.status.Converge = &apiv1.Convergence{Desired: d, State: model.ConvergeSettling, Detail: "settling (3s left)"}
		c.mu.Unlock()
	}
	// Blue serves v1: waiting for v2 times out (12).
	setConv(&model.Desired{Version: "v2", Actor: "ci", At: time.Now()})
	code, out, errOut := run(t, "--addr", addr, "wait", "web", "--version", "v2", "--timeout", "300ms")
	expect(t, code, out, errOut, commands.ExitTimedOut, "does not serve v2")
	if !strings.Contains(out, "settling (3s left)") {
		t.Errorf("wait does not say why: %q", out)
	}
	// v1 serves 100 % on blue, every proxy ACKed: 0.
	c.mu.Lock()
	c.status.Fleets[model.Blue] = apiv1.FleetStatus{Healthy: 2, Versions: []string{"v1"}, Members: []apiv1.Member{{Version: "v1"}, {Version: "v1"}}}
	c.mu.Unlock()
	code, out, errOut = run(t, "--addr", addr, "wait", "web", "--version", "v1", "--timeout", "5s")
	expect(t, code, out, errOut, commands.ExitOK)
	// Not while proxies lag.
	c.mu.Lock()
	c.status.Proxies.Acked = 1
	c.mu.Unlock()
	code, out, errOut = run(t, "--addr", addr, "wait", "web", "--version", "v1", "--timeout", "300ms")
	expect(t, code, out, errOut, commands.ExitTimedOut)
	// v2's converged switch rolled back: 10; aborted: 11.
	setConv(&model.Desired{Version: "v2", Actor: "ci", At: time.Now(),
		Failed: &model.DesiredFailure{Cause: model.FailRolledBack, Reason: "error ratio 0.3", SwitchID: "web@4"}})
	code, out, errOut = run(t, "--addr", addr, "wait", "web", "--version", "v2")
	expect(t, code, out, errOut, commands.ExitRolledBack, "rolled back: error ratio 0.3")
	setConv(&model.Desired{Version: "v2", Actor: "ci", At: time.Now(),
		Failed: &model.DesiredFailure{Cause: model.FailAborted, Reason: "abort by ann", SwitchID: "web@4"}})
	code, out, errOut = run(t, "--addr", addr, "wait", "web", "--version", "v2")
	expect(t, code, out, errOut, commands.ExitAborted, "aborted")
	// A failure of another version is not this wait's.
	code, out, errOut = run(t, "--addr", addr, "wait", "web", "--version", "v3", "--timeout", "300ms")
	expect(t, code, out, errOut, commands.ExitTimedOut)
	// Usage.
	code, out, errOut = run(t, "--addr", addr, "wait", "web")
	expect(t, code, out, errOut, commands.ExitUsage)
	code, out, errOut = run(t, "--addr", addr, "wait", "nope", "--version", "v2")
	expect(t, code, out, errOut, commands.ExitUsage)
}

func TestDesireSetCommand(t *testing.T) {
	c := newFake()
	addr, _, store := desireServer(t, c)
	for _, args := range [][]string{
		{"desire", "--set", "web"},
		{"desire", "--set", "web=v2,web=v3"},
		{"desire", "--set", "web=,api=v7"},
		{"desire", "web", "--set", "web=v2"},
		{"desire", "--set", "web=v2", "--version", "v2"},
		{"desire", "--set", "web=v 2"}, // refused by the control plane
		{"desire", "--set", "nope=v2"}, // unknown service
	} {
		code, out, errOut := run(t, append([]string{"--addr", addr}, args...)...)
		expect(t, code, out, errOut, commands.ExitUsage)
	}
	if all, _ := store.ListDesired(context.Background()); len(all) != 0 {
		t.Fatalf("refused sets stored %+v", all)
	}
	code, out, errOut := run(t, "--addr", addr, "desire", "--set", "web=v2", "--reason", "one")
	expect(t, code, out, errOut, commands.ExitOK)
	all, _ := store.ListDesired(context.Background())
	if d := all["web"].Desired; d.Version != "v2" || d.Reason != "one" || len(d.Group) != 0 {
		t.Fatalf("a set of one is a plain desire: %+v", d)
	}
}

// bg history shows the desired version's events among the traffic's
// entries, by time; -o json stays the traffic history only.
func TestHistoryShowsDesires(t *testing.T) {
	c := newFake()
	at := time.Date(2026, 12, 1, 3, 0, 0, 0, time.UTC)
	c.history = []model.HistoryEntry{
		{Generation: 1, At: at, Actor: "bg:r1", Phase: "stable", Stable: "blue", Reason: "initial"},
		{Generation: 2, At: at.Add(2 * time.Minute), Actor: "bg:converge", Phase: "switching", ToGreen: 20, Reason: "converge to desired version v2"},
	}
	addr, loop, store := desireServer(t, c)
	if _, err := store.SaveDesired(context.Background(), "web", model.Desired{Version: "v2", Actor: "ci", At: at.Add(time.Minute)}.Logged(
		model.DesireEvent{At: at.Add(time.Minute), Actor: "ci", What: "desired", Version: "v2", Reason: "build 7"}), 0); err != nil {
		t.Fatal(err)
	}
	loop.Round(context.Background()) // as every second in bg serve
	code, out, errOut := run(t, "--addr", addr, "history", "web")
	expect(t, code, out, errOut, commands.ExitOK)
	i, j, k := strings.Index(out, "initial"), strings.Index(out, "desired v2: build 7"), strings.Index(out, "converge to desired version v2")
	if i < 0 || j < 0 || k < 0 || !(i < j && j < k) {
		t.Fatalf("desire not among the entries by time:\n%s", out)
	}
	code, out, errOut = run(t, "--addr", addr, "history", "web", "-o", "json")
	expect(t, code, out, errOut, commands.ExitOK)
	if strings.Contains(out, "build 7") {
		t.Fatalf("json history holds desire events:\n%s", out)
	}
}
