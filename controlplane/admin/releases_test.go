package admin

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	apiv1 "github.com/bgctl/bg/controlplane/api/v1"
	"github.com/bgctl/bg/controlplane/model"
	"github.com/bgctl/bg/controlplane/release"
	"github.com/bgctl/bg/controlplane/releases"
	"github.com/bgctl/bg/controlplane/state"
	"github.com/bgctl/bg/controlplane/traffic"
	"github.com/bgctl/bg/controlplane/xds"
)

// fakeReleases records every call; err fails them all.
type fakeReleases struct {
	mu     sync.Mutex
	calls  []string
	starts []apiv1.ReleaseRequest
	cmds   []apiv1.ReleaseCommand
	actors []string
	list   []apiv1.ReleaseStatus
	err    error
}

func (f *fakeReleases) record(ctx context.Context, call string) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.calls = append(f.calls, call)
	f.actors = append(f.actors, traffic.ActorFrom(ctx))
	return f.err
}

func (f *fakeReleases) Calls() []string {
	f.mu.Lock()
	defer f.mu.Unlock()
	return slices.Clone(f.calls)
}

func statusOf(id string) apiv1.ReleaseStatus {
	r, _ := release.New(id, "checkout", []release.Spec{{Service: "web", From: model.Blue, To: model.Green}}, 4, time.Date(2026, 3, 2, 10, 0, 0, 0, time.UTC))
	return apiv1.ReleaseStatus{Release: r, Order: r.Order(), Weights: map[string]apiv1.Weights{"web": {Blue: 100}}}
}

func (f *fakeReleases) Start(ctx context.Context, req apiv1.ReleaseRequest) (apiv1.ReleaseStatus, error) {
	f.mu.Lock()
	f.starts = append(f.starts, req)
	f.mu.Unlock()
	return statusOf("checkout-1"), f.record(ctx, "Start")
}

func (f *fakeReleases) List(ctx context.Context) ([]apiv1.ReleaseStatus, error) {
	return f.list, f.record(ctx, "List")
}

func (f *fakeReleases) Get(ctx context.Context, id string) (apiv1.ReleaseStatus, error) {
	return statusOf(id), f.record(ctx, "Get "+id)
}

func (f *fakeReleases) command(ctx context.Context, name, id string, cmd apiv1.ReleaseCommand) (apiv1.ReleaseStatus, error) {
	f.mu.Lock()
	f.cmds = append(f.cmds, cmd)
	f.mu.Unlock()
	return statusOf(id), f.record(ctx, name+" "+id)
}

func (f *fakeReleases) Abort(ctx context.Context, id string, cmd apiv1.ReleaseCommand) (apiv1.ReleaseStatus, error) {
	return f.command(ctx, "Abort", id, cmd)
}

func (f *fakeReleases) Pause(ctx context.Context, id string, cmd apiv1.ReleaseCommand) (apiv1.ReleaseStatus, error) {
	return f.command(ctx, "Pause", id, cmd)
}

func (f *fakeReleases) Resume(ctx context.Context, id string, cmd apiv1.ReleaseCommand) (apiv1.ReleaseStatus, error) {
	return f.command(ctx, "Resume", id, cmd)
}

func releaseRig(t *testing.T, token string, rs Releases) *rig {
	t.Helper()
	r := &rig{ctrl: newFake(), gatherer: &countingGatherer{reg: prometheus.NewRegistry()}}
	h := Handler(r.ctrl, Options{Token: token, DefaultTimeout: time.Second, Gatherer: r.gatherer, Log: slog.New(slog.DiscardHandler),
		Proxies: func() []xds.ProxyInfo { return nil }, Releases: rs})
	r.srv = httptest.NewServer(h)
	t.Cleanup(r.srv.Close)
	return r
}

var releaseRouteList = []route{
	{"POST", "/v1/releases", `{"name":"checkout","services":["web"]}`},
	{"GET", "/v1/releases", ""},
	{"GET", "/v1/releases/checkout-1", ""},
	{"POST", "/v1/releases/checkout-1/abort", `{"reason":"INC-1"}`},
	{"POST", "/v1/releases/checkout-1/pause", ""},
	{"POST", "/v1/releases/checkout-1/resume", "{}"},
}

func TestReleaseRoutes(t *testing.T) {
	f := &fakeReleases{}
	r := releaseRig(t, "s3cret", f)
	for _, rt := range releaseRouteList {
		// The token guards every release route.
		if resp, raw := r.do(t, rt.method, rt.path, "Bearer nope", rt.body); resp.StatusCode != http.StatusUnauthorized {
			t.Fatalf("%s %s without the token: %d %s", rt.method, rt.path, resp.StatusCode, raw)
		}
	}
	if calls := f.Calls(); len(calls) != 0 {
		t.Fatalf("unauthorized requests reached the executor: %v", calls)
	}
	for _, rt := range releaseRouteList {
		req, _ := http.NewRequest(rt.method, r.srv.URL+rt.path, strings.NewReader(rt.body))
		req.Header.Set("Authorization", "Bearer s3cret")
		req.Header.Set(ActorHeader, "cli:ann@laptop")
		resp, err := r.srv.Client().Do(req)
		if err != nil {
			t.Fatal(err)
		}
		var body json.RawMessage
		_ = json.NewDecoder(resp.Body).Decode(&body)
		resp.Body.Close()
		want := http.StatusOK
		if rt.path == "/v1/releases" && rt.method == "POST" {
			want = http.StatusCreated
		}
		if resp.StatusCode != want {
			t.Fatalf("%s %s: %d, want %d: %s", rt.method, rt.path, resp.StatusCode, want, body)
		}
		if rt.path == "/v1/releases" && rt.method == "GET" {
			if string(body) != "[]" {
				t.Fatalf("no releases listed as %s, want []", body)
			}
			continue
		}
		var st apiv1.ReleaseStatus
		if err := json.Unmarshal(body, &st); err != nil || st.Release.ID == "" || len(st.Order) != 1 || st.Weights["web"].Blue != 100 {
			t.Fatalf("%s %s answered %s (%v)", rt.method, rt.path, body, err)
		}
	}
	want := []string{"Start", "List", "Get checkout-1", "Abort checkout-1", "Pause checkout-1", "Resume checkout-1"}
	if calls := f.Calls(); !slices.Equal(calls, want) {
		t.Fatalf("calls %v, want %v", calls, want)
	}
	if f.starts[0].Name != "checkout" || !slices.Equal(f.starts[0].Services, []string{"web"}) || f.cmds[0].Reason != "INC-1" {
		t.Fatalf("bodies did not reach the executor: %+v %+v", f.starts, f.cmds)
	}
	// Commands name who asked (history); reads do not.
	if !strings.HasPrefix(f.actors[0], "cli:ann@laptop (") || f.actors[1] != "" || !strings.HasPrefix(f.actors[3], "cli:ann@laptop") {
		t.Fatalf("actors %q", f.actors)
	}
}

// Bodies are decoded strictly: nothing reaches the executor.
func TestReleaseBodiesAreStrict(t *testing.T) {
	f := &fakeReleases{}
	r := releaseRig(t, "", f)
	for _, c := range []struct{ method, path, body, inError string }{
		{"POST", "/v1/releases", `{"name":"x","service":["web"]}`, "unknown field"},
		{"POST", "/v1/releases", `{"name":"x","services":"web"}`, "invalid JSON"},
		{"POST", "/v1/releases", `{"name":"x"}{}`, "trailing"},
		{"POST", "/v1/releases", `{"max_parallel":"2"}`, "invalid JSON"},
		{"POST", "/v1/releases/checkout-1/abort", `{"why":"x"}`, "unknown field"},
		{"POST", "/v1/releases/checkout-1/pause", `[]`, "invalid JSON"},
		{"GET", "/v1/releases?limit=3", "", "no query"},
	} {
		resp, raw := r.do(t, c.method, c.path, "", c.body)
		if resp.StatusCode != http.StatusBadRequest {
			t.Fatalf("%s %s %s: %d %s", c.method, c.path, c.body, resp.StatusCode, raw)
		}
		if e := decodeError(t, resp, raw); e.Code != apiv1.CodeBadRequest || !strings.Contains(e.Error, c.inError) {
			t.Errorf("%s: %+v, want bad_request with %q", c.body, e, c.inError)
		}
	}
	if calls := f.Calls(); len(calls) != 0 {
		t.Fatalf("bad bodies reached the executor: %v", calls)
	}
}

func TestReleaseErrorMapping(t *testing.T) {
	for _, tc := range []struct {
		err  error
		code int
		kind string
	}{
		{fmt.Errorf("%w %q", releases.ErrUnknownRelease, "checkout-9"), http.StatusNotFound, apiv1.CodeUnknownRelease},
		{fmt.Errorf("%w: name: required", releases.ErrBadRequest), http.StatusBadRequest, apiv1.CodeBadRequest},
		{fmt.Errorf("%w %q (services[1])", traffic.ErrUnknownService, "cart"), http.StatusNotFound, apiv1.CodeUnknownService},
		{fmt.Errorf("%w: api is switching (switch gen-4 to green, progressing)", traffic.ErrBusy), http.StatusConflict, apiv1.CodeSwitchRunning},
		{fmt.Errorf("%w: api is a member of release checkout-2", traffic.ErrInRelease), http.StatusConflict, apiv1.CodeInRelease},
		{fmt.Errorf("%w: release checkout waits for every member's window: api (freeze)", traffic.ErrWindowClosed), http.StatusConflict, apiv1.CodeWindowClosed},
		{fmt.Errorf("%w: say why", traffic.ErrNeedsReason), http.StatusBadRequest, apiv1.CodeNeedsReason},
		{fmt.Errorf("%w: web already serves all of its traffic on blue", traffic.ErrBadPlan), http.StatusBadRequest, apiv1.CodeBadPlan},
		{fmt.Errorf("%w: release checkout-1 ended promoted", release.ErrEnded), http.StatusConflict, apiv1.CodeReleaseState},
		{release.ErrRollingBack, http.StatusConflict, apiv1.CodeReleaseState},
		{release.ErrNotStarted, http.StatusConflict, apiv1.CodeReleaseState},
		{fmt.Errorf("%w: this replica does not lead", state.ErrNotLeader), http.StatusServiceUnavailable, apiv1.CodeNotLeader},
		{fmt.Errorf("%w: the releases are not loaded yet", traffic.ErrNotReady), http.StatusServiceUnavailable, apiv1.CodeNotReady},
		{errors.New("consul is down"), http.StatusServiceUnavailable, apiv1.CodeUnavailable},
	} {
		for _, rt := range releaseRouteList {
			t.Run(tc.kind+"/"+rt.method+rt.path, func(t *testing.T) {
				r := releaseRig(t, "", &fakeReleases{err: tc.err})
				resp, raw := r.do(t, rt.method, rt.path, "", rt.body)
				if resp.StatusCode != tc.code {
					t.Fatalf("status %d, want %d: %s", resp.StatusCode, tc.code, raw)
				}
				if e := decodeError(t, resp, raw); e.Code != tc.kind || e.Error != tc.err.Error() {
					t.Fatalf("body %+v, want %s with the executor's message", e, tc.kind)
				}
			})
		}
	}
}

// Without an executor the release routes do not exist.
func TestNoReleaseRoutesWithoutExecutor(t *testing.T) {
	r := newRig(t, "")
	for _, rt := range releaseRouteList {
		if resp, raw := r.do(t, rt.method, rt.path, "", rt.body); resp.StatusCode != http.StatusNotFound {
			t.Fatalf("%s %s: %d %s", rt.method, rt.path, resp.StatusCode, raw)
		}
	}
}
