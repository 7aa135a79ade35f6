package traffic

import (
	"sync/atomic"

	"github.com/bgctl/bg/controlplane/model"
)

// Recorder is told of each change this replica stored while leading: the
// state before and after and its history entry (notifications). It runs
// on the service's loop, after the write and before the push: it must not
// block (queue and return).
type Recorder func(service string, cur, next model.Traffic, e model.HistoryEntry)

type atomicRecorder struct{ p atomic.Pointer[Recorder] }

// SetRecorder sets the recorder (nil: none).
func (c *Controller) SetRecorder(r Recorder) {
	if r == nil {
		c.recorder.p.Store(nil)
		return
	}
	c.recorder.p.Store(&r)
}

// record tells the recorder of a stored change, if this replica leads.
func (c *Controller) record(service string, cur, next model.Traffic, e model.HistoryEntry) {
	r := c.recorder.p.Load()
	if r == nil {
		return
	}
	c.mu.Lock()
	leading := c.leading
	c.mu.Unlock()
	if leading {
		e.Generation = next.Generation
		(*r)(service, cur, next, e)
	}
}
