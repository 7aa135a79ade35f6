package admin

import (
	"context"
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
	"github.com/bgctl/bg/controlplane/config"
	"github.com/bgctl/bg/controlplane/converge"
	"github.com/bgctl/bg/controlplane/traffic"
	"github.com/bgctl/bg/controlplane/xds"
)

type fakeConverge struct {
	mu      sync.Mutex
	desires []apiv1.DesireRequest
	actors  []string
	aborted []string
	err     error
}

func (f *fakeConverge) Desire(ctx context.Context, service string, req apiv1.DesireRequest) (apiv1.DesireResult, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.desires = append(f.desires, req)
	f.actors = append(f.actors, traffic.ActorFrom(ctx))
	return apiv1.DesireResult{Changed: true}, f.err
}

func (f *fakeConverge) DesireSet(ctx context.Context, req apiv1.DesireSetRequest) (apiv1.DesireSetResult, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	for k, v := range req.Set {
		f.desires = append(f.desires, apiv1.DesireRequest{Version: k + "=" + v})
		f.actors = append(f.actors, traffic.ActorFrom(ctx))
	}
	return apiv1.DesireSetResult{Changed: true}, f.err
}

func (f *fakeConverge) Get(service string) (apiv1.Convergence, error) {
	if service != "web" {
		return apiv1.Convergence{}, fmt.Errorf("%w %q", traffic.ErrUnknownService, service)
	}
	return apiv1.Convergence{State: converge.Settling}, nil
}

func (f *fakeConverge) Switched(ctx context.Context, service string) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.aborted = append(f.aborted, "switch "+service)
	return nil
}

func (f *fakeConverge) Aborted(ctx context.Context, service string, changed bool) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.aborted = append(f.aborted, service)
	return nil
}

func TestDesiredRoutes(t *testing.T) {
	f := &fakeConverge{}
	r := &rig{ctrl: newFake(), gatherer: &countingGatherer{reg: prometheus.NewRegistry()}}
	h := Handler(r.ctrl, Options{DefaultTimeout: time.Second, Gatherer: r.gatherer, Log: slog.New(slog.DiscardHandler),
		Proxies: func() []xds.ProxyInfo { return nil }, Converge: f,
		Tokens: []config.AdminCredential{
			{Name: "viewer", Scope: config.ScopeRead, SHA256: config.HashToken("read-token")},
			{Name: "ci", Scope: config.ScopeOperate, SHA256: config.HashToken("op-token")},
		}})
	r.srv = httptest.NewServer(h)
	t.Cleanup(r.srv.Close)

	if resp, raw := r.do(t, "GET", "/v1/services/web/desired", "Bearer read-token", ""); resp.StatusCode != 200 || !strings.Contains(string(raw), `"state": "settling"`) {
		t.Fatalf("GET: %d %s", resp.StatusCode, raw)
	}
	if resp, _ := r.do(t, "GET", "/v1/services/nope/desired", "Bearer read-token", ""); resp.StatusCode != 404 {
		t.Fatalf("GET unknown: %d", resp.StatusCode)
	}
	if resp, _ := r.do(t, "POST", "/v1/services/web/desired", "Bearer read-token", `{"version":"v2"}`); resp.StatusCode != http.StatusForbidden {
		t.Fatalf("POST with a read token: %d, want 403", resp.StatusCode)
	}
	for _, bad := range []string{`{"version":"v2","extra":1}`, `{"version":2}`, `{"version":"v2"}}`} {
		if resp, raw := r.do(t, "POST", "/v1/services/web/desired", "Bearer op-token", bad); resp.StatusCode != 400 {
			t.Fatalf("POST %s: %d %s", bad, resp.StatusCode, raw)
		}
	}
	if len(f.desires) != 0 {
		t.Fatalf("refused bodies reached the loop: %+v", f.desires)
	}
	if resp, raw := r.do(t, "POST", "/v1/services/web/desired", "Bearer op-token", `{"version":"v2","reason":"deploy 42"}`); resp.StatusCode != 200 {
		t.Fatalf("POST: %d %s", resp.StatusCode, raw)
	}
	if len(f.desires) != 1 || f.desires[0].Version != "v2" || !strings.Contains(f.actors[0], "token ci") {
		t.Fatalf("desires %+v by %v", f.desires, f.actors)
	}
	f.err = fmt.Errorf("%w: version: bad", converge.ErrBadDesire)
	if resp, raw := r.do(t, "POST", "/v1/services/web/desired", "Bearer op-token", `{"version":"v 2"}`); resp.StatusCode != 400 || !strings.Contains(string(raw), apiv1.CodeBadRequest) {
		t.Fatalf("a refused desire: %d %s", resp.StatusCode, raw)
	}
	f.err = nil
	if resp, raw := r.do(t, "POST", "/v1/desired", "Bearer read-token", `{"set":{"web":"v2"}}`); resp.StatusCode != http.StatusForbidden {
		t.Fatalf("POST /v1/desired with a read token: %d %s", resp.StatusCode, raw)
	}
	if resp, raw := r.do(t, "POST", "/v1/desired", "Bearer op-token", `{"set":{"web":"v2","api":"v7"},"reason":"r"}`); resp.StatusCode != 200 || len(f.desires) != 4 {
		t.Fatalf("POST /v1/desired: %d %s %+v", resp.StatusCode, raw, f.desires)
	}
	// An explicit abort clears a pending convergence.
	if resp, raw := r.do(t, "POST", "/v1/services/web/abort", "Bearer op-token", `{}`); resp.StatusCode != 200 {
		t.Fatalf("abort: %d %s", resp.StatusCode, raw)
	}
	if resp, raw := r.do(t, "POST", "/v1/services/web/switch", "Bearer op-token", `{"to":"green","instant":true}`); resp.StatusCode != 200 {
		t.Fatalf("switch: %d %s", resp.StatusCode, raw)
	}
	for deadline := time.Now().Add(5 * time.Second); ; time.Sleep(10 * time.Millisecond) { // told off the request
		f.mu.Lock()
		told := fmt.Sprint(slices.Sorted(slices.Values(f.aborted))) // each told on its own goroutine
		f.mu.Unlock()
		if told == "[switch web web]" {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("told %v", told)
		}
	}
}
