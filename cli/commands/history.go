package commands

import (
	"fmt"
	"io"
	"sort"
	"strings"
	"text/tabwriter"
	"time"
	"unicode"

	"github.com/urfave/cli/v2"

	apiv1 "github.com/bgctl/bg/controlplane/api/v1"
	"github.com/bgctl/bg/controlplane/model"
)

func historyCommand() *cli.Command {
	return &cli.Command{
		Name:      "history",
		Usage:     "show who changed a service's traffic, when, why, and from what to what",
		ArgsUsage: "SERVICE",
		Description: `Lists the newest changes of a service's traffic state, oldest first: every
switch step, abort, pause, promotion, rollback and roll, with who asked
(cli:USER@HOST and address, or bg:REPLICA for the control plane's own
decisions), the split before and after, and the reason. Plan overrides are
marked OVERRIDE. Times are UTC. The control plane keeps history.retention
entries per service.

Examples:
   bg history web
   bg history web --limit 500 -o json | jq '.[] | select(.override != null)'`,
		Flags: []cli.Flag{
			&cli.IntFlag{Name: "limit", Aliases: []string{"n"}, Value: 20, Usage: fmt.Sprintf("show the newest N entries (1..%d)", apiv1.MaxHistoryLimit)},
			outputFlag(),
		},
		Action: func(c *cli.Context) error {
			svc, err := serviceArg(c)
			if err != nil {
				return err
			}
			if err := checkOutput(c); err != nil {
				return err
			}
			limit := c.Int("limit")
			if limit < 1 || limit > apiv1.MaxHistoryLimit {
				return cli.Exit(fmt.Sprintf("error: --limit must be between 1 and %d, not %d", apiv1.MaxHistoryLimit, limit), ExitUsage)
			}
			entries, err := apiClient(c).History(c.Context, svc, limit)
			if err != nil {
				return apiExit(err)
			}
			if c.String("output") == "json" {
				if entries == nil {
					entries = []model.HistoryEntry{}
				}
				writeJSON(c.App.Writer, entries)
				return nil
			}
			// The desired version's changes (declarative delivery) are
			// stored with it, not as traffic generations: shown among them.
			var desires []model.DesireEvent
			if conv, err := apiClient(c).Desired(c.Context, svc); err == nil && conv.Desired != nil {
				desires = conv.Desired.Log
			}
			printHistory(c.App.Writer, svc, entries, desires...)
			return nil
		},
	}
}

// printHistory prints the traffic history and, among it by time, the
// desired version's events since the oldest entry shown (GEN "-", PHASE
// "desire").
func printHistory(w io.Writer, svc string, entries []model.HistoryEntry, desires ...model.DesireEvent) {
	if len(entries) == 0 && len(desires) == 0 {
		fmt.Fprintf(w, "%s: no history\n", svc)
		return
	}
	type row struct {
		at   time.Time
		line string
	}
	var rows []row
	for _, e := range entries {
		rows = append(rows, row{e.At, fmt.Sprintf("%s\t%d\t%s\t%s\t%s\t%s\n", e.At.UTC().Format(time.RFC3339), e.Generation,
			cell(e.Actor), split(e), cell(string(e.Phase)), cell(why(e)))})
	}
	for _, d := range desires {
		if len(entries) > 0 && d.At.Before(entries[0].At) {
			continue // older than the entries shown
		}
		what := d.What + " " + d.Version
		if d.Reason != "" {
			what += ": " + d.Reason
		}
		rows = append(rows, row{d.At, fmt.Sprintf("%s\t-\t%s\t-\tdesire\t%s\n", d.At.UTC().Format(time.RFC3339), cell(d.Actor), cell(what))})
	}
	sort.SliceStable(rows, func(i, j int) bool { return rows[i].at.Before(rows[j].at) })
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "TIME\tGEN\tACTOR\tSPLIT\tPHASE\tWHY")
	for _, r := range rows {
		fmt.Fprint(tw, r.line)
	}
	_ = tw.Flush()
}

// split is the green share before and after, e.g. "0→100% green".
func split(e model.HistoryEntry) string {
	if e.FromGreen == e.ToGreen {
		return fmt.Sprintf("%d%% green", e.ToGreen)
	}
	return fmt.Sprintf("%d→%d%% green", e.FromGreen, e.ToGreen)
}

// why joins reason, detail and override; an override is spelled out
// because it is the line an incident review looks for.
func why(e model.HistoryEntry) string {
	var parts []string
	if e.Override != "" {
		parts = append(parts, "OVERRIDE: "+e.Override)
	}
	for _, s := range []string{e.Reason, e.Detail} {
		if s != "" {
			parts = append(parts, s)
		}
	}
	if len(parts) == 0 {
		return "-"
	}
	return strings.Join(parts, "; ")
}

// cell keeps stored text from breaking the table or the terminal: tabs,
// newlines and escape sequences in a reason become spaces.
func cell(s string) string {
	return strings.Map(func(r rune) rune {
		if !unicode.IsPrint(r) {
			return ' '
		}
		return r
	}, s)
}
