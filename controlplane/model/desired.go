package model

import (
	"errors"
	"fmt"
	"time"
)

// MaxVersionLen bounds a desired version (Consul meta values are at most
// 512 bytes; versions are tags or SHAs).
const MaxVersionLen = 128

// ValidateVersion checks a version string: 1..128 characters of letters,
// digits and . _ - + : (a tag, a semver or a SHA).
func ValidateVersion(v string) error {
	if v == "" {
		return errors.New("version: empty")
	}
	if len(v) > MaxVersionLen {
		return fmt.Errorf("version: %d characters, at most %d", len(v), MaxVersionLen)
	}
	for i := 0; i < len(v); i++ {
		c := v[i]
		ok := c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '.' || c == '_' || c == '-' || c == '+' || c == ':'
		if !ok {
			return fmt.Errorf("version: %q has character %q (want letters, digits and . _ - + :)", v, c)
		}
	}
	return nil
}

// FailCause says why a converged switch did not bring a version to 100 %.
type FailCause string

const (
	// FailRolledBack: the switch's analysis (or a roll's) rolled it back.
	FailRolledBack FailCause = "rolled_back"
	// FailAborted: an operator aborted the converging switch; bg does not
	// start it again by itself.
	FailAborted FailCause = "aborted"
	// FailOverridden: an operator switched the service explicitly; bg does
	// not undo that by itself.
	FailOverridden FailCause = "overridden"
)

// Validate refuses an unknown cause.
func (c FailCause) Validate() error {
	switch c {
	case FailRolledBack, FailAborted, FailOverridden:
		return nil
	}
	return fmt.Errorf("unknown failure cause %q", c)
}

// DesiredFailure remembers that the desired version failed: bg does not
// switch to it again until another version is desired or a retry.
type DesiredFailure struct {
	Cause    FailCause `json:"cause"`
	Reason   string    `json:"reason"`
	SwitchID string    `json:"switch_id"`
	At       time.Time `json:"at"`
}

// DesireEvent is one change of a service's desired state (its log).
type DesireEvent struct {
	At    time.Time `json:"at"`
	Actor string    `json:"actor"`
	What  string    `json:"what"` // e.g. "desired", "retry", "started web@7", "failed: rolled back"
	// Version is the desired version the event is about.
	Version string `json:"version"`
	Reason  string `json:"reason,omitempty"`
}

// MaxDesireLog bounds Desired.Log.
const MaxDesireLog = 20

// Desired is the version a service should run (issue 17, declarative
// delivery), stored next to its traffic state. The convergence loop
// switches to the colour running it.
type Desired struct {
	Version string    `json:"version"`
	Reason  string    `json:"reason,omitempty"`
	Actor   string    `json:"actor"`
	At      time.Time `json:"at"`
	// Previous is the version the service served when this one was
	// desired (the version trigger never desires it back by itself).
	Previous string `json:"previous,omitempty"`
	// Group names the services desired together (bg desire --set), this
	// one included, sorted: they converge as one release, in dependency
	// order, rolled back together. Empty: the service converges alone.
	Group []string `json:"group,omitempty"`
	// Attempt is the switch the loop started for this version ("release:ID"
	// for a group's release); Failed is set when it rolled back or was aborted.
	Attempt string          `json:"attempt,omitempty"`
	Failed  *DesiredFailure `json:"failed,omitempty"`
	// Log is the newest changes, oldest first, at most MaxDesireLog.
	Log []DesireEvent `json:"log,omitempty"`
}

// Validate checks a desired state before it is stored or after it is read.
func (d Desired) Validate() error {
	if err := ValidateVersion(d.Version); err != nil {
		return err
	}
	if d.Actor == "" {
		return errors.New("desired: no actor")
	}
	if d.At.IsZero() {
		return errors.New("desired: no time")
	}
	if len(d.Reason) > 500 {
		return errors.New("desired: reason longer than 500 characters")
	}
	if f := d.Failed; f != nil {
		if err := f.Cause.Validate(); err != nil {
			return fmt.Errorf("desired.failed: %w", err)
		}
	}
	for i, g := range d.Group {
		if g == "" || i > 0 && d.Group[i-1] >= g {
			return fmt.Errorf("desired.group: %q: want distinct names, sorted", d.Group)
		}
	}
	if len(d.Log) > MaxDesireLog {
		return fmt.Errorf("desired: log holds %d events, at most %d", len(d.Log), MaxDesireLog)
	}
	return nil
}

// Logged returns d with ev appended to its log (the oldest dropped past
// MaxDesireLog).
func (d Desired) Logged(ev DesireEvent) Desired {
	log := append(append([]DesireEvent(nil), d.Log...), ev)
	if len(log) > MaxDesireLog {
		log = log[len(log)-MaxDesireLog:]
	}
	d.Log = log
	return d
}

// ConvergeState is why a service is, or is not, converging now.
type ConvergeState string

const (
	// ConvergeNoDesire: no version is desired (and the trigger found none).
	ConvergeNoDesire ConvergeState = "no_desire"
	// ConvergeConverged: the desired version serves 100 %.
	ConvergeConverged ConvergeState = "converged"
	// ConvergeNoFleetRunsVersion: no idle fleet has a passing member of the version.
	ConvergeNoFleetRunsVersion ConvergeState = "no_fleet_runs_version"
	// ConvergeMixedFleet: the candidate fleet also runs other versions.
	ConvergeMixedFleet ConvergeState = "mixed_fleet"
	// ConvergeWaitingForCapacity: the candidate fleet has Have of Want passing members.
	ConvergeWaitingForCapacity ConvergeState = "waiting_for_capacity"
	// ConvergeSettling: the candidate fleet is ready; the switch starts in Left.
	ConvergeSettling ConvergeState = "settling"
	// ConvergeWindowClosed: the deploy windows are closed until Until.
	ConvergeWindowClosed ConvergeState = "window_closed"
	// ConvergeSwitchRunning: a switch, roll or release runs on the service.
	ConvergeSwitchRunning ConvergeState = "switch_running"
	// ConvergeFailed: the version's converged switch rolled back or was aborted;
	// not retried until a new version is desired or a retry.
	ConvergeFailed ConvergeState = "failed"
	// ConvergeWaitingForGroup: ready, but a service desired with it (bg
	// desire --set) is not yet; they start together.
	ConvergeWaitingForGroup ConvergeState = "waiting_for_group"
	// ConvergeStart: start a switch To the candidate colour now.
	ConvergeStart ConvergeState = "start"
)

// Validate refuses an unknown kind.
func (k ConvergeState) Validate() error {
	switch k {
	case ConvergeNoDesire, ConvergeConverged, ConvergeNoFleetRunsVersion, ConvergeMixedFleet, ConvergeWaitingForCapacity, ConvergeSettling, ConvergeWindowClosed, ConvergeSwitchRunning, ConvergeFailed, ConvergeWaitingForGroup, ConvergeStart:
		return nil
	}
	return fmt.Errorf("unknown convergence state %q", k)
}
