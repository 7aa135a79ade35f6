package fleetmetrics

import (
	"math"
	"reflect"
	"testing"
)

func TestTrackerCountsExactDifferences(t *testing.T) {
	type step struct {
		name   string
		read   Reading
		want   Counts
		wantOK bool
	}
	a, b := `{instance="a"}`, `{instance="b"}`
	steps := []step{
		{"start: counts before the switch are not counted",
			Reading{Requests: map[string]float64{a: 1000, b: 500}, Errors: map[string]float64{a: 70}}, Counts{}, false},
		{"plain increase, both series",
			Reading{Requests: map[string]float64{a: 1100, b: 550}, Errors: map[string]float64{a: 71}},
			Counts{Requests: 150, Errors: 1, Series: 2}, true},
		{"b restarted: its counter reset, so it counts its new value",
			Reading{Requests: map[string]float64{a: 1200, b: 20}, Errors: map[string]float64{a: 71}},
			Counts{Requests: 120, Errors: 0, Series: 2}, true},
		{"the errors series of b is born mid-switch: all of it counts",
			Reading{Requests: map[string]float64{a: 1300, b: 40}, Errors: map[string]float64{a: 71, b: 3}},
			Counts{Requests: 120, Errors: 3, Series: 2}, true},
		{"a's series vanish (scrape failed): nothing counted, nothing forgotten",
			Reading{Requests: map[string]float64{b: 50}, Errors: map[string]float64{b: 3}},
			Counts{Requests: 10, Errors: 0, Series: 1}, true},
		{"a comes back: compared with its last value, not counted again from zero",
			Reading{Requests: map[string]float64{a: 1400, b: 60}, Errors: map[string]float64{a: 72, b: 3}},
			Counts{Requests: 110, Errors: 1, Series: 2}, true},
		{"no series at all: no data",
			Reading{Requests: map[string]float64{}, Errors: map[string]float64{}},
			Counts{Series: 0}, true},
	}
	var tr Tracker
	for _, s := range steps {
		got, ok := tr.Advance(s.read)
		if ok != s.wantOK || !reflect.DeepEqual(got, s.want) {
			t.Errorf("%s: got %+v ok=%v, want %+v ok=%v", s.name, got, ok, s.want, s.wantOK)
		}
	}
}

func TestTrackerLatencyBucketsSumAcrossSeries(t *testing.T) {
	lat := func(a5, aInf, b5, bInf float64) map[string]Bucket {
		return map[string]Bucket{
			`{instance="a",le="5"}`: {Le: 5, Count: a5}, `{instance="a",le="+Inf"}`: {Le: inf, Count: aInf},
			`{instance="b",le="5"}`: {Le: 5, Count: b5}, `{instance="b",le="+Inf"}`: {Le: inf, Count: bInf},
		}
	}
	var tr Tracker
	tr.Advance(Reading{Latency: lat(10, 12, 5, 5)})
	got, _ := tr.Advance(Reading{Latency: lat(18, 22, 1, 2)}) // b reset
	want := []Bucket{{Le: 5, Count: 8 + 1}, {Le: inf, Count: 10 + 2}}
	if !reflect.DeepEqual(got.Latency, want) {
		t.Errorf("latency %+v, want %+v", got.Latency, want)
	}
}

var inf = math.Inf(1)
