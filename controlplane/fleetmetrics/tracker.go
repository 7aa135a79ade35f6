package fleetmetrics

import (
	"maps"
	"slices"
)

// Counts are what one fleet served between two reads: exact differences of
// its counters, not a rate or an extrapolation.
type Counts struct {
	Requests float64
	Errors   float64
	// Latency is the histogram of those requests: per bucket bound,
	// ascending, the count of requests at or below it (nil without latency).
	Latency []Bucket
	// Series is how many request series the later read had: 0 means the
	// fleet has no request counters at all (no traffic yet, or its series
	// went away), which is "no data", never "no errors".
	Series int
}

// Tracker turns successive reads of one fleet into Counts. Its first read
// only sets the starting point. From then on each series contributes its
// increase since the previous read:
//
//   - a value below the previous one is a counter reset (the process
//     restarted): the series counts its new value, as Prometheus's
//     increase() does; what it counted between the last read and the
//     restart is lost (reads are an analysis interval apart);
//   - a series first seen after the start counts its whole value: it was
//     created after the switch began (Envoy creates the 5xx series at the
//     first 5xx);
//   - a series that vanishes is remembered, so if it comes back its value
//     is compared with what it had, not counted again from zero.
//
// A Tracker is not safe for concurrent use.
type Tracker struct {
	primed         bool
	requests, errs map[string]float64
	latency        map[string]Bucket
}

// Primed reports whether the tracker has its starting point.
func (t *Tracker) Primed() bool { return t.primed }

// Advance takes the next read and returns what the fleet served since the
// previous one; ok is false for the first read, which only sets the start.
func (t *Tracker) Advance(r Reading) (c Counts, ok bool) {
	if t.requests == nil {
		t.requests, t.errs, t.latency = map[string]float64{}, map[string]float64{}, map[string]Bucket{}
	}
	ok = t.primed
	c.Requests = advance(t.requests, r.Requests, ok)
	c.Errors = advance(t.errs, r.Errors, ok)
	c.Series = len(r.Requests)
	if r.Latency != nil {
		byLe := map[float64]float64{}
		for k, b := range r.Latency {
			prev, seen := t.latency[k]
			byLe[b.Le] += delta(prev.Count, seen, b.Count, ok)
			t.latency[k] = b
		}
		for _, le := range slices.Sorted(maps.Keys(byLe)) {
			c.Latency = append(c.Latency, Bucket{Le: le, Count: byLe[le]})
		}
	}
	t.primed = true
	if !ok {
		return Counts{}, false
	}
	return c, true
}

func advance(last, now map[string]float64, primed bool) float64 {
	sum := 0.0
	for k, v := range now {
		prev, seen := last[k]
		sum += delta(prev, seen, v, primed)
		last[k] = v
	}
	return sum
}

func delta(prev float64, seen bool, v float64, primed bool) float64 {
	switch {
	case !primed:
		return 0
	case !seen:
		return v // a series born after the start
	case v < prev:
		return v // a reset: the counter started again from zero
	default:
		return v - prev
	}
}
