// Command bg is the blue/green control plane and its CLI.
package main

import (
	"os"

	"github.com/bgctl/bg/cli/commands"
)

func main() {
	os.Exit(commands.Run(os.Args, os.Stdout, os.Stderr))
}
