package serve

import (
	"context"
	"log/slog"
	"sync"

	promclient "github.com/prometheus/client_golang/prometheus"

	apiv1 "github.com/bgctl/bg/controlplane/api/v1"
	"github.com/bgctl/bg/controlplane/model"
	"github.com/bgctl/bg/controlplane/notify"
	"github.com/bgctl/bg/controlplane/traffic"
)

// notifiers holds the running notifier, which a config reload replaces.
// The controller's recorder and releases send through it, so they never
// hold an old one.
type notifiers struct {
	ctx  context.Context
	ctrl *traffic.Controller
	log  *slog.Logger
	reg  promclient.Registerer
	base string // the admin API's URL, for links

	mu     sync.Mutex
	cur    *notify.Notifier
	stop   context.CancelFunc
	regged []promclient.Collector // cur's series, unregistered when it is replaced
}

func newNotifiers(ctx context.Context, ctrl *traffic.Controller, adminListen string, log *slog.Logger, reg promclient.Registerer) *notifiers {
	return &notifiers{ctx: ctx, ctrl: ctrl, log: log, reg: reg, base: "http://" + adminListen}
}

// set replaces the notifier with one for targets (none: no notifier). It
// cannot fail: targets were built (url files read) before.
func (h *notifiers) set(targets []notify.Target) {
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.stop != nil {
		h.stop() // the old workers end; events still queued for them are dropped
		h.stop, h.cur = nil, nil
	}
	if h.reg != nil {
		for _, c := range h.regged {
			h.reg.Unregister(c)
		}
	}
	h.regged = nil
	if len(targets) == 0 {
		h.ctrl.SetRecorder(nil)
		h.ctrl.SetNotificationStatus(nil)
		return
	}
	var reg promclient.Registerer
	if h.reg != nil {
		reg = &capture{Registerer: h.reg, h: h}
	}
	n := notify.New(targets, notify.Options{Log: h.log, Reg: reg})
	ctx, stop := context.WithCancel(h.ctx)
	go n.Run(ctx)
	h.cur, h.stop = n, stop
	h.ctrl.SetRecorder(func(service string, cur, next model.Traffic, e model.HistoryEntry) {
		for _, ev := range notify.Classify(service, cur, next, e) {
			ev.Link = h.base + "/v1/services/" + service
			h.current().Send(ev)
		}
	})
	h.ctrl.SetNotificationStatus(func() []apiv1.NotificationStatus {
		var out []apiv1.NotificationStatus
		for _, st := range h.current().Statuses() {
			if st.LastError != "" {
				out = append(out, apiv1.NotificationStatus{Name: st.Name, LastError: st.LastError, At: st.At})
			}
		}
		return out
	})
	h.log.Info("notifications on", "targets", len(targets))
}

func (h *notifiers) current() *notify.Notifier {
	h.mu.Lock()
	defer h.mu.Unlock()
	return h.cur
}

// release sends a release's event (none configured: nothing).
func (h *notifiers) release(ev notify.Event) {
	ev.Link = h.base + "/v1/releases/" + ev.Release
	h.current().Send(ev) // Send on a nil notifier does nothing
}

// capture registers on the real registry and remembers what, so the next
// set can unregister it. Called under h.mu (from notify.New).
type capture struct {
	promclient.Registerer
	h *notifiers
}

func (c *capture) Register(col promclient.Collector) error {
	if err := c.Registerer.Register(col); err != nil {
		return err
	}
	c.h.regged = append(c.h.regged, col)
	return nil
}

func (c *capture) MustRegister(cs ...promclient.Collector) {
	for _, col := range cs {
		if err := c.Register(col); err != nil {
			panic(err)
		}
	}
}
