package rolling

import (
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/bgctl/bg/controlplane/model"
)

// Invariant 5, make-before-break on the way back. A replacement that
// vanishes mid-roll (deregistered, critical) puts its slot's old host back
// in the very set the membership read pushes; no other slot's hosts change
// then or later; the roll's next tick records the slot's new state without
// another endpoint change.
func TestVanishedReplacement(t *testing.T) {
	cases := []struct {
		name   string
		states []model.SlotState
		gone   int // 1-based slot whose replacement vanishes
		cause  string
	}{
		{"baking", []model.SlotState{replaced, replaced, baking, pending}, 3, "stopped passing while baking"},
		{"draining", []model.SlotState{replaced, replaced, draining, pending}, 3, "stopped passing while draining"},
		{"replaced, not the latest", []model.SlotState{replaced, replaced, baking, pending}, 1, "stopped passing while replaced"},
		{"replaced, two slots unproven", []model.SlotState{replaced, baking, draining, pending}, 1, "stopped passing while replaced"},
	}
	for _, to := range model.Colors {
		for _, c := range cases {
			t.Run(fmt.Sprintf("to %s: %s", to, c.name), func(t *testing.T) {
				from := to.Other()
				n := len(c.states)
				cur := rolling(to, withMax(params(), 2), phRun, c.states...)
				fullFl := full(to, n)
				lost := fleets(to, upTo(n), without(upTo(n), c.gone))
				key := fmt.Sprintf("s%d", c.gone)

				// The membership read: pushed with the roll state as it is.
				was, now := byKeyOf(served(cur.Roll, fullFl)), byKeyOf(served(cur.Roll, lost))
				want := []model.ServingEndpoint{{Endpoint: host(from, c.gone)}}
				if !slices.Equal(now[key], want) {
					t.Fatalf("%s on the read that lost its replacement: %v, want its old host serving %v", key, now[key], want)
				}
				untouched := func(when string, set map[string][]model.ServingEndpoint, moving ...string) {
					t.Helper()
					for k, hs := range was {
						if k != key && !slices.Contains(moving, k) && !slices.Equal(set[k], hs) {
							t.Errorf("%s: untouched slot %s changed: %v -> %v", when, k, hs, set[k])
						}
					}
				}
				untouched("membership read", now)

				// The next tick records it: the roll turns back, the slot restores,
				// and the proxies already have that set.
				out, acts, err := Decide(cur, lost, Tick{Now: at(every)})
				if err != nil {
					t.Fatal(err)
				}
				checkOut(t, cur, deepCopy(cur), out, acts)
				if out.Roll.Phase != phBack || !strings.Contains(out.Roll.Cause, c.cause) {
					t.Errorf("roll %s cause %q, want rolling back on %q", out.Roll.Phase, out.Roll.Cause, c.cause)
				}
				if st := out.Roll.Slots[c.gone-1].State; st != restored {
					t.Errorf("%s: %s after the tick, want restored", key, st)
				}
				if got := byKeyOf(served(out.Roll, lost)); !slices.Equal(got[key], want) {
					t.Errorf("%s after the tick: %v, want %v", key, got[key], want)
				}
				// Other slots may start restoring on this tick (reverse order, at
				// most max_unavailable); every other slot keeps its hosts, and if
				// none restores the tick pushes nothing: the read already did.
				var moving []string
				for i, s := range out.Roll.Slots {
					if s.Key != key && s.State != cur.Roll.Slots[i].State {
						if s.State != restoring {
							t.Errorf("%s: %s -> %s on the tick", s.Key, cur.Roll.Slots[i].State, s.State)
						}
						moving = append(moving, s.Key)
					}
				}
				untouched("the tick", byKeyOf(served(out.Roll, lost)), moving...)
				if len(moving) == 0 && !slices.Equal(acts, p) {
					t.Errorf("tick actions %v, want %v: the membership read already pushed this set", acts, p)
				}

				// Walking home: only slots being restored change, in reverse order;
				// pending slots never move.
				for d := 2 * every; out.RollRunning(); d += every {
					if d > time.Hour {
						t.Fatalf("roll did not end: %s", dump(out))
					}
					prev := out
					out, _, err = Decide(prev, lost, Tick{Now: at(d)})
					if err != nil {
						t.Fatal(err)
					}
					for _, s := range out.Roll.Slots {
						if s.State == pending && !slices.Equal(byKeyOf(served(out.Roll, lost))[s.Key], was[s.Key]) {
							t.Errorf("at %s: pending slot %s moved", d, s.Key)
						}
					}
				}
				if out.Roll.Phase != model.RollRolledBack {
					t.Errorf("ended %s, want rolled_back", out.Roll.Phase)
				}
			})
		}
	}
}
