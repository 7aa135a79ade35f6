// Package series keeps metric families whose series exist for every
// service from the start: a counter must be exported at zero before its
// first event, or increase() misses that event. A prometheus.CounterVec
// child costs about 500 bytes; at 1,000 services and a dozen series each
// that was a tenth of bg's heap. A Family stores one float64 per series
// and builds the series when scraped.
package series

import (
	"slices"
	"sync"

	"github.com/prometheus/client_golang/prometheus"
)

// Family is one metric family by service and, optionally, one more label
// with known values. Safe for concurrent use.
type Family struct {
	desc   *prometheus.Desc
	kind   prometheus.ValueType
	mu     sync.Mutex
	values []string // the second label's values; [""] without one
	by     map[string][]float64
}

// New describes a family labelled by service, and by label (with values)
// unless label is "".
func New(name, help string, kind prometheus.ValueType, label string, values ...string) *Family {
	labels := []string{"service"}
	if label != "" {
		labels = append(labels, label)
	} else {
		values = []string{""}
	}
	return &Family{
		desc: prometheus.NewDesc(name, help, labels, nil),
		kind: kind, values: slices.Clone(values), by: map[string][]float64{},
	}
}

// Ensure exports service's series (at zero) from now on.
func (f *Family) Ensure(service string) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.row(service)
}

// Add adds v to the series of service and value ("" without a second label).
func (f *Family) Add(service, value string, v float64) {
	f.mu.Lock()
	defer f.mu.Unlock()
	i := f.index(value)
	f.row(service)[i] += v
}

// Set sets the series of service and value.
func (f *Family) Set(service, value string, v float64) {
	f.mu.Lock()
	defer f.mu.Unlock()
	i := f.index(value)
	f.row(service)[i] = v
}

// Value reads one series (tests).
func (f *Family) Value(service, value string) float64 {
	f.mu.Lock()
	defer f.mu.Unlock()
	i := slices.Index(f.values, value)
	if r := f.by[service]; i >= 0 && i < len(r) {
		return r[i]
	}
	return 0
}

// row is service's values, one per known label value.
func (f *Family) row(service string) []float64 {
	r := f.by[service]
	if len(r) < len(f.values) {
		r = append(r, make([]float64, len(f.values)-len(r))...)
		f.by[service] = r
	}
	return r
}

// index finds value, adding it (a value not known up front) if need be.
func (f *Family) index(value string) int {
	i := slices.Index(f.values, value)
	if i < 0 {
		f.values = append(f.values, value)
		i = len(f.values) - 1
	}
	return i
}

// Describe implements prometheus.Collector.
func (f *Family) Describe(ch chan<- *prometheus.Desc) { ch <- f.desc }

// Collect implements prometheus.Collector. It copies under the lock and
// sends after, so a slow scrape never holds up a switch that counts.
func (f *Family) Collect(ch chan<- prometheus.Metric) {
	type row struct {
		service string
		values  []float64
	}
	f.mu.Lock()
	values := slices.Clone(f.values)
	rows := make([]row, 0, len(f.by))
	for service, r := range f.by {
		rows = append(rows, row{service, slices.Clone(r)})
	}
	f.mu.Unlock()
	labelled := !(len(values) == 1 && values[0] == "")
	for _, r := range rows {
		for i := range values {
			v := 0.0
			if i < len(r.values) {
				v = r.values[i]
			}
			if labelled {
				ch <- prometheus.MustNewConstMetric(f.desc, f.kind, v, r.service, values[i])
			} else {
				ch <- prometheus.MustNewConstMetric(f.desc, f.kind, v, r.service)
			}
		}
	}
}
