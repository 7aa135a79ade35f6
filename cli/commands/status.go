package commands

import (
	"fmt"
	"io"
	"strings"
	"text/tabwriter"

	"github.com/urfave/cli/v2"

	"github.com/bgctl/bg/controlplane/model"
	"github.com/bgctl/bg/controlplane/traffic"
)

func statusCommand() *cli.Command {
	return &cli.Command{
		Name:      "status",
		Usage:     "show split, fleets and proxy ACKs of one or every service",
		ArgsUsage: "[SERVICE]",
		Description: `Examples:
   bg status
   bg status web -o json`,
		Flags: []cli.Flag{outputFlag()},
		Action: func(c *cli.Context) error {
			if err := checkOutput(c); err != nil {
				return err
			}
			if c.NArg() > 1 {
				return cli.Exit("error: expected at most one SERVICE argument", ExitUsage)
			}
			cl := apiClient(c)
			var out any
			var list []traffic.Status
			if c.NArg() == 1 {
				st, err := cl.Status(c.Context, c.Args().First())
				if err != nil {
					return apiExit(err)
				}
				out, list = st, []traffic.Status{st}
			} else {
				all, err := cl.StatusAll(c.Context)
				if err != nil {
					return apiExit(err)
				}
				out, list = all, all
			}
			if c.String("output") == "json" {
				writeJSON(c.App.Writer, out)
				return nil
			}
			printStatus(c.App.Writer, list)
			return nil
		},
	}
}

func printStatus(w io.Writer, list []traffic.Status) {
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
	}
}

func fleet(f traffic.FleetStatus) string {
	if len(f.Versions) == 0 {
		return fmt.Sprintf("%d healthy", f.Healthy)
	}
	return fmt.Sprintf("%d healthy (%s)", f.Healthy, strings.Join(f.Versions, ","))
}
