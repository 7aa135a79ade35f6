package acks

import (
	"context"
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
}

func newFakeConsul() *fakeConsul {
	return &fakeConsul{kv: map[string]api.KVPair{}, sessions: map[string]api.SessionEntry{}, changed: make(chan struct{}), writes: map[string]int{}}
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

func (f *fakeConsul) List(prefix string, q *api.QueryOptions) (api.KVPairs, *api.QueryMeta, error) {
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
		f.mu.Unlock()
		select {
		case <-ch:
		case <-timeout:
			q.WaitIndex = 0
		case <-ctx.Done():
			return nil, nil, ctx.Err()
		}
	}
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
