package config

import (
	"fmt"
	"strings"

	"github.com/bgctl/bg/controlplane/model"
)

func validateServices(svcs []Service, es *Errors) {
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
		if s.Port < 1 || s.Port > 65535 {
			es.add(at+".port", "%d: must be in 1..65535", s.Port)
		} else if j, dup := ports[s.Port]; dup {
			es.add(at+".port", "%d already used by services[%d]", s.Port, j)
		} else {
			ports[s.Port] = i
		}
		switch model.Protocol(s.Protocol) {
		case model.ProtocolHTTP1, model.ProtocolHTTP2:
		default:
			es.add(at+".protocol", "%q: must be %s or %s", s.Protocol, model.ProtocolHTTP1, model.ProtocolHTTP2)
		}
		validateAnalysis(&s.Analysis, at+".analysis", es)
	}
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
