package admin

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"reflect"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"

	"github.com/bgctl/bg/controlplane/model"
	"github.com/bgctl/bg/controlplane/state"
	"github.com/bgctl/bg/controlplane/traffic"
	"github.com/bgctl/bg/controlplane/xds"
)

// fakeController records every call so tests can assert that a rejected
// request reached nothing behind the API.
type fakeController struct {
	mu      sync.Mutex
	calls   []string
	reqs    []traffic.Request
	result  traffic.Result
	opErr   error
	status  map[string]traffic.Status
	statErr error
	ready   bool
	missing []string
	actors  []string // traffic.ActorFrom of each change's context
	history map[string][]model.HistoryEntry
	histErr error
	limits  []int // the limit of each History call
}

func newFake() *fakeController {
	web := traffic.Status{Service: "web", Weights: traffic.Weights{Blue: 100}, Stable: model.Blue, Generation: 2}
	return &fakeController{
		ready:  true,
		status: map[string]traffic.Status{"web": web},
		result: traffic.Result{Changed: true, Status: web, Acks: xds.AckResult{Acked: 2}},
	}
}

func (f *fakeController) record(name string) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.calls = append(f.calls, name)
}

func (f *fakeController) Calls() []string {
	f.mu.Lock()
	defer f.mu.Unlock()
	return slices.Clone(f.calls)
}

func (f *fakeController) Requests() []traffic.Request {
	f.mu.Lock()
	defer f.mu.Unlock()
	return slices.Clone(f.reqs)
}

func (f *fakeController) change(ctx context.Context, name string, req traffic.Request) (traffic.Result, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.calls = append(f.calls, name)
	f.actors = append(f.actors, traffic.ActorFrom(ctx))
	f.reqs = append(f.reqs, req)
	return f.result, f.opErr
}

func (f *fakeController) Switch(ctx context.Context, req traffic.Request) (traffic.Result, error) {
	return f.change(ctx, "Switch", req)
}

func (f *fakeController) Abort(ctx context.Context, req traffic.Request) (traffic.Result, error) {
	return f.change(ctx, "Abort", req)
}

func (f *fakeController) Preview(ctx context.Context, req traffic.PreviewRequest) (traffic.Result, error) {
	return f.change(ctx, "Preview", traffic.Request{Service: req.Service, To: req.To, Force: req.Force, Reason: req.Reason, Timeout: req.Timeout})
}

func (f *fakeController) Pause(ctx context.Context, req traffic.Request) (traffic.Result, error) {
	return f.change(ctx, "pause", req)
}

func (f *fakeController) Resume(ctx context.Context, req traffic.Request) (traffic.Result, error) {
	return f.change(ctx, "resume", req)
}

func (f *fakeController) Promote(ctx context.Context, req traffic.Request) (traffic.Result, error) {
	return f.change(ctx, "promote", req)
}

func (f *fakeController) DryRun(ctx context.Context, req traffic.Request) (traffic.DryRunReport, error) {
	_, err := f.change(ctx, "dry-run", req)
	return traffic.DryRunReport{Service: req.Service, To: req.To}, err
}

func (f *fakeController) Status(name string) (traffic.Status, error) {
	f.record("Status")
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.statErr != nil {
		return traffic.Status{}, f.statErr
	}
	st, ok := f.status[name]
	if !ok {
		return traffic.Status{}, fmt.Errorf("%w %q", traffic.ErrUnknownService, name)
	}
	return st, nil
}

func (f *fakeController) StatusAll() []traffic.Status {
	f.record("StatusAll")
	f.mu.Lock()
	defer f.mu.Unlock()
	out := []traffic.Status{}
	for _, st := range f.status {
		out = append(out, st)
	}
	return out
}

func (f *fakeController) Missing() []string {
	f.record("Missing")
	f.mu.Lock()
	defer f.mu.Unlock()
	return slices.Clone(f.missing)
}

func (f *fakeController) Ready() bool {
	f.record("Ready")
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.ready
}

func (f *fakeController) History(_ context.Context, service string, limit int) ([]model.HistoryEntry, error) {
	f.record("History")
	f.mu.Lock()
	defer f.mu.Unlock()
	f.limits = append(f.limits, limit)
	if f.histErr != nil {
		return nil, f.histErr
	}
	if _, ok := f.status[service]; !ok {
		return nil, fmt.Errorf("%w %q", traffic.ErrUnknownService, service)
	}
	h := f.history[service]
	return h[max(0, len(h)-limit):], nil
}

func (f *fakeController) setReady(ready bool, missing ...string) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.ready, f.missing = ready, missing
}

// countingGatherer counts scrapes so a rejected /metrics can be told apart
// from one that was served.
type countingGatherer struct {
	n   atomic.Int32
	reg *prometheus.Registry
}

func (g *countingGatherer) Gather() ([]*dto.MetricFamily, error) {
	g.n.Add(1)
	return g.reg.Gather()
}

type rig struct {
	ctrl     *fakeController
	gatherer *countingGatherer
	proxies  atomic.Int32
	srv      *httptest.Server
}

func newRig(t *testing.T, token string) *rig {
	t.Helper()
	r := &rig{ctrl: newFake(), gatherer: &countingGatherer{reg: prometheus.NewRegistry()}}
	c := prometheus.NewCounter(prometheus.CounterOpts{Name: "bg_test_total", Help: "test"})
	r.gatherer.reg.MustRegister(c)
	c.Inc()
	h := Handler(r.ctrl, Options{
		Token:          token,
		DefaultTimeout: 7 * time.Second,
		Proxies: func() []xds.ProxyInfo {
			r.proxies.Add(1)
			return []xds.ProxyInfo{{StreamID: 1, NodeID: "envoy-1"}}
		},
		Gatherer: r.gatherer,
		Log:      slog.New(slog.DiscardHandler),
	})
	r.srv = httptest.NewServer(h)
	t.Cleanup(r.srv.Close)
	return r
}

// do sends a request; auth is the whole Authorization header ("" for none).
func (r *rig) do(t *testing.T, method, path, auth, body string) (*http.Response, []byte) {
	t.Helper()
	var rd io.Reader
	if body != "" {
		rd = strings.NewReader(body)
	}
	req, err := http.NewRequest(method, r.srv.URL+path, rd)
	if err != nil {
		t.Fatal(err)
	}
	if auth != "" {
		req.Header.Set("Authorization", auth)
	}
	resp, err := r.srv.Client().Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	raw, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return resp, raw
}

type route struct{ method, path, body string }

var allRoutes = []route{
	{"GET", "/healthz", ""},
	{"GET", "/readyz", ""},
	{"GET", "/metrics", ""},
	{"GET", "/v1/services", ""},
	{"GET", "/v1/services/web", ""},
	{"GET", "/v1/proxies", ""},
	{"GET", "/v1/services/web/history", ""},
	{"POST", "/v1/services/web/switch", `{"to":"green"}`},
	{"POST", "/v1/services/web/abort", ""},
	{"GET", "/no/such/path", ""},
}

func decodeError(t *testing.T, resp *http.Response, raw []byte) ErrorBody {
	t.Helper()
	if ct := resp.Header.Get("Content-Type"); ct != "application/json" {
		t.Fatalf("Content-Type = %q, want application/json; body %s", ct, raw)
	}
	var e ErrorBody
	if err := json.Unmarshal(raw, &e); err != nil {
		t.Fatalf("error body is not JSON: %v: %s", err, raw)
	}
	if e.Error == "" || e.Code == "" {
		t.Fatalf("error body lacks error or code: %s", raw)
	}
	return e
}

func TestTokenRequiredOnEveryPath(t *testing.T) {
	badAuth := []string{
		"",                   // no header
		"Bearer wrong",       // wrong token
		"Bearer s3cre",       // prefix of the token
		"Bearer s3cret2",     // token plus one
		"Bearer ",            // empty token
		"s3cret",             // no scheme
		"Basic czNjcmV0",     // other scheme
		"Bearer s3cret, foo", // trailing junk
	}
	for _, rt := range allRoutes {
		for _, auth := range badAuth {
			t.Run(rt.method+rt.path+"/"+auth, func(t *testing.T) {
				r := newRig(t, "s3cret")
				resp, raw := r.do(t, rt.method, rt.path, auth, rt.body)
				if resp.StatusCode != http.StatusUnauthorized {
					t.Fatalf("status = %d, want 401; body %s", resp.StatusCode, raw)
				}
				if got := resp.Header.Get("WWW-Authenticate"); !strings.HasPrefix(got, "Bearer") {
					t.Errorf("WWW-Authenticate = %q, want a Bearer challenge", got)
				}
				if e := decodeError(t, resp, raw); e.Code != "unauthorized" {
					t.Errorf("code = %q, want unauthorized", e.Code)
				}
				// Wrong token → 401 and nothing changed, nothing read.
				if calls := r.ctrl.Calls(); len(calls) != 0 {
					t.Errorf("controller was called: %v", calls)
				}
				if n := r.gatherer.n.Load(); n != 0 {
					t.Errorf("metrics gathered %d times", n)
				}
				if n := r.proxies.Load(); n != 0 {
					t.Errorf("proxies listed %d times", n)
				}
			})
		}
	}
}

func TestCorrectTokenPasses(t *testing.T) {
	for _, token := range []string{"s3cret", ""} {
		for _, rt := range allRoutes {
			name := "token/" + rt.method + rt.path
			if token == "" {
				name = "open/" + rt.method + rt.path
			}
			t.Run(name, func(t *testing.T) {
				r := newRig(t, token)
				auth := ""
				if token != "" {
					auth = "Bearer " + token
				}
				resp, raw := r.do(t, rt.method, rt.path, auth, rt.body)
				want := http.StatusOK
				if rt.path == "/no/such/path" {
					want = http.StatusNotFound
				}
				if resp.StatusCode != want {
					t.Fatalf("status = %d, want %d; body %s", resp.StatusCode, want, raw)
				}
				switch rt.path {
				case "/metrics":
					if !strings.Contains(string(raw), "bg_test_total 1") {
						t.Errorf("metrics body lacks bg_test_total:\n%s", raw)
					}
				case "/v1/services/web/switch":
					if calls := r.ctrl.Calls(); !slices.Equal(calls, []string{"Switch"}) {
						t.Errorf("calls = %v, want [Switch]", calls)
					}
				}
			})
		}
	}
}

func TestTokenWithSurroundingSpaceAccepted(t *testing.T) {
	r := newRig(t, "s3cret")
	resp, raw := r.do(t, "GET", "/healthz", "  Bearer s3cret  ", "")
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("status = %d; body %s", resp.StatusCode, raw)
	}
}

func TestChangeBodyValidation(t *testing.T) {
	huge := `{"to":"green","reason":"` + strings.Repeat("x", maxBody) + `"}`
	cases := []struct {
		name, path, body, inError string
	}{
		{"bad colour", "switch", `{"to":"purple"}`, "purple"},
		{"colour case", "switch", `{"to":"Green"}`, "Green"},
		{"unknown field", "switch", `{"to":"green","colour":"blue"}`, "unknown field"},
		{"trailing object", "switch", `{"to":"green"} {"to":"blue"}`, "trailing"},
		{"trailing brace", "switch", `{"to":"green"}}`, "trailing"},
		{"trailing bracket", "switch", `{"to":"green"}]`, "trailing"},
		{"trailing word", "switch", `{"to":"green"} x`, "trailing"},
		{"not an object", "switch", `["green"]`, "invalid JSON"},
		{"truncated", "switch", `{"to":"green"`, "invalid JSON"},
		{"wrong type", "switch", `{"to":"green","force":"yes"}`, "invalid JSON"},
		{"bad timeout", "switch", `{"to":"green","timeout":"soon"}`, "timeout"},
		{"zero timeout", "switch", `{"to":"green","timeout":"0s"}`, "timeout"},
		{"negative timeout", "switch", `{"to":"green","timeout":"-5s"}`, "timeout"},
		{"timeout over 1h", "switch", `{"to":"green","timeout":"61m"}`, "timeout"},
		{"bare number timeout", "switch", `{"to":"green","timeout":"30"}`, "timeout"},
		{"huge body", "switch", huge, "too large"},
		// The analysis window is retired: refused by name, never ignored.
		{"window retired", "switch", `{"to":"green","window":"2m"}`, "window: retired"},
		{"window retired with other plan fields", "switch", `{"to":"green","steps":[10,100],"bake":"1s","window":"1m"}`, "window: retired"},
		{"window retired on dry run", "switch", `{"to":"green","dry_run":true,"window":"2m"}`, "window: retired"},
		{"window on abort", "abort", `{"window":"2m"}`, "window: not allowed except on switch"},
		{"to on abort", "abort", `{"to":"blue"}`, "not allowed"},
		{"unknown field on abort", "abort", `{"stable":"blue"}`, "unknown field"},
		{"bad timeout on abort", "abort", `{"timeout":"2h"}`, "timeout"},
		{"preview bad colour", "preview", `{"to":"purple"}`, "purple"},
		{"preview off and to", "preview", `{"to":"green","off":true}`, "off: not with to"},
		{"preview unknown field", "preview", `{"pool":"staff"}`, "unknown field"},
		{"preview bad timeout", "preview", `{"timeout":"2h"}`, "timeout"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			r := newRig(t, "")
			resp, raw := r.do(t, "POST", "/v1/services/web/"+tc.path, "", tc.body)
			if resp.StatusCode != http.StatusBadRequest {
				t.Fatalf("status = %d, want 400; body %s", resp.StatusCode, raw)
			}
			e := decodeError(t, resp, raw)
			if e.Code != "bad_request" || !strings.Contains(e.Error, tc.inError) {
				t.Errorf("error = %+v, want code bad_request and %q in the message", e, tc.inError)
			}
			if calls := r.ctrl.Calls(); len(calls) != 0 {
				t.Errorf("controller was called: %v", calls)
			}
		})
	}
}

func TestChangeRequestReachesController(t *testing.T) {
	cases := []struct {
		name, path, body string
		want             traffic.Request
	}{
		{"switch all fields", "switch", `{"to":"green","force":true,"reason":"release 42","timeout":"5s"}`,
			traffic.Request{Service: "web", To: model.Green, Force: true, Reason: "release 42", Timeout: 5 * time.Second}},
		{"switch default timeout", "switch", ` {"to":"blue"}` + "\n",
			traffic.Request{Service: "web", To: model.Blue, Timeout: 7 * time.Second}},
		{"switch max timeout", "switch", `{"to":"blue","timeout":"1h"}`,
			traffic.Request{Service: "web", To: model.Blue, Timeout: time.Hour}},
		// The controller picks the idle colour.
		{"switch without colour", "switch", `{}`,
			traffic.Request{Service: "web", Timeout: 7 * time.Second}},
		{"switch empty body", "switch", ``,
			traffic.Request{Service: "web", Timeout: 7 * time.Second}},
		// Whether force needs a reason is the controller's call.
		{"switch forced without reason", "switch", `{"to":"green","force":true}`,
			traffic.Request{Service: "web", To: model.Green, Force: true, Timeout: 7 * time.Second}},
		{"abort forced with a blank reason", "abort", `{"force":true,"reason":"  "}`,
			traffic.Request{Service: "web", Force: true, Reason: "  ", Timeout: 7 * time.Second}},
		{"abort empty body", "abort", ``,
			traffic.Request{Service: "web", Timeout: 7 * time.Second}},
		{"abort with reason", "abort", `{"reason":"bad canary","timeout":"250ms"}`,
			traffic.Request{Service: "web", Reason: "bad canary", Timeout: 250 * time.Millisecond}},
		// The plan fields that remain still reach the controller.
		{"switch with plan overrides", "switch", `{"to":"green","steps":[10,100],"bake":"30s","interval":"2s"}`,
			traffic.Request{Service: "web", To: model.Green, Timeout: 7 * time.Second, Plan: traffic.PlanOverrides{
				Steps: []int{10, 100}, Bake: ptr(30 * time.Second), Interval: ptr(2 * time.Second)}}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			r := newRig(t, "")
			resp, raw := r.do(t, "POST", "/v1/services/web/"+tc.path, "", tc.body)
			if resp.StatusCode != http.StatusOK {
				t.Fatalf("status = %d; body %s", resp.StatusCode, raw)
			}
			reqs := r.ctrl.Requests()
			if len(reqs) != 1 || !reflect.DeepEqual(reqs[0], tc.want) {
				t.Fatalf("controller got %+v, want [%+v]", reqs, tc.want)
			}
			wantCall := "Switch"
			if tc.path == "abort" {
				wantCall = "Abort"
			}
			if calls := r.ctrl.Calls(); !slices.Equal(calls, []string{wantCall}) {
				t.Errorf("calls = %v, want [%s]", calls, wantCall)
			}
			var res traffic.Result
			if err := json.Unmarshal(raw, &res); err != nil || !res.Changed || res.Status.Service != "web" {
				t.Errorf("result body = %s (err %v)", raw, err)
			}
		})
	}
}

func TestErrorMapping(t *testing.T) {
	cases := []struct {
		err  error
		code int
		kind string
	}{
		{fmt.Errorf("%w %q", traffic.ErrUnknownService, "web"), http.StatusNotFound, "unknown_service"},
		{fmt.Errorf("%w: green has no passing instances", traffic.ErrEmptyFleet), http.StatusUnprocessableEntity, "empty_fleet"},
		{fmt.Errorf("persist traffic state of web: %w (nothing was changed)", state.ErrConflict), http.StatusConflict, "conflict"},
		{traffic.ErrNotReady, http.StatusServiceUnavailable, "not_ready"},
		{fmt.Errorf("%w: web is in a freeze", traffic.ErrWindowClosed), http.StatusConflict, "window_closed"},
		{fmt.Errorf("%w: gate smoke (pre) failed", traffic.ErrGateFailed), http.StatusConflict, "gate_failed"},
		{fmt.Errorf("%w: say why", traffic.ErrNeedsReason), http.StatusBadRequest, "needs_reason"},
		{fmt.Errorf("%w: web has no pools", traffic.ErrNoPreview), http.StatusUnprocessableEntity, "no_preview"},
		{fmt.Errorf("%w: web is a member of release checkout-3", traffic.ErrInRelease), http.StatusConflict, "in_release"},
		{errors.New("consul is down"), http.StatusServiceUnavailable, "unavailable"},
	}
	for _, tc := range cases {
		for _, path := range []string{"switch", "abort", "preview", "status"} {
			t.Run(tc.kind+"/"+path, func(t *testing.T) {
				r := newRig(t, "")
				method, url, body := "POST", "/v1/services/web/"+path, `{"to":"green"}`
				if path == "abort" || path == "preview" {
					body = ""
				}
				if path == "status" {
					method, url, body = "GET", "/v1/services/web", ""
					r.ctrl.statErr = tc.err
				} else {
					r.ctrl.opErr = tc.err
				}
				resp, raw := r.do(t, method, url, "", body)
				if resp.StatusCode != tc.code {
					t.Fatalf("status = %d, want %d; body %s", resp.StatusCode, tc.code, raw)
				}
				e := decodeError(t, resp, raw)
				if e.Code != tc.kind || e.Error != tc.err.Error() {
					t.Errorf("body = %+v, want code %q and the controller's message %q", e, tc.kind, tc.err.Error())
				}
			})
		}
	}
}

func TestUnknownServiceStatus(t *testing.T) {
	r := newRig(t, "")
	resp, raw := r.do(t, "GET", "/v1/services/nosuch", "", "")
	if resp.StatusCode != http.StatusNotFound {
		t.Fatalf("status = %d; body %s", resp.StatusCode, raw)
	}
	if e := decodeError(t, resp, raw); !strings.Contains(e.Error, `"nosuch"`) {
		t.Errorf("error %q does not name the service", e.Error)
	}
}

func TestIncompleteAcksIs504WithResult(t *testing.T) {
	for _, path := range []string{"switch", "abort"} {
		t.Run(path, func(t *testing.T) {
			r := newRig(t, "")
			r.ctrl.result.Acks = xds.AckResult{Acked: 1, Pending: []xds.ProxyInfo{
				{StreamID: 3, NodeID: "envoy-slow"},
				{StreamID: 4, NodeID: "grpc-bad", LastNACK: &xds.NACK{Message: "route rejected"}},
			}}
			body := `{"to":"green"}`
			if path == "abort" {
				body = ""
			}
			resp, raw := r.do(t, "POST", "/v1/services/web/"+path, "", body)
			if resp.StatusCode != http.StatusGatewayTimeout {
				t.Fatalf("status = %d, want 504; body %s", resp.StatusCode, raw)
			}
			var res traffic.Result
			if err := json.Unmarshal(raw, &res); err != nil {
				t.Fatalf("504 body is not a result: %v: %s", err, raw)
			}
			if res.Acks.Acked != 1 || len(res.Acks.Pending) != 2 || res.Acks.Pending[0].NodeID != "envoy-slow" ||
				res.Acks.Pending[1].LastNACK == nil || res.Acks.Pending[1].LastNACK.Message != "route rejected" {
				t.Errorf("acks = %+v", res.Acks)
			}
			if !res.Changed || res.Status.Service != "web" {
				t.Errorf("result = %+v, want the applied change", res)
			}
		})
	}
}

func TestReadyz(t *testing.T) {
	r := newRig(t, "")
	r.ctrl.setReady(false, "api", "web")
	for range 2 { // stays not ready until the controller says so
		resp, raw := r.do(t, "GET", "/readyz", "", "")
		if resp.StatusCode != http.StatusServiceUnavailable {
			t.Fatalf("status = %d, want 503; body %s", resp.StatusCode, raw)
		}
		var body struct {
			Status     string   `json:"status"`
			WaitingFor []string `json:"waiting_for"`
		}
		if err := json.Unmarshal(raw, &body); err != nil {
			t.Fatal(err)
		}
		if body.Status != "not ready" || !slices.Equal(body.WaitingFor, []string{"api", "web"}) {
			t.Errorf("body = %s", raw)
		}
	}
	r.ctrl.setReady(false, "web")
	_, raw := r.do(t, "GET", "/readyz", "", "")
	if !strings.Contains(string(raw), `"web"`) || strings.Contains(string(raw), `"api"`) {
		t.Errorf("waiting_for not updated: %s", raw)
	}
	r.ctrl.setReady(true)
	resp, raw := r.do(t, "GET", "/readyz", "", "")
	if resp.StatusCode != http.StatusOK || !strings.Contains(string(raw), `"ready"`) {
		t.Fatalf("status = %d, body %s; want 200 ready", resp.StatusCode, raw)
	}
}

func TestHealthzIgnoresReadiness(t *testing.T) {
	r := newRig(t, "")
	r.ctrl.setReady(false, "web")
	resp, raw := r.do(t, "GET", "/healthz", "", "")
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("status = %d; body %s", resp.StatusCode, raw)
	}
	if calls := r.ctrl.Calls(); len(calls) != 0 {
		t.Errorf("healthz consulted the controller: %v", calls)
	}
}

func TestWrongMethodChangesNothing(t *testing.T) {
	r := newRig(t, "")
	for _, rt := range []route{{"GET", "/v1/services/web/switch", ""}, {"PUT", "/v1/services/web/abort", ""}, {"DELETE", "/v1/services/web", ""}} {
		resp, raw := r.do(t, rt.method, rt.path, "", rt.body)
		if resp.StatusCode != http.StatusMethodNotAllowed {
			t.Errorf("%s %s = %d, want 405; body %s", rt.method, rt.path, resp.StatusCode, raw)
		}
	}
	if calls := r.ctrl.Calls(); len(calls) != 0 {
		t.Errorf("controller was called: %v", calls)
	}
}

func TestPprofOnlyWhenEnabledAndBehindToken(t *testing.T) {
	off := newRig(t, "s3cret")
	if resp, _ := off.do(t, "GET", "/debug/pprof/heap", "Bearer s3cret", ""); resp.StatusCode != http.StatusNotFound {
		t.Errorf("pprof off: GET /debug/pprof/heap = %d, want 404", resp.StatusCode)
	}
	on := &rig{ctrl: newFake(), gatherer: &countingGatherer{reg: prometheus.NewRegistry()}}
	on.srv = httptest.NewServer(Handler(on.ctrl, Options{Token: "s3cret", Pprof: true, Gatherer: on.gatherer, Log: slog.New(slog.DiscardHandler)}))
	t.Cleanup(on.srv.Close)
	if resp, _ := on.do(t, "GET", "/debug/pprof/heap", "", ""); resp.StatusCode != http.StatusUnauthorized {
		t.Errorf("pprof without token = %d, want 401", resp.StatusCode)
	}
	if resp, body := on.do(t, "GET", "/debug/pprof/heap?debug=1", "Bearer s3cret", ""); resp.StatusCode != http.StatusOK || !strings.Contains(string(body), "heap profile") {
		t.Errorf("pprof with token = %d %.80q", resp.StatusCode, body)
	}
}

func ptr[T any](v T) *T { return &v }
