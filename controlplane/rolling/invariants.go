package rolling

import (
	"fmt"
	"slices"

	"github.com/bgctl/bg/controlplane/model"
)

// violation names the invariant that putting slot i into state next would
// break, judged on the serving set that step would produce, or "". It
// counts the slots as their states say (model.ServingSet): a slot whose
// replacement left counts as still draining or as serving nothing, never
// fewer draining or more serving hosts than the proxies have.
func violation(r *model.Roll, i int, next model.Slot, from, to model.Fleet, verb string) string {
	trial := *r
	trial.Slots = slices.Clone(r.Slots)
	trial.Slots[i] = next
	serving, draining := 0, 0
	for _, e := range model.ServingSet(&trial, from, to) {
		if e.Draining {
			draining++
		} else {
			serving++
		}
	}
	p := r.Params
	switch {
	case serving == 0:
		return fmt.Sprintf("invariant last_serving_host: %s slot %s would leave no serving host", verb, next.Key)
	case serving < p.MinAvailable:
		return fmt.Sprintf("invariant min_available=%d: %s slot %s would leave %d serving hosts", p.MinAvailable, verb, next.Key, serving)
	case draining > p.MaxUnavailable:
		return fmt.Sprintf("invariant max_unavailable=%d: %s slot %s would leave %d hosts draining", p.MaxUnavailable, verb, next.Key, draining)
	}
	return ""
}
