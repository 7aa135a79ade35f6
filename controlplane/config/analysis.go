package config

import (
	"time"

	"github.com/bgctl/bg/controlplane/fleetmetrics/prometheus"
)

// Default PromQL templates: Envoy's per-cluster upstream stats, defined
// once next to the source that runs them.
const (
	DefaultRequestsQuery = prometheus.EnvoyRequests
	DefaultErrorsQuery   = prometheus.EnvoyErrors
)

// Prometheus says where progressive switches read fleet metrics.
type Prometheus struct {
	// Address is the HTTP API base URL, e.g. http://prometheus:9090. Empty
	// means not configured: plain switches still work, progressive ones are
	// refused.
	Address string `mapstructure:"address"`
}

// UnavailablePolicy is what a progressive switch does once metrics have been
// unavailable for longer than Analysis.UnavailableBudget.
type UnavailablePolicy string

const (
	OnUnavailableRollback UnavailablePolicy = "rollback"
	OnUnavailableHold     UnavailablePolicy = "hold"
)

// RollbackMode is how a failed progressive switch returns traffic.
type RollbackMode string

const (
	RollbackInstant RollbackMode = "instant" // all traffic back in one step
	RollbackGradual RollbackMode = "gradual" // back down the steps in reverse
)

// Analysis configures one service's progressive switch: traffic moves to the
// candidate fleet through Steps while a judge compares its error ratio with
// the baseline fleet's over the same Window.
//
// Load applies DefaultAnalysis field by field to keys absent (or null) in
// the file; any value given, zero included, is kept, so margin: 0 and
// bake: 0s mean what they say and interval: 0s is an error, not 10s.
type Analysis struct {
	// Requests and Errors are text/template PromQL over prometheus.TemplateData, each
	// returning one fleet's count over the window.
	Requests string `mapstructure:"requests"`
	Errors   string `mapstructure:"errors"`
	// Interval is how often the fleets are analysed.
	Interval time.Duration `mapstructure:"interval"`
	// Window is the range counted by each query.
	Window time.Duration `mapstructure:"window"`
	// Steps are the candidate's traffic percentages in order; the last is 100.
	Steps []int `mapstructure:"steps"`
	// Bake is the minimum time at each step before advancing.
	Bake time.Duration `mapstructure:"bake"`
	// MinRequests each fleet needs in the window before any verdict.
	MinRequests float64 `mapstructure:"min_requests"`
	// Confidence needed to fail the candidate, in (0.5, 1).
	Confidence float64 `mapstructure:"confidence"`
	// Margin is relative slack: the candidate fails only if its error ratio
	// exceeds the baseline's times (1+Margin).
	Margin float64 `mapstructure:"margin"`
	// UnavailableBudget is how long metrics may be unavailable (query error,
	// no data, NaN) before OnUnavailable applies; until then the step holds.
	UnavailableBudget time.Duration     `mapstructure:"unavailable_budget"`
	OnUnavailable     UnavailablePolicy `mapstructure:"on_unavailable"`
	Rollback          RollbackMode      `mapstructure:"rollback"`
}

// DefaultAnalysis returns the defaults; each call returns a fresh Steps slice.
func DefaultAnalysis() Analysis {
	return Analysis{
		Requests:          DefaultRequestsQuery,
		Errors:            DefaultErrorsQuery,
		Interval:          10 * time.Second,
		Window:            time.Minute,
		Steps:             []int{1, 5, 25, 50, 100},
		Bake:              time.Minute,
		MinRequests:       200,
		Confidence:        0.99,
		Margin:            0.1,
		UnavailableBudget: time.Minute,
		OnUnavailable:     OnUnavailableRollback,
		Rollback:          RollbackInstant,
	}
}
