package config

import (
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
	"log.level":              "info",
}

// defaultServices fills per-service defaults that viper cannot express for list items.
func defaultServices(svcs []Service) {
	for i := range svcs {
		if svcs[i].ConsulService == "" {
			svcs[i].ConsulService = svcs[i].Name
		}
		if svcs[i].Protocol == "" {
			svcs[i].Protocol = string(model.ProtocolHTTP1)
		}
	}
}
