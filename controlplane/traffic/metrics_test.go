package traffic

import (
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/bgctl/bg/controlplane/model"
)

// Each service has one bg_switch_phase series, its current phase: at
// 1,000 services a 0/1 series per phase cost 9,000 idle series.
func TestPhaseHasOneSeriesPerService(t *testing.T) {
	m := NewMetrics(prometheus.NewRegistry())
	m.setWeights("web", model.Traffic{})
	m.setWeights("api", model.Traffic{})
	if n := testutil.CollectAndCount(m.phase); n != 2 {
		t.Fatalf("%d phase series for 2 services, want 2", n)
	}
	running := model.Traffic{Rollout: &model.Rollout{Phase: model.RolloutProgressing, StartedAt: time.Now()}}
	m.setWeights("web", running)
	if n := testutil.CollectAndCount(m.phase); n != 2 {
		t.Fatalf("%d phase series after a phase change, want 2", n)
	}
	if v := testutil.ToFloat64(m.phase.WithLabelValues("web", string(model.RolloutProgressing))); v != 1 {
		t.Errorf("web progressing = %v, want 1", v)
	}
}
