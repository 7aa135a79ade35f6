// Package wait pauses loops (retries, rate limits) without outliving their context.
package wait

import (
	"context"
	"time"
)

// Sleep waits d or until ctx ends; it reports whether the full d passed.
// A non-positive d returns at once.
func Sleep(ctx context.Context, d time.Duration) bool {
	if d <= 0 {
		return ctx.Err() == nil
	}
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return false
	case <-t.C:
		return true
	}
}
