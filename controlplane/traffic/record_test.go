package traffic_test

import (
	"context"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/bgctl/bg/controlplane/notify"

	"github.com/bgctl/bg/controlplane/model"
	"github.com/bgctl/bg/controlplane/traffic"
)

// The recorder hears every change the leader stores, with the state
// before and after and the history entry as stored.
func TestRecorderHearsStoredChanges(t *testing.T) {
	ctx := context.Background()
	plan := slowPlan()
	c, store := releaseController(t, webService, &plan)
	c.SetAnalysis(noMetrics{}, map[string]model.Plan{"web": plan})
	type heard struct {
		cur, next model.Traffic
		e         model.HistoryEntry
	}
	var mu sync.Mutex
	var got []heard
	c.SetRecorder(func(service string, cur, next model.Traffic, e model.HistoryEntry) {
		if service != "web" {
			t.Errorf("service %q", service)
		}
		mu.Lock()
		got = append(got, heard{cur, next, e})
		mu.Unlock()
	})
	if _, err := c.Switch(ctx, traffic.Request{Service: "web", To: model.Green, Timeout: time.Second}); err != nil {
		t.Fatal(err)
	}
	if _, err := c.Abort(ctx, traffic.Request{Service: "web", Reason: "bad smoke test", Timeout: time.Second}); err != nil {
		t.Fatal(err)
	}
	// The recorder is told right after each write: wait until it has heard
	// every one stored so far (an ACK confirmation may be in flight).
	deadline := time.Now().Add(5 * time.Second)
	for {
		mu.Lock()
		n := len(got)
		mu.Unlock()
		if n == len(store.Entries())-1 || time.Now().After(deadline) {
			break
		}
		time.Sleep(5 * time.Millisecond)
	}
	mu.Lock()
	defer mu.Unlock()
	// The start, the abort, and whatever was stored between and after (an
	// analysis holding on no metrics, the abort's ACK confirmation): each
	// heard once, as stored, and what they mean to people is exactly a
	// start and an abort.
	var events []string
	for _, h := range got {
		for _, ev := range notify.Classify("web", h.cur, h.next, h.e) {
			events = append(events, string(ev.Kind))
		}
	}
	if strings.Join(events, ",") != "started,aborted" {
		t.Errorf("events %v, want started, aborted", events)
	}
	stored := map[uint64]model.HistoryEntry{}
	for _, e := range store.Entries() {
		stored[e.Generation] = e
	}
	if len(got) != len(stored)-1 { // all but the initial state
		t.Errorf("heard %d changes; %d stored after the initial state", len(got), len(stored)-1)
	}
	for _, h := range got {
		e, ok := stored[h.next.Generation]
		if !ok || h.e.Generation != h.next.Generation || e.Reason != h.e.Reason || e.Phase != h.e.Phase || e.ToGreen != h.e.ToGreen {
			t.Errorf("heard generation %d %+v; stored %+v", h.next.Generation, h.e, e)
		}
	}
}
