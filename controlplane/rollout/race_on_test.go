//go:build race

package rollout_test

// raceDetector: statistical simulations skip themselves under -race (they
// are pure arithmetic, 5–10× slower there); scripts/test.sh runs them in
// their own step without it.
const raceDetector = true
