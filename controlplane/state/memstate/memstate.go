// Package memstate is an in-memory state.Store with Consul's check-and-set
// rule and a history, for tests and benchmarks that need a real store but
// no Consul.
package memstate

import (
	"context"
	"sync"

	"github.com/bgctl/bg/controlplane/model"
	"github.com/bgctl/bg/controlplane/state"
)

// Store keeps each service's state and every history entry written with it.
type Store struct {
	mu      sync.Mutex
	data    map[string]model.Traffic
	idx     map[string]state.Index
	next    state.Index
	entries []model.HistoryEntry
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
