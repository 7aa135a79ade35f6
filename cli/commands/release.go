package commands

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"slices"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/urfave/cli/v2"

	"github.com/bgctl/bg/cli/client"
	apiv1 "github.com/bgctl/bg/controlplane/api/v1"
	"github.com/bgctl/bg/controlplane/model"
	"github.com/bgctl/bg/controlplane/release"
)

// releasePollEvery is how often `release … --wait` reads the release.
var releasePollEvery = 500 * time.Millisecond

// releaseRetryFor is how long `release … --wait` keeps reading through
// answers that a leader change or a restart explains (no answer, 502,
// 503, 504) before it reports the error.
var releaseRetryFor = 30 * time.Second

// transient reports an error a leader change or a restart explains.
func transient(err error) bool {
	var unreachable *client.UnreachableError
	var apiErr *client.APIError
	switch {
	case errors.As(err, &unreachable):
		return true
	case errors.As(err, &apiErr):
		switch apiErr.StatusCode {
		case http.StatusBadGateway, http.StatusServiceUnavailable, http.StatusGatewayTimeout:
			return true
		}
	}
	return false
}

func releaseCommand() *cli.Command {
	return &cli.Command{
		Name:      "release",
		Usage:     "switch several services together, providers before consumers, and roll them back together",
		UsageText: "bg release start|status|abort|pause|resume|history [options] [NAME|ID]",
		Description: `A release moves each of its services to its idle colour (or --to) with the
service's own plan. Providers go before their consumers (depends_on); when one
service fails, the others are aborted or rolled back, consumers first. The
control plane decides; these commands ask and report.

A release is named by its ID; status, abort, pause and resume also accept a
release's name (the newest release of that name; for a command, the one still
running).

Examples:
   bg release start checkout --services web,api,auth --to green --wait
   bg release start checkout                  # a configured group (releases[].name)
   bg release start nightly --all --max-parallel 4 --wait -o json > report.json
   bg release status                          # every release
   bg release status rel-7                    # one release, member by member
   bg release pause rel-7; bg release resume rel-7 --wait
   bg release abort rel-7 --reason "INC-42"
   bg release history -o json`,
		Subcommands: []*cli.Command{releaseStartCommand(), releaseStatusCommand(),
			releaseOpCommand("abort", "stop a release: abort its running switches and roll its promoted services back, consumers first", (*client.Client).AbortRelease, true),
			releaseOpCommand("pause", "stop a release from starting services (running switches go on)", (*client.Client).PauseRelease, false),
			releaseOpCommand("resume", "let a paused release start services again", (*client.Client).ResumeRelease, true),
			releaseHistoryCommand()},
		Action: func(c *cli.Context) error {
			if c.NArg() == 0 {
				return cli.ShowSubcommandHelp(c)
			}
			return cli.Exit(fmt.Sprintf("error: unknown release command %q: want start, status, abort, pause, resume or history", c.Args().First()), ExitUsage)
		},
	}
}

func waitFlags(what string) []cli.Flag {
	return []cli.Flag{
		&cli.BoolFlag{Name: "wait", Usage: "follow the release until it is promoted, rolled back or aborted" + what},
		&cli.DurationFlag{Name: "timeout", Aliases: []string{"wait-timeout"}, Value: time.Hour, Usage: "with --wait: give up after this long (exit 12)"},
	}
}

func releaseStartCommand() *cli.Command {
	return &cli.Command{
		Name:      "start",
		Usage:     "start a release of several services",
		ArgsUsage: "NAME",
		Description: `Choose the services with exactly one of --services, --all or --group; with none,
NAME is a configured group (releases[].name). --wait follows the release and
exits 0 when every service is promoted, 10 when it rolled back (naming the
service and why), 11 when aborted, 12 after --timeout; -o json then prints the
final release.`,
		Flags: append([]cli.Flag{
			&cli.StringFlag{Name: "services", Usage: "the services to release, comma-separated: web,api,auth"},
			&cli.BoolFlag{Name: "all", Usage: "release every configured service"},
			&cli.StringFlag{Name: "group", Usage: "release a configured group (releases[].name)"},
			&cli.StringFlag{Name: "to", Usage: "blue or green for every service (default: each service's idle colour)"},
			&cli.IntFlag{Name: "max-parallel", Usage: "services switching at once", DefaultText: "release.max_parallel"},
			&cli.BoolFlag{Name: "force", Usage: "override what a forced switch overrides (deploy windows, gates) for every service; needs --reason"},
			&cli.StringFlag{Name: "reason", Usage: "recorded once with the release"},
			outputFlag(),
		}, waitFlags("")...),
		Action: runReleaseStart,
	}
}

func runReleaseStart(c *cli.Context) error {
	if err := checkOutput(c); err != nil {
		return err
	}
	req := apiv1.ReleaseRequest{Group: c.String("group"), All: c.Bool("all"), Reason: c.String("reason"), Force: c.Bool("force")}
	switch {
	case c.NArg() > 1:
		return cli.Exit(fmt.Sprintf("error: expected one release NAME, got %d arguments (list services with --services a,b,c)", c.NArg()), ExitUsage)
	case c.NArg() == 1:
		req.Name = c.Args().First()
		if strings.TrimSpace(req.Name) == "" {
			return cli.Exit("error: the release NAME is empty", ExitUsage)
		}
	case req.Group == "":
		return cli.Exit("error: expected a release NAME (a configured group, or name the services with --services, --all or --group)", ExitUsage)
	}
	if c.IsSet("services") {
		var err error
		if req.Services, err = parseServices(c.String("services")); err != nil {
			return cli.Exit("error: --services: "+err.Error(), ExitUsage)
		}
	}
	if c.IsSet("group") && strings.TrimSpace(req.Group) == "" {
		return cli.Exit("error: --group: empty group name", ExitUsage)
	}
	chosen := 0
	for _, set := range []bool{c.IsSet("services"), req.All, c.IsSet("group")} {
		if set {
			chosen++
		}
	}
	switch {
	case chosen > 1:
		return cli.Exit("error: choose the services with one of --services, --all or --group", ExitUsage)
	case chosen == 0:
		req.Group = req.Name // NAME is a configured group
	}
	if to := c.String("to"); to != "" {
		if _, err := model.ParseColor(to); err != nil {
			return cli.Exit("error: --to: "+err.Error(), ExitUsage)
		}
		req.To = to
	}
	if c.IsSet("max-parallel") {
		if req.MaxParallel = c.Int("max-parallel"); req.MaxParallel < 1 {
			return cli.Exit(fmt.Sprintf("error: --max-parallel must be at least 1, not %d", req.MaxParallel), ExitUsage)
		}
	}
	if req.Force && strings.TrimSpace(req.Reason) == "" {
		return cli.Exit("error: --force needs --reason: say why this release overrides windows and gates", ExitUsage)
	}
	if err := checkWaitTimeout(c); err != nil {
		return err
	}
	cl := apiClient(c)
	st, err := cl.StartRelease(c.Context, req)
	if err != nil {
		return apiExit(err)
	}
	if c.Bool("wait") {
		return followRelease(c, cl, st)
	}
	if c.String("output") == "json" {
		writeJSON(c.App.Writer, st)
		return nil
	}
	r := st.Release
	fmt.Fprintf(c.App.Writer, "release %s started: %d services in %d levels: %s\n", releaseName(r), len(r.Members), len(st.Order), orderLine(st.Order))
	fmt.Fprintf(c.App.Writer, "follow it with: bg release status %s\n", r.ID)
	return nil
}

// parseServices splits a comma-separated list; empty names and names
// listed twice are errors.
func parseServices(s string) ([]string, error) {
	var out []string
	for _, f := range strings.Split(s, ",") {
		f = strings.TrimSpace(f)
		switch {
		case f == "":
			return nil, fmt.Errorf("%q has an empty service name; list services like web,api,auth", s)
		case slices.Contains(out, f):
			return nil, fmt.Errorf("%q is listed twice", f)
		}
		out = append(out, f)
	}
	return out, nil
}

func checkWaitTimeout(c *cli.Context) error {
	if c.Bool("wait") && c.Duration("timeout") <= 0 {
		return cli.Exit("error: --timeout must be positive", ExitUsage)
	}
	return nil
}

// releaseRefArg is the one ID (or NAME) argument.
func releaseRefArg(c *cli.Context) (string, error) {
	if c.NArg() != 1 || strings.TrimSpace(c.Args().First()) == "" {
		return "", cli.Exit(fmt.Sprintf("error: expected exactly one release ID, got %d arguments", c.NArg()), ExitUsage)
	}
	return c.Args().First(), nil
}

func releaseOpCommand(name, usage string, send func(*client.Client, context.Context, string, apiv1.ReleaseCommand) (apiv1.ReleaseStatus, error), wait bool) *cli.Command {
	flags := []cli.Flag{&cli.StringFlag{Name: "reason", Usage: "recorded with the release"}, outputFlag()}
	desc := "Example:\n   bg release " + name + " rel-7 --reason 'INC-42'"
	if wait {
		flags = append(flags, waitFlags("; exits as release start --wait does")...)
		desc += "\n   bg release " + name + " rel-7 --wait"
	}
	return &cli.Command{
		Name: name, Usage: usage, ArgsUsage: "ID", Description: desc, Flags: flags,
		Action: func(c *cli.Context) error {
			ref, err := releaseRefArg(c)
			if err != nil {
				return err
			}
			if err := checkOutput(c); err != nil {
				return err
			}
			if err := checkWaitTimeout(c); err != nil {
				return err
			}
			cl := apiClient(c)
			cmd := apiv1.ReleaseCommand{Reason: c.String("reason")}
			st, err := send(cl, c.Context, ref, cmd)
			if client.IsNotFound(err) {
				// Not an ID: perhaps the name of a running release.
				id, rerr := runningReleaseNamed(c.Context, cl, ref)
				if rerr != nil {
					return rerr
				}
				if id != "" {
					st, err = send(cl, c.Context, id, cmd)
				}
			}
			if err != nil {
				return apiExit(err)
			}
			if c.Bool("wait") {
				return followRelease(c, cl, st)
			}
			if c.String("output") == "json" {
				writeJSON(c.App.Writer, st)
				return nil
			}
			fmt.Fprintln(c.App.Writer, releaseHeadline(st.Release))
			return nil
		},
	}
}

// runningReleaseNamed returns the ID of the release named name that has
// not ended ("" if none); more than one is a usage error.
func runningReleaseNamed(ctx context.Context, cl *client.Client, name string) (string, error) {
	list, err := cl.Releases(ctx)
	if err != nil {
		return "", apiExit(err)
	}
	var ids []string
	for _, st := range list {
		if st.Release.Name == name && !st.Release.Phase.Ended() {
			ids = append(ids, st.Release.ID)
		}
	}
	if len(ids) > 1 {
		return "", cli.Exit(fmt.Sprintf("error: %d running releases are named %q; name one by ID: %s", len(ids), name, strings.Join(ids, ", ")), ExitUsage)
	}
	if len(ids) == 0 {
		return "", nil
	}
	return ids[0], nil
}

func releaseStatusCommand() *cli.Command {
	return &cli.Command{
		Name:      "status",
		Usage:     "show one release service by service, or every release",
		ArgsUsage: "[ID]",
		Description: `With an ID (or a release's name: its newest release), shows the start order and,
for each service, its dependency level, phase, split, switch and why. Without,
lists every release, newest first.

Examples:
   bg release status
   bg release status rel-7 -o json | jq -r '.release.members[] | "\(.service) \(.phase)"'`,
		Flags: []cli.Flag{outputFlag()},
		Action: func(c *cli.Context) error {
			if err := checkOutput(c); err != nil {
				return err
			}
			cl := apiClient(c)
			if c.NArg() == 0 {
				list, err := cl.Releases(c.Context)
				if err != nil {
					return apiExit(err)
				}
				return printReleases(c, list, "no releases")
			}
			ref, err := releaseRefArg(c)
			if err != nil {
				return err
			}
			st, err := cl.Release(c.Context, ref)
			if client.IsNotFound(err) {
				if list, lerr := cl.Releases(c.Context); lerr == nil {
					// Newest first: the newest release of that name.
					if i := slices.IndexFunc(list, func(s apiv1.ReleaseStatus) bool { return s.Release.Name == ref }); i >= 0 {
						st, err = list[i], nil
					}
				}
			}
			if err != nil {
				return apiExit(err)
			}
			if c.String("output") == "json" {
				writeJSON(c.App.Writer, st)
				return nil
			}
			printRelease(c.App.Writer, st)
			return nil
		},
	}
}

func releaseHistoryCommand() *cli.Command {
	return &cli.Command{
		Name:        "history",
		Usage:       "list ended releases: promoted, rolled back or aborted, newest first (the newest release.keep are kept, 50 by default)",
		Description: "Example:\n   bg release history -o json | jq -r '.[] | select(.release.phase == \"rolled_back\") | .release.reason'",
		Flags:       []cli.Flag{outputFlag()},
		Action: func(c *cli.Context) error {
			if err := checkOutput(c); err != nil {
				return err
			}
			if c.NArg() != 0 {
				return cli.Exit("error: release history takes no arguments", ExitUsage)
			}
			list, err := apiClient(c).Releases(c.Context)
			if err != nil {
				return apiExit(err)
			}
			ended := slices.DeleteFunc(list, func(s apiv1.ReleaseStatus) bool { return !s.Release.Phase.Ended() })
			return printReleases(c, ended, "no ended releases")
		},
	}
}

// printReleases prints a list of releases as JSON (an array, never null)
// or as a table.
func printReleases(c *cli.Context, list []apiv1.ReleaseStatus, none string) error {
	w := c.App.Writer
	if c.String("output") == "json" {
		if list == nil {
			list = []apiv1.ReleaseStatus{}
		}
		writeJSON(w, list)
		return nil
	}
	if len(list) == 0 {
		fmt.Fprintln(w, none)
		return nil
	}
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "ID\tNAME\tPHASE\tSERVICES\tCREATED\tENDED\tWHY")
	for _, st := range list {
		r := st.Release
		promoted := 0
		for _, m := range r.Members {
			if m.Phase == release.MemberPromoted {
				promoted++
			}
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%d/%d promoted\t%s\t%s\t%s\n", cell(r.ID), cell(r.Name), r.Phase, promoted, len(r.Members),
			stamp(r.CreatedAt), stamp(r.EndedAt), cell(releaseWhy(r)))
	}
	return tw.Flush()
}

// printRelease shows one release member by member.
func printRelease(w io.Writer, st apiv1.ReleaseStatus) {
	r := st.Release
	fmt.Fprintln(w, releaseHeadline(r))
	fmt.Fprintf(w, "created %s, started %s, ended %s; max parallel %d; generation %d\n",
		stamp(r.CreatedAt), stamp(r.StartedAt), stamp(r.EndedAt), r.MaxParallel, r.Generation)
	if r.Force {
		fmt.Fprintln(w, "OVERRIDE (--force): "+cell(r.ForceReason))
	}
	fmt.Fprintln(w, "order: "+orderLine(st.Order))
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "SERVICE\tLEVEL\tDEPENDS ON\tMOVE\tPHASE\tSPLIT\tSWITCH\tWHY")
	for _, m := range r.Members {
		deps := "-"
		if len(m.DependsOn) > 0 {
			deps = strings.Join(m.DependsOn, ",")
		}
		fmt.Fprintf(tw, "%s\t%d\t%s\t%s→%s\t%s\t%s\t%s\t%s\n", cell(m.Service), m.Level, cell(deps), m.From, m.To,
			m.Phase, splitOf(st, m.Service), cell(switchIDs(m)), cell(memberWhy(m)))
	}
	_ = tw.Flush()
}

// releaseName is "ID (NAME)", or the ID alone when they are the same.
func releaseName(r release.Release) string {
	if r.Name == "" || r.Name == r.ID {
		return cell(r.ID)
	}
	return fmt.Sprintf("%s (%s)", cell(r.ID), cell(r.Name))
}

// releaseHeadline is "release ID (NAME): PHASE: why".
func releaseHeadline(r release.Release) string {
	line := fmt.Sprintf("release %s: %s", releaseName(r), r.Phase)
	if why := releaseWhy(r); why != "-" {
		line += ": " + cell(why)
	}
	return line
}

// releaseWhy is the release's reason, naming the failed member and the
// cause when the reason does not already.
func releaseWhy(r release.Release) string {
	why := r.Reason
	if r.Member != "" && !strings.HasPrefix(why, r.Member+":") {
		why = strings.TrimSuffix(r.Member+": "+why, ": ")
	}
	if r.Cause != "" && !strings.Contains(why, string(r.Cause)) {
		why = strings.TrimPrefix(why+" [cause "+string(r.Cause)+"]", " ")
	}
	if why == "" {
		return "-"
	}
	return why
}

func memberWhy(m release.Member) string {
	var parts []string
	if m.Reason != "" {
		parts = append(parts, m.Reason)
	}
	if m.Cause != "" && !strings.Contains(m.Reason, string(m.Cause)) {
		parts = append(parts, "cause "+string(m.Cause))
	}
	if h := m.Window; h != nil {
		hold := "held by its deploy window"
		if !h.Until.IsZero() {
			hold += " until " + stamp(h.Until)
		}
		if h.Reason != "" {
			hold += " (" + h.Reason + ")"
		}
		parts = append(parts, hold)
	}
	if len(parts) == 0 {
		return "-"
	}
	return strings.Join(parts, "; ")
}

func switchIDs(m release.Member) string {
	s := m.SwitchID
	if s == "" {
		s = "-"
	}
	if m.RollbackID != "" {
		s += ", back " + m.RollbackID
	}
	return s
}

func splitOf(st apiv1.ReleaseStatus, svc string) string {
	w, ok := st.Weights[svc]
	if !ok {
		return "-"
	}
	return fmt.Sprintf("blue %d%% green %d%%", w.Blue, w.Green)
}

// orderLine is the start order, levels joined by arrows: "auth, db → api → web".
func orderLine(order [][]string) string {
	levels := make([]string, 0, len(order))
	for _, l := range order {
		levels = append(levels, strings.Join(l, ", "))
	}
	if len(levels) == 0 {
		return "-"
	}
	return cell(strings.Join(levels, " → "))
}

func stamp(t time.Time) string {
	if t.IsZero() {
		return "-"
	}
	return t.UTC().Format(time.RFC3339)
}

// followRelease polls a release every releasePollEvery, prints a line for
// each change (the release's phase, each service's phase, switch, split or
// window hold) and exits as `switch --wait` does: 0 promoted, 10 rolled
// back, 11 aborted, 12 still running after --timeout. With -o json it
// prints only the last release read.
func followRelease(c *cli.Context, cl *client.Client, st apiv1.ReleaseStatus) error {
	timeout := c.Duration("timeout")
	ctx, cancel := context.WithTimeout(c.Context, timeout)
	defer cancel()
	text := c.String("output") != "json"
	id := st.Release.ID
	w := c.App.Writer
	say := func(line string) { fmt.Fprintln(w, time.Now().Format("15:04:05"), line) }
	lastHead, lastMember := "", map[string]string{}
	var failingSince time.Time
	lastErr := ""
	for first := true; ; first = false {
		if text {
			// The release's line first at the start, then after its
			// members' (the outcome is the last line).
			head := releaseHeadline(st.Release)
			if first {
				say(fmt.Sprintf("release %s: order %s", releaseName(st.Release), orderLine(st.Order)))
				say(head)
				lastHead = head
			}
			for _, m := range st.Release.Members {
				line := memberLine(st, m)
				quiet := first && m.Phase == release.MemberWaiting && m.Window == nil
				if line != lastMember[m.Service] && !quiet {
					say(line)
				}
				lastMember[m.Service] = line
			}
			if head != lastHead {
				say(head)
				lastHead = head
			}
		}
		if st.Release.Phase.Ended() {
			return finishRelease(c, st)
		}
		select {
		case <-ctx.Done():
			if !text {
				writeJSON(w, st)
			}
			return cli.Exit(fmt.Sprintf("error: release %s still %s after %s", id, st.Release.Phase, timeout), ExitTimedOut)
		case <-time.After(releasePollEvery):
		}
		next, err := cl.Release(ctx, id)
		if err != nil {
			if ctx.Err() != nil {
				continue // reported as a timeout above
			}
			// A leader change or a restarted replica: the release goes
			// on; keep reading for a while before giving up.
			if !transient(err) {
				return apiExit(err)
			}
			if failingSince.IsZero() {
				failingSince = time.Now()
			}
			if time.Since(failingSince) > releaseRetryFor {
				return apiExit(err)
			}
			if text && err.Error() != lastErr {
				say(fmt.Sprintf("reading release %s failed, retrying for up to %s (the release goes on in the control plane): %v", id, releaseRetryFor, err))
			}
			lastErr = err.Error()
			continue
		}
		failingSince, lastErr = time.Time{}, ""
		st = next
	}
}

// memberLine is one service's line of --wait output.
func memberLine(st apiv1.ReleaseStatus, m release.Member) string {
	line := fmt.Sprintf("  %s: %s", cell(m.Service), m.Phase)
	if ids := switchIDs(m); ids != "-" {
		line += " " + cell(ids)
	}
	if m.Phase.Moving() {
		if s := splitOf(st, m.Service); s != "-" {
			line += ": " + s
		}
	}
	if why := memberWhy(m); why != "-" {
		line += " (" + cell(why) + ")"
	}
	return line
}

// finishRelease maps how a release ended to an exit code.
func finishRelease(c *cli.Context, st apiv1.ReleaseStatus) error {
	if c.String("output") == "json" {
		writeJSON(c.App.Writer, st)
	}
	r := st.Release
	switch r.Phase {
	case release.Promoted:
		return nil
	case release.RolledBack:
		return cli.Exit(fmt.Sprintf("release %s rolled back: %s", releaseName(r), cell(releaseWhy(r))), ExitRolledBack)
	case release.Aborted:
		return cli.Exit(fmt.Sprintf("release %s aborted: %s", releaseName(r), cell(releaseWhy(r))), ExitAborted)
	}
	return cli.Exit(fmt.Sprintf("release %s ended as %s", releaseName(r), r.Phase), ExitError)
}
