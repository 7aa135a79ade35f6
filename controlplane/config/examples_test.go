package config

import (
	"os"
	"path/filepath"
	"reflect"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/spf13/viper"
)

var examples = []string{"bg.yaml", "minimal.yaml"}

func examplePath(name string) string { return filepath.Join("..", "..", "configs", name) }

func TestExamplesLoadAndValidate(t *testing.T) {
	for _, name := range examples {
		t.Run(name, func(t *testing.T) {
			c, err := Load(examplePath(name), nil)
			if err != nil {
				t.Fatal(err)
			}
			if err := c.Validate(); err != nil {
				t.Fatalf("Validate:\n%v", err)
			}
		})
	}
}

// bg.yaml documents every key, and its values are the demo's.
func TestFullExampleHasEveryKey(t *testing.T) {
	v := viper.New()
	v.SetConfigFile(examplePath("bg.yaml"))
	if err := v.ReadInConfig(); err != nil {
		t.Fatal(err)
	}
	for key := range defaults {
		if !v.InConfig(key) {
			t.Errorf("configs/bg.yaml lacks %s", key)
		}
	}
	svcs, _ := v.Get("services").([]any)
	if len(svcs) == 0 {
		t.Fatal("configs/bg.yaml has no services")
	}
	first, _ := svcs[0].(map[string]any)
	checkHasFields(t, "services[0]", first, Service{})
	analysis, _ := first["analysis"].(map[string]any)
	checkHasFields(t, "services[0].analysis", analysis, Analysis{})
	latency, _ := analysis["latency"].(map[string]any)
	checkHasFields(t, "services[0].analysis.latency", latency, Latency{})
	rolling, _ := first["rolling"].(map[string]any)
	checkHasFields(t, "services[0].rolling", rolling, Rolling{})
	affinity, _ := first["affinity"].(map[string]any)
	checkHasFields(t, "services[0].affinity", affinity, Affinity{})
	windows, _ := first["windows"].(map[string]any)
	checkHasFields(t, "services[0].windows", windows, Windows{})
	mirror, _ := first["mirror"].(map[string]any)
	checkHasFields(t, "services[0].mirror", mirror, Mirror{})
	auto, _ := first["auto"].(map[string]any)
	checkHasFields(t, "services[0].auto", auto, Auto{})

	c, err := Load(examplePath("bg.yaml"), nil)
	if err != nil {
		t.Fatal(err)
	}
	want := []Service{
		// web spells out every analysis default; api omits the block.
		{Name: "web", ConsulService: "web", Port: 10000, Protocol: "http2", Analysis: DefaultAnalysis(), Strategy: "blue-green", Rolling: DefaultRolling(),
			Pools: []Pool{{Header: "x-bg-pool", Value: "staff"}, {Cookie: "beta", Value: "1"}}, Gates: []Gate{},
			Windows: Windows{TimeZone: "UTC", Allow: []WindowAllow{}, Freeze: []WindowFreeze{}}, DependsOn: []string{"api"}, Auto: DefaultAuto()},
		{Name: "api", ConsulService: "api", Port: 10001, Protocol: "http1", Analysis: DefaultAnalysis(), Strategy: "blue-green", Rolling: DefaultRolling(), Auto: DefaultAuto()},
		{Name: "sessions", ConsulService: "sessions", Port: 10002, Protocol: "http2", Strategy: "rolling",
			Analysis: func() Analysis {
				a := DefaultAnalysis()
				a.Requests = `app_requests_total{service="{{.Service}}",color="{{.Color}}"}`
				a.Errors = `app_errors_total{service="{{.Service}}",color="{{.Color}}"}`
				return a
			}(),
			Rolling: func() Rolling { r := DefaultRolling(); r.DrainTimeout = 20 * time.Second; return r }(), Affinity: Affinity{Header: "x-session"}, Auto: DefaultAuto()},
	}
	if c.Consul.Address != "127.0.0.1:8500" || !reflect.DeepEqual(c.Services, want) {
		t.Errorf("demo values changed: consul %q services %+v", c.Consul.Address, c.Services)
	}
	if g := []ReleaseGroup{{Name: "checkout", Services: []string{"web", "api"}, Gates: []Gate{}}}; !reflect.DeepEqual(c.Releases, g) || c.Release.MaxParallel != DefaultMaxParallel {
		t.Errorf("demo releases changed: %+v, max_parallel %d", c.Releases, c.Release.MaxParallel)
	}
	groups, _ := v.Get("releases").([]any)
	if len(groups) == 0 {
		t.Fatal("configs/bg.yaml has no release group")
	}
	group, _ := groups[0].(map[string]any)
	checkHasFields(t, "releases[0]", group, ReleaseGroup{})
}

// retiredKeys are still decoded (so that validation can say how to
// migrate) but must not appear in the examples.
var retiredKeys = map[string]bool{"window": true}

func checkHasFields(t *testing.T, at string, m map[string]any, of any) {
	t.Helper()
	for _, f := range reflect.VisibleFields(reflect.TypeOf(of)) {
		key := f.Tag.Get("mapstructure")
		if key == "-" {
			continue // derived by Load, not a key
		}
		_, ok := m[key]
		switch {
		case retiredKeys[key] && ok:
			t.Errorf("configs/bg.yaml %s has the retired key %s", at, key)
		case !retiredKeys[key] && !ok:
			t.Errorf("configs/bg.yaml %s lacks %s", at, key)
		}
	}
}

// No example uses a retired key or a windowed template: each would fail
// validation, and users copy them.
func TestExamplesHaveNoWindow(t *testing.T) {
	for _, name := range append(slices.Clone(examples), composeExample) {
		b, err := os.ReadFile(examplePath(name))
		if err != nil {
			t.Fatal(err)
		}
		for i, line := range strings.Split(string(b), "\n") {
			code, _, _ := strings.Cut(line, "#")
			for _, bad := range []string{"window:", ".Window", "increase(", "rate("} {
				if strings.Contains(code, bad) {
					t.Errorf("%s:%d: %s", name, i+1, strings.TrimSpace(line))
				}
			}
		}
	}
}

// composeExample is docker-compose.yml's bg config; compose passes the admin
// token in the environment, which the test does too.
const composeExample = "compose/bg.yaml"

func TestComposeExampleLoadsAndValidates(t *testing.T) {
	t.Setenv("BG_ADMIN_TOKEN", "test-token")
	c, err := Load(examplePath(composeExample), nil)
	if err != nil {
		t.Fatal(err)
	}
	if err := c.Validate(); err != nil {
		t.Fatalf("Validate:\n%v", err)
	}
	a := c.Services[0].Analysis
	if a.Requests != DefaultRequestsQuery || a.Errors != DefaultErrorsQuery || a.Window != 0 {
		t.Errorf("compose analysis: requests %q errors %q window %v; want the default counters, no window", a.Requests, a.Errors, a.Window)
	}
	if a.InsufficientBudget != 5*time.Minute || a.OnInsufficient != OnUnavailableRollback || a.Latency != DefaultLatency() {
		t.Errorf("compose analysis: %+v", a)
	}
}
