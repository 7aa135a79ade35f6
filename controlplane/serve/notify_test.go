package serve

import (
	"context"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/bgctl/bg/controlplane/config"
	"github.com/bgctl/bg/controlplane/membership"
	"github.com/bgctl/bg/controlplane/model"
	"github.com/bgctl/bg/controlplane/notify"
	"github.com/bgctl/bg/controlplane/state/memstate"
	"github.com/bgctl/bg/controlplane/traffic"
	"github.com/bgctl/bg/controlplane/xds"
)

// With notifications configured, a release event goes to the target, and
// a target whose delivery fails shows in every service's status.
func TestNotificationsWiring(t *testing.T) {
	down := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		http.Error(w, "invalid_token", http.StatusForbidden)
	}))
	defer down.Close()
	quiet := slog.New(slog.DiscardHandler)
	ctrl := traffic.New([]model.Service{{Name: "web", ListenerPort: 10000, Protocol: model.ProtocolHTTP1}}, "0.0.0.0", memstate.New(), xds.NewServer(quiet, nil), quiet, traffic.NewMetrics(nil))
	ctrl.OnMembership(membership.Update{Service: "web", Membership: model.Membership{Blue: model.Fleet{Endpoints: []model.Endpoint{{ID: "b1", Address: "10.0.0.1", Port: 8080, Weight: 1}}}}})
	if err := ctrl.LoadState(context.Background()); err != nil {
		t.Fatal(err)
	}
	if err := ctrl.Publish(); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	cfg := &config.Config{Admin: config.Admin{Listen: "127.0.0.1:9090"},
		Notifications: []config.Notification{{Name: "ops", Type: "webhook", URL: down.URL, Events: []string{"release_aborted"}}}}
	send, err := notifications(ctx, cfg, ctrl, quiet, nil)
	if err != nil || send == nil {
		t.Fatalf("notifications: %v", err)
	}
	if st, _ := ctrl.Status("web"); len(st.Notifications) != 0 {
		t.Fatalf("a failure before any delivery: %+v", st.Notifications)
	}
	send(notify.Event{Kind: notify.ReleaseAborted, Release: "checkout-1", At: time.Now()})
	deadline := time.Now().Add(30 * time.Second) // 5 attempts with backoff from 0.5 s
	for {
		st, err := ctrl.Status("web")
		if err != nil {
			t.Fatal(err)
		}
		if len(st.Notifications) == 1 && st.Notifications[0].Name == "ops" && strings.Contains(st.Notifications[0].LastError, "HTTP 403: invalid_token") {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("status notifications %+v", st.Notifications)
		}
		time.Sleep(100 * time.Millisecond)
	}
	// Without notifications nothing is started.
	if send, err := notifications(ctx, &config.Config{}, ctrl, quiet, nil); send != nil || err != nil {
		t.Fatalf("no targets: %v %v", send != nil, err)
	}
}
