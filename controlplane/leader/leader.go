// Package leader elects the one replica that acts (runs switches, writes
// state) with a Consul lock. Every replica serves xDS; only the leader acts.
//
// How a dead leader is replaced in about two seconds:
//
//   - Each replica registers itself with its Consul agent as an instance of
//     CheckService with a TTL check of its own (Options.CheckTTL, default
//     2.4s) and keeps it passing every CheckTTL/2 (sooner again after a
//     failed heartbeat). Its lock session names that
//     check (plus serfHealth), so when the process dies or stops, the check
//     turns critical and Consul invalidates the session at once, releasing
//     the lock. The session TTL stays as a backstop.
//   - Followers wait for the lock with one blocking query on the lock key
//     and acquire the moment its session is gone. Consul refuses the lock
//     for Options.LockDelay after a session is invalidated: a refused
//     follower retries when that delay ends, never after a fixed 5 s.
//   - The leader watches its key with one blocking query and stops acting
//     the moment the key's session is no longer its own. It also stops on
//     its own once its check has not been confirmed passing for CheckTTL,
//     which is no later than Consul can invalidate its session: a leader cut
//     off from Consul, or resumed after a pause, never believes it leads
//     after its successor may.
//   - On a clean stop the leader releases the key (no lock delay), destroys
//     its session and deregisters its check: another replica leads within a
//     round trip.
//
// Writes are fenced in Consul itself (consulkv.Fence): a stale leader's
// write fails even if it has not noticed yet.
package leader

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"sync"
	"time"

	"github.com/hashicorp/consul/api"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/bgctl/bg/controlplane/state/consulkv"
	"github.com/bgctl/bg/controlplane/wait"
)

// Info is what the leader publishes in the lock key, so followers can
// forward commands to it.
type Info struct {
	Replica string `json:"replica"`
	Admin   string `json:"admin"` // host:port of its admin API
}

// CheckService is the Consul service each replica registers, with its TTL
// check, on its Consul agent (ID CheckService-REPLICA). The registration is
// removed on a clean stop; after a crash Consul removes it a minute after
// the check turned critical.
const CheckService = "bg-control-plane"

// DefaultCheckTTL is used when Options.CheckTTL is zero.
const DefaultCheckTTL = 2400 * time.Millisecond

// deregisterCriticalAfter removes a crashed replica's registration; one
// minute is Consul's minimum.
const deregisterCriticalAfter = "1m"

// blockingWait bounds each blocking query; Consul adds up to 1/16 jitter.
const blockingWait = time.Minute

// Retry pauses after a failed call to Consul.
const (
	minBackoff = 100 * time.Millisecond
	maxBackoff = 2 * time.Second
)

// Options configure an election.
type Options struct {
	Key        string        // lock key, e.g. "bg/leader"
	Self       Info          // this replica
	SessionTTL time.Duration // ≥ 10s (Consul's minimum); only a backstop, the check ends a dead leader's session
	LockDelay  time.Duration // Consul refuses the lock this long after a leader's session is invalidated; > 0 (Consul turns 0 into 15s)
	CheckTTL   time.Duration // the replica's TTL check; a dead leader's session ends this long after its last heartbeat (default 2s)
}

// Status describes this replica's side of the election, for `bg status`.
type Status struct {
	Leading bool   `json:"leading"`
	Term    uint64 `json:"term,omitempty"` // the lock index of our term while leading
	Check   struct {
		ID     string `json:"id"`
		TTL    string `json:"ttl"`
		Status string `json:"status"` // "passing" while confirmed within its TTL, else "unconfirmed"
		// LastPass is when the last heartbeat the agent accepted was sent.
		LastPass time.Time `json:"last_pass,omitzero"`
	} `json:"check"`
	// LastTakeoverSeconds is, for the last time this replica won, the time
	// from it first seeing the lock free (the old session's end) to leading.
	LastTakeoverSeconds float64 `json:"last_takeover_seconds,omitempty"`
}

// Elector campaigns for leadership and tells the caller while it holds it.
type Elector struct {
	client    *api.Client
	opts      Options
	log       *slog.Logger
	takeover  prometheus.Gauge
	serviceID string
	checkID   string

	registered     chan struct{} // closed once the check is first registered
	registeredOnce sync.Once

	mu       sync.Mutex
	fence    *consulkv.Fence // set while leading
	leader   Info            // last seen leader
	cur      *term           // the running term, if any
	lastPass time.Time       // send time of the last heartbeat the agent accepted
	guardT   *time.Timer     // the leading term's lapse timer; each accepted heartbeat pushes it back
	took     time.Duration   // last takeover
	orphans  []string        // our sessions that could not be destroyed yet
}

// term is one session: campaign, maybe lead, clean up.
type term struct {
	session string
	cancel  context.CancelCauseFunc
}

// New builds an elector.
func New(c *api.Client, o Options, log *slog.Logger, reg prometheus.Registerer) *Elector {
	if o.CheckTTL <= 0 {
		o.CheckTTL = DefaultCheckTTL
	}
	if o.LockDelay <= 0 {
		o.LockDelay = time.Millisecond // Consul would apply 15s to zero
	}
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	id := CheckService + "-" + o.Self.Replica
	e := &Elector{client: c, opts: o, log: log, serviceID: id, checkID: id + "-alive", registered: make(chan struct{}),
		takeover: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "bg_leader_takeover_seconds",
			Help: "For the last time this replica became leader: seconds from it first seeing the lock free (the old leader's session ended) to leading.",
		}),
	}
	// Read at scrape time, like Leading: a process resumed after a pause
	// reads 0 at once, before its goroutines have caught up.
	up := prometheus.NewGaugeFunc(prometheus.GaugeOpts{
		Name: "bg_leader", Help: "1 while this replica holds the leader lock and acts.",
	}, func() float64 {
		if e.Leading() {
			return 1
		}
		return 0
	})
	if reg != nil {
		reg.MustRegister(up, e.takeover)
	}
	return e
}

// CheckID is the Consul check this replica keeps passing.
func (e *Elector) CheckID() string { return e.checkID }

// Fence is the write fence while leading; ok=false otherwise, including
// once our check has gone unconfirmed for its TTL (Consul may already have
// ended our session; a resumed process must not act before it notices).
func (e *Elector) Fence() (consulkv.Fence, bool) {
	e.mu.Lock()
	defer e.mu.Unlock()
	if e.fence == nil || !e.confirmedLocked(time.Now()) {
		return consulkv.Fence{}, false
	}
	return *e.fence, true
}

// Leading reports whether this replica acts.
func (e *Elector) Leading() bool {
	_, ok := e.Fence()
	return ok
}

// Status reports leadership, the replica's check and the last takeover.
func (e *Elector) Status() Status {
	f, leading := e.Fence()
	e.mu.Lock()
	defer e.mu.Unlock()
	var s Status
	s.Leading = leading
	if leading {
		s.Term = f.Term
	}
	s.Check.ID, s.Check.TTL, s.Check.LastPass = e.checkID, e.opts.CheckTTL.String(), e.lastPass
	s.Check.Status = "unconfirmed"
	if e.confirmedLocked(time.Now()) {
		s.Check.Status = api.HealthPassing
	}
	s.LastTakeoverSeconds = e.took.Seconds()
	return s
}

func (e *Elector) confirmedLocked(now time.Time) bool {
	return !e.lastPass.IsZero() && now.Before(e.lastPass.Add(e.opts.CheckTTL))
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
// context that is cancelled the moment the lock is lost (session
// invalidated, check unconfirmed, Consul unreachable, key taken): the
// leader stops acting at once. When ctx ends, Run releases the lock,
// destroys its session and deregisters its check before returning.
func (e *Elector) Run(ctx context.Context, lead func(ctx context.Context)) {
	hbCtx, stopHB := context.WithCancel(context.WithoutCancel(ctx))
	hbDone := make(chan struct{})
	go func() {
		defer close(hbDone)
		e.heartbeat(hbCtx)
	}()
	defer func() {
		stopHB()
		<-hbDone
		e.deregister()
	}()
	// A session can only name a check the agent has.
	select {
	case <-e.registered:
	case <-ctx.Done():
		return
	}
	backoff := minBackoff
	for ctx.Err() == nil {
		err := e.term(ctx, lead)
		if ctx.Err() != nil {
			return
		}
		if err == nil {
			backoff = minBackoff
		} else {
			e.log.Warn("leader election", "error", err, "retry_in", backoff)
		}
		wait.Sleep(ctx, backoff)
		if err != nil {
			backoff = min(backoff*2, maxBackoff)
		}
	}
}

// heartbeat registers the replica's check and keeps it passing every
// CheckTTL/2 until ctx ends: a heartbeat that fails is retried after
// CheckTTL/10, so a failed one costs nothing, and a stall of up to half
// the TTL right after a heartbeat (of bg or of its agent) still lets the
// next one land before the check lapses. It ends the
// running term as soon as it sees the check went unconfirmed for a whole
// TTL (a pause, or Consul out of reach): Consul may have invalidated the
// session meanwhile.
//
// Every wakeup of an idle replica costs CPU (about 0.2 ms for a timer
// alone, 0.7 ms with an agent request: go run ./e2e/cmd/bg-wakeups), so this
// is the only periodic wakeup of an idle leader's election besides session
// renewals: the lapse guard is a timer that heartbeats push back.
func (e *Elector) heartbeat(ctx context.Context) {
	period := e.opts.CheckTTL / 2
	registered := false
	for ctx.Err() == nil {
		now := time.Now()
		e.mu.Lock()
		lapsed := !e.lastPass.IsZero() && !e.confirmedLocked(now)
		e.mu.Unlock()
		if lapsed {
			e.endTerm(nil, fmt.Errorf("check %s not confirmed passing for %s", e.checkID, e.opts.CheckTTL))
		}
		cctx, cancel := context.WithTimeout(ctx, e.opts.CheckTTL/2)
		var err error
		if registered {
			err = e.client.Agent().UpdateTTLOpts(e.checkID, "", api.HealthPassing, (&api.QueryOptions{}).WithContext(cctx))
			if err != nil && unknownCheck(err) {
				registered = false // the agent lost it (restart without its data dir): register again now
				e.log.Warn("leader check missing on the consul agent; registering it again", "check", e.checkID, "error", err)
				cancel()
				continue
			}
		} else {
			err = e.register(cctx)
			registered = err == nil
			if registered {
				e.registeredOnce.Do(func() { close(e.registered) })
			}
		}
		cancel()
		next := period
		if err == nil {
			e.mu.Lock()
			e.lastPass = now
			if e.guardT != nil {
				e.guardT.Reset(time.Until(now.Add(e.opts.CheckTTL)))
			}
			e.mu.Unlock()
		} else {
			next = period / 5
			if ctx.Err() == nil {
				e.log.Debug("leader check heartbeat failed", "check", e.checkID, "error", err)
			}
		}
		wait.Sleep(ctx, next-time.Since(now))
	}
}

func (e *Elector) register(ctx context.Context) error {
	reg := &api.AgentServiceRegistration{
		ID: e.serviceID, Name: CheckService,
		Meta: map[string]string{"replica": e.opts.Self.Replica, "admin": e.opts.Self.Admin, "leader_key": e.opts.Key},
		Check: &api.AgentServiceCheck{
			CheckID: e.checkID, Name: "bg replica " + e.opts.Self.Replica + " alive",
			Notes: "bg's leader session ends when this check turns critical",
			TTL:   e.opts.CheckTTL.String(), Status: api.HealthPassing,
			DeregisterCriticalServiceAfter: deregisterCriticalAfter,
		},
	}
	if err := e.client.Agent().ServiceRegisterOpts(reg, api.ServiceRegisterOpts{ReplaceExistingChecks: true}.WithContext(ctx)); err != nil {
		return fmt.Errorf("register check %s: %w", e.checkID, err)
	}
	return nil
}

// deregister removes the replica's registration (and with it its check,
// which also invalidates any session still bound to it).
func (e *Elector) deregister() {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	if err := e.client.Agent().ServiceDeregisterOpts(e.serviceID, (&api.QueryOptions{}).WithContext(ctx)); err != nil {
		e.log.Warn("deregister leader check", "service", e.serviceID, "error", err)
	}
	e.mu.Lock()
	e.lastPass = time.Time{}
	e.mu.Unlock()
}

// unknownCheck is the agent's answer for a TTL update of a check it does
// not have.
func unknownCheck(err error) bool {
	var se api.StatusError
	if errors.As(err, &se) && se.Code == 404 {
		return true
	}
	s := err.Error()
	return strings.Contains(s, "does not have associated TTL") || strings.Contains(s, "Unknown check")
}

// endTerm ends term t (the running one if t is nil): the fence goes at
// once, then the term's context is cancelled.
func (e *Elector) endTerm(t *term, cause error) {
	e.mu.Lock()
	if t == nil {
		t = e.cur
	}
	if t == nil {
		e.mu.Unlock()
		return
	}
	wasLeading := e.fence != nil && e.fence.Session == t.session
	if wasLeading {
		e.fence = nil
	}
	e.mu.Unlock()
	if wasLeading {
		e.log.Warn("leadership lost; stopping all actions", "reason", cause)
	} else {
		e.log.Info("leader campaign restarts with a new session", "reason", cause)
	}
	t.cancel(cause)
}

// term holds one session: waits for the lock, leads, and cleans up.
func (e *Elector) term(ctx context.Context, lead func(ctx context.Context)) error {
	e.cleanOrphans(ctx)
	id, err := e.createSession(ctx)
	if err != nil {
		return err
	}
	termCtx, cancel := context.WithCancelCause(ctx)
	t := &term{session: id, cancel: cancel}
	e.mu.Lock()
	e.cur = t
	e.mu.Unlock()
	var bg sync.WaitGroup
	defer func() {
		e.mu.Lock()
		if e.fence != nil && e.fence.Session == id {
			e.fence = nil
		}
		if e.cur == t {
			e.cur = nil
		}
		e.mu.Unlock()
		cancel(nil)
		bg.Wait()
		e.endSession(id)
	}()
	bg.Add(1)
	go func() {
		defer bg.Done()
		e.renew(termCtx, t)
	}()

	value, _ := json.Marshal(e.opts.Self)
	freeSince, err := e.await(termCtx, id, value)
	if err != nil {
		if termCtx.Err() != nil {
			return nil // stopped, or the term was ended (logged where)
		}
		return err
	}
	pair, _, err := e.client.KV().Get(e.opts.Key, (&api.QueryOptions{RequireConsistent: true}).WithContext(termCtx))
	if err != nil || pair == nil || pair.Session != id {
		if termCtx.Err() != nil {
			return nil
		}
		return fmt.Errorf("read lock after acquiring: pair %v, error %v", pair != nil, err)
	}
	took := time.Since(freeSince)
	e.mu.Lock()
	if termCtx.Err() != nil || !e.confirmedLocked(time.Now()) {
		e.mu.Unlock()
		return nil // lost already: let the next term campaign again
	}
	e.fence = &consulkv.Fence{Key: e.opts.Key, Session: id, Term: pair.LockIndex, Replica: e.opts.Self.Replica}
	e.leader = e.opts.Self
	e.took = took
	e.mu.Unlock()
	e.takeover.Set(took.Seconds())
	e.log.Info("elected leader", "replica", e.opts.Self.Replica, "term", pair.LockIndex, "lock_free_for", took.Round(time.Millisecond))

	bg.Add(2)
	go func() {
		defer bg.Done()
		e.monitor(termCtx, t, pair.ModifyIndex)
	}()
	go func() {
		defer bg.Done()
		e.guard(termCtx, t)
	}()
	lead(termCtx)
	<-termCtx.Done()
	return nil
}

func (e *Elector) createSession(ctx context.Context) (string, error) {
	id, _, err := e.client.Session().Create(&api.SessionEntry{
		Name: "bg-leader " + e.opts.Self.Replica, TTL: e.opts.SessionTTL.String(),
		LockDelay: e.opts.LockDelay, Behavior: api.SessionBehaviorRelease,
		NodeChecks:    []string{"serfHealth"},
		ServiceChecks: []api.ServiceCheck{{ID: e.checkID}},
	}, (&api.WriteOptions{}).WithContext(ctx))
	if err != nil {
		// Right after registering, the agent may not have synced the check
		// to the catalog yet; Run retries shortly.
		return "", fmt.Errorf("create session: %w", err)
	}
	return id, nil
}

// endSession releases the key if we hold it (a release sets no lock delay,
// so a successor acquires at once), then destroys the session. A session
// that cannot be destroyed now (Consul out of reach) is remembered: it
// would otherwise hold the lock, bound to our still-passing check, until
// its TTL ran out.
func (e *Elector) endSession(id string) {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	if err := e.dropSession(ctx, id); err != nil {
		e.log.Warn("end leader session; will retry", "session", id, "error", err)
		e.mu.Lock()
		e.orphans = append(e.orphans, id)
		e.mu.Unlock()
	}
}

func (e *Elector) dropSession(ctx context.Context, id string) error {
	w := (&api.WriteOptions{}).WithContext(ctx)
	if _, _, err := e.client.KV().Release(&api.KVPair{Key: e.opts.Key, Session: id}, w); err != nil {
		return err
	}
	_, err := e.client.Session().Destroy(id, w)
	return err
}

func (e *Elector) cleanOrphans(ctx context.Context) {
	e.mu.Lock()
	orphans := e.orphans
	e.orphans = nil
	e.mu.Unlock()
	var left []string
	for _, id := range orphans {
		cctx, cancel := context.WithTimeout(ctx, 2*time.Second)
		if err := e.dropSession(cctx, id); err != nil {
			left = append(left, id)
		}
		cancel()
	}
	if len(left) > 0 {
		e.mu.Lock()
		e.orphans = append(e.orphans, left...)
		e.mu.Unlock()
	}
}

// renew keeps the session's TTL (the backstop) and ends the term if
// Consul no longer knows the session.
func (e *Elector) renew(ctx context.Context, t *term) {
	for wait.Sleep(ctx, e.opts.SessionTTL/2) {
		cctx, cancel := context.WithTimeout(ctx, e.opts.SessionTTL/4)
		entry, _, err := e.client.Session().Renew(t.session, (&api.WriteOptions{}).WithContext(cctx))
		cancel()
		if err == nil && entry == nil {
			e.endTerm(t, fmt.Errorf("session %s invalidated", t.session))
			return
		}
	}
}

// blocking is the options of one blocking query on the lock key.
func blocking(ctx context.Context, index uint64) (*api.QueryOptions, context.CancelFunc) {
	ctx, cancel := context.WithTimeout(ctx, blockingWait+blockingWait/16+5*time.Second)
	return (&api.QueryOptions{WaitIndex: index, WaitTime: blockingWait}).WithContext(ctx), cancel
}

// nextIndex follows Consul's rules for blocking query indexes.
func nextIndex(prev, got uint64) uint64 {
	switch {
	case got < prev:
		return 0 // reset (e.g. a snapshot restore)
	case got == 0:
		return 1
	}
	return got
}

// await returns once session id holds the lock key, and when this replica
// first saw the key free. It holds one blocking query at a time.
func (e *Elector) await(ctx context.Context, id string, value []byte) (time.Time, error) {
	kv := e.client.KV()
	var index uint64
	var freeSince time.Time
	backoff := minBackoff
	for {
		q, cancel := blocking(ctx, index)
		pair, meta, err := kv.Get(e.opts.Key, q)
		cancel()
		if err != nil {
			if ctx.Err() != nil {
				return time.Time{}, ctx.Err()
			}
			e.log.Debug("waiting for the leader lock", "error", err, "retry_in", backoff)
			wait.Sleep(ctx, backoff)
			backoff = min(backoff*2, maxBackoff)
			index = 0
			continue
		}
		backoff = minBackoff
		index = nextIndex(index, meta.LastIndex)
		if pair != nil && pair.Session == id {
			return time.Now(), nil // ours already (an acquire whose answer was lost)
		}
		if pair != nil && pair.Session != "" {
			freeSince = time.Time{}
			var in Info
			if json.Unmarshal(pair.Value, &in) == nil {
				e.mu.Lock()
				e.leader = in
				e.mu.Unlock()
			}
			continue
		}
		if freeSince.IsZero() {
			freeSince = time.Now()
		}
		// Free: acquire, retrying through a lock delay.
		for attempt := 0; ; attempt++ {
			ok, _, err := kv.Acquire(&api.KVPair{Key: e.opts.Key, Value: value, Session: id}, (&api.WriteOptions{}).WithContext(ctx))
			if err != nil {
				return time.Time{}, fmt.Errorf("acquire %s: %w", e.opts.Key, err) // e.g. our session is gone: a new term
			}
			if ok {
				return freeSince, nil
			}
			// Refused: another replica won, or the lock delay runs.
			pair, meta, err := kv.Get(e.opts.Key, (&api.QueryOptions{}).WithContext(ctx))
			if err != nil {
				if ctx.Err() != nil {
					return time.Time{}, ctx.Err()
				}
				index = 0
				break
			}
			if pair != nil && pair.Session != "" {
				freeSince = time.Time{}
				index = nextIndex(0, meta.LastIndex) // block until the holder's session ends
				break
			}
			// Retry when the lock delay ends, counted from when we saw
			// the key free (just after the session ended); then briefly.
			d := time.Until(freeSince.Add(e.opts.LockDelay)) + 10*time.Millisecond
			if d < 25*time.Millisecond {
				d = min(25*time.Millisecond<<min(attempt, 5), 500*time.Millisecond)
			}
			if !wait.Sleep(ctx, d) {
				return time.Time{}, ctx.Err()
			}
		}
	}
}

// monitor ends the term the moment the lock key's session is not ours.
// One blocking query at a time; a Consul it cannot reach is the guard's
// business (the check lapses).
func (e *Elector) monitor(ctx context.Context, t *term, index uint64) {
	kv := e.client.KV()
	backoff := minBackoff
	for ctx.Err() == nil {
		q, cancel := blocking(ctx, index)
		pair, meta, err := kv.Get(e.opts.Key, q)
		cancel()
		if err != nil {
			if ctx.Err() == nil {
				e.log.Debug("watching the leader lock", "error", err, "retry_in", backoff)
				wait.Sleep(ctx, backoff)
				backoff = min(backoff*2, maxBackoff)
			}
			continue
		}
		backoff = minBackoff
		if pair == nil || pair.Session != t.session {
			holder := "nobody"
			if pair != nil && pair.Session != "" {
				holder = "session " + pair.Session
			}
			e.endTerm(t, fmt.Errorf("lock %s now held by %s", e.opts.Key, holder))
			return
		}
		index = nextIndex(index, meta.LastIndex)
	}
}

// guard ends the term when the check has gone unconfirmed for its TTL. It
// is a timer set to the check's deadline that each accepted heartbeat
// pushes back (heartbeat), so it fires only when a deadline passes
// unconfirmed, or when a heartbeat raced it (it then re-arms).
func (e *Elector) guard(ctx context.Context, t *term) {
	var timer *time.Timer
	fire := func() {
		if ctx.Err() != nil {
			return // the term ended already
		}
		e.mu.Lock()
		if d := time.Until(e.lastPass.Add(e.opts.CheckTTL)); d > 0 {
			timer.Reset(d)
			e.mu.Unlock()
			return
		}
		e.mu.Unlock()
		e.endTerm(t, fmt.Errorf("check %s not confirmed passing for %s (Consul out of reach?)", e.checkID, e.opts.CheckTTL))
	}
	e.mu.Lock()
	timer = time.AfterFunc(time.Until(e.lastPass.Add(e.opts.CheckTTL)), fire)
	e.guardT = timer
	e.mu.Unlock()
	<-ctx.Done()
	e.mu.Lock()
	timer.Stop()
	if e.guardT == timer {
		e.guardT = nil
	}
	e.mu.Unlock()
}
