package admin

import (
	"context"
	"crypto/tls"
	"errors"
	"log/slog"
	"net/http"
	"net/http/pprof"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	apiv1 "github.com/bgctl/bg/controlplane/api/v1"
	"github.com/bgctl/bg/controlplane/config"
	"github.com/bgctl/bg/controlplane/model"
	"github.com/bgctl/bg/controlplane/state"
	"github.com/bgctl/bg/controlplane/traffic"
	"github.com/bgctl/bg/controlplane/xds"
)

// Controller is what the API needs from the traffic controller.
type Controller interface {
	Switch(ctx context.Context, req traffic.Request) (traffic.Result, error)
	Abort(ctx context.Context, req traffic.Request) (traffic.Result, error)
	Pause(ctx context.Context, req traffic.Request) (traffic.Result, error)
	Resume(ctx context.Context, req traffic.Request) (traffic.Result, error)
	Promote(ctx context.Context, req traffic.Request) (traffic.Result, error)
	DryRun(ctx context.Context, req traffic.Request) (traffic.DryRunReport, error)
	Preview(ctx context.Context, req traffic.PreviewRequest) (traffic.Result, error)
	Status(name string) (traffic.Status, error)
	StatusAll() []traffic.Status
	Missing() []string
	Ready() bool
	// History returns the newest limit entries, oldest first, or an error
	// wrapping traffic.ErrUnknownService.
	History(ctx context.Context, service string, limit int) ([]model.HistoryEntry, error)
}

// Options configure the API.
type Options struct {
	// Token is one override token named "admin.token" (tests, and
	// admin.token before it was hashed); Tokens are the scoped tokens.
	// With neither the API is open.
	Token  string
	Tokens []config.AdminCredential
	// AuthMetrics counts refused requests; nil: counted unregistered.
	AuthMetrics *AuthMetrics
	// Forward, when set, is the TLS config of commands forwarded to the
	// leader (the admin API is served over TLS).
	Forward        *tls.Config
	DefaultTimeout time.Duration
	Proxies        func() []xds.ProxyInfo
	Gatherer       prometheus.Gatherer
	Log            *slog.Logger
	// Leader, when set, forwards commands to the leading replica.
	Leader LeaderFunc
	// Pprof serves Go's runtime profiles at /debug/pprof/.
	Pprof bool
	// Releases, when set, serves /v1/releases (releases.go).
	Releases Releases
	// Reload re-reads this replica's config file (POST /v1/reload); nil:
	// the route answers that reload is not available.
	Reload func() apiv1.ReloadAttempt
	// Converge, when set, serves /v1/services/{name}/desired (desired.go).
	Converge Converge
}

// Handler builds the admin API.
func Handler(c Controller, o Options) http.Handler {
	mux := http.NewServeMux()
	rt := &router{mux: mux}
	registerRoutes(rt, c, o)
	var h http.Handler = mux
	if o.Leader != nil {
		h = forwarding(mux, o.Leader, o.Forward)
	}
	creds := o.Tokens
	if o.Token != "" {
		creds = append([]config.AdminCredential{{Name: config.LegacyTokenName, Scope: config.ScopeOverride, SHA256: config.HashToken(o.Token)}}, creds...)
	}
	metrics := o.AuthMetrics
	if metrics == nil {
		metrics = NewAuthMetrics(nil)
	}
	log := o.Log
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	return &authenticator{creds: creds, mux: mux, limiter: newFailLimiter(), metrics: metrics, log: log, next: withActor(h)}
}

// registerRoutes registers every route; each must be in routeScopes.
func registerRoutes(mux *router, c Controller, o Options) {
	mux.HandleFunc("GET /healthz", func(w http.ResponseWriter, r *http.Request) {
		writeJSON(w, http.StatusOK, map[string]string{"status": "ok"})
	})
	mux.HandleFunc("GET /readyz", func(w http.ResponseWriter, r *http.Request) {
		if c.Ready() {
			writeJSON(w, http.StatusOK, map[string]string{"status": "ready"})
			return
		}
		writeJSON(w, http.StatusServiceUnavailable, map[string]any{"status": "not ready", "waiting_for": c.Missing()})
	})
	mux.Handle("GET /metrics", promhttp.HandlerFor(o.Gatherer, promhttp.HandlerOpts{}))
	if o.Pprof {
		mux.HandleFunc("GET /debug/pprof/", pprof.Index)
		mux.HandleFunc("GET /debug/pprof/profile", pprof.Profile)
		mux.HandleFunc("GET /debug/pprof/trace", pprof.Trace)
	}
	mux.HandleFunc("GET /v1/services", func(w http.ResponseWriter, r *http.Request) {
		writeJSON(w, http.StatusOK, c.StatusAll())
	})
	mux.HandleFunc("GET /v1/services/{name}", func(w http.ResponseWriter, r *http.Request) {
		st, err := c.Status(r.PathValue("name"))
		if err != nil {
			writeFailure(w, err)
			return
		}
		writeJSON(w, http.StatusOK, st)
	})
	mux.HandleFunc("GET /v1/services/{name}/history", historyHandler(c.History))
	mux.HandleFunc("GET /v1/proxies", func(w http.ResponseWriter, r *http.Request) {
		writeJSON(w, http.StatusOK, o.Proxies())
	})
	mux.HandleFunc("POST /v1/services/{name}/preview", previewHandler(c, o.DefaultTimeout))
	ops := map[string]func(context.Context, traffic.Request) (traffic.Result, error){
		"switch": c.Switch, "abort": c.Abort, "pause": c.Pause, "resume": c.Resume, "promote": c.Promote,
	}
	for name, op := range ops {
		mux.HandleFunc("POST /v1/services/{name}/"+name, func(w http.ResponseWriter, r *http.Request) {
			body, to, timeout, err := decodeChange(r.Body, name == "switch")
			if err != nil {
				writeError(w, http.StatusBadRequest, apiv1.CodeBadRequest, err.Error())
				return
			}
			plan, err := planOverrides(body)
			if err != nil {
				writeError(w, http.StatusBadRequest, apiv1.CodeBadRequest, err.Error())
				return
			}
			if timeout == 0 {
				timeout = o.DefaultTimeout
			}
			req := traffic.Request{Service: r.PathValue("name"), To: to, Instant: body.Instant, Plan: plan,
				Force: body.Force, Reason: body.Reason, Timeout: timeout}
			if body.DryRun {
				rep, err := c.DryRun(r.Context(), req)
				if err != nil {
					writeFailure(w, err)
					return
				}
				writeJSON(w, http.StatusOK, rep)
				return
			}
			res, err := op(r.Context(), req)
			if err == nil && o.Converge != nil && (name == "abort" || name == "switch" && res.Changed) {
				// Explicit commands take precedence over convergence. Told
				// after the answer is decided, never delaying it (an abort
				// while Consul is slow must answer at once).
				ctx, cancel := context.WithTimeout(context.WithoutCancel(r.Context()), 10*time.Second)
				changed := res.Changed
				go func() {
					defer cancel()
					var cerr error
					if name == "switch" {
						cerr = o.Converge.Switched(ctx, req.Service)
					} else {
						cerr = o.Converge.Aborted(ctx, req.Service, changed)
					}
					if cerr != nil && o.Log != nil {
						o.Log.Warn(name+" applied, but convergence could not be told to stand back", "service", req.Service, "error", cerr)
					}
				}()
			}
			writeResult(w, res, err)
		})
	}
	if o.Releases != nil {
		releaseRoutes(mux, o.Releases)
	}
	if o.Converge != nil {
		desiredRoutes(mux, o.Converge)
	}
	mux.HandleFunc("POST /v1/reload", reloadHandler(o.Reload))
}

// reloadHandler answers a reload of this replica's config: 200 when it is
// in force, 422 (config_invalid) or 409 (restart_required) with the same
// body when the running config stays.
func reloadHandler(reload func() apiv1.ReloadAttempt) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		if reload == nil {
			writeError(w, http.StatusNotImplemented, apiv1.CodeUnavailable, "this control plane cannot reload its config")
			return
		}
		a := reload()
		switch a.Result {
		case apiv1.ReloadSuccess:
			writeJSON(w, http.StatusOK, a)
		case apiv1.ReloadRefused:
			a.Code = apiv1.CodeRestartRequired
			writeJSON(w, http.StatusConflict, a)
		default:
			a.Code = apiv1.CodeConfigInvalid
			writeJSON(w, http.StatusUnprocessableEntity, a)
		}
	}
}

// writeResult answers a change: 200 when every proxy holds it, 504 with
// the same body when it was applied but some proxy did not ACK in time.
func writeResult(w http.ResponseWriter, res traffic.Result, err error) {
	if err != nil {
		writeFailure(w, err)
		return
	}
	code := http.StatusOK
	if !res.Acks.Complete() {
		code = http.StatusGatewayTimeout
	}
	writeJSON(w, code, res)
}

// writeFailure maps controller errors to HTTP statuses the CLI understands.
func writeFailure(w http.ResponseWriter, err error) {
	if releaseFailure(w, err) {
		return
	}
	switch {
	case errors.Is(err, traffic.ErrInRelease):
		writeError(w, http.StatusConflict, apiv1.CodeInRelease, err.Error())
	case errors.Is(err, traffic.ErrUnknownService):
		writeError(w, http.StatusNotFound, apiv1.CodeUnknownService, err.Error())
	case errors.Is(err, traffic.ErrEmptyFleet):
		writeError(w, http.StatusUnprocessableEntity, apiv1.CodeEmptyFleet, err.Error())
	case errors.Is(err, state.ErrConflict):
		writeError(w, http.StatusConflict, apiv1.CodeConflict, err.Error())
	case errors.Is(err, traffic.ErrBusy):
		writeError(w, http.StatusConflict, apiv1.CodeSwitchRunning, err.Error())
	case errors.Is(err, traffic.ErrNotRunning):
		writeError(w, http.StatusConflict, apiv1.CodeNotRunning, err.Error())
	case errors.Is(err, traffic.ErrNeedsReason):
		writeError(w, http.StatusBadRequest, apiv1.CodeNeedsReason, err.Error())
	case errors.Is(err, traffic.ErrWindowClosed):
		writeError(w, http.StatusConflict, apiv1.CodeWindowClosed, err.Error())
	case errors.Is(err, traffic.ErrGateFailed):
		writeError(w, http.StatusConflict, apiv1.CodeGateFailed, err.Error())
	case errors.Is(err, traffic.ErrNoPreview):
		writeError(w, http.StatusUnprocessableEntity, apiv1.CodeNoPreview, err.Error())
	case errors.Is(err, traffic.ErrBadPlan):
		writeError(w, http.StatusBadRequest, apiv1.CodeBadPlan, err.Error())
	case errors.Is(err, traffic.ErrNoAnalysis):
		writeError(w, http.StatusUnprocessableEntity, apiv1.CodeNoAnalysis, err.Error())
	case errors.Is(err, state.ErrNotLeader):
		writeError(w, http.StatusServiceUnavailable, apiv1.CodeNotLeader, err.Error())
	case errors.Is(err, traffic.ErrNotReady):
		writeError(w, http.StatusServiceUnavailable, apiv1.CodeNotReady, err.Error())
	default:
		writeError(w, http.StatusServiceUnavailable, apiv1.CodeUnavailable, err.Error())
	}
}
