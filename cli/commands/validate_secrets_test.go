package commands_test

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/bgctl/bg/cli/commands"
)

// bg validate lists every problem, those about the secret files included,
// and never prints the Consul token or what the secret files hold.
func TestValidateNeverPrintsSecrets(t *testing.T) {
	const consulToken = "consul-SECRET-c0ffee"
	const promPassword = "prom-PASSWORD-beef"
	dir := t.TempDir()
	pw := filepath.Join(dir, "pw")
	if err := os.WriteFile(pw, []byte(promPassword), 0o600); err != nil {
		t.Fatal(err)
	}
	t.Setenv("BG_CONSUL_TOKEN", consulToken)
	path := writeConfig(t, fmt.Sprintf(`
consul:
  address: https://127.0.0.1:8501
  token_file: %[1]s
  tls: {ca_file: %[1]s}
prometheus:
  address: https://127.0.0.1:9091
  http:
    basic_auth: {username: bg}
    tls: {ca_file: %[1]s}
services:
  - name: web
    port: 10000
`, pw))
	code, out, errOut := run(t, "validate", "--config", path)
	expect(t, code, out, errOut, commands.ExitUsage,
		"consul.token_file: set together with consul.token",
		"consul.tls.ca_file: \""+pw+"\": no PEM certificate",
		"prometheus.http.basic_auth.password_file: required",
		"prometheus.http.tls.ca_file:",
	)
	for _, s := range []string{consulToken, promPassword} {
		if strings.Contains(out+errOut, s) {
			t.Errorf("bg validate printed the secret %q:\n%s%s", s, out, errOut)
		}
	}
}
