package serve

import (
	"context"
	"log/slog"

	apiv1 "github.com/bgctl/bg/controlplane/api/v1"

	promclient "github.com/prometheus/client_golang/prometheus"

	"github.com/bgctl/bg/controlplane/config"
	"github.com/bgctl/bg/controlplane/model"
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
	n := notify.New(targets, notify.Options{Log: log, Reg: reg})
	go n.Run(ctx)
	base := "http://" + cfg.Admin.Listen
	ctrl.SetRecorder(func(service string, cur, next model.Traffic, e model.HistoryEntry) {
		for _, ev := range notify.Classify(service, cur, next, e) {
			ev.Link = base + "/v1/services/" + service
			n.Send(ev)
		}
	})
	ctrl.SetNotificationStatus(func() []apiv1.NotificationStatus {
		var out []apiv1.NotificationStatus
		for _, st := range n.Statuses() {
			if st.LastError != "" {
				out = append(out, apiv1.NotificationStatus{Name: st.Name, LastError: st.LastError, At: st.At})
			}
		}
		return out
	})
	log.Info("notifications on", "targets", len(targets))
	return func(ev notify.Event) {
		ev.Link = base + "/v1/releases/" + ev.Release
		n.Send(ev)
	}, nil
}
