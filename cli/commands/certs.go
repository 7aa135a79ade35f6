package commands

import (
	"fmt"
	"path/filepath"
	"strings"

	"github.com/urfave/cli/v2"

	"github.com/bgctl/bg/controlplane/devcerts"
)

// certsCommand makes development certificates for xDS over mTLS.
func certsCommand() *cli.Command {
	return &cli.Command{
		Name:  "certs",
		Usage: "make certificates for xDS over mTLS",
		Description: "bg certs dev writes a development CA and certificates (README \"xDS over mTLS\").\n\n" +
			"Example:\n   bg certs dev --dir certs --node-ids envoy-1,web-client",
		Subcommands: []*cli.Command{{
			Name:  "dev",
			Usage: "write a development CA, a server certificate and a client certificate per node id (not for production)",
			Description: "Writes DIR/ca.pem and ca-key.pem (reused if present, so running it again rotates the\n" +
				"   other certificates under the same CA), DIR/server.pem and server-key.pem (for --hosts),\n" +
				"   and DIR/NODE.pem and NODE-key.pem per node id, naming the node as\n" +
				"   spiffe://" + devcerts.TrustDomain + "/NODE and CN=NODE (xds.tls.node_id_from: spiffe or cn).\n\n" +
				"Example:\n   bg certs dev --dir certs --node-ids envoy-1,web-client",
			Flags: []cli.Flag{
				&cli.StringFlag{Name: "dir", Required: true, Usage: "output directory (created if missing)"},
				&cli.StringSliceFlag{Name: "node-ids", Usage: "node ids to issue client certificates for (comma-separated)"},
				&cli.StringSliceFlag{Name: "hosts", Value: cli.NewStringSlice("127.0.0.1", "localhost"), Usage: "IP addresses and DNS names of the server certificate"},
			},
			Action: func(c *cli.Context) error {
				dir := c.String("dir")
				var nodes []string
				for _, n := range c.StringSlice("node-ids") {
					if n = strings.TrimSpace(n); n != "" {
						nodes = append(nodes, n)
					}
				}
				res, err := devcerts.Dev(dir, c.StringSlice("hosts"), nodes)
				if err != nil {
					return err
				}
				w := c.App.Writer
				ca := "wrote"
				if res.ReusedCA {
					ca = "reused"
				}
				fmt.Fprintf(w, "%s CA         %s (key %s)\n", ca, filepath.Join(dir, devcerts.CAFile), filepath.Join(dir, devcerts.CAKeyFile))
				fmt.Fprintf(w, "wrote server     %s (key %s) for %s, serial %x\n", filepath.Join(dir, devcerts.ServerFile),
					filepath.Join(dir, devcerts.ServerKeyFile), strings.Join(c.StringSlice("hosts"), ", "), res.Server.Cert.SerialNumber)
				for _, n := range nodes {
					cert, key := devcerts.ClientFiles(n)
					fmt.Fprintf(w, "wrote client     %s (key %s) for spiffe://%s/%s, CN=%s\n", filepath.Join(dir, cert), filepath.Join(dir, key), devcerts.TrustDomain, n, n)
				}
				return nil
			},
		}},
	}
}
