package config

import (
	"path/filepath"
	"reflect"
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
	rolling, _ := first["rolling"].(map[string]any)
	checkHasFields(t, "services[0].rolling", rolling, Rolling{})
	affinity, _ := first["affinity"].(map[string]any)
	checkHasFields(t, "services[0].affinity", affinity, Affinity{})
	windows, _ := first["windows"].(map[string]any)
	checkHasFields(t, "services[0].windows", windows, Windows{})
	mirror, _ := first["mirror"].(map[string]any)
	checkHasFields(t, "services[0].mirror", mirror, Mirror{})

	c, err := Load(examplePath("bg.yaml"), nil)
	if err != nil {
		t.Fatal(err)
	}
	want := []Service{
		// web spells out every analysis default; api omits the block.
		{Name: "web", ConsulService: "web", Port: 10000, Protocol: "http2", Analysis: DefaultAnalysis(), Strategy: "blue-green", Rolling: DefaultRolling(),
			Pools: []Pool{{Header: "x-bg-pool", Value: "staff"}, {Cookie: "beta", Value: "1"}}, Gates: []Gate{},
			Windows: Windows{TimeZone: "UTC", Allow: []WindowAllow{}, Freeze: []WindowFreeze{}}},
		{Name: "api", ConsulService: "api", Port: 10001, Protocol: "http1", Analysis: DefaultAnalysis(), Strategy: "blue-green", Rolling: DefaultRolling()},
		{Name: "sessions", ConsulService: "sessions", Port: 10002, Protocol: "http2", Strategy: "rolling",
			Analysis: func() Analysis {
				a := DefaultAnalysis()
				a.Requests = `sum(increase(app_requests_total{service="{{.Service}}",color="{{.Color}}"}[{{.Window}}]))`
				a.Errors = `sum(increase(app_errors_total{service="{{.Service}}",color="{{.Color}}"}[{{.Window}}]))`
				return a
			}(),
			Rolling: func() Rolling { r := DefaultRolling(); r.DrainTimeout = 20 * time.Second; return r }(), Affinity: Affinity{Header: "x-session"}},
	}
	if c.Consul.Address != "127.0.0.1:8500" || !reflect.DeepEqual(c.Services, want) {
		t.Errorf("demo values changed: consul %q services %+v", c.Consul.Address, c.Services)
	}
}

func checkHasFields(t *testing.T, at string, m map[string]any, of any) {
	t.Helper()
	for _, f := range reflect.VisibleFields(reflect.TypeOf(of)) {
		if f.Tag.Get("mapstructure") == "-" {
			continue // derived by Load, not a key
		}
		if _, ok := m[f.Tag.Get("mapstructure")]; !ok {
			t.Errorf("configs/bg.yaml %s lacks %s", at, f.Tag.Get("mapstructure"))
		}
	}
}
