package admin

import (
	"context"
	"encoding/json"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"sync/atomic"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	apiv1 "github.com/bgctl/bg/controlplane/api/v1"
	"github.com/bgctl/bg/controlplane/config"
)

// POST /v1/reload needs the operate scope, answers each result with its
// status and code, and is never forwarded: each replica reloads its own
// file, whoever leads.
func TestReloadRoute(t *testing.T) {
	var calls atomic.Int32
	next := apiv1.ReloadSuccess
	var creds []config.AdminCredential
	for _, s := range config.Scopes {
		creds = append(creds, config.AdminCredential{Name: "tok-" + string(s), Scope: s, SHA256: config.HashToken(scopeTokens[s])})
	}
	h := Handler(newFake(), Options{Tokens: creds, Gatherer: prometheus.NewRegistry(), Log: slog.New(slog.DiscardHandler), DefaultTimeout: time.Second,
		Leader: func(context.Context) (string, bool, error) { return "192.0.2.1:9", false, nil }, // another replica leads
		Reload: func() apiv1.ReloadAttempt {
			calls.Add(1)
			a := apiv1.ReloadAttempt{Result: next, Trigger: apiv1.TriggerAPI, Generation: 2}
			if next != apiv1.ReloadSuccess {
				a.Error = "xds.listen cannot change without a restart"
			}
			return a
		}})
	post := func(token string) (*httptest.ResponseRecorder, apiv1.ReloadAttempt) {
		req := httptest.NewRequest(http.MethodPost, "/v1/reload", nil)
		req.Header.Set("Authorization", "Bearer "+token)
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, req)
		var a apiv1.ReloadAttempt
		_ = json.Unmarshal(rec.Body.Bytes(), &a)
		return rec, a
	}
	if rec, _ := post(scopeTokens[config.ScopeRead]); rec.Code != http.StatusForbidden || calls.Load() != 0 {
		t.Fatalf("read token: HTTP %d, %d reloads", rec.Code, calls.Load())
	}
	for _, tc := range []struct {
		result apiv1.ReloadResult
		status int
		code   string
	}{
		{apiv1.ReloadSuccess, http.StatusOK, ""},
		{apiv1.ReloadRefused, http.StatusConflict, apiv1.CodeRestartRequired},
		{apiv1.ReloadInvalid, http.StatusUnprocessableEntity, apiv1.CodeConfigInvalid},
	} {
		next = tc.result
		rec, a := post(scopeTokens[config.ScopeOperate])
		if rec.Code != tc.status || a.Result != tc.result || a.Code != tc.code || a.Generation != 2 {
			t.Errorf("%s: HTTP %d %+v, want %d code %q", tc.result, rec.Code, a, tc.status, tc.code)
		}
	}
	if calls.Load() != 3 {
		t.Fatalf("%d reloads ran here, want 3 (none forwarded)", calls.Load())
	}
}

func TestReloadRouteUnavailable(t *testing.T) {
	h := Handler(newFake(), Options{Gatherer: prometheus.NewRegistry(), Log: slog.New(slog.DiscardHandler)})
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, httptest.NewRequest(http.MethodPost, "/v1/reload", nil))
	if rec.Code != http.StatusNotImplemented {
		t.Fatalf("HTTP %d", rec.Code)
	}
}
