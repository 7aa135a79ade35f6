package translator

import (
	"time"

	cluster "github.com/envoyproxy/go-control-plane/envoy/config/cluster/v3"
	core "github.com/envoyproxy/go-control-plane/envoy/config/core/v3"
	upstreamhttp "github.com/envoyproxy/go-control-plane/envoy/extensions/upstreams/http/v3"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/anypb"
	"google.golang.org/protobuf/types/known/durationpb"
	"google.golang.org/protobuf/types/known/wrapperspb"

	"github.com/bgctl/bg/controlplane/model"
)

const connectTimeout = 2 * time.Second

// httpProtocolOptionsKey is where Envoy looks up upstream HTTP options.
const httpProtocolOptionsKey = "envoy.extensions.upstreams.http.v3.HttpProtocolOptions"

// Ring bounds of a rolling service's clusters. A few hosts need no more;
// 4096 is also grpc-go's default cap (GRPC_RING_HASH_CAP), so both flavours
// build rings of the same bounds.
const (
	ringMinSize = 1024
	ringMaxSize = 4096
)

// Cluster is one fleet's cluster. It depends only on static config, never on
// traffic state or a roll's progress, so neither a switch nor a roll step
// recreates it (recreating drains pools).
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
	if s.Stateful() {
		// Both flavours read this CDS: grpc-go accepts only ROUND_ROBIN,
		// RING_HASH and LEAST_REQUEST (no MAGLEV), and only the default
		// XX_HASH hash function. Hosts sit on the ring by their EDS hash_key.
		cl.LbPolicy = cluster.Cluster_RING_HASH
		cl.LbConfig = &cluster.Cluster_RingHashLbConfig_{RingHashLbConfig: &cluster.Cluster_RingHashLbConfig{
			MinimumRingSize: wrapperspb.UInt64(ringMinSize),
			MaximumRingSize: wrapperspb.UInt64(ringMaxSize),
		}}
		// Envoy's stateful_session filter may send a request to a host of
		// these statuses only: DRAINING keeps existing sessions on an old host
		// while the ring (healthy hosts only) sends new ones to its
		// replacement. grpc-go does not read common_lb_config.
		cl.CommonLbConfig = &cluster.Cluster_CommonLbConfig{
			OverrideHostStatus: &core.HealthStatusSet{Statuses: []core.HealthStatus{
				core.HealthStatus_HEALTHY, core.HealthStatus_DRAINING,
			}},
		}
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
