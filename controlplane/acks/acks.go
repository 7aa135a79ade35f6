// Package acks tells the leader which traffic generation every proxy of
// every replica holds, so nothing is reported done before all of them ACKed.
//
// Each replica serves xDS to its own proxies and only knows their ACKs. A
// Publisher on every replica writes, per service, what its proxies hold; the
// leader's Aggregator reads every replica's reports (its own straight from
// its xDS server) and answers Wait and Status for one generation.
//
// # Consul KV layout
//
//	<kvprefix>acks/<service>/<replica-id>   one Report (JSON), per service and replica
//
// e.g. bg/acks/web/node-a-3f9c1e. Each key is acquired by its replica's own
// session (name "bg-acks/<replica-id>", TTL 10s renewed every ~3s, behavior
// "delete"): when a replica dies or loses Consul for longer than its TTL
// (Consul reaps a session within 2×TTL), its reports vanish and the leader
// stops waiting for its proxies; a replica that stops cleanly destroys its
// session and its reports vanish at once. A key without a session is left
// over and ignored. A replica writes a report only when it changes, at most
// once per debounce interval (25 ms by default); the reports that changed
// together are written in Consul transactions of up to 64 keys.
//
// The leader's concurrent waits share one blocking query on the whole
// <kvprefix>acks/ tree, so a release waiting on many services holds one
// Consul connection for them, not one each.
//
// A Report says which generation the replica's route serves (Generation),
// how many of its proxies subscribe to the route, how many hold Generation,
// and lists the others (up to a cap) with the generation each holds and its
// last rejection of the route (node id, message, rejected generation).
//
// For generation G, a replica is complete when every subscribed proxy holds
// G or later. A replica with no subscribed proxies is complete. A replica
// whose report shows a generation older than G has not adopted G yet: all
// its subscribed proxies are pending until it reports G. A wait ends when
// every replica is complete, or every proxy still pending rejected a route
// carrying G or later (it will not take G without a new push), or its
// context ends.
//
// Limits: a replica that is alive but has no report (not yet published, or
// its session lost while partitioned from Consul) is not waited for; its
// proxies keep the config they have. Unlisted pending proxies (beyond the
// cap) are counted, never assumed to hold G.
package acks

import (
	"fmt"
	"sort"
	"strings"
	"time"

	"github.com/hashicorp/consul/api"

	"github.com/bgctl/bg/controlplane/xds"
)

// Defaults.
const (
	DefaultSessionTTL = 10 * time.Second
	DefaultDebounce   = 25 * time.Millisecond
	// DefaultMaxListed caps the lagging proxies one report lists; Consul
	// values are limited to 512 KB.
	DefaultMaxListed = 100
)

// KV is the part of Consul's KV API this package uses; *api.KV has it.
type KV interface {
	Acquire(p *api.KVPair, q *api.WriteOptions) (bool, *api.WriteMeta, error)
	List(prefix string, q *api.QueryOptions) (api.KVPairs, *api.QueryMeta, error)
}

// Txn is the part of Consul's transaction API the Publisher uses;
// *api.Txn (client.Txn()) has it.
type Txn interface {
	Txn(txn api.TxnOps, q *api.QueryOptions) (bool, *api.TxnResponse, *api.QueryMeta, error)
}

// Sessions is the part of Consul's session API the Publisher uses;
// *api.Session has it.
type Sessions interface {
	Create(se *api.SessionEntry, q *api.WriteOptions) (string, *api.WriteMeta, error)
	Renew(id string, q *api.WriteOptions) (*api.SessionEntry, *api.WriteMeta, error)
	Destroy(id string, q *api.WriteOptions) (*api.WriteMeta, error)
}

// Source is a replica's own xDS server; *xds.Server is one.
type Source interface {
	// RouteAcks reports the proxies subscribed to a route against a
	// generation (0: the one the route serves).
	RouteAcks(route string, gen uint64) xds.AckReport
	// WatchAcks signals (coalesced) whenever RouteAcks may have changed.
	WatchAcks() (changed <-chan struct{}, stop func())
}

// Dir is the KV folder of one service's reports, ending in "/".
func Dir(prefix, service string) string { return prefix + "acks/" + service + "/" }

// Key is where a replica publishes its report for a service.
func Key(prefix, service, replica string) string { return Dir(prefix, service) + replica }

// Report is what one replica publishes for one service: the value at Key.
type Report struct {
	Replica string `json:"replica"`
	Service string `json:"service"`
	// Generation is the traffic generation the replica's route serves.
	Generation uint64 `json:"generation"`
	// Subscribed proxies of this replica use the service's route; Acked of
	// them hold Generation (or later).
	Subscribed int `json:"subscribed"`
	Acked      int `json:"acked"`
	// Lagging lists the other subscribed proxies: node id, the generation
	// each holds (held_generation) and its last rejection of the route
	// (last_nack, with the generation the rejected route carried).
	Lagging []xds.ProxyInfo `json:"lagging,omitempty"`
	// Unlisted lagging proxies beyond the listing cap.
	Unlisted int `json:"unlisted,omitempty"`
	// NoSessions lists subscribed proxies whose client may not keep a
	// rolling service's sessions (xds.ClientSessions), up to the cap;
	// NoSessionsUnlisted counts the rest.
	NoSessions         []xds.ProxyInfo `json:"no_sessions,omitempty"`
	NoSessionsUnlisted int             `json:"no_sessions_unlisted,omitempty"`
	// At is when the report was written.
	At time.Time `json:"at"`
}

// NewReport turns a local report (asked with gen 0: against the generation
// the route serves) into what a replica publishes. maxListed ≤ 0 uses
// DefaultMaxListed.
func NewReport(replica, service string, r xds.AckReport, maxListed int) Report {
	if maxListed <= 0 {
		maxListed = DefaultMaxListed
	}
	rep := Report{Replica: replica, Service: service, Generation: r.Generation, Subscribed: r.Subscribed, Acked: r.Acked}
	for i, p := range r.Pending {
		if i >= maxListed {
			rep.Unlisted = len(r.Pending) - maxListed
			break
		}
		p.Routes = nil // the route is the report's; other routes are noise here
		rep.Lagging = append(rep.Lagging, p)
	}
	rep.NoSessions, rep.NoSessionsUnlisted = capped(r.NoSessions, maxListed)
	return rep
}

// withNoSessions adds to a rolling service's report the proxies whose
// client may not keep sessions through a roll, when src can tell
// (xds.Server.RouteNoSessions). Other services' reports go without: the
// list costs a ProxyInfo per proxy, and only a roll needs it.
func withNoSessions(src Source, rolling func(string) bool, service string, r xds.AckReport) xds.AckReport {
	if rolling == nil || !rolling(service) {
		return r
	}
	if ns, ok := src.(interface {
		RouteNoSessions(string) []xds.ProxyInfo
	}); ok {
		r.NoSessions = ns.RouteNoSessions(service)
	}
	return r
}

// capped keeps the first max proxies (without their other routes) and
// counts the rest.
func capped(ps []xds.ProxyInfo, max int) ([]xds.ProxyInfo, int) {
	var out []xds.ProxyInfo
	for i, p := range ps {
		if i >= max {
			return out, len(ps) - max
		}
		p.Routes = nil
		out = append(out, p)
	}
	return out, 0
}

// ReplicaAcks is how one replica's proxies stand against a generation.
type ReplicaAcks struct {
	Replica string `json:"replica"`
	// Local: read straight from this (the answering) replica's xDS server.
	Local bool `json:"local,omitempty"`
	// Generation is the generation the replica's route serves.
	Generation uint64 `json:"generation"`
	Subscribed int    `json:"subscribed"`
	Acked      int    `json:"acked"`
	// Pending proxies do not hold the asked generation: held_generation
	// says what they hold, last_nack why they refused (if they did).
	Pending  []xds.ProxyInfo `json:"pending,omitempty"`
	Unlisted int             `json:"unlisted,omitempty"`
	Complete bool            `json:"complete"`
	// NoSessions: the replica's subscribed proxies whose client may not
	// keep a rolling service's sessions; NoSessionsUnlisted beyond the cap.
	NoSessions         []xds.ProxyInfo `json:"no_sessions,omitempty"`
	NoSessionsUnlisted int             `json:"no_sessions_unlisted,omitempty"`
	// Behind: the replica serves an older generation. It is not complete
	// even with no proxies: one connecting now would get the old split.
	Behind bool `json:"behind,omitempty"`
	// Note explains a replica that is not there yet, e.g. one still
	// serving an older generation.
	Note string `json:"note,omitempty"`
	// Error: the replica's report could not be read; it counts as not complete.
	Error      string    `json:"error,omitempty"`
	ReportedAt time.Time `json:"reported_at,omitzero"`

	settled bool // complete, or every pending proxy rejected the generation
}

// Result says whether every proxy of every live replica holds a
// generation. Acked and Pending mirror xds.AckResult; see AckResult.
type Result struct {
	Service    string `json:"service"`
	Generation uint64 `json:"generation"`
	// Complete: every subscribed proxy of every replica holds Generation,
	// and every replica's report could be read.
	Complete   bool `json:"complete"`
	Subscribed int  `json:"subscribed"`
	Acked      int  `json:"acked"`
	// Pending lists every replica's pending proxies (replica set).
	Pending  []xds.ProxyInfo `json:"pending,omitempty"`
	Unlisted int             `json:"unlisted,omitempty"`
	// NoSessions lists every replica's subscribed proxies whose client may
	// not keep a rolling service's sessions (replica set), see
	// xds.ClientSessions; NoSessionsUnlisted counts those beyond the caps.
	NoSessions         []xds.ProxyInfo `json:"no_sessions,omitempty"`
	NoSessionsUnlisted int             `json:"no_sessions_unlisted,omitempty"`
	// Unconfirmed says why completeness is unknown, e.g. Consul was
	// unreachable so other replicas' reports could not be read.
	Unconfirmed string        `json:"unconfirmed,omitempty"`
	Replicas    []ReplicaAcks `json:"replicas"`
}

// AckResult converts for callers that used xds.AckResult: Complete() of
// the conversion equals r.Complete.
func (r Result) AckResult() xds.AckResult {
	res := xds.AckResult{Acked: r.Acked, Pending: r.Pending, Unlisted: r.Unlisted, Unconfirmed: r.Unconfirmed}
	if !r.Complete && res.Complete() {
		res.Unconfirmed = "not every replica's proxies are confirmed"
	}
	return res
}

// PendingCount counts pending proxies, listed or not.
func (r Result) PendingCount() int { return len(r.Pending) + r.Unlisted }

// Summary is one line, e.g. "2/3 proxies on 2 replicas hold generation 7;
// pending: r2/node-x (rejected: ...)".
func (r Result) Summary() string {
	b := &strings.Builder{}
	fmt.Fprintf(b, "%d/%d proxies on %d replicas hold generation %d", r.Acked, r.Subscribed, len(r.Replicas), r.Generation)
	for _, ra := range r.Replicas {
		if ra.Note != "" {
			fmt.Fprintf(b, "; %s %s", ra.Replica, ra.Note)
		}
	}
	if len(r.Pending) > 0 {
		b.WriteString("; pending:")
		for _, p := range r.Pending {
			fmt.Fprintf(b, " %s/%s", p.Replica, p.NodeID)
			if p.LastNACK != nil {
				fmt.Fprintf(b, " (rejected: %s)", p.LastNACK.Message)
			}
		}
	}
	if r.Unlisted > 0 {
		fmt.Fprintf(b, "; %d more pending", r.Unlisted)
	}
	if r.Unconfirmed != "" {
		fmt.Fprintf(b, "; unconfirmed: %s", r.Unconfirmed)
	}
	return b.String()
}

// rejected: the proxy refused a route carrying gen or later.
func rejected(p xds.ProxyInfo, gen uint64) bool {
	return p.LastNACK != nil && p.LastNACK.Generation >= gen
}

func (ra *ReplicaAcks) finish(gen uint64) {
	for i := range ra.Pending {
		ra.Pending[i].Replica = ra.Replica
	}
	for i := range ra.NoSessions {
		ra.NoSessions[i].Replica = ra.Replica
	}
	ra.Behind = ra.Generation < gen
	ra.Complete = len(ra.Pending) == 0 && ra.Unlisted == 0 && ra.Error == "" && !ra.Behind
	ra.settled = ra.Complete
	if !ra.Complete && ra.Unlisted == 0 && ra.Error == "" && !ra.Behind {
		ra.settled = true
		for _, p := range ra.Pending {
			ra.settled = ra.settled && rejected(p, gen)
		}
	}
}

// localAcks evaluates this replica's own xDS server for gen.
func localAcks(replica string, r xds.AckReport) ReplicaAcks {
	ra := ReplicaAcks{Replica: replica, Local: true, Generation: r.Generation, Subscribed: r.Subscribed, Acked: r.Acked,
		Pending: append([]xds.ProxyInfo(nil), r.Pending...)}
	ra.NoSessions, ra.NoSessionsUnlisted = capped(r.NoSessions, DefaultMaxListed)
	if r.Generation < r.Want {
		ra.Note = fmt.Sprintf("serves generation %d, not %d yet", r.Generation, r.Want)
	}
	ra.finish(r.Want)
	return ra
}

// For evaluates a published report for generation gen.
func (r Report) For(gen uint64) ReplicaAcks {
	ra := ReplicaAcks{Replica: r.Replica, Generation: r.Generation, Subscribed: r.Subscribed, ReportedAt: r.At,
		NoSessions: append([]xds.ProxyInfo(nil), r.NoSessions...), NoSessionsUnlisted: r.NoSessionsUnlisted}
	if r.Generation < gen {
		// Not adopted yet: every subscribed proxy holds at most r.Generation.
		ra.Pending = append([]xds.ProxyInfo(nil), r.Lagging...)
		ra.Unlisted = max(r.Subscribed-len(r.Lagging), 0)
		ra.Note = fmt.Sprintf("serves generation %d, not %d yet", r.Generation, gen)
	} else {
		ra.Acked, ra.Unlisted = r.Acked, r.Unlisted
		for _, p := range r.Lagging {
			if p.Generation >= gen {
				ra.Acked++
			} else {
				ra.Pending = append(ra.Pending, p)
			}
		}
	}
	ra.finish(gen)
	return ra
}

// combine builds a Result from per-replica answers. unconfirmed is set when
// the remote reports were not read.
func combine(service string, gen uint64, replicas []ReplicaAcks, unconfirmed string) (Result, bool) {
	sort.Slice(replicas, func(i, j int) bool { return replicas[i].Replica < replicas[j].Replica })
	res := Result{Service: service, Generation: gen, Replicas: replicas, Unconfirmed: unconfirmed}
	settled := unconfirmed == ""
	for _, ra := range replicas {
		res.Subscribed += ra.Subscribed
		res.Acked += ra.Acked
		res.Pending = append(res.Pending, ra.Pending...)
		res.Unlisted += ra.Unlisted
		res.NoSessions = append(res.NoSessions, ra.NoSessions...)
		res.NoSessionsUnlisted += ra.NoSessionsUnlisted
		settled = settled && ra.settled
		if ra.Behind && res.Unconfirmed == "" {
			res.Unconfirmed = "replica " + ra.Replica + " " + ra.Note
		}
		if ra.Error != "" && res.Unconfirmed == "" {
			res.Unconfirmed = "report of replica " + ra.Replica + ": " + ra.Error
		}
	}
	if res.Replicas == nil {
		res.Replicas = []ReplicaAcks{}
	}
	res.Complete = res.Unconfirmed == "" && len(res.Pending) == 0 && res.Unlisted == 0
	return res, settled
}
