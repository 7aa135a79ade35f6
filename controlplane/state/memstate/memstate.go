// Package memstate is an in-memory state.Store (and state.Releases) with
// Consul's check-and-set rule and a history, for tests and benchmarks that
// need a real store but no Consul.
package memstate

import (
	"cmp"
	"context"
	"encoding/json"
	"fmt"
	"slices"
	"sync"

	"github.com/bgctl/bg/controlplane/release"

	"github.com/bgctl/bg/controlplane/model"
	"github.com/bgctl/bg/controlplane/state"
)

// Store keeps each service's state and every history entry written with it.
type Store struct {
	mu       sync.Mutex
	data     map[string]model.Traffic
	idx      map[string]state.Index
	next     state.Index
	entries  []model.HistoryEntry
	releases map[string]storedRelease
	// pruned is the pruned-IDs record (state.ReleasePruner), at prunedIdx.
	pruned    map[string]int
	prunedIdx state.Index
	desired   map[string]state.StoredDesired
}

type storedRelease struct {
	body []byte
	idx  state.Index
}

// New returns an empty store.
func New() *Store {
	return &Store{data: map[string]model.Traffic{}, idx: map[string]state.Index{}}
}

// Load implements state.Store.
func (m *Store) Load(_ context.Context, service string) (model.Traffic, state.Index, bool, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	t, ok := m.data[service]
	return t, m.idx[service], ok, nil
}

// Save implements state.Store: it writes only if the stored revision is
// still prev (0: only if absent).
func (m *Store) Save(_ context.Context, service string, t model.Traffic, prev state.Index, e model.HistoryEntry) (state.Index, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.idx[service] != prev {
		return 0, state.ErrConflict
	}
	m.next++
	m.data[service], m.idx[service] = t, m.next
	e.Generation = t.Generation
	m.entries = append(m.entries, e)
	return m.next, nil
}

// Entries returns every history entry written, oldest first.
func (m *Store) Entries() []model.HistoryEntry {
	m.mu.Lock()
	defer m.mu.Unlock()
	return append([]model.HistoryEntry(nil), m.entries...)
}

// Last returns the last history entry written.
func (m *Store) Last() model.HistoryEntry {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.entries[len(m.entries)-1]
}

var _ state.Releases = (*Store)(nil)

// SaveRelease implements state.Releases with Consul's check-and-set rule;
// releases are kept encoded, so what Consul would refuse is refused here.
func (m *Store) SaveRelease(_ context.Context, r release.Release, prev state.Index) (state.Index, error) {
	if err := r.Validate(); err != nil {
		return 0, fmt.Errorf("refusing to store invalid release: %w", err)
	}
	b, err := json.Marshal(r)
	if err != nil {
		return 0, err
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.releases == nil {
		m.releases = map[string]storedRelease{}
	}
	if m.releases[r.ID].idx != prev {
		return 0, fmt.Errorf("release %s: %w", r.ID, state.ErrConflict)
	}
	m.next++
	m.releases[r.ID] = storedRelease{body: b, idx: m.next}
	return m.next, nil
}

// LoadRelease implements state.Releases.
func (m *Store) LoadRelease(_ context.Context, id string) (release.Release, state.Index, bool, error) {
	m.mu.Lock()
	sr, ok := m.releases[id]
	m.mu.Unlock()
	if !ok {
		return release.Release{}, 0, false, nil
	}
	r, err := release.Decode(sr.body)
	return r, sr.idx, err == nil, err
}

// ListReleases implements state.Releases: oldest first.
func (m *Store) ListReleases(context.Context) ([]state.StoredRelease, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	out := make([]state.StoredRelease, 0, len(m.releases))
	for _, sr := range m.releases {
		r, err := release.Decode(sr.body)
		if err != nil {
			return nil, err
		}
		out = append(out, state.StoredRelease{Release: r, Index: sr.idx})
	}
	slices.SortFunc(out, func(a, b state.StoredRelease) int {
		if c := a.Release.CreatedAt.Compare(b.Release.CreatedAt); c != 0 {
			return c
		}
		return cmp.Compare(a.Release.ID, b.Release.ID)
	})
	return out, nil
}

var _ state.ReleasePruner = (*Store)(nil)

// PrunedIDs implements state.ReleasePruner.
func (m *Store) PrunedIDs(context.Context) (map[string]int, state.Index, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	ids := make(map[string]int, len(m.pruned))
	for k, v := range m.pruned {
		ids[k] = v
	}
	return ids, m.prunedIdx, nil
}

// PruneReleases implements state.ReleasePruner with Consul's rules: all or
// nothing, check-and-set on every revision, ended releases only.
func (m *Store) PruneReleases(_ context.Context, del []state.StoredRelease, ids map[string]int, prev state.Index) error {
	if len(del) == 0 {
		return nil
	}
	if len(del) > state.MaxPrunedPerWrite {
		return fmt.Errorf("prune %d releases: at most %d per write", len(del), state.MaxPrunedPerWrite)
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.prunedIdx != prev {
		return fmt.Errorf("prune releases: pruned IDs: %w", state.ErrConflict)
	}
	for _, d := range del {
		if !d.Release.Phase.Ended() {
			return fmt.Errorf("refusing to prune release %s: it is %s, not ended", d.Release.ID, d.Release.Phase)
		}
		if sr, ok := m.releases[d.Release.ID]; !ok || sr.idx != d.Index {
			return fmt.Errorf("prune release %s: %w", d.Release.ID, state.ErrConflict)
		}
	}
	for _, d := range del {
		delete(m.releases, d.Release.ID)
	}
	m.next++
	m.prunedIdx = m.next
	m.pruned = make(map[string]int, len(ids))
	for k, v := range ids {
		m.pruned[k] = v
	}
	return nil
}

var _ state.Desires = (*Store)(nil)

// SaveDesired implements state.Desires with the check-and-set rule.
func (m *Store) SaveDesired(ctx context.Context, service string, d model.Desired, prev state.Index) (state.Index, error) {
	idx, err := m.SaveDesiredSet(ctx, []state.DesiredWrite{{Service: service, Desired: d, Prev: prev}})
	return idx[service], err
}

// SaveDesiredSet implements state.Desires: every write is checked before
// any is stored.
func (m *Store) SaveDesiredSet(_ context.Context, writes []state.DesiredWrite) (map[string]state.Index, error) {
	if err := state.ValidateDesiredSet(writes); err != nil {
		return nil, err
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.desired == nil {
		m.desired = map[string]state.StoredDesired{}
	}
	for _, w := range writes {
		if m.desired[w.Service].Index != w.Prev {
			return nil, fmt.Errorf("desired %s: %w", w.Service, state.ErrConflict)
		}
	}
	out := make(map[string]state.Index, len(writes))
	for _, w := range writes {
		m.next++
		w.Desired.Log = append([]model.DesireEvent(nil), w.Desired.Log...)
		m.desired[w.Service] = state.StoredDesired{Desired: w.Desired, Index: m.next}
		out[w.Service] = m.next
	}
	return out, nil
}

// ListDesired implements state.Desires.
func (m *Store) ListDesired(context.Context) (map[string]state.StoredDesired, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	out := make(map[string]state.StoredDesired, len(m.desired))
	for k, v := range m.desired {
		v.Desired.Log = append([]model.DesireEvent(nil), v.Desired.Log...)
		out[k] = v
	}
	return out, nil
}
