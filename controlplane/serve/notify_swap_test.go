package serve

import (
	"context"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/bgctl/bg/controlplane/model"
	"github.com/bgctl/bg/controlplane/notify"
	"github.com/bgctl/bg/controlplane/state/memstate"
	"github.com/bgctl/bg/controlplane/traffic"
	"github.com/bgctl/bg/controlplane/xds"
)

// A reload replaces the notification targets: events go to the new ones
// only, their series replace the old ones' on the same registry, and no
// targets turns notifications off.
func TestNotifiersSwap(t *testing.T) {
	var oldHits, newHits atomic.Int32
	receiver := func(n *atomic.Int32) *httptest.Server {
		srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			_, _ = io.Copy(io.Discard, r.Body)
			n.Add(1)
		}))
		t.Cleanup(srv.Close)
		return srv
	}
	oldSrv, newSrv := receiver(&oldHits), receiver(&newHits)
	quiet := slog.New(slog.DiscardHandler)
	ctrl := traffic.New([]model.Service{{Name: "web", ListenerPort: 10000, Protocol: model.ProtocolHTTP1}}, "0.0.0.0", memstate.New(), xds.NewServer(quiet, nil), quiet, traffic.NewMetrics(nil))
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	reg := prometheus.NewRegistry()
	h := newNotifiers(ctx, ctrl, "127.0.0.1:9090", quiet, reg)

	h.set([]notify.Target{{Name: "old", Type: notify.Webhook, URL: oldSrv.URL}})
	h.release(notify.Event{Kind: notify.ReleaseAborted, Release: "r-1", At: time.Now()})
	waitCount(t, &oldHits, 1)

	h.set([]notify.Target{{Name: "new", Type: notify.Webhook, URL: newSrv.URL}}) // must not panic on re-registration
	h.release(notify.Event{Kind: notify.ReleaseAborted, Release: "r-2", At: time.Now()})
	waitCount(t, &newHits, 1)
	if oldHits.Load() != 1 {
		t.Fatalf("the old target still gets events: %d", oldHits.Load())
	}
	if n, err := testutil.GatherAndCount(reg, "bg_notifications_total"); err != nil || n != 3 { // sent, failed, dropped of "new"
		t.Fatalf("bg_notifications_total series: %d %v", n, err)
	}

	h.set(nil)
	h.release(notify.Event{Kind: notify.ReleaseAborted, Release: "r-3", At: time.Now()})
	time.Sleep(50 * time.Millisecond)
	if newHits.Load() != 1 {
		t.Fatalf("events sent with no targets: %d", newHits.Load())
	}
	if n, _ := testutil.GatherAndCount(reg, "bg_notifications_total"); n != 0 {
		t.Fatalf("series left with no targets: %d", n)
	}
	if st, _ := ctrl.Status("web"); st.Notifications != nil || strings.Contains(st.ConfigNote, "notif") {
		t.Fatalf("status: %+v", st.Notifications)
	}
}

func waitCount(t *testing.T, n *atomic.Int32, want int32) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for n.Load() < want {
		if time.Now().After(deadline) {
			t.Fatalf("got %d deliveries, want %d", n.Load(), want)
		}
		time.Sleep(5 * time.Millisecond)
	}
}
