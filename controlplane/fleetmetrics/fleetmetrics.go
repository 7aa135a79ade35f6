// Package fleetmetrics reads a fleet's request, error and latency counters
// and turns successive reads into exact counts: what each fleet served
// since the previous read, per series, with counter resets handled.
package fleetmetrics

import (
	"context"
	"errors"
	"time"

	"github.com/bgctl/bg/controlplane/model"
)

// ErrUnavailable is wrapped by every error that means "no trustworthy
// counts": callers must hold or abort, never read it as healthy.
var ErrUnavailable = errors.New("metrics unavailable")

// Query names one fleet and the instant to read it at. Both fleets of one
// analysis are read at the same At, so they count the same scrapes.
type Query struct {
	Service string
	Color   model.Color
	At      time.Time
	// Scraped asks for Reading.Scraped too (timestamp() of the request and
	// error series, in the same query).
	Scraped bool
}

// Reading is one instant read of a fleet's counters, per series: the
// series' labels (as Prometheus prints them) → the counter's value. No
// series is an empty map, not an error: a fleet without traffic, or one
// whose series went away. Latency maps series (with their `le` label) to
// bucket counters; nil when the service judges no latency.
type Reading struct {
	Requests map[string]float64
	Errors   map[string]float64
	Latency  map[string]Bucket
	// Scraped, when asked for, is the oldest scrape among the request and
	// error series read: every value read was scraped at or after it. Zero
	// when not asked for, or when there are no series.
	Scraped time.Time
}

// Bucket is one histogram bucket series: its upper bound and its count.
type Bucket struct {
	Le    float64
	Count float64
}

// Source reads a fleet's counters. An error (query failed, timed out,
// returned something that is not a vector of finite, non-negative counters)
// wraps ErrUnavailable: metrics are unavailable, never the same as healthy.
type Source interface {
	Read(ctx context.Context, q Query) (Reading, error)
}
