package judge

import (
	"fmt"
	"math"
)

// errorSlack lets errors exceed requests by float rounding in increase()
// without being called impossible.
const errorSlack = 1e-9

func (p Params) invalid() string {
	if !(p.Confidence > 0.5 && p.Confidence < 1) {
		return fmt.Sprintf("confidence %v is not in (0.5, 1)", p.Confidence)
	}
	if !(p.Margin >= 0) || math.IsInf(p.Margin, 1) {
		return fmt.Sprintf("margin %v is not a finite number ≥ 0", p.Margin)
	}
	if !(p.MinRequests >= 1) || math.IsInf(p.MinRequests, 1) {
		return fmt.Sprintf("min requests %v is not a finite number ≥ 1", p.MinRequests)
	}
	return ""
}

// invalid names what makes the counts unjudgeable; fleet is "candidate" or
// "baseline".
func (s Sample) invalid(fleet string) string {
	for _, c := range []struct {
		name string
		v    float64
	}{{"requests", s.Requests}, {"errors", s.Errors}} {
		switch {
		case math.IsNaN(c.v):
			return fmt.Sprintf("%s %s is NaN", fleet, c.name)
		case math.IsInf(c.v, 0):
			return fmt.Sprintf("%s %s is infinite", fleet, c.name)
		case c.v < 0:
			return fmt.Sprintf("%s %s is negative (%v)", fleet, c.name, c.v)
		}
	}
	if s.Errors > s.Requests*(1+errorSlack) {
		return fmt.Sprintf("%s errors exceed requests (%v > %v)", fleet, s.Errors, s.Requests)
	}
	return ""
}

// short says why the fleet has too little traffic for a verdict.
func (s Sample) short(fleet string, minRequests float64) string {
	if s.Requests == 0 {
		return fleet + " has no traffic"
	}
	if s.Requests < minRequests {
		return fmt.Sprintf("%s has %.6g requests, need %.6g", fleet, s.Requests, minRequests)
	}
	return ""
}

// ratio is errors/requests, 0 without traffic and at most 1 despite slack.
func (s Sample) ratio() float64 {
	if s.Requests == 0 {
		return 0
	}
	return min(s.Errors/s.Requests, 1)
}
