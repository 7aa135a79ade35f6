package commands

import (
	"fmt"
	"io"
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
			printHistory(c.App.Writer, svc, entries)
			return nil
		},
	}
}

func printHistory(w io.Writer, svc string, entries []model.HistoryEntry) {
	if len(entries) == 0 {
		fmt.Fprintf(w, "%s: no history\n", svc)
		return
	}
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "TIME\tGEN\tACTOR\tSPLIT\tPHASE\tWHY")
	for _, e := range entries {
		fmt.Fprintf(tw, "%s\t%d\t%s\t%s\t%s\t%s\n", e.At.UTC().Format(time.RFC3339), e.Generation,
			cell(e.Actor), split(e), cell(string(e.Phase)), cell(why(e)))
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
