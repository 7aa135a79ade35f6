package consulkv

import (
	"bytes"
	"cmp"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strconv"
	"strings"

	"github.com/hashicorp/consul/api"

	"github.com/bgctl/bg/controlplane/model"
	"github.com/bgctl/bg/controlplane/state"
)

// maxTxnOps is Consul's limit on operations in one transaction.
const maxTxnOps = 64

// historyPrefix is the folder of one service's history. The trailing slash
// keeps "web" from also matching "web-2".
func (s *Store) historyPrefix(service string) string {
	return s.prefix + "history/" + service + "/"
}

// History returns the newest limit entries of a service's history, oldest
// first (limit <= 0: all of them). It reads consistently, so an entry
// written just before is always there. An entry that does not decode is an
// error naming its key: a gap in an audit trail must be visible.
//
// The whole folder is read whatever the limit; it holds at most
// history.retention entries once PruneHistory runs.
func (s *Store) History(ctx context.Context, service string, limit int) ([]model.HistoryEntry, error) {
	prefix := s.historyPrefix(service)
	pairs, _, err := s.kv.List(prefix, (&api.QueryOptions{RequireConsistent: true}).WithContext(ctx))
	if err != nil {
		return nil, fmt.Errorf("read %s from consul: %w", prefix, err)
	}
	type keyed struct {
		gen  uint64
		pair *api.KVPair
	}
	all := make([]keyed, 0, len(pairs))
	for _, p := range pairs {
		gen, err := s.historyGeneration(prefix, p.Key)
		if err != nil {
			return nil, err
		}
		all = append(all, keyed{gen, p})
	}
	// Consul lists keys sorted, but the order is what callers rely on.
	slices.SortFunc(all, func(a, b keyed) int { return cmp.Compare(a.gen, b.gen) })
	if limit > 0 && len(all) > limit {
		all = all[len(all)-limit:]
	}
	out := make([]model.HistoryEntry, 0, len(all))
	for _, k := range all {
		e, err := DecodeHistory(k.pair.Value)
		if err != nil {
			return nil, fmt.Errorf("consul key %s: %w", k.pair.Key, err)
		}
		if e.Generation != k.gen {
			return nil, fmt.Errorf("consul key %s: invalid history entry: generation %d does not match the key", k.pair.Key, e.Generation)
		}
		out = append(out, e)
	}
	return out, nil
}

// PruneHistory deletes a service's oldest history entries so that keep
// remain, and returns how many it deleted. Deletes go in transactions of at
// most 64 operations (Consul's limit); if one fails, the count says how many
// earlier batches took effect. With a fence set, each batch is fenced like
// Save, so only the leader prunes.
func (s *Store) PruneHistory(ctx context.Context, service string, keep int) (int, error) {
	if keep < 1 {
		// Deleting a whole audit trail is never what a retention setting means.
		return 0, fmt.Errorf("prune history of %s: keep must be at least 1, got %d", service, keep)
	}
	prefix := s.historyPrefix(service)
	keys, _, err := s.kv.Keys(prefix, "", (&api.QueryOptions{RequireConsistent: true}).WithContext(ctx))
	if err != nil {
		return 0, fmt.Errorf("list %s in consul: %w", prefix, err)
	}
	gens := make(map[string]uint64, len(keys))
	for _, k := range keys {
		gen, err := s.historyGeneration(prefix, k)
		if err != nil {
			// A stray key sorts somewhere unknown; refuse rather than guess what is oldest.
			return 0, fmt.Errorf("prune history of %s: %w", service, err)
		}
		gens[k] = gen
	}
	if len(keys) <= keep {
		return 0, nil
	}
	slices.SortFunc(keys, func(a, b string) int { return cmp.Compare(gens[a], gens[b]) })
	doomed := keys[:len(keys)-keep]

	deleted := 0
	for len(doomed) > 0 {
		var ops api.TxnOps
		if s.fence != nil {
			f, ok := s.fence()
			if !ok {
				return deleted, fmt.Errorf("prune history of %s: %w", service, state.ErrNotLeader)
			}
			ops = append(ops, &api.TxnOp{KV: &api.KVTxnOp{Verb: api.KVCheckSession, Key: f.Key, Session: f.Session}})
		}
		n := min(len(doomed), maxTxnOps-len(ops))
		for _, k := range doomed[:n] {
			ops = append(ops, &api.TxnOp{KV: &api.KVTxnOp{Verb: api.KVDelete, Key: k}})
		}
		ok, resp, _, err := s.txn.Txn(ops, (&api.QueryOptions{}).WithContext(ctx))
		if err != nil {
			return deleted, fmt.Errorf("prune history of %s in consul: %w", service, err)
		}
		if !ok {
			what := "transaction rolled back"
			if resp != nil && len(resp.Errors) > 0 {
				what = resp.Errors[0].What
				if s.fence != nil && resp.Errors[0].OpIndex == 0 {
					return deleted, fmt.Errorf("prune history of %s: %w: %s", service, state.ErrNotLeader, what)
				}
			}
			return deleted, fmt.Errorf("prune history of %s in consul: %s", service, what)
		}
		deleted += n
		doomed = doomed[n:]
	}
	return deleted, nil
}

// historyGeneration parses the generation out of a history key; keys are
// written by HistoryKey, so anything else under the folder is an error.
func (s *Store) historyGeneration(prefix, key string) (uint64, error) {
	rest, ok := strings.CutPrefix(key, prefix)
	if ok && len(rest) == 20 {
		if gen, err := strconv.ParseUint(rest, 10, 64); err == nil && gen > 0 {
			return gen, nil
		}
	}
	return 0, fmt.Errorf("consul key %s: not a history entry key (want %s followed by a 20-digit generation)", key, prefix)
}

// DecodeHistory parses a stored history entry strictly, like Decode.
func DecodeHistory(b []byte) (model.HistoryEntry, error) {
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.DisallowUnknownFields()
	var e model.HistoryEntry
	if err := dec.Decode(&e); err != nil {
		return model.HistoryEntry{}, fmt.Errorf("invalid history entry: %w", err)
	}
	if len(bytes.TrimSpace(b[dec.InputOffset():])) > 0 {
		return model.HistoryEntry{}, errors.New("invalid history entry: trailing data")
	}
	if e.Generation == 0 {
		return model.HistoryEntry{}, errors.New("invalid history entry: no generation")
	}
	return e, nil
}
