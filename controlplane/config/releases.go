package config

import (
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/bgctl/bg/controlplane/model"
	"github.com/bgctl/bg/controlplane/release"
)

// DefaultMaxParallel is how many members of one release switch at once
// unless the release or release.max_parallel says otherwise.
const DefaultMaxParallel = 4

// DefaultReleaseKeep is how many ended releases stay stored (release.keep):
// the leader deletes older ended ones; running ones are never deleted.
const DefaultReleaseKeep = 50

// ReleaseGroup is a named set of services released together.
type ReleaseGroup struct {
	Name     string   `mapstructure:"name"`
	Services []string `mapstructure:"services"`
	// Gates are the release's own webhooks: pre gates run before its first
	// member starts, post gates after its last member is promoted. The
	// schema is a service's; step is refused (a release has no steps).
	Gates []Gate `mapstructure:"gates"`
}

// ModelGates converts the group's gates to the model's.
func (g ReleaseGroup) ModelGates() []model.Gate {
	return Service{Gates: g.Gates}.ModelGates()
}

// GroupGates maps each configured release group's name to its gates
// (only groups that have some).
func (c *Config) GroupGates() map[string][]model.Gate {
	out := map[string][]model.Gate{}
	for _, g := range c.Releases {
		if len(g.Gates) > 0 {
			out[g.Name] = g.ModelGates()
		}
	}
	return out
}

// defaultReleaseGroups fills the release groups' gate keys left unset.
func defaultReleaseGroups(gs []ReleaseGroup, set func(key string) bool) {
	for i := range gs {
		defaultGates(gs[i].Gates, fmt.Sprintf("releases[%d].gates", i), set)
	}
}

// Release tunes releases (several services switched together, in
// dependency order).
type Release struct {
	// MaxParallel caps the members of one release switching at once.
	MaxParallel int `mapstructure:"max_parallel"`
	// Keep is how many ended releases stay stored (and listed by bg
	// release history); older ended ones are deleted by the leader.
	Keep int `mapstructure:"keep"`
	// WatchConsumers judges, while a member of a release switches, every
	// configured service that calls it (depends_on) on its own request and
	// error counters against its ratio before the switch began; a consumer
	// that fails more fails the provider's switch (consumer_regressed).
	WatchConsumers bool `mapstructure:"watch_consumers"`
	// Consumers tunes that test.
	Consumers ConsumerTest `mapstructure:"consumers"`
}

// DefaultConsumerTest is release.consumers unless set.
var DefaultConsumerTest = ConsumerTest{Lookback: 10 * time.Minute, Confidence: 0.99, Margin: 0.5, MinErrors: 5}

// ConsumerTest is release.consumers: the test of release.watch_consumers
// (judge.Consumer; docs/releases.md, "Watching consumers").
type ConsumerTest struct {
	// Lookback is the consumer's reference before its provider's switch.
	Lookback time.Duration `mapstructure:"lookback"`
	// Confidence: a provider is failed wrongly in at most 1−confidence of
	// switches, if the consumer's error ratio is steady.
	Confidence float64 `mapstructure:"confidence"`
	// Margin tolerates errors up to the reference's bound × (1+margin).
	Margin float64 `mapstructure:"margin"`
	// MinErrors: errors since the switch began before a consumer can fail it.
	MinErrors int `mapstructure:"min_errors"`
}

// Dependencies maps every configured service to the services it calls.
func (c *Config) Dependencies() map[string][]string {
	out := make(map[string][]string, len(c.Services))
	for _, s := range c.Services {
		out[s.Name] = slices.Clone(s.DependsOn)
	}
	return out
}

// Groups maps each configured release group's name to its services.
func (c *Config) Groups() map[string][]string {
	out := make(map[string][]string, len(c.Releases))
	for _, g := range c.Releases {
		out[g.Name] = slices.Clone(g.Services)
	}
	return out
}

// validateReleases checks depends_on (names, self, duplicates, cycles),
// the release groups and release.max_parallel.
func (c *Config) validateReleases(es *Errors) {
	if n := c.Release.MaxParallel; n < 1 {
		es.add("release.max_parallel", "%d: must be at least 1", n)
	}
	if n := c.Release.Keep; n < 1 {
		es.add("release.keep", "%d: must be at least 1 (ended releases kept stored)", n)
	}
	ct := c.Release.Consumers
	if ct.Lookback < time.Minute || ct.Lookback > 24*time.Hour {
		es.add("release.consumers.lookback", "%s: must be between 1m and 24h", ct.Lookback)
	}
	if !(ct.Confidence >= 0.9 && ct.Confidence < 1) {
		es.add("release.consumers.confidence", "%v: must be at least 0.9 and below 1", ct.Confidence)
	}
	if !(ct.Margin >= 0 && ct.Margin <= 10) {
		es.add("release.consumers.margin", "%v: must be between 0 and 10", ct.Margin)
	}
	if ct.MinErrors < 1 {
		es.add("release.consumers.min_errors", "%d: must be at least 1", ct.MinErrors)
	}
	if c.Release.WatchConsumers && c.Prometheus.Address == "" {
		es.add("release.watch_consumers", "needs prometheus.address: consumers are judged on their counters")
	}
	known := map[string]int{}
	for i, s := range c.Services {
		if _, dup := known[s.Name]; !dup && s.Name != "" {
			known[s.Name] = i
		}
	}
	deps := map[string][]string{}
	graphOK := true
	for i, s := range c.Services {
		seen := map[string]bool{}
		for j, d := range s.DependsOn {
			at := fmt.Sprintf("services[%d].depends_on[%d]", i, j)
			switch _, ok := known[d]; {
			case d == s.Name:
				es.add(at, "%q: a service cannot depend on itself", d)
				graphOK = false
			case !ok:
				es.add(at, "%q: not a configured service", d)
				graphOK = false
			case seen[d]:
				es.add(at, "%q: listed twice", d)
			}
			seen[d] = true
		}
		if _, ok := known[s.Name]; ok {
			deps[s.Name] = s.DependsOn
		}
	}
	if graphOK {
		if _, err := release.Levels(deps); err != nil {
			// Levels names the cycle from its alphabetically first service.
			first := strings.TrimSpace(strings.Split(strings.TrimPrefix(err.Error(), "depends_on cycle: "), "→")[0])
			at := "services"
			if i, ok := known[first]; ok {
				at = fmt.Sprintf("services[%d].depends_on", i)
			}
			es.add(at, "%v", err)
		}
	}
	groups := map[string]int{}
	for i, g := range c.Releases {
		at := fmt.Sprintf("releases[%d]", i)
		if msg := checkServiceName(g.Name); msg != "" {
			es.add(at+".name", "%s", msg)
		} else if j, dup := groups[g.Name]; dup {
			es.add(at+".name", "%q already used by releases[%d]", g.Name, j)
		} else {
			groups[g.Name] = i
		}
		if len(g.Services) == 0 {
			es.add(at+".services", "at least one service")
		}
		seen := map[string]bool{}
		for j, s := range g.Services {
			sat := fmt.Sprintf("%s.services[%d]", at, j)
			if _, ok := known[s]; !ok {
				es.add(sat, "%q: not a configured service", s)
			} else if seen[s] {
				es.add(sat, "%q: listed twice", s)
			}
			seen[s] = true
		}
		names := map[string]bool{}
		for j, mg := range g.ModelGates() {
			gat := fmt.Sprintf("%s.gates[%d]", at, j)
			if err := mg.Validate(); err != nil {
				es.add(gat, "%v", err)
			}
			if mg.At(model.GateStep) {
				es.add(gat+".stages", "step: a release has no steps; its gates run pre (before the first member) or post (after the last)")
			}
			if names[mg.Name] {
				es.add(gat+".name", "%q used twice", mg.Name)
			}
			names[mg.Name] = true
		}
	}
}
