package admin

import (
	"sync"
	"time"
)

// failLimiter is a token bucket of failed authentications per client IP:
// each failure takes a token, Burst at most, refilled at Burst per Per.
// A client with no token left is answered 429 without its credentials
// being checked. Memory is bounded: at most maxClients buckets; when full,
// buckets that have refilled are dropped, and if none has, new clients
// share one overflow bucket.
type failLimiter struct {
	mu         sync.Mutex
	burst      float64
	per        time.Duration
	maxClients int
	now        func() time.Time
	buckets    map[string]*bucket
}

type bucket struct {
	tokens float64
	at     time.Time
}

const (
	authFailBurst  = 10
	authFailPer    = time.Minute
	authMaxClients = 4096
	overflowClient = "*overflow*"
)

func newFailLimiter() *failLimiter {
	return &failLimiter{burst: authFailBurst, per: authFailPer, maxClients: authMaxClients, now: time.Now, buckets: map[string]*bucket{}}
}

// refill brings b up to now; the caller holds mu.
func (l *failLimiter) refill(b *bucket, now time.Time) {
	if el := now.Sub(b.at); el > 0 {
		b.tokens = min(l.burst, b.tokens+l.burst*el.Seconds()/l.per.Seconds())
	}
	b.at = now
}

// Limited reports whether ip has used up its failures, and if so how long
// until it may try again.
func (l *failLimiter) Limited(ip string) (bool, time.Duration) {
	l.mu.Lock()
	defer l.mu.Unlock()
	b, ok := l.buckets[ip]
	if !ok {
		if b, ok = l.buckets[overflowClient]; !ok || len(l.buckets) < l.maxClients {
			return false, 0
		}
	}
	now := l.now()
	l.refill(b, now)
	if b.tokens >= 1 {
		return false, 0
	}
	wait := time.Duration((1 - b.tokens) * float64(l.per) / l.burst)
	return true, wait
}

// Fail records a failed authentication from ip.
func (l *failLimiter) Fail(ip string) {
	l.mu.Lock()
	defer l.mu.Unlock()
	now := l.now()
	b, ok := l.buckets[ip]
	if !ok {
		if len(l.buckets) >= l.maxClients {
			l.sweep(now)
		}
		if len(l.buckets) >= l.maxClients {
			ip = overflowClient
			b = l.buckets[ip]
		}
		if b == nil {
			b = &bucket{tokens: l.burst, at: now}
			l.buckets[ip] = b
		}
	}
	l.refill(b, now)
	b.tokens = max(0, b.tokens-1)
}

// sweep drops the buckets that are full again; the caller holds mu.
func (l *failLimiter) sweep(now time.Time) {
	for ip, b := range l.buckets {
		l.refill(b, now)
		if b.tokens >= l.burst && ip != overflowClient {
			delete(l.buckets, ip)
		}
	}
}

// Len is the number of buckets held.
func (l *failLimiter) Len() int {
	l.mu.Lock()
	defer l.mu.Unlock()
	return len(l.buckets)
}
