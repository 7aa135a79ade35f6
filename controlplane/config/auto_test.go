package config

import (
	"testing"
	"time"
)

func TestValidateAuto(t *testing.T) {
	runRuleCases(t, []ruleCase{
		{"auto on, defaults", func(c *Config) {
			c.Services[0].Auto = Auto{Enabled: true, Trigger: TriggerManual, Settle: DefaultSettle}
		}, "", ""},
		{"auto on, version trigger, min_members 4, settle 0", func(c *Config) {
			c.Services[0].Auto = Auto{Enabled: true, Trigger: TriggerVersion, MinMembers: 4}
		}, "", ""},
		{"unknown trigger", func(c *Config) { c.Services[0].Auto.Trigger = "meta" }, "services[0].auto.trigger", `"meta": must be manual or version`},
		{"negative min_members", func(c *Config) { c.Services[0].Auto.MinMembers = -1 }, "services[0].auto.min_members", "must be in 0..10000"},
		{"negative settle", func(c *Config) { c.Services[0].Auto.Settle = -time.Second }, "services[0].auto.settle", "between 0 and 24h"},
		{"settle of days", func(c *Config) { c.Services[0].Auto.Settle = 48 * time.Hour }, "services[0].auto.settle", "between 0 and 24h"},
	})
}

func TestLoadAuto(t *testing.T) {
	c, err := Load(writeYAML(t, `
consul: {address: "127.0.0.1:8500"}
services:
  - name: web
    port: 10000
    auto: {enabled: true, settle: 5s}
  - name: api
    port: 10001
    auto: {enabled: true, trigger: version, min_members: 3, settle: 0s}
  - name: auth
    port: 10002
`), nil)
	if err != nil {
		t.Fatal(err)
	}
	want := []Auto{
		{Enabled: true, Trigger: TriggerManual, Settle: 5 * time.Second},
		{Enabled: true, Trigger: TriggerVersion, MinMembers: 3, Settle: 0},
		{Trigger: TriggerManual, Settle: DefaultSettle}, // off by default
	}
	for i, w := range want {
		if got := c.Services[i].Auto; got != w {
			t.Errorf("services[%d].auto = %+v, want %+v", i, got, w)
		}
	}
	if _, err := Load(writeYAML(t, `
consul: {address: "127.0.0.1:8500"}
services:
  - name: web
    port: 10000
    auto: {enabled: true, settel: 5s}
`), nil); err == nil {
		t.Error("a misspelt auto key was accepted")
	}
}
