package commands

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"time"

	"github.com/urfave/cli/v2"

	"github.com/bgctl/bg/cli/client"
	apiv1 "github.com/bgctl/bg/controlplane/api/v1"
	"github.com/bgctl/bg/controlplane/model"
)

func apiClient(c *cli.Context) *client.Client {
	return &client.Client{Addr: c.String("addr"), Token: c.String("token"),
		TLS: client.TLSFiles{CAFile: c.String("ca-file"), CertFile: c.String("cert"), KeyFile: c.String("key")}}
}

func outputFlag() cli.Flag {
	return &cli.StringFlag{Name: "output", Aliases: []string{"o"}, Value: "text", Usage: "text or json"}
}

func changeFlags() []cli.Flag {
	return []cli.Flag{
		&cli.DurationFlag{Name: "timeout", Value: 30 * time.Second, Usage: "how long to wait for every proxy to ACK"},
		&cli.BoolFlag{Name: "force", Usage: "override: skip deploy windows, gates and analysis (moves at once) and allow an empty fleet; needs --reason"},
		&cli.StringFlag{Name: "reason", Usage: "recorded with the change"},
		outputFlag(),
	}
}

func serviceArg(c *cli.Context) (string, error) {
	if c.NArg() != 1 {
		return "", cli.Exit(fmt.Sprintf("error: expected exactly one SERVICE argument, got %d", c.NArg()), ExitUsage)
	}
	return c.Args().First(), nil
}

func checkOutput(c *cli.Context) error {
	switch c.String("output") {
	case "text", "json":
		return nil
	}
	return cli.Exit(fmt.Sprintf("error: --output must be text or json, not %q", c.String("output")), ExitUsage)
}

func switchCommand() *cli.Command {
	return &cli.Command{
		Name:      "switch",
		Usage:     "move a service's traffic to the other colour, step by step and judged, or at once",
		ArgsUsage: "SERVICE",
		Description: `Without --instant, moves traffic in steps (velocity control), compares the new
fleet's error ratio with the old one's on Prometheus at every interval, and flips
back at once if the new fleet is worse. With --instant, moves 100% at once.
Returns once every connected proxy ACKed the first change; --wait follows the
switch to its end and exits with a code a pipeline can act on.

Examples:
   bg switch web --wait                      # to the idle colour, default plan
   bg switch web --to green --steps 10,50,100 --bake 30s --wait -o json
   bg switch web --dry-run                   # print the plan, run each query once
   bg switch web --to green --instant
   bg switch web --to green --force --reason "INC-42 hotfix"   # outside a window: at once, recorded`,
		Flags: append(changeFlags(),
			&cli.StringFlag{Name: "to", Usage: "blue or green (default: the colour with no traffic)"},
			&cli.BoolFlag{Name: "instant", Usage: "move 100% at once, without analysis"},
			&cli.StringFlag{Name: "steps", Usage: "percent steps, e.g. 1,5,25,50,100 (default from config)"},
			&cli.DurationFlag{Name: "bake", Usage: "minimum time at each step (default from config)"},
			&cli.DurationFlag{Name: "interval", Usage: "analysis interval (default from config)"},
			&cli.BoolFlag{Name: "wait", Usage: "follow the switch until it is promoted, rolled back or aborted"},
			&cli.DurationFlag{Name: "wait-timeout", Value: time.Hour, Usage: "with --wait: give up after this long (exit 12)"},
			&cli.BoolFlag{Name: "dry-run", Usage: "print the plan and run each query once; change nothing"},
		),
		Action: runSwitch,
	}
}

func runSwitch(c *cli.Context) error {
	svc, err := serviceArg(c)
	if err != nil {
		return err
	}
	if err := checkOutput(c); err != nil {
		return err
	}
	cl := apiClient(c)
	// No --to: the control plane picks the idle colour.
	to := c.String("to")
	if to != "" {
		if _, err := model.ParseColor(to); err != nil {
			return cli.Exit("error: --to: "+err.Error(), ExitUsage)
		}
	}
	req := apiv1.ChangeRequest{To: to, Instant: c.Bool("instant"), DryRun: c.Bool("dry-run")}
	if req.Steps, err = parseSteps(c.String("steps")); err != nil {
		return cli.Exit("error: --steps: "+err.Error(), ExitUsage)
	}
	for _, f := range []struct {
		name string
		dst  *string
	}{{"bake", &req.Bake}, {"interval", &req.Interval}} {
		if c.IsSet(f.name) {
			*f.dst = c.Duration(f.name).String()
		}
	}
	if req.Instant && (req.Steps != nil || req.Bake != "" || req.Interval != "") {
		return cli.Exit("error: --steps, --bake and --interval do not apply to --instant", ExitUsage)
	}
	if req.DryRun {
		return runDryRun(c, cl, svc, req)
	}
	// Whether the switch moves at once (--instant, or --force on a
	// blue-green service) is the control plane's call; --wait follows what
	// the answer shows started: a progressive switch or a roll.
	wait := c.Bool("wait")
	started := false
	err = sendChange(c, func(ctx context.Context, r apiv1.ChangeRequest) (apiv1.Result, error) {
		r.To, r.Instant, r.Steps, r.Bake, r.Interval = req.To, req.Instant, req.Steps, req.Bake, req.Interval
		return cl.Switch(ctx, svc, r)
	}, func(res apiv1.Result) bool {
		started = res.Changed && (res.Status.Switch != nil || res.Status.Roll != nil)
		if wait && started && c.String("output") != "json" {
			printSessionsAtRisk(c.App.ErrWriter, res.Status) // before the roll's progress
		}
		return !wait || !started
	})
	if err != nil || !wait || !started {
		return err
	}
	return follow(c, cl, svc)
}

func abortCommand() *cli.Command {
	return commandOn("abort", "put all of a service's traffic back on the stable colour",
		"Returns once every connected proxy using the service's route has ACKed.\nWorks mid-plan; repeating an abort is safe.\n\nExample:\n   bg abort web",
		"abort even to a stable colour with no healthy members (an override; needs --reason)", (*client.Client).Abort)
}

// runChange sends one change and reports it.
func runChange(c *cli.Context, op func(context.Context, apiv1.ChangeRequest) (apiv1.Result, error)) error {
	return sendChange(c, op, func(apiv1.Result) bool { return true })
}

// sendChange sends one change with --force, --reason and --timeout as given
// (whether --force needs --reason is the control plane's call) and reports
// it unless print, seeing the result, says --wait will report instead.
func sendChange(c *cli.Context, op func(context.Context, apiv1.ChangeRequest) (apiv1.Result, error), print func(apiv1.Result) bool) error {
	timeout := c.Duration("timeout")
	req := apiv1.ChangeRequest{Force: c.Bool("force"), Reason: c.String("reason"), Timeout: timeout.String()}
	ctx, cancel := context.WithTimeout(c.Context, timeout+30*time.Second)
	defer cancel()
	res, err := op(ctx, req)
	if err != nil {
		return apiExit(err)
	}
	switch {
	case !print(res):
	case c.String("output") == "json":
		writeJSON(c.App.Writer, res)
	default:
		printChange(c.App.Writer, res)
	}
	if !res.Acks.Complete() {
		msg := fmt.Sprintf("error: %d proxies did not ACK generation %d within %s:", res.Acks.PendingCount(), res.Status.Generation, timeout)
		for _, p := range res.Acks.Pending {
			msg += "\n  " + p.NodeID
			if p.Replica != "" {
				msg += " (replica " + p.Replica + ")"
			}
			if p.LastNACK != nil {
				msg += " (rejected: " + p.LastNACK.Message + ")"
			}
		}
		if res.Acks.Unlisted > 0 {
			msg += fmt.Sprintf("\n  and %d more", res.Acks.Unlisted)
		}
		if res.Acks.Unconfirmed != "" {
			msg += "\n  unconfirmed: " + res.Acks.Unconfirmed
		}
		return cli.Exit(msg, ExitNotAcked)
	}
	return nil
}

func printChange(w io.Writer, res apiv1.Result) {
	st := res.Status
	verb := "applied"
	if !res.Changed {
		verb = "already in force"
	}
	fmt.Fprintf(w, "%s: blue %d%% / green %d%% (generation %d, %s); %d/%d proxies ACKed\n",
		st.Service, st.Weights.Blue, st.Weights.Green, st.Generation, verb, res.Acks.Acked, res.Acks.Acked+res.Acks.PendingCount())
	printSessionsAtRisk(w, st)
}

func writeJSON(w io.Writer, v any) {
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	_ = enc.Encode(v)
}
