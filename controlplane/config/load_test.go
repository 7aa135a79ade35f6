package config

import (
	"errors"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"
)

func writeYAML(t *testing.T, body string) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), "bg.yaml")
	if err := os.WriteFile(p, []byte(body), 0o600); err != nil {
		t.Fatal(err)
	}
	return p
}

const fileYAML = `
consul:
  address: consul.internal:8500
  kv_prefix: traffic/
  wait: 2m
  color:
    meta_key: colour
xds:
  listen: 0.0.0.0:18000
admin:
  listen: 127.0.0.1:9191
switch:
  timeout: 10s
services:
  - name: web
    port: 10000
    protocol: http2
  - name: api
    consul_service: api-v2
    port: 10001
`

func TestLoadDefaultsOnly(t *testing.T) {
	c, err := Load("", nil)
	if err != nil {
		t.Fatal(err)
	}
	want := Config{
		Consul: Consul{
			Address:  "127.0.0.1:8500",
			KVPrefix: "bg/",
			Wait:     5 * time.Minute,
			Color:    ColorRule{BlueTag: "blue", GreenTag: "green"},
		},
		XDS:        XDS{Listen: "127.0.0.1:18000"},
		Admin:      Admin{Listen: "127.0.0.1:9090"},
		Envoy:      Envoy{ListenAddress: "0.0.0.0"},
		Switch:     Switch{Timeout: 30 * time.Second},
		Log:        Log{Level: "info"},
		Leader:     Leader{CheckTTL: 2400 * time.Millisecond, SessionTTL: 10 * time.Second, LockDelay: 100 * time.Millisecond},
		History:    History{Retention: 1000},
		Membership: Membership{ShrinkGrace: 30 * time.Second},
		Release:    Release{MaxParallel: DefaultMaxParallel, Keep: DefaultReleaseKeep, Consumers: DefaultConsumerTest},
	}
	if !reflect.DeepEqual(*c, want) {
		t.Fatalf("got  %+v\nwant %+v", *c, want)
	}
}

func TestLoadFile(t *testing.T) {
	c, err := Load(writeYAML(t, fileYAML), nil)
	if err != nil {
		t.Fatal(err)
	}
	if c.Consul.Address != "consul.internal:8500" || c.Consul.KVPrefix != "traffic/" ||
		c.Consul.Wait != 2*time.Minute || c.Consul.Color.MetaKey != "colour" ||
		c.XDS.Listen != "0.0.0.0:18000" || c.Admin.Listen != "127.0.0.1:9191" ||
		c.Switch.Timeout != 10*time.Second {
		t.Errorf("file values not applied: %+v", *c)
	}
	// Keys the file omits keep their defaults, even inside a section it sets.
	if c.Consul.Color.BlueTag != "blue" || c.Log.Level != "info" || c.Envoy.ListenAddress != "0.0.0.0" {
		t.Errorf("defaults lost: %+v", *c)
	}
	wantSvcs := []Service{
		{Name: "web", ConsulService: "web", Port: 10000, Protocol: "http2", Analysis: DefaultAnalysis(), Strategy: "blue-green", Rolling: DefaultRolling(), Auto: DefaultAuto()},
		{Name: "api", ConsulService: "api-v2", Port: 10001, Protocol: "http1", Analysis: DefaultAnalysis(), Strategy: "blue-green", Rolling: DefaultRolling(), Auto: DefaultAuto()},
	}
	if !reflect.DeepEqual(c.Services, wantSvcs) {
		t.Errorf("services = %+v, want %+v", c.Services, wantSvcs)
	}
	if err := c.Validate(); err != nil {
		t.Errorf("Validate: %v", err)
	}
}

func TestLoadEnvOverridesFile(t *testing.T) {
	t.Setenv("BG_CONSUL_ADDRESS", "10.0.0.9:8500")
	t.Setenv("BG_ADMIN_TOKEN", "s3cret")
	t.Setenv("BG_SWITCH_TIMEOUT", "45s")
	t.Setenv("BG_CONSUL_COLOR_BLUE_TAG", "b") // nested, underscored key
	t.Setenv("BG_PROMETHEUS_ADDRESS", "http://prometheus:9090")
	c, err := Load(writeYAML(t, fileYAML), nil)
	if err != nil {
		t.Fatal(err)
	}
	if c.Consul.Address != "10.0.0.9:8500" {
		t.Errorf("consul.address = %q", c.Consul.Address)
	}
	if c.Admin.Token != "s3cret" {
		t.Errorf("admin.token = %q", c.Admin.Token)
	}
	if c.Switch.Timeout != 45*time.Second {
		t.Errorf("switch.timeout = %s", c.Switch.Timeout)
	}
	if c.Consul.Color.BlueTag != "b" {
		t.Errorf("consul.color.blue_tag = %q", c.Consul.Color.BlueTag)
	}
	if c.Prometheus.Address != "http://prometheus:9090" {
		t.Errorf("prometheus.address = %q", c.Prometheus.Address)
	}
}

// Every default key must be reachable from the environment. Per-service keys
// (services[i].*, analysis included) live in list items, which viper cannot
// bind to variables, so they are file-only; see TestLoadAnalysisNotFromEnv.
func TestLoadEnvReachesEveryKey(t *testing.T) {
	base, err := Load("", nil)
	if err != nil {
		t.Fatal(err)
	}
	for key := range defaults {
		env := "BG_" + strings.ToUpper(strings.ReplaceAll(key, ".", "_"))
		t.Run(env, func(t *testing.T) {
			val := "from-env"
			switch defaults[key].(type) {
			case time.Duration:
				val = "7s"
			case int:
				val = "77"
			case bool:
				val = "true"
			case float64:
				val = "0.95"
			}
			t.Setenv(env, val)
			c, err := Load("", nil)
			if err != nil {
				t.Fatal(err)
			}
			if reflect.DeepEqual(c, base) {
				t.Fatalf("%s did not reach %s", env, key)
			}
		})
	}
}

func TestLoadOverridesBeatEnv(t *testing.T) {
	t.Setenv("BG_XDS_LISTEN", "127.0.0.1:1")
	t.Setenv("BG_SWITCH_TIMEOUT", "45s")
	c, err := Load(writeYAML(t, fileYAML), map[string]any{
		"xds.listen":     "127.0.0.1:2",
		"switch.timeout": time.Minute, // typed values pass through
		"Log.Level":      "debug",     // keys are case-insensitive
		"admin.token":    nil,         // nil means "flag not given"
	})
	if err != nil {
		t.Fatal(err)
	}
	if c.XDS.Listen != "127.0.0.1:2" || c.Switch.Timeout != time.Minute || c.Log.Level != "debug" {
		t.Errorf("overrides lost: %+v", *c)
	}
}

func TestLoadOverrideUnknownKey(t *testing.T) {
	_, err := Load("", map[string]any{"xds.lisen": "x", "services": nil})
	if err == nil || err.Error() != "overrides: unknown keys: services, xds.lisen" {
		t.Fatalf("got %v", err)
	}
}

func TestLoadUnknownKeys(t *testing.T) {
	p := writeYAML(t, strings.Replace(fileYAML, "  kv_prefix:", "  adress: x\n  kv_prefix:", 1)+
		"    prot: http2\nlogging:\n  level: debug\n")
	_, err := Load(p, nil)
	if err == nil {
		t.Fatal("want error")
	}
	for _, key := range []string{p, "consul.adress: unknown key", "services[1].prot: unknown key", "logging: unknown key"} {
		if !strings.Contains(err.Error(), key) {
			t.Errorf("error does not mention %q:\n%v", key, err)
		}
	}
	var es Errors
	if !errors.As(err, &es) || len(es) != 3 {
		t.Errorf("want 3 Errors, got %#v", es)
	}
}

func TestLoadBadFiles(t *testing.T) {
	missing := filepath.Join(t.TempDir(), "nope.yaml")
	cases := []struct {
		name, path string
		want       []string
	}{
		{"missing", missing, []string{missing, "no such file"}},
		{"malformed", writeYAML(t, "consul: [\n"), []string{"parse config", "yaml: line"}},
		{"wrong shape", writeYAML(t, "consul: 5\n"), []string{"consul: expected a map"}},
		{"bare duration", writeYAML(t, "switch:\n  timeout: 30\n"), []string{"switch.timeout: duration 30 has no unit"}},
		{"bad duration", writeYAML(t, "consul:\n  wait: soon\n"), []string{`consul.wait: "soon" is not a duration`}},
		{"bare analysis duration", writeYAML(t, "services:\n  - name: web\n    analysis:\n      bake: 60\n"),
			[]string{"services[0].analysis.bake: duration 60 has no unit"}},
		{"unknown analysis key", writeYAML(t, "services:\n  - name: web\n    analysis:\n      margine: 0.2\n"),
			[]string{"services[0].analysis.margine: unknown key"}},
		{"steps not a list of numbers", writeYAML(t, "services:\n  - name: web\n    analysis:\n      steps: [1, half, 100]\n"),
			[]string{"services[0].analysis.steps[1]"}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			_, err := Load(tc.path, nil)
			if err == nil {
				t.Fatal("want error")
			}
			want := append(tc.want, tc.path)
			for _, w := range want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error lacks %q: %v", w, err)
				}
			}
		})
	}
}

func TestLoadBadEnvDuration(t *testing.T) {
	t.Setenv("BG_CONSUL_WAIT", "forever")
	_, err := Load("", nil)
	if err == nil || !strings.Contains(err.Error(), `consul.wait: "forever" is not a duration`) {
		t.Fatalf("got %v", err)
	}
}
