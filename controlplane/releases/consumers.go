package releases

import (
	"context"
	"fmt"
	"slices"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/bgctl/bg/controlplane/fleetmetrics"
	"github.com/bgctl/bg/controlplane/judge"
	"github.com/bgctl/bg/controlplane/model"
	"github.com/bgctl/bg/controlplane/release"
)

// ConsumerWatch is release.watch_consumers: while a member of a release
// switches (its provider role), every configured service that calls it
// (depends_on) and is not switching itself is judged by judge.Consumer on
// its serving fleet's counters; a consumer failing more than before the
// switch began fails the provider's switch (model.CauseConsumerRegressed),
// and with it the release.
type ConsumerWatch struct {
	Source fleetmetrics.Source
	Test   judge.Consumer
	// Lookback is the consumer's reference before the switch began.
	Lookback time.Duration
	// ReadTimeout bounds each look's reads (2s if unset).
	ReadTimeout time.Duration
}

// watch is one consumer judged during one provider switch. Owned by the
// release's loop.
type watch struct {
	provider, switchID, consumer string
	color                        model.Color // the consumer's serving colour
	start                        time.Time   // the provider's switch began
	test                         *judge.ConsumerTest
	live                         fleetmetrics.Tracker
	since                        judge.Sample
	lastErr                      string
	failed                       bool
}

// consumersOf are the configured services that call provider.
func (e *Executor) consumersOf(provider string) []string {
	var out []string
	for _, s := range e.services() {
		if slices.Contains(e.opts.Dependencies[s], provider) {
			out = append(out, s)
		}
	}
	return out
}

// watchConsumers looks at the consumers of every member that switches.
// Runs on the release's loop, on its tick.
func (e *Executor) watchConsumers(r *run) {
	cw := e.opts.Consumers
	if cw == nil {
		return
	}
	live := map[string]bool{}
	for _, m := range r.rel.Members {
		if r.rel.Phase.Ended() {
			break
		}
		if m.Phase != release.MemberSwitching || m.SwitchID == "" {
			continue
		}
		t, err := e.ctrl.TrafficState(m.Service)
		if err != nil || !t.ProgressiveRunning() || t.Rollout == nil || t.Rollout.ID != m.SwitchID {
			continue
		}
		for _, c := range e.consumersOf(m.Service) {
			ct, err := e.ctrl.TrafficState(c)
			if err != nil || ct.ProgressiveRunning() || ct.RollRunning() || ct.Serving() == "" {
				continue // switching itself (its own analysis judges it), or split
			}
			key := m.Service + "/" + m.SwitchID + "/" + c
			w := r.watches[key]
			if w == nil || w.color != ct.Serving() {
				w = &watch{provider: m.Service, switchID: m.SwitchID, consumer: c, color: ct.Serving(), start: t.Rollout.StartedAt}
				if r.watches == nil {
					r.watches = map[string]*watch{}
				}
				r.watches[key] = w
			}
			live[key] = true
			if w.failed {
				continue
			}
			v, err := e.look(cw, w)
			if err != nil {
				if msg := err.Error(); msg != w.lastErr {
					w.lastErr = msg
					e.log.Warn("cannot judge a consumer; its provider's switch goes on", "release", r.id, "provider", w.provider, "consumer", c, "error", err)
				}
				continue
			}
			e.m.consumerEvidence.WithLabelValues(r.id, w.provider, c).Set(v.EValue)
			if !v.Failed {
				continue
			}
			w.failed = true
			reason := fmt.Sprintf("consumer %s regressed while %s switched: %s", c, w.provider, v.Reason)
			e.log.Warn("a consumer fails: rolling back its provider's switch", "release", r.id, "provider", w.provider, "switch", w.switchID, "consumer", c, "reason", v.Reason)
			if _, err := e.ctrl.FailSwitch(context.Background(), w.provider, w.switchID, model.CauseConsumerRegressed, reason, e.timeout); err != nil {
				e.log.Warn("rolling back the provider's switch failed; the next look tries again", "release", r.id, "provider", w.provider, "error", err)
				w.failed = false
			}
			break // the provider goes back: its other consumers no longer matter
		}
	}
	for key, w := range r.watches {
		if !live[key] {
			e.m.consumerEvidence.DeleteLabelValues(r.id, w.provider, w.consumer)
			delete(r.watches, key)
		}
	}
}

// endWatches drops an ended release's consumer watches and their series.
// Runs on the release's loop.
func (e *Executor) endWatches(r *run) {
	for key, w := range r.watches {
		e.m.consumerEvidence.DeleteLabelValues(r.id, w.provider, w.consumer)
		delete(r.watches, key)
	}
}

// look reads the consumer's counters and judges them: the reference once
// (the lookback before the switch began, and the start), then every look
// adds what the fleet served since the previous one.
func (e *Executor) look(cw *ConsumerWatch, w *watch) (judge.ConsumerVerdict, error) {
	timeout := cw.ReadTimeout
	if timeout <= 0 {
		timeout = 2 * time.Second
	}
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	read := func(at time.Time) (fleetmetrics.Reading, error) {
		return cw.Source.Read(ctx, fleetmetrics.Query{Service: w.consumer, Color: w.color, At: at})
	}
	if w.test == nil {
		before, err := read(w.start.Add(-cw.Lookback))
		if err != nil {
			return judge.ConsumerVerdict{}, err
		}
		atStart, err := read(w.start)
		if err != nil {
			return judge.ConsumerVerdict{}, err
		}
		var ref fleetmetrics.Tracker
		ref.Advance(before)
		counts, _ := ref.Advance(atStart)
		test, err := cw.Test.NewConsumerTest(judge.Sample{Requests: counts.Requests, Errors: counts.Errors})
		if err != nil {
			return judge.ConsumerVerdict{}, err
		}
		w.test = test
		w.live.Advance(atStart)
	}
	now, err := read(e.rt.Now())
	if err != nil {
		return judge.ConsumerVerdict{}, err
	}
	if counts, ok := w.live.Advance(now); ok {
		w.since.Requests += counts.Requests
		w.since.Errors += counts.Errors
	}
	return w.test.Look(w.since)
}

// newConsumerEvidence is bg_release_consumer_evidence.
func newConsumerEvidence() *prometheus.GaugeVec {
	return prometheus.NewGaugeVec(prometheus.GaugeOpts{
		Name: "bg_release_consumer_evidence",
		Help: "release.watch_consumers: the e-value that a consumer fails more since its provider's switch began than before it, by release, provider and consumer; the provider's switch fails at 2/(1-confidence).",
	}, []string{"release", "provider", "consumer"})
}
