// Package notify tells people what bg did: switches started, stepped,
// held, promoted, rolled back or aborted, overrides, and releases, sent to
// webhooks, Slack or Microsoft Teams. The leader builds events from each
// stored change (Classify, pure) and a Notifier delivers them in the
// background, with retries, never holding up a switch or a rollback.
package notify

import (
	"fmt"
	"slices"
	"time"

	"github.com/bgctl/bg/controlplane/model"
)

// Kind is what happened. Its values are the config's events.
type Kind string

const (
	Started           Kind = "started"     // a switch began (progressive or instant)
	Step              Kind = "step"        // a progressive switch moved to its next step
	Held              Kind = "held"        // a progressive switch was paused
	RolledBack        Kind = "rolled_back" // traffic went back to the stable colour on a failure
	Promoted          Kind = "promoted"    // the candidate serves 100 %
	Aborted           Kind = "aborted"     // an operator aborted the switch
	Override          Kind = "override"    // a forced command, recorded as an override
	ReleaseStarted    Kind = "release_started"
	ReleasePromoted   Kind = "release_promoted"
	ReleaseRolledBack Kind = "release_rolled_back"
	ReleaseAborted    Kind = "release_aborted"
)

// Kinds lists every kind, in lifecycle order.
var Kinds = []Kind{Started, Step, Held, RolledBack, Promoted, Aborted, Override, ReleaseStarted, ReleasePromoted, ReleaseRolledBack, ReleaseAborted}

// Validate rejects an unknown kind.
func (k Kind) Validate() error {
	if slices.Contains(Kinds, k) {
		return nil
	}
	return fmt.Errorf("unknown event %q (want one of %v)", k, Kinds)
}

// Event is one notification's content.
type Event struct {
	Kind    Kind   `json:"event"`
	Service string `json:"service,omitempty"`
	Release string `json:"release,omitempty"`
	// From and To are the colours of the switch (From serves before).
	From model.Color `json:"from,omitempty"`
	To   model.Color `json:"to,omitempty"`
	// Split is the share of traffic on green after the change, in percent.
	Split int `json:"green_percent"`
	// Step and Steps: the progressive switch's step (1-based) of Steps.
	Step  int `json:"step,omitempty"`
	Steps int `json:"steps,omitempty"`
	// Verdict is the last analysis' outcome and Reason why this happened.
	Verdict    string      `json:"verdict,omitempty"`
	Reason     string      `json:"reason,omitempty"`
	Cause      model.Cause `json:"cause,omitempty"`
	Actor      string      `json:"actor,omitempty"`
	Generation uint64      `json:"generation,omitempty"`
	At         time.Time   `json:"at"`
	// Link is where to look: the status of the service or release.
	Link string `json:"link,omitempty"`
}

// Classify says what a stored change from cur to next (recorded as e)
// means to people: none, one or a few events. Pure.
func Classify(service string, cur, next model.Traffic, e model.HistoryEntry) []Event {
	base := Event{Service: service, Release: next.Release, Split: next.GreenPercent, Reason: e.Reason,
		Actor: e.Actor, Generation: next.Generation, At: e.At}
	var out []Event
	add := func(k Kind, mod func(*Event)) {
		ev := base
		ev.Kind = k
		if mod != nil {
			mod(&ev)
		}
		out = append(out, ev)
	}
	r, old := next.Rollout, cur.Rollout
	if old != nil && r != nil && old.ID != r.ID {
		old = nil
	}
	if r != nil {
		base.From, base.To, base.Steps, base.Step = r.From, r.To, len(r.Plan.Steps), r.Step+1
		if n := len(r.Verdicts); n > 0 {
			base.Verdict = string(r.Verdicts[n-1].Outcome)
		}
		if r.Reason != "" {
			base.Reason = r.Reason
		}
		base.Cause = r.Cause
		switch {
		case old == nil:
			add(Started, nil)
		case r.Phase == old.Phase && r.Step > old.Step && r.Phase == model.RolloutProgressing:
			add(Step, nil)
		}
		if old == nil || old.Phase != r.Phase {
			switch r.Phase {
			case model.RolloutPaused:
				add(Held, nil)
			case model.RolloutPromoted:
				add(Promoted, nil)
			case model.RolloutAborted:
				add(Aborted, nil)
			case model.RolloutRollingBack, model.RolloutRolledBack:
				if old == nil || (old.Phase != model.RolloutRollingBack && old.Phase != model.RolloutRolledBack) {
					add(RolledBack, nil)
				}
			}
		}
	} else if instantSwitch(cur, next) {
		base.From, base.To = cur.Serving(), next.Serving()
		add(Started, nil)
		add(Promoted, nil)
	}
	if e.Override != "" {
		add(Override, func(ev *Event) { ev.Reason = e.Override + "; " + e.Reason })
	}
	return out
}

// instantSwitch: all traffic moved from one colour to the other at once.
func instantSwitch(cur, next model.Traffic) bool {
	from, to := cur.Serving(), next.Serving()
	return from != "" && to != "" && from != to && next.Generation > cur.Generation
}

// Matches reports whether a notification for events and services (empty:
// all) wants ev.
func Matches(ev Event, events []Kind, services []string) bool {
	if len(events) > 0 && !slices.Contains(events, ev.Kind) {
		return false
	}
	if len(services) > 0 && ev.Service != "" && !slices.Contains(services, ev.Service) {
		return false
	}
	return true
}
