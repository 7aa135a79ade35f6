package consulkv

import (
	"cmp"
	"context"
	"encoding/json"
	"fmt"
	"slices"
	"strings"

	"github.com/hashicorp/consul/api"

	"github.com/bgctl/bg/controlplane/release"
	"github.com/bgctl/bg/controlplane/state"
)

// ReleaseKey is where a release's state lives: PREFIX releases/ID.
func (s *Store) ReleaseKey(id string) string { return s.prefix + "releases/" + id }

var _ state.Releases = (*Store)(nil)

// SaveRelease writes a release only if its stored revision is still prev
// (0: only if absent), fenced by the leader lock like Save: a replica that
// lost leadership cannot overwrite its successor's release.
func (s *Store) SaveRelease(ctx context.Context, r release.Release, prev state.Index) (state.Index, error) {
	if err := r.Validate(); err != nil {
		return 0, fmt.Errorf("refusing to store invalid release: %w", err)
	}
	body, err := json.Marshal(r)
	if err != nil {
		return 0, err
	}
	return s.casFenced(ctx, s.ReleaseKey(r.ID), body, prev, "release "+r.ID)
}

// casFenced writes body to key only if its stored revision is still prev
// (0: only if absent), fenced by the leader lock when a fence is set: one
// transaction. what names the record in errors ("release checkout-4").
func (s *Store) casFenced(ctx context.Context, key string, body []byte, prev state.Index, what string) (state.Index, error) {
	idx, err := s.casFencedAll(ctx, []casWrite{{key, body, prev}}, what)
	return idx[key], err
}

// casWrite is one key of casFencedAll.
type casWrite struct {
	key  string
	body []byte
	prev state.Index
}

// casFencedAll writes every key only if each stored revision is still its
// prev, fenced like casFenced, in one transaction: all are written or none.
// It returns each key's new revision.
func (s *Store) casFencedAll(ctx context.Context, writes []casWrite, what string) (map[string]state.Index, error) {
	var ops api.TxnOps
	if s.fence != nil {
		f, ok := s.fence()
		if !ok {
			return nil, state.ErrNotLeader
		}
		ops = append(ops, &api.TxnOp{KV: &api.KVTxnOp{Verb: api.KVCheckSession, Key: f.Key, Session: f.Session}})
	}
	fenced := len(ops)
	for _, w := range writes {
		ops = append(ops, &api.TxnOp{KV: &api.KVTxnOp{Verb: api.KVCAS, Key: w.key, Value: w.body, Index: uint64(w.prev)}})
	}
	ok, resp, _, err := s.txn.Txn(ops, (&api.QueryOptions{}).WithContext(ctx))
	if err != nil {
		return nil, fmt.Errorf("write %s to consul: %w", what, err)
	}
	if !ok || resp == nil {
		if resp != nil && len(resp.Errors) > 0 {
			e := resp.Errors[0]
			if err := aclDenied(e); err != nil {
				return nil, err
			}
			if e.OpIndex < fenced {
				return nil, fmt.Errorf("%w: %s", state.ErrNotLeader, e.What)
			}
			if len(writes) > 1 && e.OpIndex-fenced < len(writes) {
				return nil, fmt.Errorf("%s: %w: %s: %s", what, state.ErrConflict, writes[e.OpIndex-fenced].key, e.What)
			}
			return nil, fmt.Errorf("%s: %w: %s", what, state.ErrConflict, e.What)
		}
		return nil, fmt.Errorf("%s: %w", what, state.ErrConflict)
	}
	out := make(map[string]state.Index, len(writes))
	for _, r := range resp.Results {
		if r.KV != nil {
			out[r.KV.Key] = state.Index(r.KV.ModifyIndex)
		}
	}
	for _, w := range writes {
		if out[w.key] == 0 {
			return nil, fmt.Errorf("write %s: consul did not return the new index", w.key)
		}
	}
	return out, nil
}

// LoadRelease reads one release consistently; found is false if none is
// stored under id. A stored release that does not decode is an error.
func (s *Store) LoadRelease(ctx context.Context, id string) (release.Release, state.Index, bool, error) {
	if id == "" || strings.ContainsAny(id, "/ \t\n") {
		return release.Release{}, 0, false, nil // never a key of a release
	}
	key := s.ReleaseKey(id)
	pair, _, err := s.kv.Get(key, (&api.QueryOptions{RequireConsistent: true}).WithContext(ctx))
	if err != nil {
		return release.Release{}, 0, false, fmt.Errorf("read %s from consul: %w", key, err)
	}
	if pair == nil {
		return release.Release{}, 0, false, nil
	}
	r, err := release.Decode(pair.Value)
	if err != nil {
		return release.Release{}, 0, false, fmt.Errorf("consul key %s: %w", key, err)
	}
	return r, state.Index(pair.ModifyIndex), true, nil
}

// ListReleases reads every stored release with one consistent read,
// oldest first (by creation, then ID). A release that does not decode is
// an error naming its key: skipping it could forget one half-switched.
func (s *Store) ListReleases(ctx context.Context) ([]state.StoredRelease, error) {
	prefix := s.prefix + "releases/"
	pairs, _, err := s.kv.List(prefix, (&api.QueryOptions{RequireConsistent: true}).WithContext(ctx))
	if err != nil {
		return nil, fmt.Errorf("read %s from consul: %w", prefix, err)
	}
	out := make([]state.StoredRelease, 0, len(pairs))
	for _, p := range pairs {
		r, err := release.Decode(p.Value)
		if err != nil {
			return nil, fmt.Errorf("consul key %s: %w", p.Key, err)
		}
		if want := strings.TrimPrefix(p.Key, prefix); r.ID != want {
			return nil, fmt.Errorf("consul key %s: holds release %q", p.Key, r.ID)
		}
		out = append(out, state.StoredRelease{Release: r, Index: state.Index(p.ModifyIndex)})
	}
	slices.SortFunc(out, func(a, b state.StoredRelease) int {
		if c := a.Release.CreatedAt.Compare(b.Release.CreatedAt); c != 0 {
			return c
		}
		return cmp.Compare(a.Release.ID, b.Release.ID)
	})
	return out, nil
}
