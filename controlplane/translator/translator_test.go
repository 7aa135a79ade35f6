package translator

import (
	"bytes"
	"encoding/json"
	"flag"
	"os"
	"path/filepath"
	"sort"
	"testing"

	"github.com/envoyproxy/go-control-plane/pkg/cache/types"
	"google.golang.org/protobuf/encoding/protojson"
	"google.golang.org/protobuf/proto"

	"github.com/bgctl/bg/controlplane/model"
)

var update = flag.Bool("update", false, "rewrite golden files")

func sampleView(greenPercent int) model.View {
	return model.View{
		EnvoyListenAddress: "0.0.0.0",
		Services: []model.ServiceView{{
			Service: model.Service{Name: "web", ListenerPort: 10000, Protocol: model.ProtocolHTTP2},
			Membership: model.Membership{
				Blue: model.Fleet{Endpoints: []model.Endpoint{
					{ID: "web-blue-1", Address: "10.0.0.1", Port: 8080, Weight: 1, Version: "v1"},
					{ID: "web-blue-2", Address: "10.0.0.2", Port: 8080, Weight: 3, Version: "v1"},
				}},
				Green: model.Fleet{Endpoints: []model.Endpoint{
					{ID: "web-green-1", Address: "10.0.1.1", Port: 8080, Weight: 1, Version: "v2"},
				}},
			},
			Traffic: model.Traffic{Stable: model.Blue, Target: model.Green, GreenPercent: greenPercent, Phase: model.PhaseSwitched, Generation: 7},
		}, {
			Service: model.Service{Name: "api", ListenerPort: 10001, Protocol: model.ProtocolHTTP1},
			Traffic: model.InitialTraffic(),
		}},
	}
}

// golden renders resources as stable, indented JSON, sorted by name.
func golden(t *testing.T, groups map[string]map[string]types.Resource) []byte {
	t.Helper()
	out := map[string][]json.RawMessage{}
	for group, rs := range groups {
		names := make([]string, 0, len(rs))
		for n := range rs {
			names = append(names, n)
		}
		sort.Strings(names)
		for _, n := range names {
			b, err := protojson.MarshalOptions{UseProtoNames: true}.Marshal(rs[n])
			if err != nil {
				t.Fatal(err)
			}
			out[group] = append(out[group], b)
		}
	}
	raw, err := json.Marshal(out) // map keys sorted; normalises protojson's unstable spacing
	if err != nil {
		t.Fatal(err)
	}
	var buf bytes.Buffer
	if err := json.Indent(&buf, raw, "", "  "); err != nil {
		t.Fatal(err)
	}
	buf.WriteByte('\n')
	return buf.Bytes()
}

func checkGolden(t *testing.T, name string, got []byte) {
	t.Helper()
	path := filepath.Join("testdata", name)
	if *update {
		if err := os.MkdirAll("testdata", 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(path, got, 0o644); err != nil {
			t.Fatal(err)
		}
		return
	}
	want, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("%v (run go test ./controlplane/translator -update)", err)
	}
	if !bytes.Equal(got, want) {
		t.Errorf("%s differs from golden file; run with -update if the change is intended.\ngot:\n%s", path, got)
	}
}

func TestGoldenEnvoyFlavour(t *testing.T) {
	r := Translate(sampleView(25))
	checkGolden(t, "envoy.golden.json", golden(t, map[string]map[string]types.Resource{
		"clusters": r.Clusters, "endpoints": r.Endpoints, "routes": r.Routes,
		"listeners": r.Listeners[model.FlavourEnvoy],
	}))
}

func TestGoldenGRPCFlavour(t *testing.T) {
	r := Translate(sampleView(25))
	checkGolden(t, "grpc.golden.json", golden(t, map[string]map[string]types.Resource{
		"clusters": r.Clusters, "endpoints": r.Endpoints, "routes": r.Routes,
		"listeners": r.Listeners[model.FlavourGRPC],
	}))
}

// Every resource must pass Envoy's own proto validation rules.
func TestResourcesValidate(t *testing.T) {
	for _, pct := range []int{0, 1, 50, 100} {
		r := Translate(sampleView(pct))
		all := []map[string]types.Resource{r.Clusters, r.Endpoints, r.Routes, r.Listeners[model.FlavourEnvoy], r.Listeners[model.FlavourGRPC]}
		for _, group := range all {
			for name, res := range group {
				v, ok := res.(interface{ ValidateAll() error })
				if !ok {
					t.Fatalf("%s has no validator", name)
				}
				if err := v.ValidateAll(); err != nil {
					t.Errorf("green=%d%% %s: %v", pct, name, err)
				}
			}
		}
	}
}

// A switch must be an RDS change only: everything but the route is identical.
func TestSwitchChangesOnlyTheRoute(t *testing.T) {
	a, b := Translate(sampleView(0)), Translate(sampleView(100))
	same := func(kind string, x, y map[string]types.Resource) {
		for n := range x {
			if !proto.Equal(x[n], y[n]) {
				t.Errorf("%s %s changed on a switch", kind, n)
			}
		}
	}
	same("cluster", a.Clusters, b.Clusters)
	same("endpoints", a.Endpoints, b.Endpoints)
	same("envoy listener", a.Listeners[model.FlavourEnvoy], b.Listeners[model.FlavourEnvoy])
	same("grpc listener", a.Listeners[model.FlavourGRPC], b.Listeners[model.FlavourGRPC])
	if proto.Equal(a.Routes["web"], b.Routes["web"]) {
		t.Error("route did not change on a switch")
	}
}

// gRPC NACKs endpoint weight 0 and ignores unweighted localities.
func TestLoadAssignmentWeights(t *testing.T) {
	cla := LoadAssignment("web", model.Blue, model.Fleet{Endpoints: []model.Endpoint{{ID: "a", Address: "10.0.0.1", Port: 1}}})
	loc := cla.GetEndpoints()[0]
	if loc.GetLoadBalancingWeight().GetValue() != 1 || loc.GetLocality() == nil {
		t.Errorf("locality weight = %v, locality = %v", loc.GetLoadBalancingWeight(), loc.GetLocality())
	}
	if w := loc.GetLbEndpoints()[0].GetLoadBalancingWeight().GetValue(); w < 1 {
		t.Errorf("endpoint weight = %d, want >= 1", w)
	}
	if empty := LoadAssignment("web", model.Green, model.Fleet{}); len(empty.GetEndpoints()) != 0 {
		t.Errorf("empty fleet produced endpoints: %v", empty)
	}
}
