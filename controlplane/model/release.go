package model

import (
	"fmt"
	"net/url"
	"slices"
	"time"
)

// Pool routes matching requests to the candidate fleet whatever the split:
// staff or opted-in beta users see a release before anyone else.
// Exactly one of Header and Cookie is set.
type Pool struct {
	Header string `json:"header,omitempty"`
	Cookie string `json:"cookie,omitempty"`
	Value  string `json:"value"`
}

// String names the pool in status and errors, e.g. "header x-bg-pool=staff".
func (p Pool) String() string {
	if p.Cookie != "" {
		return "cookie " + p.Cookie + "=" + p.Value
	}
	return "header " + p.Header + "=" + p.Value
}

// Gate stages: before the first step, between steps, after the last.
const (
	GatePre  = "pre"
	GateStep = "step"
	GatePost = "post"
)

// What a failing gate does.
const (
	GateRollback = "rollback"
	GateHold     = "hold"
)

// Gate is a webhook a progressive switch must pass at the given stages.
type Gate struct {
	Name      string   `json:"name"`
	URL       string   `json:"url"`
	Stages    []string `json:"stages"`
	Timeout   Duration `json:"timeout"`
	OnFailure string   `json:"on_failure"`
}

// At reports whether the gate runs at stage.
func (g Gate) At(stage string) bool { return slices.Contains(g.Stages, stage) }

// Validate rejects gates that cannot be called.
func (g Gate) Validate() error {
	if g.Name == "" {
		return fmt.Errorf("name: required")
	}
	u, err := url.Parse(g.URL)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return fmt.Errorf("url: %q is not an http(s) URL", g.URL)
	}
	if len(g.Stages) == 0 {
		return fmt.Errorf("stages: at least one of pre, step, post")
	}
	for _, s := range g.Stages {
		if s != GatePre && s != GateStep && s != GatePost {
			return fmt.Errorf("stages: %q is not pre, step or post", s)
		}
	}
	if g.Timeout.D() < 100*time.Millisecond || g.Timeout.D() > 10*time.Minute {
		return fmt.Errorf("timeout: %s is outside 100ms..10m", g.Timeout.D())
	}
	if g.OnFailure != GateRollback && g.OnFailure != GateHold {
		return fmt.Errorf("on_failure: %q is not rollback or hold", g.OnFailure)
	}
	return nil
}

// GateResult is the latest call of one gate at one stage and step.
type GateResult struct {
	Gate     string    `json:"gate"`
	Stage    string    `json:"stage"`
	Step     int       `json:"step"`
	Passed   bool      `json:"passed"`
	Status   int       `json:"status,omitempty"` // HTTP status; 0 when no answer
	Detail   string    `json:"detail,omitempty"` // error or the start of the body
	Attempts int       `json:"attempts"`
	At       time.Time `json:"at"`
}

// String is a one-line account for history and logs.
func (r GateResult) String() string {
	verdict := "passed"
	if !r.Passed {
		verdict = "failed"
	}
	s := fmt.Sprintf("gate %s (%s) %s", r.Gate, r.Stage, verdict)
	if r.Status != 0 {
		s += fmt.Sprintf(": HTTP %d", r.Status)
	}
	if r.Detail != "" {
		s += ": " + r.Detail
	}
	return s
}
