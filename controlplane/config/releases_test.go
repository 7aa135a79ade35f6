package config

import (
	"strings"
	"testing"
	"time"
)

func TestValidateReleases(t *testing.T) {
	svc := func(c *Config, i int) *Service { return &c.Services[i] }
	// three services: web (0), api (1), auth (2)
	three := func(c *Config) {
		c.Services = append(c.Services, Service{Name: "auth", ConsulService: "auth", Port: 10002, Protocol: "http1", Analysis: DefaultAnalysis()})
	}
	runRuleCases(t, []ruleCase{
		{"chain ok", func(c *Config) {
			three(c)
			svc(c, 0).DependsOn = []string{"api"}
			svc(c, 1).DependsOn = []string{"auth"}
		}, "", ""},
		{"diamond ok", func(c *Config) {
			three(c)
			svc(c, 0).DependsOn = []string{"api", "auth"}
			svc(c, 1).DependsOn = []string{"auth"}
		}, "", ""},
		{"unknown dependency", func(c *Config) { svc(c, 0).DependsOn = []string{"api", "billing"} }, "services[0].depends_on[1]", `"billing": not a configured service`},
		{"self dependency", func(c *Config) { svc(c, 1).DependsOn = []string{"api"} }, "services[1].depends_on[0]", `"api": a service cannot depend on itself`},
		{"dependency twice", func(c *Config) { svc(c, 0).DependsOn = []string{"api", "api"} }, "services[0].depends_on[1]", `"api": listed twice`},
		{"two-service cycle", func(c *Config) {
			svc(c, 0).DependsOn = []string{"api"}
			svc(c, 1).DependsOn = []string{"web"}
		}, "services[1].depends_on", "depends_on cycle: api → web → api"},
		{"three-service cycle", func(c *Config) {
			three(c)
			svc(c, 0).DependsOn = []string{"api"}
			svc(c, 1).DependsOn = []string{"auth"}
			svc(c, 2).DependsOn = []string{"web"}
		}, "services[1].depends_on", "depends_on cycle: api → auth → web → api"},
		{"group ok", func(c *Config) { c.Releases = []ReleaseGroup{{Name: "checkout", Services: []string{"web", "api"}}} }, "", ""},
		{"group without name", func(c *Config) { c.Releases = []ReleaseGroup{{Services: []string{"web"}}} }, "releases[0].name", "required"},
		{"group with a bad name", func(c *Config) { c.Releases = []ReleaseGroup{{Name: "Check Out", Services: []string{"web"}}} }, "releases[0].name", "lowercase"},
		{"group names unique", func(c *Config) {
			c.Releases = []ReleaseGroup{{Name: "checkout", Services: []string{"web"}}, {Name: "checkout", Services: []string{"api"}}}
		}, "releases[1].name", `"checkout" already used by releases[0]`},
		{"group without services", func(c *Config) { c.Releases = []ReleaseGroup{{Name: "checkout"}} }, "releases[0].services", "at least one service"},
		{"group with an unknown service", func(c *Config) { c.Releases = []ReleaseGroup{{Name: "checkout", Services: []string{"web", "cart"}}} }, "releases[0].services[1]", `"cart": not a configured service`},
		{"group with a service twice", func(c *Config) { c.Releases = []ReleaseGroup{{Name: "checkout", Services: []string{"web", "web"}}} }, "releases[0].services[1]", `"web": listed twice`},
		{"group gates ok", func(c *Config) {
			c.Releases = []ReleaseGroup{{Name: "checkout", Services: []string{"web"}, Gates: []Gate{relGate("smoke", "pre", "post")}}}
		}, "", ""},
		{"group gate at step", func(c *Config) {
			c.Releases = []ReleaseGroup{{Name: "checkout", Services: []string{"web"}, Gates: []Gate{relGate("smoke", "pre", "step")}}}
		}, "releases[0].gates[0].stages", "step: a release has no steps"},
		{"group gate invalid (service schema)", func(c *Config) {
			g := relGate("smoke", "post")
			g.OnFailure = "retry"
			c.Releases = []ReleaseGroup{{Name: "checkout", Services: []string{"web"}, Gates: []Gate{g}}}
		}, "releases[0].gates[0]", `on_failure: "retry" is not rollback or hold`},
		{"group gate names unique", func(c *Config) {
			c.Releases = []ReleaseGroup{{Name: "checkout", Services: []string{"web"}, Gates: []Gate{relGate("smoke", "pre"), relGate("smoke", "post")}}}
		}, "releases[0].gates[1].name", `"smoke" used twice`},
		{"max_parallel 1 ok", func(c *Config) { c.Release.MaxParallel = 1 }, "", ""},
		{"max_parallel 0", func(c *Config) { c.Release.MaxParallel = 0 }, "release.max_parallel", "must be at least 1"},
		{"max_parallel negative", func(c *Config) { c.Release.MaxParallel = -2 }, "release.max_parallel", "must be at least 1"},
		{"keep 1 ok", func(c *Config) { c.Release.Keep = 1 }, "", ""},
		{"keep 0", func(c *Config) { c.Release.Keep = 0 }, "release.keep", "0: must be at least 1"},
		{"keep negative", func(c *Config) { c.Release.Keep = -5 }, "release.keep", "-5: must be at least 1"},
	})
}

func relGate(name string, stages ...string) Gate {
	return Gate{Name: name, URL: "http://127.0.0.1:8081/" + name, Stages: stages, Timeout: time.Second, OnFailure: "rollback"}
}

func TestLoadReleaseGates(t *testing.T) {
	c, err := Load(writeYAML(t, fileYAML+`
releases:
  - name: checkout
    services: [web, api]
    gates:
      - name: smoke
        url: http://127.0.0.1:8081/smoke
        stages: [pre, post]
`), nil)
	if err != nil {
		t.Fatal(err)
	}
	if err := c.Validate(); err != nil {
		t.Fatal(err)
	}
	g := c.GroupGates()["checkout"]
	if len(g) != 1 || g[0].Name != "smoke" || !g[0].At("pre") || !g[0].At("post") ||
		g[0].Timeout.D() != DefaultGateTimeout || g[0].OnFailure != DefaultGateOnFailure {
		t.Fatalf("group gates (defaults filled) %+v", g)
	}
}

func TestLoadReleases(t *testing.T) {
	c, err := Load(writeYAML(t, fileYAML+`
releases:
  - name: checkout
    services: [web, api]
release:
  max_parallel: 2
  keep: 10
`), nil)
	if err != nil {
		t.Fatal(err)
	}
	if len(c.Releases) != 1 || c.Releases[0].Name != "checkout" || strings.Join(c.Releases[0].Services, ",") != "web,api" || c.Release.MaxParallel != 2 || c.Release.Keep != 10 {
		t.Fatalf("releases %+v, release %+v", c.Releases, c.Release)
	}
	if g := c.Groups(); strings.Join(g["checkout"], ",") != "web,api" {
		t.Fatalf("groups %v", g)
	}
	if err := c.Validate(); err != nil {
		t.Fatal(err)
	}

	// Unset: the default; the environment overrides it.
	c, err = Load(writeYAML(t, fileYAML), nil)
	if err != nil || c.Release.MaxParallel != DefaultMaxParallel || c.Release.Keep != DefaultReleaseKeep {
		t.Fatalf("default max_parallel and keep: %+v %v", c.Release, err)
	}
	t.Setenv("BG_RELEASE_KEEP", "3")
	if c, err = Load(writeYAML(t, fileYAML), nil); err != nil || c.Release.Keep != 3 {
		t.Fatalf("BG_RELEASE_KEEP: %+v %v", c.Release, err)
	}
	t.Setenv("BG_RELEASE_MAX_PARALLEL", "7")
	if c, err = Load(writeYAML(t, fileYAML), nil); err != nil || c.Release.MaxParallel != 7 {
		t.Fatalf("BG_RELEASE_MAX_PARALLEL: %+v %v", c.Release, err)
	}

	// Typos are unknown keys with their path.
	for _, tc := range []struct{ yaml, key string }{
		{"releases:\n  - name: a\n    service: [web]\n", "releases[0].service"},
		{"release:\n  max_paralel: 3\n", "release.max_paralel"},
		{"release:\n  kep: 3\n", "release.kep"},
		{"services:\n  - name: web\n    port: 10000\n    depends: [api]\n", "services[0].depends"},
	} {
		_, err := Load(writeYAML(t, tc.yaml), nil)
		if err == nil || !strings.Contains(err.Error(), tc.key+": unknown key") {
			t.Errorf("%q: %v, want %s: unknown key", tc.yaml, err, tc.key)
		}
	}
}

func TestDependencies(t *testing.T) {
	c := valid()
	c.Services[0].DependsOn = []string{"api"}
	d := c.Dependencies()
	if strings.Join(d["web"], ",") != "api" || len(d["api"]) != 0 || len(d) != 2 {
		t.Fatalf("dependencies %v", d)
	}
	d["web"][0] = "x" // a copy
	if c.Services[0].DependsOn[0] != "api" {
		t.Fatal("Dependencies shares the config's slice")
	}
}
