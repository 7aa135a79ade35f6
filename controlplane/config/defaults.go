package config

import (
	"fmt"
	"reflect"
	"time"

	"github.com/bgctl/bg/controlplane/model"
)

// DefaultHistoryRetention keeps months of changes at a few a day, in well
// under a megabyte of KV per service.
const DefaultHistoryRetention = 1000

// DefaultShrinkGrace outlasts a health-check flap or an agent restart but
// delays a deliberate scale-down of more than half only briefly.
const DefaultShrinkGrace = 30 * time.Second

// DefaultCheckTTL and DefaultLockDelay put a dead leader's successor in
// charge 1.3–2.5 s after the crash: the check turns critical 1.2–2.4 s
// after the last heartbeat (one every check_ttl/2, 1.2 s), then the lock
// delay runs. Writes are fenced in Consul and a leader stops on its own
// once its check is unconfirmed for the TTL, which is never later than
// Consul can end its session, so the lock delay guards nothing; it is a
// small margin for an old leader that is slow, not dead. Fewer heartbeats
// are most of an idle replica's CPU (docs/leader.md); a stall of the
// replica or its agent shorter than 1.2 s never ends a healthy term.
const (
	DefaultCheckTTL  = 2400 * time.Millisecond
	DefaultLockDelay = 100 * time.Millisecond
)

// defaults lists every scalar key. Viper only applies env to keys it knows,
// so this table is also what makes each key overridable by BG_* variables.
var defaults = map[string]any{
	"consul.address":         "127.0.0.1:8500",
	"consul.token":           "",
	"consul.datacenter":      "",
	"consul.kv_prefix":       "bg/",
	"consul.wait":            5 * time.Minute,
	"consul.color.blue_tag":  "blue",
	"consul.color.green_tag": "green",
	"consul.color.meta_key":  "",
	"xds.listen":             "127.0.0.1:18000",
	"admin.listen":           "127.0.0.1:9090",
	"admin.token":            "",
	"admin.pprof":            false,
	"envoy.listen_address":   "0.0.0.0",
	"switch.timeout":         30 * time.Second,
	"prometheus.address":     "", // empty: progressive switches unavailable
	"log.level":              "info",
	"history.retention":      DefaultHistoryRetention,
	"leader.check_ttl":       DefaultCheckTTL,
	"leader.session_ttl":     10 * time.Second,
	"leader.lock_delay":      DefaultLockDelay,
	"config.watch":           false,

	"admin.tls.cert_file":      "",
	"admin.tls.key_file":       "",
	"admin.tls.client_ca_file": "",
	"admin.insecure_plaintext": false,

	"membership.shrink_grace":      DefaultShrinkGrace,
	"release.max_parallel":         DefaultMaxParallel,
	"release.keep":                 DefaultReleaseKeep,
	"release.watch_consumers":      false,
	"release.consumers.lookback":   DefaultConsumerTest.Lookback,
	"release.consumers.confidence": DefaultConsumerTest.Confidence,
	"release.consumers.margin":     DefaultConsumerTest.Margin,
	"release.consumers.min_errors": DefaultConsumerTest.MinErrors,
}

// defaultServices fills per-service defaults that viper cannot express for
// list items. set reports whether the file gave a dotted key a non-null value
// (e.g. "services[0].analysis.margin"); analysis keys are defaulted only when
// unset, so explicit zeros such as margin: 0 survive.
func defaultServices(svcs []Service, set func(key string) bool) {
	for i := range svcs {
		if svcs[i].ConsulService == "" {
			svcs[i].ConsulService = svcs[i].Name
		}
		if svcs[i].Protocol == "" {
			svcs[i].Protocol = string(model.ProtocolHTTP1)
		}
		if svcs[i].Strategy == "" {
			svcs[i].Strategy = string(model.StrategyBlueGreen)
		}
		defaultFields(&svcs[i].Analysis, DefaultAnalysis(), fmt.Sprintf("services[%d].analysis.", i), set)
		defaultFields(&svcs[i].Analysis.Latency, DefaultLatency(), fmt.Sprintf("services[%d].analysis.latency.", i), set)
		defaultFields(&svcs[i].Rolling, DefaultRolling(), fmt.Sprintf("services[%d].rolling.", i), set)
		defaultFields(&svcs[i].Auto, DefaultAuto(), fmt.Sprintf("services[%d].auto.", i), set)
		defaultGates(svcs[i].Gates, fmt.Sprintf("services[%d].gates", i), set)
	}
}

// defaultFields copies each unset field of *dst from def; reflection keeps
// a field added later from being forgotten here.
func defaultFields[T any](dst *T, def T, prefix string, set func(string) bool) {
	defV := reflect.ValueOf(def)
	dstV := reflect.ValueOf(dst).Elem()
	for i, f := range reflect.VisibleFields(dstV.Type()) {
		if f.Tag.Get("mapstructure") == "-" {
			continue // derived, not a key (Rolling.Judge)
		}
		if !set(prefix + f.Tag.Get("mapstructure")) {
			dstV.Field(i).Set(defV.Field(i))
		}
	}
}
