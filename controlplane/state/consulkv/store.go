// Package consulkv stores traffic state in Consul KV with check-and-set.
package consulkv

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"strings"
	"sync"

	"github.com/hashicorp/consul/api"

	"github.com/bgctl/bg/controlplane/model"
	"github.com/bgctl/bg/controlplane/state"
)

// Store keeps one JSON document per service at PREFIX services/NAME/traffic
// and its history at PREFIX history/NAME/GENERATION.
type Store struct {
	kv     *api.KV
	watch  *api.KV // the state watch's blocking queries; kv if nil
	txn    *api.Txn
	prefix string
	fence  func() (Fence, bool)

	healthMu sync.Mutex
	health   Reachability

	expectMu sync.Mutex
	expect   []string // services whose key should exist (Expect)
}

// Fence makes a write conditional on a Consul session still holding a
// lock key: a replica that lost leadership cannot overwrite its successor.
type Fence struct {
	Key     string // the leader lock key
	Session string // our session
	Term    uint64 // our term, recorded in history
	Replica string
}

// SetFence makes every later write check the fence; ok=false refuses writes.
func (s *Store) SetFence(f func() (Fence, bool)) { s.fence = f }

// HistoryKey is where one history entry lives; zero-padded so keys sort by generation.
func (s *Store) HistoryKey(service string, gen uint64) string {
	return fmt.Sprintf("%shistory/%s/%020d", s.prefix, service, gen)
}

// New returns a store under prefix (e.g. "bg/").
func New(c *api.Client, prefix string) *Store {
	return &Store{kv: c.KV(), txn: c.Txn(), prefix: prefix}
}

// WatchVia makes Watch's blocking queries use c (its own connection pool),
// so they never hold a connection that writes need.
func (s *Store) WatchVia(c *api.Client) { s.watch = c.KV() }

// Key is where a service's state lives.
func (s *Store) Key(service string) string { return s.prefix + "services/" + service + "/traffic" }

// Load reads consistently from the leader: a switch must start from the latest state.
func (s *Store) Load(ctx context.Context, service string) (model.Traffic, state.Index, bool, error) {
	pair, _, err := s.kv.Get(s.Key(service), (&api.QueryOptions{RequireConsistent: true}).WithContext(ctx))
	if err != nil {
		return model.Traffic{}, 0, false, fmt.Errorf("read %s from consul: %w", s.Key(service), err)
	}
	if pair == nil {
		return model.Traffic{}, 0, false, nil
	}
	t, err := Decode(pair.Value)
	if err != nil {
		return model.Traffic{}, 0, false, fmt.Errorf("consul key %s: %w", s.Key(service), err)
	}
	return t, state.Index(pair.ModifyIndex), true, nil
}

var _ state.Lister = (*Store)(nil)

// LoadAll reads every service's state and intent with one consistent,
// recursive read of the services folder.
func (s *Store) LoadAll(ctx context.Context) (state.Snapshot, error) {
	prefix := s.prefix + "services/"
	pairs, _, err := s.kv.List(prefix, (&api.QueryOptions{RequireConsistent: true}).WithContext(ctx))
	if err != nil {
		return state.Snapshot{}, fmt.Errorf("read %s from consul: %w", prefix, err)
	}
	snap := state.Snapshot{Traffic: map[string]state.Stored{}, Intents: map[string]model.Intent{}, Invalid: map[string]error{}}
	for _, p := range pairs {
		rest := strings.TrimPrefix(p.Key, prefix)
		if service, ok := strings.CutSuffix(rest, "/traffic"); ok {
			t, err := Decode(p.Value)
			if err != nil {
				snap.Invalid[service] = fmt.Errorf("consul key %s: %w", p.Key, err)
				continue
			}
			snap.Traffic[service] = state.Stored{Traffic: t, Index: state.Index(p.ModifyIndex)}
		} else if service, ok := strings.CutSuffix(rest, "/intent"); ok {
			if in, err := DecodeIntent(p.Value); err == nil {
				snap.Intents[service] = in
			}
		}
	}
	return snap, nil
}

// Save writes with check-and-set on prev, fenced by the leader lock when a
// fence is set, and appends the history entry in the same transaction.
func (s *Store) Save(ctx context.Context, service string, t model.Traffic, prev state.Index, entry model.HistoryEntry) (state.Index, error) {
	if err := t.Validate(); err != nil {
		return 0, fmt.Errorf("refusing to store invalid state: %w", err)
	}
	var ops api.TxnOps
	if s.fence != nil {
		f, ok := s.fence()
		if !ok {
			return 0, state.ErrNotLeader
		}
		ops = append(ops, &api.TxnOp{KV: &api.KVTxnOp{Verb: api.KVCheckSession, Key: f.Key, Session: f.Session}})
		t.Term, entry.Term, entry.Replica = f.Term, f.Term, f.Replica
	}
	body, err := json.Marshal(t)
	if err != nil {
		return 0, err
	}
	entry.Generation = t.Generation
	hist, err := json.Marshal(entry)
	if err != nil {
		return 0, err
	}
	// A standing rollback intent forbids storing the switch going forward
	// or ending forward; any other state carries it out (or outlives it)
	// and removes it.
	intentOp := &api.TxnOp{KV: &api.KVTxnOp{Verb: api.KVDelete, Key: s.IntentKey(service)}}
	if t.Forward() || t.EndsForward() {
		intentOp = &api.TxnOp{KV: &api.KVTxnOp{Verb: api.KVCheckNotExists, Key: s.IntentKey(service)}}
	}
	intentAt := len(ops)
	ops = append(ops, intentOp,
		&api.TxnOp{KV: &api.KVTxnOp{Verb: api.KVCAS, Key: s.Key(service), Value: body, Index: uint64(prev)}},
		&api.TxnOp{KV: &api.KVTxnOp{Verb: api.KVSet, Key: s.HistoryKey(service, t.Generation), Value: hist}},
	)
	ok, resp, _, err := s.txn.Txn(ops, (&api.QueryOptions{}).WithContext(ctx))
	if err != nil {
		return 0, fmt.Errorf("write %s to consul: %w", s.Key(service), err)
	}
	if !ok || resp == nil {
		if resp != nil && len(resp.Errors) > 0 {
			e := resp.Errors[0]
			if err := aclDenied(e); err != nil {
				return 0, err
			}
			if s.fence != nil && e.OpIndex == 0 {
				return 0, fmt.Errorf("%w: %s", state.ErrNotLeader, e.What)
			}
			if e.OpIndex == intentAt {
				return 0, fmt.Errorf("%w: %s", state.ErrIntent, e.What)
			}
			return 0, fmt.Errorf("%w: %s", state.ErrConflict, e.What)
		}
		return 0, state.ErrConflict
	}
	for _, r := range resp.Results {
		if r.KV != nil && r.KV.Key == s.Key(service) {
			return state.Index(r.KV.ModifyIndex), nil
		}
	}
	return 0, fmt.Errorf("write %s: consul did not return the new index", s.Key(service))
}

// IntentKey is where a service's rollback intent lives.
func (s *Store) IntentKey(service string) string { return s.prefix + "services/" + service + "/intent" }

var _ state.Intents = (*Store)(nil)

// SaveIntent writes a rollback intent. It is not fenced: a replica that
// lost the lock writes it so the leader carries its rollback out.
func (s *Store) SaveIntent(ctx context.Context, service string, in model.Intent) error {
	if err := in.Validate(); err != nil {
		return err
	}
	body, err := json.Marshal(in)
	if err != nil {
		return err
	}
	if _, err := s.kv.Put(&api.KVPair{Key: s.IntentKey(service), Value: body}, (&api.WriteOptions{}).WithContext(ctx)); err != nil {
		return fmt.Errorf("write %s to consul: %w", s.IntentKey(service), err)
	}
	return nil
}

// LoadIntent reads the standing intent, consistently.
func (s *Store) LoadIntent(ctx context.Context, service string) (model.Intent, bool, error) {
	pair, _, err := s.kv.Get(s.IntentKey(service), (&api.QueryOptions{RequireConsistent: true}).WithContext(ctx))
	if err != nil {
		return model.Intent{}, false, fmt.Errorf("read %s from consul: %w", s.IntentKey(service), err)
	}
	if pair == nil {
		return model.Intent{}, false, nil
	}
	in, err := DecodeIntent(pair.Value)
	return in, err == nil, err
}

// DeleteIntent removes a stale intent; fenced like a state write.
func (s *Store) DeleteIntent(ctx context.Context, service string) error {
	var ops api.TxnOps
	if s.fence != nil {
		f, ok := s.fence()
		if !ok {
			return state.ErrNotLeader
		}
		ops = append(ops, &api.TxnOp{KV: &api.KVTxnOp{Verb: api.KVCheckSession, Key: f.Key, Session: f.Session}})
	}
	ops = append(ops, &api.TxnOp{KV: &api.KVTxnOp{Verb: api.KVDelete, Key: s.IntentKey(service)}})
	ok, _, _, err := s.txn.Txn(ops, (&api.QueryOptions{}).WithContext(ctx))
	if err != nil {
		return fmt.Errorf("delete %s: %w", s.IntentKey(service), err)
	}
	if !ok {
		return state.ErrNotLeader
	}
	return nil
}

// DecodeIntent parses a stored intent strictly.
func DecodeIntent(b []byte) (model.Intent, error) {
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.DisallowUnknownFields()
	var in model.Intent
	if err := dec.Decode(&in); err != nil {
		return model.Intent{}, fmt.Errorf("invalid rollback intent: %w", err)
	}
	if err := in.Validate(); err != nil {
		return model.Intent{}, fmt.Errorf("invalid rollback intent: %w", err)
	}
	return in, nil
}

// Decode parses a stored document strictly; anything odd is an error, never a default.
func Decode(b []byte) (model.Traffic, error) {
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.DisallowUnknownFields()
	var t model.Traffic
	if err := dec.Decode(&t); err != nil {
		return model.Traffic{}, fmt.Errorf("invalid traffic state: %w", err)
	}
	if dec.More() {
		return model.Traffic{}, fmt.Errorf("invalid traffic state: trailing data")
	}
	if err := t.Validate(); err != nil {
		return model.Traffic{}, fmt.Errorf("invalid traffic state: %w", err)
	}
	return t, nil
}

// aclDenied is the error for a transaction op Consul's ACLs refused, nil
// for any other: a refusal is neither a lost lock, a standing intent nor
// a conflict, and says so with Consul's own words (which name the token's
// accessor, the permission and the key, never the secret).
func aclDenied(e *api.TxnError) error {
	if !strings.Contains(e.What, "Permission denied") && !strings.Contains(e.What, "ACL not found") {
		return nil
	}
	return fmt.Errorf("consul ACL refused the write (the token needs key_prefix write on the KV prefix): %s", e.What)
}
