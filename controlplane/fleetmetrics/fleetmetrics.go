// Package fleetmetrics reads a fleet's request and error counts.
package fleetmetrics

import (
	"context"
	"errors"
	"time"

	"github.com/bgctl/bg/controlplane/judge"
	"github.com/bgctl/bg/controlplane/model"
)

// ErrUnavailable is wrapped by every error that means "no trustworthy
// counts": callers must hold or abort, never read it as healthy.
var ErrUnavailable = errors.New("metrics unavailable")

// Query names one fleet and the window to count over.
type Query struct {
	Service string
	Color   model.Color
	Window  time.Duration
}

// Source returns counts for a fleet. Any error, empty result, NaN or Inf is
// an error: metrics are unavailable, which is never the same as healthy.
type Source interface {
	Sample(ctx context.Context, q Query) (judge.Sample, error)
}
