package xds

import (
	"context"
	"log/slog"
	"slices"
	"sort"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	core "github.com/envoyproxy/go-control-plane/envoy/config/core/v3"
	discovery "github.com/envoyproxy/go-control-plane/envoy/service/discovery/v3"
	"github.com/envoyproxy/go-control-plane/pkg/resource/v3"

	"github.com/bgctl/bg/controlplane/model"
)

// NACK is a proxy's rejection of a response.
type NACK struct {
	TypeURL string    `json:"type_url"`
	Version string    `json:"version"`
	Message string    `json:"message"`
	At      time.Time `json:"at"`
	// Generation is the traffic generation the rejected route carried; set
	// only in route ACK reports (RouteAcks), 0 elsewhere.
	Generation uint64 `json:"generation,omitempty"`
}

// ProxyInfo describes one connected xDS stream.
type ProxyInfo struct {
	StreamID  int64  `json:"stream_id"`
	NodeID    string `json:"node_id"`
	Cluster   string `json:"cluster,omitempty"`
	UserAgent string `json:"user_agent,omitempty"`
	// UserAgentVersion is the client's version as its node reports it.
	UserAgentVersion string `json:"user_agent_version,omitempty"`
	// Sessions says whether the client keeps a rolling service's sessions
	// (see ClientSessions); SessionsWhy says why.
	Sessions    Sessions      `json:"sessions,omitempty"`
	SessionsWhy string        `json:"sessions_why,omitempty"`
	Flavour     model.Flavour `json:"flavour"`
	Since       time.Time     `json:"connected_since"`
	Routes      []string      `json:"routes"`
	LastNACK    *NACK         `json:"last_nack,omitempty"`
	// Generation is the traffic generation of the route this proxy holds;
	// set only in route ACK reports (RouteAcks). 0: none yet.
	Generation uint64 `json:"held_generation,omitempty"`
	// Replica is the control-plane replica the proxy is connected to; set
	// only by reports aggregated across replicas.
	Replica string `json:"replica,omitempty"`
}

type sent struct {
	nonce   string
	version string
	at      time.Time
	names   []string // routes only: the route names the response carried
}

// routeHold is what one proxy holds of one route it subscribes to.
type routeHold struct {
	held  uint64 // route cache version of the last ACKed response carrying the route
	nackV uint64 // route cache version of the last NACKed response carrying it
	nack  *NACK
}

// proxy is the tracker's per-stream bookkeeping. It is kept small: one
// lives per stream, thousands per replica (issue 11's heap profile put
// the maps it used to hold at about 2 KB per proxy).
type proxy struct {
	node        *core.Node
	flavour     model.Flavour
	sessions    Sessions // from the node, once
	sessionsWhy string
	since       time.Time
	routes      routeSubs
	lastSent    sentByType
	ackedRoute  uint64 // route cache version last ACKed
	nackedRoute uint64 // route cache version last NACKed
	lastNACK    *NACK
}

// routeSubs is a stream's subscribed routes, sorted, each with what the
// proxy holds of it (holds[i] is names[i]'s).
type routeSubs struct {
	names []string
	holds []routeHold
}

func (r *routeSubs) find(name string) (int, bool) { return slices.BinarySearch(r.names, name) }

// has reports whether the stream subscribes to name.
func (r *routeSubs) has(name string) bool {
	_, ok := r.find(name)
	return ok
}

// hold is what the proxy holds of a route it subscribes to; nil if it
// does not subscribe to it.
func (r *routeSubs) hold(name string) *routeHold {
	if i, ok := r.find(name); ok {
		return &r.holds[i]
	}
	return nil
}

// replace subscribes to exactly names (SotW sends the full list), keeping
// what the proxy holds of the routes it still subscribes to. It reports
// whether the set changed.
func (r *routeSubs) replace(names []string) bool {
	next := slices.Clone(names)
	slices.Sort(next)
	next = slices.Compact(next)
	if slices.Equal(next, r.names) {
		return false
	}
	holds := make([]routeHold, len(next))
	for i, n := range next {
		if h := r.hold(n); h != nil {
			holds[i] = *h
		}
	}
	r.names, r.holds = slices.Clip(next), holds
	return true
}

// sentByType is the last response sent for each type: an array for the
// four types bg serves, a map only for any other a proxy may ask for.
type sentByType struct {
	known [4]sent
	other map[string]sent
}

func knownType(typeURL string) int {
	switch typeURL {
	case resource.ListenerType:
		return 0
	case resource.RouteType:
		return 1
	case resource.ClusterType:
		return 2
	case resource.EndpointType:
		return 3
	}
	return -1
}

func (b *sentByType) get(typeURL string) (sent, bool) {
	if i := knownType(typeURL); i >= 0 {
		return b.known[i], b.known[i].nonce != ""
	}
	s, ok := b.other[typeURL]
	return s, ok
}

func (b *sentByType) set(typeURL string, s sent) {
	if i := knownType(typeURL); i >= 0 {
		b.known[i] = s
		return
	}
	if b.other == nil {
		b.other = map[string]sent{}
	}
	b.other[typeURL] = s
}

// tracker follows every stream's subscriptions, ACKs and NACKs, so a switch
// can wait for the proxies that matter. All work per request is O(waiters).
type tracker struct {
	mu          sync.Mutex
	routePrefix string // version prefix of the route cache
	proxies     map[int64]*proxy
	waiters     map[*waiter]struct{}
	m           *metrics
	log         *slog.Logger
	// gens maps each route's versions to the traffic generation they serve.
	gens map[string][]checkpoint
	// subs are told (without blocking) of any change a route ACK report may show.
	subs map[chan struct{}]struct{}
	// subscribers indexes streams by the routes they subscribe to, so a
	// report costs O(its subscribers), not O(all streams).
	subscribers map[string]map[int64]*proxy
	// activity, if set, is told of every stream opened and every request
	// (SetActivityHook); it must not block.
	activity atomic.Pointer[func()]
}

func (t *tracker) touch() {
	if f := t.activity.Load(); f != nil {
		(*f)()
	}
}

func newTracker(routePrefix string, m *metrics, log *slog.Logger) *tracker {
	return &tracker{
		routePrefix: routePrefix, proxies: map[int64]*proxy{}, waiters: map[*waiter]struct{}{}, m: m, log: log,
		gens: map[string][]checkpoint{}, subs: map[chan struct{}]struct{}{}, subscribers: map[string]map[int64]*proxy{},
	}
}

// routeVersion parses a version of the route cache; 0 means not ours.
func (t *tracker) routeVersion(v string) uint64 {
	if !strings.HasPrefix(v, t.routePrefix) {
		return 0
	}
	n, err := strconv.ParseUint(v[len(t.routePrefix):], 10, 64)
	if err != nil {
		return 0
	}
	return n
}

// OnStreamOpen implements sotw.Callbacks.
func (t *tracker) OnStreamOpen(_ context.Context, id int64, _ string) error {
	t.touch()
	t.mu.Lock()
	t.proxies[id] = &proxy{since: time.Now()}
	t.mu.Unlock()
	t.m.proxies.Inc()
	return nil
}

// OnStreamClosed implements sotw.Callbacks.
func (t *tracker) OnStreamClosed(id int64, _ *core.Node) {
	t.mu.Lock()
	if p := t.proxies[id]; p != nil {
		t.unindex(id, p.routes.names)
	}
	delete(t.proxies, id)
	for w := range t.waiters {
		w.forget(id)
	}
	t.notifyLocked()
	t.mu.Unlock()
	t.m.proxies.Dec()
}

// OnStreamRequest implements sotw.Callbacks. It classifies ACKs and NACKs
// and, on a NACK, makes the cache treat the rejected version as known so it
// is not resent in a loop (go-control-plane #962).
func (t *tracker) OnStreamRequest(id int64, req *discovery.DiscoveryRequest) error {
	t.touch()
	typeURL := req.GetTypeUrl()
	t.mu.Lock()
	defer t.mu.Unlock()
	p := t.proxies[id]
	if p == nil {
		return nil
	}
	if p.node == nil && req.GetNode() != nil {
		p.node = req.GetNode()
		p.flavour = FlavourOf(p.node)
		p.sessions, p.sessionsWhy = ClientSessions(p.node)
	}
	last, hasSent := p.lastSent.get(typeURL)
	if hasSent && req.GetResponseNonce() != last.nonce {
		return nil // stale: the server ignores it too
	}
	if typeURL == resource.RouteType {
		t.resubscribe(id, p, req.GetResourceNames())
	}
	if !hasSent {
		return nil
	}
	if detail := req.GetErrorDetail(); detail != nil {
		p.lastNACK = &NACK{TypeURL: typeURL, Version: last.version, Message: detail.GetMessage(), At: time.Now()}
		t.m.nacks.WithLabelValues(shortType(typeURL)).Inc()
		t.log.Warn("proxy rejected config", "node", p.node.GetId(), "type", shortType(typeURL), "version", last.version, "error", detail.GetMessage())
		req.VersionInfo = last.version
		if typeURL == resource.RouteType {
			v := t.routeVersion(last.version)
			p.nackedRoute = v
			for w := range t.waiters {
				w.nacked(id, v, detail.GetMessage())
			}
			for _, n := range last.names {
				if h := p.routes.hold(n); h != nil {
					h.nackV, h.nack = v, p.lastNACK
				}
			}
			t.notifyLocked()
		}
		return nil
	}
	t.m.acks.WithLabelValues(shortType(typeURL)).Inc()
	t.m.ackDelay.WithLabelValues(shortType(typeURL)).Observe(time.Since(last.at).Seconds())
	if typeURL == resource.RouteType {
		if v := t.routeVersion(last.version); v > p.ackedRoute {
			p.ackedRoute = v
		}
		for w := range t.waiters {
			w.acked(id, p.ackedRoute)
		}
		if v := t.routeVersion(last.version); v > 0 {
			for _, n := range last.names {
				h := p.routes.hold(n)
				if h == nil {
					continue
				}
				h.held = max(h.held, v)
				if h.nackV <= h.held {
					h.nackV, h.nack = 0, nil
				}
			}
		}
		t.notifyLocked()
	}
	return nil
}

// resubscribe replaces a stream's route subscription (SotW sends the full list).
func (t *tracker) resubscribe(id int64, p *proxy, names []string) {
	prev := p.routes.names
	if !p.routes.replace(names) {
		return
	}
	for w := range t.waiters {
		if !p.routes.has(w.route) {
			w.forget(id)
		}
	}
	t.unindex(id, prev)
	for _, n := range p.routes.names {
		m := t.subscribers[n]
		if m == nil {
			m = map[int64]*proxy{}
			t.subscribers[n] = m
		}
		m[id] = p
	}
	t.notifyLocked()
}

// unindex removes a stream from the subscriber index of routes.
func (t *tracker) unindex(id int64, routes []string) {
	for _, n := range routes {
		if m := t.subscribers[n]; m != nil {
			delete(m, id)
			if len(m) == 0 {
				delete(t.subscribers, n)
			}
		}
	}
}

// OnStreamResponse implements sotw.Callbacks.
func (t *tracker) OnStreamResponse(_ context.Context, id int64, req *discovery.DiscoveryRequest, resp *discovery.DiscoveryResponse) {
	t.mu.Lock()
	if p := t.proxies[id]; p != nil {
		s := sent{nonce: resp.GetNonce(), version: resp.GetVersionInfo(), at: time.Now()}
		if req.GetTypeUrl() == resource.RouteType {
			s.names = routeNames(resp, req)
		}
		p.lastSent.set(req.GetTypeUrl(), s)
	}
	t.mu.Unlock()
	t.m.pushes.WithLabelValues(shortType(req.GetTypeUrl())).Inc()
}

// OnFetchRequest and the rest satisfy server.Callbacks; bg serves ADS only.
func (t *tracker) OnFetchRequest(context.Context, *discovery.DiscoveryRequest) error         { return nil }
func (t *tracker) OnFetchResponse(*discovery.DiscoveryRequest, *discovery.DiscoveryResponse) {}
func (t *tracker) OnDeltaStreamOpen(context.Context, int64, string) error                    { return nil }
func (t *tracker) OnDeltaStreamClosed(int64, *core.Node)                                     {}
func (t *tracker) OnStreamDeltaRequest(int64, *discovery.DeltaDiscoveryRequest) error {
	return nil
}
func (t *tracker) OnStreamDeltaResponse(int64, *discovery.DeltaDiscoveryRequest, *discovery.DeltaDiscoveryResponse) {
}

func (t *tracker) info(id int64, p *proxy) ProxyInfo {
	routes := slices.Clone(p.routes.names)
	if routes == nil {
		routes = []string{}
	}
	return ProxyInfo{
		StreamID: id, NodeID: p.node.GetId(), Cluster: p.node.GetCluster(), UserAgent: p.node.GetUserAgentName(),
		UserAgentVersion: nodeVersion(p.node), Sessions: p.sessions, SessionsWhy: p.sessionsWhy,
		Flavour: p.flavour, Since: p.since, Routes: routes, LastNACK: p.lastNACK,
	}
}

// proxiesList returns every connected stream, oldest first.
func (t *tracker) proxiesList() []ProxyInfo {
	t.mu.Lock()
	defer t.mu.Unlock()
	out := make([]ProxyInfo, 0, len(t.proxies))
	for id, p := range t.proxies {
		out = append(out, t.info(id, p))
	}
	sort.Slice(out, func(i, j int) bool { return out[i].StreamID < out[j].StreamID })
	return out
}

// routeStatus counts the streams subscribed to a route and those that ACKed version v or later.
func (t *tracker) routeStatus(route string, v uint64) (subscribed, acked int) {
	t.mu.Lock()
	defer t.mu.Unlock()
	for _, p := range t.proxies {
		if p.routes.has(route) {
			subscribed++
			if p.ackedRoute >= v {
				acked++
			}
		}
	}
	return subscribed, acked
}
