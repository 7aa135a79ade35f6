// Package admin is the HTTP API the CLI talks to, plus health and metrics.
package admin

import (
	"bytes"
	"context"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"strconv"
	"strings"

	"github.com/prometheus/client_golang/prometheus"

	apiv1 "github.com/bgctl/bg/controlplane/api/v1"
	"github.com/bgctl/bg/controlplane/config"
)

// MaxRequestBody bounds every request body: a larger one is answered 413
// before any handler reads it. (Command bodies are further held to maxBody
// by their decoder, a 400.)
const MaxRequestBody = 1 << 20

// Reasons of bg_admin_auth_failures_total.
const (
	failMissing     = "missing"      // no bearer token
	failWrong       = "wrong"        // a token that matches none
	failForbidden   = "forbidden"    // a valid token whose scope is too small
	failRateLimited = "rate_limited" // refused unchecked: too many failures from the client
)

// AuthMetrics counts refused requests by reason.
type AuthMetrics struct {
	failures *prometheus.CounterVec
}

// NewAuthMetrics registers bg_admin_auth_failures_total on reg (nil: not registered).
func NewAuthMetrics(reg prometheus.Registerer) *AuthMetrics {
	m := &AuthMetrics{failures: prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "bg_admin_auth_failures_total",
		Help: "Admin API requests refused for their credentials, by reason: missing, wrong, forbidden (scope too small), rate_limited.",
	}, []string{"reason"})}
	for _, r := range []string{failMissing, failWrong, failForbidden, failRateLimited} {
		m.failures.WithLabelValues(r)
	}
	if reg != nil {
		reg.MustRegister(m.failures)
	}
	return m
}

type tokenKey struct{}

// tokenName is the name of the token that authenticated r ("" without tokens).
func tokenName(ctx context.Context) string {
	s, _ := ctx.Value(tokenKey{}).(string)
	return s
}

// authenticator checks every request's bearer token against the hashes
// of the configured tokens, then the scope its route needs (routeScopes),
// limits its body and writes the audit line of each command. Without any
// token the API is open (a loopback admin.listen, as validated).
type authenticator struct {
	creds   []config.AdminCredential
	mux     *http.ServeMux
	limiter *failLimiter
	metrics *AuthMetrics
	log     *slog.Logger
	next    http.Handler
}

func (a *authenticator) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	ip := clientIP(r.RemoteAddr)
	var cred *config.AdminCredential
	if len(a.creds) > 0 {
		if limited, wait := a.limiter.Limited(ip); limited {
			a.metrics.failures.WithLabelValues(failRateLimited).Inc()
			w.Header().Set("Retry-After", strconv.Itoa(max(1, int(wait.Seconds()+0.999))))
			writeError(w, http.StatusTooManyRequests, apiv1.CodeRateLimited,
				"too many failed authentications from "+ip+"; try again later")
			return
		}
		var reason string
		cred, reason = a.lookup(r.Header.Get("Authorization"))
		if cred == nil {
			a.limiter.Fail(ip)
			a.metrics.failures.WithLabelValues(reason).Inc()
			a.log.Warn("admin authentication failed", "reason", reason, "method", r.Method, "path", r.URL.Path, "remote", r.RemoteAddr)
			w.Header().Set("WWW-Authenticate", `Bearer realm="bg"`)
			writeError(w, http.StatusUnauthorized, apiv1.CodeUnauthorized, "missing or wrong bearer token")
			return
		}
	}
	body, ok := readBody(w, r)
	if !ok {
		return
	}
	rule := ruleFor(a.mux, r)
	need := rule.Scope
	if rule.Forceable && forced(body) {
		need = config.ScopeOverride
	}
	if cred != nil && !cred.Scope.Allows(need) {
		a.metrics.failures.WithLabelValues(failForbidden).Inc()
		a.log.Warn("admin request forbidden", "token", cred.Name, "scope", string(cred.Scope), "needs", string(need),
			"method", r.Method, "path", r.URL.Path, "remote", r.RemoteAddr)
		msg := fmt.Sprintf("token %q has scope %s; %s %s needs scope %s", cred.Name, cred.Scope, r.Method, r.URL.Path, need)
		if need == config.ScopeOverride && rule.Forceable {
			msg += " (force)"
		}
		writeError(w, http.StatusForbidden, apiv1.CodeForbidden, msg)
		return
	}
	if cred != nil {
		r = r.WithContext(context.WithValue(r.Context(), tokenKey{}, cred.Name))
	}
	if r.Method != http.MethodGet {
		attrs := []any{"method", r.Method, "path", r.URL.Path, "remote", r.RemoteAddr}
		if cred != nil {
			attrs = append(attrs, "token", cred.Name)
		}
		a.log.Info("admin request", attrs...)
	}
	a.next.ServeHTTP(w, r)
}

// lookup finds the credential of "Bearer TOKEN" (surrounding space
// ignored). The token is hashed and compared with every credential's hash
// in constant time, so neither the token nor which one matched can be
// learnt by timing.
func (a *authenticator) lookup(header string) (*config.AdminCredential, string) {
	header = strings.TrimSpace(header)
	tok, ok := strings.CutPrefix(header, "Bearer ")
	if !ok || tok == "" {
		return nil, failMissing
	}
	sum := sha256.Sum256([]byte(tok))
	found := -1
	for i := range a.creds {
		if subtle.ConstantTimeCompare(sum[:], a.creds[i].SHA256[:]) == 1 {
			found = i
		}
	}
	if found < 0 {
		return nil, failWrong
	}
	return &a.creds[found], ""
}

// readBody reads the whole body (at most MaxRequestBody, else 413) and
// puts it back for the handler.
func readBody(w http.ResponseWriter, r *http.Request) ([]byte, bool) {
	if r.Body == nil || r.Body == http.NoBody {
		return nil, true
	}
	if r.ContentLength > MaxRequestBody {
		writeError(w, http.StatusRequestEntityTooLarge, apiv1.CodeTooLarge, fmt.Sprintf("request body over %d bytes", MaxRequestBody))
		return nil, false
	}
	body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, MaxRequestBody))
	if err != nil {
		var tooLarge *http.MaxBytesError
		if errors.As(err, &tooLarge) {
			writeError(w, http.StatusRequestEntityTooLarge, apiv1.CodeTooLarge, fmt.Sprintf("request body over %d bytes", MaxRequestBody))
			return nil, false
		}
		writeError(w, http.StatusBadRequest, apiv1.CodeBadRequest, "reading the request body: "+err.Error())
		return nil, false
	}
	r.Body = io.NopCloser(bytes.NewReader(body))
	return body, true
}

// forced reports whether a command body asks for force. It decodes as the
// handlers do (encoding/json, same field), so a body they read as forced is
// forced here too; a body that does not decode is refused by the handler.
func forced(body []byte) bool {
	var b struct {
		Force bool `json:"force"`
	}
	if err := json.Unmarshal(body, &b); err != nil {
		// A body the strict decoder might still read as forced (it will
		// refuse it, but be safe): a "force" key set to true anywhere.
		return bytes.Contains(bytes.ToLower(body), []byte(`"force"`))
	}
	return b.Force
}

// clientIP is the host of a RemoteAddr.
func clientIP(remote string) string {
	host, _, err := net.SplitHostPort(remote)
	if err != nil {
		return remote
	}
	return host
}
