package xds

import (
	"context"
	"sort"
)

// AckResult says how a route change landed on the proxies subscribed to it.
type AckResult struct {
	Acked   int         `json:"acked"`
	Pending []ProxyInfo `json:"pending,omitempty"` // did not ACK in time; LastNACK says if they rejected it
	// Unlisted counts pending proxies not in Pending (results aggregated
	// across replicas cap their lists, or only know a count).
	Unlisted int `json:"unlisted,omitempty"`
	// Unconfirmed, when set, says why the change cannot be confirmed even
	// if no proxy is listed (e.g. other replicas' reports were unreadable).
	Unconfirmed string `json:"unconfirmed,omitempty"`
}

// Complete is true when no subscribed proxy is left without the change.
func (r AckResult) Complete() bool {
	return len(r.Pending) == 0 && r.Unlisted == 0 && r.Unconfirmed == ""
}

// PendingCount counts the proxies without the change, listed or not.
func (r AckResult) PendingCount() int { return len(r.Pending) + r.Unlisted }

// waiter waits for every stream subscribed to route to ACK version or later.
type waiter struct {
	route   string
	version uint64
	pending map[int64]struct{}
	nacks   map[int64]string
	acks    int
	done    chan struct{}
	closed  bool
}

func (w *waiter) finish() {
	if !w.closed {
		w.closed = true
		close(w.done)
	}
}

func (w *waiter) check() {
	if len(w.pending) == 0 || len(w.nacks) == len(w.pending) {
		w.finish() // done, or nobody left who could still ACK
	}
}

func (w *waiter) acked(id int64, v uint64) {
	if _, ok := w.pending[id]; ok && v >= w.version {
		delete(w.pending, id)
		delete(w.nacks, id)
		w.acks++
		w.check()
	}
}

// nacked records a rejection of route version v. A NACK of an older version
// says nothing about the awaited one, which the proxy is sent right after.
func (w *waiter) nacked(id int64, v uint64, msg string) {
	if _, ok := w.pending[id]; ok && v >= w.version {
		w.nacks[id] = msg
		w.check()
	}
}

func (w *waiter) forget(id int64) {
	if _, ok := w.pending[id]; ok {
		delete(w.pending, id)
		delete(w.nacks, id)
		w.check()
	}
}

// waitRoute blocks until every stream now subscribed to route has ACKed
// version (or later), every remaining one has NACKed it, or ctx ends.
func (t *tracker) waitRoute(ctx context.Context, route string, version uint64) AckResult {
	w := &waiter{route: route, version: version, pending: map[int64]struct{}{}, nacks: map[int64]string{}, done: make(chan struct{})}
	t.mu.Lock()
	for id, p := range t.proxies {
		if !p.routes.has(route) {
			continue
		}
		if p.ackedRoute >= version {
			w.acks++
			continue
		}
		w.pending[id] = struct{}{}
		if p.nackedRoute >= version { // rejected before the wait began
			w.nacks[id] = p.lastNACK.Message
		}
	}
	w.check()
	t.waiters[w] = struct{}{}
	t.mu.Unlock()

	select {
	case <-w.done:
	case <-ctx.Done():
	}

	t.mu.Lock()
	defer t.mu.Unlock()
	delete(t.waiters, w)
	res := AckResult{Acked: w.acks}
	for id := range w.pending {
		if p := t.proxies[id]; p != nil {
			res.Pending = append(res.Pending, t.info(id, p))
		}
	}
	sort.Slice(res.Pending, func(i, j int) bool { return res.Pending[i].StreamID < res.Pending[j].StreamID })
	return res
}
