package consulkv

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"

	"github.com/hashicorp/consul/api"

	"github.com/bgctl/bg/controlplane/state"
)

// PrunedIDsKey records, for each release name, the highest N of a pruned
// release NAME-N (a JSON object): PREFIX release-ids, outside the
// releases folder, which holds only releases.
func (s *Store) PrunedIDsKey() string { return s.prefix + "release-ids" }

var _ state.ReleasePruner = (*Store)(nil)

// PrunedIDs reads the pruned-IDs record consistently (empty, at 0, when
// none is stored). A record that does not decode is an error naming its
// key: ignoring it could give a pruned ID again.
func (s *Store) PrunedIDs(ctx context.Context) (map[string]int, state.Index, error) {
	key := s.PrunedIDsKey()
	pair, _, err := s.kv.Get(key, (&api.QueryOptions{RequireConsistent: true}).WithContext(ctx))
	if err != nil {
		return nil, 0, fmt.Errorf("read %s from consul: %w", key, err)
	}
	if pair == nil {
		return map[string]int{}, 0, nil
	}
	ids, err := decodePrunedIDs(pair.Value)
	if err != nil {
		return nil, 0, fmt.Errorf("consul key %s: %w", key, err)
	}
	return ids, state.Index(pair.ModifyIndex), nil
}

func decodePrunedIDs(b []byte) (map[string]int, error) {
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.DisallowUnknownFields()
	var ids map[string]int
	if err := dec.Decode(&ids); err != nil {
		return nil, fmt.Errorf("invalid pruned release IDs: %w", err)
	}
	for name, n := range ids {
		if name == "" || n < 1 {
			return nil, fmt.Errorf("invalid pruned release IDs: %q: %d", name, n)
		}
	}
	if ids == nil {
		ids = map[string]int{}
	}
	return ids, nil
}

// PruneReleases deletes ended releases in one transaction: the leader
// lock's session check (as SaveRelease), a check-and-set of the
// pruned-IDs record at prev (0: only if absent), and a delete of each
// release at its stored revision. Any moved revision fails it whole
// (ErrConflict); a lost lock fails it with ErrNotLeader.
func (s *Store) PruneReleases(ctx context.Context, del []state.StoredRelease, ids map[string]int, prev state.Index) error {
	if len(del) == 0 {
		return nil
	}
	if len(del) > state.MaxPrunedPerWrite {
		return fmt.Errorf("prune %d releases: at most %d per write", len(del), state.MaxPrunedPerWrite)
	}
	for _, d := range del {
		if !d.Release.Phase.Ended() {
			return fmt.Errorf("refusing to prune release %s: it is %s, not ended", d.Release.ID, d.Release.Phase)
		}
		if d.Index == 0 {
			return fmt.Errorf("refusing to prune release %s without its stored revision", d.Release.ID)
		}
	}
	body, err := json.Marshal(ids)
	if err != nil {
		return err
	}
	var ops api.TxnOps
	if s.fence != nil {
		f, ok := s.fence()
		if !ok {
			return state.ErrNotLeader
		}
		ops = append(ops, &api.TxnOp{KV: &api.KVTxnOp{Verb: api.KVCheckSession, Key: f.Key, Session: f.Session}})
	}
	ops = append(ops, &api.TxnOp{KV: &api.KVTxnOp{Verb: api.KVCAS, Key: s.PrunedIDsKey(), Value: body, Index: uint64(prev)}})
	for _, d := range del {
		ops = append(ops, &api.TxnOp{KV: &api.KVTxnOp{Verb: api.KVDeleteCAS, Key: s.ReleaseKey(d.Release.ID), Index: uint64(d.Index)}})
	}
	ok, resp, _, err := s.txn.Txn(ops, (&api.QueryOptions{}).WithContext(ctx))
	if err != nil {
		return fmt.Errorf("prune %d releases in consul: %w", len(del), err)
	}
	if !ok {
		if resp != nil && len(resp.Errors) > 0 {
			e := resp.Errors[0]
			if s.fence != nil && e.OpIndex == 0 {
				return fmt.Errorf("%w: %s", state.ErrNotLeader, e.What)
			}
			return fmt.Errorf("prune releases: %w: %s", state.ErrConflict, e.What)
		}
		return fmt.Errorf("prune releases: %w", state.ErrConflict)
	}
	return nil
}
