package config

import (
	"github.com/bgctl/bg/controlplane/fleetmetrics/prometheus"

	"math"
	"strings"
	"time"
)

const (
	maxSteps       = 20
	minInterval    = time.Second
	maxMargin      = 10
	minConfidence  = 0.5 // exclusive: at or below, a failure is a coin toss
	maxConfidence  = 1   // exclusive: certainty would never fail anything
	minMinRequests = 1
)

func validateAnalysis(a *Analysis, at string, es *Errors) {
	checkQuery(a.Requests, at, "requests", es)
	checkQuery(a.Errors, at, "errors", es)
	if a.Interval < minInterval {
		es.add(at+".interval", "%s: must be at least %s", a.Interval, minInterval)
	}
	if a.Window != 0 {
		es.add(at+".window", "%s: window is retired: each switch now counts requests and errors exactly from its own start, "+
			"with no window; remove the key (and any {{.Window}} from the queries)", a.Window)
	}
	checkSteps(a.Steps, at+".steps", es)
	if a.Bake < 0 {
		es.add(at+".bake", "%s: must not be negative", a.Bake)
	}
	// Negated comparisons so NaN (YAML .nan) fails too.
	if m := a.MinRequests; !(m >= minMinRequests) || math.IsInf(m, 1) {
		es.add(at+".min_requests", "%v: must be a finite number of at least %d", m, minMinRequests)
	}
	if c := a.Confidence; !(c > minConfidence && c < maxConfidence) {
		es.add(at+".confidence", "%v: must be between %v and %v, exclusive", c, minConfidence, maxConfidence)
	}
	if m := a.Margin; !(m >= 0 && m <= maxMargin) {
		es.add(at+".margin", "%v: must be in 0..%d", m, maxMargin)
	}
	if a.UnavailableBudget < a.Interval {
		es.add(at+".unavailable_budget", "%s: must be at least interval (%s)", a.UnavailableBudget, a.Interval)
	}
	switch a.OnUnavailable {
	case OnUnavailableRollback, OnUnavailableHold:
	default:
		es.add(at+".on_unavailable", "%q: must be %s or %s", a.OnUnavailable, OnUnavailableRollback, OnUnavailableHold)
	}
	if a.InsufficientBudget < a.Interval {
		es.add(at+".insufficient_budget", "%s: must be at least interval (%s)", a.InsufficientBudget, a.Interval)
	}
	switch a.OnInsufficient {
	case OnUnavailableRollback, OnUnavailableHold:
	default:
		es.add(at+".on_insufficient", "%q: must be %s or %s", a.OnInsufficient, OnUnavailableRollback, OnUnavailableHold)
	}
	validateLatency(&a.Latency, at+".latency", es)
	switch a.Rollback {
	case RollbackInstant, RollbackGradual:
	default:
		es.add(at+".rollback", "%q: must be %s or %s", a.Rollback, RollbackInstant, RollbackGradual)
	}
}

// checkQuery parses and runs a query template on sample data, so a typo such
// as {{.Clustr}} fails at startup rather than mid-switch.
func checkQuery(text, parent, key string, es *Errors) {
	at := parent + "." + key
	if strings.TrimSpace(text) == "" {
		es.add(at, "required")
		return
	}
	if err := prometheus.ValidateTemplate(text); err != nil {
		es.add(at, "%v", err)
	}
}

func checkSteps(steps []int, at string, es *Errors) {
	if len(steps) == 0 {
		es.add(at, "at least one step is required")
		return
	}
	if len(steps) > maxSteps {
		es.add(at, "%d steps: at most %d allowed", len(steps), maxSteps)
	}
	inRange := func(p int) bool { return p >= 1 && p <= 100 }
	for i, p := range steps {
		switch {
		case !inRange(p):
			es.add(at, "step %d (%d): must be a percentage in 1..100", i, p)
		// An out-of-range predecessor already has its own error.
		case i > 0 && inRange(steps[i-1]) && p <= steps[i-1]:
			es.add(at, "step %d (%d): must be greater than step %d (%d)", i, p, i-1, steps[i-1])
		}
	}
	// Ending short of 100 would leave the switch half done.
	if last := steps[len(steps)-1]; last != 100 {
		es.add(at, "last step is %d: must be 100", last)
	}
}

func validateLatency(l *Latency, at string, es *Errors) {
	if !l.Enabled {
		return
	}
	checkQuery(l.Query, at, "query", es)
	if l.Unit != "ms" && l.Unit != "s" {
		es.add(at+".unit", "%q: must be ms (Envoy's upstream_rq_time) or s", l.Unit)
	}
	if q := l.Quantile; !(q > 0.5 && q < 1) {
		es.add(at+".quantile", "%v: must be between 0.5 and 1, exclusive", q)
	}
	if r := l.Relative; !(r >= 0 && r <= maxMargin) {
		es.add(at+".relative", "%v: must be in 0..%d", r, maxMargin)
	}
	if l.Absolute < 0 {
		es.add(at+".absolute", "%s: must not be negative", l.Absolute)
	}
}
