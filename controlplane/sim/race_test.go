//go:build race

package sim

// Under the race detector (scripts/test.sh's unit pass) TestSim runs fewer
// seeds; the script runs all 2,000 in a separate pass without it.
func init() { defaultSeeds = 200 }
