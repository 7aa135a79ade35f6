package promx

import (
	"testing"
	"time"

	"github.com/bgctl/bg/e2e/harness"
)

func TestX(t *testing.T) {
	a := harness.StartBackend(t, harness.BackendOptions{Service: "web", Color: "blue", ID: "a"})
	b := harness.StartBackend(t, harness.BackendOptions{Service: "web", Color: "green", ID: "b"})
	t0 := time.Now()
	pr := harness.StartPrometheus(t, []string{a.MetricsAddr()})
	pr.WaitTargetsUp(20 * time.Second)
	t.Logf("first scrape after %v", time.Since(t0))
	for i := 0; i < 3; i++ {
		time.Sleep(time.Duration(i) * 1300 * time.Millisecond)
		t1 := time.Now()
		if i%2 == 0 { pr.SetTargets([]string{a.MetricsAddr(), b.MetricsAddr()}) } else { pr.SetTargets([]string{a.MetricsAddr()}) }
		pr.WaitTargetsUp(20 * time.Second)
		t.Logf("set targets -> up %v", time.Since(t1))
	}
	t2 := time.Now()
	pr.Stop(); pr.Start()
	pr.WaitTargetsUp(20 * time.Second)
	t.Logf("restart -> up %v", time.Since(t2))
}
