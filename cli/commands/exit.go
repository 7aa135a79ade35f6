package commands

import (
	"errors"
	"fmt"
	"io"
	"net/http"
	"strings"

	"github.com/urfave/cli/v2"

	"github.com/bgctl/bg/cli/client"
	apiv1 "github.com/bgctl/bg/controlplane/api/v1"
)

// Exit codes are part of bg's interface: pipelines act on them.
const (
	ExitOK           = 0
	ExitError        = 1  // unexpected failure
	ExitUsage        = 2  // bad flags or arguments, unknown service, bad colour
	ExitRefused      = 3  // the control plane refused: empty fleet, conflict, not ready
	ExitNotAcked     = 4  // applied, but some proxies did not ACK before --timeout
	ExitUnauthorized = 5  // missing or wrong token
	ExitUnreachable  = 6  // no answer from the control plane
	ExitRolledBack   = 10 // switch --wait: the analysis failed and traffic went back to the stable colour; release --wait: a service failed and the release rolled back
	ExitAborted      = 11 // switch/release --wait: the switch or release was aborted by hand
	ExitTimedOut     = 12 // switch/release --wait: still running when --wait-timeout (release: --timeout) ended
)

// apiExit turns a client error into a message and the matching exit code.
func apiExit(err error) error {
	var unreachable *client.UnreachableError
	var apiErr *client.APIError
	var confErr *client.ConfigError
	switch {
	case errors.As(err, &confErr):
		return cli.Exit("error: "+err.Error(), ExitUsage)
	case errors.As(err, &unreachable):
		return cli.Exit("error: "+err.Error(), ExitUnreachable)
	case errors.As(err, &apiErr):
		msg := "error: " + apiErr.Error()
		code, known := codeExit[apiErr.Body.Code]
		if !known {
			code = statusExit(apiErr.StatusCode)
		}
		if code == ExitUnauthorized && apiErr.Body.Code != apiv1.CodeForbidden && apiErr.Body.Code != apiv1.CodeRateLimited {
			msg = "error: unauthorized: missing or wrong token (set --token or BG_TOKEN)"
		}
		return cli.Exit(msg, code)
	}
	return cli.Exit("error: "+err.Error(), ExitError)
}

// codeExit maps the error body's code to an exit code: the control plane
// decides (e.g. that --force needs --reason), the CLI only reports it.
var codeExit = map[string]int{
	apiv1.CodeBadRequest:     ExitUsage,
	apiv1.CodeUnknownService: ExitUsage,
	apiv1.CodeBadPlan:        ExitUsage,
	apiv1.CodeNeedsReason:    ExitUsage,
	apiv1.CodeUnknownRelease: ExitUsage,

	apiv1.CodeEmptyFleet:    ExitRefused,
	apiv1.CodeConflict:      ExitRefused,
	apiv1.CodeSwitchRunning: ExitRefused,
	apiv1.CodeInRelease:     ExitRefused, // a member of a running release, switched alone; or a release over a busy service
	apiv1.CodeReleaseState:  ExitRefused, // e.g. pausing a release that rolls back
	apiv1.CodeNotRunning:    ExitRefused,
	apiv1.CodeWindowClosed:  ExitRefused,
	apiv1.CodeGateFailed:    ExitRefused,
	apiv1.CodeNoPreview:     ExitRefused,
	apiv1.CodeNoAnalysis:    ExitRefused,
	apiv1.CodeNotLeader:     ExitRefused,
	apiv1.CodeNoLeader:      ExitRefused,
	apiv1.CodeNotReady:      ExitRefused,
	apiv1.CodeUnavailable:   ExitRefused,
	// A reload that changed nothing: an invalid file, or a setting that
	// needs a restart.
	apiv1.CodeConfigInvalid:   ExitRefused,
	apiv1.CodeRestartRequired: ExitRefused,

	apiv1.CodeUnauthorized: ExitUnauthorized,
	apiv1.CodeForbidden:    ExitUnauthorized, // the token's scope is too small; the message names the one needed
	apiv1.CodeRateLimited:  ExitUnauthorized, // too many wrong tokens from this client
	apiv1.CodeTooLarge:     ExitUsage,
}

// statusExit maps an answer without a known code (an older or newer
// control plane, a proxy in between) by its HTTP status.
func statusExit(status int) int {
	switch status {
	case http.StatusUnauthorized, http.StatusForbidden, http.StatusTooManyRequests:
		return ExitUnauthorized
	case http.StatusBadRequest, http.StatusNotFound:
		return ExitUsage
	case http.StatusConflict, http.StatusUnprocessableEntity, http.StatusServiceUnavailable:
		return ExitRefused
	}
	return ExitError
}

// Run runs the bg command line and returns its exit code. Errors are
// reported here rather than by cli's ExitErrHandler, which would os.Exit
// mid-run and make the commands untestable in-process.
func Run(args []string, stdout, stderr io.Writer) int {
	app := App()
	app.Writer, app.ErrWriter = stdout, stderr
	return exitCode(stderr, app.Run(permuteArgs(app, args)))
}

func exitCode(stderr io.Writer, err error) int {
	if err == nil {
		return ExitOK
	}
	var coder cli.ExitCoder
	if errors.As(err, &coder) {
		if msg := err.Error(); msg != "" {
			fmt.Fprintln(stderr, msg)
		}
		return coder.ExitCode()
	}
	// Flag parse errors: cli has already printed usage.
	fmt.Fprintln(stderr, "error:", err)
	return ExitUsage
}

// permuteArgs moves a command's flags ahead of its positional arguments:
// urfave/cli v2 stops parsing flags at the first argument, so the documented
// `bg switch web --instant` would otherwise see "--instant" as a second SERVICE.
// Global flags must still come before the command.
func permuteArgs(app *cli.App, args []string) []string {
	// urfave looks for the completion flag only in last place: keep it there.
	if n := len(args); n > 1 && args[n-1] == "--generate-bash-completion" {
		return append(permuteArgs(app, args[:n-1]), args[n-1])
	}
	i := 1
	for i < len(args) && isFlagArg(args[i]) {
		if takesValue(app.Flags, args[i]) {
			i++
		}
		i++
	}
	if i >= len(args) {
		return args
	}
	cmd := app.Command(args[i])
	if cmd == nil {
		return args
	}
	// A command with subcommands (bg release start NAME --wait): the
	// subcommand's flags are the ones to move.
	for len(cmd.Subcommands) > 0 && i+1 < len(args) {
		sub := cmd.Command(args[i+1])
		if sub == nil {
			break
		}
		i, cmd = i+1, sub
	}
	var flags, pos, after []string
	rest := args[i+1:]
	for j := 0; j < len(rest); j++ {
		a := rest[j]
		switch {
		case a == "--":
			after = rest[j:] // everything after "--" stays positional
			j = len(rest)
		case isFlagArg(a):
			flags = append(flags, a)
			if takesValue(cmd.Flags, a) && j+1 < len(rest) {
				j++
				flags = append(flags, rest[j])
			}
		default:
			pos = append(pos, a)
		}
	}
	out := append([]string{}, args[:i+1]...)
	out = append(out, flags...)
	if after != nil {
		// "--" must precede every positional, or the flag parser stops at
		// the first one and passes "--" through as an argument.
		out = append(out, "--")
		after = after[1:]
	}
	out = append(out, pos...)
	return append(out, after...)
}

func isFlagArg(a string) bool { return len(a) > 1 && a[0] == '-' && a != "--" }

// takesValue reports whether flag argument a consumes the next argument.
func takesValue(flags []cli.Flag, a string) bool {
	if strings.Contains(a, "=") {
		return false
	}
	name := strings.TrimLeft(a, "-")
	for _, f := range flags {
		for _, n := range f.Names() {
			if n == name {
				tv, ok := f.(cli.DocGenerationFlag)
				return ok && tv.TakesValue()
			}
		}
	}
	return false
}
