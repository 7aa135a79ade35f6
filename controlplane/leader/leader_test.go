package leader

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"os"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/hashicorp/consul/api"

	"github.com/bgctl/bg/e2e/harness"
)

// ciTB turns the harness's skip (no consul binary) into a failure when CI
// is set: CI must run these tests.
type ciTB struct{ *testing.T }

func (c ciTB) Skipf(format string, args ...any) {
	c.T.Helper()
	if os.Getenv("CI") != "" {
		c.T.Fatalf("CI=%s: "+format, append([]any{os.Getenv("CI")}, args...)...)
	}
	c.T.Skipf(format, args...)
}

// faultRT is one replica's way to Consul: it can be cut (every request in
// flight fails, new ones are refused, as when a process dies or is
// partitioned), and it counts blocking queries in flight.
type faultRT struct {
	base http.RoundTripper

	mu          sync.Mutex
	cut         bool
	inflight    map[*int]context.CancelFunc
	blocking    int
	maxBlocking int
}

func newFaultRT() *faultRT {
	return &faultRT{base: http.DefaultTransport.(*http.Transport).Clone(), inflight: map[*int]context.CancelFunc{}}
}

func (f *faultRT) RoundTrip(req *http.Request) (*http.Response, error) {
	f.mu.Lock()
	if f.cut {
		f.mu.Unlock()
		return nil, errors.New("faultRT: cut off from consul")
	}
	ctx, cancel := context.WithCancel(req.Context())
	key := new(int)
	f.inflight[key] = cancel
	isBlocking := req.URL.Query().Get("index") != ""
	if isBlocking {
		f.blocking++
		f.maxBlocking = max(f.maxBlocking, f.blocking)
	}
	f.mu.Unlock()
	var once sync.Once
	done := func() {
		once.Do(func() {
			f.mu.Lock()
			delete(f.inflight, key)
			if isBlocking {
				f.blocking--
			}
			f.mu.Unlock()
			cancel()
		})
	}
	resp, err := f.base.RoundTrip(req.WithContext(ctx))
	if err != nil {
		done()
		return nil, err
	}
	resp.Body = &closeHook{ReadCloser: resp.Body, done: done}
	return resp, nil
}

type closeHook struct {
	io.ReadCloser
	done func()
}

func (c *closeHook) Close() error {
	err := c.ReadCloser.Close()
	c.done()
	return err
}

func (f *faultRT) Cut() {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.cut = true
	for _, cancel := range f.inflight {
		cancel()
	}
}

func (f *faultRT) Heal() {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.cut = false
}

func (f *faultRT) MaxBlocking() int {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.maxBlocking
}

// span is one stretch of leading, as the lead callback saw it.
type span struct {
	node       string
	ctx        context.Context // the term's: done once the node may no longer act
	start, end time.Time       // end zero while leading (set by a goroutine: for logs, not for order)
}

// timeline records every node's lead spans of one election.
type timeline struct {
	mu       sync.Mutex
	spans    []*span
	overlaps []string
}

// lead records a span; a node that starts leading while another's term is
// not yet over (its context not cancelled) is an overlap. The elector
// cancels a term before it releases the lock, so this holds exactly when
// the election is correct, however late a goroutine gets to record an end.
func (tl *timeline) lead(node string) func(context.Context) {
	return func(ctx context.Context) {
		s := &span{node: node, ctx: ctx, start: time.Now()}
		tl.mu.Lock()
		for _, o := range tl.spans {
			if o.node != node && o.ctx.Err() == nil {
				tl.overlaps = append(tl.overlaps, fmt.Sprintf("%s began leading at %s while %s (since %s) still led",
					node, s.start.Format("15:04:05.000"), o.node, o.start.Format("15:04:05.000")))
			}
		}
		tl.spans = append(tl.spans, s)
		tl.mu.Unlock()
		go func() {
			<-ctx.Done()
			tl.mu.Lock()
			s.end = time.Now()
			tl.mu.Unlock()
		}()
	}
}

// checkNoOverlap fails if two nodes ever led at once.
func (tl *timeline) checkNoOverlap(t *testing.T) {
	t.Helper()
	tl.mu.Lock()
	defer tl.mu.Unlock()
	for _, o := range tl.overlaps {
		t.Errorf("two leaders at once: %s", o)
	}
}

// lastEnd is when node's last span ended (zero if it still leads).
func (tl *timeline) lastEnd(node string) time.Time {
	tl.mu.Lock()
	defer tl.mu.Unlock()
	for i := len(tl.spans) - 1; i >= 0; i-- {
		if tl.spans[i].node == node {
			return tl.spans[i].end
		}
	}
	return time.Time{}
}

type node struct {
	name   string
	e      *Elector
	rt     *faultRT
	cancel context.CancelFunc
	done   chan struct{}
}

func (n *node) stop() {
	n.cancel()
	<-n.done
}

type election struct {
	t      *testing.T
	consul *harness.Consul
	key    string
	tl     *timeline
	nodes  []*node
}

func newElection(t *testing.T, consul *harness.Consul, name string, n int, o Options) *election {
	el := &election{t: t, consul: consul, key: "leader-test/" + name, tl: &timeline{}}
	o.Key = el.key
	for i := 0; i < n; i++ {
		nd := &node{name: fmt.Sprintf("%s-%d", name, i), rt: newFaultRT(), done: make(chan struct{})}
		cfg := api.DefaultConfig()
		cfg.Address, cfg.Scheme = consul.HTTPAddr(), "http"
		cfg.HttpClient = &http.Client{Transport: nd.rt}
		client, err := api.NewClient(cfg)
		if err != nil {
			t.Fatal(err)
		}
		oo := o
		oo.Self = Info{Replica: nd.name, Admin: "127.0.0.1:1"}
		log := slog.New(slog.NewTextHandler(testWriter{t}, &slog.HandlerOptions{Level: slog.LevelInfo})).With("node", nd.name)
		nd.e = New(client, oo, log, nil)
		ctx, cancel := context.WithCancel(context.Background())
		nd.cancel = cancel
		go func() {
			defer close(nd.done)
			nd.e.Run(ctx, el.tl.lead(nd.name))
		}()
		el.nodes = append(el.nodes, nd)
	}
	t.Cleanup(func() {
		for _, nd := range el.nodes {
			nd.stop()
		}
		el.tl.checkNoOverlap(t)
		for _, nd := range el.nodes {
			if m := nd.rt.MaxBlocking(); m > 1 {
				t.Errorf("%s had %d blocking queries in flight at once; want at most 1", nd.name, m)
			}
		}
	})
	return el
}

// testWriter sends log lines to t.Log (until the test ends).
type testWriter struct{ t *testing.T }

func (w testWriter) Write(p []byte) (int, error) {
	w.t.Log(strings.TrimRight(string(p), "\n"))
	return len(p), nil
}

// leader waits for exactly one leading node among those not in skip.
func (el *election) leader(timeout time.Duration, skip ...*node) (*node, time.Time) {
	el.t.Helper()
	deadline := time.Now().Add(timeout)
	for {
		var leaders []*node
	nodes:
		for _, nd := range el.nodes {
			for _, s := range skip {
				if s == nd {
					continue nodes
				}
			}
			if nd.e.Leading() {
				leaders = append(leaders, nd)
			}
		}
		now := time.Now()
		if len(leaders) == 1 {
			return leaders[0], now
		}
		if len(leaders) > 1 {
			el.t.Fatalf("%d leaders at once", len(leaders))
		}
		if now.After(deadline) {
			el.t.Fatalf("no leader within %s", timeout)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

func (el *election) pair() *api.KVPair {
	el.t.Helper()
	pair, _, err := el.consul.Client().KV().Get(el.key, nil)
	if err != nil {
		el.t.Fatal(err)
	}
	return pair
}

// fenceHolds runs the consulkv fence check (the first op of every state
// write) for a fence, as a write of that leader would.
func (el *election) fenceHolds(key, session string) bool {
	el.t.Helper()
	ok, _, _, err := el.consul.Client().Txn().Txn(api.TxnOps{
		{KV: &api.KVTxnOp{Verb: api.KVCheckSession, Key: key, Session: session}},
		{KV: &api.KVTxnOp{Verb: api.KVSet, Key: el.key + "-fenced-write", Value: []byte(session)}},
	}, nil)
	if err != nil {
		el.t.Fatal(err)
	}
	return ok
}

func (el *election) checkStatus(nd *node) string {
	el.t.Helper()
	checks, _, err := el.consul.Client().Health().Checks(CheckService, nil)
	if err != nil {
		el.t.Fatal(err)
	}
	for _, c := range checks {
		if c.CheckID == nd.e.CheckID() {
			return c.Status
		}
	}
	return "absent"
}

func TestElection(t *testing.T) {
	consul := harness.StartConsul(ciTB{t})
	base := Options{SessionTTL: 10 * time.Second, CheckTTL: 2 * time.Second, LockDelay: 500 * time.Millisecond}

	t.Run("one leader, fenced; a clean stop hands over at once and cleans up", func(t *testing.T) {
		o := base
		o.LockDelay = 3 * time.Second // a release must skip it
		el := newElection(t, consul, "clean", 3, o)
		old, _ := el.leader(10 * time.Second)
		f, ok := old.e.Fence()
		pair := el.pair()
		if !ok || pair == nil || f.Session != pair.Session || f.Term != pair.LockIndex || f.Replica != old.name || f.Key != el.key {
			t.Fatalf("fence %+v (ok %v) does not match the lock key %+v", f, ok, pair)
		}
		if st := old.e.Status(); !st.Leading || st.Term != f.Term || st.Check.Status != api.HealthPassing {
			t.Fatalf("status %+v", st)
		}
		for _, nd := range el.nodes {
			if in, err := nd.e.Leader(context.Background()); err != nil || in.Replica != old.name {
				t.Fatalf("%s sees leader %+v (%v), want %s", nd.name, in, err, old.name)
			}
		}
		stopped := time.Now()
		old.stop()
		next, at := el.leader(5*time.Second, old)
		took := at.Sub(stopped)
		t.Logf("clean stop of %s: %s led %v later (lock delay %s)", old.name, next.name, took.Round(time.Millisecond), o.LockDelay)
		if took > 1500*time.Millisecond {
			t.Fatalf("handover took %v; a released lock has no lock delay", took)
		}
		if info, _, err := consul.Client().Session().Info(f.Session, nil); err != nil || info != nil {
			t.Fatalf("old session %s still exists: %+v (%v)", f.Session, info, err)
		}
		if s := el.checkStatus(old); s != "absent" {
			t.Fatalf("stopped replica's check is %s; want deregistered", s)
		}
		if el.fenceHolds(f.Key, f.Session) {
			t.Fatal("the old leader's fence still holds")
		}
		nf, _ := next.e.Fence()
		if nf.Term <= f.Term || !el.fenceHolds(nf.Key, nf.Session) {
			t.Fatalf("new fence %+v (term after %d) does not hold", nf, f.Term)
		}
	})

	t.Run("a leader that dies is replaced after its check TTL and the lock delay", func(t *testing.T) {
		el := newElection(t, consul, "crash", 3, base)
		old, _ := el.leader(10 * time.Second)
		f, _ := old.e.Fence()
		cut := time.Now()
		old.rt.Cut() // no heartbeat, no release: to Consul it is dead
		next, at := el.leader(10*time.Second, old)
		took := at.Sub(cut)
		stoppedAfter := el.tl.lastEnd(old.name).Sub(cut)
		t.Logf("%s cut off: it stopped leading after %v, %s led after %v (check TTL %s, lock delay %s)",
			old.name, stoppedAfter.Round(time.Millisecond), next.name, took.Round(time.Millisecond), base.CheckTTL, base.LockDelay)
		if took > base.CheckTTL+base.LockDelay+time.Second {
			t.Fatalf("takeover took %v; want ≤ check TTL + lock delay + 1s", took)
		}
		if took < base.CheckTTL/2 {
			t.Fatalf("takeover after %v: before the check could lapse", took)
		}
		if old.e.Leading() {
			t.Fatal("the cut-off leader still says it leads")
		}
		if s := el.checkStatus(old); s != api.HealthCritical {
			t.Fatalf("dead replica's check is %s; want critical", s)
		}
		if el.fenceHolds(f.Key, f.Session) {
			t.Fatal("the dead leader's fence still holds")
		}
		old.rt.Heal()
		deadline := time.Now().Add(10 * time.Second)
		for el.checkStatus(old) != api.HealthPassing || old.e.Status().Check.Status != api.HealthPassing {
			if time.Now().After(deadline) {
				t.Fatalf("healed replica's check not passing again: %s", el.checkStatus(old))
			}
			time.Sleep(50 * time.Millisecond)
		}
		time.Sleep(time.Second)
		if old.e.Leading() || !next.e.Leading() {
			t.Fatalf("after healing: old leads %v, new leads %v", old.e.Leading(), next.e.Leading())
		}
	})

	t.Run("a leader whose session is invalidated stops at once; the next waits out the lock delay only", func(t *testing.T) {
		o := base
		o.LockDelay = time.Second
		el := newElection(t, consul, "invalidated", 3, o)
		old, _ := el.leader(10 * time.Second)
		f, _ := old.e.Fence()
		destroyed := time.Now()
		if _, err := consul.Client().Session().Destroy(f.Session, nil); err != nil {
			t.Fatal(err)
		}
		deadline := time.Now().Add(2 * time.Second)
		for el.tl.lastEnd(old.name).IsZero() {
			if time.Now().After(deadline) {
				t.Fatal("old leader still acting 2s after its session was destroyed")
			}
			time.Sleep(5 * time.Millisecond)
		}
		stopped := el.tl.lastEnd(old.name).Sub(destroyed)
		next, at := el.leader(10 * time.Second)
		took := at.Sub(destroyed)
		t.Logf("session of %s destroyed: it stopped after %v; %s led after %v (lock delay %s)",
			old.name, stopped.Round(time.Millisecond), next.name, took.Round(time.Millisecond), o.LockDelay)
		if stopped > 500*time.Millisecond {
			t.Errorf("old leader stopped %v after losing its session; want at once", stopped)
		}
		if took < o.LockDelay-100*time.Millisecond {
			t.Errorf("new leader after %v: within the lock delay", took)
		}
		if took > o.LockDelay+time.Second {
			t.Errorf("new leader after %v; want right after the %s lock delay, not a fixed wait", took, o.LockDelay)
		}
		if st := next.e.Status(); st.LastTakeoverSeconds <= 0 || st.LastTakeoverSeconds > took.Seconds()+0.1 {
			t.Errorf("status takeover %.3fs; measured %v", st.LastTakeoverSeconds, took)
		}
	})

	t.Run("a check the agent lost is registered again; the session bound to it ends", func(t *testing.T) {
		el := newElection(t, consul, "lostcheck", 2, base)
		old, _ := el.leader(10 * time.Second)
		f, _ := old.e.Fence()
		// As after an agent restart without its data dir.
		removed := time.Now()
		if err := consul.Client().Agent().ServiceDeregister(old.e.serviceID); err != nil {
			t.Fatal(err)
		}
		next, at := el.leader(10*time.Second, old)
		if info, _, err := consul.Client().Session().Info(f.Session, nil); err != nil || info != nil {
			t.Fatalf("session bound to the removed check survives: %+v (%v)", info, err)
		}
		deadline := time.Now().Add(5 * time.Second)
		for el.checkStatus(old) != api.HealthPassing {
			if time.Now().After(deadline) {
				t.Fatalf("lost check not registered again: %s", el.checkStatus(old))
			}
			time.Sleep(50 * time.Millisecond)
		}
		t.Logf("%s's check removed: %s led %v later (lock delay %s); the check is back", old.name, next.name, at.Sub(removed).Round(time.Millisecond), base.LockDelay)
	})

	t.Run("a leader whose agent hangs stops acting the moment its check's TTL runs out", func(t *testing.T) {
		el := newElection(t, consul, "hang", 1, base)
		old, _ := el.leader(10 * time.Second)
		consul.Pause() // requests hang: only the lapse timer can end the term on time
		defer consul.Resume()
		paused := time.Now()
		for el.tl.lastEnd(old.name).IsZero() {
			if time.Since(paused) > base.CheckTTL+2*time.Second {
				t.Fatalf("leader still acting %v after its agent hung", time.Since(paused).Round(time.Millisecond))
			}
			time.Sleep(5 * time.Millisecond)
		}
		due := old.e.Status().Check.LastPass.Add(base.CheckTTL)
		late := el.tl.lastEnd(old.name).Sub(due)
		t.Logf("agent hung: the leader stopped %v after its last confirmed heartbeat's TTL ran out", late.Round(time.Millisecond))
		if late < 0 || late > 200*time.Millisecond {
			t.Errorf("leader stopped %v after its check could lapse; want at that moment (heartbeats that hang must not delay it)", late)
		}
		if old.e.Leading() {
			t.Error("Leading() after the term ended")
		}
	})

	t.Run("after Consul restarts, the lock is not left to a session no one uses", func(t *testing.T) {
		el := newElection(t, consul, "restart", 2, base)
		old, _ := el.leader(10 * time.Second)
		f, _ := old.e.Fence()
		consul.Stop()
		deadline := time.Now().Add(base.CheckTTL + time.Second)
		for old.e.Leading() {
			if time.Now().After(deadline) {
				t.Fatalf("leader still leads %v after Consul stopped", base.CheckTTL+time.Second)
			}
			time.Sleep(10 * time.Millisecond)
		}
		time.Sleep(base.CheckTTL)
		consul.Start()
		started := time.Now()
		next, at := el.leader(base.SessionTTL)
		t.Logf("Consul restarted: %s led %v later (old session %s)", next.name, at.Sub(started).Round(time.Millisecond), f.Session)
		if info, _, err := consul.Client().Session().Info(f.Session, nil); err != nil || info != nil {
			t.Fatalf("old session still exists: %+v (%v)", info, err)
		}
	})
}

func TestNextIndex(t *testing.T) {
	for _, c := range []struct{ prev, got, want uint64 }{{0, 5, 5}, {5, 7, 7}, {7, 7, 7}, {7, 3, 0}, {0, 0, 1}} {
		if got := nextIndex(c.prev, c.got); got != c.want {
			t.Errorf("nextIndex(%d, %d) = %d, want %d", c.prev, c.got, got, c.want)
		}
	}
}
