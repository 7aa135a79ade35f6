package consul

import (
	"maps"
	"slices"
	"strings"

	"github.com/hashicorp/consul/api"
)

// checkView is what the watcher remembers of /v1/health/state/any: for
// each watched service, the state of its instances' checks, and for each
// node, the state of its node checks (serfHealth, node maintenance).
// Output is left out: it changes with every run of a check without the
// check changing state.
type checkView struct {
	services map[string]map[string]string // consul name → node/check id → service id, status, tags
	nodes    map[string]map[string]string // node → check id → status
}

func viewChecks(checks []*api.HealthCheck, watched func(string) bool) checkView {
	v := checkView{services: map[string]map[string]string{}, nodes: map[string]map[string]string{}}
	for _, c := range checks {
		if c == nil {
			continue
		}
		if c.ServiceID == "" {
			put(v.nodes, c.Node, c.CheckID, c.Status)
			continue
		}
		if watched(c.ServiceName) {
			put(v.services, c.ServiceName, c.Node+"/"+c.CheckID, c.ServiceID+"\x00"+c.Status+"\x00"+strings.Join(c.ServiceTags, "\x00"))
		}
	}
	return v
}

func put(m map[string]map[string]string, outer, inner, value string) {
	if m[outer] == nil {
		m[outer] = map[string]string{}
	}
	m[outer][inner] = value
}

// changed returns the watched services whose checks differ between v and
// next, and the nodes whose node checks differ.
func (v checkView) changed(next checkView) (services, nodes []string) {
	eq := func(a, b map[string]string) bool { return maps.Equal(a, b) }
	return changedKeys(v.services, next.services, eq), changedKeys(v.nodes, next.nodes, eq)
}

// changedKeys returns the keys present in only one of a and b, or whose
// values differ, sorted.
func changedKeys[V any](a, b map[string]V, eq func(V, V) bool) []string {
	var out []string
	for k, av := range a {
		if bv, ok := b[k]; !ok || !eq(av, bv) {
			out = append(out, k)
		}
	}
	for k := range b {
		if _, ok := a[k]; !ok {
			out = append(out, k)
		}
	}
	slices.Sort(out)
	return out
}

// serviceView is what the watcher remembers of /v1/catalog/services: the
// tag set of each watched service.
type serviceView map[string]string

func viewServices(services map[string][]string, watched func(string) bool) serviceView {
	v := serviceView{}
	for name, tags := range services {
		if watched(name) {
			t := slices.Clone(tags)
			slices.Sort(t)
			v[name] = strings.Join(t, "\x00")
		}
	}
	return v
}

// changed returns the watched services added, removed or retagged.
func (v serviceView) changed(next serviceView) []string {
	return changedKeys(v, next, func(a, b string) bool { return a == b })
}
