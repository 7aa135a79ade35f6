package commands

import (
	"context"
	"fmt"
	"io"
	"os"
	"os/signal"
	"strings"
	"syscall"
	"text/tabwriter"
	"time"

	"github.com/urfave/cli/v2"

	"github.com/bgctl/bg/cli/client"
	apiv1 "github.com/bgctl/bg/controlplane/api/v1"
	"github.com/bgctl/bg/controlplane/model"
)

func statusCommand() *cli.Command {
	return &cli.Command{
		Name:      "status",
		Usage:     "show split, fleets and proxy ACKs of one or every service",
		ArgsUsage: "[SERVICE]",
		Description: `With --watch, redraws the status every --interval until Ctrl-C (exit 0): in a
terminal the screen is cleared between frames, otherwise (a pipe, a CI log) each
frame follows a timestamp line.

Examples:
   bg status
   bg status web -o json
   bg status web --watch
   bg status --watch --interval 5s`,
		Flags: []cli.Flag{
			outputFlag(),
			&cli.BoolFlag{Name: "watch", Aliases: []string{"w"}, Usage: "redraw until Ctrl-C"},
			&cli.DurationFlag{Name: "interval", Value: time.Second, Usage: "with --watch: time between frames"},
			// count stops --watch after N frames; for tests and scripts.
			&cli.IntFlag{Name: "count", Hidden: true, Usage: "with --watch: stop after N frames (0: until Ctrl-C)"},
		},
		Action: func(c *cli.Context) error {
			if err := checkOutput(c); err != nil {
				return err
			}
			if c.NArg() > 1 {
				return cli.Exit("error: expected at most one SERVICE argument", ExitUsage)
			}
			if !c.Bool("watch") {
				return statusFrame(c, apiClient(c), c.Context, c.App.Writer)
			}
			if c.Duration("interval") <= 0 {
				return cli.Exit("error: --interval must be positive", ExitUsage)
			}
			return watchStatus(c)
		},
	}
}

// statusFrame fetches and prints the status once.
func statusFrame(c *cli.Context, cl *client.Client, ctx context.Context, w io.Writer) error {
	var out any
	var list []apiv1.Status
	if c.NArg() == 1 {
		st, err := cl.Status(ctx, c.Args().First())
		if err != nil {
			return apiExit(err)
		}
		out, list = st, []apiv1.Status{st}
	} else {
		all, err := cl.StatusAll(ctx)
		if err != nil {
			return apiExit(err)
		}
		out, list = all, all
	}
	if c.String("output") == "json" {
		writeJSON(w, out)
		return nil
	}
	printStatus(w, list)
	return nil
}

// clearScreen moves the cursor home and clears the terminal.
const clearScreen = "\x1b[H\x1b[2J"

// watchStatus redraws the status every --interval until SIGINT/SIGTERM
// (exit 0) or --count frames. A failed fetch after the first frame is shown
// in the frame and retried: a watch outlives a control plane restart.
func watchStatus(c *cli.Context) error {
	ctx, stop := signal.NotifyContext(c.Context, os.Interrupt, syscall.SIGTERM)
	defer stop()
	cl, w := apiClient(c), c.App.Writer
	tty := isTerminal(w)
	interval, count := c.Duration("interval"), c.Int("count")
	for frame := 1; ; frame++ {
		var buf strings.Builder
		if tty {
			buf.WriteString(clearScreen)
			fmt.Fprintf(&buf, "Every %s: bg status %s  %s\n\n", interval, c.Args().First(), time.Now().Format("15:04:05"))
		} else {
			fmt.Fprintf(&buf, "--- %s\n", time.Now().Format(time.RFC3339))
		}
		err := statusFrame(c, cl, ctx, &buf)
		if ctx.Err() != nil {
			return nil // interrupted mid-fetch
		}
		if err != nil {
			if frame == 1 {
				return err
			}
			fmt.Fprintln(&buf, err)
		}
		// One write per frame, so a terminal never shows half a frame.
		_, _ = io.WriteString(w, buf.String())
		if count > 0 && frame >= count {
			return nil
		}
		select {
		case <-ctx.Done():
			return nil
		case <-time.After(interval):
		}
	}
}

// isTerminal reports whether w is a character device (a terminal).
func isTerminal(w io.Writer) bool {
	f, ok := w.(*os.File)
	if !ok {
		return false
	}
	fi, err := f.Stat()
	return err == nil && fi.Mode()&os.ModeCharDevice != 0
}

func printStatus(w io.Writer, list []apiv1.Status) {
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "SERVICE\tBLUE\tGREEN\tSTABLE\tPHASE\tGEN\tBLUE FLEET\tGREEN FLEET\tPROXIES ACKED")
	for _, st := range list {
		fmt.Fprintf(tw, "%s\t%d%%\t%d%%\t%s\t%s\t%d\t%s\t%s\t%d/%d\n", st.Service, st.Weights.Blue, st.Weights.Green,
			st.Stable, st.Phase, st.Generation, fleet(st.Fleets[model.Blue]), fleet(st.Fleets[model.Green]),
			st.Proxies.Acked, st.Proxies.Connected)
	}
	_ = tw.Flush()
	for _, st := range list {
		if st.Switch != nil {
			fmt.Fprintln(w, progressLine(st))
		}
		if st.Roll != nil {
			fmt.Fprintln(w, rollLine(st))
		}
		if line := releaseLine(st); line != "" {
			fmt.Fprintln(w, line)
		}
		if st.Converge != nil {
			fmt.Fprintln(w, convergenceLine(st.Service, *st.Converge))
		}
		if st.NoEnvoyListener {
			fmt.Fprintf(w, "%s: envoy listener: none (no port; proxyless gRPC clients only)\n", st.Service)
		}
		printSessionsAtRisk(w, st)
		if st.ConfigNote != "" {
			fmt.Fprintf(w, "%s: %s\n", st.Service, st.ConfigNote)
		}
	}
	// Notification failures and the config are the replica's, the same in every status.
	if len(list) > 0 {
		for _, n := range list[0].Notifications {
			fmt.Fprintf(w, "notification %s: last delivery failed at %s: %s\n", n.Name, n.At.Format(time.RFC3339), n.LastError)
		}
		if line := reloadLines(list[0].Reload); line != "" {
			fmt.Fprint(w, line)
		}
	}
}

// reloadLines shows the config in force and, when it failed, the last
// reload (a successful one shows in the generation).
func reloadLines(r *apiv1.ReloadStatus) string {
	if r == nil {
		return ""
	}
	out := fmt.Sprintf("config: generation %d (sha256 %.12s) since %s", r.Generation, r.Hash, r.Since.Format(time.RFC3339))
	if r.Watch {
		out += "; watching the file"
	}
	out += "\n"
	if l := r.Last; l != nil {
		if l.Result == apiv1.ReloadSuccess {
			out += fmt.Sprintf("config: last reload (%s) at %s: success: %s\n", l.Trigger, l.At.Format(time.RFC3339), l.Change)
		} else {
			out += fmt.Sprintf("config: last reload (%s) at %s: %s; the running config stays in force:\n%s\n", l.Trigger, l.At.Format(time.RFC3339), l.Result, indent(l.Error))
		}
	}
	return out
}

// releaseLine shows pools, mirroring and a closed deploy window.
func releaseLine(st apiv1.Status) string {
	var parts []string
	if len(st.Pools) > 0 {
		to := "off"
		if st.Candidate != "" {
			to = "to " + string(st.Candidate)
			if st.Preview != "" && (st.Switch == nil || !st.Switch.Phase.Running()) {
				to += " (preview)"
			}
		}
		parts = append(parts, fmt.Sprintf("pools %s: %s", to, strings.Join(st.Pools, ", ")))
	}
	if st.MirrorPercent > 0 {
		parts = append(parts, fmt.Sprintf("mirror %d%%", st.MirrorPercent))
	}
	if w := st.Window; w != nil && !w.Open {
		next := "never within 400 days"
		if !w.NextOpen.IsZero() {
			next = w.NextOpen.Format(time.RFC3339)
		}
		parts = append(parts, fmt.Sprintf("switches closed: %s; next open %s", w.Reason, next))
	}
	if len(parts) == 0 {
		return ""
	}
	return st.Service + ": " + strings.Join(parts, "; ")
}

func fleet(f apiv1.FleetStatus) string {
	if len(f.Versions) == 0 {
		return fmt.Sprintf("%d healthy", f.Healthy)
	}
	return fmt.Sprintf("%d healthy (%s)", f.Healthy, strings.Join(f.Versions, ","))
}

// printSessionsAtRisk names a rolling service's connected proxies whose
// client may not keep sessions through a roll (the control plane decides
// which, and the README's client matrix says why).
func printSessionsAtRisk(w io.Writer, st apiv1.Status) {
	n := len(st.SessionsAtRisk) + st.SessionsAtRiskUnlisted
	if n == 0 {
		return
	}
	what := fmt.Sprintf("%d connected proxies", n)
	if n == 1 {
		what = "1 connected proxy"
	}
	fmt.Fprintf(w, "%s: warning: %s may not keep sessions through a roll:\n", st.Service, what)
	for _, p := range st.SessionsAtRisk {
		who := p.NodeID
		if p.Replica != "" {
			who = p.Replica + "/" + who
		}
		fmt.Fprintf(w, "  %s (%s)\n", who, p.SessionsWhy)
	}
	if st.SessionsAtRiskUnlisted > 0 {
		fmt.Fprintf(w, "  and %d more\n", st.SessionsAtRiskUnlisted)
	}
}
