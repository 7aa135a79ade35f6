package consul

import (
	"context"
	"errors"
	"io"
	"log/slog"
	"slices"
	"sort"
	"sync"
	"testing"
	"time"

	"github.com/hashicorp/consul/api"

	"github.com/bgctl/bg/controlplane/membership"
)

// fakeConsul models the parts of Consul's catalog the watcher reads: a raft
// index, the checks and services tables with their own max indexes, and
// blocking queries that return when their table's index passes the one
// asked for (or the wait ends).
type fakeConsul struct {
	mu        sync.Mutex
	raft      uint64
	checksIdx uint64
	svcIdx    uint64
	nodes     map[string]string                       // node → serfHealth status
	instances map[string]map[string]*api.ServiceEntry // service → id → entry
	changed   chan struct{}

	readErr     map[string]error // Instances fails for these services
	checksErr   error
	reads       []string
	inflight    int
	maxInflight int
	readDelay   time.Duration
}

func newFakeConsul() *fakeConsul {
	return &fakeConsul{raft: 10, checksIdx: 10, svcIdx: 10, nodes: map[string]string{},
		instances: map[string]map[string]*api.ServiceEntry{}, changed: make(chan struct{}), readErr: map[string]error{}}
}

// bump advances the raft index for the named tables and wakes watchers.
func (f *fakeConsul) bumpLocked(checks, services bool) {
	f.raft++
	if checks {
		f.checksIdx = f.raft
	}
	if services {
		f.svcIdx = f.raft
	}
	close(f.changed)
	f.changed = make(chan struct{})
}

func (f *fakeConsul) register(service, id, node, color, version, status string) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if _, ok := f.nodes[node]; !ok {
		f.nodes[node] = api.HealthPassing
	}
	if f.instances[service] == nil {
		f.instances[service] = map[string]*api.ServiceEntry{}
	}
	f.instances[service][id] = &api.ServiceEntry{
		Node:    &api.Node{Node: node, Address: "10.0.0.1"},
		Service: &api.AgentService{ID: id, Service: service, Tags: []string{color}, Meta: map[string]string{"version": version}, Port: 8080, Weights: api.AgentWeights{Passing: 1}},
		Checks:  api.HealthChecks{{Node: node, CheckID: "service:" + id, ServiceID: id, ServiceName: service, Status: status, ServiceTags: []string{color}}},
	}
	f.bumpLocked(true, true)
}

func (f *fakeConsul) deregister(service, id string) {
	f.mu.Lock()
	defer f.mu.Unlock()
	delete(f.instances[service], id)
	if len(f.instances[service]) == 0 {
		delete(f.instances, service)
	}
	f.bumpLocked(true, true)
}

func (f *fakeConsul) setStatus(service, id, status string) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.instances[service][id].Checks[0].Status = status
	f.bumpLocked(true, false)
}

func (f *fakeConsul) setNode(node, status string) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.nodes[node] = status
	f.bumpLocked(true, false)
}

// setTags re-registers an instance with new tags: both tables move.
func (f *fakeConsul) setTags(service, id string, tags ...string) {
	f.mu.Lock()
	defer f.mu.Unlock()
	e := f.instances[service][id]
	e.Service.Tags = tags
	e.Checks[0].ServiceTags = tags
	f.bumpLocked(true, true)
}

// setMeta re-registers an instance with new meta: only the services table
// moves, and neither blocking query's answer shows it.
func (f *fakeConsul) setMeta(service, id, key, value string) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.instances[service][id].Service.Meta[key] = value
	f.bumpLocked(false, true)
}

// restore models a snapshot restore: indexes go backwards.
func (f *fakeConsul) restore(mutate func()) {
	mutate()
	f.mu.Lock()
	defer f.mu.Unlock()
	f.raft, f.checksIdx, f.svcIdx = 5, 5, 5
	close(f.changed)
	f.changed = make(chan struct{})
}

func (f *fakeConsul) block(ctx context.Context, index uint64, wait time.Duration, idx func() uint64) error {
	timer := time.NewTimer(wait)
	defer timer.Stop()
	for {
		f.mu.Lock()
		cur, ch := idx(), f.changed
		f.mu.Unlock()
		if index == 0 || cur != index {
			return nil
		}
		select {
		case <-ch:
		case <-timer.C:
			return nil
		case <-ctx.Done():
			return ctx.Err()
		}
	}
}

func (f *fakeConsul) Checks(ctx context.Context, index uint64, wait time.Duration) ([]*api.HealthCheck, uint64, error) {
	if err := f.block(ctx, index, wait, func() uint64 { return f.checksIdx }); err != nil {
		return nil, 0, err
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.checksErr != nil {
		return nil, 0, f.checksErr
	}
	var out []*api.HealthCheck
	for node, st := range f.nodes {
		out = append(out, &api.HealthCheck{Node: node, CheckID: "serfHealth", Status: st})
	}
	for _, ids := range f.instances {
		for _, e := range ids {
			c := *e.Checks[0]
			c.ServiceTags = slices.Clone(c.ServiceTags)
			out = append(out, &c)
		}
	}
	return out, f.checksIdx, nil
}

func (f *fakeConsul) Services(ctx context.Context, index uint64, wait time.Duration) (map[string][]string, uint64, error) {
	if err := f.block(ctx, index, wait, func() uint64 { return f.svcIdx }); err != nil {
		return nil, 0, err
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	out := map[string][]string{}
	for name, ids := range f.instances {
		var tags []string
		for _, e := range ids {
			for _, t := range e.Service.Tags {
				if !slices.Contains(tags, t) {
					tags = append(tags, t)
				}
			}
		}
		out[name] = tags
	}
	return out, f.svcIdx, nil
}

func (f *fakeConsul) Instances(ctx context.Context, name string) ([]*api.ServiceEntry, error) {
	f.mu.Lock()
	f.reads = append(f.reads, name)
	f.inflight++
	f.maxInflight = max(f.maxInflight, f.inflight)
	delay := f.readDelay
	f.mu.Unlock()
	defer func() {
		f.mu.Lock()
		f.inflight--
		f.mu.Unlock()
	}()
	if delay > 0 {
		time.Sleep(delay)
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	if err := f.readErr[name]; err != nil {
		return nil, err
	}
	var out []*api.ServiceEntry
	for _, e := range f.instances[name] {
		c := *e
		svc := *e.Service
		svc.Meta = map[string]string{}
		for k, v := range e.Service.Meta {
			svc.Meta[k] = v
		}
		svc.Tags = slices.Clone(e.Service.Tags)
		c.Service = &svc
		c.Checks = api.HealthChecks{{Node: e.Node.Node, CheckID: "serfHealth", Status: f.nodes[e.Node.Node]}, e.Checks[0]}
		cp := *e.Checks[0]
		c.Checks[1] = &cp
		out = append(out, &c)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Service.ID < out[j].Service.ID })
	return out, nil
}

func (f *fakeConsul) readLog() []string {
	f.mu.Lock()
	defer f.mu.Unlock()
	return slices.Clone(f.reads)
}

func (f *fakeConsul) clearReads() {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.reads = nil
}

// recorder collects updates per service.
type recorder struct {
	mu   sync.Mutex
	last map[string]membership.Update
	n    map[string]int
	ch   chan struct{}
}

func newRecorder() *recorder {
	return &recorder{last: map[string]membership.Update{}, n: map[string]int{}, ch: make(chan struct{}, 1000)}
}

func (r *recorder) fn(u membership.Update) {
	r.mu.Lock()
	r.last[u.Service] = u
	r.n[u.Service]++
	r.mu.Unlock()
	r.ch <- struct{}{}
}

func (r *recorder) get(svc string) (membership.Update, int) {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.last[svc], r.n[svc]
}

// eventually waits until cond holds.
func eventually(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

func ids(u membership.Update) (blue, green []string) {
	for _, e := range u.Membership.Blue.Endpoints {
		blue = append(blue, e.ID)
	}
	for _, e := range u.Membership.Green.Endpoints {
		green = append(green, e.ID)
	}
	return blue, green
}

func startSource(t *testing.T, f *fakeConsul, names ...string) (*Source, *recorder) {
	t.Helper()
	m := map[string]string{}
	for _, n := range names {
		m[n] = ""
	}
	s := New(f, ColorRule{BlueTag: "blue", GreenTag: "green"}, m, time.Minute, slog.New(slog.NewTextHandler(io.Discard, nil)), nil)
	s.MinInterval = time.Millisecond
	s.MaxBackoff = 20 * time.Millisecond
	r := newRecorder()
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { defer close(done); s.Run(ctx, r.fn) }()
	t.Cleanup(func() { cancel(); <-done })
	for _, n := range names {
		eventually(t, "first read of "+n, func() bool { _, c := r.get(n); return c > 0 })
	}
	return s, r
}

// settle waits until the source has nothing queued or in flight.
func settle(t *testing.T, s *Source) {
	t.Helper()
	eventually(t, "queue drained", func() bool {
		s.q.mu.Lock()
		defer s.q.mu.Unlock()
		return len(s.q.first.order)+len(s.q.resyncs.order)+len(s.q.inflight) == 0
	})
	time.Sleep(20 * time.Millisecond) // let a last blocking answer be applied
	eventually(t, "queue drained", func() bool { return s.q.pending() == 0 })
}

func twoServices() *fakeConsul {
	f := newFakeConsul()
	f.register("web", "web-b1", "n1", "blue", "v1", api.HealthPassing)
	f.register("web", "web-g1", "n2", "green", "v2", api.HealthPassing)
	f.register("api", "api-b1", "n1", "blue", "v1", api.HealthPassing)
	f.register("api", "api-g1", "n3", "green", "v2", api.HealthPassing)
	return f
}

func TestWatchFirstReadOfEveryService(t *testing.T) {
	f := twoServices()
	_, r := startSource(t, f, "web", "api")
	u, _ := r.get("web")
	if b, g := ids(u); !slices.Equal(b, []string{"web-b1"}) || !slices.Equal(g, []string{"web-g1"}) {
		t.Fatalf("web = blue %v green %v", b, g)
	}
}

func TestWatchCheckFlapping(t *testing.T) {
	f := twoServices()
	s, r := startSource(t, f, "web", "api")
	settle(t, s)
	f.clearReads()
	f.setStatus("web", "web-g1", api.HealthCritical)
	eventually(t, "web-g1 dropped", func() bool { u, _ := r.get("web"); _, g := ids(u); return len(g) == 0 })
	f.setStatus("web", "web-g1", api.HealthPassing)
	eventually(t, "web-g1 back", func() bool { u, _ := r.get("web"); _, g := ids(u); return len(g) == 1 })
	settle(t, s)
	for _, name := range f.readLog() {
		if name != "web" {
			t.Errorf("a check of web flapping read %q too (reads %v): only changed services are read", name, f.readLog())
		}
	}
	if _, n := r.get("api"); n != 1 {
		t.Errorf("api got %d updates, want only its first", n)
	}
}

func TestWatchInstanceAdded(t *testing.T) {
	f := twoServices()
	_, r := startSource(t, f, "web", "api")
	f.register("api", "api-g2", "n4", "green", "v2", api.HealthPassing)
	eventually(t, "api-g2 added", func() bool {
		u, _ := r.get("api")
		_, g := ids(u)
		return slices.Equal(g, []string{"api-g1", "api-g2"})
	})
}

func TestWatchTagsChanged(t *testing.T) {
	f := twoServices()
	_, r := startSource(t, f, "web", "api")
	f.setTags("web", "web-b1", "green")
	eventually(t, "web-b1 recoloured", func() bool {
		u, _ := r.get("web")
		b, g := ids(u)
		return len(b) == 0 && slices.Equal(g, []string{"web-b1", "web-g1"})
	})
}

func TestWatchMetaChanged(t *testing.T) {
	f := twoServices()
	_, r := startSource(t, f, "web", "api")
	f.setMeta("api", "api-g1", "version", "v3")
	eventually(t, "api-g1 at v3", func() bool {
		u, _ := r.get("api")
		return len(u.Membership.Green.Endpoints) == 1 && u.Membership.Green.Endpoints[0].Version == "v3"
	})
}

func TestWatchServiceDeregistered(t *testing.T) {
	f := twoServices()
	_, r := startSource(t, f, "web", "api")
	f.deregister("api", "api-b1")
	f.deregister("api", "api-g1")
	eventually(t, "api empty", func() bool {
		u, _ := r.get("api")
		b, g := ids(u)
		return len(b) == 0 && len(g) == 0
	})
}

func TestWatchNodeFailing(t *testing.T) {
	f := twoServices()
	s, r := startSource(t, f, "web", "api")
	settle(t, s)
	f.clearReads()
	f.setNode("n1", api.HealthCritical) // holds web-b1 and api-b1
	eventually(t, "blue dropped from both", func() bool {
		w, _ := r.get("web")
		a, _ := r.get("api")
		return len(w.Membership.Blue.Endpoints) == 0 && len(a.Membership.Blue.Endpoints) == 0
	})
	f.setNode("n1", api.HealthPassing)
	eventually(t, "blue back in both", func() bool {
		w, _ := r.get("web")
		a, _ := r.get("api")
		return len(w.Membership.Blue.Endpoints) == 1 && len(a.Membership.Blue.Endpoints) == 1
	})
	settle(t, s)
	f.clearReads()
	f.setNode("n3", api.HealthCritical) // holds only api-g1
	eventually(t, "api green dropped", func() bool { a, _ := r.get("api"); return len(a.Membership.Green.Endpoints) == 0 })
	settle(t, s)
	if reads := f.readLog(); slices.Contains(reads, "web") {
		t.Errorf("node n3 failing read web (reads %v): it has no instance there", reads)
	}
}

func TestWatchIndexGoesBackwards(t *testing.T) {
	f := twoServices()
	s, r := startSource(t, f, "web", "api")
	settle(t, s)
	// A snapshot restore with a change that neither answer shows.
	f.restore(func() {
		f.mu.Lock()
		f.instances["web"]["web-g1"].Service.Meta["version"] = "v9"
		f.mu.Unlock()
	})
	eventually(t, "web re-read after the index reset", func() bool {
		u, _ := r.get("web")
		return len(u.Membership.Green.Endpoints) == 1 && u.Membership.Green.Endpoints[0].Version == "v9"
	})
}

func TestWatchReadErrorMidDiffPushesNothingPartial(t *testing.T) {
	f := twoServices()
	s, r := startSource(t, f, "web", "api")
	settle(t, s)
	_, webBefore := r.get("web")
	f.mu.Lock()
	f.readErr["web"] = errors.New("connection reset")
	f.mu.Unlock()
	// One change touches both services; web's read fails.
	f.setNode("n1", api.HealthCritical)
	eventually(t, "api updated", func() bool { a, _ := r.get("api"); return len(a.Membership.Blue.Endpoints) == 0 })
	time.Sleep(50 * time.Millisecond) // several failed retries of web
	if u, n := r.get("web"); n != webBefore || len(u.Membership.Blue.Endpoints) != 1 {
		t.Fatalf("web changed after failed reads: %d updates (was %d), %+v", n, webBefore, u.Membership)
	}
	f.mu.Lock()
	delete(f.readErr, "web")
	f.mu.Unlock()
	eventually(t, "web updated once reads work", func() bool { w, _ := r.get("web"); return len(w.Membership.Blue.Endpoints) == 0 })
}

func TestWatchErrorKeepsFleets(t *testing.T) {
	f := twoServices()
	s, r := startSource(t, f, "web", "api")
	settle(t, s)
	f.mu.Lock()
	f.checksErr = errors.New("429 Your IP is issuing too many concurrent connections")
	f.mu.Unlock()
	f.setStatus("web", "web-b1", api.HealthCritical)
	time.Sleep(50 * time.Millisecond)
	// The health watch failed; the change is seen once it works again.
	f.mu.Lock()
	f.checksErr = nil
	f.mu.Unlock()
	eventually(t, "web-b1 dropped after the watch recovers", func() bool { u, _ := r.get("web"); return len(u.Membership.Blue.Endpoints) == 0 })
}

func TestWatchBoundedReads(t *testing.T) {
	f := newFakeConsul()
	var names []string
	for i := range 60 {
		n := "svc" + string(rune('a'+i/26)) + string(rune('a'+i%26))
		names = append(names, n)
		f.register(n, n+"-b", "n1", "blue", "v1", api.HealthPassing)
	}
	f.readDelay = 2 * time.Millisecond
	s, _ := startSource(t, f, names...)
	settle(t, s)
	f.mu.Lock()
	got := f.maxInflight
	f.mu.Unlock()
	if got > s.Readers {
		t.Fatalf("%d reads in flight at once, want ≤ %d", got, s.Readers)
	}
	if got < s.Readers {
		t.Errorf("reads never ran %d at a time (max %d)", s.Readers, got)
	}
}

func TestQueueUrgentFirstAndNoDoubleReads(t *testing.T) {
	q := newQueue()
	q.resync([]string{"a", "b", "c"})
	q.urgent("c")
	ctx := context.Background()
	if n, _ := q.take(ctx); n != "c" {
		t.Fatalf("first = %q, want the urgent c", n)
	}
	q.urgent("c") // changed again while being read
	if n, _ := q.take(ctx); n != "a" {
		t.Fatalf("second = %q, want a: c is in flight", n)
	}
	q.done("c")
	if n, _ := q.take(ctx); n != "c" {
		t.Fatalf("third = %q, want c again after its read ended", n)
	}
	if n, _ := q.take(ctx); n != "b" {
		t.Fatalf("fourth = %q, want b", n)
	}
	if q.pending() != 0 {
		t.Fatalf("pending = %d", q.pending())
	}
}
