// Command consul builds the real HashiCorp Consul agent from the Go module
// proxy so that e2e tests run against Consul itself, not a fake.
package main

import (
	"os"

	"github.com/hashicorp/consul/command"
	"github.com/hashicorp/consul/command/cli"
	"github.com/hashicorp/consul/version"
	mcli "github.com/mitchellh/cli"
)

func main() {
	ui := &cli.BasicUI{
		BasicUi: mcli.BasicUi{Reader: os.Stdin, Writer: os.Stdout, ErrorWriter: os.Stderr},
	}
	cmds := command.CommandsFromRegistry(ui)
	c := &mcli.CLI{
		Name:     "consul",
		Version:  version.GetHumanVersion(),
		Args:     os.Args[1:],
		Commands: cmds,
	}
	code, err := c.Run()
	if err != nil {
		os.Stderr.WriteString(err.Error() + "\n")
		os.Exit(1)
	}
	os.Exit(code)
}
