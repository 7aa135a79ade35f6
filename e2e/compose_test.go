package e2e

// Static checks of the Docker Compose stack (docker-compose.yml, Dockerfile,
// configs/envoy.yaml, configs/compose/): CI has no Docker engine, so these
// parse and validate everything `docker compose up` would feed the real
// programs, without running them.

import (
	"bufio"
	"encoding/json"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"

	bootstrap "github.com/envoyproxy/go-control-plane/envoy/config/bootstrap/v3"
	listener "github.com/envoyproxy/go-control-plane/envoy/config/listener/v3"
	"github.com/envoyproxy/go-control-plane/pkg/cache/types"
	"go.yaml.in/yaml/v3"
	"google.golang.org/protobuf/encoding/protojson"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/reflect/protoreflect"
	"google.golang.org/protobuf/types/known/anypb"

	// Typed configs the bootstrap packs in Any fields.
	_ "github.com/envoyproxy/go-control-plane/envoy/extensions/upstreams/http/v3"

	"github.com/bgctl/bg/controlplane/config"
	"github.com/bgctl/bg/controlplane/model"
	"github.com/bgctl/bg/controlplane/translator"
	"github.com/bgctl/bg/e2e/harness"
)

const (
	composeFile       = "docker-compose.yml"
	composeBGConfig   = "configs/compose/bg.yaml"
	composePrometheus = "configs/compose/prometheus.yml"
	envoyBootstrap    = "configs/envoy.yaml"
)

// composeSpec is the part of the Compose file the checks read. Volumes and
// ports take both the short (string) and the long (map) syntax.
type composeSpec struct {
	Services map[string]composeService `yaml:"services"`
}

type composeService struct {
	Image       string         `yaml:"image"`
	Build       any            `yaml:"build"` // "path" or {context, dockerfile, target}
	Command     any            `yaml:"command"`
	Entrypoint  any            `yaml:"entrypoint"`
	Environment any            `yaml:"environment"`
	Volumes     []any          `yaml:"volumes"`
	Ports       []any          `yaml:"ports"`
	DependsOn   any            `yaml:"depends_on"`
	Extra       map[string]any `yaml:",inline"`
}

func readYAML(t *testing.T, path string, into any) {
	t.Helper()
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if err := yaml.Unmarshal(data, into); err != nil {
		t.Fatalf("%s: %v", path, err)
	}
}

func loadCompose(t *testing.T) (root string, spec composeSpec) {
	t.Helper()
	root = harness.RepoRoot(t)
	readYAML(t, filepath.Join(root, composeFile), &spec)
	if len(spec.Services) == 0 {
		t.Fatalf("%s: no services", composeFile)
	}
	return root, spec
}

// pinnedTag: an exact version (at least major.minor), optionally v-prefixed
// and with a variant suffix (1.26.8-bookworm, 12.11-slim).
var pinnedTag = regexp.MustCompile(`^v?[0-9]+\.[0-9]+(\.[0-9]+)*([.-][A-Za-z0-9._-]+)?$`)

// checkPinned reports why an image reference is not pinned, or "".
func checkPinned(ref string) string {
	if ref == "" {
		return "no image"
	}
	if strings.Contains(ref, "${") {
		return "tag comes from a variable"
	}
	if _, digest, ok := strings.Cut(ref, "@"); ok {
		if strings.HasPrefix(digest, "sha256:") && len(digest) == len("sha256:")+64 {
			return ""
		}
		return "malformed digest " + digest
	}
	// The tag follows the last colon after the last slash (registry:port/x).
	name := ref[strings.LastIndex(ref, "/")+1:]
	i := strings.LastIndex(name, ":")
	if i < 0 {
		return "no tag (means latest)"
	}
	tag := name[i+1:]
	switch {
	case tag == "latest":
		return "tag latest"
	case !pinnedTag.MatchString(tag):
		return fmt.Sprintf("tag %q is not an exact version (major.minor at least)", tag)
	}
	return ""
}

func TestComposeImagePinning(t *testing.T) {
	for ref, want := range map[string]bool{
		"hashicorp/consul:1.20.1": true, "envoyproxy/envoy:v1.37.9": true, "golang:1.26.8-bookworm": true,
		"debian:12.11-slim": true, "localhost:5000/x/y:2.1": true,
		"debian@sha256:" + strings.Repeat("a", 64): true,
		"consul": false, "consul:latest": false, "envoyproxy/envoy:v1": false, "golang:1-bookworm": false,
		"debian:bookworm-slim": false, "localhost:5000/x": false, "prom/prometheus:${TAG}": false,
	} {
		if got := checkPinned(ref) == ""; got != want {
			t.Errorf("checkPinned(%q) = %q, want pinned=%v", ref, checkPinned(ref), want)
		}
	}
}

// composeBuild is a service's build section, defaults filled in.
type composeBuild struct {
	Context, Dockerfile, Target string
}

func buildOf(t *testing.T, name string, s composeService) (composeBuild, bool) {
	t.Helper()
	switch b := s.Build.(type) {
	case nil:
		return composeBuild{}, false
	case string:
		return composeBuild{Context: b, Dockerfile: "Dockerfile"}, true
	case map[string]any:
		out := composeBuild{Context: ".", Dockerfile: "Dockerfile"}
		for k, v := range b {
			str, _ := v.(string)
			switch k {
			case "context":
				out.Context = str
			case "dockerfile":
				out.Dockerfile = str
			case "target":
				out.Target = str
			}
		}
		return out, true
	default:
		t.Fatalf("service %s: build is a %T", name, s.Build)
		return composeBuild{}, false
	}
}

// dockerStage is one FROM line.
type dockerStage struct {
	line       int
	base, name string
}

func dockerStages(t *testing.T, path string) []dockerStage {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	var out []dockerStage
	sc := bufio.NewScanner(f)
	for n := 1; sc.Scan(); n++ {
		fields := strings.Fields(sc.Text())
		if len(fields) < 2 || !strings.EqualFold(fields[0], "FROM") {
			continue
		}
		args := fields[1:]
		for len(args) > 0 && strings.HasPrefix(args[0], "--") { // --platform=...
			args = args[1:]
		}
		if len(args) == 0 {
			t.Fatalf("%s:%d: FROM without an image", path, n)
		}
		st := dockerStage{line: n, base: args[0]}
		if len(args) == 3 && strings.EqualFold(args[1], "AS") {
			st.name = args[2]
		} else if len(args) != 1 {
			t.Fatalf("%s:%d: cannot parse %q", path, n, sc.Text())
		}
		out = append(out, st)
	}
	if err := sc.Err(); err != nil {
		t.Fatal(err)
	}
	return out
}

// Every image is pinned, directly or through the repo's Dockerfile.
func TestComposeImagesPinned(t *testing.T) {
	root, spec := loadCompose(t)
	checked := map[string][]string{} // Dockerfile -> its stage names
	for name, s := range spec.Services {
		b, built := buildOf(t, name, s)
		if !built {
			if why := checkPinned(s.Image); why != "" {
				t.Errorf("service %s: image %q: %s", name, s.Image, why)
			} else {
				t.Logf("service %s: %s", name, s.Image)
			}
			continue
		}
		if s.Image != "" {
			if why := checkPinned(s.Image); why != "" {
				t.Errorf("service %s: built from %s but also names image %q (%s), which compose would pull or push", name, b.Dockerfile, s.Image, why)
			}
		}
		ctx := filepath.Join(root, b.Context)
		if fi, err := os.Stat(ctx); err != nil || !fi.IsDir() {
			t.Errorf("service %s: build context %s is not a directory in the repo: %v", name, b.Context, err)
			continue
		}
		df := filepath.Join(ctx, b.Dockerfile)
		if _, err := os.Stat(df); err != nil {
			t.Errorf("service %s: dockerfile: %v", name, err)
			continue
		}
		seen, done := checked[df]
		if !done {
			stages := dockerStages(t, df)
			if len(stages) == 0 {
				t.Errorf("service %s: %s has no FROM", name, b.Dockerfile)
			}
			for _, st := range stages {
				if !slices.Contains(seen, st.base) { // not FROM an earlier stage
					if why := checkPinned(st.base); why != "" {
						t.Errorf("%s:%d: FROM %s: %s", b.Dockerfile, st.line, st.base, why)
					}
				}
				if st.name != "" {
					seen = append(seen, st.name)
				}
			}
			checked[df] = seen
		}
		if b.Target != "" && !slices.Contains(seen, b.Target) {
			t.Errorf("service %s: build target %q is not a stage of %s (stages %v)", name, b.Target, b.Dockerfile, seen)
		}
		t.Logf("service %s: built from %s target %q", name, b.Dockerfile, b.Target)
	}
}

// bindSource returns the host path of a bind mount, or "" for a named volume.
func bindSource(t *testing.T, service string, v any) string {
	t.Helper()
	switch m := v.(type) {
	case string:
		src, _, ok := strings.Cut(m, ":")
		if !ok {
			return "" // anonymous volume: container path only
		}
		if strings.HasPrefix(src, ".") || strings.HasPrefix(src, "/") || strings.HasPrefix(src, "~") {
			return src
		}
		return "" // named volume
	case map[string]any:
		if m["type"] != "bind" {
			return ""
		}
		src, _ := m["source"].(string)
		return src
	default:
		t.Fatalf("service %s: volume is a %T", service, v)
		return ""
	}
}

// Every bind-mounted file or directory exists in the repo, relative to the
// compose file. That includes the Grafana provisioning and dashboard.
func TestComposeMountsExist(t *testing.T) {
	root, spec := loadCompose(t)
	var mounts []string
	for name, s := range spec.Services {
		for _, v := range s.Volumes {
			src := bindSource(t, name, v)
			if src == "" {
				continue
			}
			if filepath.IsAbs(src) || strings.HasPrefix(src, "~") || strings.HasPrefix(src, "..") {
				t.Errorf("service %s: bind mount %s is outside the repo", name, src)
				continue
			}
			mounts = append(mounts, filepath.Clean(src))
			if _, err := os.Stat(filepath.Join(root, src)); err != nil {
				t.Errorf("service %s: bind mount source %s: %v", name, src, err)
			}
		}
	}
	// These must be mounted, not just exist.
	for _, want := range []string{composeBGConfig, composePrometheus, envoyBootstrap, "configs/grafana/provisioning", "dashboards/bg.json"} {
		if !slices.Contains(mounts, want) {
			t.Errorf("%s is not bind-mounted by any service (mounts: %v)", want, mounts)
		}
	}
}

// bgComposeConfig loads configs/compose/bg.yaml as `bg serve` does in the
// container: the admin token comes from BG_ADMIN_TOKEN.
func bgComposeConfig(t *testing.T, root string) *config.Config {
	t.Helper()
	for _, k := range []string{"BG_CONSUL_ADDRESS", "BG_XDS_LISTEN", "BG_ADMIN_LISTEN", "BG_PROMETHEUS_ADDRESS", "BG_ENVOY_LISTEN_ADDRESS", "BG_CONFIG"} {
		t.Setenv(k, "")
	}
	t.Setenv("BG_ADMIN_TOKEN", "compose-test-token")
	cfg, err := config.Load(filepath.Join(root, composeBGConfig), nil)
	if err != nil {
		t.Fatal(err)
	}
	if err := cfg.Validate(); err != nil {
		t.Fatalf("%s: %v", composeBGConfig, err)
	}
	return cfg
}

func TestComposeBGConfig(t *testing.T) {
	root, spec := loadCompose(t)

	// The secret is not in the file: without the env var bg must refuse.
	t.Setenv("BG_ADMIN_TOKEN", "")
	cfg, err := config.Load(filepath.Join(root, composeBGConfig), nil)
	if err != nil {
		t.Fatal(err)
	}
	if cfg.Admin.Token != "" {
		t.Errorf("%s holds admin.token; pass it as BG_ADMIN_TOKEN instead", composeBGConfig)
	}
	if err := cfg.Validate(); err == nil || !strings.Contains(err.Error(), "admin.token") {
		t.Errorf("without BG_ADMIN_TOKEN, Validate = %v; want an admin.token error", err)
	}

	cfg = bgComposeConfig(t, root)
	for what, got := range map[string][2]string{
		"consul.address":        {cfg.Consul.Address, "consul:8500"},
		"prometheus.address":    {cfg.Prometheus.Address, "http://prometheus:9090"},
		"xds.listen":            {cfg.XDS.Listen, "0.0.0.0:18000"},
		"admin.listen":          {cfg.Admin.Listen, "0.0.0.0:9090"},
		"envoy.listen_address":  {cfg.Envoy.ListenAddress, "0.0.0.0"},
		"services[demo] exists": {strconv.FormatBool(slices.ContainsFunc(cfg.Services, func(s config.Service) bool { return s.Name == "demo" })), "true"},
	} {
		if got[0] != got[1] {
			t.Errorf("%s = %q, want %q", what, got[0], got[1])
		}
	}

	// The compose wiring matches the config: bg gets the token and mounts
	// the file at the path its command reads, and Envoy publishes every
	// service's listener port.
	bg, ok := spec.Services["bg"]
	if !ok {
		t.Fatal("no service bg")
	}
	if !strings.Contains(fmt.Sprint(bg.Environment), "BG_ADMIN_TOKEN") {
		t.Errorf("service bg does not set BG_ADMIN_TOKEN (environment %v)", bg.Environment)
	}
	cmd := fmt.Sprint(bg.Command)
	if !strings.Contains(cmd, "serve") || !strings.Contains(cmd, "/etc/bg/bg.yaml") {
		t.Errorf("service bg command %v, want serve --config /etc/bg/bg.yaml", bg.Command)
	}
	if !slices.ContainsFunc(bg.Volumes, func(v any) bool {
		s, _ := v.(string)
		return strings.HasPrefix(s, "./"+composeBGConfig+":/etc/bg/bg.yaml")
	}) {
		t.Errorf("service bg does not mount %s at /etc/bg/bg.yaml (volumes %v)", composeBGConfig, bg.Volumes)
	}
	envoy, ok := spec.Services["envoy"]
	if !ok {
		t.Fatal("no service envoy")
	}
	for _, s := range cfg.Services {
		p := strconv.Itoa(s.Port)
		if !slices.ContainsFunc(envoy.Ports, func(v any) bool { s, _ := v.(string); return strings.HasSuffix(s, ":"+p) }) {
			t.Errorf("service envoy does not publish port %s of bg service %s (ports %v)", p, s.Name, envoy.Ports)
		}
	}
	if !slices.ContainsFunc(envoy.Ports, func(v any) bool { s, _ := v.(string); return strings.HasSuffix(s, ":9901") }) {
		t.Errorf("service envoy does not publish its admin port 9901 (ports %v)", envoy.Ports)
	}
}

// Prometheus scrapes Envoy's /stats/prometheus (the analysis queries read
// it), bg's /metrics and both demo apps.
func TestComposePrometheusConfig(t *testing.T) {
	root, spec := loadCompose(t)
	var prom struct {
		ScrapeConfigs []struct {
			JobName       string `yaml:"job_name"`
			MetricsPath   string `yaml:"metrics_path"`
			StaticConfigs []struct {
				Targets []string `yaml:"targets"`
			} `yaml:"static_configs"`
		} `yaml:"scrape_configs"`
	}
	readYAML(t, filepath.Join(root, composePrometheus), &prom)
	scraped := map[string]string{} // host:port -> metrics path
	for _, sc := range prom.ScrapeConfigs {
		for _, st := range sc.StaticConfigs {
			for _, tg := range st.Targets {
				host, _, err := net.SplitHostPort(tg)
				if err != nil {
					t.Errorf("job %s: target %q: %v", sc.JobName, tg, err)
					continue
				}
				if _, ok := spec.Services[host]; !ok {
					t.Errorf("job %s: target %s is not a compose service", sc.JobName, tg)
				}
				path := sc.MetricsPath
				if path == "" {
					path = "/metrics"
				}
				scraped[tg] = path
			}
		}
	}
	for tg, path := range map[string]string{
		"envoy:9901": "/stats/prometheus", "bg:9090": "/metrics",
		"demo-blue:8080": "/metrics", "demo-green:8080": "/metrics",
	} {
		if scraped[tg] != path {
			t.Errorf("Prometheus scrapes %s at %q, want %q", tg, scraped[tg], path)
		}
	}
}

// envoyBootstrapProto parses configs/envoy.yaml the way Envoy does:
// YAML -> JSON -> proto3 JSON, unknown fields rejected.
func envoyBootstrapProto(t *testing.T, root string) *bootstrap.Bootstrap {
	t.Helper()
	var doc any
	readYAML(t, filepath.Join(root, envoyBootstrap), &doc)
	js, err := json.Marshal(doc)
	if err != nil {
		t.Fatalf("%s: to JSON: %v", envoyBootstrap, err)
	}
	var b bootstrap.Bootstrap
	if err := protojson.Unmarshal(js, &b); err != nil {
		t.Fatalf("%s: %v", envoyBootstrap, err)
	}
	return &b
}

// validateDeep runs protoc-gen-validate's rules on m and on every message
// packed in an Any inside it, which ValidateAll does not open.
func validateDeep(t *testing.T, what string, m proto.Message) {
	t.Helper()
	v, ok := m.(interface{ ValidateAll() error })
	if !ok {
		t.Errorf("%s: %s has no validator", what, m.ProtoReflect().Descriptor().FullName())
		return
	}
	if err := v.ValidateAll(); err != nil {
		t.Errorf("%s: %v", what, err)
	}
	var walk func(at string, msg protoreflect.Message)
	walk = func(at string, msg protoreflect.Message) {
		if a, ok := msg.Interface().(*anypb.Any); ok {
			inner, err := a.UnmarshalNew()
			if err != nil {
				t.Errorf("%s: %s: %v (type not registered?)", what, at, err)
				return
			}
			validateDeep(t, what+" "+at+"("+a.GetTypeUrl()+")", inner)
			return
		}
		msg.Range(func(fd protoreflect.FieldDescriptor, val protoreflect.Value) bool {
			if fd.Message() == nil {
				return true
			}
			name := at + "." + string(fd.Name())
			switch {
			case fd.IsList():
				for i := range val.List().Len() {
					walk(fmt.Sprintf("%s[%d]", name, i), val.List().Get(i).Message())
				}
			case fd.IsMap():
				if fd.MapValue().Message() != nil {
					val.Map().Range(func(k protoreflect.MapKey, mv protoreflect.Value) bool {
						walk(fmt.Sprintf("%s[%v]", name, k.Interface()), mv.Message())
						return true
					})
				}
			default:
				walk(name, val.Message())
			}
			return true
		})
	}
	walk("", m.ProtoReflect())
}

func TestComposeEnvoyBootstrap(t *testing.T) {
	root, spec := loadCompose(t)
	b := envoyBootstrapProto(t, root)
	validateDeep(t, envoyBootstrap, b)

	if b.GetNode().GetId() == "" || b.GetNode().GetCluster() == "" {
		t.Errorf("node id %q cluster %q: both are needed", b.GetNode().GetId(), b.GetNode().GetCluster())
	}
	if p := b.GetAdmin().GetAddress().GetSocketAddress().GetPortValue(); p != 9901 {
		t.Errorf("admin port %d, want 9901", p)
	}
	dr := b.GetDynamicResources()
	ads := dr.GetAdsConfig()
	if ads.GetApiType().String() != "GRPC" || ads.GetTransportApiVersion().String() != "V3" {
		t.Errorf("ads_config api_type %v transport %v, want GRPC V3", ads.GetApiType(), ads.GetTransportApiVersion())
	}
	if len(ads.GetGrpcServices()) != 1 || ads.GetGrpcServices()[0].GetEnvoyGrpc().GetClusterName() != "xds" {
		t.Errorf("ads_config grpc_services %v, want envoy_grpc cluster xds", ads.GetGrpcServices())
	}
	if dr.GetCdsConfig().GetAds() == nil || dr.GetCdsConfig().GetResourceApiVersion().String() != "V3" {
		t.Errorf("cds_config %v, want ads with resource_api_version V3", dr.GetCdsConfig())
	}
	if dr.GetLdsConfig().GetAds() == nil || dr.GetLdsConfig().GetResourceApiVersion().String() != "V3" {
		t.Errorf("lds_config %v, want ads with resource_api_version V3", dr.GetLdsConfig())
	}

	// The xds cluster speaks HTTP/2 to bg's xds.listen port, by compose
	// service name.
	cfg := bgComposeConfig(t, root)
	_, xdsPort, err := net.SplitHostPort(cfg.XDS.Listen)
	if err != nil {
		t.Fatal(err)
	}
	var found bool
	for _, c := range b.GetStaticResources().GetClusters() {
		if c.GetName() != "xds" {
			continue
		}
		found = true
		if c.GetType().String() != "STRICT_DNS" {
			t.Errorf("cluster xds type %v, want STRICT_DNS", c.GetType())
		}
		if _, ok := c.GetTypedExtensionProtocolOptions()["envoy.extensions.upstreams.http.v3.HttpProtocolOptions"]; !ok {
			t.Errorf("cluster xds has no HttpProtocolOptions (HTTP/2 is needed for gRPC)")
		} else if !strings.Contains(protojson.Format(c), "http2ProtocolOptions") {
			t.Errorf("cluster xds HttpProtocolOptions do not select HTTP/2")
		}
		var addrs []string
		for _, le := range c.GetLoadAssignment().GetEndpoints() {
			for _, lb := range le.GetLbEndpoints() {
				sa := lb.GetEndpoint().GetAddress().GetSocketAddress()
				addrs = append(addrs, net.JoinHostPort(sa.GetAddress(), strconv.Itoa(int(sa.GetPortValue()))))
				if _, ok := spec.Services[sa.GetAddress()]; !ok {
					t.Errorf("cluster xds endpoint %s is not a compose service", sa.GetAddress())
				}
			}
		}
		if !slices.Contains(addrs, net.JoinHostPort("bg", xdsPort)) {
			t.Errorf("cluster xds endpoints %v, want bg:%s", addrs, xdsPort)
		}
	}
	if !found {
		t.Error("no static cluster xds")
	}
}

// What bg would send this Envoy for the compose config passes Envoy's proto
// validation, typed configs included.
func TestComposeTranslatedResourcesValidate(t *testing.T) {
	root, _ := loadCompose(t)
	cfg := bgComposeConfig(t, root)
	fleet := func(c model.Color, n int) model.Fleet {
		var f model.Fleet
		for i := range n {
			f.Endpoints = append(f.Endpoints, model.Endpoint{
				ID: fmt.Sprintf("%s-%d", c, i), Node: "consul", Address: fmt.Sprintf("172.18.0.%d", 10*n+i+1), Port: 8080,
				Weight: 1, Version: map[model.Color]string{model.Blue: "v1", model.Green: "v2"}[c], Slot: fmt.Sprint(i),
			})
		}
		return f
	}
	for _, green := range []int{0, 25, 100} {
		v := model.View{EnvoyListenAddress: cfg.Envoy.ListenAddress}
		for _, s := range cfg.Services {
			tr := model.InitialTraffic()
			if green > 0 {
				tr = model.Traffic{Stable: model.Blue, Target: model.Green, GreenPercent: green, Phase: model.PhaseSwitched, Generation: 2}
			}
			v.Services = append(v.Services, model.ServiceView{
				Service: model.Service{Name: s.Name, ListenerPort: s.Port, Protocol: model.Protocol(s.Protocol),
					Strategy: model.Strategy(s.Strategy), Affinity: model.Affinity{Header: s.Affinity.Header, Cookie: s.Affinity.Cookie}},
				Membership: model.Membership{Blue: fleet(model.Blue, 2), Green: fleet(model.Green, 1)},
				Traffic:    tr,
			})
		}
		r := translator.Translate(v)
		groups := map[string]map[string]types.Resource{
			"cluster": r.Clusters, "endpoints": r.Endpoints, "route": r.Routes, "listener": r.Listeners[model.FlavourEnvoy],
		}
		for _, s := range cfg.Services {
			for _, c := range model.Colors {
				if r.Clusters[model.ClusterName(s.Name, c)] == nil {
					t.Errorf("green=%d%%: no cluster %s", green, model.ClusterName(s.Name, c))
				}
			}
			l, ok := r.Listeners[model.FlavourEnvoy][s.Name].(*listener.Listener)
			if !ok {
				t.Fatalf("green=%d%%: no Envoy listener for %s", green, s.Name)
			}
			if p := l.GetAddress().GetSocketAddress().GetPortValue(); int(p) != s.Port {
				t.Errorf("listener %s port %d, want %d", s.Name, p, s.Port)
			}
		}
		for group, rs := range groups {
			if len(rs) == 0 {
				t.Errorf("green=%d%%: no %s resources", green, group)
			}
			for name, res := range rs {
				validateDeep(t, fmt.Sprintf("green=%d%% %s %s", green, group, name), res)
			}
		}
	}
}
