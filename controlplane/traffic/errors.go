package traffic

import "errors"

// Errors the admin API maps to distinct HTTP statuses.
var (
	ErrUnknownService = errors.New("unknown service")
	ErrEmptyFleet     = errors.New("target colour has no healthy members")
	ErrNotReady       = errors.New("control plane is not ready")
	ErrBusy           = errors.New("a switch is already running")
	ErrNotRunning     = errors.New("no switch is running")
	ErrBadPlan        = errors.New("invalid switch plan")
	ErrNoAnalysis     = errors.New("progressive switch unavailable")
)
