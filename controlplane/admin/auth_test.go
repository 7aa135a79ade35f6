package admin

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"

	apiv1 "github.com/bgctl/bg/controlplane/api/v1"
	"github.com/bgctl/bg/controlplane/config"
	"github.com/bgctl/bg/controlplane/xds"
)

// Every registered route has an entry in routeScopes, and every entry is
// a registered route (with every optional route turned on).
func TestEveryRouteHasAScope(t *testing.T) {
	rt := &router{mux: http.NewServeMux()}
	registerRoutes(rt, newFake(), Options{Pprof: true, Releases: &fakeReleases{}, Converge: &fakeConverge{}, Gatherer: prometheus.NewRegistry(),
		Proxies: func() []xds.ProxyInfo { return nil }})
	if len(rt.patterns) == 0 {
		t.Fatal("no routes registered")
	}
	for _, p := range rt.patterns {
		rule, ok := routeScopes[p]
		if !ok {
			t.Errorf("route %q has no scope in routeScopes", p)
			continue
		}
		if err := rule.Scope.Validate(); err != nil {
			t.Errorf("route %q: %v", p, err)
		}
		if rule.Forceable && !strings.HasPrefix(p, "POST ") {
			t.Errorf("route %q: only commands take force", p)
		}
		if strings.HasPrefix(p, "POST ") && rule.Scope == config.ScopeRead {
			t.Errorf("route %q: a command must need more than read", p)
		}
	}
	for p := range routeScopes {
		if !slices.Contains(rt.patterns, p) {
			t.Errorf("routeScopes has %q, which is not a route", p)
		}
	}
}

// A route added without a scope cannot be served: registering it panics,
// so every test that builds the handler fails.
func TestRouteWithoutScopePanics(t *testing.T) {
	defer func() {
		if recover() == nil {
			t.Fatal("registering a route without a scope did not panic")
		}
	}()
	rt := &router{mux: http.NewServeMux()}
	rt.HandleFunc("POST /v1/services/{name}/explode", func(http.ResponseWriter, *http.Request) {})
}

func TestScopeOrder(t *testing.T) {
	r, o, v := config.ScopeRead, config.ScopeOperate, config.ScopeOverride
	for _, tc := range []struct {
		have, need config.Scope
		ok         bool
	}{
		{r, r, true}, {r, o, false}, {r, v, false},
		{o, r, true}, {o, o, true}, {o, v, false},
		{v, r, true}, {v, o, true}, {v, v, true},
		{"admin", r, false}, {v, "", false}, {"", "", false},
	} {
		if got := tc.have.Allows(tc.need); got != tc.ok {
			t.Errorf("%q allows %q = %v, want %v", tc.have, tc.need, got, tc.ok)
		}
	}
}

// scopedRig serves the API with one token per scope.
type scopedRig struct {
	ctrl    *fakeController
	rels    *fakeReleases
	h       http.Handler
	reg     *prometheus.Registry
	logs    *bytes.Buffer
	tokens  map[config.Scope]string
	limiter *failLimiter
}

var scopeTokens = map[config.Scope]string{
	config.ScopeRead:     "read-token-1",
	config.ScopeOperate:  "operate-token-2",
	config.ScopeOverride: "override-token-3",
}

func newScopedRig(t *testing.T) *scopedRig {
	t.Helper()
	r := &scopedRig{ctrl: newFake(), rels: &fakeReleases{}, reg: prometheus.NewRegistry(), logs: &bytes.Buffer{}, tokens: scopeTokens}
	var creds []config.AdminCredential
	for _, s := range config.Scopes {
		creds = append(creds, config.AdminCredential{Name: "tok-" + string(s), Scope: s, SHA256: config.HashToken(scopeTokens[s])})
	}
	h := Handler(r.ctrl, Options{Tokens: creds, AuthMetrics: NewAuthMetrics(r.reg), Pprof: true, Releases: r.rels,
		DefaultTimeout: time.Second, Gatherer: prometheus.NewRegistry(), Proxies: func() []xds.ProxyInfo { return nil },
		Log: slog.New(slog.NewTextHandler(r.logs, nil))})
	r.h = h
	r.limiter = h.(*authenticator).limiter
	return r
}

// serve sends one request from remote (host:port) with token ("" for none).
func (r *scopedRig) serve(method, path, token, body, remote string) *httptest.ResponseRecorder {
	var rd io.Reader
	if body != "" {
		rd = strings.NewReader(body)
	}
	req := httptest.NewRequest(method, path, rd)
	req.RemoteAddr = remote
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	rec := httptest.NewRecorder()
	r.h.ServeHTTP(rec, req)
	return rec
}

func errorBody(t *testing.T, rec *httptest.ResponseRecorder) apiv1.ErrorBody {
	t.Helper()
	var e apiv1.ErrorBody
	if err := json.Unmarshal(rec.Body.Bytes(), &e); err != nil || e.Code == "" || e.Error == "" {
		t.Fatalf("not an error body (%v): %s", err, rec.Body)
	}
	return e
}

func TestScopes(t *testing.T) {
	const (
		R = config.ScopeRead
		O = config.ScopeOperate
		V = config.ScopeOverride
	)
	force := `{"force":true,"reason":"INC-1"}`
	cases := []struct {
		method, path, body string
		need               config.Scope
	}{
		{"GET", "/healthz", "", R},
		{"GET", "/readyz", "", R},
		{"GET", "/metrics", "", R},
		{"GET", "/v1/services", "", R},
		{"GET", "/v1/services/web", "", R},
		{"GET", "/v1/services/web/history", "", R},
		{"GET", "/v1/proxies", "", R},
		{"GET", "/v1/releases", "", R},
		{"GET", "/v1/releases/checkout-1", "", R},
		{"GET", "/no/such/path", "", R},
		{"POST", "/v1/services/web/switch", `{"to":"green"}`, O},
		{"POST", "/v1/services/web/switch", `{"to":"green","dry_run":true}`, O},
		{"POST", "/v1/services/web/abort", "", O},
		{"POST", "/v1/services/web/pause", "{}", O},
		{"POST", "/v1/services/web/resume", "", O},
		{"POST", "/v1/services/web/promote", `{"force":false}`, O},
		{"POST", "/v1/services/web/preview", `{"to":"green"}`, O},
		{"POST", "/v1/releases", `{"name":"checkout","services":["web"]}`, O},
		{"POST", "/v1/releases/checkout-1/abort", `{"reason":"x"}`, O},
		{"POST", "/v1/releases/checkout-1/pause", "", O},
		{"POST", "/v1/releases/checkout-1/resume", "", O},
		{"POST", "/v1/services/web/switch", `{"to":"green","force":true,"reason":"INC-1"}`, V},
		{"POST", "/v1/services/web/abort", force, V},
		{"POST", "/v1/services/web/pause", force, V},
		{"POST", "/v1/services/web/resume", force, V},
		{"POST", "/v1/services/web/promote", force, V},
		{"POST", "/v1/services/web/preview", force, V},
		{"POST", "/v1/releases", `{"name":"checkout","services":["web"],"force":true,"reason":"x"}`, V},
		// Decoded as the handler decodes: keys are case-insensitive, the last one wins.
		{"POST", "/v1/services/web/switch", `{"to":"green","FORCE":true,"reason":"x"}`, V},
		{"POST", "/v1/services/web/switch", `{"force":false,"to":"green","force":true,"reason":"x"}`, V},
		{"GET", "/debug/pprof/", "", V},
	}
	for _, tc := range cases {
		for _, have := range config.Scopes {
			t.Run(fmt.Sprintf("%s %s %s/%s", tc.method, tc.path, tc.body, have), func(t *testing.T) {
				r := newScopedRig(t)
				rec := r.serve(tc.method, tc.path, r.tokens[have], tc.body, "192.0.2.7:1000")
				if have.Allows(tc.need) {
					if rec.Code == http.StatusForbidden || rec.Code == http.StatusUnauthorized {
						t.Fatalf("scope %s: %d %s", have, rec.Code, rec.Body)
					}
					return
				}
				if rec.Code != http.StatusForbidden {
					t.Fatalf("scope %s: %d, want 403; %s", have, rec.Code, rec.Body)
				}
				e := errorBody(t, rec)
				if e.Code != apiv1.CodeForbidden || !strings.Contains(e.Error, "needs scope "+string(tc.need)) ||
					!strings.Contains(e.Error, `"tok-`+string(have)+`"`) {
					t.Errorf("403 body %+v: want code forbidden naming the token and scope %s", e, tc.need)
				}
				if calls := r.ctrl.Calls(); len(calls) != 0 {
					t.Errorf("a forbidden request reached the controller: %v", calls)
				}
				if calls := r.rels.Calls(); len(calls) != 0 {
					t.Errorf("a forbidden request reached the releases: %v", calls)
				}
				if got := testutil.ToFloat64(r.h.(*authenticator).metrics.failures.WithLabelValues("forbidden")); got != 1 {
					t.Errorf("forbidden failures = %v, want 1", got)
				}
			})
		}
	}
}

func TestMissingOrWrongTokenIs401(t *testing.T) {
	r := newScopedRig(t)
	for _, auth := range []string{"", "wrong", "read-token-", "read-token-1x"} {
		rec := r.serve("GET", "/v1/services", auth, "", "192.0.2.8:1")
		if rec.Code != http.StatusUnauthorized {
			t.Fatalf("token %q: %d, want 401", auth, rec.Code)
		}
		if e := errorBody(t, rec); e.Code != apiv1.CodeUnauthorized {
			t.Errorf("token %q: code %q", auth, e.Code)
		}
	}
	m := r.h.(*authenticator).metrics.failures
	if got := testutil.ToFloat64(m.WithLabelValues("missing")); got != 1 {
		t.Errorf("missing = %v, want 1", got)
	}
	if got := testutil.ToFloat64(m.WithLabelValues("wrong")); got != 3 {
		t.Errorf("wrong = %v, want 3", got)
	}
	// The counter is on the registry given.
	if n, err := testutil.GatherAndCount(r.reg, "bg_admin_auth_failures_total"); err != nil || n != 4 {
		t.Errorf("gathered %d series (%v), want 4 reasons", n, err)
	}
}

func TestFailedAuthenticationsAreRateLimited(t *testing.T) {
	r := newScopedRig(t)
	now := time.Unix(1_700_000_000, 0)
	r.limiter.now = func() time.Time { return now }
	const attacker, other = "198.51.100.1:4000", "198.51.100.2:4000"
	for i := 0; i < authFailBurst; i++ {
		if rec := r.serve("GET", "/v1/services", "guess-"+strconv.Itoa(i), "", attacker); rec.Code != http.StatusUnauthorized {
			t.Fatalf("failure %d: %d, want 401", i+1, rec.Code)
		}
	}
	// The 11th is refused unchecked: even the right token.
	for _, tok := range []string{"guess-11", scopeTokens[config.ScopeOverride]} {
		rec := r.serve("GET", "/v1/services", tok, "", attacker)
		if rec.Code != http.StatusTooManyRequests {
			t.Fatalf("token %q after %d failures: %d, want 429", tok, authFailBurst, rec.Code)
		}
		if e := errorBody(t, rec); e.Code != apiv1.CodeRateLimited {
			t.Errorf("code %q, want rate_limited", e.Code)
		}
		if ra, err := strconv.Atoi(rec.Header().Get("Retry-After")); err != nil || ra < 1 || ra > 60 {
			t.Errorf("Retry-After %q", rec.Header().Get("Retry-After"))
		}
	}
	// Another client is not affected.
	if rec := r.serve("GET", "/v1/services", scopeTokens[config.ScopeRead], "", other); rec.Code != http.StatusOK {
		t.Fatalf("other client: %d", rec.Code)
	}
	m := r.h.(*authenticator).metrics.failures
	if got := testutil.ToFloat64(m.WithLabelValues("rate_limited")); got != 2 {
		t.Errorf("rate_limited = %v, want 2", got)
	}
	if got := testutil.ToFloat64(m.WithLabelValues("wrong")); got != authFailBurst {
		t.Errorf("wrong = %v, want %d (the limited ones are not checked)", got, authFailBurst)
	}
	// The bucket refills: 10 a minute, so one try after 6 s.
	now = now.Add(6100 * time.Millisecond)
	if rec := r.serve("GET", "/v1/services", scopeTokens[config.ScopeRead], "", attacker); rec.Code != http.StatusOK {
		t.Fatalf("after 6.1 s: %d, want 200", rec.Code)
	}
	if rec := r.serve("GET", "/v1/services", "again", "", attacker); rec.Code != http.StatusUnauthorized {
		t.Fatalf("one more failure after 6.1 s: %d, want 401", rec.Code)
	}
	if rec := r.serve("GET", "/v1/services", "again", "", attacker); rec.Code != http.StatusTooManyRequests {
		t.Fatalf("and the next: %d, want 429", rec.Code)
	}
	// Successes never count: a valid token used 100 times is never limited.
	for i := 0; i < 100; i++ {
		if rec := r.serve("GET", "/healthz", scopeTokens[config.ScopeRead], "", other); rec.Code != http.StatusOK {
			t.Fatalf("request %d with a valid token: %d", i, rec.Code)
		}
	}
}

func TestLimiterMemoryIsBounded(t *testing.T) {
	l := newFailLimiter()
	l.maxClients = 100
	now := time.Unix(1_700_000_000, 0)
	l.now = func() time.Time { return now }
	for i := 0; i < 10_000; i++ {
		l.Fail(fmt.Sprintf("10.0.%d.%d", i/256, i%256))
	}
	if n := l.Len(); n > l.maxClients+1 {
		t.Fatalf("%d buckets for 10,000 clients, want at most %d", n, l.maxClients+1)
	}
	// The overflow bucket is shared, so a flood of new addresses is limited too.
	if limited, _ := l.Limited("10.99.0.1"); !limited {
		t.Error("a new client while full and flooded: not limited")
	}
	// Once the buckets refill, new clients get their own again.
	now = now.Add(2 * time.Minute)
	l.Fail("10.200.0.1")
	if limited, _ := l.Limited("10.200.0.2"); limited {
		t.Error("after the buckets refilled, a new client is limited")
	}
	if n := l.Len(); n > l.maxClients+1 {
		t.Fatalf("%d buckets after refill, want at most %d", n, l.maxClients+1)
	}
}

func TestBodyLimit(t *testing.T) {
	r := newScopedRig(t)
	big := `{"to":"green","reason":"` + strings.Repeat("x", MaxRequestBody) + `"}`
	rec := r.serve("POST", "/v1/services/web/switch", scopeTokens[config.ScopeOperate], big, "192.0.2.9:1")
	if rec.Code != http.StatusRequestEntityTooLarge {
		t.Fatalf("%d bytes: %d, want 413", len(big), rec.Code)
	}
	if e := errorBody(t, rec); e.Code != apiv1.CodeTooLarge {
		t.Errorf("code %q, want too_large", e.Code)
	}
	// Without a Content-Length (chunked), the read itself stops at the limit.
	req := httptest.NewRequest("POST", "/v1/services/web/switch", io.MultiReader(strings.NewReader(big)))
	req.ContentLength = -1
	req.Header.Set("Authorization", "Bearer "+scopeTokens[config.ScopeOperate])
	rec = httptest.NewRecorder()
	r.h.ServeHTTP(rec, req)
	if rec.Code != http.StatusRequestEntityTooLarge {
		t.Fatalf("chunked %d bytes: %d, want 413", len(big), rec.Code)
	}
	if calls := r.ctrl.Calls(); len(calls) != 0 {
		t.Errorf("controller was called: %v", calls)
	}
	// Without a token the body is never read: 401, not 413.
	if rec := r.serve("POST", "/v1/services/web/switch", "", big, "192.0.2.9:2"); rec.Code != http.StatusUnauthorized {
		t.Errorf("unauthenticated big body: %d, want 401", rec.Code)
	}
	// The same limit holds on an open (loopback, no token) API.
	open := Handler(newFake(), Options{Gatherer: prometheus.NewRegistry(), Log: slog.New(slog.DiscardHandler)})
	req = httptest.NewRequest("POST", "/v1/services/web/switch", strings.NewReader(big))
	rec = httptest.NewRecorder()
	open.ServeHTTP(rec, req)
	if rec.Code != http.StatusRequestEntityTooLarge {
		t.Errorf("open API, big body: %d, want 413", rec.Code)
	}
}

// The token's name is the actor in the history and in the audit line; the
// token itself is in neither, nor in any log line.
func TestTokenNameIsTheActor(t *testing.T) {
	r := newScopedRig(t)
	req := httptest.NewRequest("POST", "/v1/services/web/switch", strings.NewReader(`{"to":"green"}`))
	req.RemoteAddr = "192.0.2.10:5555"
	req.Header.Set("Authorization", "Bearer "+scopeTokens[config.ScopeOperate])
	req.Header.Set(ActorHeader, "cli:ann@laptop")
	rec := httptest.NewRecorder()
	r.h.ServeHTTP(rec, req)
	if rec.Code != http.StatusOK {
		t.Fatalf("%d %s", rec.Code, rec.Body)
	}
	r.ctrl.mu.Lock()
	actors := slices.Clone(r.ctrl.actors)
	r.ctrl.mu.Unlock()
	if want := "cli:ann@laptop (token tok-operate, 192.0.2.10:5555)"; len(actors) != 1 || actors[0] != want {
		t.Errorf("actors %q, want [%q]", actors, want)
	}
	r.serve("GET", "/v1/services", "not-a-token", "", "192.0.2.10:5556")
	logs := r.logs.String()
	if !strings.Contains(logs, "token=tok-operate") || !strings.Contains(logs, `msg="admin request"`) {
		t.Errorf("audit line lacks the token name:\n%s", logs)
	}
	for _, secret := range []string{scopeTokens[config.ScopeOperate], "not-a-token"} {
		if strings.Contains(logs, secret) {
			t.Errorf("logs show the token %q:\n%s", secret, logs)
		}
	}
}

// admin.token keeps working as one override token named "admin.token".
func TestLegacyTokenIsOverride(t *testing.T) {
	ctrl := newFake()
	h := Handler(ctrl, Options{Token: "s3cret", Tokens: []config.AdminCredential{{Name: "dash", Scope: config.ScopeRead, SHA256: config.HashToken("d")}},
		Gatherer: prometheus.NewRegistry(), Log: slog.New(slog.DiscardHandler), DefaultTimeout: time.Second})
	req := httptest.NewRequest("POST", "/v1/services/web/switch", strings.NewReader(`{"to":"green","force":true,"reason":"x"}`))
	req.Header.Set("Authorization", "Bearer s3cret")
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, req)
	if rec.Code != http.StatusOK {
		t.Fatalf("forced switch with admin.token: %d %s", rec.Code, rec.Body)
	}
	ctrl.mu.Lock()
	defer ctrl.mu.Unlock()
	if len(ctrl.actors) != 1 || !strings.Contains(ctrl.actors[0], "(token admin.token, ") {
		t.Errorf("actors %q, want the token named admin.token", ctrl.actors)
	}
}

// The whole hash is compared: a token whose SHA-256 shares the first
// bytes of a configured one's is refused.
func TestHashPrefixIsNotEnough(t *testing.T) {
	r := newScopedRig(t)
	want := config.HashToken(scopeTokens[config.ScopeRead])
	var near string
	for i := 0; near == ""; i++ {
		cand := "near-" + strconv.Itoa(i)
		if h := config.HashToken(cand); h[0] == want[0] && h[1] == want[1] {
			near = cand
		}
	}
	if rec := r.serve("GET", "/v1/services", near, "", "192.0.2.11:1"); rec.Code != http.StatusUnauthorized {
		t.Fatalf("token %q (hash prefix shared with the read token's): %d, want 401", near, rec.Code)
	}
	if rec := r.serve("GET", "/v1/services", scopeTokens[config.ScopeRead], "", "192.0.2.11:1"); rec.Code != http.StatusOK {
		t.Fatalf("the read token: %d", rec.Code)
	}
}
