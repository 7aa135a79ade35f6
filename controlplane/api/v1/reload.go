package apiv1

import (
	"fmt"
	"time"
)

// ReloadResult is how a config reload ended.
type ReloadResult string

const (
	// ReloadSuccess: the new file is in force (possibly with no change).
	ReloadSuccess ReloadResult = "success"
	// ReloadInvalid: the file did not read or validate; the running config stays.
	ReloadInvalid ReloadResult = "invalid"
	// ReloadRefused: the file is valid but changes a setting that needs a
	// restart; the running config stays.
	ReloadRefused ReloadResult = "refused"
)

// ReloadResults are every result, in the metric's label order.
var ReloadResults = []ReloadResult{ReloadSuccess, ReloadInvalid, ReloadRefused}

// Validate accepts only the known results.
func (r ReloadResult) Validate() error {
	switch r {
	case ReloadSuccess, ReloadInvalid, ReloadRefused:
		return nil
	}
	return fmt.Errorf("unknown reload result %q", r)
}

// ReloadTrigger says what asked for a reload.
type ReloadTrigger string

const (
	TriggerSignal ReloadTrigger = "sighup"
	TriggerAPI    ReloadTrigger = "api"
	TriggerWatch  ReloadTrigger = "watch"
)

// Validate accepts only the known triggers.
func (t ReloadTrigger) Validate() error {
	switch t {
	case TriggerSignal, TriggerAPI, TriggerWatch:
		return nil
	}
	return fmt.Errorf("unknown reload trigger %q", t)
}

// ReloadAttempt is one reload: the answer of POST /v1/reload and the last
// one in status.
type ReloadAttempt struct {
	Result  ReloadResult  `json:"result"`
	Trigger ReloadTrigger `json:"trigger"`
	At      time.Time     `json:"at"`
	// Change summarises what a successful reload applied ("no change",
	// "added cart; removed api").
	Change string `json:"change,omitempty"`
	// Error says why an invalid or refused reload changed nothing, one
	// problem per line.
	Error string `json:"error,omitempty"`
	// Generation and Hash are the config in force after this attempt.
	Generation uint64 `json:"generation"`
	Hash       string `json:"hash"`
	// Code is set on a failed reload's answer (CodeConfigInvalid,
	// CodeRestartRequired), as in ErrorBody.
	Code string `json:"code,omitempty"`
}

// ReloadStatus is the config in force on the replica that answered, and
// its last reload.
type ReloadStatus struct {
	// Generation is 1 at start and counts each reload that applied a change.
	Generation uint64 `json:"generation"`
	// Hash is the sha256 of the file in force (hex).
	Hash string `json:"hash"`
	// Since is when it came into force.
	Since time.Time `json:"since"`
	// Watch: config.watch is on.
	Watch bool `json:"watch"`
	// Last is the last reload attempt (none since start: nil).
	Last *ReloadAttempt `json:"last,omitempty"`
}
