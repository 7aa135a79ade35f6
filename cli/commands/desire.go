package commands

import (
	"context"
	"fmt"
	"io"
	"slices"
	"strings"
	"time"

	"github.com/urfave/cli/v2"

	"github.com/bgctl/bg/cli/client"
	apiv1 "github.com/bgctl/bg/controlplane/api/v1"
	"github.com/bgctl/bg/controlplane/model"
)

func desireCommand() *cli.Command {
	return &cli.Command{
		Name:      "desire",
		Usage:     "set (or show) the version a service should run; with auto.enabled bg switches to it by itself",
		ArgsUsage: "SERVICE | --set S=V,S=V",
		Description: `Stores the desired version in Consul KV beside the service's traffic state.
With services[].auto.enabled, the leader switches to the colour running it once
that fleet is healthy and at capacity, has settled, and the windows allow it,
with the service's normal plan, as actor bg:converge. A converged switch that
rolls back is not retried until another version is desired or --retry.
Without --version or --retry it shows the desired version and why the service
is not converging yet. --set desires several services at once: they converge
together, once every one is ready, as one release in dependency order
(depends_on), rolled back together.

Examples:
   bg desire web --version v2 --reason "deploy 42"
   bg desire web
   bg desire web --retry
   bg desire --set web=v2,api=v7 --reason "checkout 2.0"`,
		Flags: []cli.Flag{
			&cli.StringFlag{Name: "version", Usage: "the version the service should run (Consul service meta \"version\" of its instances)"},
			&cli.StringFlag{Name: "reason", Usage: "why (recorded)"},
			&cli.BoolFlag{Name: "retry", Usage: "try the desired version again after its converged switch failed"},
			&cli.StringFlag{Name: "set", Usage: "several services at once, SERVICE=VERSION,...: one release in dependency order"},
			outputFlag(),
		},
		Action: func(c *cli.Context) error {
			if err := checkOutput(c); err != nil {
				return err
			}
			if c.IsSet("set") {
				return desireSet(c)
			}
			if c.NArg() != 1 {
				return cli.Exit("error: expected one SERVICE argument (or --set)", ExitUsage)
			}
			svc, cl := c.Args().First(), apiClient(c)
			if !c.IsSet("version") && !c.Bool("retry") {
				if c.IsSet("reason") {
					return cli.Exit("error: --reason needs --version or --retry", ExitUsage)
				}
				conv, err := cl.Desired(c.Context, svc)
				if err != nil {
					return apiExit(err)
				}
				if c.String("output") == "json" {
					writeJSON(c.App.Writer, conv)
					return nil
				}
				printConvergence(c.App.Writer, svc, conv, true)
				return nil
			}
			if c.IsSet("version") && c.String("version") == "" {
				return cli.Exit("error: --version must not be empty", ExitUsage)
			}
			res, err := cl.Desire(c.Context, svc, apiv1.DesireRequest{Version: c.String("version"), Reason: c.String("reason"), Retry: c.Bool("retry")})
			if err != nil {
				return apiExit(err)
			}
			if c.String("output") == "json" {
				writeJSON(c.App.Writer, res)
				return nil
			}
			if !res.Changed {
				fmt.Fprintf(c.App.Writer, "%s: unchanged\n", svc)
			}
			printConvergence(c.App.Writer, svc, res.Convergence, false)
			return nil
		},
	}
}

// parseSet reads --set's SERVICE=VERSION,... (syntax only; the control
// plane checks names and versions).
func parseSet(s string) (map[string]string, error) {
	out := map[string]string{}
	for _, part := range strings.Split(s, ",") {
		name, v, ok := strings.Cut(strings.TrimSpace(part), "=")
		if !ok || name == "" || v == "" {
			return nil, fmt.Errorf("--set: %q is not SERVICE=VERSION", part)
		}
		if _, dup := out[name]; dup {
			return nil, fmt.Errorf("--set: %s given twice", name)
		}
		out[name] = v
	}
	return out, nil
}

func desireSet(c *cli.Context) error {
	if c.NArg() != 0 || c.IsSet("version") || c.Bool("retry") {
		return cli.Exit("error: --set takes no SERVICE argument, --version or --retry", ExitUsage)
	}
	set, err := parseSet(c.String("set"))
	if err != nil {
		return cli.Exit("error: "+err.Error(), ExitUsage)
	}
	res, err := apiClient(c).DesireSet(c.Context, apiv1.DesireSetRequest{Set: set, Reason: c.String("reason")})
	if err != nil {
		return apiExit(err)
	}
	if c.String("output") == "json" {
		writeJSON(c.App.Writer, res)
		return nil
	}
	names := make([]string, 0, len(res.Services))
	for n := range res.Services {
		names = append(names, n)
	}
	slices.Sort(names)
	for _, n := range names {
		printConvergence(c.App.Writer, n, res.Services[n].Convergence, false)
	}
	return nil
}

// convergenceLine is status's one line: desired vs serving and why not yet.
func convergenceLine(svc string, cv apiv1.Convergence) string {
	desired := "none"
	if cv.Desired != nil {
		desired = cv.Desired.Version
	}
	serving := "-"
	if len(cv.Serving) > 0 {
		serving = joinVersions(cv.Serving)
	}
	line := fmt.Sprintf("%s: desired %s, serving %s: %s", svc, desired, serving, cv.Detail)
	if cv.LastError != "" {
		line += "; last start refused: " + cv.LastError
	}
	if !cv.PendingSince.IsZero() && cv.State != model.ConvergeConverged {
		line += fmt.Sprintf(" (not converged for %s)", time.Since(cv.PendingSince).Round(time.Second))
	}
	return line
}

// joinVersions lists each version once.
func joinVersions(vs []string) string {
	var out []string
	for _, v := range vs {
		if v == "" {
			v = "(no version)"
		}
		if !slices.Contains(out, v) {
			out = append(out, v)
		}
	}
	s := out[0]
	for _, v := range out[1:] {
		s += "," + v
	}
	return s
}

func printConvergence(w io.Writer, svc string, cv apiv1.Convergence, withLog bool) {
	fmt.Fprintln(w, convergenceLine(svc, cv))
	if d := cv.Desired; d != nil && withLog {
		for _, ev := range d.Log {
			line := fmt.Sprintf("  %s  %-40s %s %s", ev.At.Format(time.RFC3339), ev.Actor, ev.What, ev.Version)
			if ev.Reason != "" {
				line += ": " + ev.Reason
			}
			fmt.Fprintln(w, line)
		}
	}
}

func waitCommand() *cli.Command {
	return &cli.Command{
		Name:      "wait",
		Usage:     "wait until a service serves a version (declarative delivery, for CI)",
		ArgsUsage: "SERVICE",
		Description: `Exits 0 once --version serves 100 % (every passing member of the colour at
100 % runs it, and every proxy holds the state), 10 when bg's converged switch
to it rolled back, 11 when it was aborted, 12 when --timeout ends first: the
codes of switch --wait.

Examples:
   bg desire web --version v2 && bg wait web --version v2 --timeout 30m`,
		Flags: []cli.Flag{
			&cli.StringFlag{Name: "version", Required: true, Usage: "the version to wait for"},
			&cli.DurationFlag{Name: "timeout", Aliases: []string{"wait-timeout"}, Value: time.Hour, Usage: "give up after this long (exit 12)"},
			outputFlag(),
		},
		Action: func(c *cli.Context) error {
			if err := checkOutput(c); err != nil {
				return err
			}
			if c.NArg() != 1 {
				return cli.Exit("error: expected one SERVICE argument", ExitUsage)
			}
			if c.String("version") == "" {
				return cli.Exit("error: --version must not be empty", ExitUsage)
			}
			if c.Duration("timeout") <= 0 {
				return cli.Exit("error: --timeout must be positive", ExitUsage)
			}
			return waitVersion(c, apiClient(c), c.Args().First(), c.String("version"))
		},
	}
}

// waitOutcome says whether st ends a wait for version v: done, or an exit.
func waitOutcome(st apiv1.Status, v string) (done bool, exit error) {
	for _, col := range model.Colors {
		fs := st.Fleets[col]
		if st.Weights.Blue+st.Weights.Green != 100 || pct(st.Weights, col) != 100 || st.Phase == model.PhaseSwitching {
			continue
		}
		if len(fs.Members) > 0 && allRun(fs.Members, v) && st.Proxies.Acked >= st.Proxies.Connected {
			return true, nil
		}
	}
	if cv := st.Converge; cv != nil && cv.Desired != nil && cv.Desired.Version == v && cv.Desired.Failed != nil {
		f := cv.Desired.Failed
		if f.Cause == model.FailAborted {
			return false, cli.Exit(fmt.Sprintf("%s %s: converged switch %s aborted: %s", st.Service, v, f.SwitchID, f.Reason), ExitAborted)
		}
		return false, cli.Exit(fmt.Sprintf("%s %s: converged switch %s rolled back: %s", st.Service, v, f.SwitchID, f.Reason), ExitRolledBack)
	}
	return false, nil
}

func pct(w apiv1.Weights, c model.Color) int {
	if c == model.Green {
		return w.Green
	}
	return w.Blue
}

func allRun(ms []apiv1.Member, v string) bool {
	for _, m := range ms {
		if m.Version != v {
			return false
		}
	}
	return true
}

// waitVersion polls the service's status until waitOutcome decides or the
// timeout ends. A failed read is retried until then: a wait outlives a
// control plane restart or a leader change.
func waitVersion(c *cli.Context, cl *client.Client, svc, v string) error {
	ctx, cancel := context.WithTimeout(c.Context, c.Duration("timeout"))
	defer cancel()
	text := c.String("output") != "json"
	var st apiv1.Status
	last := ""
	for first := true; ; first = false {
		next, err := cl.Status(ctx, svc)
		switch {
		case err == nil:
			st = next
			done, exit := waitOutcome(st, v)
			if done || exit != nil {
				if !text {
					writeJSON(c.App.Writer, st)
				} else if done {
					fmt.Fprintf(c.App.Writer, "%s %s serves 100%%\n", time.Now().Format("15:04:05"), svc+" "+v)
				}
				return exit
			}
			if cv := st.Converge; text && cv != nil {
				if line := convergenceLine(svc, *cv); line != last {
					fmt.Fprintln(c.App.Writer, time.Now().Format("15:04:05"), line)
					last = line
				}
			}
		case first || client.IsUnauthorized(err) || client.IsNotFound(err):
			return apiExit(err)
		}
		select {
		case <-ctx.Done():
			if !text {
				writeJSON(c.App.Writer, st)
			}
			return cli.Exit(fmt.Sprintf("error: %s does not serve %s after %s", svc, v, c.Duration("timeout")), ExitTimedOut)
		case <-time.After(pollEvery):
		}
	}
}
