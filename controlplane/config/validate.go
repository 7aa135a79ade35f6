package config

import (
	"net/netip"
	"regexp"
	"slices"
	"strings"
	"time"
)

const (
	minWait        = time.Second
	maxWait        = 10 * time.Minute // Consul's own cap on blocking queries
	maxServiceName = 50
	// minRetention keeps enough history to explain the last few switches;
	// a smaller value is refused rather than quietly raised.
	minRetention = 10
	// maxShrinkGrace bounds how long endpoints that left are still served.
	maxShrinkGrace = time.Hour
)

var (
	serviceNameRE = regexp.MustCompile(`^[a-z0-9]([a-z0-9-]*[a-z0-9])?$`)
	logLevels     = []string{"debug", "info", "warn", "error"}
)

// Validate checks the whole Config and returns every problem as Errors,
// or nil. It does not modify c.
func (c *Config) Validate() error {
	var es Errors
	c.validateConsul(&es)
	c.validateConsulSecurity(&es) // consultls.go
	c.validatePrometheusHTTP(&es) // promhttp.go
	c.validateListeners(&es)
	c.validateXDSTLS(&es)
	if _, err := netip.ParseAddr(c.Envoy.ListenAddress); err != nil {
		// Envoy's socket_address needs an IP, not a hostname or host:port.
		es.add("envoy.listen_address", "%q: must be an IP address", c.Envoy.ListenAddress)
	}
	if c.Switch.Timeout <= 0 {
		es.add("switch.timeout", "must be positive, got %s", c.Switch.Timeout)
	}
	// Empty is fine: progressive switches are refused when they start.
	if a := c.Prometheus.Address; a != "" {
		if err := checkHTTPURL(a); err != nil {
			es.add("prometheus.address", "%v", err)
		}
	}
	if !slices.Contains(logLevels, c.Log.Level) {
		es.add("log.level", "%q: must be one of %s", c.Log.Level, strings.Join(logLevels, ", "))
	}
	c.validateLeader(&es)
	if r := c.History.Retention; r < minRetention {
		es.add("history.retention", "%d: must be at least %d entries per service", r, minRetention)
	}
	if g := c.Membership.ShrinkGrace; g < 0 || g > maxShrinkGrace {
		es.add("membership.shrink_grace", "%s: must be between 0s (no grace) and 1h", g)
	}
	validateServices(c.Services, c.Prometheus.Address != "", &es)
	c.validateReleases(&es)
	c.validateNotifications(&es)
	if len(es) == 0 {
		return nil // untyped nil, so err != nil stays meaningful
	}
	return es
}

func (c *Config) validateConsul(es *Errors) {
	if err := checkConsulAddress(c.Consul.Address); err != nil {
		es.add("consul.address", "%v", err)
	}
	switch p := c.Consul.KVPrefix; {
	case p == "":
		es.add("consul.kv_prefix", "required")
	case strings.HasPrefix(p, "/"):
		es.add("consul.kv_prefix", "%q: must not start with /", p)
	case !strings.HasSuffix(p, "/"):
		es.add("consul.kv_prefix", "%q: must end with /", p)
	}
	if w := c.Consul.Wait; w < minWait || w > maxWait {
		es.add("consul.wait", "%s: must be between %s and %s", w, minWait, maxWait)
	}
	col := c.Consul.Color
	if col.BlueTag == "" {
		es.add("consul.color.blue_tag", "required")
	}
	if col.GreenTag == "" {
		es.add("consul.color.green_tag", "required")
	}
	if col.BlueTag != "" && col.BlueTag == col.GreenTag {
		es.add("consul.color.green_tag", "%q: same as blue_tag", col.GreenTag)
	}
}

func (c *Config) validateListeners(es *Errors) {
	xHost, xPort, xErr := splitListen(c.XDS.Listen)
	if xErr != nil {
		es.add("xds.listen", "%v", xErr)
	}
	aHost, aPort, aErr := splitListen(c.Admin.Listen)
	defer func() { c.validateAdmin(es, aHost, aErr == nil) }() // admintls.go
	if aErr != nil {
		es.add("admin.listen", "%v", aErr)
		return
	}
	if xErr == nil && xPort == aPort &&
		(xHost == aHost || isWildcard(xHost) || isWildcard(aHost)) {
		es.add("admin.listen", "%s: conflicts with xds.listen (%s)", c.Admin.Listen, c.XDS.Listen)
	}
	if c.Admin.Token == "" && len(c.Admin.Tokens) == 0 && !isLoopback(aHost) {
		es.add("admin.token", "required when admin.listen is not loopback (%s)", c.Admin.Listen)
	}
}

// validateLeader checks the election timings.
func (c *Config) validateLeader(es *Errors) {
	l := c.Leader
	if l.SessionTTL < 10*time.Second || l.SessionTTL > 24*time.Hour {
		es.add("leader.session_ttl", "%s: must be between 10s (Consul's minimum) and 24h", l.SessionTTL)
	}
	switch {
	case l.CheckTTL < time.Second || l.CheckTTL > time.Minute:
		es.add("leader.check_ttl", "%s: must be between 1s and 1m (the replica passes its check every check_ttl/2)", l.CheckTTL)
	case l.CheckTTL >= l.SessionTTL:
		es.add("leader.check_ttl", "%s: must be shorter than leader.session_ttl (%s), which is only the backstop", l.CheckTTL, l.SessionTTL)
	}
	switch {
	case l.LockDelay == 0:
		es.add("leader.lock_delay", "0s: must not be zero, Consul would apply its 15s default; use 1ms for practically none")
	case l.LockDelay < 0 || l.LockDelay > time.Minute:
		es.add("leader.lock_delay", "%s: must be between 1ms and 1m (Consul's maximum)", l.LockDelay)
	case l.LockDelay < time.Millisecond:
		es.add("leader.lock_delay", "%s: must be at least 1ms (Consul reads a number under 1000 as seconds)", l.LockDelay)
	}
}
