package apiv1

import (
	"github.com/bgctl/bg/controlplane/judge"
	"github.com/bgctl/bg/controlplane/model"
)

// ChangeRequest is the body of POST /v1/services/{S}/switch, abort, pause,
// resume or promote. Durations are Go durations ("30s").
type ChangeRequest struct {
	// To is the colour of a switch (switch only); empty: the idle colour,
	// chosen by the control plane.
	To      string `json:"to,omitempty"`
	Force   bool   `json:"force,omitempty"`
	Reason  string `json:"reason,omitempty"`
	Timeout string `json:"timeout,omitempty"` // default from config

	// Switch only.
	Instant  bool   `json:"instant,omitempty"`
	DryRun   bool   `json:"dry_run,omitempty"`
	Steps    []int  `json:"steps,omitempty"`
	Bake     string `json:"bake,omitempty"`
	Interval string `json:"interval,omitempty"`
	// Window is retired (switches count from their own start); a request
	// that sets it is refused with that reason.
	Window string `json:"window,omitempty"`
}

// PreviewRequest is the body of POST /v1/services/{S}/preview.
type PreviewRequest struct {
	To      string `json:"to,omitempty"` // default: the idle colour
	Off     bool   `json:"off,omitempty"`
	Force   bool   `json:"force,omitempty"`
	Reason  string `json:"reason,omitempty"`
	Timeout string `json:"timeout,omitempty"`
}

// FleetSample is one fleet's counter totals (since each process began),
// or why they could not be read.
type FleetSample struct {
	Color  model.Color   `json:"color"`
	Sample *judge.Sample `json:"sample,omitempty"`
	Series int           `json:"series,omitempty"` // request series read
	Error  string        `json:"error,omitempty"`
}

// DryRunReport answers a switch with dry_run: what the switch would do,
// with each query run once. Verdict is no longer set (a switch judges
// counts from its own start); the field stays for old clients.
type DryRunReport struct {
	Service   string         `json:"service"`
	From      model.Color    `json:"from"`
	To        model.Color    `json:"to"`
	Plan      model.Plan     `json:"plan"`
	Candidate FleetSample    `json:"candidate"`
	Baseline  FleetSample    `json:"baseline"`
	Verdict   *judge.Verdict `json:"verdict,omitempty"`
}

// History limits of GET /v1/services/{S}/history?limit=N: the default
// answers "what happened lately"; the maximum bounds one response (each
// entry is a few hundred bytes).
const (
	DefaultHistoryLimit = 100
	MaxHistoryLimit     = 10000
)

// ActorHeader names who sends a command, e.g. "cli:ann@laptop". It is a
// claim, not proof: anyone holding the token can set it, so the history
// also records the address the request came from.
const ActorHeader = "X-BG-Actor"
