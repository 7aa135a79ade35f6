package traffic

import "testing"

// The end of an old term, noticed late, must not depose the term the
// elector started after it (Lead's watcher of the old term's context).
func TestOldTermEndDoesNotDeposeNewTerm(t *testing.T) {
	c := &Controller{}
	old := c.setLeading(true)
	c.setLeading(false) // lock lost
	c.setLeading(true)  // re-elected before the old watcher ran
	c.deposeTerm(old)
	if !c.leading {
		t.Fatal("the old term's end deposed the new term")
	}
	cur := c.epoch
	c.deposeTerm(cur)
	if c.leading || c.epoch == cur {
		t.Fatalf("ending the current term: leading %v, epoch %d (was %d)", c.leading, c.epoch, cur)
	}
}
