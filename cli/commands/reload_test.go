package commands_test

import (
	"log/slog"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/bgctl/bg/cli/commands"
	"github.com/bgctl/bg/controlplane/admin"
	apiv1 "github.com/bgctl/bg/controlplane/api/v1"
	"github.com/bgctl/bg/controlplane/xds"
)

// bg reload reports the control plane's answer: exit 0 when the file is in
// force, 3 with every reason when the running config stays.
func TestReloadCommand(t *testing.T) {
	answer := apiv1.ReloadAttempt{Result: apiv1.ReloadSuccess, Trigger: apiv1.TriggerAPI, Change: "added cart", Generation: 3, Hash: "9a54d7dff7d929811e441c9e"}
	srv := httptest.NewServer(admin.Handler(newFake(), admin.Options{
		DefaultTimeout: time.Second, Proxies: func() []xds.ProxyInfo { return nil },
		Gatherer: prometheus.NewRegistry(), Log: slog.New(slog.DiscardHandler),
		Reload: func() apiv1.ReloadAttempt { return answer },
	}))
	t.Cleanup(srv.Close)
	addr := srv.Listener.Addr().String()

	code, out, errOut := run(t, "--addr", addr, "reload")
	expect(t, code, out, errOut, commands.ExitOK)
	if want := "config reloaded: added cart (generation 3, sha256 9a54d7dff7d9)\n"; out != want {
		t.Errorf("stdout %q, want %q", out, want)
	}

	answer = apiv1.ReloadAttempt{Result: apiv1.ReloadRefused, Trigger: apiv1.TriggerAPI, Generation: 3,
		Error: "consul.kv_prefix cannot change without a restart\nxds.listen cannot change without a restart"}
	code, out, errOut = run(t, "--addr", addr, "reload")
	expect(t, code, out, errOut, commands.ExitRefused)
	for _, want := range []string{"config reload refused", "generation 3", "  consul.kv_prefix cannot change without a restart\n  xds.listen cannot change"} {
		if !strings.Contains(errOut, want) {
			t.Errorf("stderr lacks %q:\n%s", want, errOut)
		}
	}

	answer.Result = apiv1.ReloadInvalid
	code, out, errOut = run(t, "--addr", addr, "reload", "-o", "json")
	expect(t, code, out, errOut, commands.ExitRefused)
	if !strings.Contains(out, `"result": "invalid"`) || !strings.Contains(out, `"code": "config_invalid"`) {
		t.Errorf("json: %s", out)
	}
}

// bg status shows the config in force, a failed reload, and a removed
// service still served.
func TestStatusShowsReload(t *testing.T) {
	c := newFake()
	at := time.Date(2026, 12, 1, 4, 0, 0, 0, time.UTC)
	c.status.ConfigNote = "removed from config; still served until its switch ends"
	c.status.Reload = &apiv1.ReloadStatus{Generation: 2, Hash: "4c36e665ddca679bd35f", Since: at, Watch: true,
		Last: &apiv1.ReloadAttempt{Result: apiv1.ReloadInvalid, Trigger: apiv1.TriggerWatch, At: at.Add(time.Minute), Error: "bogus_key: unknown key"}}
	addr := server(t, c, "")
	code, out, errOut := run(t, "--addr", addr, "status")
	expect(t, code, out, errOut, commands.ExitOK)
	for _, want := range []string{
		"web: removed from config; still served until its switch ends\n",
		"config: generation 2 (sha256 4c36e665ddca) since 2026-12-01T04:00:00Z; watching the file\n",
		"config: last reload (watch) at 2026-12-01T04:01:00Z: invalid; the running config stays in force:\n  bogus_key: unknown key\n",
	} {
		if !strings.Contains(out, want) {
			t.Errorf("status lacks %q:\n%s", want, out)
		}
	}
}
