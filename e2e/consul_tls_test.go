package e2e

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/hashicorp/consul/api"

	"github.com/bgctl/bg/cli/commands"
	"github.com/bgctl/bg/e2e/harness"
)

// bgConsulPolicy is the ACL policy bg needs, as README "Consul and
// Prometheus" documents it: read every service and node (membership),
// write its KV prefix (traffic state, history, the leader lock, ACK
// reports) and sessions (the lock and the ACK reports), and register
// its own replica service with its TTL check (leader election).
const bgConsulPolicy = `
service_prefix "" { policy = "read" }
node_prefix "" { policy = "read" }
key_prefix "bg/" { policy = "write" }
session_prefix "" { policy = "write" }
service "bg-control-plane" { policy = "write" }
`

// bgNoStateWritePolicy may hold the leader lock and report ACKs but not
// write traffic state or history: every switch must fail on Consul's
// refusal, clearly and at once.
const bgNoStateWritePolicy = `
service_prefix "" { policy = "read" }
node_prefix "" { policy = "read" }
key_prefix "bg/" { policy = "read" }
key "bg/leader" { policy = "write" }
key_prefix "bg/acks/" { policy = "write" }
session_prefix "" { policy = "write" }
service "bg-control-plane" { policy = "write" }
`

// consulToken creates a policy from rules and a token holding only it.
func consulToken(t *testing.T, c *api.Client, name, rules string) string {
	t.Helper()
	p, _, err := c.ACL().PolicyCreate(&api.ACLPolicy{Name: name, Rules: rules}, nil)
	if err != nil {
		t.Fatalf("create policy %s: %v", name, err)
	}
	// Raw: api's ACLToken (v1.34) carries fields Consul 1.12 refuses.
	body := map[string]any{"Description": name, "Policies": []map[string]string{{"ID": p.ID}}}
	var tok struct{ SecretID string }
	if _, err := c.Raw().Write("/v1/acl/token", body, &tok, nil); err != nil || tok.SecretID == "" {
		t.Fatalf("create token %s: %v", name, err)
	}
	return tok.SecretID
}

// bg on a Consul agent with TLS on its HTTPS port (a generated CA, client
// certificates required) and ACLs with default deny: with a token scoped
// to bg's policy it becomes ready and switches; with one that cannot write
// traffic state the switch fails at once with Consul's refusal.
func TestConsulTLS(t *testing.T) {
	ca := harness.NewTestCA(t, "bg e2e consul CA")
	server := ca.Issue("consul-server", "server.dc1.consul", "localhost", "127.0.0.1")
	client := ca.Issue("bg-client", "bg")
	consul := harness.StartConsulWith(t, harness.ConsulOptions{
		TLS:             &harness.ConsulTLS{CAFile: ca.CAFile, CertFile: server.CertFile, KeyFile: server.KeyFile},
		ManagementToken: "root",
	})
	s := &stack{t: t, consul: consul, bin: harness.BuildBG(t), backends: map[string]*harness.Backend{}, token: "e2e-secret"}

	// Default deny: no token, no catalog.
	anon, err := api.NewClient(&api.Config{Address: consul.HTTPAddr()})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := anon.KV().Put(&api.KVPair{Key: "bg/x", Value: []byte("1")}, nil); err == nil || !strings.Contains(err.Error(), "Permission denied") {
		t.Fatalf("anonymous KV write: %v, want Permission denied (ACLs not on?)", err)
	}

	full := consulToken(t, consul.Client(), "bg", bgConsulPolicy)
	noState := consulToken(t, consul.Client(), "bg-no-state-write", bgNoStateWritePolicy)
	for i := 1; i <= 2; i++ {
		s.addBackend("blue", i, "v1")
		s.addBackend("green", i, "v2")
	}
	s.xdsAddr = fmt.Sprintf("127.0.0.1:%d", harness.FreePort(t))
	s.admin = fmt.Sprintf("127.0.0.1:%d", harness.FreePort(t))
	tlsYAML := fmt.Sprintf("tls: {ca_file: %s, cert_file: %s, key_file: %s, server_name: server.dc1.consul}", ca.CAFile, client.CertFile, client.KeyFile)
	bc := harness.BGConfig{ConsulAddr: "https://" + consul.HTTPSAddr(), XDSAddr: s.xdsAddr, AdminAddr: s.admin, Token: s.token, Service: service,
		ConsulYAML: tlsYAML}

	t.Run("scoped token over TLS: ready, switches", func(t *testing.T) {
		path := harness.WriteBGConfig(t, bc)
		s.bg = harness.StartBG(t, harness.BGOptions{Bin: s.bin, Config: path, AdminAddr: s.admin, Token: s.token,
			Env: []string{"BG_CONSUL_TOKEN=" + full}})
		s.startClients(1)
		s.expectAll("blue", 30*time.Second)
		s.flip(t, "green", "switch", service, "--to", "green", "--instant")
		if st := s.status(); st.Weights.Green != 100 || st.Fleets["green"].Healthy != 2 {
			t.Fatalf("status = %+v", st)
		}
		// Stored in Consul, through the ACLs.
		kv, _, err := consul.Client().KV().Get("bg/services/"+service+"/traffic", nil)
		if err != nil || kv == nil || !strings.Contains(string(kv.Value), "green") {
			t.Fatalf("traffic state in Consul: %v %v", kv, err)
		}
		if strings.Contains(s.bg.Log(), full) {
			t.Error("bg logged its Consul token")
		}
		if !strings.Contains(s.bg.Log(), "scheme=https") {
			t.Errorf("bg's start line does not say it uses https:\n%s", firstLines(s.bg.Log(), 5))
		}
		s.bg.Stop()
	})

	t.Run("token without state write: switch fails clearly", func(t *testing.T) {
		tokenFile := filepath.Join(t.TempDir(), "token")
		if err := os.WriteFile(tokenFile, []byte(noState+"\n"), 0o600); err != nil {
			t.Fatal(err)
		}
		c := bc
		c.ConsulYAML = tlsYAML + "\ntoken_file: " + tokenFile
		s.bg = harness.StartBG(t, harness.BGOptions{Bin: s.bin, Config: harness.WriteBGConfig(t, c), AdminAddr: s.admin, Token: s.token})
		if st := s.status(); st.Weights.Green != 100 {
			t.Fatalf("status = %+v, want the stored split", st)
		}
		start := time.Now()
		out, errOut, code := s.cli("switch", service, "--to", "blue", "--instant")
		took := time.Since(start)
		t.Logf("bg switch (%v): exit %d\nstdout: %s\nstderr: %s", took.Round(time.Millisecond), code, out, errOut)
		if code != commands.ExitRefused {
			t.Fatalf("switch without KV write: exit %d, want %d (refused: Consul unavailable for the write)", code, commands.ExitRefused)
		}
		if !strings.Contains(errOut, "consul ACL refused the write") || !strings.Contains(errOut, "lacks permission 'key:write'") || strings.Contains(errOut, "intent stands") {
			t.Errorf("stderr does not name Consul's ACL refusal plainly:\n%s", errOut)
		}
		if took > 15*time.Second {
			t.Errorf("switch took %v to fail", took)
		}
		if st := s.status(); st.Weights.Green != 100 {
			t.Fatalf("status after the refused switch = %+v", st)
		}
		if !s.bg.Running() {
			t.Fatalf("bg exited (code %d)", s.bg.ExitCode())
		}
		if strings.Contains(s.bg.Log(), noState) || strings.Contains(s.bg.Log(), "panic") {
			t.Errorf("bg logged its token or panicked:\n%s", s.bg.Log())
		}
	})
}

func firstLines(s string, n int) string {
	lines := strings.SplitN(s, "\n", n+1)
	if len(lines) > n {
		lines = lines[:n]
	}
	return strings.Join(lines, "\n")
}
