package acks

import (
	"context"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/hashicorp/consul/api"

	"github.com/bgctl/bg/controlplane/wait"
)

// PublisherOptions configure a Publisher.
type PublisherOptions struct {
	Prefix   string // KV prefix, e.g. "bg/"
	Replica  string // this replica's id: the last segment of its keys
	Services []string
	// SessionTTL ≥ 10s (Consul's minimum); default DefaultSessionTTL.
	SessionTTL time.Duration
	// Debounce: a change is written this long after it is seen, together
	// with whatever else changed meanwhile; default DefaultDebounce.
	Debounce time.Duration
	// MaxListed caps the lagging proxies listed per report.
	MaxListed int
	// CheckID, if set, is this replica's own TTL check on its Consul agent
	// (the leader election's): the session is bound to it and serfHealth,
	// so a replica that dies loses its reports within the check's TTL, not
	// the session's (≥ 10 s, which Consul may take twice as long to act on).
	CheckID string
	// Rolling, if set, says which services roll host by host: their
	// reports also list the proxies whose client may not keep sessions.
	Rolling func(service string) bool
}

// Publisher writes this replica's reports, one per service, whenever they
// change, under a Consul session of its own. Changed reports are written
// together, up to maxTxnOps per Consul transaction.
type Publisher struct {
	kv       KV
	txn      Txn // nil: one Acquire per report
	sessions Sessions
	src      Source
	o        PublisherOptions
	log      *slog.Logger

	session string
	// written is a digest of the last report written per service in this
	// session, At zeroed: 32 bytes a service instead of the whole report.
	written map[string][sha256.Size]byte
	// renewEvery is how often the session is renewed (SessionTTL/2, as
	// the leader session: Consul ends it no sooner than SessionTTL after
	// the last renewal, and a failed renewal is retried after 1 s).
	renewEvery time.Duration

	// svcMu guards o.Services, which SetServices replaces (a config reload).
	svcMu sync.Mutex
}

// SetServices replaces the services reported on, from the next write on.
func (p *Publisher) SetServices(services []string) {
	p.svcMu.Lock()
	defer p.svcMu.Unlock()
	p.o.Services = slices.Clone(services)
}

func (p *Publisher) services() []string {
	p.svcMu.Lock()
	defer p.svcMu.Unlock()
	return p.o.Services
}

// NewPublisher builds a publisher; Run starts it. txn (client.Txn()) writes
// changed reports in batches; nil writes them one Acquire each.
func NewPublisher(kv KV, txn Txn, sessions Sessions, src Source, o PublisherOptions, log *slog.Logger) *Publisher {
	if o.SessionTTL < 10*time.Second {
		o.SessionTTL = DefaultSessionTTL
	}
	if o.Debounce <= 0 {
		o.Debounce = DefaultDebounce
	}
	return &Publisher{kv: kv, txn: txn, sessions: sessions, src: src, o: o, log: log,
		written: map[string][sha256.Size]byte{}, renewEvery: o.SessionTTL / 2}
}

// errSessionLost: Consul no longer knows our session; its keys are gone.
var errSessionLost = errors.New("acks session lost")

// Run publishes until ctx ends, then destroys its session, which deletes
// its reports. It retries Consul failures with backoff and never gives up.
func (p *Publisher) Run(ctx context.Context) {
	changed, stop := p.src.WatchAcks()
	defer stop()
	defer p.destroy()

	renewEvery := p.renewEvery
	renew := time.NewTimer(renewEvery)
	defer renew.Stop()
	backoff := 100 * time.Millisecond
	var notBefore time.Time // after a failed write: the next attempt
	lastRenew := time.Now()
	// quiet skips one publish: after a renewal, when nothing changed and
	// nothing failed, there is nothing to write (building 1,000 reports to
	// find that out was most of an idle replica's CPU).
	quiet := false
	for ctx.Err() == nil {
		if p.session == "" {
			quiet = false
			if err := p.createSession(ctx); err != nil {
				if ctx.Err() != nil {
					return
				}
				p.log.Warn("cannot create the consul session for ACK reports; retrying", "error", err, "retry_in", backoff)
				wait.Sleep(ctx, backoff)
				backoff = min(backoff*2, 5*time.Second)
				continue
			}
			lastRenew = time.Now()
			renew.Reset(renewEvery)
		}
		var retry <-chan time.Time
		switch err := p.publishUnless(ctx, quiet); {
		case err == nil:
			backoff, notBefore = 100*time.Millisecond, time.Time{}
		case ctx.Err() != nil:
			return
		case errors.Is(err, errSessionLost):
			p.log.Warn("ACK report session lost; creating a new one", "error", err)
			p.session = ""
			continue
		default:
			p.log.Warn("writing ACK reports failed; retrying", "error", err, "retry_in", backoff)
			notBefore = time.Now().Add(backoff)
			retry = time.After(backoff)
			backoff = min(backoff*2, 5*time.Second)
		}
		quiet = false

		select {
		case <-ctx.Done():
			return
		case <-changed:
			// Gather what else changes meanwhile: one write per service.
			if !wait.Sleep(ctx, max(p.o.Debounce, time.Until(notBefore))) {
				return
			}
		case <-retry:
		case <-renew.C:
			ok, err := p.renew(ctx)
			next := time.Second // soon again after a failure
			switch {
			case ok:
				lastRenew, next = time.Now(), renewEvery
				quiet = notBefore.IsZero() // the last publish wrote everything
			case err == nil:
				p.log.Warn("ACK report session expired; creating a new one", "session", p.session)
				p.session = ""
			case time.Since(lastRenew) > p.o.SessionTTL:
				// Consul may have reaped it by now; a fresh one is certain.
				p.log.Warn("cannot renew the ACK report session for longer than its TTL; creating a new one", "error", err)
				p.destroy()
			default:
				p.log.Warn("renewing the ACK report session failed; retrying", "error", err)
			}
			renew.Reset(next)
		}
	}
}

func (p *Publisher) createSession(ctx context.Context) error {
	se := &api.SessionEntry{
		Name:     "bg-acks/" + p.o.Replica,
		TTL:      p.o.SessionTTL.String(),
		Behavior: api.SessionBehaviorDelete,
		// The Go client drops a zero lock delay and Consul then applies
		// 15 s; only this replica ever takes these keys, so keep it tiny.
		LockDelay: time.Millisecond,
	}
	if p.o.CheckID != "" {
		se.NodeChecks = []string{"serfHealth"}
		se.ServiceChecks = []api.ServiceCheck{{ID: p.o.CheckID}}
	}
	id, _, err := p.sessions.Create(se, (&api.WriteOptions{}).WithContext(ctx))
	if err != nil {
		return err
	}
	p.session = id
	p.written = map[string][sha256.Size]byte{}
	p.log.Debug("ACK report session created", "session", id)
	return nil
}

// renew reports ok=false, err=nil when Consul no longer knows the session.
func (p *Publisher) renew(ctx context.Context) (bool, error) {
	if p.session == "" {
		return false, nil
	}
	ctx, cancel := context.WithTimeout(ctx, p.o.SessionTTL/3)
	defer cancel()
	se, _, err := p.sessions.Renew(p.session, (&api.WriteOptions{}).WithContext(ctx))
	if err != nil {
		return false, err
	}
	return se != nil, nil
}

// destroy ends the session (deleting its reports), best effort.
func (p *Publisher) destroy() {
	if p.session == "" {
		return
	}
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	if _, err := p.sessions.Destroy(p.session, (&api.WriteOptions{}).WithContext(ctx)); err != nil {
		p.log.Warn("cannot destroy the ACK report session; it expires on its own", "session", p.session, "error", err)
	}
	p.session = ""
}

// change is one service's report that differs from the last one written.
type change struct {
	svc  string
	key  string
	body []byte // the report as written, At set
	same []byte // the report with At zeroed, what p.written compares
	rep  Report
}

// Consul's limits on one transaction: at most 64 operations (maxTxnOps in
// Consul's txn endpoint), and a request body of at most 512 KiB
// (limits.txn_max_req_len). txnBudget keeps a batch's estimated body well
// under the latter; a single report larger than it goes alone.
const (
	maxTxnOps = 64
	txnBudget = 384 << 10
)

func (p *Publisher) publishUnless(ctx context.Context, quiet bool) error {
	if quiet {
		return nil
	}
	return p.publish(ctx)
}

// publish writes every service's report that differs from the last one
// written, in transactions of up to maxTxnOps reports (one raft write
// each). The first error is returned after trying every service; a lost
// session ends it at once (every other write would fail too).
func (p *Publisher) publish(ctx context.Context) error {
	var todo []change
	for _, svc := range p.services() {
		rep := NewReport(p.o.Replica, svc, withNoSessions(p.src, p.o.Rolling, svc, p.src.RouteAcks(svc, 0)), p.o.MaxListed)
		same, err := json.Marshal(rep)
		if err != nil {
			return err
		}
		if w, ok := p.written[svc]; ok && w == sha256.Sum256(same) {
			continue
		}
		rep.At = time.Now().UTC()
		body, err := json.Marshal(rep)
		if err != nil {
			return err
		}
		todo = append(todo, change{svc: svc, key: Key(p.o.Prefix, svc, p.o.Replica), body: body, same: same, rep: rep})
	}
	if p.txn == nil {
		return p.acquireEach(ctx, todo)
	}
	var first error
	for len(todo) > 0 {
		n, size := 0, 0
		for n < len(todo) && n < maxTxnOps {
			opSize := base64.StdEncoding.EncodedLen(len(todo[n].body)) + len(todo[n].key) + len(p.session) + 128
			if n > 0 && size+opSize > txnBudget {
				break
			}
			n, size = n+1, size+opSize
		}
		err := p.writeBatch(ctx, todo[:n])
		if errors.Is(err, errSessionLost) {
			return err
		}
		first = cmpErr(first, err)
		todo = todo[n:]
	}
	return first
}

// writeBatch acquires a batch of keys in one transaction. Consul rolls a
// transaction back as a whole when one op fails and names every failing op
// (TxnResponse.Errors, by OpIndex); those are reported and the rest is
// written again without them, so one bad key does not hold back the others.
func (p *Publisher) writeBatch(ctx context.Context, batch []change) error {
	var first error
	for len(batch) > 0 {
		ops := make(api.TxnOps, len(batch))
		for i, c := range batch {
			ops[i] = &api.TxnOp{KV: &api.KVTxnOp{Verb: api.KVLock, Key: c.key, Value: c.body, Session: p.session}}
		}
		ok, resp, _, err := p.txn.Txn(ops, (&api.QueryOptions{}).WithContext(ctx))
		switch {
		case err != nil && isInvalidSession(err):
			return fmt.Errorf("%w: %v", errSessionLost, err)
		case err != nil:
			keys := batch[0].key
			if len(batch) > 1 {
				keys = fmt.Sprintf("%d reports (%s, …)", len(batch), batch[0].key)
			}
			return cmpErr(first, fmt.Errorf("write %s: %w", keys, err))
		case ok:
			for _, c := range batch {
				p.landed(c)
			}
			return first
		}

		// Rolled back: find the ops that failed.
		failed := map[int]string{}
		if resp != nil {
			for _, e := range resp.Errors {
				if e == nil || e.OpIndex < 0 || e.OpIndex >= len(batch) {
					continue
				}
				if isInvalidSession(errors.New(e.What)) {
					return fmt.Errorf("%w: write %s: %s", errSessionLost, batch[e.OpIndex].key, e.What)
				}
				if w, dup := failed[e.OpIndex]; dup {
					e.What = w + "; " + e.What
				}
				failed[e.OpIndex] = e.What
			}
		}
		if len(failed) == 0 {
			// Rolled back without saying why: one write per key tells.
			err := p.acquireEach(ctx, batch)
			if errors.Is(err, errSessionLost) {
				return err
			}
			return cmpErr(first, err)
		}
		rest := make([]change, 0, len(batch)-len(failed))
		for i, c := range batch {
			what, bad := failed[i]
			if !bad {
				rest = append(rest, c)
				continue
			}
			if strings.Contains(what, "lock is already held") {
				first = cmpErr(first, p.heldErr(c.key))
			} else {
				first = cmpErr(first, fmt.Errorf("write %s: %s", c.key, what))
			}
		}
		batch = rest
	}
	return first
}

// acquireEach writes changes one Acquire each (no transaction API, or a
// transaction that failed without naming an op).
func (p *Publisher) acquireEach(ctx context.Context, todo []change) error {
	var first error
	for _, c := range todo {
		ok, _, err := p.kv.Acquire(&api.KVPair{Key: c.key, Value: c.body, Session: p.session},
			(&api.WriteOptions{}).WithContext(ctx))
		switch {
		case err != nil && isInvalidSession(err):
			return fmt.Errorf("%w: %v", errSessionLost, err)
		case err != nil:
			first = cmpErr(first, fmt.Errorf("write %s: %w", c.key, err))
			continue
		case !ok:
			// Another session holds the key (a second replica with our id?)
			// or our session is gone; a renew tells which.
			if alive, rerr := p.renew(ctx); rerr == nil && !alive {
				return errSessionLost
			}
			first = cmpErr(first, p.heldErr(c.key))
			continue
		}
		p.landed(c)
	}
	return first
}

func (p *Publisher) heldErr(key string) error {
	return fmt.Errorf("write %s: key held by another session (two replicas named %q?)", key, p.o.Replica)
}

// landed records a report Consul accepted.
func (p *Publisher) landed(c change) {
	p.written[c.svc] = sha256.Sum256(c.same)
	p.log.Debug("ACK report written", "service", c.svc, "generation", c.rep.Generation, "subscribed", c.rep.Subscribed, "acked", c.rep.Acked)
}

func cmpErr(first, err error) error {
	if first != nil {
		return first
	}
	return err
}

// isInvalidSession: Consul answers an Acquire with a session it does not
// know with HTTP 500 "invalid session", and fails such an op in a
// transaction with the same words in its TxnError.
func isInvalidSession(err error) bool {
	return strings.Contains(strings.ToLower(err.Error()), "invalid session")
}
