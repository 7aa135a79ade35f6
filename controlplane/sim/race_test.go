//go:build race

package sim

// Under the race detector (scripts/test.sh's unit pass) TestSim and
// TestSimConverge run fewer seeds; the script runs all of them in a
// separate pass without it.
func init() { defaultSeeds, convergeSeeds = 200, 60 }
