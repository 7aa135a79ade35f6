package commands

import (
	"context"
	"fmt"
	"time"

	"github.com/urfave/cli/v2"

	apiv1 "github.com/bgctl/bg/controlplane/api/v1"
)

func reloadCommand() *cli.Command {
	return &cli.Command{
		Name:  "reload",
		Usage: "make the control plane at --addr re-read its config file (as SIGHUP does)",
		Description: `Services can be added and removed, and analysis, gates, pools, mirror,
windows, rolling and notifications changed, without a restart or any traffic
change. A file that does not validate, or that changes a setting needing a
restart (listen addresses, TLS, Consul, leader election, kv prefix, ...),
changes nothing: the running config stays in force, and the reason is
printed (exit 3). Each replica reloads its own file: send it to each one.

Example:
   bg reload --addr 10.0.0.5:9090`,
		Flags: []cli.Flag{outputFlag()},
		Action: func(c *cli.Context) error {
			if err := checkOutput(c); err != nil {
				return err
			}
			if c.NArg() != 0 {
				return cli.Exit(fmt.Sprintf("error: reload takes no arguments, got %d", c.NArg()), ExitUsage)
			}
			ctx, cancel := context.WithTimeout(c.Context, 30*time.Second)
			defer cancel()
			a, err := apiClient(c).Reload(ctx)
			if err != nil {
				return apiExit(err)
			}
			if c.String("output") == "json" {
				writeJSON(c.App.Writer, a)
			} else if a.Result == apiv1.ReloadSuccess {
				fmt.Fprintf(c.App.Writer, "config reloaded: %s (generation %d, sha256 %.12s)\n", a.Change, a.Generation, a.Hash)
			}
			if a.Result != apiv1.ReloadSuccess {
				return cli.Exit(fmt.Sprintf("error: config reload %s; the running config (generation %d) stays in force:\n%s", a.Result, a.Generation, indent(a.Error)), ExitRefused)
			}
			return nil
		},
	}
}
