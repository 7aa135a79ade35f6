package sim

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"

	"github.com/bgctl/bg/controlplane/model"
	"github.com/bgctl/bg/controlplane/state"
	"github.com/bgctl/bg/controlplane/state/consulkv"
)

var errUnreachable = errors.New("sim: consul unreachable")

// stored is one KV key.
type stored struct {
	body []byte
	idx  uint64
}

// write is one successful state write, for the invariants.
type write struct {
	service string
	term    uint64
	replica string
	gen     uint64
}

// Consul is the simulated agent and servers: KV with check-and-set and
// fenced transactions, history, the leader lock.
type Consul struct {
	w       *World
	index   uint64
	states  map[string]stored
	intents map[string]stored // rollback intents by service
	desired map[string]stored // desired versions by service (Options.Converge)
	reports map[string]report // ACK reports by key
	history map[string][]model.HistoryEntry
	down    bool // the whole cluster is unreachable
	// lock
	holder    string // replica holding the leader lock ("" = free)
	holderInc int    // its incarnation (the session belongs to one process)
	term      uint64
	writes    []write
}

func newConsul(w *World) *Consul {
	return &Consul{w: w, states: map[string]stored{}, intents: map[string]stored{}, desired: map[string]stored{}, reports: map[string]report{}, history: map[string][]model.HistoryEntry{}}
}

// reachable: replica r can talk to Consul now.
func (c *Consul) reachable(r *Replica) bool { return !c.down && !r.partitioned && r.alive }

// store is one replica's view of the KV store (state.Store and history).
type store struct {
	c *Consul
	r *Replica
}

func (s store) Load(_ context.Context, service string) (model.Traffic, state.Index, bool, error) {
	if !s.c.reachable(s.r) {
		return model.Traffic{}, 0, false, errUnreachable
	}
	st, ok := s.c.states[service]
	if !ok {
		return model.Traffic{}, 0, false, nil
	}
	t, err := consulkv.Decode(st.body)
	if err != nil {
		return model.Traffic{}, 0, false, err
	}
	return t, state.Index(st.idx), true, nil
}

// LoadAll implements state.Lister: one read of every state and intent, as
// the real store does, so the simulation loads the way production does.
func (s store) LoadAll(_ context.Context) (state.Snapshot, error) {
	if !s.c.reachable(s.r) {
		return state.Snapshot{}, errUnreachable
	}
	snap := state.Snapshot{Traffic: map[string]state.Stored{}, Intents: map[string]model.Intent{}, Invalid: map[string]error{}}
	for service, st := range s.c.states {
		t, err := consulkv.Decode(st.body)
		if err != nil {
			snap.Invalid[service] = err
			continue
		}
		snap.Traffic[service] = state.Stored{Traffic: t, Index: state.Index(st.idx)}
	}
	for service, st := range s.c.intents {
		if in, err := consulkv.DecodeIntent(st.body); err == nil {
			snap.Intents[service] = in
		}
	}
	return snap, nil
}

func (s store) Save(_ context.Context, service string, t model.Traffic, prev state.Index, e model.HistoryEntry) (state.Index, error) {
	c := s.c
	if err := t.Validate(); err != nil {
		return 0, fmt.Errorf("refusing to store invalid state: %w", err)
	}
	if !c.reachable(s.r) {
		return 0, errUnreachable
	}
	if c.holder != s.r.id || c.holderInc != s.r.inc || c.term != s.r.term {
		return 0, state.ErrNotLeader
	}
	cur, ok := c.states[service]
	if (prev == 0 && ok) || (prev != 0 && (!ok || cur.idx != uint64(prev))) {
		return 0, state.ErrConflict
	}
	// Like consulkv: a standing intent forbids a state going or ending
	// forward; any other state removes it in the same transaction.
	if _, standing := c.intents[service]; standing {
		if t.Forward() || t.EndsForward() {
			return 0, state.ErrIntent
		}
		delete(c.intents, service)
	}
	t.Term, e.Term, e.Replica, e.Generation = c.term, c.term, s.r.id, t.Generation
	body, err := json.Marshal(t)
	if err != nil {
		c.w.s.trace("%s cannot encode %s: %v", s.r.id, service, err)
		return 0, err
	}
	c.index++
	c.states[service] = stored{body: body, idx: c.index}
	c.history[service] = append(c.history[service], e)
	c.writes = append(c.writes, write{service: service, term: c.term, replica: s.r.id, gen: t.Generation})
	c.w.onWrite(service, t)
	c.w.notifyWatchers()
	return state.Index(c.index), nil
}

func (s store) History(_ context.Context, service string, limit int) ([]model.HistoryEntry, error) {
	if !s.c.reachable(s.r) {
		return nil, errUnreachable
	}
	h := s.c.history[service]
	if limit > 0 && len(h) > limit {
		h = h[len(h)-limit:]
	}
	return append([]model.HistoryEntry(nil), h...), nil
}

func (s store) PruneHistory(context.Context, string, int) (int, error) { return 0, nil }

var _ state.Intents = store{}

func (s store) SaveIntent(_ context.Context, service string, in model.Intent) error {
	if !s.c.reachable(s.r) {
		return errUnreachable
	}
	body, err := json.Marshal(in)
	if err != nil {
		return err
	}
	s.c.index++
	s.c.intents[service] = stored{body: body, idx: s.c.index}
	s.c.w.onIntent(service, in)
	s.c.w.notifyWatchers()
	return nil
}

func (s store) LoadIntent(_ context.Context, service string) (model.Intent, bool, error) {
	if !s.c.reachable(s.r) {
		return model.Intent{}, false, errUnreachable
	}
	st, ok := s.c.intents[service]
	if !ok {
		return model.Intent{}, false, nil
	}
	in, err := consulkv.DecodeIntent(st.body)
	return in, err == nil, err
}

func (s store) DeleteIntent(_ context.Context, service string) error {
	if !s.c.reachable(s.r) {
		return errUnreachable
	}
	if s.c.holder != s.r.id || s.c.holderInc != s.r.inc || s.c.term != s.r.term {
		return state.ErrNotLeader
	}
	if _, ok := s.c.intents[service]; ok {
		delete(s.c.intents, service)
		s.c.index++
		s.c.w.notifyWatchers()
	}
	return nil
}

// deleteKey removes a service's state key (a wiped KV, a restored snapshot).
func (c *Consul) deleteKey(service string) {
	if _, ok := c.states[service]; !ok {
		return
	}
	delete(c.states, service)
	c.index++
	c.w.notifyWatchers()
}

var _ state.Creator = store{}

// CreateAbsent implements state.Creator as consulkv does: fenced batches of
// 21 states, each all or nothing; a batch where a state exists is left out.
func (s store) CreateAbsent(ctx context.Context, states []state.Absent) (map[string]state.Stored, error) {
	c := s.c
	created := map[string]state.Stored{}
	if !c.reachable(s.r) {
		return created, errUnreachable
	}
	if c.holder != s.r.id || c.holderInc != s.r.inc || c.term != s.r.term {
		return created, state.ErrNotLeader
	}
	const per = 21
	for start := 0; start < len(states); start += per {
		batch := states[start:min(start+per, len(states))]
		clash := false
		for _, a := range batch {
			if _, ok := c.states[a.Service]; ok {
				clash = true
			}
		}
		if clash {
			continue
		}
		for _, a := range batch {
			idx, err := s.Save(ctx, a.Service, a.Traffic, 0, a.Entry)
			if err != nil {
				return created, err // cannot happen: checked above, atomically
			}
			t := a.Traffic
			t.Term = c.term
			created[a.Service] = state.Stored{Traffic: t, Index: idx}
		}
	}
	return created, nil
}

// HistoryOwners implements state.Creator.
func (s store) HistoryOwners(context.Context) (map[string]bool, error) {
	if !s.c.reachable(s.r) {
		return nil, errUnreachable
	}
	owners := map[string]bool{}
	for service, h := range s.c.history {
		if len(h) > 0 {
			owners[service] = true
		}
	}
	return owners, nil
}
