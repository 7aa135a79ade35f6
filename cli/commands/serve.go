package commands

import (
	"context"
	"log/slog"
	"os"
	"os/signal"
	"strings"
	"syscall"

	"github.com/urfave/cli/v2"

	"github.com/bgctl/bg/controlplane/config"
	"github.com/bgctl/bg/controlplane/serve"
)

func configFlag() cli.Flag {
	return &cli.StringFlag{Name: "config", Aliases: []string{"c"}, EnvVars: []string{"BG_CONFIG"}, Usage: "YAML config file"}
}

// loadConfig reads the file, BG_* env and flag overrides, and validates them.
func loadConfig(c *cli.Context) (*config.Config, error) {
	cfg, _, err := loadConfigSource(c)
	return cfg, err
}

// loadConfigSource is loadConfig, plus how bg serve reloads the same file
// with the same overrides.
func loadConfigSource(c *cli.Context) (*config.Config, serve.ConfigSource, error) {
	overrides := map[string]any{}
	for flag, key := range map[string]string{"xds-listen": "xds.listen", "admin-listen": "admin.listen", "consul-address": "consul.address"} {
		if c.IsSet(flag) {
			overrides[key] = c.String(flag)
		}
	}
	// Every problem at once: unknown keys, values that do not decode and
	// semantic errors, one per line with its field path.
	path := c.String("config")
	cfg, err := config.LoadValid(path, overrides)
	if err != nil {
		return nil, serve.ConfigSource{}, cli.Exit("invalid configuration:\n"+indent(err.Error()), ExitUsage)
	}
	return cfg, serve.ConfigSource{Path: path, Load: func() (*config.Config, error) { return config.LoadValid(path, overrides) }}, nil
}

func indent(s string) string { return "  " + strings.ReplaceAll(s, "\n", "\n  ") }

func serveCommand() *cli.Command {
	return &cli.Command{
		Name:  "serve",
		Usage: "run the control plane (xDS + admin API)",
		Description: `Serves ADS to Envoy and proxyless gRPC clients and the admin API the other commands use.

Example:
   bg serve --config configs/bg.yaml
   BG_ADMIN_TOKEN=secret bg serve --config configs/bg.yaml --admin-listen 0.0.0.0:9090`,
		Flags: []cli.Flag{
			configFlag(),
			&cli.StringFlag{Name: "xds-listen", Usage: "override xds.listen"},
			&cli.StringFlag{Name: "admin-listen", Usage: "override admin.listen"},
			&cli.StringFlag{Name: "consul-address", Usage: "override consul.address"},
		},
		Action: func(c *cli.Context) error {
			cfg, src, err := loadConfigSource(c)
			if err != nil {
				return err
			}
			log := slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: logLevel(cfg.Log.Level)}))
			ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
			defer stop()
			if err := serve.RunWith(ctx, cfg, log, src); err != nil {
				return cli.Exit("error: "+err.Error(), ExitError)
			}
			return nil
		},
	}
}

func logLevel(s string) slog.Level {
	var l slog.Level
	_ = l.UnmarshalText([]byte(s))
	return l
}

func validateCommand() *cli.Command {
	return &cli.Command{
		Name:        "validate",
		Usage:       "check a config file and report every error with its field path",
		Description: "Example:\n   bg validate --config configs/bg.yaml",
		Flags:       []cli.Flag{configFlag()},
		Action: func(c *cli.Context) error {
			if _, err := loadConfig(c); err != nil {
				return err
			}
			_, _ = c.App.Writer.Write([]byte("config is valid\n"))
			return nil
		},
	}
}
