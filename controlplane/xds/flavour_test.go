package xds

import (
	"testing"

	core "github.com/envoyproxy/go-control-plane/envoy/config/core/v3"
	"google.golang.org/protobuf/types/known/structpb"

	"github.com/bgctl/bg/controlplane/model"
)

func TestFlavourOf(t *testing.T) {
	meta := func(v string) *structpb.Struct {
		s, _ := structpb.NewStruct(map[string]any{FlavourMetadataKey: v})
		return s
	}
	cases := []struct {
		name string
		node *core.Node
		want model.Flavour
	}{
		{"envoy", &core.Node{UserAgentName: "envoy"}, model.FlavourEnvoy},
		{"grpc-go", &core.Node{UserAgentName: "gRPC Go"}, model.FlavourGRPC},
		{"no node", nil, model.FlavourGRPC},
		{"override to grpc", &core.Node{UserAgentName: "envoy", Metadata: meta("grpc")}, model.FlavourGRPC},
		{"override to envoy", &core.Node{UserAgentName: "gRPC Go", Metadata: meta("envoy")}, model.FlavourEnvoy},
		{"bad override ignored", &core.Node{UserAgentName: "envoy", Metadata: meta("nginx")}, model.FlavourEnvoy},
	}
	for _, c := range cases {
		if got := FlavourOf(c.node); got != c.want {
			t.Errorf("%s: got %s, want %s", c.name, got, c.want)
		}
	}
}
