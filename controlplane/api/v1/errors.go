package apiv1

// ErrorBody is every error response: a message for people and a code
// (one of the Code constants) for programs.
type ErrorBody struct {
	Error string `json:"error"`
	Code  string `json:"code"`
}

// Error codes (ErrorBody.Code). A client acts on the code, not on the
// message or only the HTTP status.
const (
	// The request itself is wrong (HTTP 400, 404).
	CodeBadRequest     = "bad_request"     // malformed body or query
	CodeUnknownService = "unknown_service" // no such service
	CodeBadPlan        = "bad_plan"        // the switch cannot be planned as asked
	CodeNeedsReason    = "needs_reason"    // force without a reason
	CodeUnknownRelease = "unknown_release" // no release with that ID (404)

	// The control plane refused (HTTP 409, 422, 503).
	CodeEmptyFleet    = "empty_fleet"
	CodeConflict      = "conflict"
	CodeSwitchRunning = "switch_running"
	// CodeInRelease: the service is a member of a running release, which
	// alone switches it until it ends (409); the message names the release.
	CodeInRelease = "in_release"
	// CodeReleaseState: the release cannot take the command in its phase
	// (ended, not started, rolling back) (409).
	CodeReleaseState = "release_state"
	CodeNotRunning   = "not_running"
	CodeWindowClosed = "window_closed"
	CodeGateFailed   = "gate_failed"
	CodeNoPreview    = "no_preview"
	CodeNoAnalysis   = "no_analysis"
	CodeNotLeader    = "not_leader"
	CodeNoLeader     = "no_leader"
	CodeNotReady     = "not_ready"
	CodeUnavailable  = "unavailable"
	// CodeConfigInvalid: a reload's file did not read or validate (422);
	// CodeRestartRequired: it changes a setting that needs a restart
	// (409). Either way the running config stays in force.
	CodeConfigInvalid   = "config_invalid"
	CodeRestartRequired = "restart_required"

	CodeUnauthorized = "unauthorized" // HTTP 401: no token, or a wrong one
	// CodeForbidden: the token's scope is too small; the message names the
	// scope needed (HTTP 403).
	CodeForbidden = "forbidden"
	// CodeRateLimited: too many failed authentications from this client;
	// the token is not even checked until Retry-After (HTTP 429).
	CodeRateLimited = "rate_limited"
	// CodeTooLarge: the request body is over the limit (HTTP 413).
	CodeTooLarge = "too_large"
)
