package traffic

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/bgctl/bg/controlplane/model"
)

type actorKey struct{}

// WithActor names who asked for the changes made under ctx (recorded in history).
func WithActor(ctx context.Context, actor string) context.Context {
	return context.WithValue(ctx, actorKey{}, actor)
}

// ActorFrom returns the actor set by WithActor, or "".
func ActorFrom(ctx context.Context) string {
	a, _ := ctx.Value(actorKey{}).(string)
	return a
}

// actor is the requester, or this replica for its own decisions.
func (c *Controller) actor(ctx context.Context) string {
	if a := ActorFrom(ctx); a != "" {
		return a
	}
	return "bg:" + c.replica
}

// SetReplica names this control-plane replica in history and status.
func (c *Controller) SetReplica(id string) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.replica = id
}

// entry describes the change from cur to next for the history.
func (c *Controller) entry(ctx context.Context, cur, next model.Traffic) model.HistoryEntry {
	e := model.HistoryEntry{
		At: c.now(), Actor: c.actor(ctx), Reason: next.Reason,
		FromGreen: cur.GreenPercent, ToGreen: next.GreenPercent, Phase: next.Phase, Stable: next.Stable,
	}
	if r := next.Rollout; r != nil {
		e.Detail = fmt.Sprintf("switch %s %s step %d/%d (%d%%)", r.ID, r.Phase, r.Step+1, len(r.Plan.Steps), r.Applied())
		if r.Gate != "" {
			e.Detail += "; waiting for " + r.Gate + " gates"
		}
		if n := len(r.Verdicts); n > 0 {
			v := r.Verdicts[n-1]
			e.Detail += fmt.Sprintf("; last analysis %s: %s", v.Outcome, v.Reason)
		}
		if gs := newGateResults(cur.Rollout, r); len(gs) > 0 {
			e.Detail += "; " + strings.Join(gs, "; ")
		}
		if r.Reason != "" {
			e.Reason = r.Reason
		}
		if old := cur.Rollout; old == nil || len(r.Overrides) > len(old.Overrides) {
			if n := len(r.Overrides); n > 0 {
				e.Override = r.Overrides[n-1]
			}
		}
	}
	if o := overrideFrom(ctx); o != "" {
		e.Override = o
	}
	if r := next.Roll; r != nil {
		parts := make([]string, 0, len(r.Slots))
		for _, s := range r.Slots {
			parts = append(parts, s.Key+":"+string(s.State))
		}
		e.Detail = fmt.Sprintf("roll %s %s: %s", r.ID, r.Phase, strings.Join(parts, " "))
		if r.Reason != "" {
			e.Reason = r.Reason
		}
	}
	if next.Release != "" && next.SwitchID != cur.SwitchID {
		e.Detail = strings.TrimPrefix(e.Detail+"; ", "; ") + "switch " + next.SwitchID + " of release " + next.Release
	}
	return e
}

// newGateResults are the gate results next records that cur did not.
func newGateResults(cur, next *model.Rollout) []string {
	var out []string
	for _, res := range next.GateResults {
		if cur == nil || cur.ID != next.ID || !slices.Contains(cur.GateResults, res) {
			out = append(out, res.String())
		}
	}
	return out
}

// historian is the part of a store that keeps history.
type historian interface {
	History(ctx context.Context, service string, limit int) ([]model.HistoryEntry, error)
	PruneHistory(ctx context.Context, service string, keep int) (int, error)
}

// History returns a service's recorded changes, oldest first.
func (c *Controller) History(ctx context.Context, service string, limit int) ([]model.HistoryEntry, error) {
	if _, err := c.Status(service); err != nil {
		return nil, err
	}
	h, ok := c.store.(historian)
	if !ok {
		return nil, fmt.Errorf("this state store keeps no history")
	}
	return h.History(ctx, service, limit)
}

// SetHistoryRetention keeps this many history entries per service.
func (c *Controller) SetHistoryRetention(n int) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.retention = n
}

// pruneEvery spaces out pruning: it lists keys, so not on every write.
const pruneEvery = 50

// maybePrune trims history off the hot path, every pruneEvery generations.
func (c *Controller) maybePrune(service string, gen uint64) {
	c.mu.Lock()
	keep := c.retention
	c.mu.Unlock()
	h, ok := c.store.(historian)
	if !ok || keep <= 0 || gen%pruneEvery != 0 {
		return
	}
	go func() {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		if n, err := h.PruneHistory(ctx, service, keep); err != nil {
			c.log.Warn("history prune failed", "service", service, "error", err)
		} else if n > 0 {
			c.log.Info("pruned history", "service", service, "deleted", n, "kept", keep)
		}
	}()
}

func (c *Controller) replicaID() string {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.replica
}
