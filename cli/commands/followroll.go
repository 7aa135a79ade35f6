package commands

import (
	"context"
	"fmt"
	"strings"
	"time"

	"github.com/urfave/cli/v2"

	"github.com/bgctl/bg/cli/client"
	apiv1 "github.com/bgctl/bg/controlplane/api/v1"
	"github.com/bgctl/bg/controlplane/model"
)

// followRoll prints a roll's slot states until it ends.
func followRoll(c *cli.Context, cl *client.Client, svc string, st apiv1.Status, ctx context.Context) error {
	id, last := st.Roll.ID, ""
	text := c.String("output") != "json"
	for {
		if st.Roll == nil || st.Roll.ID != id {
			return cli.Exit(fmt.Sprintf("error: roll %s was replaced by another change", id), ExitError)
		}
		if line := rollLine(st); text && line != last {
			fmt.Fprintln(c.App.Writer, time.Now().Format("15:04:05"), line)
			last = line
		}
		if !st.Roll.Phase.Running() {
			if st.Roll.Phase == model.RollCompleted {
				// Exit 0 only once every proxy of every replica holds it.
				var fs followStatus
				if err := cl.StatusInto(ctx, svc, &fs); err != nil {
					return apiExit(err)
				}
				same := func(s followStatus) bool { return s.Roll != nil && s.Roll.ID == id }
				fs, err := awaitAcked(c, cl, svc, ctx, fs, "roll "+id+" completed", same)
				if !text {
					writeJSON(c.App.Writer, fs)
				}
				return err
			}
			if !text {
				writeJSON(c.App.Writer, st)
			}
			switch st.Roll.Phase {
			case model.RollRolledBack:
				return cli.Exit(fmt.Sprintf("roll %s rolled back: %s", id, st.Roll.Reason), ExitRolledBack)
			case model.RollAborted:
				return cli.Exit(fmt.Sprintf("roll %s aborted: %s", id, st.Roll.Reason), ExitAborted)
			}
			return cli.Exit(fmt.Sprintf("roll %s ended as %s", id, st.Roll.Phase), ExitError)
		}
		select {
		case <-ctx.Done():
			if !text {
				writeJSON(c.App.Writer, st)
			}
			return cli.Exit(fmt.Sprintf("error: roll %s still %s after %s", id, st.Roll.Phase, c.Duration("wait-timeout")), ExitTimedOut)
		case <-time.After(pollEvery):
		}
		next, err := cl.Status(ctx, svc)
		if err != nil {
			if ctx.Err() != nil {
				continue
			}
			return apiExit(err)
		}
		st = next
	}
}

// rollLine is one line of roll progress: each slot's state.
func rollLine(st apiv1.Status) string {
	r := st.Roll
	parts := make([]string, 0, len(r.Slots))
	for _, s := range r.Slots {
		parts = append(parts, s.Key+":"+string(s.State))
	}
	line := fmt.Sprintf("%s %s [%s] %s", st.Service, r.ID, r.Phase, strings.Join(parts, " "))
	if r.Reason != "" {
		line += " (" + r.Reason + ")"
	}
	return line
}
