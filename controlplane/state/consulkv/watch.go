package consulkv

import (
	"context"
	"log/slog"
	"slices"
	"strings"
	"time"

	"github.com/bgctl/bg/controlplane/wait"

	"github.com/hashicorp/consul/api"

	"github.com/bgctl/bg/controlplane/model"
	"github.com/bgctl/bg/controlplane/state"
)

// Watch follows every service's stored state with blocking queries and
// calls fn for each key whose ModifyIndex changed, so followers serve what
// the leader wrote. Corrupt documents are logged and skipped: the last
// good state stays in force. A key that disappears is reported with found
// false, so the leader can write the lost state back.
//
// Rollback intents under the same prefix go to onIntent (found false when
// one is removed); onIntent may be nil.
func (s *Store) Watch(ctx context.Context, log *slog.Logger, fn func(service string, t model.Traffic, idx state.Index, found bool), onIntent func(service string, in model.Intent, found bool)) {
	prefix := s.prefix + "services/"
	var index uint64
	seen := map[string]uint64{}
	backoff := 100 * time.Millisecond
	kv := s.watch
	if kv == nil {
		kv = s.kv
	}
	for ctx.Err() == nil {
		pairs, meta, err := kv.List(prefix, (&api.QueryOptions{WaitIndex: index, WaitTime: 5 * time.Minute}).WithContext(ctx))
		if err != nil {
			if ctx.Err() != nil {
				return
			}
			s.setHealth(err)
			log.Warn("watching traffic state failed; keeping the last state", "error", err, "retry_in", backoff)
			wait.Sleep(ctx, backoff)
			backoff = min(backoff*2, 2*time.Second) // catch up fast after a partition heals
			continue
		}
		backoff = 100 * time.Millisecond
		s.setHealth(nil)
		moved := meta.LastIndex != index
		if meta.LastIndex < index {
			index = 0 // index went backwards (e.g. restored snapshot): start over
		} else {
			index = max(meta.LastIndex, 1)
		}
		present, reported := map[string]bool{}, map[string]bool{}
		for _, p := range pairs {
			present[p.Key] = true
		}
		for key := range seen {
			if present[key] {
				continue
			}
			delete(seen, key)
			rest := strings.TrimPrefix(key, prefix)
			if service, ok := strings.CutSuffix(rest, "/traffic"); ok {
				log.Warn("stored traffic state disappeared", "key", key)
				fn(service, model.Traffic{}, 0, false)
				reported[service] = true
			} else if service, ok := strings.CutSuffix(rest, "/intent"); ok && onIntent != nil {
				onIntent(service, model.Intent{}, false)
			}
		}
		// A key written back and deleted again between two polls was never
		// seen, so the loop above cannot tell it went: whenever the index
		// moved, every expected service without a key is reported (sim
		// seed 2046). The controller ignores it unless it leads and the
		// service is loaded; the leader writes the state back.
		if moved {
			for _, service := range s.expected() {
				if !present[s.Key(service)] && !reported[service] {
					fn(service, model.Traffic{}, 0, false)
				}
			}
		}
		for _, p := range pairs {
			if seen[p.Key] == p.ModifyIndex {
				continue
			}
			seen[p.Key] = p.ModifyIndex
			rest := strings.TrimPrefix(p.Key, prefix)
			if service, ok := strings.CutSuffix(rest, "/intent"); ok {
				in, err := DecodeIntent(p.Value)
				if err != nil {
					log.Error("rollback intent is invalid; ignoring it", "key", p.Key, "error", err)
					continue
				}
				if onIntent != nil {
					onIntent(service, in, true)
				}
				continue
			}
			service, ok := strings.CutSuffix(rest, "/traffic")
			if !ok {
				continue
			}
			t, err := Decode(p.Value)
			if err != nil {
				log.Error("stored traffic state is invalid; ignoring it", "key", p.Key, "error", err)
				continue
			}
			fn(service, t, state.Index(p.ModifyIndex), true)
		}
		wait.Sleep(ctx, 100*time.Millisecond) // rate-limit: blocking queries can return at once
	}
}

// Expect names the services whose state key should exist: Watch reports
// each one it finds absent whenever the index moves, even one it never saw.
func (s *Store) Expect(services []string) {
	s.expectMu.Lock()
	defer s.expectMu.Unlock()
	s.expect = slices.Clone(services)
}

func (s *Store) expected() []string {
	s.expectMu.Lock()
	defer s.expectMu.Unlock()
	return s.expect
}

// Reachability says whether the state watch last reached Consul, and
// since when it has not.
type Reachability struct {
	Reachable   bool      `json:"reachable"`
	Unreachable time.Time `json:"unreachable_since,omitzero"`
	Error       string    `json:"error,omitempty"`
}

func (s *Store) setHealth(err error) {
	s.healthMu.Lock()
	defer s.healthMu.Unlock()
	switch {
	case err == nil:
		s.health = Reachability{Reachable: true}
	case s.health.Reachable || s.health.Unreachable.IsZero():
		s.health = Reachability{Unreachable: time.Now(), Error: err.Error()}
	default:
		s.health.Error = err.Error()
	}
}

// Reachability reports the state watch's view of Consul.
func (s *Store) Reachability() Reachability {
	s.healthMu.Lock()
	defer s.healthMu.Unlock()
	return s.health
}
