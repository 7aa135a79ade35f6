package config

import (
	"testing"
	"time"
)

func TestValidateRelease(t *testing.T) {
	web := func(c *Config) *Service { return &c.Services[0] }
	gate := func() Gate {
		return Gate{Name: "smoke", URL: "http://127.0.0.1:8081/smoke", Stages: []string{"step"}, Timeout: time.Second, OnFailure: "rollback"}
	}
	runRuleCases(t, []ruleCase{
		{"header pool ok", func(c *Config) { web(c).Pools = []Pool{{Header: "x-bg-pool", Value: "staff"}} }, "", ""},
		{"cookie pool ok", func(c *Config) { web(c).Pools = []Pool{{Cookie: "beta", Value: "1"}} }, "", ""},
		{"pool with both", func(c *Config) { web(c).Pools = []Pool{{Header: "h", Cookie: "c", Value: "1"}} }, "services[0].pools[0]", "exactly one of header and cookie"},
		{"pool with neither", func(c *Config) { web(c).Pools = []Pool{{Value: "1"}} }, "services[0].pools[0]", "exactly one"},
		{"pool without value", func(c *Config) { web(c).Pools = []Pool{{Header: "x-bg-pool"}} }, "services[0].pools[0].value", "required"},
		{"pool bad header", func(c *Config) { web(c).Pools = []Pool{{Header: "x pool", Value: "1"}} }, "services[0].pools[0].header", "header name"},
		{"pool bad cookie", func(c *Config) { web(c).Pools = []Pool{{Cookie: "a;b", Value: "1"}} }, "services[0].pools[0].cookie", "not a cookie name"},
		{"pool cookie value with ;", func(c *Config) { web(c).Pools = []Pool{{Cookie: "beta", Value: "1;x"}} }, "services[0].pools[0].value", "cookie values"},
		{"pool on the pin header", func(c *Config) { web(c).Pools = []Pool{{Header: "X-BG-Color", Value: "green"}} }, "services[0].pools[0].header", "pin header"},
		{"mirror 10 ok", func(c *Config) { web(c).Mirror.Percent = 10 }, "", ""},
		{"mirror above 100", func(c *Config) { web(c).Mirror.Percent = 101 }, "services[0].mirror.percent", "0..100"},
		{"mirror negative", func(c *Config) { web(c).Mirror.Percent = -1 }, "services[0].mirror.percent", "0..100"},
		{"gate ok", func(c *Config) { web(c).Gates = []Gate{gate()} }, "", ""},
		{"gate bad url", func(c *Config) { g := gate(); g.URL = "ftp://x"; web(c).Gates = []Gate{g} }, "services[0].gates[0]", "url"},
		{"gate bad stage", func(c *Config) { g := gate(); g.Stages = []string{"during"}; web(c).Gates = []Gate{g} }, "services[0].gates[0]", `"during" is not pre, step or post`},
		{"gate no stages", func(c *Config) { g := gate(); g.Stages = nil; web(c).Gates = []Gate{g} }, "services[0].gates[0]", "stages"},
		{"gate bad on_failure", func(c *Config) { g := gate(); g.OnFailure = "ignore"; web(c).Gates = []Gate{g} }, "services[0].gates[0]", "on_failure"},
		{"gate zero timeout", func(c *Config) { g := gate(); g.Timeout = 0; web(c).Gates = []Gate{g} }, "services[0].gates[0]", "timeout"},
		{"gate names unique", func(c *Config) { web(c).Gates = []Gate{gate(), gate()} }, "services[0].gates[1].name", "used twice"},
		{"rolling with pools", func(c *Config) {
			s := web(c)
			s.Strategy, s.Affinity.Header, s.Rolling = "rolling", "x-session", DefaultRolling()
			s.Pools = []Pool{{Header: "x-bg-pool", Value: "staff"}}
		}, "services[0]", "need two fleets"},
		{"windows ok", func(c *Config) {
			web(c).Windows = Windows{TimeZone: "Europe/Berlin", Allow: []WindowAllow{{Days: []string{"mon"}, From: "09:00", To: "17:00"}}}
		}, "", ""},
		{"windows bad zone", func(c *Config) { web(c).Windows = Windows{TimeZone: "Mars/Base"} }, "services[0].windows", "Mars/Base"},
		{"windows bad time", func(c *Config) {
			web(c).Windows = Windows{Allow: []WindowAllow{{From: "25:00", To: "17:00"}}}
		}, "services[0].windows", "allow[0].from"},
		{"windows bad freeze", func(c *Config) {
			web(c).Windows = Windows{Freeze: []WindowFreeze{{From: "2026-12-21", To: "2026-12-20"}}}
		}, "services[0].windows", "freeze[0]"},
	})
}

func TestLoadGateDefaults(t *testing.T) {
	c, err := Load(writeYAML(t, `
services:
  - name: web
    port: 10000
    gates:
      - name: smoke
        url: http://127.0.0.1:8081/smoke
        stages: [pre, post]
      - name: approval
        url: https://approvals.internal/bg
        stages: [step]
        timeout: 2m
        on_failure: hold
`), nil)
	if err != nil {
		t.Fatal(err)
	}
	g := c.Services[0].Gates
	if len(g) != 2 || g[0].Timeout != DefaultGateTimeout || g[0].OnFailure != "rollback" || g[1].Timeout != 2*time.Minute || g[1].OnFailure != "hold" {
		t.Fatalf("gates %+v", g)
	}
	if err := c.Validate(); err != nil {
		t.Fatal(err)
	}
}
