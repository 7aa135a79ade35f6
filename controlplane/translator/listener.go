package translator

import (
	core "github.com/envoyproxy/go-control-plane/envoy/config/core/v3"
	listener "github.com/envoyproxy/go-control-plane/envoy/config/listener/v3"
	router "github.com/envoyproxy/go-control-plane/envoy/extensions/filters/http/router/v3"
	statefulsession "github.com/envoyproxy/go-control-plane/envoy/extensions/filters/http/stateful_session/v3"
	hcm "github.com/envoyproxy/go-control-plane/envoy/extensions/filters/network/http_connection_manager/v3"
	cookiestate "github.com/envoyproxy/go-control-plane/envoy/extensions/http/stateful_session/cookie/v3"
	httptype "github.com/envoyproxy/go-control-plane/envoy/type/http/v3"
	"github.com/envoyproxy/go-control-plane/pkg/wellknown"
	"google.golang.org/protobuf/types/known/durationpb"

	"github.com/bgctl/bg/controlplane/model"
)

// Names of Envoy's stateful session filter and its cookie session state
// (go-control-plane's wellknown has neither).
const (
	statefulSessionFilter = "envoy.filters.http.stateful_session"
	cookieSessionState    = "envoy.http.stateful_session.cookie"
)

// EnvoyListener binds the service's port on the proxy host and routes via RDS.
func EnvoyListener(s model.Service, listenAddress string) *listener.Listener {
	return &listener.Listener{
		Name:    s.Name,
		Address: socketAddress(listenAddress, s.ListenerPort),
		FilterChains: []*listener.FilterChain{{
			Filters: []*listener.Filter{{
				Name:       wellknown.HTTPConnectionManager,
				ConfigType: &listener.Filter_TypedConfig{TypedConfig: mustAny(connectionManager(s.Name, envoySessionFilters(s)...))},
			}},
		}},
	}
}

// GRPCListener is the api_listener that `xds:///NAME` resolves to. It has
// the router only, rolling or not: grpc-go has no stateful_session filter and
// NACKs a listener naming a filter it does not implement.
func GRPCListener(service string) *listener.Listener {
	return &listener.Listener{
		Name:        service,
		ApiListener: &listener.ApiListener{ApiListener: mustAny(connectionManager(service))},
	}
}

// HostCookie is the cookie in which Envoy's stateful_session filter records
// a session's host. It must differ from the hash cookie (Affinity.Cookie):
// that one is the session's identity and keeps its value, so when the host
// is gone the session hashes onto the replacement in the same slot; this one
// holds the host's address and is rewritten whenever the host changes.
func HostCookie(a model.Affinity) string { return a.Cookie + "-host" }

// envoySessionFilters keep a rolling service's existing cookie sessions on
// their host while it drains (override host, see Cluster's
// override_host_status). Not strict: a session whose host is gone falls back
// to the ring.
func envoySessionFilters(s model.Service) []*hcm.HttpFilter {
	if !s.Stateful() || s.Affinity.Cookie == "" {
		return nil
	}
	return []*hcm.HttpFilter{{
		Name: statefulSessionFilter,
		ConfigType: &hcm.HttpFilter_TypedConfig{TypedConfig: mustAny(&statefulsession.StatefulSession{
			SessionState: &core.TypedExtensionConfig{
				Name: cookieSessionState,
				TypedConfig: mustAny(&cookiestate.CookieBasedSessionState{Cookie: &httptype.Cookie{
					Name: HostCookie(s.Affinity),
					Ttl:  durationpb.New(0), // browser-session cookie, like the hash cookie
					Path: "/",
				}}),
			},
		})},
	}}
}

// connectionManager fetches the service's route over ADS; the filter chain
// ends in the router, which gRPC requires.
func connectionManager(service string, filters ...*hcm.HttpFilter) *hcm.HttpConnectionManager {
	return &hcm.HttpConnectionManager{
		StatPrefix: service,
		CodecType:  hcm.HttpConnectionManager_AUTO,
		RouteSpecifier: &hcm.HttpConnectionManager_Rds{Rds: &hcm.Rds{
			ConfigSource:    adsSource(),
			RouteConfigName: service,
		}},
		HttpFilters: append(filters, &hcm.HttpFilter{
			Name:       wellknown.Router,
			ConfigType: &hcm.HttpFilter_TypedConfig{TypedConfig: mustAny(&router.Router{})},
		}),
	}
}
