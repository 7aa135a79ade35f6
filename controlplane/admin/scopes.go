package admin

import (
	"net/http"

	"github.com/bgctl/bg/controlplane/config"
)

// routeRule is what a route needs from the token that calls it.
type routeRule struct {
	Scope config.Scope
	// Forceable: a body with "force": true needs ScopeOverride.
	Forceable bool
}

var (
	read     = routeRule{Scope: config.ScopeRead}
	operate  = routeRule{Scope: config.ScopeOperate}
	forcible = routeRule{Scope: config.ScopeOperate, Forceable: true}
	override = routeRule{Scope: config.ScopeOverride}
)

// routeScopes is the one table of every admin route (its ServeMux pattern)
// and the scope it needs. A route registered without an entry panics in
// Handler, and TestEveryRouteHasAScope checks the table against the
// registered routes both ways. A path that matches no route (404, 405)
// needs a valid token of any scope.
var routeScopes = map[string]routeRule{
	"GET /healthz": read,
	"GET /readyz":  read,
	"GET /metrics": read,

	"GET /v1/services":                read,
	"GET /v1/services/{name}":         read,
	"GET /v1/services/{name}/history": read,
	"GET /v1/services/{name}/desired": read,
	"GET /v1/proxies":                 read,
	"GET /v1/releases":                read,
	"GET /v1/releases/{id}":           read,

	"POST /v1/services/{name}/switch":  forcible,
	"POST /v1/services/{name}/abort":   forcible,
	"POST /v1/services/{name}/pause":   forcible,
	"POST /v1/services/{name}/resume":  forcible,
	"POST /v1/services/{name}/promote": forcible,
	"POST /v1/services/{name}/preview": forcible,
	"POST /v1/services/{name}/desired": operate,
	"POST /v1/desired":                 operate,
	"POST /v1/releases":                forcible,
	"POST /v1/releases/{id}/abort":     operate,
	"POST /v1/releases/{id}/pause":     operate,
	"POST /v1/releases/{id}/resume":    operate,
	// Each replica reloads its own file: never forwarded to the leader.
	"POST /v1/reload": operate,

	// Profiles cost CPU and show the program's insides: the strongest scope.
	"GET /debug/pprof/":        override,
	"GET /debug/pprof/profile": override,
	"GET /debug/pprof/trace":   override,
}

// router registers routes on a ServeMux, refusing one that routeScopes
// does not cover, and remembers them for the test.
type router struct {
	mux      *http.ServeMux
	patterns []string
}

func (rt *router) Handle(pattern string, h http.Handler) {
	if _, ok := routeScopes[pattern]; !ok {
		panic("admin: route " + pattern + " has no entry in routeScopes")
	}
	rt.patterns = append(rt.patterns, pattern)
	rt.mux.Handle(pattern, h)
}

func (rt *router) HandleFunc(pattern string, h http.HandlerFunc) { rt.Handle(pattern, h) }

// ruleFor is the rule of the route r would be served by; a request that
// matches no route needs ScopeRead (it gets its 404 or 405 only once
// authenticated).
func ruleFor(mux *http.ServeMux, r *http.Request) routeRule {
	_, pattern := mux.Handler(r)
	if rule, ok := routeScopes[pattern]; ok {
		return rule
	}
	return read
}
