package config

import (
	"fmt"
	"strings"
	"time"

	"github.com/bgctl/bg/controlplane/model"
)

// validateServices checks each service; judged says prometheus.address is
// set, so rolling services are judged on metrics too.
func validateServices(svcs []Service, judged bool, es *Errors) {
	if len(svcs) == 0 {
		es.add("services", "at least one service is required")
		return
	}
	names := map[string]int{}
	ports := map[int]int{}
	for i, s := range svcs {
		at := fmt.Sprintf("services[%d]", i)
		if msg := checkServiceName(s.Name); msg != "" {
			es.add(at+".name", "%s", msg)
		} else if j, dup := names[s.Name]; dup {
			es.add(at+".name", "%q already used by services[%d]", s.Name, j)
		} else {
			names[s.Name] = i
		}
		if strings.TrimSpace(s.ConsulService) == "" {
			es.add(at+".consul_service", "required")
		}
		switch p := s.Port; {
		case p == 0: // no port: no Envoy listener (proxyless gRPC clients only)
		case p < 1 || p > 65535:
			es.add(at+".port", "%s", badPort(p))
		default:
			if j, dup := ports[p]; dup {
				es.add(at+".port", "%d already used by services[%d]", p, j)
			} else {
				ports[p] = i
			}
		}
		validateStrategy(s, at, es)
		switch model.Protocol(s.Protocol) {
		case model.ProtocolHTTP1, model.ProtocolHTTP2:
		default:
			es.add(at+".protocol", "%q: must be %s or %s", s.Protocol, model.ProtocolHTTP1, model.ProtocolHTTP2)
		}
		validateAnalysis(&s.Analysis, at+".analysis", es)
		if judged && model.Strategy(s.Strategy) == model.StrategyRolling {
			validateRollQueries(s, at, es)
		}
		validateRelease(s, at, es)
		validateAuto(s.Auto, at, es)
	}
}

// badPort says why p is no listener port.
func badPort(p int) string {
	return fmt.Sprintf("%d: must be in 1..65535 (leave port out for a service without an Envoy listener)", p)
}

// checkServiceName returns why name is unusable as an xDS cluster prefix, or "".
func checkServiceName(name string) string {
	switch {
	case name == "":
		return "required"
	case len(name) > maxServiceName:
		return fmt.Sprintf("%q: longer than %d characters", name, maxServiceName)
	case strings.Contains(name, "."):
		// Envoy's cluster_name stat tag stops at the first dot.
		return fmt.Sprintf("%q: must not contain dots", name)
	case !serviceNameRE.MatchString(name):
		return fmt.Sprintf("%q: must be lowercase letters, digits and inner dashes", name)
	}
	return ""
}

func validateStrategy(s Service, at string, es *Errors) {
	switch model.Strategy(s.Strategy) {
	case model.StrategyBlueGreen, "": // "" only in configs built by hand; Load fills blue-green
		return
	case model.StrategyRolling:
	default:
		es.add(at+".strategy", "%q: must be %s or %s", s.Strategy, model.StrategyBlueGreen, model.StrategyRolling)
		return
	}
	if s.Affinity.Header == "" && s.Affinity.Cookie == "" {
		es.add(at+".affinity", "a rolling service needs affinity.header or affinity.cookie to keep sessions on their host")
	}
	if h := s.Affinity.Header; h != "" && (strings.ToLower(h) != h || strings.ContainsAny(h, " :") || strings.HasSuffix(h, "-bin")) {
		es.add(at+".affinity.header", "%q: must be a lower-case header name, not ending in -bin", h)
	}
	r := s.Rolling
	if r.MaxUnavailable < 1 {
		es.add(at+".rolling.max_unavailable", "%d: must be at least 1", r.MaxUnavailable)
	}
	if r.MinAvailable < 1 {
		es.add(at+".rolling.min_available", "%d: must be at least 1", r.MinAvailable)
	}
	if r.DrainTimeout < 0 {
		es.add(at+".rolling.drain_timeout", "%s: must not be negative", r.DrainTimeout)
	}
	if r.Bake < 0 {
		es.add(at+".rolling.bake", "%s: must not be negative", r.Bake)
	}
	if r.ReplaceTimeout < time.Second {
		es.add(at+".rolling.replace_timeout", "%s: must be at least 1s", r.ReplaceTimeout)
	}
	if r.Interval < 100*time.Millisecond {
		es.add(at+".rolling.interval", "%s: must be at least 100ms", r.Interval)
	}
}
