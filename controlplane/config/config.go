// Package config loads and validates bg's control-plane configuration:
// a YAML file, BG_* environment variables and caller overrides, merged by viper.
package config

import "time"

// Config is the whole control-plane configuration.
type Config struct {
	Consul     Consul     `mapstructure:"consul"`
	XDS        XDS        `mapstructure:"xds"`
	Admin      Admin      `mapstructure:"admin"`
	Envoy      Envoy      `mapstructure:"envoy"`
	Switch     Switch     `mapstructure:"switch"`
	Prometheus Prometheus `mapstructure:"prometheus"`
	Log        Log        `mapstructure:"log"`
	Leader     Leader     `mapstructure:"leader"`
	History    History    `mapstructure:"history"`
	Membership Membership `mapstructure:"membership"`
	Services   []Service  `mapstructure:"services"`
	// Releases are named groups of services released together (bg release
	// start --group NAME); Release tunes every release.
	Releases []ReleaseGroup `mapstructure:"releases"`
	Release  Release        `mapstructure:"release"`
	// Notifications tell people what bg did (notifications.go).
	Notifications []Notification `mapstructure:"notifications"`
	// Config is about the config file itself (reload.go).
	Config File `mapstructure:"config"`
}

// File says how bg follows its own config file.
type File struct {
	// Watch reloads the file when it changes on disk (as SIGHUP and
	// POST /v1/reload do).
	Watch bool `mapstructure:"watch"`
}

// Consul says where fleets and traffic state are read from.
type Consul struct {
	Address string `mapstructure:"address"` // host:port or http(s) URL
	// Token is the ACL token (BG_CONSUL_TOKEN); it never prints. TokenFile
	// holds it instead; TLS and both are in consultls.go.
	Token      Secret    `mapstructure:"token"`
	TokenFile  string    `mapstructure:"token_file"`
	TLS        ConsulTLS `mapstructure:"tls"`
	Datacenter string    `mapstructure:"datacenter"`
	// KVPrefix is the KV folder holding traffic state; it must end in "/".
	KVPrefix string `mapstructure:"kv_prefix"`
	// Wait is the blocking-query wait; Consul caps it at 10m.
	Wait  time.Duration `mapstructure:"wait"`
	Color ColorRule     `mapstructure:"color"`
}

// ColorRule says how a Consul instance's colour is read.
type ColorRule struct {
	BlueTag  string `mapstructure:"blue_tag"`
	GreenTag string `mapstructure:"green_tag"`
	// MetaKey, if set, reads the colour from Service.Meta[MetaKey]
	// (value BlueTag or GreenTag) instead of from tags.
	MetaKey string `mapstructure:"meta_key"`
}

// XDS is the ADS gRPC server proxies connect to.
type XDS struct {
	Listen string `mapstructure:"listen"`
	TLS    XDSTLS `mapstructure:"tls"` // see xdstls.go
}

// Admin is the HTTP API used to switch and abort.
type Admin struct {
	Listen string `mapstructure:"listen"`
	// Token is the bearer token, an override token named "admin.token";
	// it or Tokens is required unless Listen is loopback. A Secret: it
	// never prints.
	Token Secret `mapstructure:"token"`
	// Pprof serves Go's profiles at /debug/pprof/ (behind the token).
	Pprof bool `mapstructure:"pprof"`
	// TLS, Tokens and InsecurePlaintext: see admintls.go.
	TLS    AdminTLS     `mapstructure:"tls"`
	Tokens []AdminToken `mapstructure:"tokens"`
	// InsecurePlaintext allows a non-loopback admin API without TLS (a
	// private network only, such as docker compose's).
	InsecurePlaintext bool `mapstructure:"insecure_plaintext"`
}

// Envoy holds settings of the listeners sent to Envoy.
type Envoy struct {
	// ListenAddress is where listeners bind on the proxy host.
	ListenAddress string `mapstructure:"listen_address"`
}

// Switch tunes traffic switches.
type Switch struct {
	// Timeout bounds how long a switch or abort waits for proxy ACKs.
	Timeout time.Duration `mapstructure:"timeout"`
}

// History bounds the per-service record of traffic changes in Consul KV.
type History struct {
	// Retention is how many entries are kept per service; older ones are pruned.
	Retention int `mapstructure:"retention"`
}

// Membership guards served fleets against bad reads.
type Membership struct {
	// ShrinkGrace is how long a fleet that loses more than half its members
	// in one read keeps its last known endpoints; the loss applies only if it
	// lasts this long. A colour that carries traffic is never emptied,
	// whatever the grace. 0 applies every loss at once (except emptying a
	// carrying colour).
	ShrinkGrace time.Duration `mapstructure:"shrink_grace"`
}

// Log sets logging.
type Log struct {
	Level string `mapstructure:"level"` // debug, info, warn or error
}

// Service is one switched service.
type Service struct {
	// Name is also the xDS cluster prefix, so it must be dot-free.
	Name string `mapstructure:"name"`
	// ConsulService is the Consul service name; Load defaults it to Name.
	ConsulService string `mapstructure:"consul_service"`
	// Port is the Envoy listener port for this service. Optional: without
	// one (0) the service has no Envoy listener, only proxyless gRPC's. Load
	// refuses an explicit port: 0.
	Port int `mapstructure:"port"`
	// Protocol is "http1" or "http2" (use http2 for gRPC); Load defaults it to http1.
	Protocol string `mapstructure:"protocol"`
	// Analysis configures progressive switches; Load fills absent keys.
	Analysis Analysis `mapstructure:"analysis"`
	// Strategy is "blue-green" (default) or "rolling" for stateful services.
	Strategy string `mapstructure:"strategy"`
	// Rolling configures rolling switches; Load fills absent keys.
	Rolling Rolling `mapstructure:"rolling"`
	// Affinity is required for rolling services.
	Affinity Affinity `mapstructure:"affinity"`
	// Pools, Mirror, Gates and Windows are release controls (blue-green only,
	// except windows).
	Pools   []Pool  `mapstructure:"pools"`
	Mirror  Mirror  `mapstructure:"mirror"`
	Gates   []Gate  `mapstructure:"gates"`
	Windows Windows `mapstructure:"windows"`
	// DependsOn names the configured services this one calls: in a
	// release they are its providers and switch before it.
	DependsOn []string `mapstructure:"depends_on"`
	// Auto converges the service to its desired version (auto.go).
	Auto Auto `mapstructure:"auto"`
}

// Leader configures the election of the one replica that acts.
type Leader struct {
	// CheckTTL is the TTL of each replica's own Consul check, which its
	// lock session is bound to; the replica passes it every CheckTTL/2. A
	// dead or paused leader's session ends at most this long after its last
	// heartbeat.
	CheckTTL time.Duration `mapstructure:"check_ttl"`
	// SessionTTL is the session's own TTL, only a backstop behind the check
	// (Consul's minimum is 10s and it may take twice as long to act on it).
	SessionTTL time.Duration `mapstructure:"session_ttl"`
	// LockDelay: Consul refuses the lock this long after a leader's session
	// is invalidated (not after a clean release). Never 0: Consul would
	// apply its 15s default.
	LockDelay time.Duration `mapstructure:"lock_delay"`
}
