package client

import (
	"context"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
)

func TestActorHeaderAndHistoryQuery(t *testing.T) {
	var got []*http.Request
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		got = append(got, r.Clone(context.Background()))
		w.Header().Set("Content-Type", "application/json")
		_, _ = w.Write([]byte(`[{"generation":1,"at":"2025-03-01T12:00:00Z","actor":"bg:r1","from_green_percent":0,"to_green_percent":0,"phase":"stable","stable":"blue"}]`))
	}))
	defer srv.Close()
	ctx := context.Background()

	c := &Client{Addr: srv.URL}
	es, err := c.History(ctx, "web/x", 5)
	if err != nil || len(es) != 1 || es[0].Actor != "bg:r1" {
		t.Fatalf("History = %+v, %v", es, err)
	}
	if _, err := c.History(ctx, "web", 0); err != nil {
		t.Fatal(err)
	}
	_, _ = (&Client{Addr: srv.URL, Actor: "ci:deploy\x1b#42"}).StatusAll(ctx) // only the request matters

	if len(got) != 3 {
		t.Fatalf("%d requests", len(got))
	}
	if u := got[0].URL.RequestURI(); u != "/v1/services/web%2Fx/history?limit=5" {
		t.Errorf("URL = %s", u)
	}
	if u := got[1].URL.RequestURI(); u != "/v1/services/web/history" {
		t.Errorf("URL without a limit = %s", u)
	}
	if a := got[0].Header.Get("X-BG-Actor"); !strings.HasPrefix(a, "cli:") || !strings.Contains(a, "@") || a != defaultActor() {
		t.Errorf("default actor header = %q", a)
	}
	if a := got[2].Header.Get("X-BG-Actor"); a != "ci:deploy?#42" {
		t.Errorf("explicit actor header = %q", a)
	}
}
