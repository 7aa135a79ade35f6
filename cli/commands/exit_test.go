package commands

import (
	"errors"
	"io"
	"slices"
	"strings"
	"testing"

	"github.com/urfave/cli/v2"

	"github.com/bgctl/bg/cli/client"
	apiv1 "github.com/bgctl/bg/controlplane/api/v1"
)

func TestPermuteArgs(t *testing.T) {
	app := App()
	cases := []struct{ in, want []string }{
		{[]string{"bg", "switch", "web", "--to", "green", "--instant"}, []string{"bg", "switch", "--to", "green", "--instant", "web"}},
		{[]string{"bg", "--addr", "x:1", "status", "web", "-o", "json"}, []string{"bg", "--addr", "x:1", "status", "-o", "json", "web"}},
		{[]string{"bg", "--token=t", "abort", "web", "--timeout=5s"}, []string{"bg", "--token=t", "abort", "--timeout=5s", "web"}},
		// A flag's value that looks like a service stays with its flag.
		{[]string{"bg", "switch", "--reason", "web", "api", "--instant"}, []string{"bg", "switch", "--reason", "web", "--instant", "api"}},
		{[]string{"bg", "switch", "web", "--timeout", "-5s"}, []string{"bg", "switch", "--timeout", "-5s", "web"}},
		{[]string{"bg", "status"}, []string{"bg", "status"}},
		{[]string{"bg"}, []string{"bg"}},
		{[]string{"bg", "--addr", "x:1"}, []string{"bg", "--addr", "x:1"}},
		{[]string{"bg", "nosuch", "a", "-x"}, []string{"bg", "nosuch", "a", "-x"}},
		// After "--" everything is positional, and "--" must lead the positionals.
		{[]string{"bg", "switch", "web", "--instant", "--", "--weird"}, []string{"bg", "switch", "--instant", "--", "web", "--weird"}},
		{[]string{"bg", "status", "-"}, []string{"bg", "status", "-"}},
		// A subcommand's flags move after the subcommand, values with them.
		{[]string{"bg", "release", "start", "checkout", "--services", "web,api", "--wait"}, []string{"bg", "release", "start", "--services", "web,api", "--wait", "checkout"}},
		{[]string{"bg", "--addr", "x:1", "release", "abort", "rel-1", "--reason", "INC 1"}, []string{"bg", "--addr", "x:1", "release", "abort", "--reason", "INC 1", "rel-1"}},
		{[]string{"bg", "release"}, []string{"bg", "release"}},
		{[]string{"bg", "release", "status", "rel-1", "-o", "json"}, []string{"bg", "release", "status", "-o", "json", "rel-1"}},
		// A value flag with nothing after it is left for the parser to report.
		{[]string{"bg", "switch", "web", "--to"}, []string{"bg", "switch", "--to", "web"}},
	}
	for _, c := range cases {
		if got := permuteArgs(app, c.in); !slices.Equal(got, c.want) {
			t.Errorf("permuteArgs(%q) = %q, want %q", c.in, got, c.want)
		}
	}
}

func TestExitCode(t *testing.T) {
	var stderr strings.Builder
	if got := exitCode(io.Discard, nil); got != ExitOK {
		t.Errorf("nil error → %d", got)
	}
	if got := exitCode(&stderr, cli.Exit("error: boom", ExitRefused)); got != ExitRefused || stderr.String() != "error: boom\n" {
		t.Errorf("exit error → %d, stderr %q", got, stderr.String())
	}
	stderr.Reset()
	if got := exitCode(&stderr, cli.Exit("", ExitNotAcked)); got != ExitNotAcked || stderr.String() != "" {
		t.Errorf("silent exit error → %d, stderr %q", got, stderr.String())
	}
	stderr.Reset()
	if got := exitCode(&stderr, errors.New("flag provided but not defined: -x")); got != ExitUsage || !strings.Contains(stderr.String(), "-x") {
		t.Errorf("plain error → %d, stderr %q", got, stderr.String())
	}
}

func TestAPIExitByCode(t *testing.T) {
	cases := []struct {
		status int
		code   string
		want   int
	}{
		{400, apiv1.CodeNeedsReason, ExitUsage},
		{400, apiv1.CodeBadPlan, ExitUsage},
		{404, apiv1.CodeUnknownService, ExitUsage},
		{409, apiv1.CodeSwitchRunning, ExitRefused},
		{409, apiv1.CodeWindowClosed, ExitRefused},
		{503, apiv1.CodeNoLeader, ExitRefused},
		{404, apiv1.CodeUnknownRelease, ExitUsage},
		{409, apiv1.CodeInRelease, ExitRefused},
		{409, apiv1.CodeReleaseState, ExitRefused},
		{401, apiv1.CodeUnauthorized, ExitUnauthorized},
		// The code decides over the status; without a known code, the status.
		{500, apiv1.CodeNeedsReason, ExitUsage},
		{404, "", ExitUsage},
		{422, "something_new", ExitRefused},
		{401, "", ExitUnauthorized},
		{500, "", ExitError},
	}
	for _, tc := range cases {
		err := apiExit(&client.APIError{StatusCode: tc.status, Body: apiv1.ErrorBody{Error: "boom", Code: tc.code}})
		var coder cli.ExitCoder
		if !errors.As(err, &coder) || coder.ExitCode() != tc.want {
			t.Errorf("HTTP %d %q → %v, want exit %d", tc.status, tc.code, err, tc.want)
		}
	}
}
