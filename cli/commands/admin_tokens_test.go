package commands_test

import (
	"bytes"
	"encoding/pem"
	"log/slog"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/bgctl/bg/cli/commands"
	"github.com/bgctl/bg/controlplane/admin"
	"github.com/bgctl/bg/controlplane/config"
	"github.com/bgctl/bg/controlplane/xds"
)

// The CLI against an https:// admin API with scoped tokens: --ca-file (or
// BG_CA_FILE) verifies it, and 403 and 429 exit 5 with the server's message.
func TestCLIHTTPSAndScopes(t *testing.T) {
	_, c := coreServer(t, nil)
	creds := []config.AdminCredential{
		{Name: "dash", Scope: config.ScopeRead, SHA256: config.HashToken("read-tok")},
		{Name: "ci", Scope: config.ScopeOperate, SHA256: config.HashToken("op-tok")},
	}
	srv := httptest.NewTLSServer(admin.Handler(c, admin.Options{Tokens: creds, DefaultTimeout: time.Second,
		Proxies: func() []xds.ProxyInfo { return nil }, Gatherer: prometheus.NewRegistry(), Log: slog.New(slog.DiscardHandler)}))
	t.Cleanup(srv.Close)
	caFile := filepath.Join(t.TempDir(), "ca.pem")
	if err := os.WriteFile(caFile, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: srv.Certificate().Raw}), 0o600); err != nil {
		t.Fatal(err)
	}
	for _, k := range []string{"BG_ADDR", "BG_TOKEN", "BG_CA_FILE", "BG_CERT", "BG_KEY"} {
		t.Setenv(k, "")
	}
	run := func(args ...string) (int, string) {
		var out, errOut bytes.Buffer
		code := commands.Run(append([]string{"bg", "--addr", srv.URL}, args...), &out, &errOut)
		return code, out.String() + errOut.String()
	}
	if code, out := run("--ca-file", caFile, "--token", "read-tok", "status", "web"); code != 0 {
		t.Fatalf("status over https with --ca-file: exit %d %s", code, out)
	}
	if code, out := run("--token", "read-tok", "status", "web"); code != commands.ExitUnreachable || !strings.Contains(out, "certificate") {
		t.Fatalf("without the CA: exit %d %s", code, out)
	}
	t.Setenv("BG_CA_FILE", caFile)
	if code, out := run("--token", "read-tok", "status", "web"); code != 0 {
		t.Fatalf("with BG_CA_FILE: exit %d %s", code, out)
	}
	code, out := run("--token", "read-tok", "switch", "web", "--to", "green", "--instant")
	if code != commands.ExitUnauthorized || !strings.Contains(out, `token "dash" has scope read`) || !strings.Contains(out, "needs scope operate") {
		t.Fatalf("switch with a read token: exit %d %s", code, out)
	}
	code, out = run("--token", "op-tok", "switch", "web", "--to", "green", "--force", "--reason", "x")
	if code != commands.ExitUnauthorized || !strings.Contains(out, "needs scope override (force)") {
		t.Fatalf("forced switch with an operate token: exit %d %s", code, out)
	}
	if code, out := run("--token", "op-tok", "switch", "web", "--to", "green", "--instant"); code != 0 {
		t.Fatalf("switch with an operate token: exit %d %s", code, out)
	}
	for i := 0; i < 10; i++ {
		if code, out := run("--token", "nope", "status", "web"); code != commands.ExitUnauthorized || !strings.Contains(out, "missing or wrong token") {
			t.Fatalf("wrong token %d: exit %d %s", i, code, out)
		}
	}
	if code, out := run("--token", "read-tok", "status", "web"); code != commands.ExitUnauthorized || !strings.Contains(out, "too many failed authentications") {
		t.Fatalf("after 10 wrong tokens: exit %d %s", code, out)
	}
	if code, out := run("--cert", caFile, "status", "web"); code != commands.ExitUsage || !strings.Contains(out, "--cert needs --key") {
		t.Fatalf("--cert alone: exit %d %s", code, out)
	}
}
