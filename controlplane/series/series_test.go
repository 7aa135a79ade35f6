package series

import (
	"strings"
	"testing"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
)

// Every ensured service exports every value at zero before its first
// event; adds and sets land on their series; a value not known up front
// is exported from then on, for every service.
func TestFamily(t *testing.T) {
	reg := prometheus.NewPedanticRegistry()
	c := New("bg_test_total", "Test counter.", prometheus.CounterValue, "reason", "a", "b")
	g := New("bg_test_steps_total", "Test counter without a second label.", prometheus.CounterValue, "")
	reg.MustRegister(c, g)

	c.Ensure("web")
	g.Ensure("web")
	c.Add("api", "b", 2)
	c.Add("api", "b", 1)
	g.Add("api", "", 5)
	want := `
# HELP bg_test_total Test counter.
# TYPE bg_test_total counter
bg_test_total{reason="a",service="api"} 0
bg_test_total{reason="a",service="web"} 0
bg_test_total{reason="b",service="api"} 3
bg_test_total{reason="b",service="web"} 0
# HELP bg_test_steps_total Test counter without a second label.
# TYPE bg_test_steps_total counter
bg_test_steps_total{service="api"} 5
bg_test_steps_total{service="web"} 0
`
	if err := testutil.GatherAndCompare(reg, strings.NewReader(want)); err != nil {
		t.Fatal(err)
	}
	c.Add("web", "c", 1)
	if got := testutil.CollectAndCount(c); got != 6 {
		t.Fatalf("after a new value: %d series, want 6 (2 services × 3 values)", got)
	}
	if c.Value("web", "c") != 1 || c.Value("api", "c") != 0 || c.Value("api", "b") != 3 {
		t.Fatalf("values: web/c %v api/c %v api/b %v", c.Value("web", "c"), c.Value("api", "c"), c.Value("api", "b"))
	}
	h := New("bg_test_held", "Test gauge.", prometheus.GaugeValue, "color", "blue", "green")
	h.Set("web", "green", 1)
	h.Set("web", "green", 0)
	if h.Value("web", "green") != 0 || testutil.CollectAndCount(h) != 2 {
		t.Fatal("gauge set")
	}
}
