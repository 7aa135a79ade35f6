package config

import (
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/bgctl/bg/controlplane/model"
	"github.com/bgctl/bg/controlplane/window"
)

// Pool sends requests carrying a header or cookie value to the candidate
// fleet whatever the split (staff, opted-in beta users).
type Pool struct {
	Header string `mapstructure:"header"`
	Cookie string `mapstructure:"cookie"`
	Value  string `mapstructure:"value"`
}

// Mirror sends a copy of live requests to the candidate (Envoy only).
type Mirror struct {
	// Percent of requests mirrored while a candidate is previewed or
	// switched to; > 0 also gives progressive switches a 0 % dark step.
	Percent int `mapstructure:"percent"`
}

// Gate is a webhook a progressive switch must pass.
type Gate struct {
	Name      string        `mapstructure:"name"`
	URL       string        `mapstructure:"url"`
	Stages    []string      `mapstructure:"stages"`
	Timeout   time.Duration `mapstructure:"timeout"`
	OnFailure string        `mapstructure:"on_failure"`
}

// Windows say when switches may start.
type Windows struct {
	TimeZone string         `mapstructure:"time_zone"`
	Allow    []WindowAllow  `mapstructure:"allow"`
	Freeze   []WindowFreeze `mapstructure:"freeze"`
}

// WindowAllow is a weekly window, e.g. mon-fri 09:00-17:00.
type WindowAllow struct {
	Days []string `mapstructure:"days"`
	From string   `mapstructure:"from"`
	To   string   `mapstructure:"to"`
}

// WindowFreeze is a period with no switches.
type WindowFreeze struct {
	From   string `mapstructure:"from"`
	To     string `mapstructure:"to"`
	Reason string `mapstructure:"reason"`
}

// Gate defaults.
const (
	DefaultGateTimeout   = 10 * time.Second
	DefaultGateOnFailure = model.GateRollback
)

// defaultGates fills gate keys left unset.
func defaultGates(gs []Gate, prefix string, set func(string) bool) {
	for i := range gs {
		at := fmt.Sprintf("%s[%d].", prefix, i)
		if !set(at + "timeout") {
			gs[i].Timeout = DefaultGateTimeout
		}
		if !set(at + "on_failure") {
			gs[i].OnFailure = DefaultGateOnFailure
		}
	}
}

// ModelPools converts to the model's pools.
func (s Service) ModelPools() []model.Pool {
	var out []model.Pool
	for _, p := range s.Pools {
		out = append(out, model.Pool{Header: strings.ToLower(p.Header), Cookie: p.Cookie, Value: p.Value})
	}
	return out
}

// ModelGates converts to the model's gates.
func (s Service) ModelGates() []model.Gate {
	var out []model.Gate
	for _, g := range s.Gates {
		out = append(out, model.Gate{Name: g.Name, URL: g.URL, Stages: slices.Clone(g.Stages), Timeout: model.Duration(g.Timeout), OnFailure: g.OnFailure})
	}
	return out
}

// Schedule parses the service's windows (nil: always open).
func (s Service) Schedule() (*window.Schedule, error) {
	w := s.Windows
	if w.TimeZone == "" && len(w.Allow) == 0 && len(w.Freeze) == 0 {
		return nil, nil
	}
	spec := window.Spec{TimeZone: w.TimeZone}
	for _, a := range w.Allow {
		spec.Allow = append(spec.Allow, window.Allow{Days: a.Days, From: a.From, To: a.To})
	}
	for _, f := range w.Freeze {
		spec.Freeze = append(spec.Freeze, window.Freeze{From: f.From, To: f.To, Reason: f.Reason})
	}
	return window.Parse(spec)
}

func validateRelease(s Service, at string, es *Errors) {
	rolling := model.Strategy(s.Strategy) == model.StrategyRolling
	for i, p := range s.Pools {
		pat := fmt.Sprintf("%s.pools[%d]", at, i)
		switch {
		case (p.Header == "") == (p.Cookie == ""):
			es.add(pat, "set exactly one of header and cookie")
		case p.Header != "" && (strings.ContainsAny(p.Header, " :;=") || strings.HasSuffix(strings.ToLower(p.Header), "-bin")):
			es.add(pat+".header", "%q: must be a header name, not ending in -bin", p.Header)
		case p.Cookie != "" && strings.ContainsAny(p.Cookie, " ;=,"):
			es.add(pat+".cookie", "%q: not a cookie name", p.Cookie)
		}
		if p.Value == "" || strings.ContainsAny(p.Value, "\r\n") || (p.Cookie != "" && strings.ContainsAny(p.Value, " ;,")) {
			es.add(pat+".value", "%q: required, one line (cookie values without spaces, ';' or ',')", p.Value)
		}
		if strings.EqualFold(p.Header, "x-bg-color") {
			es.add(pat+".header", "x-bg-color is bg's own pin header")
		}
	}
	if m := s.Mirror.Percent; m < 0 || m > 100 {
		es.add(at+".mirror.percent", "%d: must be in 0..100", m)
	}
	if rolling && (len(s.Pools) > 0 || s.Mirror.Percent > 0 || len(s.Gates) > 0) {
		es.add(at, "pools, mirror and gates need two fleets; a rolling service has one")
	}
	names := map[string]bool{}
	for i, g := range s.ModelGates() {
		gat := fmt.Sprintf("%s.gates[%d]", at, i)
		if err := g.Validate(); err != nil {
			es.add(gat, "%v", err)
		}
		if names[g.Name] {
			es.add(gat+".name", "%q used twice", g.Name)
		}
		names[g.Name] = true
	}
	if _, err := s.Schedule(); err != nil {
		es.add(at+".windows", "%v", err)
	}
}
