package commands_test

import (
	"strings"
	"testing"
	"time"

	apiv1 "github.com/bgctl/bg/controlplane/api/v1"

	"github.com/bgctl/bg/cli/commands"
)

// A notification target whose last delivery failed shows in bg status.
func TestStatusShowsNotificationFailures(t *testing.T) {
	c := newFake()
	addr := server(t, c, "")
	code, out, errOut := run(t, "--addr", addr, "status", "web")
	expect(t, code, out, errOut, commands.ExitOK)
	if strings.Contains(out, "notification") {
		t.Errorf("no failure yet: %q", out)
	}
	c.status.Notifications = []apiv1.NotificationStatus{{Name: "ops", LastError: "HTTP 403: invalid_token", At: time.Date(2026, 12, 1, 2, 0, 0, 0, time.UTC)}}
	code, out, errOut = run(t, "--addr", addr, "status", "web")
	expect(t, code, out, errOut, commands.ExitOK)
	if want := "notification ops: last delivery failed at 2026-12-01T02:00:00Z: HTTP 403: invalid_token\n"; !strings.HasSuffix(out, want) {
		t.Errorf("status lacks %q:\n%s", want, out)
	}
}
