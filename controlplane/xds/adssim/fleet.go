package adssim

import (
	"context"
	"errors"
	"fmt"
	"sync"

	"google.golang.org/grpc"
)

// FleetOptions configure many identical clients.
type FleetOptions struct {
	Options // template; NodeID gets a "-<i>" suffix, Conn and OnRoute are set by the fleet
	Size    int
	// Conns is how many connections the streams share, round robin; 0 gives
	// every client its own connection, as separate processes would have.
	Conns int
	// Parallel bounds concurrent stream setups (default 64).
	Parallel int
}

// Fleet is a group of clients with a count of who holds which weights, so
// "every client has weights w" is a map lookup, not a scan.
type Fleet struct {
	Clients []*Client
	conns   []*grpc.ClientConn

	mu      sync.Mutex
	holding map[Weights]int
	waiters map[*fleetWaiter]struct{}
}

type fleetWaiter struct {
	w    Weights
	done chan struct{}
}

// StartFleet connects o.Size clients to target. On error it closes what it opened.
func StartFleet(ctx context.Context, target string, o FleetOptions) (*Fleet, error) {
	f := &Fleet{holding: map[Weights]int{{}: o.Size}, waiters: map[*fleetWaiter]struct{}{}}
	for range o.Conns {
		conn, err := NewConn(target)
		if err != nil {
			f.Close()
			return nil, err
		}
		f.conns = append(f.conns, conn)
	}
	par := o.Parallel
	if par <= 0 {
		par = 64
	}
	f.Clients = make([]*Client, o.Size)
	errs := make([]error, o.Size)
	sem := make(chan struct{}, par)
	var wg sync.WaitGroup
	for i := range o.Size {
		opts := o.Options
		opts.NodeID = fmt.Sprintf("%s-%d", o.NodeID, i)
		opts.OnRoute = f.moved
		if len(f.conns) > 0 {
			opts.Conn = f.conns[i%len(f.conns)]
		}
		sem <- struct{}{}
		wg.Go(func() {
			defer func() { <-sem }()
			f.Clients[i], errs[i] = Dial(ctx, target, opts)
		})
	}
	wg.Wait()
	if err := errors.Join(errs...); err != nil {
		f.Close()
		return nil, err
	}
	return f, nil
}

// moved runs on a client's receive goroutine after it ACKed new weights.
func (f *Fleet) moved(prev, next Weights) {
	f.mu.Lock()
	f.holding[prev]--
	f.holding[next]++
	if f.holding[next] == len(f.Clients) {
		for w := range f.waiters {
			if w.w == next {
				close(w.done)
				delete(f.waiters, w)
			}
		}
	}
	f.mu.Unlock()
}

// Wait blocks until every client of the fleet has ACKed weights w, or ctx ends.
func (f *Fleet) Wait(ctx context.Context, w Weights) error {
	f.mu.Lock()
	if f.holding[w] == len(f.Clients) {
		f.mu.Unlock()
		return nil
	}
	fw := &fleetWaiter{w: w, done: make(chan struct{})}
	f.waiters[fw] = struct{}{}
	f.mu.Unlock()
	select {
	case <-fw.done:
		return nil
	case <-ctx.Done():
		f.mu.Lock()
		delete(f.waiters, fw)
		n := f.holding[w]
		f.mu.Unlock()
		return fmt.Errorf("adssim: %d of %d clients hold %+v: %w", n, len(f.Clients), w, ctx.Err())
	}
}

// Close ends every stream and connection.
func (f *Fleet) Close() {
	var wg sync.WaitGroup
	for _, c := range f.Clients {
		if c != nil {
			wg.Go(c.Close)
		}
	}
	wg.Wait()
	for _, conn := range f.conns {
		_ = conn.Close()
	}
}
