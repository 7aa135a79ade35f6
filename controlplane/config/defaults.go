package config

import (
	"fmt"
	"reflect"
	"time"

	"github.com/bgctl/bg/controlplane/model"
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
	"envoy.listen_address":   "0.0.0.0",
	"switch.timeout":         30 * time.Second,
	"prometheus.address":     "", // empty: progressive switches unavailable
	"log.level":              "info",
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
		defaultAnalysis(&svcs[i].Analysis, fmt.Sprintf("services[%d].analysis.", i), set)
	}
}

// defaultAnalysis copies each unset field from DefaultAnalysis; reflection
// keeps a field added to Analysis from being forgotten here.
func defaultAnalysis(a *Analysis, prefix string, set func(string) bool) {
	def := reflect.ValueOf(DefaultAnalysis())
	dst := reflect.ValueOf(a).Elem()
	for i, f := range reflect.VisibleFields(dst.Type()) {
		if !set(prefix + f.Tag.Get("mapstructure")) {
			dst.Field(i).Set(def.Field(i))
		}
	}
}
