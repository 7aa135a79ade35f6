// Package state persists each service's traffic state. Writes are
// check-and-set so two writers can never silently overwrite each other.
package state

import (
	"context"
	"errors"
	"fmt"

	"github.com/bgctl/bg/controlplane/model"
	"github.com/bgctl/bg/controlplane/release"
)

// ErrConflict means the stored state changed since it was read.
var ErrConflict = errors.New("traffic state changed concurrently (check-and-set failed)")

// ErrNotLeader means this replica does not hold the leader lock, so it
// must not write; the write was not attempted or was fenced off.
var ErrNotLeader = errors.New("this replica is not the leader")

// Index identifies one stored revision; 0 means "not stored yet".
type Index uint64

// Store loads and saves traffic state.
type Store interface {
	// Load returns the stored state and its index; found is false if none is stored.
	Load(ctx context.Context, service string) (t model.Traffic, idx Index, found bool, err error)
	// Save writes t only if the stored revision is still prev (0: only if
	// absent), and appends entry to the service's history in the same write.
	Save(ctx context.Context, service string, t model.Traffic, prev Index, entry model.HistoryEntry) (Index, error)
}

// ErrIntent means a rollback intent stands for the service: a state that
// runs a switch or roll forward is not stored until the leader carried it out.
var ErrIntent = errors.New("a rollback intent stands for this service")

// Intents is a store that also keeps rollback intents (model.Intent): any
// replica may write one, unfenced, and while one stands Save refuses a
// state that runs a switch or roll forward (ErrIntent); a Save of any
// other state removes it in the same write.
type Intents interface {
	SaveIntent(ctx context.Context, service string, in model.Intent) error
	// LoadIntent returns the standing intent; found is false if none.
	LoadIntent(ctx context.Context, service string) (in model.Intent, found bool, err error)
	// DeleteIntent removes a stale intent (one naming no running switch or roll).
	DeleteIntent(ctx context.Context, service string) error
}

// Stored is one service's stored state and its revision.
type Stored struct {
	Traffic model.Traffic
	Index   Index
}

// Snapshot is every service's stored state and rollback intent, read at
// once. A service with neither has no entry.
type Snapshot struct {
	Traffic map[string]Stored
	Intents map[string]model.Intent
	// Invalid holds the services whose stored state could not be decoded;
	// loading them fails as a Load of that service would.
	Invalid map[string]error
}

// Lister is a store that reads every service's state and intent in one
// consistent read, so loading costs one request whatever the number of
// services.
type Lister interface {
	LoadAll(ctx context.Context) (Snapshot, error)
}

// Absent is a state to create where none is stored, with its first
// history entry.
type Absent struct {
	Service string
	Traffic model.Traffic
	Entry   model.HistoryEntry
}

// Creator is a store that creates many absent states in few writes, so a
// first start costs a few requests whatever the number of services. Each
// state is written only if none is stored for its service, with its
// history entry, fenced like Save. Created holds each state stored, as
// stored; a service left out (another write came first, or its batch
// failed) is created alone by the caller. ErrNotLeader stops the batch.
type Creator interface {
	CreateAbsent(ctx context.Context, states []Absent) (created map[string]Stored, err error)
	// HistoryOwners names the services with any history entry, in one
	// read: their state is restored from history, never created anew.
	HistoryOwners(ctx context.Context) (map[string]bool, error)
}

// StoredRelease is one release as stored, with its revision.
type StoredRelease struct {
	Release release.Release
	Index   Index
}

// Releases persists releases (controlplane/release) next to the services'
// states: check-and-set on each release's revision and fenced like Save.
type Releases interface {
	// SaveRelease writes r only if its stored revision is still prev (0:
	// only if absent).
	SaveRelease(ctx context.Context, r release.Release, prev Index) (Index, error)
	// LoadRelease reads one release; found is false if none has that ID.
	LoadRelease(ctx context.Context, id string) (r release.Release, idx Index, found bool, err error)
	// ListReleases reads every stored release, oldest first.
	ListReleases(ctx context.Context) ([]StoredRelease, error)
}

// StoredDesired is one service's desired state (model.Desired) and its revision.
type StoredDesired struct {
	Desired model.Desired
	Index   Index
}

// DesiredWrite is one service's part of SaveDesiredSet.
type DesiredWrite struct {
	Service string
	Desired model.Desired
	Prev    Index
}

// MaxDesiredSet is the most services one SaveDesiredSet writes: a Consul
// transaction holds at most 64 operations, one of them the leader fence.
const MaxDesiredSet = 63

// Desires persists each service's desired version (declarative delivery,
// controlplane/converge) beside its traffic state: check-and-set on its
// own revision and fenced like Save, so only the leader writes it.
type Desires interface {
	// SaveDesired writes d only if the stored revision is still prev (0:
	// only if absent).
	SaveDesired(ctx context.Context, service string, d model.Desired, prev Index) (Index, error)
	// SaveDesiredSet writes several services' desired states as one
	// transaction: every write's stored revision is still its Prev, and
	// all are stored, or none is (ErrConflict, ErrNotLeader or another
	// error). It returns each service's new revision. At most
	// MaxDesiredSet writes.
	SaveDesiredSet(ctx context.Context, writes []DesiredWrite) (map[string]Index, error)
	// ListDesired reads every service's desired state in one read. A
	// stored value that does not decode is an error naming its key.
	ListDesired(ctx context.Context) (map[string]StoredDesired, error)
}

// ValidateDesiredSet checks a SaveDesiredSet before anything is written:
// one to MaxDesiredSet writes, each service once, each desired state valid.
func ValidateDesiredSet(writes []DesiredWrite) error {
	if len(writes) == 0 || len(writes) > MaxDesiredSet {
		return fmt.Errorf("refusing to store %d desired states at once: 1 to %d", len(writes), MaxDesiredSet)
	}
	seen := make(map[string]bool, len(writes))
	var errs []error
	for _, w := range writes {
		switch {
		case w.Service == "":
			errs = append(errs, errors.New("a desired state without a service"))
		case seen[w.Service]:
			errs = append(errs, fmt.Errorf("desired %s: twice in one set", w.Service))
		}
		seen[w.Service] = true
		if err := w.Desired.Validate(); err != nil {
			errs = append(errs, fmt.Errorf("desired %s: %w", w.Service, err))
		}
	}
	if err := errors.Join(errs...); err != nil {
		return fmt.Errorf("refusing to store invalid desired state: %w", err)
	}
	return nil
}
