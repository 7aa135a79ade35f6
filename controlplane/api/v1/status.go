// Package apiv1 holds the JSON types that cross bg's admin API (/v1): what
// the control plane answers and what a client sends. The admin server and
// the CLI client both use them, so the two cannot drift apart. Field names
// are part of bg's interface: scripts (docs/promote.sh) and tests parse them.
//
// Policy lives in the control plane, not here: these types carry requests
// and answers, and decide nothing.
package apiv1

import (
	"time"

	"github.com/bgctl/bg/controlplane/acks"
	"github.com/bgctl/bg/controlplane/membership"
	"github.com/bgctl/bg/controlplane/model"
	"github.com/bgctl/bg/controlplane/xds"
)

// Weights is the split in percent.
type Weights struct {
	Blue  int `json:"blue"`
	Green int `json:"green"`
}

// Member is one passing instance.
type Member struct {
	ID      string `json:"id"`
	Address string `json:"address"`
	Version string `json:"version,omitempty"`
}

// FleetStatus summarises one colour's passing instances.
type FleetStatus struct {
	// Healthy counts the passing instances of Consul's last read; Versions
	// and Members list them.
	Healthy  int      `json:"healthy"`
	Versions []string `json:"versions"`
	Members  []Member `json:"members"`
	// Served counts the endpoints proxies get. It differs from Healthy only
	// while Held: a read lost most of this fleet, and its last known members
	// are served until Held.Until (never emptied while it carries traffic).
	Served int              `json:"served"`
	Held   *membership.Held `json:"held,omitempty"`
}

// ProxyCounts says how many proxies use the service's route and how many
// hold its current generation.
type ProxyCounts struct {
	Connected int `json:"connected"`
	Acked     int `json:"acked"`
}

// WindowStatus says whether a switch may start now and, if not, when.
type WindowStatus struct {
	Open     bool      `json:"open"`
	Reason   string    `json:"reason,omitempty"`
	NextOpen time.Time `json:"next_open,omitzero"`
	Schedule string    `json:"schedule"`
}

// Status is what `bg status` shows for one service: GET /v1/services/{S}
// (and, as a list, GET /v1/services).
type Status struct {
	Service    string         `json:"service"`
	Strategy   model.Strategy `json:"strategy"`
	Weights    Weights        `json:"weights"`
	Stable     model.Color    `json:"stable"`
	Target     model.Color    `json:"target,omitempty"`
	Phase      model.Phase    `json:"phase"`
	Generation uint64         `json:"generation"`
	Reason     string         `json:"reason,omitempty"`
	// SwitchID names the latest switch (instant, progressive or roll);
	// Release is the release that started it ("" when started alone).
	SwitchID string                      `json:"switch_id,omitempty"`
	Release  string                      `json:"release,omitempty"`
	Fleets   map[model.Color]FleetStatus `json:"fleets"`
	// Proxies counts every replica's proxies using the route and those
	// holding the current generation; Acks has them per replica.
	Proxies ProxyCounts  `json:"proxies"`
	Acks    *acks.Result `json:"acks,omitempty"`
	// MembershipReadAt is the last successful Consul read.
	MembershipReadAt time.Time `json:"membership_read_at,omitzero"`
	Ignored          []string  `json:"ignored_instances,omitempty"`
	// Switch is the last progressive switch: plan, step, verdicts, why it holds or ended.
	Switch *model.Rollout `json:"switch,omitempty"`
	// Roll is the last host-by-host switch of a stateful service: each slot's
	// old host and replacement and where they stand.
	Roll *model.Roll `json:"roll,omitempty"`
	// Pools are the service's canary pools; Candidate is where they and
	// mirrored requests go now ("" = off); Preview is set by bg preview.
	Pools         []string    `json:"pools,omitempty"`
	MirrorPercent int         `json:"mirror_percent,omitempty"`
	Candidate     model.Color `json:"candidate,omitempty"`
	Preview       model.Color `json:"preview,omitempty"`
	// Window says whether a switch may start now (absent: always).
	Window *WindowStatus `json:"window,omitempty"`
	// Control says which replica answered, whether it acts, and whether it
	// reaches Consul: while no leader reaches Consul, switches are paused.
	Control any `json:"control,omitempty"`
	// Notifications are the notification targets whose last delivery
	// failed (on the replica that answered; only the leader sends).
	Notifications []NotificationStatus `json:"notifications,omitempty"`
	// Unsaved: this replica serves a rollback it decided but could not store
	// yet (Consul unreachable, leadership lost); it keeps serving it and
	// stores it as soon as it can. No stored state undoes it meanwhile.
	Unsaved bool `json:"unsaved,omitempty"`
	// NoEnvoyListener: the service has no port, so Envoy gets no listener
	// for it; only proxyless gRPC clients reach it.
	NoEnvoyListener bool `json:"no_envoy_listener,omitempty"`
	// SessionsAtRisk: for a rolling service, the connected proxies (of
	// every replica) whose client may not keep sessions through a roll
	// (xds.ClientSessions: it places hosts by address, or only does by
	// hash_key when configured to, or is unknown); Unlisted beyond the
	// report caps. Empty for blue-green services.
	SessionsAtRisk         []xds.ProxyInfo `json:"sessions_at_risk,omitempty"`
	SessionsAtRiskUnlisted int             `json:"sessions_at_risk_unlisted,omitempty"`
	// ConfigNote says when the service's config and what is served differ
	// after a reload: added but not served yet, removed from the config but
	// served until its switch ends, or new pools/mirror waiting for its
	// switch to end.
	ConfigNote string `json:"config_note,omitempty"`
	// Reload is the config in force on this replica and its last reload.
	Reload *ReloadStatus `json:"reload,omitempty"`
	// Converge: the desired version and why the service is not running it
	// yet (absent when none is desired and auto is off).
	Converge *Convergence `json:"converge,omitempty"`
}

// Result answers a command (switch, abort, pause, resume, promote,
// preview): what changed and whether every subscribed proxy holds it.
// HTTP 200 when every proxy ACKed, 504 with the same body when not.
type Result struct {
	Changed bool          `json:"changed"`
	Status  Status        `json:"status"`
	Acks    xds.AckResult `json:"acks"`
}

// NotificationStatus is a notification target's last failed delivery.
type NotificationStatus struct {
	Name      string    `json:"name"`
	LastError string    `json:"last_error"`
	At        time.Time `json:"at"`
}
