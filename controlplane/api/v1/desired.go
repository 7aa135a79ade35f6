package apiv1

import (
	"time"

	"github.com/bgctl/bg/controlplane/model"
)

// DesireRequest is the body of POST /v1/services/{S}/desired: the version
// the service should run (declarative delivery). Retry, with the version
// desired now (or none), clears its failure so bg tries it again.
type DesireRequest struct {
	Version string `json:"version,omitempty"`
	Reason  string `json:"reason,omitempty"`
	Retry   bool   `json:"retry,omitempty"`
}

// Convergence says where a service stands against its desired version:
// GET /v1/services/{S}/desired, and the "converge" section of its status.
type Convergence struct {
	// Auto: the loop switches by itself (services[].auto.enabled); off, it
	// only reports.
	Auto    bool                `json:"auto"`
	Desired *model.Desired      `json:"desired,omitempty"`
	Serving []string            `json:"serving_versions"`
	State   model.ConvergeState `json:"state"`
	// Detail is State in words: "waiting for capacity (3/4 passing on
	// green)", "settling (12s left)", "failed (rolled back: …)".
	Detail string      `json:"detail"`
	To     model.Color `json:"to,omitempty"`
	Have   int         `json:"have,omitempty"`
	Want   int         `json:"want,omitempty"`
	// SettleLeft is in whole seconds; WindowUntil when the window opens.
	SettleLeft  model.Duration `json:"settle_left,omitempty"`
	WindowUntil time.Time      `json:"window_until,omitzero"`
	// LastError is why the loop's last attempt to start a switch failed.
	LastError string `json:"last_error,omitempty"`
	// PendingSince: not converged since then (zero when converged).
	PendingSince time.Time `json:"pending_since,omitzero"`
}

// DesireResult answers POST /v1/services/{S}/desired.
type DesireResult struct {
	Changed     bool        `json:"changed"`
	Convergence Convergence `json:"convergence"`
}

// DesireSetRequest is the body of POST /v1/desired: several services'
// desired versions at once (bg desire --set web=v2,api=v7). They converge
// together as one release, in dependency order, rolled back together.
type DesireSetRequest struct {
	Set    map[string]string `json:"set"`
	Reason string            `json:"reason,omitempty"`
}

// DesireSetResult answers POST /v1/desired.
type DesireSetResult struct {
	Changed  bool                    `json:"changed"`
	Services map[string]DesireResult `json:"services"`
}
