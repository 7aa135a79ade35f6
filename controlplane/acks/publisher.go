package acks

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"strings"
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
}

// Publisher writes this replica's reports, one per service, whenever they
// change, under a Consul session of its own.
type Publisher struct {
	kv       KV
	sessions Sessions
	src      Source
	o        PublisherOptions
	log      *slog.Logger

	session string
	written map[string][]byte // last report written per service in this session, At zeroed
}

// NewPublisher builds a publisher; Run starts it.
func NewPublisher(kv KV, sessions Sessions, src Source, o PublisherOptions, log *slog.Logger) *Publisher {
	if o.SessionTTL < 10*time.Second {
		o.SessionTTL = DefaultSessionTTL
	}
	if o.Debounce <= 0 {
		o.Debounce = DefaultDebounce
	}
	return &Publisher{kv: kv, sessions: sessions, src: src, o: o, log: log, written: map[string][]byte{}}
}

// errSessionLost: Consul no longer knows our session; its keys are gone.
var errSessionLost = errors.New("acks session lost")

// Run publishes until ctx ends, then destroys its session, which deletes
// its reports. It retries Consul failures with backoff and never gives up.
func (p *Publisher) Run(ctx context.Context) {
	changed, stop := p.src.WatchAcks()
	defer stop()
	defer p.destroy()

	renewEvery := p.o.SessionTTL / 3
	renew := time.NewTimer(renewEvery)
	defer renew.Stop()
	backoff := 100 * time.Millisecond
	var notBefore time.Time // after a failed write: the next attempt
	lastRenew := time.Now()
	for ctx.Err() == nil {
		if p.session == "" {
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
		switch err := p.publish(ctx); {
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
	id, _, err := p.sessions.Create(&api.SessionEntry{
		Name:     "bg-acks/" + p.o.Replica,
		TTL:      p.o.SessionTTL.String(),
		Behavior: api.SessionBehaviorDelete,
		// The Go client drops a zero lock delay and Consul then applies
		// 15 s; only this replica ever takes these keys, so keep it tiny.
		LockDelay: time.Millisecond,
	}, (&api.WriteOptions{}).WithContext(ctx))
	if err != nil {
		return err
	}
	p.session = id
	p.written = map[string][]byte{}
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

// publish writes every service's report that differs from the last one
// written. The first error is returned after trying every service.
func (p *Publisher) publish(ctx context.Context) error {
	var first error
	for _, svc := range p.o.Services {
		rep := NewReport(p.o.Replica, svc, p.src.RouteAcks(svc, 0), p.o.MaxListed)
		same, err := json.Marshal(rep)
		if err != nil {
			return err
		}
		if bytes.Equal(same, p.written[svc]) {
			continue
		}
		rep.At = time.Now().UTC()
		body, err := json.Marshal(rep)
		if err != nil {
			return err
		}
		ok, _, err := p.kv.Acquire(&api.KVPair{Key: Key(p.o.Prefix, svc, p.o.Replica), Value: body, Session: p.session},
			(&api.WriteOptions{}).WithContext(ctx))
		switch {
		case err != nil && isInvalidSession(err):
			return fmt.Errorf("%w: %v", errSessionLost, err)
		case err != nil:
			first = cmpErr(first, fmt.Errorf("write %s: %w", Key(p.o.Prefix, svc, p.o.Replica), err))
			continue
		case !ok:
			// Another session holds the key (a second replica with our id?)
			// or our session is gone; a renew tells which.
			if alive, rerr := p.renew(ctx); rerr == nil && !alive {
				return errSessionLost
			}
			first = cmpErr(first, fmt.Errorf("write %s: key held by another session (two replicas named %q?)", Key(p.o.Prefix, svc, p.o.Replica), p.o.Replica))
			continue
		}
		p.written[svc] = same
		p.log.Debug("ACK report written", "service", svc, "generation", rep.Generation, "subscribed", rep.Subscribed, "acked", rep.Acked)
	}
	return first
}

func cmpErr(first, err error) error {
	if first != nil {
		return first
	}
	return err
}

// isInvalidSession: Consul answers an Acquire with a session it does not
// know with HTTP 500 "invalid session".
func isInvalidSession(err error) bool {
	return strings.Contains(strings.ToLower(err.Error()), "invalid session")
}
