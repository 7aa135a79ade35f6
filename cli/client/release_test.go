package client

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"reflect"
	"testing"

	apiv1 "github.com/bgctl/bg/controlplane/api/v1"
	"github.com/bgctl/bg/controlplane/release"
)

func TestReleaseEndpoints(t *testing.T) {
	type call struct {
		method, uri, body, auth string
	}
	var calls []call
	st := apiv1.ReleaseStatus{
		Release: release.Release{ID: "rel-1", Name: "checkout", Phase: release.Running, MaxParallel: 2, Generation: 3,
			Members: []release.Member{{Service: "auth", From: "blue", To: "green", Phase: release.MemberSwitching, SwitchID: "gen-4"}}},
		Order:   [][]string{{"auth"}},
		Weights: map[string]apiv1.Weights{"auth": {Blue: 90, Green: 10}},
	}
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b, _ := io.ReadAll(r.Body)
		calls = append(calls, call{r.Method, r.URL.RequestURI(), string(b), r.Header.Get("Authorization")})
		w.Header().Set("Content-Type", "application/json")
		switch {
		case r.URL.Path == "/v1/releases/nosuch":
			w.WriteHeader(http.StatusNotFound)
			_ = json.NewEncoder(w).Encode(apiv1.ErrorBody{Error: `unknown release "nosuch"`, Code: "unknown_release"})
		case r.URL.Path == "/v1/releases/busy/pause":
			w.WriteHeader(http.StatusConflict)
			_ = json.NewEncoder(w).Encode(apiv1.ErrorBody{Error: "rolling back", Code: apiv1.CodeConflict})
		case r.Method == http.MethodGet && r.URL.Path == "/v1/releases":
			_ = json.NewEncoder(w).Encode([]apiv1.ReleaseStatus{st, st})
		case r.Method == http.MethodPost && r.URL.Path == "/v1/releases":
			w.WriteHeader(http.StatusCreated)
			_ = json.NewEncoder(w).Encode(st)
		default:
			_ = json.NewEncoder(w).Encode(st)
		}
	}))
	defer srv.Close()
	ctx := context.Background()
	c := &Client{Addr: srv.URL, Token: "tok"}

	got, err := c.StartRelease(ctx, apiv1.ReleaseRequest{Name: "checkout", Services: []string{"auth", "api"}, To: "green", MaxParallel: 2, Force: true, Reason: "INC-1"})
	if err != nil || !reflect.DeepEqual(got, st) {
		t.Fatalf("StartRelease = %+v, %v", got, err)
	}
	list, err := c.Releases(ctx)
	if err != nil || len(list) != 2 || list[1].Release.ID != "rel-1" {
		t.Fatalf("Releases = %+v, %v", list, err)
	}
	one, err := c.Release(ctx, "rel/1")
	if err != nil || one.Weights["auth"].Green != 10 || one.Order[0][0] != "auth" {
		t.Fatalf("Release = %+v, %v", one, err)
	}
	for _, f := range []func(context.Context, string, apiv1.ReleaseCommand) (apiv1.ReleaseStatus, error){c.AbortRelease, c.PauseRelease, c.ResumeRelease} {
		if got, err := f(ctx, "rel-1", apiv1.ReleaseCommand{Reason: "why"}); err != nil || got.Release.ID != "rel-1" {
			t.Fatalf("command = %+v, %v", got, err)
		}
	}
	_, err = c.Release(ctx, "nosuch")
	var apiErr *APIError
	if !errors.As(err, &apiErr) || apiErr.Body.Code != "unknown_release" || !IsNotFound(err) {
		t.Errorf("unknown release: %v", err)
	}
	_, err = c.PauseRelease(ctx, "busy", apiv1.ReleaseCommand{})
	if !errors.As(err, &apiErr) || apiErr.StatusCode != http.StatusConflict || IsNotFound(err) || err.Error() != "rolling back" {
		t.Errorf("refused pause: %v", err)
	}

	want := []call{
		{"POST", "/v1/releases", `{"name":"checkout","services":["auth","api"],"to":"green","max_parallel":2,"force":true,"reason":"INC-1"}`, "Bearer tok"},
		{"GET", "/v1/releases", "", "Bearer tok"},
		{"GET", "/v1/releases/rel%2F1", "", "Bearer tok"},
		{"POST", "/v1/releases/rel-1/abort", `{"reason":"why"}`, "Bearer tok"},
		{"POST", "/v1/releases/rel-1/pause", `{"reason":"why"}`, "Bearer tok"},
		{"POST", "/v1/releases/rel-1/resume", `{"reason":"why"}`, "Bearer tok"},
		{"GET", "/v1/releases/nosuch", "", "Bearer tok"},
		{"POST", "/v1/releases/busy/pause", `{}`, "Bearer tok"},
	}
	if !reflect.DeepEqual(calls, want) {
		t.Errorf("calls:\n%q\nwant\n%q", calls, want)
	}
}
