// Package model holds bg's plain, immutable view of services, fleets,
// endpoints and traffic state. Sources fill it; the translator reads it.
package model

import "fmt"

// Color names one of a service's two fleets.
type Color string

const (
	Blue  Color = "blue"
	Green Color = "green"
)

// Colors lists both fleets in a stable order.
var Colors = [2]Color{Blue, Green}

// ParseColor accepts exactly "blue" or "green".
func ParseColor(s string) (Color, error) {
	switch Color(s) {
	case Blue, Green:
		return Color(s), nil
	}
	return "", fmt.Errorf("invalid colour %q: want blue or green", s)
}

// Other returns the opposite fleet.
func (c Color) Other() Color {
	if c == Blue {
		return Green
	}
	return Blue
}

// ClusterName is the stable xDS cluster of one fleet. It has no dots because
// Envoy's cluster-name stats tag stops at the first dot.
func ClusterName(service string, c Color) string {
	return service + "-" + string(c)
}
