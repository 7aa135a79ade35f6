package acks

import (
	"context"
	"encoding/json"
	"log/slog"
	"strings"
	"testing"
	"time"

	"github.com/hashicorp/consul/api"

	"github.com/bgctl/bg/controlplane/xds"
)

var discard = slog.New(slog.DiscardHandler)

func TestReportFor(t *testing.T) {
	nack := &xds.NACK{Message: "bad weights", Generation: 7}
	rep := Report{Replica: "r2", Generation: 7, Subscribed: 5, Acked: 2, Lagging: []xds.ProxyInfo{
		{NodeID: "a", Generation: 6},
		{NodeID: "b", Generation: 5, LastNACK: nack},
		{NodeID: "c", Generation: 0},
	}}
	cases := []struct {
		name                     string
		r                        Report
		gen                      uint64
		acked, pending, unlisted int
		complete, settled        bool
		note                     string
	}{
		{name: "served generation", r: rep, gen: 7, acked: 2, pending: 3},
		{name: "older generation counts lagging proxies that hold it", r: rep, gen: 6, acked: 3, pending: 2},
		{name: "every proxy holds an old generation", r: rep, gen: 1, acked: 4, pending: 1},
		{name: "newer than served: everyone pending", r: rep, gen: 8, pending: 3, unlisted: 2, note: "serves generation 7, not 8 yet"},
		// A replica that serves an older generation is not there yet even
		// with no proxies: one connecting now gets the old split. Found by
		// the fault simulation (controlplane/sim seed 1658).
		{name: "no proxies but behind: not complete", r: Report{Replica: "r3", Generation: 3}, gen: 9, note: "serves generation 3, not 9 yet"},
		{name: "no proxies, current: complete", r: Report{Replica: "r3", Generation: 9}, gen: 9, complete: true, settled: true},
		{name: "all acked", r: Report{Replica: "r4", Generation: 9, Subscribed: 4, Acked: 4}, gen: 9, acked: 4, complete: true, settled: true},
		{name: "the rest rejected it", r: Report{Replica: "r5", Generation: 7, Subscribed: 2, Acked: 1, Lagging: []xds.ProxyInfo{{NodeID: "b", LastNACK: nack}}},
			gen: 7, acked: 1, pending: 1, settled: true},
		{name: "a rejection of an older generation settles nothing", r: Report{Replica: "r5", Generation: 8, Subscribed: 1, Lagging: []xds.ProxyInfo{{NodeID: "b", LastNACK: nack}}},
			gen: 8, pending: 1},
		{name: "unlisted proxies are pending", r: Report{Replica: "r6", Generation: 7, Subscribed: 300, Acked: 100, Unlisted: 100, Lagging: []xds.ProxyInfo{{NodeID: "x", LastNACK: nack}}},
			gen: 7, acked: 100, pending: 1, unlisted: 100},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			ra := c.r.For(c.gen)
			if ra.Acked != c.acked || len(ra.Pending) != c.pending || ra.Unlisted != c.unlisted || ra.Complete != c.complete || ra.settled != c.settled || ra.Note != c.note {
				t.Errorf("For(%d) = acked %d pending %d unlisted %d complete %v settled %v note %q; want %d %d %d %v %v %q",
					c.gen, ra.Acked, len(ra.Pending), ra.Unlisted, ra.Complete, ra.settled, ra.Note,
					c.acked, c.pending, c.unlisted, c.complete, c.settled, c.note)
			}
			for _, p := range ra.Pending {
				if p.Replica != c.r.Replica {
					t.Errorf("pending %s has replica %q, want %q", p.NodeID, p.Replica, c.r.Replica)
				}
			}
		})
	}
}

func TestNewReportCapsTheList(t *testing.T) {
	local := xds.AckReport{Generation: 4, Want: 4, Subscribed: 5, Acked: 1}
	for _, n := range []string{"a", "b", "c", "d"} {
		local.Pending = append(local.Pending, xds.ProxyInfo{NodeID: n, Routes: []string{"web", "api"}, Generation: 3})
	}
	rep := NewReport("r1", "web", local, 3)
	if len(rep.Lagging) != 3 || rep.Unlisted != 1 || rep.Lagging[0].Routes != nil {
		t.Errorf("report %+v, want 3 listed without routes and 1 unlisted", rep)
	}
	if ra := rep.For(4); ra.Acked != 1 || len(ra.Pending)+ra.Unlisted != 4 {
		t.Errorf("For(4) = %+v, want 1 acked and 4 pending", ra)
	}
}

func TestResultAckResult(t *testing.T) {
	res := Result{Acked: 3, Complete: false, Unconfirmed: ""}
	if res.AckResult().Complete() {
		t.Error("an incomplete Result converted to a complete AckResult")
	}
	res = Result{Acked: 3, Complete: true}
	if !res.AckResult().Complete() || res.AckResult().Acked != 3 {
		t.Errorf("complete Result converted to %+v", res.AckResult())
	}
	res = Result{Acked: 1, Unlisted: 2}
	if ar := res.AckResult(); ar.Complete() || ar.PendingCount() != 2 {
		t.Errorf("unlisted pending lost: %+v", ar)
	}
	b, err := json.Marshal(Result{Service: "web", Generation: 3, Acked: 1, Pending: []xds.ProxyInfo{{NodeID: "n", Replica: "r2", LastNACK: &xds.NACK{Message: "no"}}}})
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{`"acked":1`, `"pending":[`, `"replica":"r2"`, `"last_nack":{`, `"complete":false`, `"replicas":null`} {
		if !strings.Contains(string(b), want) {
			t.Errorf("JSON %s lacks %s", b, want)
		}
	}
}

func startPublisher(t *testing.T, kv *fakeConsul, src Source, replica string, services ...string) context.CancelFunc {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	p := NewPublisher(kv, kv, kv, src, PublisherOptions{Prefix: "bg/", Replica: replica, Services: services}, discard)
	done := make(chan struct{})
	go func() {
		defer close(done)
		p.Run(ctx)
	}()
	stop := func() {
		cancel()
		select {
		case <-done:
		case <-time.After(5 * time.Second):
			t.Error("publisher did not stop")
		}
	}
	t.Cleanup(stop)
	return stop
}

func readReport(t *testing.T, kv *fakeConsul, key string) (Report, api.KVPair) {
	t.Helper()
	p, ok := kv.get(key)
	if !ok {
		t.Fatalf("no report at %s", key)
	}
	var r Report
	if err := json.Unmarshal(p.Value, &r); err != nil {
		t.Fatal(err)
	}
	return r, p
}

func TestPublisherWritesOnlyChanges(t *testing.T) {
	kv, src := newFakeConsul(), newFakeSource()
	src.set("web", 3, fakeProxy{node: "a", held: 3}, fakeProxy{node: "b", held: 2})
	startPublisher(t, kv, src, "r1", "web", "api")
	key := Key("bg/", "web", "r1")
	if !eventually(func() bool { _, ok := kv.get(Key("bg/", "api", "r1")); return ok && kv.writeCount(key) == 1 }) {
		t.Fatal("reports never written")
	}
	r, pair := readReport(t, kv, key)
	if r.Replica != "r1" || r.Service != "web" || r.Generation != 3 || r.Subscribed != 2 || r.Acked != 1 ||
		len(r.Lagging) != 1 || r.Lagging[0].NodeID != "b" || r.Lagging[0].Generation != 2 || r.At.IsZero() {
		t.Errorf("report %+v", r)
	}
	if pair.Session == "" {
		t.Error("report written without a session")
	}
	if api, _ := readReport(t, kv, Key("bg/", "api", "r1")); api.Subscribed != 0 || api.Generation != 0 {
		t.Errorf("report of a service without proxies: %+v", api)
	}

	// Signals without a change write nothing.
	for range 5 {
		src.set("web", 3, fakeProxy{node: "a", held: 3}, fakeProxy{node: "b", held: 2})
		time.Sleep(10 * time.Millisecond)
	}
	time.Sleep(100 * time.Millisecond)
	if n := kv.writeCount(key); n != 1 {
		t.Errorf("%d writes without a change, want 1", n)
	}

	// A burst of changes is written once or twice, ending in the last state.
	for i := range 10 {
		src.set("web", 4, fakeProxy{node: "a", held: 4}, fakeProxy{node: "b", held: uint64(i % 4)})
	}
	src.set("web", 4, fakeProxy{node: "a", held: 4}, fakeProxy{node: "b", held: 4})
	if !eventually(func() bool { r, _ := readReport(t, kv, key); return r.Acked == 2 && r.Generation == 4 }) {
		t.Fatal("last state never written")
	}
	if n := kv.writeCount(key); n > 3 {
		t.Errorf("%d writes for one burst, want it debounced", n)
	}
	if n := kv.writeCount(Key("bg/", "api", "r1")); n != 1 {
		t.Errorf("unchanged service rewritten: %d writes", n)
	}
}

func TestPublisherRecreatesLostSession(t *testing.T) {
	kv, src := newFakeConsul(), newFakeSource()
	src.set("web", 1, fakeProxy{node: "a", held: 1})
	startPublisher(t, kv, src, "r1", "web")
	key := Key("bg/", "web", "r1")
	if !eventually(func() bool { _, ok := kv.get(key); return ok }) {
		t.Fatal("report never written")
	}
	_, first := readReport(t, kv, key)
	kv.expireAll() // the session lapsed: Consul deleted the report
	if _, ok := kv.get(key); ok {
		t.Fatal("fake did not delete the report")
	}
	src.set("web", 2, fakeProxy{node: "a", held: 2})
	if !eventually(func() bool { p, ok := kv.get(key); return ok && p.Session != first.Session }) {
		t.Fatal("report not rewritten under a new session")
	}
	if r, _ := readReport(t, kv, key); r.Generation != 2 {
		t.Errorf("rewritten report %+v, want generation 2", r)
	}
}

func TestPublisherRetriesAndCleansUp(t *testing.T) {
	kv, src := newFakeConsul(), newFakeSource()
	kv.setErrors(nil, errDown)
	src.set("web", 1)
	stop := startPublisher(t, kv, src, "r1", "web")
	time.Sleep(150 * time.Millisecond)
	kv.setErrors(nil, nil)
	key := Key("bg/", "web", "r1")
	if !eventually(func() bool { _, ok := kv.get(key); return ok }) {
		t.Fatal("report never written after Consul came back")
	}
	stop()
	if _, ok := kv.get(key); ok {
		t.Error("report left behind after a clean stop")
	}
}

func TestPublisherDoesNotStealAKey(t *testing.T) {
	kv, src := newFakeConsul(), newFakeSource()
	other, _, _ := kv.Create(&api.SessionEntry{}, nil)
	key := Key("bg/", "web", "r1")
	if ok, _, _ := kv.Acquire(&api.KVPair{Key: key, Value: []byte(`{"replica":"r1","generation":9}`), Session: other}, nil); !ok {
		t.Fatal("setup")
	}
	src.set("web", 1)
	startPublisher(t, kv, src, "r1", "web")
	time.Sleep(200 * time.Millisecond)
	if p, _ := kv.get(key); p.Session != other {
		t.Errorf("key taken from another live session")
	}
}

func aggregator(kv *fakeConsul, local Source) *Aggregator {
	return NewAggregator(kv, "bg/", "r1", local, discard)
}

// putReport writes a remote replica's report as its publisher would.
func putReport(kv *fakeConsul, r Report) {
	b, _ := json.Marshal(r)
	kv.put(api.KVPair{Key: Key("bg/", r.Service, r.Replica), Value: b, Session: "s-" + r.Replica})
}

func TestAggregatorWaitsForEveryReplica(t *testing.T) {
	kv, local := newFakeConsul(), newFakeSource()
	local.set("web", 5, fakeProxy{node: "l1", held: 4})
	putReport(kv, Report{Replica: "r2", Service: "web", Generation: 4, Subscribed: 1, Acked: 1})
	putReport(kv, Report{Replica: "r3", Service: "web", Generation: 4}) // no proxies
	a := aggregator(kv, local)

	got := make(chan Result, 1)
	go func() {
		ctx, cancel := withTimeout(10 * time.Second)
		defer cancel()
		got <- a.Wait(ctx, "web", 5)
	}()
	expectWaiting := func(step string) {
		t.Helper()
		select {
		case res := <-got:
			t.Fatalf("%s: Wait returned %+v", step, res)
		case <-time.After(100 * time.Millisecond):
		}
	}
	expectWaiting("nobody holds 5")
	local.set("web", 5, fakeProxy{node: "l1", held: 5})
	expectWaiting("the leader's proxy holds 5, r2 serves 4")
	st := a.Status(context.Background(), "web", 5)
	if st.Complete || st.Acked != 1 || st.Subscribed != 2 || st.Unlisted != 1 || len(st.Replicas) != 3 {
		t.Fatalf("Status = %+v", st)
	}
	if r2 := st.Replicas[1]; r2.Replica != "r2" || r2.Note != "serves generation 4, not 5 yet" || r2.Complete {
		t.Errorf("r2 = %+v", r2)
	}
	if !st.Replicas[0].Local || st.Replicas[2].Complete || !st.Replicas[2].Behind {
		t.Errorf("replicas = %+v; r3 (no proxies, generation 4) must be behind", st.Replicas)
	}
	putReport(kv, Report{Replica: "r3", Service: "web", Generation: 5})
	putReport(kv, Report{Replica: "r2", Service: "web", Generation: 5, Subscribed: 1, Lagging: []xds.ProxyInfo{{NodeID: "f1", Generation: 4}}})
	expectWaiting("r2 pushed 5, its proxy has not ACKed")
	putReport(kv, Report{Replica: "r2", Service: "web", Generation: 5, Subscribed: 1, Acked: 1})
	select {
	case res := <-got:
		if !res.Complete || res.Acked != 2 || res.Subscribed != 2 || !res.AckResult().Complete() {
			t.Errorf("Wait = %+v, want complete 2/2", res)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("Wait did not return once every replica's proxies held 5")
	}
}

func TestAggregatorShowsAFollowersNACK(t *testing.T) {
	kv, local := newFakeConsul(), newFakeSource()
	local.set("web", 5, fakeProxy{node: "l1", held: 5})
	putReport(kv, Report{Replica: "r2", Service: "web", Generation: 5, Subscribed: 2, Acked: 1,
		Lagging: []xds.ProxyInfo{{NodeID: "f-bad", Generation: 4, LastNACK: &xds.NACK{Message: "weights sum to 0", Generation: 5}}}})
	ctx, cancel := withTimeout(5 * time.Second)
	defer cancel()
	res := aggregator(kv, local).Wait(ctx, "web", 5)
	if ctx.Err() != nil {
		t.Fatal("Wait ran into its deadline although the only pending proxy rejected the generation")
	}
	if res.Complete || res.Acked != 2 || len(res.Pending) != 1 {
		t.Fatalf("Wait = %+v", res)
	}
	p := res.Pending[0]
	if p.NodeID != "f-bad" || p.Replica != "r2" || p.LastNACK == nil || p.LastNACK.Message != "weights sum to 0" {
		t.Errorf("pending = %+v", p)
	}
	if s := res.Summary(); !strings.Contains(s, "r2/f-bad (rejected: weights sum to 0)") || !strings.Contains(s, "2/3 proxies") {
		t.Errorf("Summary = %q", s)
	}
	ar := res.AckResult()
	if ar.Complete() || ar.Pending[0].LastNACK.Message != "weights sum to 0" {
		t.Errorf("AckResult = %+v", ar)
	}
}

func TestAggregatorSkipsSelfOrphansAndOtherServices(t *testing.T) {
	kv, local := newFakeConsul(), newFakeSource()
	local.set("web", 5, fakeProxy{node: "l1", held: 5})
	// Our own report in KV is stale: the local server answers instead.
	putReport(kv, Report{Replica: "r1", Service: "web", Generation: 3, Subscribed: 9})
	b, _ := json.Marshal(Report{Replica: "gone", Service: "web", Generation: 1, Subscribed: 4})
	kv.put(api.KVPair{Key: Key("bg/", "web", "gone"), Value: b}) // no session: left over
	putReport(kv, Report{Replica: "r2", Service: "webx", Generation: 1, Subscribed: 4})
	kv.put(api.KVPair{Key: Key("bg/", "web", "r9") + "/deeper", Value: []byte("x"), Session: "s"})
	res := aggregator(kv, local).Status(context.Background(), "web", 5)
	if !res.Complete || res.Acked != 1 || res.Subscribed != 1 || len(res.Replicas) != 1 {
		t.Errorf("Status = %+v, want only the local replica", res)
	}
}

func TestAggregatorUnreadableReport(t *testing.T) {
	kv, local := newFakeConsul(), newFakeSource()
	local.set("web", 5)
	kv.put(api.KVPair{Key: Key("bg/", "web", "r2"), Value: []byte("{"), Session: "s"})
	res := aggregator(kv, local).Status(context.Background(), "web", 5)
	if res.Complete || !strings.Contains(res.Unconfirmed, "r2") || res.AckResult().Complete() {
		t.Errorf("Status with an unreadable report = %+v", res)
	}
}

func TestAggregatorConsulDown(t *testing.T) {
	kv, local := newFakeConsul(), newFakeSource()
	local.set("web", 5, fakeProxy{node: "l1", held: 5})
	kv.setErrors(errDown, nil)
	a := aggregator(kv, local)
	res := a.Status(context.Background(), "web", 5)
	if res.Complete || !strings.Contains(res.Unconfirmed, "connection refused") || res.AckResult().Complete() {
		t.Errorf("Status without Consul = %+v, want unconfirmed", res)
	}
	ctx, cancel := withTimeout(300 * time.Millisecond)
	defer cancel()
	if res := a.Wait(ctx, "web", 5); res.Complete || ctx.Err() == nil {
		t.Errorf("Wait without Consul returned %+v before its deadline", res)
	}

	// Consul comes back during a wait: it completes.
	kv.setErrors(nil, nil)
	ctx, cancel = withTimeout(5 * time.Second)
	defer cancel()
	kv.setErrors(errDown, nil)
	go func() {
		time.Sleep(100 * time.Millisecond)
		kv.setErrors(nil, nil)
	}()
	if res := a.Wait(ctx, "web", 5); !res.Complete {
		t.Errorf("Wait after Consul came back = %+v", res)
	}
}

func TestAggregatorWaitFollowsLocalChanges(t *testing.T) {
	kv, local := newFakeConsul(), newFakeSource()
	local.set("web", 5, fakeProxy{node: "l1", held: 4})
	a := aggregator(kv, local)
	go func() {
		time.Sleep(100 * time.Millisecond)
		local.set("web", 5, fakeProxy{node: "l1", held: 5})
	}()
	ctx, cancel := withTimeout(5 * time.Second)
	defer cancel()
	start := time.Now()
	res := a.Wait(ctx, "web", 0) // 0: the generation the local route serves
	if !res.Complete || res.Generation != 5 {
		t.Fatalf("Wait = %+v", res)
	}
	if d := time.Since(start); d > time.Second {
		t.Errorf("Wait took %v after a local ACK", d)
	}
	kv.mu.Lock()
	lists := kv.lists
	kv.mu.Unlock()
	if lists > 20 {
		t.Errorf("%d KV reads for one wait: blocking queries should not spin", lists)
	}
}

func TestAggregatorStoppedWithoutStart(t *testing.T) {
	select {
	case <-aggregator(newFakeConsul(), nil).Stopped():
	default:
		t.Error("Stopped of an Aggregator without a publisher is not closed")
	}
}

// An idle replica renews its session without rebuilding every report:
// at 1,000 services that rebuild was most of its idle CPU.
func TestPublisherRenewsWithoutRebuildingReports(t *testing.T) {
	kv, src := newFakeConsul(), newFakeSource()
	src.set("web", 1, fakeProxy{node: "a", held: 1})
	ctx, cancel := context.WithCancel(context.Background())
	p := NewPublisher(kv, kv, kv, src, PublisherOptions{Prefix: "bg/", Replica: "r1", Services: []string{"web", "api"}}, discard)
	p.renewEvery = 10 * time.Millisecond
	done := make(chan struct{})
	go func() { defer close(done); p.Run(ctx) }()
	t.Cleanup(func() { cancel(); <-done })
	if !eventually(func() bool { _, ok := kv.get(Key("bg/", "api", "r1")); return ok }) {
		t.Fatal("reports never written")
	}
	src.mu.Lock()
	before := src.reads
	src.mu.Unlock()
	kv.mu.Lock()
	renewedBefore := kv.renewals
	kv.mu.Unlock()
	time.Sleep(200 * time.Millisecond) // about 20 renewals
	src.mu.Lock()
	after := src.reads
	src.mu.Unlock()
	kv.mu.Lock()
	renewed := kv.renewals - renewedBefore
	kv.mu.Unlock()
	if renewed < 5 {
		t.Fatalf("only %d renewals in 200 ms, one due every 10 ms", renewed)
	}
	if after != before {
		t.Errorf("%d renewals rebuilt reports %d times; nothing changed", renewed, after-before)
	}
	// A change after renewals is still written.
	src.set("web", 2, fakeProxy{node: "a", held: 2})
	if !eventually(func() bool { r, _ := readReport(t, kv, Key("bg/", "web", "r1")); return r.Generation == 2 }) {
		t.Fatal("change after renewals never written")
	}
}

// Proxies whose client may not keep a rolling service's sessions travel in
// each replica's report (capped, without their other routes) and reach the
// combined result tagged with their replica, whatever generation is asked.
func TestNoSessionsTravelAcrossReplicas(t *testing.T) {
	local := xds.AckReport{Generation: 4, Want: 4, Subscribed: 5, Acked: 5}
	for _, n := range []string{"a", "b", "c", "d"} {
		local.NoSessions = append(local.NoSessions, xds.ProxyInfo{NodeID: n, Routes: []string{"web", "api"}, Sessions: xds.SessionsLost})
	}
	rep := NewReport("r2", "web", local, 3)
	if len(rep.NoSessions) != 3 || rep.NoSessionsUnlisted != 1 || rep.NoSessions[0].Routes != nil {
		t.Fatalf("report %+v, want 3 listed without routes and 1 unlisted", rep)
	}
	raw, err := json.Marshal(rep)
	if err != nil {
		t.Fatal(err)
	}
	var back Report
	if err := json.Unmarshal(raw, &back); err != nil {
		t.Fatal(err)
	}
	self := localAcks("r1", xds.AckReport{Generation: 5, Want: 5, Subscribed: 1, Acked: 1,
		NoSessions: []xds.ProxyInfo{{NodeID: "mine", Sessions: xds.SessionsOptIn}}})
	res, _ := combine("web", 5, []ReplicaAcks{back.For(5), self}, "")
	if len(res.NoSessions) != 4 || res.NoSessionsUnlisted != 1 {
		t.Fatalf("combined %d listed, %d unlisted: %+v", len(res.NoSessions), res.NoSessionsUnlisted, res.NoSessions)
	}
	for _, p := range res.NoSessions {
		if want := map[bool]string{true: "r1", false: "r2"}[p.NodeID == "mine"]; p.Replica != want {
			t.Errorf("%s tagged replica %q, want %q", p.NodeID, p.Replica, want)
		}
	}
}
