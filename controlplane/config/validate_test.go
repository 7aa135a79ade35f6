package config

import (
	"errors"
	"strings"
	"testing"
	"time"
)

// valid returns a Config that passes Validate; cases mutate one field.
func valid() *Config {
	return &Config{
		Consul: Consul{
			Address:  "127.0.0.1:8500",
			KVPrefix: "bg/",
			Wait:     5 * time.Minute,
			Color:    ColorRule{BlueTag: "blue", GreenTag: "green"},
		},
		XDS:    XDS{Listen: "127.0.0.1:18000"},
		Admin:  Admin{Listen: "127.0.0.1:9090"},
		Envoy:  Envoy{ListenAddress: "0.0.0.0"},
		Switch: Switch{Timeout: 30 * time.Second},
		Log:    Log{Level: "info"},
		Services: []Service{
			{Name: "web", ConsulService: "web", Port: 10000, Protocol: "http2"},
			{Name: "api", ConsulService: "api", Port: 10001, Protocol: "http1"},
		},
	}
}

func TestValidateOK(t *testing.T) {
	if err := valid().Validate(); err != nil {
		t.Fatalf("valid config: %v", err)
	}
}

func TestValidateRules(t *testing.T) {
	cases := []struct {
		name   string
		mutate func(*Config)
		path   string
		msg    string // substring of the message; "" means no error expected
	}{
		{"consul address empty", func(c *Config) { c.Consul.Address = "" }, "consul.address", "required"},
		{"consul address no port", func(c *Config) { c.Consul.Address = "consul" }, "consul.address", `"consul": missing port`},
		{"consul address bad scheme", func(c *Config) { c.Consul.Address = "unix:///tmp/c.sock" }, "consul.address", "scheme must be http or https"},
		{"consul address url no host", func(c *Config) { c.Consul.Address = "http://" }, "consul.address", "no host"},
		{"consul address https ok", func(c *Config) { c.Consul.Address = "https://consul.example:8501" }, "", ""},
		{"consul address url without port ok", func(c *Config) { c.Consul.Address = "http://consul" }, "", ""},
		{"kv prefix empty", func(c *Config) { c.Consul.KVPrefix = "" }, "consul.kv_prefix", "required"},
		{"kv prefix leading slash", func(c *Config) { c.Consul.KVPrefix = "/bg/" }, "consul.kv_prefix", "must not start with /"},
		{"kv prefix no trailing slash", func(c *Config) { c.Consul.KVPrefix = "bg" }, "consul.kv_prefix", "must end with /"},
		{"kv prefix nested ok", func(c *Config) { c.Consul.KVPrefix = "teams/a/bg/" }, "", ""},
		{"wait too short", func(c *Config) { c.Consul.Wait = 500 * time.Millisecond }, "consul.wait", "between 1s and 10m0s"},
		{"wait too long", func(c *Config) { c.Consul.Wait = 11 * time.Minute }, "consul.wait", "between"},
		{"wait bounds ok", func(c *Config) { c.Consul.Wait = 10 * time.Minute }, "", ""},
		{"blue tag empty", func(c *Config) { c.Consul.Color.BlueTag = "" }, "consul.color.blue_tag", "required"},
		{"green tag empty", func(c *Config) { c.Consul.Color.GreenTag = "" }, "consul.color.green_tag", "required"},
		{"tags equal", func(c *Config) { c.Consul.Color.GreenTag = "blue" }, "consul.color.green_tag", "same as blue_tag"},
		{"meta key ok", func(c *Config) { c.Consul.Color.MetaKey = "colour" }, "", ""},
		{"xds missing port", func(c *Config) { c.XDS.Listen = "x" }, "xds.listen", `"x": missing port`},
		{"xds port not numeric", func(c *Config) { c.XDS.Listen = "127.0.0.1:grpc" }, "xds.listen", "1..65535"},
		{"xds port zero", func(c *Config) { c.XDS.Listen = "127.0.0.1:0" }, "xds.listen", "1..65535"},
		{"xds port too big", func(c *Config) { c.XDS.Listen = "127.0.0.1:65536" }, "xds.listen", "1..65535"},
		{"xds empty host ok", func(c *Config) { c.XDS.Listen = ":18000" }, "", ""},
		{"admin missing port", func(c *Config) { c.Admin.Listen = "x" }, "admin.listen", `"x": missing port`},
		{"admin same as xds", func(c *Config) { c.Admin.Listen = "127.0.0.1:18000" }, "admin.listen", "conflicts with xds.listen (127.0.0.1:18000)"},
		{"admin port clashes with wildcard xds", func(c *Config) { c.XDS.Listen = ":9090" }, "admin.listen", "conflicts with xds.listen"},
		{"admin same port other host ok", func(c *Config) { c.Admin.Listen = "127.0.0.2:18000" }, "", ""},
		{"envoy address host:port", func(c *Config) { c.Envoy.ListenAddress = "0.0.0.0:10000" }, "envoy.listen_address", "must be an IP address"},
		{"envoy address ipv6 ok", func(c *Config) { c.Envoy.ListenAddress = "::" }, "", ""},
		{"timeout zero", func(c *Config) { c.Switch.Timeout = 0 }, "switch.timeout", "must be positive"},
		{"timeout negative", func(c *Config) { c.Switch.Timeout = -time.Second }, "switch.timeout", "must be positive"},
		{"log level bad", func(c *Config) { c.Log.Level = "verbose" }, "log.level", `"verbose": must be one of debug, info, warn, error`},
		{"log level debug ok", func(c *Config) { c.Log.Level = "debug" }, "", ""},
		{"no services", func(c *Config) { c.Services = nil }, "services", "at least one"},
		{"name empty", func(c *Config) { c.Services[1].Name = "" }, "services[1].name", "required"},
		{"name with dot", func(c *Config) { c.Services[1].Name = "api.v1" }, "services[1].name", "must not contain dots"},
		{"name upper case", func(c *Config) { c.Services[1].Name = "Api" }, "services[1].name", "lowercase"},
		{"name leading dash", func(c *Config) { c.Services[1].Name = "-api" }, "services[1].name", "lowercase"},
		{"name trailing dash", func(c *Config) { c.Services[1].Name = "api-" }, "services[1].name", "lowercase"},
		{"name underscore", func(c *Config) { c.Services[1].Name = "my_api" }, "services[1].name", "lowercase"},
		{"name too long", func(c *Config) { c.Services[1].Name = strings.Repeat("a", 51) }, "services[1].name", "longer than 50"},
		{"name 50 ok", func(c *Config) { c.Services[1].Name = strings.Repeat("a", 50) }, "", ""},
		{"name single char ok", func(c *Config) { c.Services[1].Name = "a" }, "", ""},
		{"name duplicate", func(c *Config) { c.Services[1].Name = "web" }, "services[1].name", `"web" already used by services[0]`},
		{"consul service empty", func(c *Config) { c.Services[1].ConsulService = "" }, "services[1].consul_service", "required"},
		{"port zero", func(c *Config) { c.Services[1].Port = 0 }, "services[1].port", "0: must be in 1..65535"},
		{"port too big", func(c *Config) { c.Services[1].Port = 70000 }, "services[1].port", "must be in 1..65535"},
		{"port duplicate", func(c *Config) { c.Services[1].Port = 10000 }, "services[1].port", "10000 already used by services[0]"},
		{"protocol bad", func(c *Config) { c.Services[1].Protocol = "grpc" }, "services[1].protocol", `"grpc": must be http1 or http2`},
		{"protocol empty", func(c *Config) { c.Services[1].Protocol = "" }, "services[1].protocol", "must be http1 or http2"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			c := valid()
			tc.mutate(c)
			err := c.Validate()
			if tc.path == "" {
				if err != nil {
					t.Fatalf("want no error, got:\n%v", err)
				}
				return
			}
			es := asErrors(t, err)
			if len(es) != 1 || es[0].Path != tc.path || !strings.Contains(es[0].Message, tc.msg) {
				t.Fatalf("want one error %s: ...%s..., got:\n%v", tc.path, tc.msg, err)
			}
		})
	}
}

func TestValidateAdminToken(t *testing.T) {
	cases := []struct {
		listen, token string
		wantErr       bool
	}{
		{"127.0.0.1:9090", "", false},
		{"127.9.9.9:9090", "", false},
		{"[::1]:9090", "", false},
		{"localhost:9090", "", false},
		{"0.0.0.0:9090", "", true},
		{":9090", "", true},
		{"[::]:9090", "", true},
		{"10.0.0.5:9090", "", true},
		{"admin.example:9090", "", true},
		{"0.0.0.0:9090", "s3cret", false},
	}
	for _, tc := range cases {
		c := valid()
		c.Admin.Listen, c.Admin.Token = tc.listen, tc.token
		err := c.Validate()
		if !tc.wantErr {
			if err != nil {
				t.Errorf("%s token=%q: unexpected %v", tc.listen, tc.token, err)
			}
			continue
		}
		want := "admin.token: required when admin.listen is not loopback (" + tc.listen + ")"
		if err == nil || err.Error() != want {
			t.Errorf("%s: got %v, want %q", tc.listen, err, want)
		}
	}
}

func TestValidateReportsEveryProblem(t *testing.T) {
	c := valid()
	c.Admin.Listen = "0.0.0.0:9090"
	c.XDS.Listen = "x"
	c.Consul.KVPrefix = "/bg"
	c.Log.Level = "loud"
	c.Services[1].Port = 10000
	c.Services[1].Name = "web.v2"
	c.Services = append(c.Services, Service{Name: "web", ConsulService: "web", Port: 10002, Protocol: "tcp"})

	want := Errors{
		{"consul.kv_prefix", `"/bg": must not start with /`},
		{"xds.listen", `"x": missing port`},
		{"admin.token", "required when admin.listen is not loopback (0.0.0.0:9090)"},
		{"log.level", `"loud": must be one of debug, info, warn, error`},
		{"services[1].name", `"web.v2": must not contain dots`},
		{"services[1].port", "10000 already used by services[0]"},
		{"services[2].name", `"web" already used by services[0]`},
		{"services[2].protocol", `"tcp": must be http1 or http2`},
	}
	err := c.Validate()
	got := asErrors(t, err)
	if got.Error() != want.Error() {
		t.Fatalf("got:\n%v\nwant:\n%v", got, want)
	}
	if lines := strings.Count(err.Error(), "\n") + 1; lines != len(want) {
		t.Errorf("Error() has %d lines, want one per problem (%d)", lines, len(want))
	}
}

func TestValidateDoesNotModify(t *testing.T) {
	c := valid()
	c.Services[0].Protocol = ""
	_ = c.Validate()
	if c.Services[0].Protocol != "" {
		t.Fatal("Validate filled a default")
	}
}

func asErrors(t *testing.T, err error) Errors {
	t.Helper()
	var es Errors
	if !errors.As(err, &es) {
		t.Fatalf("want config.Errors, got %T: %v", err, err)
	}
	return es
}
