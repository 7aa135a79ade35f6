package rolling

import (
	"cmp"
	"errors"
	"fmt"
	"slices"
	"strconv"

	"github.com/bgctl/bg/controlplane/model"
)

func start(t model.Traffic, fleets model.Membership, e Start) (model.Traffic, []Action, error) {
	if t.ProgressiveRunning() || t.RollRunning() {
		return t, nil, ErrRunning
	}
	if _, err := model.ParseColor(string(e.To)); err != nil {
		return t, nil, err
	}
	if err := e.Params.Validate(); err != nil {
		return t, nil, err
	}
	from := e.To.Other()
	if t.Serving() != from {
		return t, nil, errors.New("a rolling switch needs all traffic on the other colour first")
	}
	slots, err := slotsFor(fleets.Fleet(from), fleets.Fleet(e.To))
	if err != nil {
		return t, nil, err
	}
	gen := t.Generation + 1
	r := &model.Roll{
		ID: "roll-" + strconv.FormatUint(gen, 10), From: from, To: e.To, Params: e.Params,
		Phase: model.RollRolling, Slots: slots, StartedAt: e.Now,
	}
	// A new roll replaces any ended rollout: both would claim Target.
	base := model.Traffic{
		Stable: from, Target: e.To, GreenPercent: t.GreenPercent, Phase: model.PhaseSwitching,
		Generation: t.Generation, Reason: orDefault(e.Reason, "rolling switch to "+string(e.To)),
	}
	forward(r, fleets, e.Now, model.RollVerdict{})
	next, actions := commit(base, nil, r, fleets)
	return next, actions, nil
}

// slotsFor gives each From host a slot, in key order, naming its
// replacement when one is already passing.
func slotsFor(from, to model.Fleet) ([]model.Slot, error) {
	if len(from.Endpoints) == 0 {
		return nil, errors.New("the from fleet has no passing hosts to roll")
	}
	slots := make([]model.Slot, 0, len(from.Endpoints))
	for _, e := range from.Endpoints {
		s := model.Slot{Key: e.SlotKey(), Old: e.ID, State: model.SlotPending}
		if n, ok := byKey(to, s.Key); ok {
			s.New = n.ID
		}
		slots = append(slots, s)
	}
	slices.SortStableFunc(slots, func(a, b model.Slot) int { return cmp.Compare(a.Key, b.Key) })
	for i := 1; i < len(slots); i++ {
		if slots[i].Key == slots[i-1].Key {
			return nil, fmt.Errorf("hosts %s and %s share slot %q", slots[i-1].Old, slots[i].Old, slots[i].Key)
		}
	}
	return slots, nil
}

// byKey finds the host of a fleet in slot key; the first if several.
func byKey(f model.Fleet, key string) (model.Endpoint, bool) {
	for _, e := range f.Endpoints {
		if e.SlotKey() == key {
			return e, true
		}
	}
	return model.Endpoint{}, false
}

func has(f model.Fleet, id string) bool {
	return slices.ContainsFunc(f.Endpoints, func(e model.Endpoint) bool { return e.ID == id })
}
