package xds

import (
	"context"
	"sort"

	discovery "github.com/envoyproxy/go-control-plane/envoy/service/discovery/v3"
	"github.com/envoyproxy/go-control-plane/pkg/resource/v3"
	"google.golang.org/protobuf/encoding/protowire"
)

// A route in the cache serves one traffic generation of its service. Route
// versions (the route cache's counter) and generations both only grow, so
// each route keeps checkpoints: from route version V on, the route serves
// generation G. A proxy that ACKed a response carrying the route at version
// v holds the generation of the last checkpoint at or before v.
//
// A generation change that leaves the route as it was (a pause, a confirm)
// adds no push: it raises the generation of the route version proxies
// already hold, so they hold the new generation too.

// maxCheckpoints bounds each route's history. A proxy holding a route older
// than the oldest kept checkpoint is reported as holding generation 0.
const maxCheckpoints = 64

type checkpoint struct {
	version uint64 // route cache version of the route's write
	gen     uint64
}

// genAt is the generation a route held at version v serves (0: unknown).
func genAt(cps []checkpoint, v uint64) uint64 {
	i := sort.Search(len(cps), func(i int) bool { return cps[i].version > v })
	if i == 0 {
		return 0
	}
	return cps[i-1].gen
}

// declare records that from route version v on the route serves gen.
func (t *tracker) declare(route string, v, gen uint64) {
	t.mu.Lock()
	defer t.mu.Unlock()
	cps := t.gens[route]
	switch n := len(cps); {
	case n > 0 && gen < cps[n-1].gen:
		// Generations never go back in the store; if the caller says so
		// anyway, forget what older versions served rather than overstate.
		cps = []checkpoint{{version: v, gen: gen}}
	case n > 0 && cps[n-1].version == v:
		cps[n-1].gen = gen // same route content, newer generation
	case n > 0 && v < cps[n-1].version:
		return // a stale declaration of an older write
	default:
		cps = append(cps, checkpoint{version: v, gen: gen})
		if len(cps) > maxCheckpoints {
			cps = append([]checkpoint(nil), cps[len(cps)-maxCheckpoints:]...)
		}
	}
	t.gens[route] = cps
	t.notifyLocked()
}

func (t *tracker) routeGeneration(route string) uint64 {
	t.mu.Lock()
	defer t.mu.Unlock()
	if cps := t.gens[route]; len(cps) > 0 {
		return cps[len(cps)-1].gen
	}
	return 0
}

// AckReport is one replica's local view of one route: how many of its
// proxies subscribe to it and which of them do not hold generation Want.
type AckReport struct {
	Route string `json:"route"`
	// Want is the generation asked about (0 asked: Generation).
	Want uint64 `json:"want"`
	// Generation is the generation the route in this server's cache serves
	// now; 0 when none was ever declared (UpdateRouteGen, MarkRouteGen).
	Generation uint64 `json:"generation"`
	Subscribed int    `json:"subscribed"`
	// Acked counts subscribed proxies holding Want or later.
	Acked int `json:"acked"`
	// Pending are the other subscribed proxies, oldest stream first:
	// Generation is what each holds, LastNACK its last rejection of this
	// route that it has not since made good (NACK.Generation: what the
	// rejected route carried).
	Pending []ProxyInfo `json:"pending,omitempty"`
	// NoSessions are the subscribed proxies (ACKed or not) whose client
	// does not keep a rolling service's sessions for sure: Sessions is
	// lost, opt_in or unknown. Set by callers for rolling services only
	// (Server.RouteNoSessions); RouteAcks leaves it empty.
	NoSessions []ProxyInfo `json:"no_sessions,omitempty"`
}

// Complete: every subscribed proxy holds Want (true with no proxies).
func (r AckReport) Complete() bool { return len(r.Pending) == 0 }

// Settled: no pending proxy can still take Want without a new push: each
// rejected a route carrying Want or later.
func (r AckReport) Settled() bool {
	for _, p := range r.Pending {
		if p.LastNACK == nil || p.LastNACK.Generation < r.Want {
			return false
		}
	}
	return true
}

// AckResult converts the report for callers of WaitRoute.
func (r AckReport) AckResult() AckResult {
	return AckResult{Acked: r.Acked, Pending: r.Pending}
}

func (t *tracker) routeAcks(route string, want uint64) AckReport {
	t.mu.Lock()
	defer t.mu.Unlock()
	cps := t.gens[route]
	rep := AckReport{Route: route, Want: want}
	if n := len(cps); n > 0 {
		rep.Generation = cps[n-1].gen
	}
	if rep.Want == 0 {
		rep.Want = rep.Generation
	}
	for id, p := range t.subscribers[route] {
		rep.Subscribed++
		h := p.routes.hold(route)
		var held uint64
		if h != nil && h.held > 0 {
			held = genAt(cps, h.held)
			if held >= rep.Want {
				rep.Acked++
				continue
			}
		}
		info := t.info(id, p)
		info.Generation, info.LastNACK = held, nil
		if h != nil && h.nack != nil && h.nackV > h.held {
			n := *h.nack
			n.Generation = genAt(cps, h.nackV)
			info.LastNACK = &n
		}
		rep.Pending = append(rep.Pending, info)
	}
	sort.Slice(rep.Pending, func(i, j int) bool { return rep.Pending[i].StreamID < rep.Pending[j].StreamID })
	return rep
}

// routeNoSessions lists the streams subscribed to route whose client may
// not keep a rolling service's sessions (not SessionsKept), oldest first.
// Asked only for rolling services: listing every proxy of every route in
// every report cost the scale bench 4× its switch latency.
func (t *tracker) routeNoSessions(route string) []ProxyInfo {
	t.mu.Lock()
	defer t.mu.Unlock()
	var out []ProxyInfo
	for id, p := range t.subscribers[route] {
		if p.node != nil && p.sessions != SessionsKept {
			info := t.info(id, p)
			info.Routes = nil
			out = append(out, info)
		}
	}
	sort.Slice(out, func(i, j int) bool { return out[i].StreamID < out[j].StreamID })
	return out
}

// notifyLocked tells every watcher that a report may have changed. The
// caller holds t.mu.
func (t *tracker) notifyLocked() {
	for ch := range t.subs {
		select {
		case ch <- struct{}{}:
		default: // already signalled; the watcher reads the latest state anyway
		}
	}
}

func (t *tracker) watch() (<-chan struct{}, func()) {
	ch := make(chan struct{}, 1)
	t.mu.Lock()
	t.subs[ch] = struct{}{}
	t.mu.Unlock()
	return ch, func() {
		t.mu.Lock()
		delete(t.subs, ch)
		t.mu.Unlock()
	}
}

// routeNames lists the routes a response carries, read from each
// RouteConfiguration's name (field 1) without unmarshalling it. Anything
// it cannot read falls back to the names the answered request asked for.
func routeNames(resp *discovery.DiscoveryResponse, req *discovery.DiscoveryRequest) []string {
	names := make([]string, 0, len(resp.GetResources()))
	for _, a := range resp.GetResources() {
		name, ok := "", a.GetTypeUrl() == resource.RouteType
		if ok {
			name, ok = protoStringField1(a.GetValue())
		}
		if !ok {
			return append([]string(nil), req.GetResourceNames()...)
		}
		names = append(names, name)
	}
	return names
}

func protoStringField1(b []byte) (string, bool) {
	for len(b) > 0 {
		num, typ, n := protowire.ConsumeTag(b)
		if n < 0 {
			return "", false
		}
		b = b[n:]
		if num == 1 && typ == protowire.BytesType {
			v, n := protowire.ConsumeBytes(b)
			if n < 0 {
				return "", false
			}
			return string(v), true
		}
		n = protowire.ConsumeFieldValue(num, typ, b)
		if n < 0 {
			return "", false
		}
		b = b[n:]
	}
	return "", true // proto3 default: the empty name
}

// waitRouteGen blocks until every proxy subscribed to route holds gen, each
// remaining one rejected a route carrying gen or later, or ctx ends.
func (t *tracker) waitRouteGen(ctx context.Context, route string, gen uint64) AckReport {
	ch, stop := t.watch()
	defer stop()
	for {
		rep := t.routeAcks(route, gen)
		if rep.Settled() {
			return rep
		}
		select {
		case <-ch:
		case <-ctx.Done():
			return rep
		}
	}
}
