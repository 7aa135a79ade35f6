// Package leader elects the one replica that acts (runs switches, writes
// state) with a Consul lock. Every replica serves xDS; only the leader acts.
package leader

import (
	"context"
	"encoding/json"
	"fmt"
	"github.com/bgctl/bg/controlplane/wait"
	"log/slog"
	"sync"
	"time"

	"github.com/hashicorp/consul/api"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/bgctl/bg/controlplane/state/consulkv"
)

// Info is what the leader publishes in the lock key, so followers can
// forward commands to it.
type Info struct {
	Replica string `json:"replica"`
	Admin   string `json:"admin"` // host:port of its admin API
}

// Options configure an election.
type Options struct {
	Key        string        // lock key, e.g. "bg/leader"
	Self       Info          // this replica
	SessionTTL time.Duration // ≥ 10s (Consul's minimum); a dead leader is replaced after about this long
	LockDelay  time.Duration // Consul refuses the lock this long after a leader's session ends
}

// Elector campaigns for leadership and tells the caller while it holds it.
type Elector struct {
	client *api.Client
	opts   Options
	log    *slog.Logger
	up     prometheus.Gauge

	mu     sync.Mutex
	fence  *consulkv.Fence // set while leading
	leader Info            // last seen leader
}

// New builds an elector.
func New(c *api.Client, o Options, log *slog.Logger, reg prometheus.Registerer) *Elector {
	e := &Elector{client: c, opts: o, log: log, up: prometheus.NewGauge(prometheus.GaugeOpts{
		Name: "bg_leader", Help: "1 while this replica holds the leader lock and acts.",
	})}
	if reg != nil {
		reg.MustRegister(e.up)
	}
	return e
}

// Fence is the write fence while leading; ok=false otherwise.
func (e *Elector) Fence() (consulkv.Fence, bool) {
	e.mu.Lock()
	defer e.mu.Unlock()
	if e.fence == nil {
		return consulkv.Fence{}, false
	}
	return *e.fence, true
}

// Leading reports whether this replica acts.
func (e *Elector) Leading() bool {
	_, ok := e.Fence()
	return ok
}

// Leader returns the current leader as last read from Consul.
func (e *Elector) Leader(ctx context.Context) (Info, error) {
	pair, _, err := e.client.KV().Get(e.opts.Key, (&api.QueryOptions{AllowStale: true}).WithContext(ctx))
	if err != nil {
		return Info{}, fmt.Errorf("read leader: %w", err)
	}
	if pair == nil || pair.Session == "" {
		return Info{}, fmt.Errorf("no leader elected")
	}
	var in Info
	if err := json.Unmarshal(pair.Value, &in); err != nil {
		return Info{}, fmt.Errorf("leader key %s: %w", e.opts.Key, err)
	}
	e.mu.Lock()
	e.leader = in
	e.mu.Unlock()
	return in, nil
}

// Run campaigns until ctx ends. Each time it wins, lead runs with a
// context that is cancelled the moment the lock is lost (session expired,
// Consul unreachable, key taken): the leader stops acting at once.
func (e *Elector) Run(ctx context.Context, lead func(ctx context.Context)) {
	backoff := time.Second
	for ctx.Err() == nil {
		err := e.term(ctx, lead)
		if ctx.Err() != nil {
			return
		}
		if err != nil {
			e.log.Warn("leader election", "error", err, "retry_in", backoff)
		}
		wait.Sleep(ctx, backoff)
		backoff = min(backoff*2, 10*time.Second)
		if err == nil {
			backoff = time.Second
		}
	}
}

// term holds one session: waits for the lock, leads, and cleans up.
func (e *Elector) term(ctx context.Context, lead func(ctx context.Context)) error {
	sessions := e.client.Session()
	id, _, err := sessions.Create(&api.SessionEntry{
		Name: "bg-leader " + e.opts.Self.Replica, TTL: e.opts.SessionTTL.String(),
		LockDelay: e.opts.LockDelay, Behavior: api.SessionBehaviorRelease,
	}, (&api.WriteOptions{}).WithContext(ctx))
	if err != nil {
		return fmt.Errorf("create session: %w", err)
	}
	termCtx, cancel := context.WithCancel(ctx)
	defer cancel()
	renewDone := make(chan struct{})
	go func() {
		defer close(renewDone)
		// Returns when the session cannot be renewed before its TTL ends.
		if err := sessions.RenewPeriodic(e.opts.SessionTTL.String(), id, nil, termCtx.Done()); err != nil && termCtx.Err() == nil {
			e.log.Warn("leader session lost", "error", err)
		}
		cancel()
	}()
	defer func() {
		cancel()
		<-renewDone
		_, _ = sessions.Destroy(id, nil)
	}()

	value, _ := json.Marshal(e.opts.Self)
	lock, err := e.client.LockOpts(&api.LockOptions{
		Key: e.opts.Key, Value: value, Session: id, MonitorRetries: 3, MonitorRetryTime: time.Second,
	})
	if err != nil {
		return err
	}
	lost, err := lock.Lock(termCtx.Done())
	if err != nil || lost == nil {
		return err // nil,nil: we were asked to stop
	}
	pair, _, err := e.client.KV().Get(e.opts.Key, (&api.QueryOptions{RequireConsistent: true}).WithContext(termCtx))
	if err != nil || pair == nil || pair.Session != id {
		_ = lock.Unlock()
		return fmt.Errorf("read lock after acquiring: %v", err)
	}
	leadCtx, stop := context.WithCancel(termCtx)
	go func() {
		select {
		case <-lost:
			e.log.Warn("leadership lost; stopping all actions")
		case <-leadCtx.Done():
		}
		stop()
	}()
	e.mu.Lock()
	e.fence = &consulkv.Fence{Key: e.opts.Key, Session: id, Term: pair.LockIndex, Replica: e.opts.Self.Replica}
	e.leader = e.opts.Self
	e.mu.Unlock()
	e.up.Set(1)
	e.log.Info("elected leader", "replica", e.opts.Self.Replica, "term", pair.LockIndex)

	lead(leadCtx)
	<-leadCtx.Done()

	e.mu.Lock()
	e.fence = nil
	e.mu.Unlock()
	e.up.Set(0)
	_ = lock.Unlock()
	return nil
}
