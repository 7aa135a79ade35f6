package harness

import (
	"fmt"
	"sync"
	"time"

	testpb "google.golang.org/grpc/interop/grpc_testing"
)

// Call is one finished RPC as seen by a Traffic client.
type Call struct {
	Start, End time.Time
	Color      string // answer's Hostname; "" on failure
	ServerID   string // answer's ServerId; "" on failure
	Err        string // "" on success
}

// Counts summarise the calls of a window.
type Counts struct {
	Blue, Green, Failed int
	Other               int            // answered with another colour
	ByServer            map[string]int // successful calls per ServerId
	Errors              []string       // first few distinct errors
}

// OK is the number of successful calls.
func (c Counts) OK() int { return c.Blue + c.Green + c.Other }

// Total is every finished call.
func (c Counts) Total() int { return c.OK() + c.Failed }

func (c Counts) String() string {
	return fmt.Sprintf("blue=%d green=%d other=%d failed=%d byServer=%v errors=%q",
		c.Blue, c.Green, c.Other, c.Failed, c.ByServer, c.Errors)
}

const maxCountErrors = 5

// callLog keeps calls compactly: a long run at thousands of calls per
// second must not balloon, so strings are interned.
type callLog struct {
	mu   sync.Mutex
	recs []callRec
	interner
}

type callRec struct {
	start, end int64 // UnixNano
	color      int32 // interned; -1 none
	server     int32
	err        int32
}

func newCallLog() *callLog {
	return &callLog{}
}

func (l *callLog) add(start, end time.Time, resp *testpb.SimpleResponse, err error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	r := callRec{start: start.UnixNano(), end: end.UnixNano(), color: -1, server: -1, err: -1}
	if err != nil {
		r.err = l.intern(err.Error())
	} else {
		r.color = l.intern(resp.GetHostname())
		r.server = l.intern(resp.GetServerId())
	}
	l.recs = append(l.recs, r)
}

func (l *callLog) mark() Mark {
	l.mu.Lock()
	defer l.mu.Unlock()
	return Mark{at: time.Now(), idx: len(l.recs)}
}

// each visits calls that started at or after m; they all finished after
// m, so scanning from m.idx is enough.
func (l *callLog) each(m Mark, f func(callRec)) {
	from := m.at.UnixNano()
	for _, r := range l.recs[min(m.idx, len(l.recs)):] {
		if r.start >= from {
			f(r)
		}
	}
}

func (l *callLog) since(m Mark) Counts {
	l.mu.Lock()
	defer l.mu.Unlock()
	c := Counts{ByServer: map[string]int{}}
	seen := map[int32]bool{}
	l.each(m, func(r callRec) {
		if r.err >= 0 {
			c.Failed++
			if !seen[r.err] && len(c.Errors) < maxCountErrors {
				seen[r.err] = true
				c.Errors = append(c.Errors, l.str(r.err))
			}
			return
		}
		switch l.str(r.color) {
		case "blue":
			c.Blue++
		case "green":
			c.Green++
		default:
			c.Other++
		}
		c.ByServer[l.str(r.server)]++
	})
	return c
}

func (l *callLog) calls(m Mark) []Call {
	l.mu.Lock()
	defer l.mu.Unlock()
	var out []Call
	l.each(m, func(r callRec) {
		out = append(out, Call{
			Start:    time.Unix(0, r.start),
			End:      time.Unix(0, r.end),
			Color:    l.str(r.color),
			ServerID: l.str(r.server),
			Err:      l.str(r.err),
		})
	})
	return out
}
