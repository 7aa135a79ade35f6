package consulkv

import (
	"context"
	"io"
	"log/slog"
	"testing"
	"time"

	"github.com/bgctl/bg/controlplane/model"
	"github.com/bgctl/bg/controlplane/state"
	"github.com/bgctl/bg/e2e/harness"
)

// A key the leader writes back and that is deleted again before the watch
// polls was never seen by the watch; it must still be reported missing,
// or the leader believes it stored and nothing is stored (sim seed 2046).
func TestWatchReportsAKeyDeletedAgainUnseen(t *testing.T) {
	consul := harness.StartConsul(t)
	c := consul.Client()
	s := New(c, "watchtest/")
	s.Expect([]string{"web", "api"})
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	type report struct {
		service string
		found   bool
	}
	reports := make(chan report, 100)
	go s.Watch(ctx, slog.New(slog.NewTextHandler(io.Discard, nil)), func(service string, _ model.Traffic, _ state.Index, found bool) {
		reports <- report{service, found}
	}, nil)
	next := func(want report) {
		t.Helper()
		deadline := time.After(10 * time.Second)
		for {
			select {
			case r := <-reports:
				if r == want {
					return
				}
			case <-deadline:
				t.Fatalf("no report %+v", want)
			}
		}
	}
	// Both expected services are absent at the first poll.
	next(report{"web", false})
	next(report{"api", false})

	tr := model.InitialTraffic()
	if _, err := s.Save(ctx, "api", tr, 0, model.HistoryEntry{}); err != nil {
		t.Fatal(err)
	}
	next(report{"api", true})
	if _, err := c.KV().Delete(s.Key("api"), nil); err != nil {
		t.Fatal(err)
	}
	next(report{"api", false})
	// Written back and deleted again within the watch's 100 ms pause
	// between polls: it never sees the key, but must report it missing.
	if _, err := s.Save(ctx, "api", tr, 0, model.HistoryEntry{}); err != nil {
		t.Fatal(err)
	}
	if _, err := c.KV().Delete(s.Key("api"), nil); err != nil {
		t.Fatal(err)
	}
	next(report{"api", false})
}
