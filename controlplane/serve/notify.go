package serve

import (
	"context"
	"log/slog"

	promclient "github.com/prometheus/client_golang/prometheus"

	"github.com/bgctl/bg/controlplane/config"
	"github.com/bgctl/bg/controlplane/notify"
	"github.com/bgctl/bg/controlplane/traffic"
)

// notifications starts the notifier when notifications[] is set: the
// controller's recorder sends each stored change's events (the leader's
// only), and the returned function sends a release's (nil: none).
func notifications(ctx context.Context, cfg *config.Config, ctrl *traffic.Controller, log *slog.Logger, reg promclient.Registerer) (func(notify.Event), error) {
	targets, err := cfg.NotifyTargets()
	if err != nil || len(targets) == 0 {
		return nil, err
	}
	h := newNotifiers(ctx, ctrl, cfg.Admin.Listen, log, reg)
	h.set(targets)
	return h.release, nil
}
