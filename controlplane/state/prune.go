package state

import "context"

// MaxPrunedPerWrite bounds the releases one PruneReleases call deletes: a
// Consul transaction holds at most 64 operations, two of which are the
// fence and the pruned-IDs record.
const MaxPrunedPerWrite = 60

// ReleasePruner deletes ended releases (release.keep) so that they do not
// pile up under the releases folder, without ever letting a pruned
// release's ID be given again.
type ReleasePruner interface {
	// PrunedIDs reads, for each release name, the highest N of a pruned
	// release NAME-N, and the revision of that record (0: none yet).
	PrunedIDs(ctx context.Context) (ids map[string]int, idx Index, err error)
	// PruneReleases deletes each release only at its stored revision and
	// only if it has ended, and records ids at revision prev, in one
	// write fenced like SaveRelease: all of it or nothing (ErrConflict
	// when a revision moved, ErrNotLeader when fenced off). At most
	// MaxPrunedPerWrite releases per call.
	PruneReleases(ctx context.Context, del []StoredRelease, ids map[string]int, prev Index) error
}
