package harness

import (
	"errors"
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/hashicorp/consul/api"
)

// consulStartTimeout bounds one start. Measured on the 2-core dev machine
// with raft_multiplier=1: a fresh server accepts a KV write 1.2–1.8 s after
// exec, a restart on the same data dir 1.1–2.0 s (the ~1 s raft election
// timeout dominates); Stop takes ~10 ms.
const consulStartTimeout = 30 * time.Second

// Consul is one real Consul server agent (not -dev, so KV and registrations
// survive Stop/Start) listening only on 127.0.0.1, on non-default ports.
type Consul struct {
	t      TB
	p      *proc
	http   string
	https  string // "" unless ConsulOptions.TLS
	client *api.Client
	probeC *api.Client // short timeouts, so a wedged agent can't hang a probe
}

// ConsulOptions add to the agent StartConsul runs. The zero value is
// StartConsul's agent.
type ConsulOptions struct {
	// TLS, if set, also serves the HTTP API over TLS on its own port
	// (HTTPSAddr) with this certificate, requiring client certificates
	// signed by CAFile (tls.https.verify_incoming). The plain HTTP port
	// stays, on loopback, for the harness's own client.
	TLS *ConsulTLS
	// ManagementToken, if set, enables ACLs with default deny and this
	// initial management token, which the harness's clients (Client) and
	// the agent itself use.
	ManagementToken string
}

// ConsulTLS are the agent's CA and certificate files.
type ConsulTLS struct{ CAFile, CertFile, KeyFile string }

// StartConsul starts a single-node Consul server and waits until it has a
// leader and accepts KV writes. It is stopped when the test ends.
func StartConsul(t TB) *Consul {
	t.Helper()
	return StartConsulWith(t, ConsulOptions{})
}

// consulConfigFile writes the agent config file for o, "" when there is
// nothing to add. Consul 1.12 names: tls { defaults, https } (new in
// 1.12) and acl.tokens.initial_management (formerly master).
func consulConfigFile(t TB, o ConsulOptions) string {
	var hcl string
	if o.TLS != nil {
		hcl += fmt.Sprintf(`tls {
  defaults {
    ca_file   = %q
    cert_file = %q
    key_file  = %q
  }
  https {
    verify_incoming = true
  }
}
`, o.TLS.CAFile, o.TLS.CertFile, o.TLS.KeyFile)
	}
	if o.ManagementToken != "" {
		hcl += fmt.Sprintf(`acl {
  enabled                  = true
  default_policy           = "deny"
  enable_token_persistence = true
  tokens {
    initial_management = %q
    agent              = %q
  }
}
`, o.ManagementToken, o.ManagementToken)
	}
	if hcl == "" {
		return ""
	}
	path := filepath.Join(t.TempDir(), "consul.hcl")
	if err := os.WriteFile(path, []byte(hcl), 0o600); err != nil {
		t.Fatalf("harness: write consul config: %v", err)
	}
	return path
}

// StartConsulWith is StartConsul with TLS and ACLs as o says.
func StartConsulWith(t TB, o ConsulOptions) *Consul {
	t.Helper()
	extra := consulConfigFile(t, o)
	bin := consulBinary(t)
	node := fmt.Sprintf("bg-e2e-%d-%d", os.Getpid(), time.Now().UnixNano()%1e6)

	// A freshly picked port can be taken by someone else before Consul binds
	// it; retry with new ports rather than flake. Each attempt gets a fresh
	// data dir: raft state remembers the server port it was created with.
	var lastErr error
	for attempt := 0; attempt < 3; attempt++ {
		dataDir := t.TempDir()
		httpPort, httpsPort := FreePort(t), -1
		if o.TLS != nil {
			httpsPort = FreePort(t)
		}
		args := []string{
			"agent", "-server", "-bootstrap-expect=1",
			"-data-dir=" + dataDir,
			"-node=" + node,
			"-bind=127.0.0.1", "-advertise=127.0.0.1", "-client=127.0.0.1",
			"-http-port=" + strconv.Itoa(httpPort),
			"-serf-lan-port=" + strconv.Itoa(freeTCPUDPPort(t)),
			"-serf-wan-port=" + strconv.Itoa(freeTCPUDPPort(t)),
			"-server-port=" + strconv.Itoa(FreePort(t)),
			"-dns-port=-1", "-grpc-port=-1", "-https-port=" + strconv.Itoa(httpsPort),
			"-ui=false",
			// Default multiplier 5 makes each election take ~5 s.
			"-hcl=performance { raft_multiplier = 1 }",
			// No call home from tests (and there is no internet).
			"-hcl=disable_update_check = true",
			"-log-level=debug",
		}
		if extra != "" {
			args = append(args, "-config-file="+extra)
		}
		c := &Consul{
			t:    t,
			p:    newProc(t, fmt.Sprintf("consul-%d", attempt), bin, args, nil),
			http: "127.0.0.1:" + strconv.Itoa(httpPort),
		}
		if o.TLS != nil {
			c.https = "127.0.0.1:" + strconv.Itoa(httpsPort)
		}
		cfg := api.DefaultConfig()
		cfg.Address = c.http
		cfg.Scheme = "http"
		if o.ManagementToken != "" {
			cfg.Token = o.ManagementToken
		}
		client, err := api.NewClient(cfg)
		if err != nil {
			t.Fatalf("harness: consul client: %v", err)
		}
		c.client = client
		pcfg := api.DefaultConfig()
		pcfg.Address, pcfg.Scheme = c.http, "http"
		if o.ManagementToken != "" {
			pcfg.Token = o.ManagementToken
		}
		pcfg.HttpClient = &http.Client{Timeout: 2 * time.Second}
		if c.probeC, err = api.NewClient(pcfg); err != nil {
			t.Fatalf("harness: consul client: %v", err)
		}
		t.Cleanup(func() { c.Stop() })

		if lastErr = c.start(); lastErr == nil {
			return c
		}
		c.p.kill()
		t.Logf("harness: consul attempt %d failed: %v", attempt+1, lastErr)
	}
	t.Fatalf("harness: consul did not start: %v", lastErr)
	return nil
}

// HTTPAddr is the HTTP API address, host:port.
func (c *Consul) HTTPAddr() string { return c.http }

// HTTPSAddr is the HTTPS API address, host:port; "" without
// ConsulOptions.TLS.
func (c *Consul) HTTPSAddr() string { return c.https }

// Client is an API client for this agent.
func (c *Consul) Client() *api.Client { return c.client }

// LogPath is the agent's log file (appended across restarts).
func (c *Consul) LogPath() string { return c.p.logPath }

// Stop sends SIGTERM and waits, with SIGKILL after 10 s. Servers do not
// leave the cluster on SIGTERM, so Start brings back the same raft state.
func (c *Consul) Stop() {
	c.p.stop(10 * time.Second)
}

// Pause freezes the agent (SIGSTOP): connections stay open and requests
// hang, as with an agent stuck in a long pause or behind a black hole.
func (c *Consul) Pause() { c.p.signal(syscall.SIGSTOP) }

// Resume undoes Pause (SIGCONT).
func (c *Consul) Resume() { c.p.signal(syscall.SIGCONT) }

// Start restarts a stopped agent on the same ports and data dir and waits
// for a leader again.
func (c *Consul) Start() {
	c.t.Helper()
	if err := c.start(); err != nil {
		c.t.Fatalf("harness: consul restart: %v", err)
	}
}

// start waits until a leader is known and a KV write commits: a leader
// address alone shows up before the leader has finished establishing itself.
func (c *Consul) start() error {
	return c.p.startReady("consul", consulStartTimeout, 50*time.Millisecond, c.probe)
}

func (c *Consul) probe() error {
	leader, err := c.probeC.Status().Leader()
	if err != nil {
		return err
	}
	if leader == "" {
		return errors.New("no leader yet")
	}
	// A key outside anything bg reads.
	if _, err = c.probeC.KV().Put(&api.KVPair{Key: "_harness/ready", Value: []byte("1")}, nil); err != nil {
		return err
	}
	// Sessions need the agent's node in the catalog, which the KV store
	// can answer before: a session created too early fails with "Missing
	// node registration" (seen as a flaky TestCreateAbsentAgainstConsul).
	name, err := c.probeC.Agent().NodeName()
	if err != nil {
		return err
	}
	node, _, err := c.probeC.Catalog().Node(name, nil)
	if err != nil {
		return err
	}
	if node == nil || node.Node == nil {
		return errors.New("agent node not registered yet")
	}
	return nil
}

// consulBinary finds consul: $BG_CONSUL_BIN, then <repo>/.cache/bin/consul,
// then PATH. Missing: fatal under CI=true (CI must install it), else skip.
func consulBinary(t TB) string {
	t.Helper()
	if p := os.Getenv("BG_CONSUL_BIN"); p != "" {
		if _, err := os.Stat(p); err != nil {
			t.Fatalf("harness: BG_CONSUL_BIN=%s: %v", p, err)
		}
		return p
	}
	if root, ok := findRepoRoot(); ok {
		p := filepath.Join(root, ".cache", "bin", "consul")
		if _, err := os.Stat(p); err == nil {
			return p
		}
	}
	if p, err := exec.LookPath("consul"); err == nil {
		return p
	}
	msg := "harness: consul binary not found (BG_CONSUL_BIN, .cache/bin/consul, PATH); run scripts/install-test-deps.sh"
	if strings.EqualFold(os.Getenv("CI"), "true") {
		t.Fatalf("%s", msg)
	}
	t.Skipf("%s", msg)
	return ""
}
