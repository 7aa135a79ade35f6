package adssim

import (
	"context"
	"errors"
	"fmt"
	"sync"

	"google.golang.org/grpc"
)

// FleetOptions configure many similar clients.
type FleetOptions struct {
	// Options is the template; NodeID gets a "-<i>" suffix, and Conn,
	// OnRoute, OnServiceRoute and OnReady are set by the fleet.
	Options
	Size int
	// ServicesOf, when set, gives client i the services it follows
	// (Options.Services); otherwise every client follows the template's.
	ServicesOf func(i int) []string
	// Conns is how many connections the streams share, round robin; 0 gives
	// every client its own connection, as separate processes would have.
	Conns int
	// Parallel bounds concurrent stream setups (default 64).
	Parallel int
}

// Fleet is a group of clients with a count of who holds which weights for
// which service, so "every subscriber has weights w" is a map lookup, not
// a scan.
type Fleet struct {
	Clients []*Client
	conns   []*grpc.ClientConn

	mu      sync.Mutex
	subs    map[string]int // clients following each service
	holding map[held]int   // clients holding weights for a service
	ready   int            // clients whose every chain is complete
	waiters map[*fleetWaiter]struct{}
}

type held struct {
	service string
	w       Weights
}

// fleetWaiter waits for every subscriber of service ("" = of every
// service) to hold w, or (ready) for every client to be ready.
type fleetWaiter struct {
	service string
	w       Weights
	ready   bool
	done    chan struct{}
}

// StartFleet connects o.Size clients to target. On error it closes what it opened.
func StartFleet(ctx context.Context, target string, o FleetOptions) (*Fleet, error) {
	f := &Fleet{subs: map[string]int{}, holding: map[held]int{}, waiters: map[*fleetWaiter]struct{}{}}
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
	opts := make([]Options, o.Size)
	for i := range o.Size {
		opts[i] = o.Options
		opts[i].NodeID = fmt.Sprintf("%s-%d", o.NodeID, i)
		opts[i].OnRoute = nil
		opts[i].OnServiceRoute = f.moved
		opts[i].OnReady = f.readied
		if o.ServicesOf != nil {
			opts[i].Services = o.ServicesOf(i)
		}
		if len(f.conns) > 0 {
			opts[i].Conn = f.conns[i%len(f.conns)]
		}
		services := opts[i].Services
		if len(services) == 0 {
			services = []string{opts[i].Service}
		}
		seen := map[string]bool{}
		for _, s := range services {
			if !seen[s] {
				seen[s] = true
				f.subs[s]++
				f.holding[held{s, Weights{}}]++
			}
		}
	}
	f.Clients = make([]*Client, o.Size)
	errs := make([]error, o.Size)
	sem := make(chan struct{}, par)
	var wg sync.WaitGroup
	for i := range o.Size {
		sem <- struct{}{}
		wg.Go(func() {
			defer func() { <-sem }()
			f.Clients[i], errs[i] = Dial(ctx, target, opts[i])
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
func (f *Fleet) moved(service string, prev, next Weights) {
	f.mu.Lock()
	f.holding[held{service, prev}]--
	f.holding[held{service, next}]++
	f.wake()
	f.mu.Unlock()
}

// readied runs once per client, when its every chain is first complete.
func (f *Fleet) readied() {
	f.mu.Lock()
	f.ready++
	f.wake()
	f.mu.Unlock()
}

// wake releases the waiters whose condition holds; f.mu is held.
func (f *Fleet) wake() {
	for w := range f.waiters {
		if f.holds(w) {
			close(w.done)
			delete(f.waiters, w)
		}
	}
}

// holds reports whether w's condition is met; f.mu is held.
func (f *Fleet) holds(w *fleetWaiter) bool {
	switch {
	case w.ready:
		return f.ready == len(f.Clients)
	case w.service != "":
		return f.holding[held{w.service, w.w}] == f.subs[w.service]
	}
	for s, n := range f.subs {
		if f.holding[held{s, w.w}] != n {
			return false
		}
	}
	return true
}

// wait blocks until w's condition holds or ctx ends.
func (f *Fleet) wait(ctx context.Context, w *fleetWaiter) error {
	f.mu.Lock()
	if f.holds(w) {
		f.mu.Unlock()
		return nil
	}
	w.done = make(chan struct{})
	f.waiters[w] = struct{}{}
	f.mu.Unlock()
	select {
	case <-w.done:
		return nil
	case <-ctx.Done():
		f.mu.Lock()
		defer f.mu.Unlock()
		delete(f.waiters, w)
		switch {
		case w.ready:
			return fmt.Errorf("adssim: %d of %d clients have every chain: %w", f.ready, len(f.Clients), ctx.Err())
		case w.service != "":
			return fmt.Errorf("adssim: %d of %d subscribers of %s hold %+v: %w",
				f.holding[held{w.service, w.w}], f.subs[w.service], w.service, w.w, ctx.Err())
		}
		return fmt.Errorf("adssim: not every client holds %+v: %w", w.w, ctx.Err())
	}
}

// Wait blocks until every client of the fleet has ACKed weights w for
// every service it follows, or ctx ends.
func (f *Fleet) Wait(ctx context.Context, w Weights) error {
	return f.wait(ctx, &fleetWaiter{w: w})
}

// WaitService blocks until every client following service has ACKed
// weights w for it, or ctx ends.
func (f *Fleet) WaitService(ctx context.Context, service string, w Weights) error {
	return f.wait(ctx, &fleetWaiter{service: service, w: w})
}

// WaitReady blocks until every client holds the full chain of every
// service it follows (State.Ready), or ctx ends.
func (f *Fleet) WaitReady(ctx context.Context) error {
	return f.wait(ctx, &fleetWaiter{ready: true})
}

// Subscribers counts the clients following service.
func (f *Fleet) Subscribers(service string) int {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.subs[service]
}

// Holding counts the clients following service that hold weights w for it.
func (f *Fleet) Holding(service string, w Weights) int {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.holding[held{service, w}]
}

// Ready counts the clients whose every chain is complete.
func (f *Fleet) Ready() int {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.ready
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
