package acks

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/hashicorp/consul/api"

	"github.com/bgctl/bg/controlplane/xds"
)

// fakeConsul is an in-memory KV with sessions (behavior delete) and
// blocking List queries, enough for the Publisher and Aggregator.
type fakeConsul struct {
	renewals int
	mu       sync.Mutex
	index    uint64
	kv       map[string]api.KVPair
	sessions map[string]api.SessionEntry
	changed  chan struct{} // closed and replaced on every change
	nextID   int
	writes   map[string]int // successful Acquires by key
	readErr  error
	writeErr error
	lists    int
	parked   int // blocking Lists waiting for a change now
	// Lists in flight now and at most so far, and the prefixes asked.
	listing, maxListing int
	listed              map[string]int
	txns                []int // ops per Txn call, in order
	txnOK               int   // Txn calls that committed
	// txnSilent: a rolled-back Txn names no failing op.
	txnSilent bool
}

func newFakeConsul() *fakeConsul {
	return &fakeConsul{kv: map[string]api.KVPair{}, sessions: map[string]api.SessionEntry{}, changed: make(chan struct{}), writes: map[string]int{}, listed: map[string]int{}}
}

func (f *fakeConsul) bumpLocked() {
	f.index++
	close(f.changed)
	f.changed = make(chan struct{})
}

func (f *fakeConsul) Acquire(p *api.KVPair, _ *api.WriteOptions) (bool, *api.WriteMeta, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.writeErr != nil {
		return false, nil, f.writeErr
	}
	if _, ok := f.sessions[p.Session]; !ok {
		return false, nil, fmt.Errorf("Unexpected response code: 500 (invalid session %q)", p.Session)
	}
	if cur, ok := f.kv[p.Key]; ok && cur.Session != "" && cur.Session != p.Session {
		return false, &api.WriteMeta{}, nil
	}
	f.bumpLocked()
	f.kv[p.Key] = api.KVPair{Key: p.Key, Value: append([]byte(nil), p.Value...), Session: p.Session, ModifyIndex: f.index}
	f.writes[p.Key]++
	return true, &api.WriteMeta{}, nil
}

// Txn models Consul's transactions of KVLock ops: at most 64 ops; every
// failing op is named (OpIndex, What, in Consul's words) and one failure
// rolls back the lot; a commit applies every op at one index.
func (f *fakeConsul) Txn(ops api.TxnOps, _ *api.QueryOptions) (bool, *api.TxnResponse, *api.QueryMeta, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.writeErr != nil {
		return false, nil, nil, f.writeErr
	}
	if len(ops) > 64 {
		return false, nil, nil, fmt.Errorf("Failed request: Transaction contains too many operations (%d > 64)", len(ops))
	}
	if body, _ := json.Marshal(ops); len(body) > 512<<10 {
		return false, nil, nil, fmt.Errorf("Failed request: Request body too large, max size: %d bytes", 512<<10)
	}
	f.txns = append(f.txns, len(ops))
	resp := &api.TxnResponse{}
	for i, op := range ops {
		kv := op.KV
		switch {
		case kv == nil || kv.Verb != api.KVLock:
			resp.Errors = append(resp.Errors, &api.TxnError{OpIndex: i, What: "fake: only KV lock ops"})
		case kv.Session == "":
			resp.Errors = append(resp.Errors, &api.TxnError{OpIndex: i, What: "missing session"})
		default:
			if _, ok := f.sessions[kv.Session]; !ok {
				resp.Errors = append(resp.Errors, &api.TxnError{OpIndex: i, What: fmt.Sprintf("invalid session %q", kv.Session)})
			} else if cur, ok := f.kv[kv.Key]; ok && cur.Session != "" && cur.Session != kv.Session {
				resp.Errors = append(resp.Errors, &api.TxnError{OpIndex: i, What: fmt.Sprintf("failed to lock key %q, lock is already held", kv.Key)})
			}
		}
	}
	if len(resp.Errors) > 0 {
		if f.txnSilent {
			resp.Errors = nil
		}
		return false, resp, &api.QueryMeta{}, nil
	}
	f.txnOK++
	f.bumpLocked()
	for _, op := range ops {
		kv := op.KV
		f.kv[kv.Key] = api.KVPair{Key: kv.Key, Value: append([]byte(nil), kv.Value...), Session: kv.Session, ModifyIndex: f.index}
		f.writes[kv.Key]++
		resp.Results = append(resp.Results, &api.TxnResult{KV: &api.KVPair{Key: kv.Key, Session: kv.Session, ModifyIndex: f.index}})
	}
	return true, resp, &api.QueryMeta{}, nil
}

func (f *fakeConsul) List(prefix string, q *api.QueryOptions) (api.KVPairs, *api.QueryMeta, error) {
	f.mu.Lock()
	f.listing++
	f.maxListing = max(f.maxListing, f.listing)
	f.listed[prefix]++
	f.mu.Unlock()
	defer func() {
		f.mu.Lock()
		f.listing--
		f.mu.Unlock()
	}()
	ctx := q.Context()
	var timeout <-chan time.Time
	if q.WaitTime > 0 {
		timeout = time.After(q.WaitTime)
	}
	for {
		f.mu.Lock()
		f.lists++
		if err := f.readErr; err != nil {
			f.mu.Unlock()
			return nil, nil, err
		}
		if q.WaitIndex == 0 || f.index > q.WaitIndex {
			var out api.KVPairs
			for k, p := range f.kv {
				if strings.HasPrefix(k, prefix) {
					p := p
					out = append(out, &p)
				}
			}
			sort.Slice(out, func(i, j int) bool { return out[i].Key < out[j].Key })
			idx := f.index
			f.mu.Unlock()
			return out, &api.QueryMeta{LastIndex: idx}, nil
		}
		ch := f.changed
		f.parked++
		f.mu.Unlock()
		select {
		case <-ch:
		case <-timeout:
			q.WaitIndex = 0
		case <-ctx.Done():
		}
		f.mu.Lock()
		f.parked--
		f.mu.Unlock()
		if err := ctx.Err(); err != nil {
			return nil, nil, err
		}
	}
}

// parkedLists counts the blocking queries waiting for a change now.
func (f *fakeConsul) parkedLists() int {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.parked
}

func (f *fakeConsul) Create(se *api.SessionEntry, _ *api.WriteOptions) (string, *api.WriteMeta, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.writeErr != nil {
		return "", nil, f.writeErr
	}
	f.nextID++
	id := fmt.Sprintf("s%d", f.nextID)
	e := *se
	e.ID = id
	f.sessions[id] = e
	return id, &api.WriteMeta{}, nil
}

func (f *fakeConsul) Renew(id string, _ *api.WriteOptions) (*api.SessionEntry, *api.WriteMeta, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.renewals++
	e, ok := f.sessions[id]
	if !ok {
		return nil, &api.WriteMeta{}, nil
	}
	return &e, &api.WriteMeta{}, nil
}

func (f *fakeConsul) Destroy(id string, _ *api.WriteOptions) (*api.WriteMeta, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.expireLocked(id)
	return &api.WriteMeta{}, nil
}

// expireLocked drops a session and, behavior delete, every key it holds.
func (f *fakeConsul) expireLocked(id string) {
	delete(f.sessions, id)
	for k, p := range f.kv {
		if p.Session == id {
			delete(f.kv, k)
		}
	}
	f.bumpLocked()
}

func (f *fakeConsul) expireAll() {
	f.mu.Lock()
	defer f.mu.Unlock()
	for id := range f.sessions {
		f.expireLocked(id)
	}
}

func (f *fakeConsul) get(key string) (api.KVPair, bool) {
	f.mu.Lock()
	defer f.mu.Unlock()
	p, ok := f.kv[key]
	return p, ok
}

func (f *fakeConsul) put(p api.KVPair) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.bumpLocked()
	p.ModifyIndex = f.index
	f.kv[p.Key] = p
}

// listStats: Lists in flight now, at most at once so far, and in all.
func (f *fakeConsul) listStats() (now, most, total int) {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.listing, f.maxListing, f.lists
}

func (f *fakeConsul) txnSizes() []int {
	f.mu.Lock()
	defer f.mu.Unlock()
	return append([]int(nil), f.txns...)
}

func (f *fakeConsul) writeCount(key string) int {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.writes[key]
}

func (f *fakeConsul) setErrors(read, write error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.readErr, f.writeErr = read, write
}

// fakeProxy is one proxy of a fakeSource.
type fakeProxy struct {
	node    string
	held    uint64
	nackGen uint64 // generation of a rejected route (0: none)
	msg     string
}

// fakeSource is an xDS server reduced to what RouteAcks computes.
type fakeSource struct {
	mu      sync.Mutex
	reads   int // RouteAcks calls
	served  map[string]uint64
	proxies map[string][]fakeProxy
	subs    map[chan struct{}]struct{}
}

func newFakeSource() *fakeSource {
	return &fakeSource{served: map[string]uint64{}, proxies: map[string][]fakeProxy{}, subs: map[chan struct{}]struct{}{}}
}

func (s *fakeSource) set(route string, served uint64, proxies ...fakeProxy) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.served[route] = served
	s.proxies[route] = proxies
	for ch := range s.subs {
		select {
		case ch <- struct{}{}:
		default:
		}
	}
}

func (s *fakeSource) RouteAcks(route string, gen uint64) xds.AckReport {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.reads++
	rep := xds.AckReport{Route: route, Want: gen, Generation: s.served[route]}
	if gen == 0 {
		rep.Want = rep.Generation
	}
	for i, p := range s.proxies[route] {
		rep.Subscribed++
		if p.held >= rep.Want && p.held > 0 {
			rep.Acked++
			continue
		}
		info := xds.ProxyInfo{StreamID: int64(i + 1), NodeID: p.node, Generation: p.held}
		if p.nackGen > 0 {
			info.LastNACK = &xds.NACK{Message: p.msg, Generation: p.nackGen}
		}
		rep.Pending = append(rep.Pending, info)
	}
	return rep
}

func (s *fakeSource) WatchAcks() (<-chan struct{}, func()) {
	ch := make(chan struct{}, 1)
	s.mu.Lock()
	s.subs[ch] = struct{}{}
	s.mu.Unlock()
	return ch, func() {
		s.mu.Lock()
		delete(s.subs, ch)
		s.mu.Unlock()
	}
}

var errDown = errors.New("connection refused")

// eventually polls cond every 5 ms for up to 5 s.
func eventually(cond func() bool) bool {
	deadline := time.Now().Add(5 * time.Second)
	for time.Now().Before(deadline) {
		if cond() {
			return true
		}
		time.Sleep(5 * time.Millisecond)
	}
	return cond()
}

func withTimeout(d time.Duration) (context.Context, context.CancelFunc) {
	return context.WithTimeout(context.Background(), d)
}
