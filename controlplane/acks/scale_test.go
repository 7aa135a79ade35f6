package acks

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/hashicorp/consul/api"

	"github.com/bgctl/bg/controlplane/xds"
)

// Issue 11: at 1,000 services the acks package must neither write one raft
// entry per report nor hold one Consul connection per waiting service.

func serviceNames(n int) []string {
	out := make([]string, n)
	for i := range out {
		out[i] = fmt.Sprintf("svc%03d", i)
	}
	return out
}

// testPublisher is a Publisher with a session, driven by calling publish.
func testPublisher(t *testing.T, kv *fakeConsul, src Source, services []string) *Publisher {
	t.Helper()
	p := NewPublisher(kv, kv, kv, src, PublisherOptions{Prefix: "bg/", Replica: "r1", Services: services}, discard)
	if err := p.createSession(context.Background()); err != nil {
		t.Fatal(err)
	}
	return p
}

// holdKey makes another session hold a key, as a second replica "r1" would.
func holdKey(t *testing.T, kv *fakeConsul, key string) string {
	t.Helper()
	other, _, _ := kv.Create(&api.SessionEntry{}, nil)
	if ok, _, err := kv.Acquire(&api.KVPair{Key: key, Value: []byte(`{}`), Session: other}, nil); !ok || err != nil {
		t.Fatalf("setup: acquire %s: %v %v", key, ok, err)
	}
	return other
}

func TestPublisherBatchesChangedReports(t *testing.T) {
	kv, src := newFakeConsul(), newFakeSource()
	svcs := serviceNames(150)
	for _, s := range svcs {
		src.set(s, 1, fakeProxy{node: "a", held: 1})
	}
	p := testPublisher(t, kv, src, svcs)
	before := kv.index
	if err := p.publish(context.Background()); err != nil {
		t.Fatal(err)
	}
	if got := kv.txnSizes(); !slices.Equal(got, []int{64, 64, 22}) {
		t.Errorf("transactions of %v ops, want [64 64 22]", got)
	}
	if n := kv.index - before; n != 3 {
		t.Errorf("%d raft writes for 150 reports, want 3", n)
	}
	for _, s := range svcs {
		if r, pair := readReport(t, kv, Key("bg/", s, "r1")); pair.Session != p.session || r.Service != s || r.Acked != 1 {
			t.Fatalf("%s: report %+v under session %q", s, r, pair.Session)
		}
	}

	// Two changes: one transaction of two; nothing changed: none.
	src.set("svc007", 2, fakeProxy{node: "a", held: 2})
	src.set("svc140", 2)
	if err := p.publish(context.Background()); err != nil {
		t.Fatal(err)
	}
	if err := p.publish(context.Background()); err != nil {
		t.Fatal(err)
	}
	if got := kv.txnSizes(); !slices.Equal(got, []int{64, 64, 22, 2}) {
		t.Errorf("transactions of %v ops, want [64 64 22 2]", got)
	}
	if r, _ := readReport(t, kv, Key("bg/", "svc140", "r1")); r.Generation != 2 || r.Subscribed != 0 {
		t.Errorf("svc140 report %+v", r)
	}
}

func TestPublisherTxnKeyHeldByAnotherSession(t *testing.T) {
	kv, src := newFakeConsul(), newFakeSource()
	svcs := serviceNames(150)
	for _, s := range svcs {
		src.set(s, 3)
	}
	held := []string{Key("bg/", "svc070", "r1"), Key("bg/", "svc130", "r1")} // batch 2 op 6, batch 3 op 2
	others := map[string]string{}
	for _, k := range held {
		others[k] = holdKey(t, kv, k)
	}
	p := testPublisher(t, kv, src, svcs)
	err := p.publish(context.Background())
	if err == nil || errors.Is(err, errSessionLost) || !strings.Contains(err.Error(), held[0]) || !strings.Contains(err.Error(), "held by another session") {
		t.Fatalf("publish = %v, want the first held key %s named", err, held[0])
	}
	// Each rolled-back batch is written again without its held key.
	if got := kv.txnSizes(); !slices.Equal(got, []int{64, 64, 63, 22, 21}) {
		t.Errorf("transactions of %v ops, want [64 64 63 22 21]", got)
	}
	for _, s := range svcs {
		key := Key("bg/", s, "r1")
		pair, _ := kv.get(key)
		if other, isHeld := others[key]; isHeld {
			if pair.Session != other {
				t.Errorf("%s taken from another live session", key)
			}
			if _, ok := p.written[s]; ok {
				t.Errorf("%s recorded as written", s)
			}
			continue
		}
		if pair.Session != p.session || kv.writeCount(key) != 1 {
			t.Errorf("%s: session %q, %d writes; want ours, 1", key, pair.Session, kv.writeCount(key))
		}
	}
	if len(p.written) != 148 {
		t.Errorf("%d reports recorded as written, want 148", len(p.written))
	}

	// The next publish tries only the two that did not land.
	if err := p.publish(context.Background()); err == nil || !strings.Contains(err.Error(), held[0]) {
		t.Errorf("second publish = %v", err)
	}
	if got := kv.txnSizes()[5:]; !slices.Equal(got, []int{2}) {
		t.Errorf("second publish: transactions of %v ops, want the two held keys only", got)
	}
}

func TestPublisherTxnInvalidSession(t *testing.T) {
	kv, src := newFakeConsul(), newFakeSource()
	svcs := serviceNames(150)
	for _, s := range svcs {
		src.set(s, 1)
	}
	p := testPublisher(t, kv, src, svcs)
	kv.expireAll() // Consul forgot the session
	err := p.publish(context.Background())
	if !errors.Is(err, errSessionLost) {
		t.Fatalf("publish = %v, want errSessionLost", err)
	}
	if got := kv.txnSizes(); len(got) != 1 {
		t.Errorf("transactions %v after the session was found lost, want one", got)
	}
	if len(p.written) != 0 || kv.writeCount(Key("bg/", "svc000", "r1")) != 0 {
		t.Error("a write under a lost session recorded as landed")
	}
	// Run makes a new session and writes everything under it.
	if err := p.createSession(context.Background()); err != nil {
		t.Fatal(err)
	}
	if err := p.publish(context.Background()); err != nil {
		t.Fatal(err)
	}
	if pair, _ := kv.get(Key("bg/", "svc149", "r1")); pair.Session != p.session {
		t.Errorf("not rewritten under the new session: %+v", pair)
	}
}

func TestPublisherTxnRolledBackWithoutReasonFallsBackToAcquire(t *testing.T) {
	kv, src := newFakeConsul(), newFakeSource()
	svcs := serviceNames(10)
	for _, s := range svcs {
		src.set(s, 1)
	}
	held := Key("bg/", "svc005", "r1")
	holdKey(t, kv, held)
	kv.txnSilent = true
	p := testPublisher(t, kv, src, svcs)
	if err := p.publish(context.Background()); err == nil || !strings.Contains(err.Error(), held) {
		t.Fatalf("publish = %v, want %s named", err, held)
	}
	if len(p.written) != 9 || kv.writeCount(Key("bg/", "svc009", "r1")) != 1 {
		t.Errorf("%d reports written one by one, want 9", len(p.written))
	}
}

func TestPublisherTxnStaysUnderConsulsBodyLimit(t *testing.T) {
	kv, src := newFakeConsul(), newFakeSource()
	svcs := serviceNames(20)
	for _, s := range svcs {
		var proxies []fakeProxy
		for i := range 400 {
			proxies = append(proxies, fakeProxy{node: fmt.Sprintf("%s-proxy-%04d-with-a-long-node-id", s, i), held: 1})
		}
		src.set(s, 2, proxies...)
	}
	p := NewPublisher(kv, kv, kv, src, PublisherOptions{Prefix: "bg/", Replica: "r1", Services: svcs, MaxListed: 400}, discard)
	if err := p.createSession(context.Background()); err != nil {
		t.Fatal(err)
	}
	if err := p.publish(context.Background()); err != nil {
		t.Fatal(err) // the fake refuses bodies over 512 KiB, like Consul
	}
	if got := kv.txnSizes(); len(got) < 2 || len(p.written) != 20 {
		t.Errorf("transactions %v, %d written; want large reports split over several", got, len(p.written))
	}
}

// waiterCount is how many Waits share the watch now.
func (a *Aggregator) waiterCount() (int, bool) {
	a.mu.Lock()
	defer a.mu.Unlock()
	return len(a.waiters), a.stopWatch != nil
}

func TestAggregatorWaitsShareOneWatch(t *testing.T) {
	kv := newFakeConsul()
	svcs := serviceNames(50)
	for i, s := range svcs {
		putReport(kv, Report{Replica: "r2", Service: s, Generation: 4, Subscribed: i + 1, Acked: i + 1})
	}
	a := NewAggregator(kv, "bg/", "r1", nil, discard)
	ctx, cancel := withTimeout(20 * time.Second)
	defer cancel()
	results := make(map[string]Result)
	var mu sync.Mutex
	var wg sync.WaitGroup
	for _, s := range svcs {
		wg.Go(func() {
			res := a.Wait(ctx, s, 5)
			mu.Lock()
			results[s] = res
			mu.Unlock()
		})
	}
	if !eventually(func() bool { n, _ := a.waiterCount(); return n == 50 }) {
		t.Fatal("waiters never subscribed")
	}
	time.Sleep(50 * time.Millisecond)
	mu.Lock()
	if len(results) != 0 {
		t.Errorf("%d Waits returned while every replica was behind", len(results))
	}
	mu.Unlock()

	// Every service moves to 5, one report at a time: each its own wake-up.
	for i, s := range svcs {
		putReport(kv, Report{Replica: "r2", Service: s, Generation: 5, Subscribed: i + 1, Acked: i + 1})
	}
	wg.Wait()
	if ctx.Err() != nil {
		t.Fatal("Waits ran into their deadline")
	}
	for i, s := range svcs {
		res := results[s]
		if !res.Complete || res.Service != s || len(res.Replicas) != 1 || res.Replicas[0].Replica != "r2" || res.Acked != i+1 {
			t.Errorf("Wait(%s) = %+v, want its own report only (acked %d)", s, res, i+1)
		}
	}
	_, most, _ := kv.listStats()
	if most != 1 {
		t.Errorf("%d Lists in flight at once for 50 Waits, want 1", most)
	}
	kv.mu.Lock()
	defer kv.mu.Unlock()
	if len(kv.listed) != 1 || kv.listed["bg/acks/"] == 0 {
		t.Errorf("Lists on %v, want only bg/acks/", kv.listed)
	}
}

func TestAggregatorWaitSeesOnlyItsService(t *testing.T) {
	kv := newFakeConsul()
	putReport(kv, Report{Replica: "r2", Service: "web", Generation: 5, Subscribed: 1, Acked: 1})
	putReport(kv, Report{Replica: "r3", Service: "webx", Generation: 1, Subscribed: 4}) // behind: would hold web
	putReport(kv, Report{Replica: "r4", Service: "api", Generation: 1, Subscribed: 2})
	a := NewAggregator(kv, "bg/", "r1", nil, discard)
	ctx, cancel := withTimeout(10 * time.Second)
	defer cancel()
	apiCtx, apiCancel := context.WithCancel(ctx)
	apiDone := make(chan Result, 1)
	go func() { apiDone <- a.Wait(apiCtx, "api", 5) }()
	// The watch has answered once and parks on its blocking query (parked,
	// not only in flight: a List counts its read after it is in flight).
	if !eventually(func() bool {
		now, _, _ := kv.listStats()
		a.mu.Lock()
		defer a.mu.Unlock()
		return now == 1 && kv.parkedLists() == 1 && a.latest != nil
	}) {
		t.Fatal("the watch never parked")
	}
	_, _, lists := kv.listStats()

	// A Wait joining the parked watch answers from its latest read.
	start := time.Now()
	res := a.Wait(ctx, "web", 5)
	if !res.Complete || len(res.Replicas) != 1 || res.Replicas[0].Replica != "r2" || res.Acked != 1 {
		t.Errorf("Wait(web) = %+v, want r2's report only", res)
	}
	if d := time.Since(start); d > time.Second {
		t.Errorf("a Wait joining the watch took %v", d)
	}
	if _, _, n := kv.listStats(); n != lists {
		t.Errorf("a Wait joining the watch read KV again (%d Lists, was %d)", n, lists)
	}
	select {
	case res := <-apiDone:
		t.Fatalf("Wait(api) returned %+v", res)
	default:
	}
	apiCancel()
	if res := <-apiDone; res.Complete || len(res.Replicas) != 1 || res.Replicas[0].Replica != "r4" || !res.Replicas[0].Behind {
		t.Errorf("Wait(api) = %+v, want r4 behind", res)
	}
}

func TestAggregatorWatchStopsWithTheLastWaiter(t *testing.T) {
	kv := newFakeConsul()
	for _, s := range []string{"web", "api", "db"} {
		putReport(kv, Report{Replica: "r2", Service: s, Generation: 4})
	}
	a := NewAggregator(kv, "bg/", "r1", nil, discard)
	for round := range 3 {
		ctx, cancel := context.WithCancel(context.Background())
		var wg sync.WaitGroup
		for _, s := range []string{"web", "api", "db"} {
			wg.Go(func() { a.Wait(ctx, s, 5) })
		}
		if !eventually(func() bool { now, _, _ := kv.listStats(); n, _ := a.waiterCount(); return now == 1 && n == 3 }) {
			t.Fatalf("round %d: waits never watched", round)
		}
		cancel()
		wg.Wait()
		if n, running := a.waiterCount(); n != 0 || running {
			t.Errorf("round %d: %d waiters, watch running %v after every Wait returned", round, n, running)
		}
		if !eventually(func() bool { now, _, _ := kv.listStats(); return now == 0 }) {
			t.Fatalf("round %d: a List still in flight without waiters", round)
		}
		_, _, before := kv.listStats()
		putReport(kv, Report{Replica: "r2", Service: "web", Generation: 4, Subscribed: round}) // would wake a watch
		time.Sleep(50 * time.Millisecond)
		if _, _, after := kv.listStats(); after != before {
			t.Errorf("round %d: %d Lists without waiters", round, after-before)
		}
	}
	if _, most, _ := kv.listStats(); most != 1 {
		t.Errorf("%d Lists in flight at once across restarts, want 1", most)
	}

	// A new wait starts a new watch and completes.
	putReport(kv, Report{Replica: "r2", Service: "web", Generation: 5})
	ctx, cancel := withTimeout(5 * time.Second)
	defer cancel()
	if res := a.Wait(ctx, "web", 5); !res.Complete {
		t.Errorf("Wait after restarts = %+v", res)
	}
}

func TestAggregatorWaitKeepsAGoodReadAfterAFailure(t *testing.T) {
	kv := newFakeConsul()
	putReport(kv, Report{Replica: "r2", Service: "web", Generation: 5, Subscribed: 1,
		Lagging: []xds.ProxyInfo{{NodeID: "f1", Generation: 4}}})
	a := NewAggregator(kv, "bg/", "r1", nil, discard)
	failed := make(chan bool, 1)
	go func() {
		eventually(func() bool { a.mu.Lock(); defer a.mu.Unlock(); return a.latest != nil })
		kv.setErrors(errDown, nil)
		kv.put(api.KVPair{Key: "bg/acks/other/r9", Session: "s"}) // wakes the watch into the error
		failed <- eventually(func() bool { a.mu.Lock(); defer a.mu.Unlock(); return a.latest != nil && a.latest.err != nil })
	}()
	ctx, cancel := withTimeout(500 * time.Millisecond)
	defer cancel()
	res := a.Wait(ctx, "web", 5)
	if !<-failed {
		t.Fatal("the watch never failed a read")
	}
	if res.Complete || res.Unconfirmed != "" || len(res.Pending) != 1 || res.Pending[0].NodeID != "f1" {
		t.Errorf("Wait = %+v, want the good read kept: f1 pending, confirmed", res)
	}
}
