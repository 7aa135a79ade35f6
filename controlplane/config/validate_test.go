package config

import (
	"github.com/bgctl/bg/controlplane/model"

	"github.com/bgctl/bg/controlplane/fleetmetrics/prometheus"

	"errors"
	"math"
	"strings"
	"testing"
	"text/template"
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
		XDS:        XDS{Listen: "127.0.0.1:18000"},
		Admin:      Admin{Listen: "127.0.0.1:9090"},
		Envoy:      Envoy{ListenAddress: "0.0.0.0"},
		Switch:     Switch{Timeout: 30 * time.Second},
		Log:        Log{Level: "info"},
		Leader:     Leader{CheckTTL: 2 * time.Second, SessionTTL: 10 * time.Second, LockDelay: 500 * time.Millisecond},
		History:    History{Retention: 1000},
		Membership: Membership{ShrinkGrace: 30 * time.Second},
		Release:    Release{MaxParallel: 4, Keep: 50, Consumers: DefaultConsumerTest},
		Services: []Service{
			{Name: "web", ConsulService: "web", Port: 10000, Protocol: "http2", Analysis: DefaultAnalysis()},
			{Name: "api", ConsulService: "api", Port: 10001, Protocol: "http1", Analysis: DefaultAnalysis()},
		},
	}
}

func TestValidateOK(t *testing.T) {
	if err := valid().Validate(); err != nil {
		t.Fatalf("valid config: %v", err)
	}
}

// ruleCase mutates a valid config and expects one error at path whose
// message contains msg, or none when path is "".
type ruleCase struct {
	name   string
	mutate func(*Config)
	path   string
	msg    string
}

func runRuleCases(t *testing.T, cases []ruleCase) {
	t.Helper()
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

func TestValidateRules(t *testing.T) {
	cases := []ruleCase{
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
		{"consumer lookback too short", func(c *Config) { c.Release.Consumers.Lookback = 30 * time.Second }, "release.consumers.lookback", "between 1m and 24h"},
		{"consumer confidence 1", func(c *Config) { c.Release.Consumers.Confidence = 1 }, "release.consumers.confidence", "below 1"},
		{"consumer margin negative", func(c *Config) { c.Release.Consumers.Margin = -0.1 }, "release.consumers.margin", "between 0 and 10"},
		{"consumer min errors 0", func(c *Config) { c.Release.Consumers.MinErrors = 0 }, "release.consumers.min_errors", "at least 1"},
		{"watch consumers without prometheus", func(c *Config) { c.Release.WatchConsumers = true; c.Prometheus.Address = "" }, "release.watch_consumers", "needs prometheus.address"},
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
		// 0 is no port (no Envoy listener); Load refuses an explicit port: 0 (TestLoadPortOptional).
		{"port zero is none", func(c *Config) { c.Services[1].Port = 0 }, "", ""},
		{"port too big", func(c *Config) { c.Services[1].Port = 70000 }, "services[1].port", "must be in 1..65535"},
		{"port duplicate", func(c *Config) { c.Services[1].Port = 10000 }, "services[1].port", "10000 already used by services[0]"},
		{"port negative", func(c *Config) { c.Services[1].Port = -1 }, "services[1].port", "-1: must be in 1..65535 (leave port out for a service without an Envoy listener)"},
		{"port 65535 ok", func(c *Config) { c.Services[1].Port = 65535 }, "", ""},
		{"no port on either ok", func(c *Config) { c.Services[0].Port, c.Services[1].Port = 0, 0 }, "", ""},
		{"protocol bad", func(c *Config) { c.Services[1].Protocol = "grpc" }, "services[1].protocol", `"grpc": must be http1 or http2`},
		{"protocol empty", func(c *Config) { c.Services[1].Protocol = "" }, "services[1].protocol", "must be http1 or http2"},

		// prometheus.address: empty means not configured, which is valid.
		{"prometheus empty ok", func(c *Config) { c.Prometheus.Address = "" }, "", ""},
		{"prometheus http ok", func(c *Config) { c.Prometheus.Address = "http://prometheus:9090" }, "", ""},
		{"prometheus https path ok", func(c *Config) { c.Prometheus.Address = "https://mon.example/prometheus" }, "", ""},
		{"prometheus host:port", func(c *Config) { c.Prometheus.Address = "prometheus:9090" }, "prometheus.address", "scheme must be http or https"},
		{"prometheus bare host", func(c *Config) { c.Prometheus.Address = "prometheus" }, "prometheus.address", "scheme must be http or https"},
		{"prometheus bad scheme", func(c *Config) { c.Prometheus.Address = "ftp://prometheus" }, "prometheus.address", "scheme must be http or https"},
		{"prometheus no host", func(c *Config) { c.Prometheus.Address = "http://" }, "prometheus.address", "no host"},
		{"prometheus unparsable", func(c *Config) { c.Prometheus.Address = "http://[::1" }, "prometheus.address", "not a valid URL"},

		// membership.shrink_grace: 0 disables the grace; at most 1h.
		{"shrink grace zero ok", func(c *Config) { c.Membership.ShrinkGrace = 0 }, "", ""},
		{"shrink grace 1h ok", func(c *Config) { c.Membership.ShrinkGrace = time.Hour }, "", ""},
		{"shrink grace negative", func(c *Config) { c.Membership.ShrinkGrace = -time.Second }, "membership.shrink_grace", "-1s: must be between 0s (no grace) and 1h"},
		{"shrink grace too long", func(c *Config) { c.Membership.ShrinkGrace = time.Hour + time.Second }, "membership.shrink_grace", "1h0m1s: must be between 0s (no grace) and 1h"},

		// analysis, on services[1]
		{"requests empty", func(c *Config) { an(c).Requests = " " }, "services[1].analysis.requests", "required"},
		{"requests parse error", func(c *Config) { an(c).Requests = "sum({{.Cluster)" }, "services[1].analysis.requests", "template: query:1:"},
		{"requests unknown field", func(c *Config) { an(c).Requests = "{{.Clustr}}" }, "services[1].analysis.requests", "can't evaluate field Clustr"},
		{"requests renders empty", func(c *Config) { an(c).Requests = `{{if eq .Color "blue"}}x{{end}}` }, "services[1].analysis.requests", "renders an empty query"},
		{"requests custom ok", func(c *Config) {
			an(c).Requests = `http_requests_total{service="{{.Service}}",color="{{.Color}}"}`
		}, "", ""},
		// Templates written for the retired window are refused at their own
		// path, with how to migrate.
		{"requests windowed", func(c *Config) {
			an(c).Requests = `sum(increase(http_requests_total{service="{{.Service}}",color="{{.Color}}"}[{{.Window}}]))`
		}, "services[1].analysis.requests", "windowed templates are retired"},
		{"requests with .Window only", func(c *Config) {
			an(c).Requests = `http_requests_total{color="{{.Color}}"}[{{ .Window }}]`
		}, "services[1].analysis.requests", "the template uses .Window"},
		{"requests with rate", func(c *Config) {
			an(c).Requests = `sum(rate(http_requests_total{color="{{.Color}}"}[1m]))`
		}, "services[1].analysis.requests", "the template uses rate"},
		{"errors with increase", func(c *Config) {
			an(c).Errors = `sum(increase(http_errors_total{color="{{.Color}}"}[5m])) or vector(0)`
		}, "services[1].analysis.errors", "the template uses increase"},
		// (The message names rate here: "rate(" is matched before "irate(".)
		{"errors with irate", func(c *Config) { an(c).Errors = `irate(http_errors_total{color="{{.Color}}"}[5m])` }, "services[1].analysis.errors", "windowed templates are retired"},
		{"errors with sum_over_time", func(c *Config) {
			an(c).Errors = `sum_over_time(http_errors_total{color="{{.Color}}"}[5m])`
		}, "services[1].analysis.errors", "_over_time"},
		{"errors with spaced increase", func(c *Config) {
			an(c).Errors = `increase (http_errors_total{color="{{.Color}}"}[5m])`
		}, "services[1].analysis.errors", "the template uses increase"},
		{"errors parse error", func(c *Config) { an(c).Errors = "{{" }, "services[1].analysis.errors", "template: query:1:"},
		{"errors empty", func(c *Config) { an(c).Errors = "" }, "services[1].analysis.errors", "required"},
		{"interval too short", func(c *Config) { an(c).Interval = 999 * time.Millisecond }, "services[1].analysis.interval", "999ms: must be at least 1s"},
		{"interval 1s ok", func(c *Config) { an(c).Interval = time.Second }, "", ""},
		{"window retired", func(c *Config) { an(c).Window = 2 * time.Minute }, "services[1].analysis.window", "2m0s: window is retired"},
		{"window retired, says to remove it", func(c *Config) { an(c).Window = time.Minute }, "services[1].analysis.window", "remove the key"},
		{"window tiny still retired", func(c *Config) { an(c).Window = time.Nanosecond }, "services[1].analysis.window", "retired"},
		{"window zero (absent) ok", func(c *Config) { an(c).Window = 0 }, "", ""},
		{"steps empty", func(c *Config) { an(c).Steps = []int{} }, "services[1].analysis.steps", "at least one step"},
		{"steps nil", func(c *Config) { an(c).Steps = nil }, "services[1].analysis.steps", "at least one step"},
		{"steps just 100 ok", func(c *Config) { an(c).Steps = []int{100} }, "", ""},
		{"step zero", func(c *Config) { an(c).Steps = []int{0, 100} }, "services[1].analysis.steps", "step 0 (0): must be a percentage in 1..100"},
		{"step negative", func(c *Config) { an(c).Steps = []int{-5, 100} }, "services[1].analysis.steps", "step 0 (-5): must be a percentage"},
		{"step over 100", func(c *Config) { an(c).Steps = []int{50, 101, 100} }, "services[1].analysis.steps", "step 1 (101): must be a percentage"},
		{"steps repeated", func(c *Config) { an(c).Steps = []int{5, 5, 100} }, "services[1].analysis.steps", "step 1 (5): must be greater than step 0 (5)"},
		{"last step not 100", func(c *Config) { an(c).Steps = []int{1, 50} }, "services[1].analysis.steps", "last step is 50: must be 100"},
		{"steps 20 ok", func(c *Config) { an(c).Steps = seq(5, 20) }, "", ""},
		{"steps 21", func(c *Config) { an(c).Steps = append([]int{1}, seq(4, 20)...) }, "services[1].analysis.steps", "21 steps: at most 20"},
		{"bake negative", func(c *Config) { an(c).Bake = -time.Second }, "services[1].analysis.bake", "-1s: must not be negative"},
		{"bake zero ok", func(c *Config) { an(c).Bake = 0 }, "", ""},
		{"min requests zero", func(c *Config) { an(c).MinRequests = 0 }, "services[1].analysis.min_requests", "0: must be a finite number of at least 1"},
		{"min requests fraction", func(c *Config) { an(c).MinRequests = 0.5 }, "services[1].analysis.min_requests", "at least 1"},
		{"min requests NaN", func(c *Config) { an(c).MinRequests = math.NaN() }, "services[1].analysis.min_requests", "NaN"},
		{"min requests Inf", func(c *Config) { an(c).MinRequests = math.Inf(1) }, "services[1].analysis.min_requests", "+Inf"},
		{"min requests 1 ok", func(c *Config) { an(c).MinRequests = 1 }, "", ""},
		{"confidence 0.5", func(c *Config) { an(c).Confidence = 0.5 }, "services[1].analysis.confidence", "0.5: must be between 0.5 and 1, exclusive"},
		{"confidence 1", func(c *Config) { an(c).Confidence = 1 }, "services[1].analysis.confidence", "between 0.5 and 1"},
		{"confidence percent", func(c *Config) { an(c).Confidence = 99 }, "services[1].analysis.confidence", "99: must be between"},
		{"confidence NaN", func(c *Config) { an(c).Confidence = math.NaN() }, "services[1].analysis.confidence", "NaN"},
		{"confidence 0.51 ok", func(c *Config) { an(c).Confidence = 0.51 }, "", ""},
		{"confidence 0.999 ok", func(c *Config) { an(c).Confidence = 0.999 }, "", ""},
		{"margin negative", func(c *Config) { an(c).Margin = -0.1 }, "services[1].analysis.margin", "-0.1: must be in 0..10"},
		{"margin too big", func(c *Config) { an(c).Margin = 10.5 }, "services[1].analysis.margin", "must be in 0..10"},
		{"margin NaN", func(c *Config) { an(c).Margin = math.NaN() }, "services[1].analysis.margin", "NaN"},
		{"margin zero ok", func(c *Config) { an(c).Margin = 0 }, "", ""},
		{"margin 10 ok", func(c *Config) { an(c).Margin = 10 }, "", ""},
		{"budget below interval", func(c *Config) { an(c).UnavailableBudget = 5 * time.Second }, "services[1].analysis.unavailable_budget", "5s: must be at least interval (10s)"},
		{"budget equals interval ok", func(c *Config) { an(c).UnavailableBudget = 10 * time.Second }, "", ""},
		{"on unavailable bad", func(c *Config) { an(c).OnUnavailable = "ignore" }, "services[1].analysis.on_unavailable", `"ignore": must be rollback or hold`},
		{"on unavailable empty", func(c *Config) { an(c).OnUnavailable = "" }, "services[1].analysis.on_unavailable", "must be rollback or hold"},
		{"on unavailable hold ok", func(c *Config) { an(c).OnUnavailable = OnUnavailableHold }, "", ""},
		{"insufficient budget below interval", func(c *Config) { an(c).InsufficientBudget = 5 * time.Second }, "services[1].analysis.insufficient_budget", "5s: must be at least interval (10s)"},
		{"insufficient budget zero", func(c *Config) { an(c).InsufficientBudget = 0 }, "services[1].analysis.insufficient_budget", "0s: must be at least interval (10s)"},
		{"insufficient budget equals interval ok", func(c *Config) { an(c).InsufficientBudget = 10 * time.Second }, "", ""},
		{"on insufficient bad", func(c *Config) { an(c).OnInsufficient = "wait" }, "services[1].analysis.on_insufficient", `"wait": must be rollback or hold`},
		{"on insufficient empty", func(c *Config) { an(c).OnInsufficient = "" }, "services[1].analysis.on_insufficient", "must be rollback or hold"},
		{"on insufficient hold ok", func(c *Config) { an(c).OnInsufficient = OnUnavailableHold }, "", ""},

		// analysis.latency: checked when enabled.
		{"latency defaults enabled ok", func(c *Config) { an(c).Latency.Enabled = true }, "", ""},
		{"latency seconds ok", func(c *Config) { lat(c).Unit = "s" }, "", ""},
		{"latency zero margins ok", func(c *Config) { lat(c).Relative, lat(c).Absolute = 0, 0 }, "", ""},
		{"latency relative 10 ok", func(c *Config) { lat(c).Relative = 10 }, "", ""},
		{"latency app histogram ok", func(c *Config) {
			lat(c).Query, lat(c).Unit = `http_request_duration_seconds_bucket{service="{{.Service}}",color="{{.Color}}"}`, "s"
		}, "", ""},
		{"latency unit us", func(c *Config) { lat(c).Unit = "us" }, "services[1].analysis.latency.unit", `"us": must be ms`},
		{"latency unit empty", func(c *Config) { lat(c).Unit = "" }, "services[1].analysis.latency.unit", `"": must be ms`},
		{"latency quantile 1", func(c *Config) { lat(c).Quantile = 1 }, "services[1].analysis.latency.quantile", "1: must be between 0.5 and 1, exclusive"},
		{"latency quantile 0.5", func(c *Config) { lat(c).Quantile = 0.5 }, "services[1].analysis.latency.quantile", "between 0.5 and 1"},
		{"latency quantile percent", func(c *Config) { lat(c).Quantile = 99 }, "services[1].analysis.latency.quantile", "99: must be between"},
		{"latency quantile NaN", func(c *Config) { lat(c).Quantile = math.NaN() }, "services[1].analysis.latency.quantile", "NaN"},
		{"latency relative negative", func(c *Config) { lat(c).Relative = -0.2 }, "services[1].analysis.latency.relative", "-0.2: must be in 0..10"},
		{"latency relative NaN", func(c *Config) { lat(c).Relative = math.NaN() }, "services[1].analysis.latency.relative", "NaN"},
		{"latency absolute negative", func(c *Config) { lat(c).Absolute = -time.Millisecond }, "services[1].analysis.latency.absolute", "-1ms: must not be negative"},
		{"latency query empty", func(c *Config) { lat(c).Query = "" }, "services[1].analysis.latency.query", "required"},
		{"latency query unknown field", func(c *Config) { lat(c).Query = "{{.Window}}" }, "services[1].analysis.latency.query", "the template uses .Window"},
		{"latency query with rate", func(c *Config) {
			lat(c).Query = `histogram_quantile(0.99, sum by (le) (rate(http_request_duration_seconds_bucket{color="{{.Color}}"}[1m])))`
		}, "services[1].analysis.latency.query", "windowed templates are retired"},
		{"rollback bad", func(c *Config) { an(c).Rollback = "slow" }, "services[1].analysis.rollback", `"slow": must be instant or gradual`},
		{"rollback gradual ok", func(c *Config) { an(c).Rollback = RollbackGradual }, "", ""},
	}
	runRuleCases(t, cases)
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
		c.Admin.Listen, c.Admin.Token = tc.listen, Secret(tc.token)
		c.Admin.InsecurePlaintext = true // this test is about the token; TLS: TestValidateAdminTLS
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
	c.Services = append(c.Services, Service{Name: "web", ConsulService: "web", Port: 10002, Protocol: "tcp", Analysis: DefaultAnalysis()})
	c.Prometheus.Address = "prometheus:9090"
	c.Services[0].Analysis.Margin = -1
	c.Services[2].Analysis.Steps = []int{50, 25}

	want := Errors{
		{"consul.kv_prefix", `"/bg": must not start with /`},
		{"xds.listen", `"x": missing port`},
		{"admin.token", "required when admin.listen is not loopback (0.0.0.0:9090)"},
		{"prometheus.address", `"prometheus:9090": URL scheme must be http or https`},
		{"log.level", `"loud": must be one of debug, info, warn, error`},
		{"services[0].analysis.margin", "-1: must be in 0..10"},
		{"services[1].name", `"web.v2": must not contain dots`},
		{"services[1].port", "10000 already used by services[0]"},
		{"services[2].name", `"web" already used by services[0]`},
		{"services[2].protocol", `"tcp": must be http1 or http2`},
		{"services[2].analysis.steps", "step 1 (25): must be greater than step 0 (50)"},
		{"services[2].analysis.steps", "last step is 25: must be 100"},
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

// an is the analysis block that TestValidateRules cases mutate.
func an(c *Config) *Analysis { return &c.Services[1].Analysis }

// lat enables services[1]'s latency judge and returns it.
func lat(c *Config) *Latency {
	an(c).Latency.Enabled = true
	return &an(c).Latency
}

// seq returns n increasing steps of width step ending at 100.
func seq(step, n int) []int {
	s := make([]int, n)
	for i := range s {
		s[i] = 100 - (n-1-i)*step
	}
	return s
}

func TestValidateDefaultAnalysis(t *testing.T) {
	a := DefaultAnalysis()
	var es Errors
	validateAnalysis(&a, "a", &es)
	if len(es) != 0 {
		t.Fatalf("defaults invalid:\n%v", es)
	}
}

// The default templates are the documented Envoy queries.
func TestDefaultQueriesRender(t *testing.T) {
	for _, tc := range []struct{ text, want string }{
		{DefaultRequestsQuery, `envoy_cluster_upstream_rq_total{envoy_cluster_name="web-green"}`},
		{DefaultErrorsQuery, `envoy_cluster_upstream_rq_xx{envoy_cluster_name="web-green",envoy_response_code_class="5"}`},
		{DefaultLatency().Query, `envoy_cluster_upstream_rq_time_bucket{envoy_cluster_name="web-green"}`},
	} {
		var out strings.Builder
		data := prometheus.NewTemplateData("web", model.Green)
		if err := template.Must(template.New("q").Parse(tc.text)).Execute(&out, data); err != nil {
			t.Fatal(err)
		}
		if out.String() != tc.want {
			t.Errorf("got  %s\nwant %s", out.String(), tc.want)
		}
	}
}

// retiredMessage is what prometheus.ValidateTemplate says of a windowed
// template, checked to be the retired-template error with its migration hint.
func retiredMessage(t *testing.T, tmpl string) string {
	t.Helper()
	err := prometheus.ValidateTemplate(tmpl)
	if !errors.Is(err, prometheus.ErrRetiredTemplate) {
		t.Fatalf("ValidateTemplate(%s) = %v, want ErrRetiredTemplate", tmpl, err)
	}
	for _, hint := range []string{"analysis.window is gone", "select the counter itself", "becomes"} {
		if !strings.Contains(err.Error(), hint) {
			t.Errorf("%v: lacks the migration hint %q", err, hint)
		}
	}
	return err.Error()
}

// Analysis errors are reported all at once, in field order.
func TestValidateAnalysisReportsEveryProblem(t *testing.T) {
	c := valid()
	a := an(c)
	a.Requests = "{{.Nope}}"
	a.Interval = 2 * time.Minute
	a.Steps = []int{0, 50, 40}
	a.Window = time.Minute
	a.Errors = `sum(increase(err{cluster="{{.Cluster}}"}[{{.Window}}]))`
	a.Confidence = 1
	a.InsufficientBudget = 90 * time.Second
	a.OnInsufficient = "later"
	a.Latency = Latency{Enabled: true, Query: DefaultLatency().Query, Unit: "us", Quantile: 1, Relative: 0.2, Absolute: -time.Millisecond}
	a.Rollback = "later"
	want := Errors{
		{"services[1].analysis.requests", `template: query:1:2: executing "query" at <.Nope>: can't evaluate field Nope in type prometheus.TemplateData`},
		{"services[1].analysis.errors", retiredMessage(t, a.Errors)},
		{"services[1].analysis.window", "1m0s: window is retired: each switch now counts requests and errors exactly from its own start, " +
			"with no window; remove the key (and any {{.Window}} from the queries)"},
		{"services[1].analysis.steps", "step 0 (0): must be a percentage in 1..100"},
		{"services[1].analysis.steps", "step 2 (40): must be greater than step 1 (50)"},
		{"services[1].analysis.steps", "last step is 40: must be 100"},
		{"services[1].analysis.confidence", "1: must be between 0.5 and 1, exclusive"},
		{"services[1].analysis.unavailable_budget", "1m0s: must be at least interval (2m0s)"},
		{"services[1].analysis.insufficient_budget", "1m30s: must be at least interval (2m0s)"},
		{"services[1].analysis.on_insufficient", `"later": must be rollback or hold`},
		{"services[1].analysis.latency.unit", `"us": must be ms (Envoy's upstream_rq_time) or s`},
		{"services[1].analysis.latency.quantile", "1: must be between 0.5 and 1, exclusive"},
		{"services[1].analysis.latency.absolute", "-1ms: must not be negative"},
		{"services[1].analysis.rollback", `"later": must be instant or gradual`},
	}
	if got := asErrors(t, c.Validate()); got.Error() != want.Error() {
		t.Fatalf("got:\n%v\nwant:\n%v", got, want)
	}
}
