// Command bg is the blue/green control plane and its CLI.
package main

import (
	"fmt"
	"os"

	"github.com/bgctl/bg/cli/commands"
)

func main() {
	if err := commands.App().Run(os.Args); err != nil {
		fmt.Fprintln(os.Stderr, "error:", err)
		os.Exit(commands.ExitUsage)
	}
}
