package membership

import (
	"testing"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/bgctl/bg/controlplane/model"
)

// heldValues gathers bg_fleet_held as "service/color" -> value.
func heldValues(t *testing.T, reg *prometheus.Registry) map[string]float64 {
	t.Helper()
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	out := map[string]float64{}
	for _, mf := range mfs {
		if mf.GetName() != "bg_fleet_held" {
			continue
		}
		for _, m := range mf.GetMetric() {
			labels := map[string]string{}
			for _, l := range m.GetLabel() {
				labels[l.GetName()] = l.GetValue()
			}
			out[labels["service"]+"/"+labels["color"]] = m.GetGauge().GetValue()
		}
	}
	return out
}

func TestHeldMetrics(t *testing.T) {
	reg := prometheus.NewRegistry()
	m := NewHeldMetrics(reg)
	m.Set("web", model.Blue, true)
	m.Set("web", model.Green, false)
	got := heldValues(t, reg)
	if got["web/blue"] != 1 || got["web/green"] != 0 || len(got) != 2 {
		t.Fatalf("after Set: %v", got)
	}
	m.Set("web", model.Blue, false)
	m.Observe("api", State{Green: &Held{Reason: ReasonShrink}})
	got = heldValues(t, reg)
	want := map[string]float64{"web/blue": 0, "web/green": 0, "api/blue": 0, "api/green": 1}
	for k, v := range want {
		if g, ok := got[k]; !ok || g != v {
			t.Errorf("%s = %v (present %v), want %v", k, g, ok, v)
		}
	}
	if len(got) != len(want) {
		t.Errorf("series %v, want %v", got, want)
	}
	NewHeldMetrics(nil).Set("web", model.Blue, true) // unregistered: no panic
}
