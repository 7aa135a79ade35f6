// Package consul reads fleets from Consul with a fixed number of
// connections, whatever the number of services.
//
// Two catalog-wide blocking queries find what changed: /v1/health/state/any
// (every check: an instance passing or failing, added or removed, retagged,
// a node failing) and /v1/catalog/services (every service name with its
// tags). Only services whose answer changed are read again, with
// /v1/health/service/NAME, by a fixed number of readers. The services table
// also moves on changes neither answer shows (an instance's meta, address,
// port or weights, or an instance with no checks): when its index moves,
// every watched service is queued for a re-read behind the ones known to
// have changed. That is the model Fabio uses; consul-template's one
// blocking query per service is what runs into Consul's limit of 200
// connections per client.
package consul

import (
	"context"
	"log/slog"
	"reflect"
	"slices"
	"sync"
	"time"

	"github.com/hashicorp/consul/api"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/bgctl/bg/controlplane/membership"
	"github.com/bgctl/bg/controlplane/wait"
)

// Source watches the passing instances of every configured service.
type Source struct {
	cat  Catalog
	rule ColorRule
	// cfgMu guards users and all, which SetServices replaces.
	cfgMu sync.RWMutex
	// users maps a Consul service to the bg services read from it.
	users map[string][]string
	all   []string // Consul services, sorted
	wait  time.Duration
	log   *slog.Logger
	m     *metrics

	// Readers bounds concurrent per-service reads (and so their connections).
	Readers int
	// MinInterval rate-limits each blocking query: they can return at once.
	MinInterval time.Duration
	// MaxBackoff bounds the retry delay after failed reads.
	MaxBackoff time.Duration

	q *queue

	mu      sync.Mutex
	last    map[string]membership.Update // by bg service: what fn last got
	onNode  map[string][]string          // node → Consul services with an instance there, sorted
	nodesOf map[string][]string          // Consul service → nodes of its instances
	backoff map[string]time.Duration     // Consul services whose last read failed
}

// New builds a source. names maps each bg service to its Consul service
// ("" means the same name).
func New(cat Catalog, rule ColorRule, names map[string]string, wait time.Duration, log *slog.Logger, reg prometheus.Registerer) *Source {
	s := &Source{cat: cat, rule: rule, users: map[string][]string{}, wait: wait, log: log, m: newMetrics(reg),
		Readers: 2, MinInterval: 100 * time.Millisecond, MaxBackoff: 10 * time.Second,
		q:    newQueue(),
		last: map[string]membership.Update{}, onNode: map[string][]string{}, nodesOf: map[string][]string{},
		backoff: map[string]time.Duration{}}
	s.users, s.all = usersOf(names)
	return s
}

// usersOf indexes bg services by Consul service.
func usersOf(names map[string]string) (users map[string][]string, all []string) {
	users = map[string][]string{}
	for svc, name := range names {
		if name == "" {
			name = svc
		}
		users[name] = append(users[name], svc)
	}
	for name := range users {
		slices.Sort(users[name])
		all = append(all, name)
	}
	slices.Sort(all)
	return users, all
}

// SetServices replaces the watched services (a config reload): new ones
// are read at once, and fn gets their first read even if a service of
// that name was watched before; removed ones are no longer read.
func (s *Source) SetServices(names map[string]string) {
	users, all := usersOf(names)
	s.cfgMu.Lock()
	old := s.users
	s.users, s.all = users, all
	s.cfgMu.Unlock()
	var added []string
	s.mu.Lock()
	for name, svcs := range users {
		for _, svc := range svcs {
			if !slices.Contains(old[name], svc) {
				delete(s.last, svc)
				added = append(added, name)
			}
		}
	}
	for name, svcs := range old {
		for _, svc := range svcs {
			if !slices.Contains(users[name], svc) {
				delete(s.last, svc)
			}
		}
	}
	s.mu.Unlock()
	s.q.urgent(added...)
}

func (s *Source) watched(name string) bool {
	s.cfgMu.RLock()
	defer s.cfgMu.RUnlock()
	return s.users[name] != nil
}

// bgServices are the bg services read from a Consul service.
func (s *Source) bgServices(name string) []string {
	s.cfgMu.RLock()
	defer s.cfgMu.RUnlock()
	return s.users[name]
}

// consulServices are the watched Consul services, sorted.
func (s *Source) consulServices() []string {
	s.cfgMu.RLock()
	defer s.cfgMu.RUnlock()
	return s.all
}

// Run calls fn after the first successful read of each service and after
// every change, until ctx ends. Failed reads never call fn: the last known
// fleets stay in force. fn may be called from several goroutines, but never
// concurrently for the same service.
func (s *Source) Run(ctx context.Context, fn func(membership.Update)) {
	var wg sync.WaitGroup
	defer wg.Wait()
	// Both watches take their first answer before any service is read, so
	// a change after a read is always seen as a difference from it.
	checksUp, servicesUp := make(chan struct{}), make(chan struct{})
	wg.Add(2)
	go func() { defer wg.Done(); s.followChecks(ctx, checksUp) }()
	go func() { defer wg.Done(); s.followServices(ctx, servicesUp) }()
	for _, up := range []chan struct{}{checksUp, servicesUp} {
		select {
		case <-up:
		case <-ctx.Done():
			return
		}
	}
	s.q.urgent(s.consulServices()...)
	s.readLoop(ctx, fn)
}

// followChecks diffs /v1/health/state/any and queues the services whose
// checks changed, and those with an instance on a node whose checks changed.
func (s *Source) followChecks(ctx context.Context, up chan<- struct{}) {
	var prev *checkView
	var checks []*api.HealthCheck
	s.follow(ctx, "health", up, func(index uint64) (got uint64, err error) {
		checks, got, err = s.cat.Checks(ctx, index, s.wait)
		return got, err
	}, func(_, reset bool) {
		v := viewChecks(checks, s.watched)
		if prev != nil {
			names, nodes := prev.changed(v)
			s.mu.Lock()
			for _, n := range nodes {
				names = append(names, s.onNode[n]...)
			}
			s.mu.Unlock()
			s.q.urgent(names...)
		}
		if reset {
			s.q.resync(s.consulServices())
		}
		prev = &v
		checks = nil // the view is all that is kept: the answer is MBs at 1,000 services
		s.markCurrent()
	})
}

// followServices diffs /v1/catalog/services. Services added, removed or
// retagged are read first; any move of its index queues every service for
// a re-read, because the answer cannot show changes of meta, address, port
// or weights.
func (s *Source) followServices(ctx context.Context, up chan<- struct{}) {
	var prev serviceView
	var services map[string][]string
	s.follow(ctx, "catalog", up, func(index uint64) (got uint64, err error) {
		services, got, err = s.cat.Services(ctx, index, s.wait)
		return got, err
	}, func(moved, _ bool) {
		v := viewServices(services, s.watched)
		if prev != nil {
			s.q.urgent(prev.changed(v)...)
			if moved {
				s.q.resync(s.consulServices())
			}
		}
		prev = v
		services = nil
	})
}

// follow runs one blocking query loop with Consul's rules: the index resets
// when it goes backwards (a restored snapshot), never waits on an index
// below 1, and fetches at most once per MinInterval. apply runs after each
// successful read, told whether the index moved and whether it reset; up
// is closed after the first.
func (s *Source) follow(ctx context.Context, what string, up chan<- struct{}, read func(index uint64) (uint64, error), apply func(moved, reset bool)) {
	var index uint64
	first := true
	backoff := s.MinInterval
	for ctx.Err() == nil {
		start := time.Now()
		got, err := read(index)
		if err != nil {
			if ctx.Err() != nil {
				return
			}
			s.m.watchErrors.WithLabelValues(what).Inc()
			s.log.Warn("consul watch failed; keeping the last known fleets", "watch", what, "error", err, "retry_in", backoff)
			wait.Sleep(ctx, backoff)
			backoff = min(backoff*2, s.MaxBackoff)
			continue
		}
		backoff = s.MinInterval
		next := nextIndex(index, got)
		apply(!first && next != index, index > 0 && got < index)
		index = next
		if first {
			first = false
			close(up)
		}
		wait.Sleep(ctx, s.MinInterval-time.Since(start))
	}
}

// readLoop reads queued services, at most Readers at a time, until ctx ends.
func (s *Source) readLoop(ctx context.Context, fn func(membership.Update)) {
	sem := make(chan struct{}, max(s.Readers, 1))
	var wg sync.WaitGroup
	defer wg.Wait()
	for {
		name, ok := s.q.take(ctx)
		if !ok {
			return
		}
		select {
		case sem <- struct{}{}:
		case <-ctx.Done():
			s.q.done(name)
			return
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			s.read(ctx, name, fn)
			<-sem
			s.q.done(name)
		}()
	}
}

// read reads one Consul service and hands each of its bg services' fleets
// to fn if they changed. A failed read changes nothing and is retried.
func (s *Source) read(ctx context.Context, name string, fn func(membership.Update)) {
	entries, err := s.cat.Instances(ctx, name)
	if err != nil {
		if ctx.Err() != nil {
			return
		}
		s.mu.Lock()
		backoff := min(max(s.backoff[name]*2, s.MinInterval), s.MaxBackoff)
		s.backoff[name] = backoff
		s.mu.Unlock()
		for _, svc := range s.bgServices(name) {
			s.m.errors.WithLabelValues(svc).Inc()
		}
		s.log.Warn("consul read failed; keeping the last known fleets", "consul_service", name, "error", err, "retry_in", backoff)
		go func() {
			if wait.Sleep(ctx, backoff) {
				s.q.urgent(name)
			}
		}()
		return
	}
	passing := passingOnly(entries)
	s.mu.Lock()
	delete(s.backoff, name)
	s.placeLocked(name, entries)
	s.mu.Unlock()
	for _, svc := range s.bgServices(name) {
		s.m.lastSuccess.WithLabelValues(svc).SetToCurrentTime()
		m, skipped := toMembership(passing, s.rule)
		u := membership.Update{Service: svc, Membership: m, Skipped: skipped}
		u.Rolling, u.AffinityHeader = strategyHint(passing)
		s.mu.Lock()
		last, seen := s.last[svc]
		changed := !seen || !reflect.DeepEqual(last, u)
		s.last[svc] = u
		s.mu.Unlock()
		if changed {
			for _, sk := range skipped {
				s.log.Warn("consul instance ignored", "service", svc, "reason", sk)
			}
			fn(u)
		}
	}
}

// placeLocked records which nodes hold the service's instances, passing or
// not, so a node check changing re-reads exactly the services on it.
func (s *Source) placeLocked(name string, entries []*api.ServiceEntry) {
	// A sorted slice per node rather than a set: most nodes hold a few
	// services, and a map each cost about 0.5 MB at 2,000 nodes.
	for _, n := range s.nodesOf[name] {
		on := s.onNode[n]
		if i, ok := slices.BinarySearch(on, name); ok {
			on = slices.Delete(on, i, i+1)
		}
		if len(on) == 0 {
			delete(s.onNode, n)
		} else {
			s.onNode[n] = on
		}
	}
	var nodes []string
	for _, e := range entries {
		if e == nil || e.Node == nil {
			continue
		}
		n := e.Node.Node
		if i, ok := slices.BinarySearch(s.onNode[n], name); !ok {
			s.onNode[n] = slices.Insert(s.onNode[n], i, name)
			nodes = append(nodes, n)
		}
	}
	s.nodesOf[name] = nodes
}

// markCurrent stamps every service whose last read did not fail: a
// successful health watch says nothing changed since that read.
func (s *Source) markCurrent() {
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, name := range s.consulServices() {
		if _, failing := s.backoff[name]; failing {
			continue
		}
		if _, read := s.nodesOf[name]; !read {
			continue
		}
		for _, svc := range s.bgServices(name) {
			s.m.lastSuccess.WithLabelValues(svc).SetToCurrentTime()
		}
	}
}

// passingOnly keeps the instances whose every check, node checks included,
// passes: what /v1/health/service/NAME?passing answers. bg reads all
// instances so it knows which nodes hold them, then filters here.
func passingOnly(entries []*api.ServiceEntry) []*api.ServiceEntry {
	var out []*api.ServiceEntry
	for _, e := range entries {
		if e == nil {
			continue
		}
		ok := true
		for _, c := range e.Checks {
			if c != nil && c.Status != api.HealthPassing {
				ok = false
				break
			}
		}
		if ok {
			out = append(out, e)
		}
	}
	return out
}

// nextIndex applies Consul's blocking-query rules: reset when the index
// goes backwards (e.g. a restored snapshot), never block on an index below 1.
func nextIndex(prev, got uint64) uint64 {
	if got < prev {
		return 0
	}
	if got < 1 {
		return 1
	}
	return got
}

var _ membership.Source = (*Source)(nil)
