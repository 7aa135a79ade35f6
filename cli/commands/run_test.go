package commands_test

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"net"
	"net/http/httptest"
	"reflect"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/bgctl/bg/cli/commands"
	"github.com/bgctl/bg/controlplane/admin"
	"github.com/bgctl/bg/controlplane/model"
	"github.com/bgctl/bg/controlplane/state"
	"github.com/bgctl/bg/controlplane/traffic"
	"github.com/bgctl/bg/controlplane/xds"
)

// fakeController stands behind the real admin.Handler, so the CLI is tested
// against the API's own status codes and bodies.
type fakeController struct {
	previews []traffic.PreviewRequest
	mu       sync.Mutex
	status   traffic.Status
	acks     xds.AckResult
	opErr    error
	changes  []traffic.Request
	ops      []string
	actors   []string // traffic.ActorFrom of each change's context
	history  []model.HistoryEntry
	limits   []int                 // the limit of each History call
	dryRun   *traffic.DryRunReport // DryRun's answer; nil: just service and colour
}

func newFake() *fakeController {
	return &fakeController{
		status: traffic.Status{
			Service: "web", Weights: traffic.Weights{Blue: 100}, Stable: model.Blue, Phase: "stable", Generation: 2,
			Fleets: map[model.Color]traffic.FleetStatus{
				model.Blue:  {Healthy: 2, Versions: []string{"v1"}},
				model.Green: {Healthy: 3, Versions: []string{"v2"}},
			},
			Proxies: traffic.ProxyCounts{Connected: 2, Acked: 2},
		},
		acks: xds.AckResult{Acked: 2},
	}
}

func (f *fakeController) apply(ctx context.Context, op string, req traffic.Request) (traffic.Result, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.ops = append(f.ops, op)
	f.actors = append(f.actors, traffic.ActorFrom(ctx))
	f.changes = append(f.changes, req)
	if f.opErr != nil {
		return traffic.Result{}, f.opErr
	}
	if req.Service != f.status.Service {
		return traffic.Result{}, fmt.Errorf("%w %q", traffic.ErrUnknownService, req.Service)
	}
	to := req.To
	if op == "abort" {
		to = f.status.Stable
	}
	st := f.status
	changed := (to == model.Green) != (st.Weights.Green == 100)
	if changed {
		st.Generation++
	}
	st.Weights = traffic.Weights{Blue: 100, Green: 0}
	if to == model.Green {
		st.Weights = traffic.Weights{Blue: 0, Green: 100}
	}
	return traffic.Result{Changed: changed, Status: st, Acks: f.acks}, nil
}

func (f *fakeController) Switch(ctx context.Context, req traffic.Request) (traffic.Result, error) {
	return f.apply(ctx, "switch", req)
}

func (f *fakeController) Abort(ctx context.Context, req traffic.Request) (traffic.Result, error) {
	return f.apply(ctx, "abort", req)
}

func (f *fakeController) Preview(ctx context.Context, req traffic.PreviewRequest) (traffic.Result, error) {
	f.mu.Lock()
	f.previews = append(f.previews, req)
	f.mu.Unlock()
	return traffic.Result{Changed: true, Status: f.status, Acks: f.acks}, f.opErr
}

func (f *fakeController) Pause(ctx context.Context, req traffic.Request) (traffic.Result, error) {
	return f.apply(ctx, "pause", req)
}

func (f *fakeController) Resume(ctx context.Context, req traffic.Request) (traffic.Result, error) {
	return f.apply(ctx, "resume", req)
}

func (f *fakeController) Promote(ctx context.Context, req traffic.Request) (traffic.Result, error) {
	return f.apply(ctx, "promote", req)
}

func (f *fakeController) DryRun(ctx context.Context, req traffic.Request) (traffic.DryRunReport, error) {
	_, err := f.apply(ctx, "dry-run", req)
	if f.dryRun != nil {
		return *f.dryRun, err
	}
	return traffic.DryRunReport{Service: req.Service, To: req.To}, err
}

func (f *fakeController) Status(name string) (traffic.Status, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if name != f.status.Service {
		return traffic.Status{}, fmt.Errorf("%w %q", traffic.ErrUnknownService, name)
	}
	return f.status, nil
}

func (f *fakeController) StatusAll() []traffic.Status {
	f.mu.Lock()
	defer f.mu.Unlock()
	return []traffic.Status{f.status}
}

func (f *fakeController) History(_ context.Context, service string, limit int) ([]model.HistoryEntry, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.limits = append(f.limits, limit)
	if service != f.status.Service {
		return nil, fmt.Errorf("%w %q", traffic.ErrUnknownService, service)
	}
	return f.history[max(0, len(f.history)-limit):], nil
}

func (f *fakeController) Missing() []string { return nil }
func (f *fakeController) Ready() bool       { return true }

func (f *fakeController) requests() ([]string, []traffic.Request) {
	f.mu.Lock()
	defer f.mu.Unlock()
	return append([]string(nil), f.ops...), append([]traffic.Request(nil), f.changes...)
}

// server runs the admin API over a fake controller and returns its address.
func server(t *testing.T, c *fakeController, token string) string {
	t.Helper()
	srv := httptest.NewServer(admin.Handler(c, admin.Options{
		Token: token, DefaultTimeout: time.Second, Proxies: func() []xds.ProxyInfo { return nil },
		Gatherer: prometheus.NewRegistry(), Log: slog.New(slog.DiscardHandler),
	}))
	t.Cleanup(srv.Close)
	return srv.Listener.Addr().String()
}

// run executes bg in-process. Not parallel: urfave/cli shares its help and
// version flags between apps.
func run(t *testing.T, args ...string) (code int, stdout, stderr string) {
	t.Helper()
	t.Setenv("BG_ADDR", "")
	t.Setenv("BG_TOKEN", "")
	var out, errOut bytes.Buffer
	code = commands.Run(append([]string{"bg"}, args...), &out, &errOut)
	return code, out.String(), errOut.String()
}

func expect(t *testing.T, code int, stdout, stderr string, wantCode int, wantErr ...string) {
	t.Helper()
	if code != wantCode {
		t.Fatalf("exit code %d, want %d\nstdout: %s\nstderr: %s", code, wantCode, stdout, stderr)
	}
	for _, w := range wantErr {
		if !strings.Contains(stderr, w) {
			t.Errorf("stderr lacks %q:\n%s", w, stderr)
		}
	}
}

func noChange(t *testing.T, c *fakeController) {
	t.Helper()
	if ops, _ := c.requests(); len(ops) != 0 {
		t.Errorf("controller was asked to %v", ops)
	}
}

func TestUsageErrors(t *testing.T) {
	c := newFake()
	addr := server(t, c, "")
	cases := []struct {
		name    string
		args    []string
		wantErr string
	}{
		{"switch without service", []string{"switch", "--instant", "--to", "green"}, "SERVICE"},
		{"switch with two services", []string{"switch", "web", "api", "--instant", "--to", "green"}, "SERVICE"},
		{"abort without service", []string{"abort"}, "SERVICE"},
		{"bad --to", []string{"switch", "web", "--instant", "--to", "purple"}, "purple"},
		{"capitalised --to", []string{"switch", "web", "--instant", "--to", "Green"}, "Green"},
		{"switch --output yaml", []string{"switch", "web", "--instant", "--to", "green", "--output", "yaml"}, "yaml"},
		{"abort -o yaml", []string{"abort", "web", "-o", "yaml"}, "yaml"},
		{"status -o yaml", []string{"status", "web", "-o", "yaml"}, "yaml"},
		{"status two services", []string{"status", "web", "api"}, "SERVICE"},
		{"plan flags with --instant", []string{"switch", "web", "--to", "green", "--instant", "--steps", "10,100"}, "--instant"},
		{"bad --steps", []string{"switch", "web", "--to", "green", "--steps", "10,half"}, "--steps"},
		// The analysis window is retired with its flag.
		{"--window retired", []string{"switch", "web", "--to", "green", "--window", "2m"}, "window"},
		{"--window retired on a dry run", []string{"switch", "web", "--to", "green", "--dry-run", "--window", "2m"}, "window"},
		{"unknown flag", []string{"switch", "web", "--instant", "--colour", "green"}, "colour"},
		{"bad duration", []string{"switch", "web", "--instant", "--to", "green", "--timeout", "soon"}, "soon"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			code, out, errOut := run(t, append([]string{"--addr", addr}, tc.args...)...)
			expect(t, code, out, errOut, commands.ExitUsage, tc.wantErr)
			noChange(t, c)
		})
	}
}

func TestUnknownService(t *testing.T) {
	c := newFake()
	addr := server(t, c, "")
	for _, args := range [][]string{
		{"switch", "nosuch", "--instant", "--to", "green"},
		{"switch", "nosuch", "--instant"}, // no colour: the control plane answers all the same
		{"abort", "nosuch"},
		{"status", "nosuch"},
	} {
		t.Run(strings.Join(args, " "), func(t *testing.T) {
			code, out, errOut := run(t, append([]string{"--addr", addr}, args...)...)
			expect(t, code, out, errOut, commands.ExitUsage, `unknown service "nosuch"`)
		})
	}
}

func TestRefusals(t *testing.T) {
	cases := []struct {
		name string
		err  error
	}{
		{"empty fleet", fmt.Errorf("%w: green has no passing instances of web; refusing to move traffic there (use --force to override)", traffic.ErrEmptyFleet)},
		{"conflict", fmt.Errorf("persist traffic state of web: %w (nothing was changed)", state.ErrConflict)},
		{"not ready", traffic.ErrNotReady},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			c := newFake()
			c.opErr = tc.err
			addr := server(t, c, "")
			code, out, errOut := run(t, "--addr", addr, "switch", "web", "--instant", "--to", "green")
			expect(t, code, out, errOut, commands.ExitRefused, tc.err.Error())
			if out != "" {
				t.Errorf("stdout on a refusal: %q", out)
			}
		})
	}
}

func TestForceIsSent(t *testing.T) {
	c := newFake()
	addr := server(t, c, "")
	code, out, errOut := run(t, "--addr", addr, "switch", "web", "--instant", "--to", "green", "--force", "--reason", "hotfix", "--timeout", "5s")
	expect(t, code, out, errOut, commands.ExitOK)
	_, reqs := c.requests()
	want := traffic.Request{Service: "web", To: model.Green, Instant: true, Force: true, Reason: "hotfix", Timeout: 5 * time.Second}
	if len(reqs) != 1 || !reflect.DeepEqual(reqs[0], want) {
		t.Errorf("controller got %+v, want %+v", reqs, want)
	}
}

func TestUnauthorized(t *testing.T) {
	c := newFake()
	addr := server(t, c, "s3cret")
	for _, args := range [][]string{
		{"--addr", addr, "switch", "web", "--instant", "--to", "green"},
		{"--addr", addr, "--token", "wrong", "switch", "web", "--instant", "--to", "green"},
		{"--addr", addr, "--token", "wrong", "abort", "web"},
		{"--addr", addr, "--token", "wrong", "status"},
	} {
		t.Run(strings.Join(args[2:], " "), func(t *testing.T) {
			code, out, errOut := run(t, args...)
			expect(t, code, out, errOut, commands.ExitUnauthorized, "token")
			noChange(t, c)
		})
	}
	t.Run("token from env", func(t *testing.T) {
		t.Setenv("BG_TOKEN", "s3cret")
		var out, errOut bytes.Buffer
		code := commands.Run([]string{"bg", "--addr", addr, "status", "web"}, &out, &errOut)
		expect(t, code, out.String(), errOut.String(), commands.ExitOK)
	})
	t.Run("right token", func(t *testing.T) {
		code, out, errOut := run(t, "--addr", addr, "--token", "s3cret", "switch", "web", "--instant", "--to", "green")
		expect(t, code, out, errOut, commands.ExitOK)
	})
}

func TestUnreachable(t *testing.T) {
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := lis.Addr().String()
	lis.Close() // nothing listens there now
	for _, args := range [][]string{
		{"switch", "web", "--instant", "--to", "green"},
		{"switch", "web", "--instant"},
		{"abort", "web"},
		{"status"},
	} {
		t.Run(strings.Join(args, " "), func(t *testing.T) {
			code, out, errOut := run(t, append([]string{"--addr", addr}, args...)...)
			expect(t, code, out, errOut, commands.ExitUnreachable, addr)
		})
	}
}

func TestIncompleteAcks(t *testing.T) {
	c := newFake()
	c.acks = xds.AckResult{Acked: 1, Pending: []xds.ProxyInfo{
		{StreamID: 7, NodeID: "envoy-slow"},
		{StreamID: 9, NodeID: "grpc-picky", LastNACK: &xds.NACK{Message: "unknown cluster web-green"}},
	}}
	addr := server(t, c, "")
	code, out, errOut := run(t, "--addr", addr, "switch", "web", "--instant", "--to", "green", "--timeout", "2s")
	expect(t, code, out, errOut, commands.ExitNotAcked, "envoy-slow", "grpc-picky", "unknown cluster web-green", "2s", "generation 3")
	// The change was applied: stdout still says what is in force.
	if !strings.Contains(out, "1/3 proxies ACKed") {
		t.Errorf("stdout = %q", out)
	}

	code, out, errOut = run(t, "--addr", addr, "abort", "web", "-o", "json")
	expect(t, code, out, errOut, commands.ExitNotAcked, "envoy-slow", "grpc-picky")
	var res traffic.Result
	if err := json.Unmarshal([]byte(out), &res); err != nil || len(res.Acks.Pending) != 2 {
		t.Errorf("json result = %q (err %v)", out, err)
	}
}

func TestSwitchSuccess(t *testing.T) {
	c := newFake()
	addr := server(t, c, "")
	code, out, errOut := run(t, "--addr", addr, "switch", "web", "--instant", "--to", "green")
	expect(t, code, out, errOut, commands.ExitOK)
	if want := "web: blue 0% / green 100% (generation 3, applied); 2/2 proxies ACKed\n"; out != want {
		t.Errorf("stdout = %q, want %q", out, want)
	}
	if errOut != "" {
		t.Errorf("stderr = %q", errOut)
	}
}

func TestAbortAlreadyInForce(t *testing.T) {
	c := newFake()
	addr := server(t, c, "")
	code, out, errOut := run(t, "--addr", addr, "abort", "web", "--reason", "bad canary")
	expect(t, code, out, errOut, commands.ExitOK)
	if !strings.Contains(out, "already in force") {
		t.Errorf("stdout = %q", out)
	}
	ops, reqs := c.requests()
	if len(ops) != 1 || ops[0] != "abort" || reqs[0].To != "" || reqs[0].Reason != "bad canary" {
		t.Errorf("controller got %v %+v", ops, reqs)
	}
}

func TestSwitchJSON(t *testing.T) {
	c := newFake()
	addr := server(t, c, "")
	code, out, errOut := run(t, "--addr", addr, "switch", "web", "--instant", "--to", "green", "-o", "json")
	expect(t, code, out, errOut, commands.ExitOK)
	var res traffic.Result
	dec := json.NewDecoder(strings.NewReader(out))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&res); err != nil {
		t.Fatalf("stdout is not a JSON result: %v\n%s", err, out)
	}
	if !res.Changed || res.Status.Service != "web" || res.Status.Weights.Green != 100 || res.Acks.Acked != 2 {
		t.Errorf("result = %+v", res)
	}
}

func TestStatusJSON(t *testing.T) {
	c := newFake()
	addr := server(t, c, "")
	code, out, errOut := run(t, "--addr", addr, "status", "web", "-o", "json")
	expect(t, code, out, errOut, commands.ExitOK)
	var st struct {
		Service *string `json:"service"`
		Weights *struct {
			Blue  *int `json:"blue"`
			Green *int `json:"green"`
		} `json:"weights"`
	}
	if err := json.Unmarshal([]byte(out), &st); err != nil {
		t.Fatalf("stdout is not a JSON object: %v\n%s", err, out)
	}
	if st.Service == nil || *st.Service != "web" || st.Weights == nil || st.Weights.Blue == nil || st.Weights.Green == nil ||
		*st.Weights.Blue != 100 || *st.Weights.Green != 0 {
		t.Errorf("status = %s", out)
	}

	code, out, errOut = run(t, "--addr", addr, "status", "-o", "json")
	expect(t, code, out, errOut, commands.ExitOK)
	var all []traffic.Status
	if err := json.Unmarshal([]byte(out), &all); err != nil || len(all) != 1 || all[0].Service != "web" {
		t.Errorf("status of all = %s (err %v)", out, err)
	}
}

func TestStatusText(t *testing.T) {
	c := newFake()
	addr := server(t, c, "")
	code, out, errOut := run(t, "--addr", addr, "status")
	expect(t, code, out, errOut, commands.ExitOK)
	lines := strings.Split(strings.TrimSpace(out), "\n")
	if len(lines) != 2 || !strings.HasPrefix(lines[0], "SERVICE") {
		t.Fatalf("stdout = %q", out)
	}
	for _, w := range []string{"web", "100%", "0%", "2 healthy (v1)", "3 healthy (v2)", "2/2"} {
		if !strings.Contains(lines[1], w) {
			t.Errorf("row lacks %q: %q", w, lines[1])
		}
	}
}

// Without --to the CLI reads nothing and picks nothing: the control plane
// chooses the idle colour (core_test.go has it choose).
func TestSwitchLeavesIdleColourToControlPlane(t *testing.T) {
	for _, args := range [][]string{{"switch", "web", "--instant"}, {"switch", "web", "--dry-run"}, {"switch", "web"}} {
		t.Run(strings.Join(args, " "), func(t *testing.T) {
			c := newFake()
			addr := server(t, c, "")
			code, out, errOut := run(t, append([]string{"--addr", addr}, args...)...)
			expect(t, code, out, errOut, commands.ExitOK)
			ops, reqs := c.requests()
			if len(reqs) != 1 || reqs[0].To != "" {
				t.Errorf("controller got %v %+v, want one request without a colour", ops, reqs)
			}
		})
	}
	t.Run("refused while split", func(t *testing.T) {
		c := newFake()
		c.opErr = fmt.Errorf("%w: traffic is split; name the colour with --to", traffic.ErrBadPlan)
		addr := server(t, c, "")
		code, out, errOut := run(t, "--addr", addr, "switch", "web", "--instant")
		expect(t, code, out, errOut, commands.ExitUsage, "traffic is split; name the colour with --to")
	})
}

func TestFlagPositions(t *testing.T) {
	c := newFake()
	addr := server(t, c, "")
	// Flags before and after SERVICE, "=" forms and the address from the env.
	for _, args := range [][]string{
		{"--addr", addr, "switch", "--instant", "--to", "green", "web"},
		{"--addr", addr, "switch", "web", "--to=green", "--instant", "-o", "json"},
		{"--addr=" + addr, "switch", "--to", "green", "web", "--instant=true"},
		{"--addr", "http://" + addr + "/", "switch", "web", "--instant", "--to", "green"},
	} {
		t.Run(strings.Join(args, " "), func(t *testing.T) {
			code, out, errOut := run(t, args...)
			expect(t, code, out, errOut, commands.ExitOK)
		})
	}
	t.Run("BG_ADDR", func(t *testing.T) {
		t.Setenv("BG_ADDR", addr)
		var out, errOut bytes.Buffer
		code := commands.Run([]string{"bg", "status", "web", "-o", "json"}, &out, &errOut)
		expect(t, code, out.String(), errOut.String(), commands.ExitOK)
	})
}

func TestServiceNameIsEscaped(t *testing.T) {
	c := newFake()
	addr := server(t, c, "")
	// A name with URL syntax must reach the API as a name, not a path.
	code, out, errOut := run(t, "--addr", addr, "status", "web/switch?x=1")
	expect(t, code, out, errOut, commands.ExitUsage, `unknown service "web/switch?x=1"`)
}

func TestHelpAndVersion(t *testing.T) {
	code, out, errOut := run(t, "--version")
	expect(t, code, out, errOut, commands.ExitOK)
	if want := "bg version " + commands.VersionString() + "\n"; out != want {
		t.Errorf("--version printed %q, want %q", out, want)
	}
	code, out, errOut = run(t, "switch", "--help")
	expect(t, code, out, errOut, commands.ExitOK)
	if !strings.Contains(out, "--instant") {
		t.Errorf("switch --help printed %q", out)
	}
}

// The CLI forwards --force as given: whether it needs --reason is the
// control plane's answer (core_test.go), and its code still exits 2.
func TestForceNeedsReason(t *testing.T) {
	for _, args := range [][]string{
		{"switch", "web", "--instant", "--to", "green", "--force"},
		{"switch", "web", "--to", "green", "--force", "--reason", " "},
		{"abort", "web", "--force"},
		{"promote", "web", "--force"},
	} {
		t.Run(strings.Join(args, " "), func(t *testing.T) {
			c := newFake()
			c.opErr = fmt.Errorf("%w: say why this %s overrides it", traffic.ErrNeedsReason, args[0])
			addr := server(t, c, "")
			code, out, errOut := run(t, append([]string{"--addr", addr}, args...)...)
			expect(t, code, out, errOut, commands.ExitUsage, "--force needs --reason")
			if _, reqs := c.requests(); len(reqs) != 1 || !reqs[0].Force {
				t.Errorf("controller got %+v, want the forced request", reqs)
			}
		})
	}
	// preview --force without a reason: core_test.go, against the real controller.
}

// A forced switch is sent as asked: the control plane makes it instant.
func TestForcedSwitchIsSentAsAsked(t *testing.T) {
	c := newFake()
	addr := server(t, c, "")
	code, out, errOut := run(t, "--addr", addr, "switch", "web", "--to", "green", "--force", "--reason", "INC-42")
	expect(t, code, out, errOut, commands.ExitOK)
	_, reqs := c.requests()
	if len(reqs) != 1 || reqs[0].Instant || !reqs[0].Force || reqs[0].Reason != "INC-42" {
		t.Errorf("controller got %+v", reqs)
	}
}

func TestPreview(t *testing.T) {
	c := newFake()
	addr := server(t, c, "")
	for _, tc := range []struct {
		args []string
		want traffic.PreviewRequest
	}{
		{[]string{"preview", "web"}, traffic.PreviewRequest{Service: "web", Timeout: 30 * time.Second}},
		{[]string{"preview", "web", "--to", "green", "--timeout", "5s"}, traffic.PreviewRequest{Service: "web", To: model.Green, Timeout: 5 * time.Second}},
		{[]string{"preview", "web", "--off"}, traffic.PreviewRequest{Service: "web", Off: true, Timeout: 30 * time.Second}},
	} {
		c.mu.Lock()
		c.previews = nil
		c.mu.Unlock()
		code, out, errOut := run(t, append([]string{"--addr", addr}, tc.args...)...)
		expect(t, code, out, errOut, commands.ExitOK)
		c.mu.Lock()
		got := c.previews
		c.mu.Unlock()
		if len(got) != 1 || !reflect.DeepEqual(got[0], tc.want) {
			t.Errorf("%v: controller got %+v, want %+v", tc.args, got, tc.want)
		}
	}
	for _, args := range [][]string{{"preview", "web", "--to", "purple"}, {"preview", "web", "--to", "green", "--off"}, {"preview"}} {
		code, out, errOut := run(t, append([]string{"--addr", addr}, args...)...)
		expect(t, code, out, errOut, commands.ExitUsage)
	}
}

func TestStatusShowsReleaseControls(t *testing.T) {
	c := newFake()
	next := time.Date(2027, 1, 4, 0, 0, 0, 0, time.UTC)
	c.status.Pools = []string{"header x-bg-pool=staff", "cookie beta=1"}
	c.status.Candidate, c.status.Preview, c.status.MirrorPercent = model.Green, model.Green, 10
	c.status.Window = &traffic.WindowStatus{Open: false, Reason: `freeze "year-end" until 2027-01-04T00:00Z`, NextOpen: next}
	addr := server(t, c, "")
	code, out, errOut := run(t, "--addr", addr, "status", "web")
	expect(t, code, out, errOut, commands.ExitOK)
	want := `web: pools to green (preview): header x-bg-pool=staff, cookie beta=1; mirror 10%; switches closed: freeze "year-end" until 2027-01-04T00:00Z; next open 2027-01-04T00:00:00Z`
	if !strings.Contains(out, want) {
		t.Fatalf("status output lacks\n%s\ngot\n%s", want, out)
	}
}
