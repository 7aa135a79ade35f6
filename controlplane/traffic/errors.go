package traffic

import "errors"

// Errors the admin API maps to distinct HTTP statuses.
var (
	ErrUnknownService = errors.New("unknown service")
	ErrEmptyFleet     = errors.New("target colour has no healthy members")
	ErrNotReady       = errors.New("control plane is not ready")
)
