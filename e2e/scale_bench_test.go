package e2e

import (
	"testing"
	"time"

	"github.com/bgctl/bg/e2e/scale"
)

// TestScaleBench runs the scale bench of GitHub issue 11 (e2e/cmd/bg-scale)
// at a CI size: real Consul, `bg serve` and a bare go-control-plane server,
// 600 simulated proxies following 5 of 300 services each. It fails on
// correctness only (a proxy without its full chains, a switch that missed
// a subscriber, a server that never became ready) and logs the table; the
// figures themselves are noisy on a shared machine.
func TestScaleBench(t *testing.T) {
	res := scale.Run(t, scale.Options{
		Services: 300,
		Proxies:  600,
		Idle:     5 * time.Second,
		Switches: 5,
		BareBin:  scale.BuildCommand(t),
	})
	t.Logf("scale bench:\n%s", res.Table())
	for _, p := range res.Problems {
		t.Error(p)
	}
}
