package consulkv

import (
	"context"
	"encoding/json"
	"fmt"
	"strings"

	"github.com/hashicorp/consul/api"

	"github.com/bgctl/bg/controlplane/state"
)

var _ state.Creator = (*Store)(nil)

// CreateAbsent writes absent states in transactions of up to 64 operations:
// the fence check once, then per service the intent removal, the state
// key's check-and-set at index 0 and its first history entry, as Save
// would write them. A batch that fails on a check-and-set (a state
// appeared) is left out whole; its services are created one by one by the
// caller.
func (s *Store) CreateAbsent(ctx context.Context, states []state.Absent) (map[string]state.Stored, error) {
	created := make(map[string]state.Stored, len(states))
	var fenceOp *api.TxnOp
	var fence Fence
	if s.fence != nil {
		f, ok := s.fence()
		if !ok {
			return created, state.ErrNotLeader
		}
		fence = f
		fenceOp = &api.TxnOp{KV: &api.KVTxnOp{Verb: api.KVCheckSession, Key: f.Key, Session: f.Session}}
	}
	per := maxTxnOps / 3
	if fenceOp != nil {
		per = (maxTxnOps - 1) / 3
	}
	for start := 0; start < len(states); start += per {
		batch := states[start:min(start+per, len(states))]
		var ops api.TxnOps
		if fenceOp != nil {
			ops = append(ops, fenceOp)
		}
		stored := make(map[string]state.Stored, len(batch))
		for _, a := range batch {
			t, e := a.Traffic, a.Entry
			if err := t.Validate(); err != nil {
				return created, fmt.Errorf("refusing to store invalid state for %s: %w", a.Service, err)
			}
			if t.Forward() || t.EndsForward() {
				return created, fmt.Errorf("refusing to create %s running a switch: a created state is stable", a.Service)
			}
			if fenceOp != nil {
				t.Term, e.Term, e.Replica = fence.Term, fence.Term, fence.Replica
			}
			e.Generation = t.Generation
			body, err := json.Marshal(t)
			if err != nil {
				return created, err
			}
			hist, err := json.Marshal(e)
			if err != nil {
				return created, err
			}
			ops = append(ops,
				&api.TxnOp{KV: &api.KVTxnOp{Verb: api.KVDelete, Key: s.IntentKey(a.Service)}},
				&api.TxnOp{KV: &api.KVTxnOp{Verb: api.KVCAS, Key: s.Key(a.Service), Value: body, Index: 0}},
				&api.TxnOp{KV: &api.KVTxnOp{Verb: api.KVSet, Key: s.HistoryKey(a.Service, t.Generation), Value: hist}},
			)
			stored[s.Key(a.Service)] = state.Stored{Traffic: t}
		}
		ok, resp, _, err := s.txn.Txn(ops, (&api.QueryOptions{}).WithContext(ctx))
		if err != nil {
			return created, fmt.Errorf("create %d states in consul: %w", len(batch), err)
		}
		if !ok || resp == nil {
			if resp != nil && len(resp.Errors) > 0 && fenceOp != nil && resp.Errors[0].OpIndex == 0 {
				return created, fmt.Errorf("%w: %s", state.ErrNotLeader, resp.Errors[0].What)
			}
			continue // a state appeared: the caller creates these one by one
		}
		for _, r := range resp.Results {
			if r.KV == nil {
				continue
			}
			if st, ok := stored[r.KV.Key]; ok {
				st.Index = state.Index(r.KV.ModifyIndex)
				service := strings.TrimSuffix(strings.TrimPrefix(r.KV.Key, s.prefix+"services/"), "/traffic")
				created[service] = st
			}
		}
	}
	return created, nil
}

// HistoryOwners lists the history folders, keys only, in one consistent read.
func (s *Store) HistoryOwners(ctx context.Context) (map[string]bool, error) {
	prefix := s.prefix + "history/"
	keys, _, err := s.kv.Keys(prefix, "/", (&api.QueryOptions{RequireConsistent: true}).WithContext(ctx))
	if err != nil {
		return nil, fmt.Errorf("read %s keys from consul: %w", prefix, err)
	}
	owners := make(map[string]bool, len(keys))
	for _, k := range keys {
		if name, ok := strings.CutSuffix(strings.TrimPrefix(k, prefix), "/"); ok && name != "" {
			owners[name] = true
		}
	}
	return owners, nil
}
