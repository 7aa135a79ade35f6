package admin

import (
	"net/http"
	"strings"

	apiv1 "github.com/bgctl/bg/controlplane/api/v1"
	"github.com/bgctl/bg/controlplane/traffic"
)

// ActorHeader names who sends a command (see apiv1.ActorHeader).
const ActorHeader = apiv1.ActorHeader

// maxActor bounds what a client can make the history store.
const maxActor = 100

// withActor tells the controller who asked for each command (POST), so the
// history can say who moved traffic.
func withActor(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Method == http.MethodPost {
			r = r.WithContext(traffic.WithActor(r.Context(), requestActor(r)))
		}
		next.ServeHTTP(w, r)
	})
}

// requestActor is the sanitized actor header plus the name of the token
// that authenticated it, if any, and where the request came from. A command forwarded by another replica names the client the
// replica saw, so the history does not blame the replica.
func requestActor(r *http.Request) string {
	actor := sanitizeActor(r.Header.Get(ActorHeader))
	from := r.RemoteAddr
	if r.Header.Get(forwardedHeader) != "" {
		if xff := r.Header.Values("X-Forwarded-For"); len(xff) > 0 {
			// The forwarding replica appends what it saw last.
			hops := strings.Split(xff[len(xff)-1], ",")
			if client := sanitizeActor(hops[len(hops)-1]); client != "api" {
				from = client + " via " + r.RemoteAddr
			}
		}
	}
	if name := tokenName(r.Context()); name != "" {
		// The token is who is authenticated; the header is what its
		// holder says about itself.
		from = "token " + name + ", " + from
	}
	return actor + " (" + from + ")"
}

// sanitizeActor keeps printable ASCII only, so a header cannot forge lines
// or terminal escapes in `bg history`, and caps the length; no header is "api".
func sanitizeActor(s string) string {
	var b strings.Builder
	for _, c := range []byte(strings.TrimSpace(s)) {
		if b.Len() == maxActor {
			break
		}
		if c < 0x20 || c > 0x7e {
			c = '?'
		}
		b.WriteByte(c)
	}
	out := strings.TrimSpace(b.String())
	if out == "" {
		return "api"
	}
	return out
}
