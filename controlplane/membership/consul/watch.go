// Package consul reads fleets from Consul's health API with blocking queries.
package consul

import (
	"context"
	"github.com/bgctl/bg/controlplane/wait"
	"log/slog"
	"reflect"
	"time"

	"github.com/hashicorp/consul/api"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/bgctl/bg/controlplane/membership"
)

// Source watches passing instances of Consul services.
type Source struct {
	client *api.Client
	rule   ColorRule
	// names maps a bg service to its Consul service name.
	names map[string]string
	wait  time.Duration
	log   *slog.Logger
	m     *metrics

	// minInterval rate-limits fetches; blocking queries can return at once.
	minInterval time.Duration
	maxBackoff  time.Duration
}

// New builds a source. names maps bg service → Consul service.
func New(c *api.Client, rule ColorRule, names map[string]string, wait time.Duration, log *slog.Logger, reg prometheus.Registerer) *Source {
	return &Source{client: c, rule: rule, names: names, wait: wait, log: log, m: newMetrics(reg),
		minInterval: 100 * time.Millisecond, maxBackoff: 10 * time.Second}
}

var _ membership.Source = (*Source)(nil)

// Watch calls fn after the first successful read and after every change.
// Read errors never call fn: the last known fleets stay in force.
func (s *Source) Watch(ctx context.Context, service string, fn func(membership.Update)) {
	name := s.names[service]
	if name == "" {
		name = service
	}
	var (
		index   uint64
		last    *membership.Update
		backoff = s.minInterval
	)
	for ctx.Err() == nil {
		start := time.Now()
		opts := (&api.QueryOptions{WaitIndex: index, WaitTime: s.wait, AllowStale: true}).WithContext(ctx)
		entries, meta, err := s.client.Health().Service(name, "", true, opts)
		if err != nil {
			if ctx.Err() != nil {
				return
			}
			s.m.errors.WithLabelValues(service).Inc()
			s.log.Warn("consul read failed; keeping last known fleets", "service", service, "error", err, "retry_in", backoff)
			wait.Sleep(ctx, backoff)
			backoff = min(backoff*2, s.maxBackoff)
			continue
		}
		backoff = s.minInterval
		s.m.lastSuccess.WithLabelValues(service).SetToCurrentTime()
		index = nextIndex(index, meta.LastIndex)

		m, skipped := toMembership(entries, s.rule)
		u := membership.Update{Service: service, Membership: m, Skipped: skipped}
		u.Rolling, u.AffinityHeader = strategyHint(entries)
		if last == nil || !reflect.DeepEqual(*last, u) {
			for _, sk := range skipped {
				s.log.Warn("consul instance ignored", "service", service, "reason", sk)
			}
			last = &u
			fn(u)
		}
		wait.Sleep(ctx, s.minInterval-time.Since(start))
	}
}

// nextIndex applies Consul's blocking-query rules: reset when the index
// goes backwards (e.g. a restored snapshot), never block on an index below 1.
func nextIndex(prev, got uint64) uint64 {
	if got < prev {
		return 0
	}
	if got < 1 {
		return 1
	}
	return got
}
