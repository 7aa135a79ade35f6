package config

import (
	"time"

	"github.com/bgctl/bg/controlplane/model"
)

// Rolling configures host-by-host switches of stateful services
// (strategy: rolling). Load fills absent keys from DefaultRolling.
type Rolling struct {
	// MaxUnavailable is how many slots may be draining or baking at once.
	MaxUnavailable int `mapstructure:"max_unavailable"`
	// MinAvailable: never fewer serving hosts than this.
	MinAvailable int `mapstructure:"min_available"`
	// DrainTimeout is how long an old host drains before it leaves.
	DrainTimeout time.Duration `mapstructure:"drain_timeout"`
	// Bake is how long a replacement must stay passing and healthy before
	// the next host moves (make-before-break).
	Bake time.Duration `mapstructure:"bake"`
	// ReplaceTimeout is how long to wait for a passing replacement of the
	// next slot before the roll fails and rolls back.
	ReplaceTimeout time.Duration `mapstructure:"replace_timeout"`
	// Interval is how often the roll is re-evaluated.
	Interval time.Duration `mapstructure:"interval"`
}

// Affinity keeps sessions on one host by hashing a header, or a cookie
// (Envoy only; Envoy mints it).
type Affinity struct {
	Header string `mapstructure:"header"`
	Cookie string `mapstructure:"cookie"`
}

// DefaultRolling are the rolling defaults.
func DefaultRolling() Rolling {
	return Rolling{MaxUnavailable: 1, MinAvailable: 1, DrainTimeout: 30 * time.Second, Bake: 30 * time.Second,
		ReplaceTimeout: 10 * time.Minute, Interval: time.Second}
}

// Params converts to the model's roll parameters.
func (r Rolling) Params() model.RollParams {
	return model.RollParams{MaxUnavailable: r.MaxUnavailable, MinAvailable: r.MinAvailable,
		DrainTimeout: model.Duration(r.DrainTimeout), Bake: model.Duration(r.Bake),
		ReplaceTimeout: model.Duration(r.ReplaceTimeout), Interval: model.Duration(r.Interval)}
}
