package translator

import (
	listener "github.com/envoyproxy/go-control-plane/envoy/config/listener/v3"
	router "github.com/envoyproxy/go-control-plane/envoy/extensions/filters/http/router/v3"
	hcm "github.com/envoyproxy/go-control-plane/envoy/extensions/filters/network/http_connection_manager/v3"
	"github.com/envoyproxy/go-control-plane/pkg/wellknown"

	"github.com/bgctl/bg/controlplane/model"
)

// EnvoyListener binds the service's port on the proxy host and routes via RDS.
func EnvoyListener(s model.Service, listenAddress string) *listener.Listener {
	return &listener.Listener{
		Name:    s.Name,
		Address: socketAddress(listenAddress, s.ListenerPort),
		FilterChains: []*listener.FilterChain{{
			Filters: []*listener.Filter{{
				Name:       wellknown.HTTPConnectionManager,
				ConfigType: &listener.Filter_TypedConfig{TypedConfig: mustAny(connectionManager(s.Name))},
			}},
		}},
	}
}

// GRPCListener is the api_listener that `xds:///NAME` resolves to.
func GRPCListener(service string) *listener.Listener {
	return &listener.Listener{
		Name:        service,
		ApiListener: &listener.ApiListener{ApiListener: mustAny(connectionManager(service))},
	}
}

// connectionManager fetches the service's route over ADS; the filter chain
// ends in the router, which gRPC requires.
func connectionManager(service string) *hcm.HttpConnectionManager {
	return &hcm.HttpConnectionManager{
		StatPrefix: service,
		CodecType:  hcm.HttpConnectionManager_AUTO,
		RouteSpecifier: &hcm.HttpConnectionManager_Rds{Rds: &hcm.Rds{
			ConfigSource:    adsSource(),
			RouteConfigName: service,
		}},
		HttpFilters: []*hcm.HttpFilter{{
			Name:       wellknown.Router,
			ConfigType: &hcm.HttpFilter_TypedConfig{TypedConfig: mustAny(&router.Router{})},
		}},
	}
}
