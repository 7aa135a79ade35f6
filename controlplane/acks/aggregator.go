package acks

import (
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"strings"
	"sync"
	"time"

	"github.com/hashicorp/consul/api"

	"github.com/bgctl/bg/controlplane/wait"
)

// Aggregator answers, for one service and generation, whether every proxy
// of every live replica holds it. The answering replica's own proxies come
// from its xDS server directly; other replicas' from their reports in KV.
type Aggregator struct {
	kv KV
	// watchKV carries the shared blocking query (kv if nil), so it never
	// holds a connection that Status or a write needs.
	watchKV KV
	prefix  string
	self    string
	local   Source // nil: every replica, this one too, is read from KV
	log     *slog.Logger
	// rolling says which services roll host by host (Start's): their
	// local answer also lists the proxies that may not keep sessions.
	rolling func(service string) bool

	// WaitTime bounds one blocking query; MinInterval spaces queries so a
	// busy prefix cannot make Wait spin.
	WaitTime    time.Duration
	MinInterval time.Duration

	stopped chan struct{} // closed when Start's publisher has finished
	pub     *Publisher    // Start's publisher (SetServices)

	// The watch all concurrent Waits share (subscribe).
	mu        sync.Mutex
	waiters   map[chan snapshot]struct{}
	stopWatch context.CancelFunc // ends the running watch; nil: none
	watchDone chan struct{}      // closed when the latest watch has ended
	latest    *snapshot          // the running watch's latest answer
}

// NewAggregator reads reports under prefix (e.g. "bg/"); replica is this
// replica's id, whose proxies come from local instead of KV.
func NewAggregator(kv KV, prefix, replica string, local Source, log *slog.Logger) *Aggregator {
	return &Aggregator{kv: kv, prefix: prefix, self: replica, local: local, log: log,
		WaitTime: time.Minute, MinInterval: 10 * time.Millisecond}
}

// Stopped is closed once the Publisher started along with this Aggregator
// by Start has removed its reports (or given up); closed at once for an
// Aggregator built by NewAggregator.
func (a *Aggregator) Stopped() <-chan struct{} {
	if a.stopped == nil {
		ch := make(chan struct{})
		close(ch)
		return ch
	}
	return a.stopped
}

// Status answers at once: one read of the reports, no waiting. gen 0 means
// the generation this replica's route serves.
func (a *Aggregator) Status(ctx context.Context, service string, gen uint64) Result {
	gen = a.resolve(service, gen)
	pairs, _, err := a.kv.List(Dir(a.prefix, service), (&api.QueryOptions{}).WithContext(ctx))
	res, _ := a.evaluate(service, gen, pairs, err, err == nil)
	return res
}

// Wait returns once every subscribed proxy of every live replica holds gen
// (or later), or every proxy still pending rejected a route carrying gen or
// later, or ctx ends; Result.Complete tells which. gen 0 means the
// generation this replica's route serves. It watches the local xDS server
// and the service's reports through the one blocking query on every
// service's reports that all concurrent Waits share (see subscribe).
func (a *Aggregator) Wait(ctx context.Context, service string, gen uint64) Result {
	gen = a.resolve(service, gen)
	var changed <-chan struct{}
	if a.local != nil {
		ch, stop := a.local.WatchAcks()
		defer stop()
		changed = ch
	}
	snaps, leave := a.subscribe()
	defer leave()

	dir := Dir(a.prefix, service)
	var (
		pairs api.KVPairs
		err   error = errNotRead
		have  bool
	)
	for {
		res, settled := a.evaluate(service, gen, pairs, err, have)
		if settled {
			return res
		}
		select {
		case <-changed:
		case s := <-snaps:
			if s.err == nil {
				pairs, have = under(s.pairs, dir), true
			}
			err = s.err
		case <-ctx.Done():
			return res
		}
	}
}

var errNotRead = fmt.Errorf("other replicas' reports not read yet")

func (a *Aggregator) resolve(service string, gen uint64) uint64 {
	if gen == 0 && a.local != nil {
		return a.local.RouteAcks(service, 0).Want
	}
	return gen
}

// snapshot is one read of every service's reports (pairs, shared by every
// waiter: read only) or its error.
type snapshot struct {
	pairs api.KVPairs
	err   error
}

// under picks the pairs under dir.
func under(pairs api.KVPairs, dir string) api.KVPairs {
	var out api.KVPairs
	for _, p := range pairs {
		if strings.HasPrefix(p.Key, dir) {
			out = append(out, p)
		}
	}
	return out
}

// subscribe adds a waiter to the shared watch of prefix+"acks/", starting
// the watch for the first one; leave removes it, stopping the watch with
// the last one. The channel holds the latest snapshot not yet taken; a
// waiter joining a running watch gets its latest snapshot at once (the
// watch may be parked on a blocking query for a while). A new watch starts
// its queries only once the one before it has ended, so at most one query
// is ever in flight.
func (a *Aggregator) subscribe() (snaps <-chan snapshot, leave func()) {
	ch := make(chan snapshot, 1)
	a.mu.Lock()
	defer a.mu.Unlock()
	if a.waiters == nil {
		a.waiters = map[chan snapshot]struct{}{}
	}
	if len(a.waiters) == 0 {
		ctx, cancel := context.WithCancel(context.Background())
		prev, done := a.watchDone, make(chan struct{})
		a.stopWatch, a.watchDone, a.latest = cancel, done, nil
		go func() {
			defer close(done)
			if prev != nil {
				select {
				case <-prev:
				case <-ctx.Done():
					return
				}
			}
			a.watch(ctx)
		}()
	} else if a.latest != nil {
		ch <- *a.latest
	}
	a.waiters[ch] = struct{}{}
	return ch, func() {
		a.mu.Lock()
		defer a.mu.Unlock()
		delete(a.waiters, ch)
		if len(a.waiters) == 0 && a.stopWatch != nil {
			a.stopWatch()
			a.stopWatch, a.latest = nil, nil
		}
	}
}

// publishSnapshot hands s to every waiter, replacing one not yet taken. A
// stopped watch (ctx ended) hands nothing: its waiters are gone, and the
// next watch's may already be there.
func (a *Aggregator) publishSnapshot(ctx context.Context, s snapshot) {
	a.mu.Lock()
	defer a.mu.Unlock()
	if ctx.Err() != nil {
		return
	}
	a.latest = &s
	for ch := range a.waiters {
		select {
		case <-ch:
		default:
		}
		ch <- s
	}
}

// watch runs blocking queries on every service's reports until ctx ends
// and publishes each answer (or error).
func (a *Aggregator) watch(ctx context.Context) {
	tree := a.prefix + "acks/"
	var index uint64
	var last time.Time
	backoff := 50 * time.Millisecond
	for ctx.Err() == nil {
		if !wait.Sleep(ctx, a.MinInterval-time.Since(last)) && ctx.Err() != nil {
			return
		}
		last = time.Now()
		kv := a.watchKV
		if kv == nil {
			kv = a.kv
		}
		pairs, meta, err := kv.List(tree, (&api.QueryOptions{WaitIndex: index, WaitTime: a.WaitTime}).WithContext(ctx))
		if err != nil {
			if ctx.Err() != nil {
				return
			}
			a.publishSnapshot(ctx, snapshot{err: err})
			wait.Sleep(ctx, backoff)
			backoff = min(backoff*2, 2*time.Second)
			continue
		}
		backoff = 50 * time.Millisecond
		switch {
		case meta == nil:
			index = 0
		case meta.LastIndex < index:
			index = 0 // went backwards (snapshot restore): start over
		default:
			index = max(meta.LastIndex, 1)
		}
		a.publishSnapshot(ctx, snapshot{pairs: pairs})
	}
}

// evaluate combines the local report with the KV reports. have says
// whether pairs is a successful read; err is the latest read's error. A
// failed read after a good one keeps the good one: reports only move
// forward, and what a good read showed was true when read.
func (a *Aggregator) evaluate(service string, gen uint64, pairs api.KVPairs, err error, have bool) (Result, bool) {
	var replicas []ReplicaAcks
	if a.local != nil {
		replicas = append(replicas, localAcks(a.self, withNoSessions(a.local, a.rolling, service, a.local.RouteAcks(service, gen))))
	}
	unconfirmed := ""
	if !have {
		if err == nil {
			err = errNotRead
		}
		unconfirmed = "cannot read other replicas' reports: " + err.Error()
	}
	dir := Dir(a.prefix, service)
	for _, p := range pairs {
		replica := strings.TrimPrefix(p.Key, dir)
		if p.Session == "" || replica == "" || strings.Contains(replica, "/") {
			continue // left over without a session, or not a report
		}
		if a.local != nil && replica == a.self {
			continue // read directly
		}
		var r Report
		if err := json.Unmarshal(p.Value, &r); err != nil {
			replicas = append(replicas, ReplicaAcks{Replica: replica, Error: "unreadable report: " + err.Error()})
			continue
		}
		r.Replica = replica // the key is authoritative
		replicas = append(replicas, r.For(gen))
	}
	return combine(service, gen, replicas, unconfirmed)
}
