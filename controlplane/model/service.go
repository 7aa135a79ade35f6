package model

// Flavour selects how a proxy is served: Envoy gets socket listeners,
// proxyless gRPC gets api_listeners named after each service.
type Flavour string

const (
	FlavourEnvoy Flavour = "envoy"
	FlavourGRPC  Flavour = "grpc"
)

// Protocol is what a service's upstreams speak.
type Protocol string

const (
	ProtocolHTTP1 Protocol = "http1"
	ProtocolHTTP2 Protocol = "http2" // also gRPC
)

// Service is the static description of one switched service.
type Service struct {
	Name string
	// ListenerPort is the port of the Envoy listener for this service;
	// 0: none (the service is for proxyless gRPC clients only).
	ListenerPort int
	Protocol     Protocol
	Strategy     Strategy // "" means blue-green
	Affinity     Affinity // rolling services hash sessions onto hosts
	// Pools send matching requests to the candidate while one is previewed
	// or switched to.
	Pools []Pool
	// MirrorPercent of live requests are also sent to the candidate while
	// it is previewed or switched to and holds less than all traffic;
	// their responses are discarded (Envoy only: gRPC does not mirror).
	MirrorPercent int
}

// Stateful is true for services switched host by host (strategy rolling).
func (s Service) Stateful() bool { return s.Strategy == StrategyRolling }

// ServiceView is everything the translator needs about one service.
type ServiceView struct {
	Service    Service
	Membership Membership
	Traffic    Traffic
}

// View is the whole model at one instant, services sorted by name.
type View struct {
	Services []ServiceView
	// EnvoyListenAddress is the address Envoy listeners bind to on the proxy host.
	EnvoyListenAddress string
}
