package commands

import (
	"context"
	"fmt"
	"time"

	"github.com/urfave/cli/v2"

	"github.com/bgctl/bg/cli/client"
	"github.com/bgctl/bg/controlplane/acks"
	apiv1 "github.com/bgctl/bg/controlplane/api/v1"
)

// followStatus is a service status as --wait reads it. Acks is the
// leader's answer, aggregated over every replica, on whether every proxy
// holds the status's generation: the "acks" field of GET
// /v1/services/{S}. apiv1.Status carries it too; declared here as well
// so --wait reads it the same way from an older control plane, and this
// field shadows the embedded one with the same value. nil: the control
// plane does not report it (older version).
type followStatus struct {
	apiv1.Status
	Acks *acks.Result `json:"acks,omitempty"`
}

// ackState says whether every proxy of every replica holds st's
// generation; line describes where it stands, settled says nothing will
// change without a new push (every pending proxy rejected it).
func ackState(st followStatus) (complete bool, line string, settled bool) {
	a := st.Acks
	if a == nil {
		// An older control plane knows only its own proxies.
		p := st.Proxies
		return p.Acked >= p.Connected, fmt.Sprintf("%d/%d proxies ACKed (answering replica only)", p.Acked, p.Connected), false
	}
	if a.Generation < st.Generation {
		return false, fmt.Sprintf("ACKs known for generation %d, status is at %d", a.Generation, st.Generation), false
	}
	settled = !a.Complete && a.Unconfirmed == "" && a.Unlisted == 0 && len(a.Pending) > 0
	for _, p := range a.Pending {
		settled = settled && p.LastNACK != nil && p.LastNACK.Generation >= a.Generation
	}
	return a.Complete, a.Summary(), settled
}

// awaitAcked polls the status until every proxy of every replica holds its
// generation and returns the last status. It gives up with exit 4
// (ExitNotAcked) after --timeout, or at once when every pending proxy
// rejected the change; done names what ended ("switch sw-1 promoted").
// same reports whether a status still shows the change being followed.
func awaitAcked(c *cli.Context, cl *client.Client, svc string, ctx context.Context, st followStatus, done string, same func(followStatus) bool) (followStatus, error) {
	text := c.String("output") != "json"
	timeout := c.Duration("timeout")
	if timeout <= 0 {
		timeout = 30 * time.Second
	}
	actx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	last := ""
	for {
		if !same(st) {
			return st, cli.Exit(fmt.Sprintf("error: %s, then was replaced by another change before every proxy ACKed it", done), ExitError)
		}
		complete, line, settled := ackState(st)
		if complete {
			return st, nil
		}
		if text && line != last {
			fmt.Fprintln(c.App.Writer, time.Now().Format("15:04:05"), st.Service, done+"; waiting for every proxy:", line)
			last = line
		}
		if settled {
			return st, cli.Exit(fmt.Sprintf("error: %s, but proxies rejected generation %d: %s", done, st.Generation, line), ExitNotAcked)
		}
		select {
		case <-actx.Done():
			return st, cli.Exit(fmt.Sprintf("error: %s, but not every proxy ACKed generation %d within %s: %s", done, st.Generation, timeout, line), ExitNotAcked)
		case <-time.After(pollEvery):
		}
		var next followStatus
		if err := cl.StatusInto(actx, svc, &next); err != nil {
			if actx.Err() != nil {
				continue // reported as not ACKed above
			}
			return st, apiExit(err)
		}
		st = next
	}
}
