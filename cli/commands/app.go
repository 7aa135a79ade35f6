// Package commands is the bg command line: one binary that serves and commands.
package commands

import (
	"github.com/urfave/cli/v2"
)

// App builds the bg command line. Use Run to execute it: Run reports errors,
// returns the exit code and lets flags follow a command's arguments.
func App() *cli.App {
	return &cli.App{
		Name:    "bg",
		Usage:   "blue/green traffic switching for Envoy and proxyless gRPC fleets on Consul",
		Version: VersionString(),
		Flags: []cli.Flag{
			&cli.StringFlag{Name: "addr", Value: "127.0.0.1:9090", EnvVars: []string{"BG_ADDR"}, Usage: "admin API address of the control plane"},
			&cli.StringFlag{Name: "token", EnvVars: []string{"BG_TOKEN"}, Usage: "bearer token for the admin API"},
			&cli.StringFlag{Name: "ca-file", EnvVars: []string{"BG_CA_FILE"}, Usage: "PEM CA bundle that verifies an https:// admin API (default: the system roots)"},
			&cli.StringFlag{Name: "cert", EnvVars: []string{"BG_CERT"}, Usage: "client certificate (PEM) for an admin API that verifies them; needs --key"},
			&cli.StringFlag{Name: "key", EnvVars: []string{"BG_KEY"}, Usage: "private key (PEM) of --cert"},
		},
		Commands:             []*cli.Command{serveCommand(), validateCommand(), switchCommand(), abortCommand(), statusCommand(), pauseCommand(), resumeCommand(), promoteCommand(), previewCommand(), historyCommand(), releaseCommand(), reloadCommand(), desireCommand(), waitCommand(), certsCommand(), completionCommand()},
		EnableBashCompletion: true,
		// Run reports errors and picks the exit code; cli's default handler
		// would call os.Exit.
		ExitErrHandler: func(*cli.Context, error) {},
	}
}
