package judge

import (
	"math/rand/v2"
	"testing"
)

// The default plan (config.DefaultAnalysis) as the judge sees it: steps of
// 1, 5, 25, 50% held 60 s each, an analysis every 10 s over a 60 s window.
// Windows overlap, so the 24 analyses are far from independent.
var (
	planSteps       = []float64{0.01, 0.05, 0.25, 0.5}
	analysesPerStep = 6
	binsPerWindow   = 6
	binSeconds      = 10.0
)

// switchFailRate returns the share of whole switches with any Fail.
func switchFailRate(seed uint64, switches int, rps, pc, pb float64, p Params) float64 {
	type bin struct{ c, b Sample }
	r := rand.New(rand.NewPCG(seed, 0x737769746368))
	failed := 0
	for range switches {
		var bins []bin
	plan:
		for _, step := range planSteps {
			for range analysesPerStep {
				cn, bn := int(rps*binSeconds*step), int(rps*binSeconds*(1-step))
				bins = append(bins, bin{
					Sample{float64(cn), float64(draw(r, cn, pc))},
					Sample{float64(bn), float64(draw(r, bn, pb))},
				})
				var c, b Sample
				for _, x := range bins[max(0, len(bins)-binsPerWindow):] {
					c.Requests, c.Errors = c.Requests+x.c.Requests, c.Errors+x.c.Errors
					b.Requests, b.Errors = b.Requests+x.b.Requests, b.Errors+x.b.Errors
				}
				if Judge(c, b, p).Outcome == Fail {
					failed++
					break plan
				}
			}
		}
	}
	return float64(failed) / float64(switches)
}

// Confidence is per analysis; a switch is many analyses. Logged for
// docs/judge.md, not asserted: the numbers depend on the plan, not the judge.
func TestSimPerSwitch(t *testing.T) {
	for i, conf := range []float64{0.99, 0.999} {
		p := DefaultParams()
		p.Confidence = conf
		for j, rps := range []float64{500, 5000} {
			for k, pr := range rates {
				seed := uint64(1000 + 100*i + 10*j + k)
				falseRate := switchFailRate(seed, 1000, rps, pr, pr, p)
				detect := switchFailRate(seed+5000, 200, rps, 2*pr, pr, p)
				t.Logf("per switch: confidence %v, %v req/s, rate %.1f%%: false rollbacks %.1f%% of 1000, 2× detected %.1f%% of 200",
					conf, rps, 100*pr, 100*falseRate, 100*detect)
			}
		}
	}
}
