package traffic

import (
	"slices"
	"sync"
)

// subscribers are the functions told when a service's state as served
// changes (Subscribe). Their own mutex: changed is called on a service's
// loop without c.mu held, and a subscriber may read the controller.
type subscribers struct {
	mu   sync.Mutex
	next int
	fns  map[int]func(service string)
}

// Subscribe makes f be told the name of a service each time the state
// this replica serves for it changes: a decision carried out (a switch
// started, a step, a promotion, a rollback, an abort), a rollback's ACKs
// confirmed, a stored state adopted or written back. f runs on the
// service's loop, right after the change, with no lock held: it must not
// block or call into the controller's commands; it only notes or posts
// (Runtime.Post), and reads the state with TrafficState where it runs.
// The returned function ends the subscription.
func (c *Controller) Subscribe(f func(service string)) (cancel func()) {
	s := &c.subs
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.fns == nil {
		s.fns = map[int]func(string){}
	}
	s.next++
	id := s.next
	s.fns[id] = f
	return func() {
		s.mu.Lock()
		defer s.mu.Unlock()
		delete(s.fns, id)
	}
}

// changed tells the subscribers that s's served state changed. Runs on
// s's loop after the change, without c.mu.
func (c *Controller) changed(s *service) {
	c.settle(s) // a reload's change waiting for the switch to end
	c.subs.mu.Lock()
	fns := make([]func(string), 0, len(c.subs.fns))
	ids := make([]int, 0, len(c.subs.fns))
	for id := range c.subs.fns {
		ids = append(ids, id)
	}
	slices.Sort(ids) // in the order they subscribed
	for _, id := range ids {
		fns = append(fns, c.subs.fns[id])
	}
	c.subs.mu.Unlock()
	for _, f := range fns {
		f(s.cfg.Name)
	}
}
