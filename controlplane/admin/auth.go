// Package admin is the HTTP API the CLI talks to, plus health and metrics.
package admin

import (
	"crypto/subtle"
	"net/http"
	"strings"

	apiv1 "github.com/bgctl/bg/controlplane/api/v1"
)

// requireToken rejects requests without "Authorization: Bearer TOKEN".
// The comparison is constant-time so the token cannot be guessed by timing.
func requireToken(token string, next http.Handler) http.Handler {
	if token == "" {
		return next
	}
	want := []byte("Bearer " + token)
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		got := []byte(strings.TrimSpace(r.Header.Get("Authorization")))
		if subtle.ConstantTimeCompare(got, want) != 1 {
			w.Header().Set("WWW-Authenticate", `Bearer realm="bg"`)
			writeError(w, http.StatusUnauthorized, apiv1.CodeUnauthorized, "missing or wrong bearer token")
			return
		}
		next.ServeHTTP(w, r)
	})
}
