package commands_test

import (
	"context"
	"fmt"
	"log/slog"
	"net/http/httptest"
	"reflect"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/bgctl/bg/cli/commands"
	"github.com/bgctl/bg/controlplane/admin"
	apiv1 "github.com/bgctl/bg/controlplane/api/v1"
	"github.com/bgctl/bg/controlplane/release"
	"github.com/bgctl/bg/controlplane/releases"
	"github.com/bgctl/bg/controlplane/traffic"
	"github.com/bgctl/bg/controlplane/xds"
)

// adminReleases stands behind the real admin.Handler as its release
// executor, so the CLI meets the API's own routes, strict decoding,
// status codes and error codes. Get of the release answers its frames in
// turn; err fails the commands.
type adminReleases struct {
	mu     sync.Mutex
	frames []apiv1.ReleaseStatus
	next   int
	starts []apiv1.ReleaseRequest
	cmds   []string
	err    error
}

func (a *adminReleases) Start(_ context.Context, req apiv1.ReleaseRequest) (apiv1.ReleaseStatus, error) {
	a.mu.Lock()
	defer a.mu.Unlock()
	a.starts = append(a.starts, req)
	return a.frames[0], nil
}

func (a *adminReleases) List(context.Context) ([]apiv1.ReleaseStatus, error) {
	a.mu.Lock()
	defer a.mu.Unlock()
	return []apiv1.ReleaseStatus{a.frames[len(a.frames)-1]}, nil
}

func (a *adminReleases) Get(_ context.Context, id string) (apiv1.ReleaseStatus, error) {
	a.mu.Lock()
	defer a.mu.Unlock()
	if id != a.frames[0].Release.ID {
		return apiv1.ReleaseStatus{}, fmt.Errorf("%w %q", releases.ErrUnknownRelease, id)
	}
	st := a.frames[a.next]
	a.next = min(a.next+1, len(a.frames)-1)
	return st, nil
}

func (a *adminReleases) command(name, id string, cmd apiv1.ReleaseCommand) (apiv1.ReleaseStatus, error) {
	a.mu.Lock()
	a.cmds = append(a.cmds, name+" "+id+" "+cmd.Reason)
	err := a.err
	a.mu.Unlock()
	if err != nil {
		return apiv1.ReleaseStatus{}, err
	}
	return a.Get(context.Background(), id)
}

func (a *adminReleases) Abort(_ context.Context, id string, cmd apiv1.ReleaseCommand) (apiv1.ReleaseStatus, error) {
	return a.command("abort", id, cmd)
}

func (a *adminReleases) Pause(_ context.Context, id string, cmd apiv1.ReleaseCommand) (apiv1.ReleaseStatus, error) {
	return a.command("pause", id, cmd)
}

func (a *adminReleases) Resume(_ context.Context, id string, cmd apiv1.ReleaseCommand) (apiv1.ReleaseStatus, error) {
	return a.command("resume", id, cmd)
}

func adminReleaseServer(t *testing.T, c *fakeController, rs *adminReleases) string {
	t.Helper()
	srv := httptest.NewServer(admin.Handler(c, admin.Options{
		DefaultTimeout: time.Second, Proxies: func() []xds.ProxyInfo { return nil },
		Gatherer: prometheus.NewRegistry(), Log: slog.New(slog.DiscardHandler), Releases: rs,
	}))
	t.Cleanup(srv.Close)
	return srv.Listener.Addr().String()
}

func TestReleaseAgainstAdminAPI(t *testing.T) {
	fastPoll(t)
	rs := &adminReleases{frames: promotedFrames()}
	c := newFake()
	addr := adminReleaseServer(t, c, rs)

	code, out, errOut := run(t, "--addr", addr, "release", "start", "checkout", "--services", "auth,mail,api,web",
		"--to", "green", "--max-parallel", "2", "--force", "--reason", "INC-42", "--wait")
	expect(t, code, out, errOut, commands.ExitOK)
	want := apiv1.ReleaseRequest{Name: "checkout", Services: []string{"auth", "mail", "api", "web"}, To: "green", MaxParallel: 2, Force: true, Reason: "INC-42"}
	if len(rs.starts) != 1 || !reflect.DeepEqual(rs.starts[0], want) {
		t.Errorf("executor got %+v, want %+v", rs.starts, want)
	}
	inOrder(t, out, "auth: switching gen-4", "web: promoted gen-9", "release rel-1 (checkout): promoted")

	for _, args := range [][]string{{"status"}, {"status", "rel-1"}, {"status", "checkout"}, {"history"}, {"history", "-o", "json"}} {
		code, out, errOut = run(t, append([]string{"--addr", addr, "release"}, args...)...)
		expect(t, code, out, errOut, commands.ExitOK)
	}
	code, out, errOut = run(t, "--addr", addr, "release", "status", "rel-9")
	expect(t, code, out, errOut, commands.ExitUsage, `unknown release "rel-9"`)

	code, out, errOut = run(t, "--addr", addr, "release", "resume", "rel-1", "--reason", "after lunch")
	expect(t, code, out, errOut, commands.ExitOK)
	rs.err = fmt.Errorf("pause rel-1: %w", release.ErrRollingBack)
	code, out, errOut = run(t, "--addr", addr, "release", "pause", "rel-1")
	expect(t, code, out, errOut, commands.ExitRefused, "pause rel-1")
	if want := []string{"resume rel-1 after lunch", "pause rel-1 "}; !reflect.DeepEqual(rs.cmds, want) {
		t.Errorf("commands %q, want %q", rs.cmds, want)
	}

	// A member of a running release cannot be switched alone: exit 3
	// naming the release.
	c.opErr = fmt.Errorf("%w: web is a member of release rel-1", traffic.ErrInRelease)
	code, out, errOut = run(t, "--addr", addr, "switch", "web", "--instant", "--to", "green")
	expect(t, code, out, errOut, commands.ExitRefused, "release rel-1")
}
