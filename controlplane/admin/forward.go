package admin

import (
	"context"
	"crypto/tls"
	"net/http"
	"net/http/httputil"
	"net/url"

	apiv1 "github.com/bgctl/bg/controlplane/api/v1"
)

// LeaderFunc says where commands must go: self=true when this replica
// leads; otherwise the leader's admin host:port, or an error if none.
type LeaderFunc func(ctx context.Context) (addr string, self bool, err error)

// Forwarding sends commands (POST, except /v1/reload) to the leader, so any replica accepts
// them and exactly one acts; reads are answered locally. The original
// Authorization and actor headers travel with the request.
func Forwarding(next http.Handler, leader LeaderFunc) http.Handler {
	return forwarding(next, leader, nil)
}

// forwarding is Forwarding, over https with tlsConf when it is set.
func forwarding(next http.Handler, leader LeaderFunc, tlsConf *tls.Config) http.Handler {
	var transport http.RoundTripper
	if tlsConf != nil {
		t := http.DefaultTransport.(*http.Transport).Clone()
		t.TLSClientConfig = tlsConf
		transport = t
	}
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		// A reload is of this replica's own config file: never forwarded.
		if r.Method != http.MethodPost || r.Header.Get(forwardedHeader) != "" || r.URL.Path == "/v1/reload" {
			next.ServeHTTP(w, r)
			return
		}
		addr, self, err := leader(r.Context())
		switch {
		case self:
			next.ServeHTTP(w, r)
			return
		case err != nil:
			writeError(w, http.StatusServiceUnavailable, apiv1.CodeNoLeader, "no leader to run the command: "+err.Error())
			return
		}
		target := &url.URL{Scheme: "http", Host: addr}
		if tlsConf != nil {
			target.Scheme = "https"
		}
		proxy := httputil.NewSingleHostReverseProxy(target)
		if transport != nil {
			proxy.Transport = transport
		}
		proxy.ErrorHandler = func(w http.ResponseWriter, _ *http.Request, err error) {
			writeError(w, http.StatusServiceUnavailable, apiv1.CodeNoLeader, "leader at "+addr+" unreachable: "+err.Error())
		}
		r.Header.Set(forwardedHeader, "1") // one hop: a stale view never loops
		proxy.ServeHTTP(w, r)
	})
}

// forwardedHeader marks a command already forwarded once.
const forwardedHeader = "X-BG-Forwarded"
