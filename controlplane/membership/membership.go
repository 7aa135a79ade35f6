// Package membership defines where fleets come from.
package membership

import (
	"context"

	"github.com/bgctl/bg/controlplane/model"
)

// Update is a successful read of one service's fleets. A failed read
// produces no Update, so consumers keep what they had.
type Update struct {
	Service    string
	Membership model.Membership
	// Skipped lists instances that had no usable colour, with why.
	Skipped []string
	// Rolling is true when a passing instance carries meta bg-strategy=rolling:
	// the service is stateful even if the config does not say so.
	Rolling bool
	// AffinityHeader is meta bg-affinity-header of such an instance, if any.
	AffinityHeader string
}

// Source watches the fleets of every configured service and calls fn
// after the first read of each and on every change, until ctx ends.
type Source interface {
	Run(ctx context.Context, fn func(Update))
}
