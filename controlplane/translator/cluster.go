package translator

import (
	"time"

	cluster "github.com/envoyproxy/go-control-plane/envoy/config/cluster/v3"
	core "github.com/envoyproxy/go-control-plane/envoy/config/core/v3"
	upstreamhttp "github.com/envoyproxy/go-control-plane/envoy/extensions/upstreams/http/v3"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/anypb"
	"google.golang.org/protobuf/types/known/durationpb"

	"github.com/bgctl/bg/controlplane/model"
)

const connectTimeout = 2 * time.Second

// httpProtocolOptionsKey is where Envoy looks up upstream HTTP options.
const httpProtocolOptionsKey = "envoy.extensions.upstreams.http.v3.HttpProtocolOptions"

// Cluster is one fleet's cluster. It depends only on static config, never on
// traffic state, so a switch never recreates it (recreating drains pools).
func Cluster(s model.Service, c model.Color) *cluster.Cluster {
	cl := &cluster.Cluster{
		Name:                 model.ClusterName(s.Name, c),
		ClusterDiscoveryType: &cluster.Cluster_Type{Type: cluster.Cluster_EDS},
		EdsClusterConfig: &cluster.Cluster_EdsClusterConfig{
			EdsConfig: adsSource(),
		},
		ConnectTimeout: durationpb.New(connectTimeout),
		LbPolicy:       cluster.Cluster_ROUND_ROBIN,
	}
	if s.Protocol == model.ProtocolHTTP2 {
		cl.TypedExtensionProtocolOptions = map[string]*anypb.Any{
			httpProtocolOptionsKey: mustAny(&upstreamhttp.HttpProtocolOptions{
				UpstreamProtocolOptions: &upstreamhttp.HttpProtocolOptions_ExplicitHttpConfig_{
					ExplicitHttpConfig: &upstreamhttp.HttpProtocolOptions_ExplicitHttpConfig{
						ProtocolConfig: &upstreamhttp.HttpProtocolOptions_ExplicitHttpConfig_Http2ProtocolOptions{
							Http2ProtocolOptions: &core.Http2ProtocolOptions{},
						},
					},
				},
			}),
		}
	}
	return cl
}

// adsSource points a dependent resource at the same ADS stream.
func adsSource() *core.ConfigSource {
	return &core.ConfigSource{
		ResourceApiVersion:    core.ApiVersion_V3,
		ConfigSourceSpecifier: &core.ConfigSource_Ads{Ads: &core.AggregatedConfigSource{}},
	}
}

// mustAny packs a message; it only fails for unregistered types, a programming error.
func mustAny(m proto.Message) *anypb.Any {
	a, err := anypb.New(m)
	if err != nil {
		panic(err)
	}
	return a
}
