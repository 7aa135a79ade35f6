package commands

import (
	"context"
	"fmt"
	"io"
	"strconv"
	"strings"
	"time"

	"github.com/urfave/cli/v2"

	"github.com/bgctl/bg/cli/client"
	apiv1 "github.com/bgctl/bg/controlplane/api/v1"
	"github.com/bgctl/bg/controlplane/model"
)

// pollEvery is how often --wait reads the status.
const pollEvery = 250 * time.Millisecond

// follow prints a running switch's progress until it ends, and maps the
// end to an exit code. A promoted switch exits 0 only once every proxy of
// every replica holds the promoted state (see awaitAcked).
func follow(c *cli.Context, cl *client.Client, svc string) error {
	ctx, cancel := context.WithTimeout(c.Context, c.Duration("wait-timeout"))
	defer cancel()
	var st followStatus
	if err := cl.StatusInto(ctx, svc, &st); err != nil {
		return apiExit(err)
	}
	if st.Roll != nil && st.Roll.Phase.Running() {
		return followRoll(c, cl, svc, st.Status, ctx)
	}
	if st.Switch == nil {
		return cli.Exit("error: no progressive switch to follow", ExitError)
	}
	id, last := st.Switch.ID, ""
	text := c.String("output") != "json"
	for {
		if st.Switch == nil || st.Switch.ID != id {
			return cli.Exit(fmt.Sprintf("error: switch %s was replaced by another change", id), ExitError)
		}
		if line := progressLine(st.Status); text && line != last {
			fmt.Fprintln(c.App.Writer, time.Now().Format("15:04:05"), line)
			last = line
		}
		if !st.Switch.Phase.Running() {
			if st.Switch.Phase == model.RolloutPromoted {
				same := func(s followStatus) bool { return s.Switch != nil && s.Switch.ID == id }
				final, err := awaitAcked(c, cl, svc, ctx, st, "switch "+id+" promoted", same)
				if err != nil {
					if !text {
						writeJSON(c.App.Writer, final)
					}
					return err
				}
				st = final
			}
			return finish(c, st)
		}
		select {
		case <-ctx.Done():
			if !text {
				writeJSON(c.App.Writer, st)
			}
			return cli.Exit(fmt.Sprintf("error: switch %s still %s after %s", id, st.Switch.Phase, c.Duration("wait-timeout")), ExitTimedOut)
		case <-time.After(pollEvery):
		}
		var next followStatus
		if err := cl.StatusInto(ctx, svc, &next); err != nil {
			if ctx.Err() != nil {
				continue // reported as a timeout above
			}
			return apiExit(err)
		}
		st = next
	}
}

// finish reports how a switch ended.
func finish(c *cli.Context, st followStatus) error {
	r := st.Switch
	if c.String("output") == "json" {
		writeJSON(c.App.Writer, st)
	}
	switch r.Phase {
	case model.RolloutPromoted:
		return nil
	case model.RolloutRolledBack:
		return cli.Exit(fmt.Sprintf("switch %s rolled back: %s", r.ID, r.Reason), ExitRolledBack)
	case model.RolloutAborted:
		return cli.Exit(fmt.Sprintf("switch %s aborted: %s", r.ID, r.Reason), ExitAborted)
	}
	return cli.Exit(fmt.Sprintf("switch %s ended as %s", r.ID, r.Phase), ExitError)
}

// progressLine is one line of --wait output.
func progressLine(st apiv1.Status) string {
	r := st.Switch
	b := &strings.Builder{}
	fmt.Fprintf(b, "%s %s step %d/%d: blue %d%% green %d%% [%s]", st.Service, r.ID, r.Step+1, len(r.Plan.Steps), st.Weights.Blue, st.Weights.Green, r.Phase)
	if n := len(r.Verdicts); n > 0 {
		v := r.Verdicts[n-1]
		fmt.Fprintf(b, " %s: %s", v.Outcome, v.Reason)
	}
	if r.Reason != "" && !r.Phase.Running() || strings.HasPrefix(r.Reason, "holding") {
		fmt.Fprintf(b, " (%s)", r.Reason)
	}
	if r.Phase.Running() {
		b.WriteString(budgetNote("metrics unavailable", r.UnavailableSince, r.Plan.UnavailableBudget.D(), r.Plan.OnUnavailable, time.Now()))
		b.WriteString(budgetNote("insufficient data", r.InsufficientSince, r.Plan.InsufficientBudget.D(), r.Plan.OnInsufficient, time.Now()))
	}
	if ev := r.Evidence; ev != nil {
		fmt.Fprintf(b, " [evidence: errors e=%s", eValue(ev.ErrorsE))
		if ev.Latency != nil {
			fmt.Fprintf(b, ", latency e=%s, p%g candidate %s baseline %s", eValue(ev.LatencyE), 100*r.Plan.Latency.Quantile,
				seconds(ev.CandidateQuantile), seconds(ev.BaselineQuantile))
		}
		fmt.Fprintf(b, "; fails at %s]", eValue(1/(1-r.Plan.Confidence)))
	}
	return b.String()
}

// budgetNote says which budget runs and how much of it is left.
func budgetNote(what string, since time.Time, budget time.Duration, policy string, now time.Time) string {
	if since.IsZero() {
		return ""
	}
	left := budget - now.Sub(since)
	if left <= 0 {
		return fmt.Sprintf(" [%s budget %s spent: %s]", what, budget, policy)
	}
	return fmt.Sprintf(" [%s budget: %s of %s left, then %s]", what, left.Round(time.Second), budget, policy)
}

func eValue(e float64) string {
	if e >= 1e6 {
		return fmt.Sprintf("%.1e", e)
	}
	return strconv.FormatFloat(e, 'g', 3, 64)
}

func seconds(s float64) string {
	return time.Duration(s * float64(time.Second)).Round(time.Microsecond).String()
}

func parseSteps(s string) ([]int, error) {
	if s == "" {
		return nil, nil
	}
	var out []int
	for _, f := range strings.Split(s, ",") {
		n, err := strconv.Atoi(strings.TrimSpace(f))
		if err != nil {
			return nil, fmt.Errorf("%q is not a list of percentages like 1,5,25,50,100", s)
		}
		out = append(out, n)
	}
	return out, nil
}

func runDryRun(c *cli.Context, cl *client.Client, svc string, req apiv1.ChangeRequest) error {
	rep, err := cl.DryRun(c.Context, svc, req)
	if err != nil {
		return apiExit(err)
	}
	if c.String("output") == "json" {
		writeJSON(c.App.Writer, rep)
		return nil
	}
	printDryRun(c.App.Writer, rep)
	return nil
}

func printDryRun(w io.Writer, rep apiv1.DryRunReport) {
	p := rep.Plan
	fmt.Fprintf(w, "switch %s from %s to %s\n", rep.Service, rep.From, rep.To)
	fmt.Fprintf(w, "  steps %v, bake %s, interval %s\n", p.Steps, p.Bake.D(), p.Interval.D())
	fmt.Fprintf(w, "  judge: fail when there is evidence (at %.3f over the whole switch) that the candidate's error ratio exceeds the baseline's ×%.2f; at least %.0f requests per fleet at each step\n", p.Confidence, 1+p.Margin, p.MinRequests)
	if l := p.Latency; l != nil {
		fmt.Fprintf(w, "  latency: fail when the candidate's p%g is worse than the baseline's by more than %.0f%% and %s\n", 100*l.Quantile, 100*l.Relative, l.Absolute.D())
	}
	fmt.Fprintf(w, "  metrics unavailable for %s → %s; insufficient data for %s → %s; rollback %s\n", p.UnavailableBudget.D(), p.OnUnavailable, p.InsufficientBudget.D(), p.OnInsufficient, p.Rollback)
	for _, fs := range []apiv1.FleetSample{rep.Candidate, rep.Baseline} {
		switch {
		case fs.Error != "":
			fmt.Fprintf(w, "  %-5s query failed: %s\n", fs.Color, fs.Error)
			continue
		case fs.Sample == nil:
			fmt.Fprintf(w, "  %-5s no sample\n", fs.Color)
			continue
		}
		fmt.Fprintf(w, "  %-5s %.0f requests, %.0f errors counted so far (%d series); a switch counts from its own start\n", fs.Color, fs.Sample.Requests, fs.Sample.Errors, fs.Series)
	}
	if rep.Verdict != nil {
		fmt.Fprintf(w, "  verdict now: %s (%s)\n", rep.Verdict.Outcome, rep.Verdict.Reason)
	}
}

// commandOn builds pause, resume and promote.
func commandOn(name, usage, desc string, force string, send func(*client.Client, context.Context, string, apiv1.ChangeRequest) (apiv1.Result, error)) *cli.Command {
	flags := []cli.Flag{
		&cli.DurationFlag{Name: "timeout", Value: 30 * time.Second, Usage: "how long to wait for every proxy to ACK"},
		&cli.StringFlag{Name: "reason", Usage: "recorded with the change"},
		outputFlag(),
	}
	if force != "" {
		flags = append(flags, &cli.BoolFlag{Name: "force", Usage: force})
	}
	return &cli.Command{
		Name: name, Usage: usage, ArgsUsage: "SERVICE", Description: desc, Flags: flags,
		Action: func(c *cli.Context) error {
			svc, err := serviceArg(c)
			if err != nil {
				return err
			}
			if err := checkOutput(c); err != nil {
				return err
			}
			cl := apiClient(c)
			return runChange(c, func(ctx context.Context, req apiv1.ChangeRequest) (apiv1.Result, error) {
				return send(cl, ctx, svc, req)
			})
		},
	}
}

func pauseCommand() *cli.Command {
	return commandOn("pause", "stop a running switch from advancing (analysis and rollback go on)",
		"Example:\n   bg pause web", "", (*client.Client).Pause)
}

func resumeCommand() *cli.Command {
	return commandOn("resume", "let a paused switch advance again (the current step bakes again)",
		"Example:\n   bg resume web", "", (*client.Client).Resume)
}

func promoteCommand() *cli.Command {
	return commandOn("promote", "skip a running switch's remaining steps",
		"Promotes at the next passing analysis; --force promotes at once and skips analysis\n(recorded as an override).\n\nExamples:\n   bg promote web\n   bg promote web --force --reason 'metrics outage, verified by hand'",
		"promote at once, skipping analysis and gates (an override; needs --reason)", (*client.Client).Promote)
}
