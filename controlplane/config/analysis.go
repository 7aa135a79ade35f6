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
	// HTTP is TLS and authentication (promhttp.go).
	HTTP PrometheusHTTP `mapstructure:"http"`
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
// candidate fleet through Steps while sequential tests compare its errors
// (and optionally latency) with the baseline fleet's, on exact counts since
// the switch began.
//
// Load applies DefaultAnalysis field by field to keys absent (or null) in
// the file; any value given, zero included, is kept, so margin: 0 and
// bake: 0s mean what they say and interval: 0s is an error, not 10s.
type Analysis struct {
	// Requests and Errors are text/template PromQL over
	// prometheus.TemplateData, each selecting one fleet's counters, per
	// series (no increase() or range: bg counts differences itself).
	Requests string `mapstructure:"requests"`
	Errors   string `mapstructure:"errors"`
	// Interval is how often the fleets are analysed.
	Interval time.Duration `mapstructure:"interval"`
	// Window is retired: analyses count from the switch's start. Any value
	// but zero is a config error that says how to migrate.
	Window time.Duration `mapstructure:"window"`
	// Steps are the candidate's traffic percentages in order; the last is 100.
	Steps []int `mapstructure:"steps"`
	// Bake is the minimum time at each step before advancing.
	Bake time.Duration `mapstructure:"bake"`
	// MinRequests each fleet must serve at a step before it may advance.
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
	// InsufficientBudget is how long a step may lack data (a fleet below
	// MinRequests at this step, or with no request series) before
	// OnInsufficient applies; until then the step holds.
	InsufficientBudget time.Duration     `mapstructure:"insufficient_budget"`
	OnInsufficient     UnavailablePolicy `mapstructure:"on_insufficient"`
	Rollback           RollbackMode      `mapstructure:"rollback"`
	Latency            Latency           `mapstructure:"latency"`
}

// Latency judges the candidate's latency histogram against the baseline's.
type Latency struct {
	Enabled bool `mapstructure:"enabled"`
	// Query selects histogram bucket counters (`_bucket` series with `le`).
	Query string `mapstructure:"query"`
	// Unit is the histogram's: ms (Envoy's upstream_rq_time) or s.
	Unit string `mapstructure:"unit"`
	// Quantile is judged (0.99: p99); the candidate fails when it is worse
	// than the baseline's by more than Relative and by more than Absolute.
	Quantile float64       `mapstructure:"quantile"`
	Relative float64       `mapstructure:"relative"`
	Absolute time.Duration `mapstructure:"absolute"`
}

// DefaultLatency is off; on, it reads Envoy's upstream request time.
func DefaultLatency() Latency {
	return Latency{Query: prometheus.EnvoyLatency, Unit: "ms", Quantile: 0.99, Relative: 0.2, Absolute: 50 * time.Millisecond}
}

// DefaultAnalysis returns the defaults; each call returns a fresh Steps slice.
func DefaultAnalysis() Analysis {
	return Analysis{
		Requests:           DefaultRequestsQuery,
		Errors:             DefaultErrorsQuery,
		Interval:           10 * time.Second,
		Steps:              []int{1, 5, 25, 50, 100},
		Bake:               time.Minute,
		MinRequests:        200,
		Confidence:         0.99,
		Margin:             0.1,
		UnavailableBudget:  time.Minute,
		OnUnavailable:      OnUnavailableRollback,
		InsufficientBudget: 5 * time.Minute,
		OnInsufficient:     OnUnavailableRollback,
		Rollback:           RollbackInstant,
		Latency:            DefaultLatency(),
	}
}
