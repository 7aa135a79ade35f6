package apiv1

import "github.com/bgctl/bg/controlplane/release"

// ReleaseRequest is the body of POST /v1/releases: start a release of the
// named services (or every configured service with All, or a configured
// group by Group), each to its idle colour unless To names one.
type ReleaseRequest struct {
	// Name names the release ("checkout"); with Group and no Name, the
	// group's name.
	Name     string   `json:"name,omitempty"`
	Services []string `json:"services,omitempty"`
	All      bool     `json:"all,omitempty"`
	Group    string   `json:"group,omitempty"` // a configured releases[].name
	To       string   `json:"to,omitempty"`    // "" = each service's idle colour
	// MaxParallel caps members switching at once; 0 = release.max_parallel.
	MaxParallel int    `json:"max_parallel,omitempty"`
	Force       bool   `json:"force,omitempty"`
	Reason      string `json:"reason,omitempty"`
}

// ReleaseCommand is the body of POST /v1/releases/{ID}/abort, pause or
// resume.
type ReleaseCommand struct {
	Reason string `json:"reason,omitempty"`
}

// ReleaseStatus answers every release endpoint: the stored release, its
// start order (services per dependency level), and each member service's
// split now.
type ReleaseStatus struct {
	Release release.Release `json:"release"`
	Order   [][]string      `json:"order"`
	// Weights is each member service's split as this replica serves it.
	Weights map[string]Weights `json:"weights"`
}
