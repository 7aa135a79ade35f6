package sim

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/hashicorp/consul/api"

	"github.com/bgctl/bg/controlplane/acks"
	"github.com/bgctl/bg/controlplane/xds"
)

// Proxies and ACK reports (invariant 2). Each replica has two proxies
// subscribed to both services' routes; a proxy ACKs a pushed route after a
// few milliseconds, or NACKs it during a nack fault, and disconnects with
// its replica (or on its own) and reconnects. Each replica publishes what
// its proxies hold to the simulated Consul as acks.Report, 25 ms after a
// change, under a session that lapses with the replica; the real
// acks.Aggregator answers every "done" (command results, status) from the
// local proxies and those reports.

const ackPrefix = "bg/"

type proxy struct {
	node      string
	connected bool
	away      bool // disconnected by a fault; reconnects when it ends
	nacking   bool
	held      map[string]uint64 // service → push sequence held
	lastNACK  map[string]*xds.NACK
}

// routes is one replica's route cache: pushes in sequence, and the
// generation each sequence serves.
type routes struct {
	seq   map[string]uint64
	genOf map[string]map[uint64]uint64
}

func newRoutes() routes {
	return routes{seq: map[string]uint64{}, genOf: map[string]map[uint64]uint64{}}
}

func (r *Replica) gen(svc string, seq uint64) uint64 { return r.routes.genOf[svc][seq] }

// push records a new route for svc serving gen and has every connected
// proxy answer it.
func (r *Replica) push(svc string, gen uint64) {
	r.routes.seq[svc]++
	seq := r.routes.seq[svc]
	if r.routes.genOf[svc] == nil {
		r.routes.genOf[svc] = map[uint64]uint64{}
	}
	r.routes.genOf[svc][seq] = gen
	for _, p := range r.proxies {
		if p.connected {
			r.deliverRoute(p, svc, seq)
		}
	}
	r.schedulePublish()
}

// mark: the current route of svc serves gen (MarkRouteGen).
func (r *Replica) mark(svc string, gen uint64) {
	if r.routes.genOf[svc] == nil {
		r.routes.genOf[svc] = map[uint64]uint64{}
	}
	r.routes.genOf[svc][r.routes.seq[svc]] = gen
	r.schedulePublish()
}

// deliverRoute: p answers route seq of svc a little later.
func (r *Replica) deliverRoute(p *proxy, svc string, seq uint64) {
	x := rt{r, r.inc}
	r.w.s.After(r.w.s.jitter(time.Millisecond, 30*time.Millisecond), "", x.live("ack", func() {
		if !p.connected {
			return
		}
		if p.nacking {
			p.lastNACK[svc] = &xds.NACK{Message: "sim: route rejected", Generation: r.gen(svc, seq)}
		} else if seq > p.held[svc] {
			p.held[svc] = seq
			delete(p.lastNACK, svc)
		}
		r.schedulePublish()
	}))
}

// connect: p opens a stream and is sent every current route.
func (r *Replica) connect(p *proxy) {
	p.connected = true
	p.held, p.lastNACK = map[string]uint64{}, map[string]*xds.NACK{}
	for _, svc := range services {
		if r.routes.seq[svc] > 0 {
			r.deliverRoute(p, svc, r.routes.seq[svc])
		}
	}
	r.schedulePublish()
}

// RouteAcks is the replica's xDS server's view (acks.Source).
func (r *Replica) RouteAcks(route string, want uint64) xds.AckReport {
	cur := r.gen(route, r.routes.seq[route])
	if want == 0 {
		want = cur
	}
	rep := xds.AckReport{Route: route, Want: want, Generation: cur}
	for _, p := range r.proxies {
		if !p.connected {
			continue
		}
		rep.Subscribed++
		if h := r.gen(route, p.held[route]); h >= want && p.held[route] > 0 {
			rep.Acked++
		} else {
			rep.Pending = append(rep.Pending, xds.ProxyInfo{NodeID: p.node, Generation: h, LastNACK: p.lastNACK[route]})
		}
	}
	return rep
}

// WatchAcks is not used by the aggregator's Status.
func (r *Replica) WatchAcks() (<-chan struct{}, func()) { return make(chan struct{}), func() {} }

// schedulePublish writes the replica's reports 25 ms after a change.
func (r *Replica) schedulePublish() {
	if r.publishing {
		return
	}
	r.publishing = true
	x := rt{r, r.inc}
	var publish func()
	publish = func() {
		if !r.w.consul.reachable(r) {
			r.w.s.After(100*time.Millisecond, "", x.live("publish", publish))
			return
		}
		r.publishing = false
		for _, svc := range services {
			rep := acks.NewReport(r.id, svc, r.RouteAcks(svc, 0), acks.DefaultMaxListed)
			body, _ := json.Marshal(rep)
			r.w.consul.reports[acks.Key(ackPrefix, svc, r.id)] = report{body: body, replica: r.id, inc: r.inc}
		}
	}
	r.w.s.After(25*time.Millisecond, "", x.live("publish", publish))
}

// report is one replica's ACK report in the simulated KV, held by the
// session of one incarnation.
type report struct {
	body    []byte
	replica string
	inc     int
}

// lapseReports deletes the reports of sessions that lapsed: a dead
// incarnation's, or a replica's cut off from Consul for the TTL.
func (w *World) lapseReports() (changed bool) {
	now := w.s.Now()
	for key, rep := range w.consul.reports {
		r := w.byID(rep.replica)
		gone := r.inc != rep.inc || !r.alive
		if gone {
			if _, ok := w.deadAt[key]; !ok {
				w.deadAt[key] = now
			}
			if now.Sub(w.deadAt[key]) >= w.ttl && !w.consul.down {
				delete(w.consul.reports, key)
				delete(w.deadAt, key)
				changed = true
			}
			continue
		}
		delete(w.deadAt, key)
		if at, cut := w.lapse[r.id]; cut && now.Sub(at) >= w.ttl {
			delete(w.consul.reports, key)
			changed = true
		}
	}
	return changed
}

// ackKV is one replica's view of the reports (acks.KV).
type ackKV struct{ r *Replica }

func (k ackKV) Acquire(*api.KVPair, *api.WriteOptions) (bool, *api.WriteMeta, error) {
	return false, nil, errors.New("sim: reports are written by Replica.schedulePublish")
}

func (k ackKV) List(prefix string, _ *api.QueryOptions) (api.KVPairs, *api.QueryMeta, error) {
	c := k.r.w.consul
	if !c.reachable(k.r) {
		return nil, nil, errUnreachable
	}
	var out api.KVPairs
	for key, rep := range c.reports {
		if strings.HasPrefix(key, prefix) {
			out = append(out, &api.KVPair{Key: key, Value: rep.body, Session: fmt.Sprintf("%s#%d", rep.replica, rep.inc)})
		}
	}
	return out, &api.QueryMeta{LastIndex: c.index}, nil
}

// simAcks answers at once: the simulation cannot block, so a command's
// wait reports what holds at that instant.
type simAcks struct{ a *acks.Aggregator }

func (s simAcks) Wait(ctx context.Context, svc string, gen uint64) acks.Result {
	return s.a.Status(ctx, svc, gen)
}
func (s simAcks) Status(ctx context.Context, svc string, gen uint64) acks.Result {
	return s.a.Status(ctx, svc, gen)
}

// checkAcks (invariant 2): whenever a replica's status says every proxy
// of every replica holds its generation, every connected proxy of every
// live replica that holds a route of the service holds that generation or
// a later one. (A proxy still waiting for its first route serves no split
// yet; it is sent the replica's current route.) In scope are the replicas
// Consul knows: reachable, with a report under a live session. One cut
// off long enough for its session to lapse cannot be told from a dead one
// until it reports again (README: a limit of invariant 2).
func (w *World) checkAcks(r *Replica, svc string, st ackStatus) {
	if st.acks == nil || !st.acks.Complete || st.acks.Subscribed == 0 {
		return
	}
	g := st.acks.Generation
	for _, o := range w.replicas {
		rep, known := w.consul.reports[acks.Key(ackPrefix, svc, o.id)]
		if !o.alive || !w.consul.reachable(o) || !known || rep.inc != o.inc {
			continue
		}
		for _, p := range o.proxies {
			if !p.connected {
				continue
			}
			if h := o.gen(svc, p.held[svc]); p.held[svc] > 0 && h < g {
				w.violate("%s reports %s generation %d ACKed by every proxy (%d/%d), but %s on %s holds generation %d", r.id, svc, g, st.acks.Acked, st.acks.Subscribed, p.node, o.id, h)
				return
			}
		}
	}
}

type ackStatus struct{ acks *acks.Result }
