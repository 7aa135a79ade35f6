package commands

import (
	"context"
	"time"

	"github.com/urfave/cli/v2"

	apiv1 "github.com/bgctl/bg/controlplane/api/v1"
	"github.com/bgctl/bg/controlplane/model"
)

func previewCommand() *cli.Command {
	return &cli.Command{
		Name:      "preview",
		Usage:     "send a service's canary pools (and mirrored requests) to the idle colour before a switch",
		ArgsUsage: "SERVICE",
		Description: `Requests matching one of the service's pools (a header or cookie value, e.g.
x-bg-pool: staff) go to the previewed colour whatever the split; with mirror.percent
set, Envoy also mirrors that share of live requests to it. No user outside a pool
is moved. A switch takes over the preview; an abort turns it off.

Examples:
   bg preview web                    # pools to the idle colour
   bg preview web --to green
   bg preview web --off`,
		Flags: []cli.Flag{
			&cli.StringFlag{Name: "to", Usage: "blue or green (default: the colour with no traffic)"},
			&cli.BoolFlag{Name: "off", Usage: "turn the preview off"},
			&cli.DurationFlag{Name: "timeout", Value: 30 * time.Second, Usage: "how long to wait for every proxy to ACK"},
			&cli.BoolFlag{Name: "force", Usage: "preview a colour with no healthy members (needs --reason)"},
			&cli.StringFlag{Name: "reason", Usage: "recorded with the change"},
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
			to := c.String("to")
			if to != "" {
				if _, err := model.ParseColor(to); err != nil {
					return cli.Exit("error: --to: "+err.Error(), ExitUsage)
				}
				if c.Bool("off") {
					return cli.Exit("error: --off and --to exclude each other", ExitUsage)
				}
			}
			cl := apiClient(c)
			return runChange(c, func(ctx context.Context, r apiv1.ChangeRequest) (apiv1.Result, error) {
				return cl.Preview(ctx, svc, apiv1.PreviewRequest{To: to, Off: c.Bool("off"), Force: r.Force, Reason: r.Reason, Timeout: r.Timeout})
			})
		},
	}
}
