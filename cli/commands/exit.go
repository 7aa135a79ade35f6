package commands

import (
	"errors"
	"fmt"
	"net/http"
	"os"

	"github.com/urfave/cli/v2"

	"github.com/bgctl/bg/cli/client"
)

// Exit codes are part of bg's interface: pipelines act on them.
const (
	ExitOK           = 0
	ExitError        = 1 // unexpected failure
	ExitUsage        = 2 // bad flags or arguments, unknown service, bad colour
	ExitRefused      = 3 // the control plane refused: empty fleet, conflict, not ready
	ExitNotAcked     = 4 // applied, but some proxies did not ACK before --timeout
	ExitUnauthorized = 5 // missing or wrong token
	ExitUnreachable  = 6 // no answer from the control plane
)

// apiExit turns a client error into a message and the matching exit code.
func apiExit(err error) error {
	var unreachable *client.UnreachableError
	var apiErr *client.APIError
	switch {
	case errors.As(err, &unreachable):
		return cli.Exit("error: "+err.Error(), ExitUnreachable)
	case errors.As(err, &apiErr):
		msg := "error: " + apiErr.Error()
		switch apiErr.StatusCode {
		case http.StatusUnauthorized:
			return cli.Exit("error: unauthorized: missing or wrong token (set --token or BG_TOKEN)", ExitUnauthorized)
		case http.StatusBadRequest, http.StatusNotFound:
			return cli.Exit(msg, ExitUsage)
		case http.StatusConflict, http.StatusUnprocessableEntity, http.StatusServiceUnavailable:
			return cli.Exit(msg, ExitRefused)
		}
		return cli.Exit(msg, ExitError)
	}
	return cli.Exit("error: "+err.Error(), ExitError)
}

func exitErrHandler(c *cli.Context, err error) {
	if err == nil {
		return
	}
	var coder cli.ExitCoder
	if errors.As(err, &coder) {
		if msg := err.Error(); msg != "" {
			fmt.Fprintln(os.Stderr, msg)
		}
		os.Exit(coder.ExitCode())
	}
	fmt.Fprintln(os.Stderr, "error:", err)
	os.Exit(ExitUsage)
}
