// Package traffic applies switches and aborts: it persists the new state,
// pushes the route, and waits for the proxies to ACK it.
package traffic

import (
	"fmt"

	"github.com/bgctl/bg/controlplane/model"
)

// switchTo moves all traffic to colour to. changed is false when to already
// serves everything, which makes a repeated switch harmless.
func switchTo(t model.Traffic, to model.Color, reason string) (next model.Traffic, changed bool) {
	if t.Serving() == to {
		return t, false
	}
	from := t.Serving()
	if from == "" {
		from = t.Stable // mid-split: the rollback target stays what it was
	}
	next = model.Traffic{
		Stable:     from,
		Target:     to,
		Phase:      model.PhaseSwitched,
		Generation: t.Generation + 1,
		Reason:     reason,
	}
	if to == model.Green {
		next.GreenPercent = 100
	}
	return next, true
}

// abort puts all traffic back on the stable colour. changed is false when
// it already is there, so an abort can be repeated safely.
func abort(t model.Traffic, reason string) (next model.Traffic, changed bool) {
	if t.Serving() == t.Stable {
		return t, false
	}
	next = t
	next.GreenPercent = 0
	if t.Stable == model.Green {
		next.GreenPercent = 100
	}
	next.Phase = model.PhaseAborted
	next.Preview = "" // back to known-good: pools and mirroring off too
	next.Generation = t.Generation + 1
	next.Reason = reason
	return next, true
}

// describe is a one-line summary for logs and errors.
func describe(t model.Traffic) string {
	return fmt.Sprintf("blue %d%% / green %d%% (stable %s, generation %d)", t.Percent(model.Blue), t.Percent(model.Green), t.Stable, t.Generation)
}
