package consulkv

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strings"

	"github.com/hashicorp/consul/api"

	"github.com/bgctl/bg/controlplane/model"
	"github.com/bgctl/bg/controlplane/state"
)

// DesiredKey is where a service's desired version lives: PREFIX desired/SERVICE,
// beside PREFIX services/SERVICE/traffic, in a folder of its own so one
// read lists every service's.
func (s *Store) DesiredKey(service string) string { return s.prefix + "desired/" + service }

var _ state.Desires = (*Store)(nil)

// SaveDesired writes a desired state only if its stored revision is still
// prev (0: only if absent), fenced by the leader lock like Save.
func (s *Store) SaveDesired(ctx context.Context, service string, d model.Desired, prev state.Index) (state.Index, error) {
	idx, err := s.SaveDesiredSet(ctx, []state.DesiredWrite{{Service: service, Desired: d, Prev: prev}})
	return idx[service], err
}

// SaveDesiredSet writes several services' desired states in one fenced
// transaction of check-and-set operations: all or none.
func (s *Store) SaveDesiredSet(ctx context.Context, writes []state.DesiredWrite) (map[string]state.Index, error) {
	if err := state.ValidateDesiredSet(writes); err != nil {
		return nil, err
	}
	cas := make([]casWrite, len(writes))
	names := make([]string, len(writes))
	for i, w := range writes {
		body, err := json.Marshal(w.Desired)
		if err != nil {
			return nil, err
		}
		cas[i] = casWrite{s.DesiredKey(w.Service), body, w.Prev}
		names[i] = w.Service
	}
	byKey, err := s.casFencedAll(ctx, cas, "desired "+strings.Join(names, ","))
	if err != nil {
		return nil, err
	}
	out := make(map[string]state.Index, len(writes))
	for _, w := range writes {
		out[w.Service] = byKey[s.DesiredKey(w.Service)]
	}
	return out, nil
}

// ListDesired reads every service's desired state with one consistent read.
func (s *Store) ListDesired(ctx context.Context) (map[string]state.StoredDesired, error) {
	prefix := s.prefix + "desired/"
	pairs, _, err := s.kv.List(prefix, (&api.QueryOptions{RequireConsistent: true}).WithContext(ctx))
	if err != nil {
		return nil, fmt.Errorf("read %s from consul: %w", prefix, err)
	}
	out := make(map[string]state.StoredDesired, len(pairs))
	for _, p := range pairs {
		service := strings.TrimPrefix(p.Key, prefix)
		d, err := DecodeDesired(p.Value)
		if err != nil {
			return nil, fmt.Errorf("consul key %s: %w", p.Key, err)
		}
		out[service] = state.StoredDesired{Desired: d, Index: state.Index(p.ModifyIndex)}
	}
	return out, nil
}

// DecodeDesired parses a stored desired state strictly, like Decode.
func DecodeDesired(b []byte) (model.Desired, error) {
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.DisallowUnknownFields()
	var d model.Desired
	if err := dec.Decode(&d); err != nil {
		return model.Desired{}, fmt.Errorf("invalid desired state: %w", err)
	}
	if len(bytes.TrimSpace(b[dec.InputOffset():])) > 0 {
		return model.Desired{}, errors.New("invalid desired state: trailing data")
	}
	if err := d.Validate(); err != nil {
		return model.Desired{}, fmt.Errorf("invalid desired state: %w", err)
	}
	return d, nil
}
