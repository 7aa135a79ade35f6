package harness

import (
	"context"
	"fmt"
	"sync"
	"time"

	"google.golang.org/grpc"
	testpb "google.golang.org/grpc/interop/grpc_testing"
	"google.golang.org/grpc/metadata"
)

// DefaultSessionHeader is the request metadata key naming a session, which
// the route's hash_policy hashes so ring_hash keeps a session on one host.
const DefaultSessionHeader = "x-session"

// SessionOptions configure a sticky-session load generator.
type SessionOptions struct {
	XDSAddr string // management server, host:port
	NodeID  string // xDS node id
	Service string // dialled as xds:///Service
	Header  string // session metadata key; default DefaultSessionHeader

	Sessions int // session ids "s-000".."s-NNN"; default 1
	Workers  int // concurrent callers, each owning a share of the ids; default 1
}

// Sessions is a proxyless grpc-go xDS client (one ClientConn) that calls
// UnaryCall for a fixed set of sessions, each call carrying its session id
// in the Header metadata, and records which server answered each call.
//
// A session belongs to exactly one worker, so its calls are sequential and
// History can tell the order of the servers it visited.
type Sessions struct {
	opts   SessionOptions
	ids    []string
	conn   *grpc.ClientConn
	cancel context.CancelFunc
	wg     sync.WaitGroup
	once   sync.Once
	log    *sessionLog
}

// Visit is one stay of a session on a server: At is the start of the first
// call of that stay.
type Visit struct {
	Server string
	At     time.Time
}

// SessionCounts summarise the calls of a window.
type SessionCounts struct {
	ByServer         map[string]int // successful calls per ServerId
	SessionsByServer map[string]int // distinct sessions answered per ServerId
	OKCalls, Failed  int
	Errors           []string // first few distinct errors
}

// OK is the number of successful calls.
func (c SessionCounts) OK() int { return c.OKCalls }

// Total is every finished call.
func (c SessionCounts) Total() int { return c.OKCalls + c.Failed }

func (c SessionCounts) String() string {
	return fmt.Sprintf("ok=%d failed=%d byServer=%v sessionsByServer=%v errors=%q",
		c.OKCalls, c.Failed, c.ByServer, c.SessionsByServer, c.Errors)
}

// SessionID is the id of session i as StartSessions names it.
func SessionID(i int) string { return fmt.Sprintf("s-%03d", i) }

// StartSessions starts the callers; they run until Stop or test end.
func StartSessions(t TB, o SessionOptions) *Sessions {
	t.Helper()
	if o.Header == "" {
		o.Header = DefaultSessionHeader
	}
	if o.Sessions <= 0 {
		o.Sessions = 1
	}
	// A worker without sessions would spin doing nothing.
	o.Workers = min(max(o.Workers, 1), o.Sessions)
	conn, err := DialXDS(o.XDSAddr, o.NodeID, o.Service)
	if err != nil {
		t.Fatalf("harness: sessions %s: %v", o.NodeID, err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	s := &Sessions{opts: o, conn: conn, cancel: cancel}
	for i := range o.Sessions {
		s.ids = append(s.ids, SessionID(i))
	}
	s.log = newSessionLog(s.ids)
	client := testpb.NewTestServiceClient(conn)
	for w := range o.Workers {
		var share []int32
		for i := w; i < len(s.ids); i += o.Workers {
			share = append(share, int32(i))
		}
		s.wg.Add(1)
		go s.work(ctx, client, share)
	}
	t.Cleanup(s.Stop)
	return s
}

func (s *Sessions) work(ctx context.Context, client testpb.TestServiceClient, share []int32) {
	defer s.wg.Done()
	fails := 0
	for ctx.Err() == nil {
		for _, i := range share {
			start := time.Now()
			// No wait-for-ready: a session with no usable host must show up
			// as failures, not as silent queueing.
			cctx, cancel := context.WithTimeout(metadata.AppendToOutgoingContext(ctx, s.opts.Header, s.ids[i]), callTimeout)
			resp, err := client.UnaryCall(cctx, &testpb.SimpleRequest{})
			cancel()
			if ctx.Err() != nil {
				return // cancelled by Stop: not a result
			}
			s.log.add(i, start, time.Now(), resp.GetServerId(), err)
			if err == nil {
				fails = 0
			} else if fails++; fails >= failureRun {
				time.Sleep(failurePause)
			}
		}
	}
}

// Stop ends the callers and closes the connection (and its ADS stream).
func (s *Sessions) Stop() {
	s.once.Do(func() {
		s.cancel()
		s.wg.Wait()
		s.conn.Close()
	})
}

// Conn is the underlying ClientConn.
func (s *Sessions) Conn() *grpc.ClientConn { return s.conn }

// IDs are the session ids, in order.
func (s *Sessions) IDs() []string { return append([]string(nil), s.ids...) }

// Mark returns now; the queries below only see calls started at or after it.
func (s *Sessions) Mark() Mark { return s.log.mark() }

// Since summarises calls started at or after m that have finished.
func (s *Sessions) Since(m Mark) SessionCounts { return s.log.since(m) }

// History gives, per session, the servers it was answered by since m, as
// runs of consecutive calls: a session that stuck to one host has one
// Visit; one moved once has two. Failed calls neither end nor start a run.
func (s *Sessions) History(m Mark) map[string][]Visit { return s.log.history(m) }

// Failed counts failed calls since m and returns the first few distinct
// errors, each prefixed with the session of its first occurrence.
func (s *Sessions) Failed(m Mark) (n int, errs []string) { return s.log.failed(m) }

// WaitFor polls windows of trafficWindow and returns the first window's
// counts that satisfy ok; it fails the test after timeout.
func (s *Sessions) WaitFor(t TB, timeout time.Duration, ok func(SessionCounts) bool) SessionCounts {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for {
		m := s.Mark()
		time.Sleep(trafficWindow)
		last := s.Since(m)
		if ok(last) {
			return last
		}
		if time.Now().After(deadline) {
			t.Fatalf("harness: sessions %s: condition not met within %v; last window %v", s.opts.NodeID, timeout, last)
			return last
		}
	}
}

// sessionLog is callLog's compact layout plus the session: records hold
// interned indexes, so long runs stay small. Sessions index ids, not the
// string table, so the table's cap can never merge two sessions.
type sessionLog struct {
	ids  []string
	mu   sync.Mutex
	recs []sessionRec
	interner
}

type sessionRec struct {
	start, end int64 // UnixNano
	session    int32 // index in ids
	server     int32 // -1 on failure
	err        int32 // -1 on success
}

func newSessionLog(ids []string) *sessionLog {
	return &sessionLog{ids: ids}
}

func (l *sessionLog) add(session int32, start, end time.Time, server string, err error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	r := sessionRec{start: start.UnixNano(), end: end.UnixNano(), session: session, server: -1, err: -1}
	if err != nil {
		r.err = l.intern(err.Error())
	} else {
		// An answer without ServerId still counts as served.
		r.server = l.intern(server)
		if r.server < 0 {
			r.server = l.intern("(no server id)")
		}
	}
	l.recs = append(l.recs, r)
}

func (l *sessionLog) mark() Mark {
	l.mu.Lock()
	defer l.mu.Unlock()
	return Mark{at: time.Now(), idx: len(l.recs)}
}

// each must be called with mu held; see callLog.each for why scanning
// from m.idx is enough.
func (l *sessionLog) each(m Mark, f func(sessionRec)) {
	from := m.at.UnixNano()
	for _, r := range l.recs[min(m.idx, len(l.recs)):] {
		if r.start >= from {
			f(r)
		}
	}
}

func (l *sessionLog) since(m Mark) SessionCounts {
	l.mu.Lock()
	defer l.mu.Unlock()
	c := SessionCounts{ByServer: map[string]int{}, SessionsByServer: map[string]int{}}
	seenErr := map[int32]bool{}
	type pair struct{ server, session int32 }
	seen := map[pair]bool{}
	l.each(m, func(r sessionRec) {
		if r.err >= 0 {
			c.Failed++
			if !seenErr[r.err] && len(c.Errors) < maxCountErrors {
				seenErr[r.err] = true
				c.Errors = append(c.Errors, l.str(r.err))
			}
			return
		}
		c.OKCalls++
		srv := l.str(r.server)
		c.ByServer[srv]++
		if p := (pair{r.server, r.session}); !seen[p] {
			seen[p] = true
			c.SessionsByServer[srv]++
		}
	})
	return c
}

// history relies on records of one session being in start order, which
// holds because each session is called by one worker, one call at a time.
func (l *sessionLog) history(m Mark) map[string][]Visit {
	l.mu.Lock()
	defer l.mu.Unlock()
	out := map[string][]Visit{}
	l.each(m, func(r sessionRec) {
		if r.server < 0 {
			return
		}
		id, srv := l.ids[r.session], l.str(r.server)
		v := out[id]
		if len(v) > 0 && v[len(v)-1].Server == srv {
			return
		}
		out[id] = append(v, Visit{Server: srv, At: time.Unix(0, r.start)})
	})
	return out
}

func (l *sessionLog) failed(m Mark) (n int, errs []string) {
	l.mu.Lock()
	defer l.mu.Unlock()
	seen := map[int32]bool{}
	l.each(m, func(r sessionRec) {
		if r.err < 0 {
			return
		}
		n++
		if !seen[r.err] && len(errs) < maxCountErrors {
			seen[r.err] = true
			errs = append(errs, l.ids[r.session]+": "+l.str(r.err))
		}
	})
	return n, errs
}
