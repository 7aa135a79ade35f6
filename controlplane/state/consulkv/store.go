// Package consulkv stores traffic state in Consul KV with check-and-set.
package consulkv

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"

	"github.com/hashicorp/consul/api"

	"github.com/bgctl/bg/controlplane/model"
	"github.com/bgctl/bg/controlplane/state"
)

// Store keeps one JSON document per service at PREFIX services/NAME/traffic.
type Store struct {
	kv     *api.KV
	txn    *api.Txn
	prefix string
}

// New returns a store under prefix (e.g. "bg/").
func New(c *api.Client, prefix string) *Store {
	return &Store{kv: c.KV(), txn: c.Txn(), prefix: prefix}
}

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

// Save writes with check-and-set on prev.
func (s *Store) Save(ctx context.Context, service string, t model.Traffic, prev state.Index) (state.Index, error) {
	if err := t.Validate(); err != nil {
		return 0, fmt.Errorf("refusing to store invalid state: %w", err)
	}
	body, err := json.Marshal(t)
	if err != nil {
		return 0, err
	}
	// A transaction returns the new ModifyIndex atomically with the CAS.
	ok, resp, _, err := s.txn.Txn(api.TxnOps{{KV: &api.KVTxnOp{
		Verb: api.KVCAS, Key: s.Key(service), Value: body, Index: uint64(prev),
	}}}, (&api.QueryOptions{}).WithContext(ctx))
	if err != nil {
		return 0, fmt.Errorf("write %s to consul: %w", s.Key(service), err)
	}
	if !ok || resp == nil || len(resp.Results) != 1 || resp.Results[0].KV == nil {
		if resp != nil && len(resp.Errors) > 0 {
			return 0, fmt.Errorf("%w: %s", state.ErrConflict, resp.Errors[0].What)
		}
		return 0, state.ErrConflict
	}
	return state.Index(resp.Results[0].KV.ModifyIndex), nil
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
