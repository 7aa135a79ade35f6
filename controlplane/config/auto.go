package config

import "time"

// Trigger says where a service's desired version comes from.
type Trigger string

const (
	// TriggerManual: bg desire / POST /v1/services/S/desired only.
	TriggerManual Trigger = "manual"
	// TriggerVersion: also Consul service meta "version" of the idle
	// fleet, when all its passing members carry one version the serving
	// fleet does not run.
	TriggerVersion Trigger = "version"
)

// DefaultSettle is how long a ready fleet must stay ready before bg
// switches to it by itself.
const DefaultSettle = 30 * time.Second

// Auto is a service's convergence loop (declarative delivery, issue 17).
type Auto struct {
	// Enabled: bg switches by itself to the colour running the desired
	// version. Off by default: a desired version is then only reported.
	Enabled bool    `mapstructure:"enabled"`
	Trigger Trigger `mapstructure:"trigger"`
	// MinMembers is the capacity the new fleet needs (passing members of
	// the desired version); 0: as many as the serving fleet has.
	MinMembers int `mapstructure:"min_members"`
	// Settle is how long the new fleet must stay healthy and at capacity.
	Settle time.Duration `mapstructure:"settle"`
}

// DefaultAuto is the auto block of a service that gives none.
func DefaultAuto() Auto {
	return Auto{Trigger: TriggerManual, Settle: DefaultSettle}
}

// validateAuto checks one service's auto block.
func validateAuto(a Auto, at string, es *Errors) {
	switch a.Trigger {
	case TriggerManual, TriggerVersion, "": // "" only in configs built by hand; Load fills manual
	default:
		es.add(at+".auto.trigger", "%q: must be %s or %s", a.Trigger, TriggerManual, TriggerVersion)
	}
	if a.MinMembers < 0 || a.MinMembers > 10000 {
		es.add(at+".auto.min_members", "%d: must be in 0..10000 (0: the serving fleet's size)", a.MinMembers)
	}
	if a.Settle < 0 || a.Settle > 24*time.Hour {
		es.add(at+".auto.settle", "%s: must be between 0 and 24h", a.Settle)
	}
}
