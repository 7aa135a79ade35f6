package membership

import (
	"cmp"
	"slices"
	"time"

	"github.com/bgctl/bg/controlplane/model"
)

// Reasons a fleet is held, as Held.Reason.
const (
	// ReasonShrink: a read had fewer than half the endpoints of the fleet
	// served before it; the last known endpoints are kept for the grace.
	ReasonShrink = "more than half of the fleet left in one read"
	// ReasonCarrying: the grace has passed but the read is still empty and
	// the colour carries traffic; the last known endpoints are kept until a
	// read finds some or the colour stops carrying traffic.
	ReasonCarrying = "read is empty and the colour carries traffic"
)

// Guard decides which endpoints of one colour to serve given each read, so
// that one bad read (a partial or empty answer, a mass health-check flap)
// never empties the fleet that carries traffic. It is pure: it keeps no
// state, starts nothing and reads no clock; the caller keeps what Apply
// returns and passes it back with the next read.
//
// The rules, comparing each read with the base (the fleet served before any
// hold in force started, else the fleet served now), by number of endpoints:
//
//   - A read with at least half as many endpoints as the base applies at
//     once and ends any hold: growth, an equal-sized replacement (every ID
//     new), and a loss of exactly half or less. Scale-downs of up to half
//     therefore apply immediately, and a read that would not have started a
//     hold ends one (so "recovered" means at least half of the base's count
//     is back, the same threshold that starts a hold).
//   - A read with fewer than half (more than half lost, including an empty
//     read) starts a hold of Grace, timed from that read. Further bad reads
//     are compared with the same base and neither restart nor extend it.
//   - When the grace has passed and the read is still bad, the read
//     applies, and the hold ends: a deliberate scale-down or deregistration
//     takes effect Grace after it was first seen. The one exception: a read
//     that is empty never replaces the fleet of a colour that carries
//     traffic. The base stays served, held with ReasonCarrying and no
//     deadline, until a read finds endpoints (which then apply, however few)
//     or Apply is called with carrying false (the fleet then empties at
//     once, its grace being long over).
//
// While a hold is in force the fleet served is the base merged with the
// read: every endpoint of the read is served as read (it is passing now, so
// adding it or updating its weight, address or version is safe), and every
// base endpoint the read lacks is kept, unless the read has another
// endpoint in its slot (Endpoint.SlotKey): a replacement takes its slot's
// place rather than sharing the slot's ring-hash key with the host it
// replaces. Counts compare the read with the base, never with the merged
// fleet, so additions during a hold do not move the threshold.
//
// Grace <= 0 disables holding: every read applies at once, except that an
// empty read still never replaces a carrying colour's fleet.
type Guard struct {
	Grace time.Duration
}

// Held describes a hold in force on one colour; Apply returns nil when the
// colour is not held. Held values are never modified once returned.
type Held struct {
	// Since is the time of the read that started the hold.
	Since time.Time `json:"since"`
	// Until is when the grace ends (Since + Grace), zero for a hold with no
	// deadline (ReasonCarrying).
	Until time.Time `json:"until,omitzero"`
	// Served is how many endpoints are served now (base merged with the
	// read); Read is how many the last read had.
	Served int `json:"served"`
	Read   int `json:"read"`
	// Reason is ReasonShrink or ReasonCarrying.
	Reason string `json:"reason"`
	// Base is the fleet served before the hold started: what reads are
	// compared with and what is kept.
	Base model.Fleet `json:"-"`
}

// Apply returns the fleet of one colour to serve now, the hold in force
// after this read (nil if none) and when to call Apply again with the same
// read if no new one comes (zero if no deadline). served and hold are what
// the previous call returned (the zero Fleet and nil before the first read);
// while hold is non-nil, served is not consulted, as the hold carries its
// base. read is the latest successful read; carrying says whether the
// colour carries traffic now (see Carries). Call Apply on every read, at
// recheckAt, and whenever carrying changes. Apply does not modify its
// arguments; the fleet it returns may share read's or the base's slice.
func (g Guard) Apply(served model.Fleet, hold *Held, read model.Fleet, carrying bool, now time.Time) (serve model.Fleet, next *Held, recheckAt time.Time) {
	base, since := served, now
	if hold != nil {
		base, since = hold.Base, hold.Since
	}
	if !lostMoreThanHalf(base, read) {
		return read, nil, time.Time{}
	}
	// Recomputed from Since, so the hold always reflects the current Grace.
	until := since.Add(max(g.Grace, 0))
	if now.Before(until) {
		serve = merge(base, read)
		return serve, &Held{
			Since: since, Until: until, Served: len(serve.Endpoints), Read: len(read.Endpoints),
			Reason: ReasonShrink, Base: base,
		}, until
	}
	if carrying && len(read.Endpoints) == 0 {
		return base, &Held{
			Since: since, Served: len(base.Endpoints), Read: 0, Reason: ReasonCarrying, Base: base,
		}, time.Time{}
	}
	return read, nil, time.Time{}
}

// lostMoreThanHalf reports whether read has fewer than half the endpoints
// of base: 4 -> 2 is not, 4 -> 1 and 3 -> 1 are, 0 -> 0 is not.
func lostMoreThanHalf(base, read model.Fleet) bool {
	return 2*len(read.Endpoints) < len(base.Endpoints)
}

// merge is read plus every base endpoint whose ID and slot key the read
// does not have, sorted by ID like every Fleet.
func merge(base, read model.Fleet) model.Fleet {
	ids := make(map[string]bool, len(read.Endpoints))
	slots := make(map[string]bool, len(read.Endpoints))
	for _, e := range read.Endpoints {
		ids[e.ID], slots[e.SlotKey()] = true, true
	}
	out := make([]model.Endpoint, 0, len(base.Endpoints)+len(read.Endpoints))
	out = append(out, read.Endpoints...)
	for _, e := range base.Endpoints {
		if !ids[e.ID] && !slots[e.SlotKey()] {
			out = append(out, e)
		}
	}
	slices.SortStableFunc(out, func(a, b model.Endpoint) int { return cmp.Compare(a.ID, b.ID) })
	return model.Fleet{Endpoints: out}
}

// Carries reports whether colour c carries traffic under t, the colours
// whose fleet an empty read must never replace: c has a share of the split,
// or it is t.Candidate() (the colour canary pools and mirrored requests go
// to), or it is the target of a running roll (whose replacement hosts serve
// inside the other colour's cluster). A candidate counts even if the service
// has no pools and mirrors nothing: erring towards carrying only keeps last
// known endpoints longer.
func Carries(t model.Traffic, c model.Color) bool {
	return t.Percent(c) > 0 || t.Candidate() == c || (t.RollRunning() && t.Roll.To == c)
}

// State is the guarded membership of one service: what to serve, the hold
// in force on each colour and the last read. The zero State is the state
// before the first read.
type State struct {
	// Served is the membership to serve (to translate, count and judge).
	Served model.Membership
	// Read is the last read, as the source reported it.
	Read model.Membership
	// Blue and Green are the holds in force, nil when not held.
	Blue, Green *Held
	// Known is the last non-empty fleet served of each colour: a colour
	// that starts carrying traffic while its read is empty (a follower's
	// stale read when the leader aborts back to it) serves these.
	Known model.Membership
}

// Hold returns the hold in force on colour c, or nil.
func (s State) Hold(c model.Color) *Held {
	if c == model.Green {
		return s.Green
	}
	return s.Blue
}

// ApplyMembership applies Apply to both colours of one service: prev is
// what the previous call returned (the zero State before the first read),
// read the latest successful read, carrying whether a colour carries
// traffic now (nil: both do, the safe choice; usually
// func(c) bool { return Carries(traffic, c) }). recheckAt is the earlier of
// the colours' deadlines, zero if neither has one; at that time, or when
// carrying changes, call again with prev.Read.
func (g Guard) ApplyMembership(prev State, read model.Membership, carrying func(model.Color) bool, now time.Time) (next State, recheckAt time.Time) {
	next.Read = read
	for _, c := range model.Colors {
		carries := carrying == nil || carrying(c)
		serve, hold, at := g.Apply(prev.Served.Fleet(c), prev.Hold(c), read.Fleet(c), carries, now)
		known := prev.Known.Fleet(c)
		if carries && len(serve.Endpoints) == 0 && len(known.Endpoints) > 0 {
			serve = known
			hold = &Held{Since: now, Served: len(known.Endpoints), Read: 0, Reason: ReasonCarrying, Base: known}
		}
		if len(serve.Endpoints) > 0 {
			known = serve
		}
		if c == model.Green {
			next.Served.Green, next.Green, next.Known.Green = serve, hold, known
		} else {
			next.Served.Blue, next.Blue, next.Known.Blue = serve, hold, known
		}
		if !at.IsZero() && (recheckAt.IsZero() || at.Before(recheckAt)) {
			recheckAt = at
		}
	}
	return next, recheckAt
}
