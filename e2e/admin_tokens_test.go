package e2e

import (
	"context"
	"crypto/sha256"
	"crypto/tls"
	"crypto/x509"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/bgctl/bg/e2e/harness"
)

// adminStack is a stack whose admin API is served over TLS (CA-signed
// certificate, client certificates verified when given) with three scoped
// tokens and no admin.token.
type adminStack struct {
	*stack
	url    string // https://127.0.0.1:PORT
	ca     *harness.TestCA
	tokens map[string]string // scope -> token
}

func sha256Hex(s string) string {
	sum := sha256.Sum256([]byte(s))
	return hex.EncodeToString(sum[:])
}

func newAdminStack(t *testing.T) *adminStack {
	t.Helper()
	s := &stack{t: t, consul: harness.StartConsul(t), bin: harness.BuildBG(t), backends: map[string]*harness.Backend{}}
	s.addBackend("blue", 1, "v1")
	s.addBackend("green", 1, "v2")
	s.xdsAddr = fmt.Sprintf("127.0.0.1:%d", harness.FreePort(t))
	s.admin = fmt.Sprintf("127.0.0.1:%d", harness.FreePort(t))
	a := &adminStack{stack: s, url: "https://" + s.admin, ca: harness.NewTestCA(t, "bg-admin-ca"), tokens: map[string]string{
		"read": "read-" + strconv.FormatInt(time.Now().UnixNano(), 36), "operate": "operate-secret-e2e", "override": "override-secret-e2e",
	}}
	server := a.ca.Issue("bg-admin", "127.0.0.1")
	// The operate token is given as a file (hashed when read), the others
	// as their SHA-256 only.
	opFile := filepath.Join(t.TempDir(), "deployer.token")
	if err := os.WriteFile(opFile, []byte(a.tokens["operate"]+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	adminYAML := fmt.Sprintf(`tls:
  cert_file: %s
  key_file: %s
  client_ca_file: %s
tokens:
  - {name: dashboard, scope: read, sha256: %s}
  - {name: deployer, scope: operate, file: %s}
  - {name: breakglass, scope: override, sha256: %s}
`, server.CertFile, server.KeyFile, a.ca.CAFile, sha256Hex(a.tokens["read"]), opFile, sha256Hex(a.tokens["override"]))
	path := harness.WriteBGConfig(t, harness.BGConfig{ConsulAddr: s.consul.HTTPAddr(), XDSAddr: s.xdsAddr, AdminAddr: s.admin,
		Service: service, AdminYAML: adminYAML})
	// The harness polls /readyz over http; this one is https only.
	s.bg = harness.StartBG(t, harness.BGOptions{Bin: s.bin, Config: path, AdminAddr: s.admin, SkipReady: true})
	a.waitReady(t)
	return a
}

// client trusts the test CA.
func (a *adminStack) client() *http.Client {
	pool := x509.NewCertPool()
	pem, err := os.ReadFile(a.ca.CAFile)
	if err != nil {
		a.t.Fatal(err)
	}
	pool.AppendCertsFromPEM(pem)
	return &http.Client{Timeout: 5 * time.Second, Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: pool}}}
}

func (a *adminStack) get(path, token string) (int, string, error) {
	req, _ := http.NewRequest("GET", a.url+path, nil)
	req.Header.Set("Authorization", "Bearer "+token)
	resp, err := a.client().Do(req)
	if err != nil {
		return 0, "", err
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	return resp.StatusCode, string(body), err
}

func (a *adminStack) waitReady(t *testing.T) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	for {
		code, _, err := a.get("/readyz", a.tokens["read"])
		if err == nil && code == http.StatusOK {
			return
		}
		select {
		case <-ctx.Done():
			t.Fatalf("bg not ready over https: %d %v", code, err)
		case <-time.After(100 * time.Millisecond):
		}
	}
}

// run is the CLI against the https:// address with --ca-file (flags) and
// the token in BG_TOKEN; extra env entries are appended.
func (a *adminStack) run(token string, env []string, args ...string) (string, string, int) {
	a.t.Helper()
	env = append([]string{"BG_ADDR=" + a.url, "BG_TOKEN=" + token, "BG_CA_FILE=", "BG_CERT=", "BG_KEY="}, env...)
	return harness.RunCLIEnv(a.t, a.bin, env, append([]string{"--ca-file", a.ca.CAFile}, args...)...)
}

func (a *adminStack) weights(t *testing.T) (blue, green int) {
	t.Helper()
	out, errOut, code := a.run(a.tokens["read"], nil, "status", service, "-o", "json")
	if code != 0 {
		t.Fatalf("status: exit %d: %s", code, errOut)
	}
	var st statusJSON
	if err := json.Unmarshal([]byte(out), &st); err != nil {
		t.Fatalf("status json: %v\n%s", err, out)
	}
	return st.Weights.Blue, st.Weights.Green
}

func TestAdminTokens(t *testing.T) {
	a := newAdminStack(t)
	a.startClients(1)
	a.expectAll("blue", 20*time.Second)

	t.Run("read token: 200 on status, 403 on switch", func(t *testing.T) {
		if b, g := a.weights(t); b != 100 || g != 0 {
			t.Fatalf("weights %d/%d", b, g)
		}
		for _, path := range []string{"/v1/services", "/v1/services/web/history", "/v1/proxies", "/metrics", "/healthz"} {
			if code, body, err := a.get(path, a.tokens["read"]); err != nil || code != http.StatusOK {
				t.Errorf("GET %s with the read token: %d %v %.200s", path, code, err, body)
			}
		}
		_, errOut, code := a.run(a.tokens["read"], nil, "switch", service, "--to", "green", "--instant")
		if code != 5 || !strings.Contains(errOut, `token "dashboard" has scope read`) || !strings.Contains(errOut, "needs scope operate") {
			t.Fatalf("switch with the read token: exit %d, stderr %q; want exit 5 naming scope operate", code, errOut)
		}
		if b, g := a.weights(t); b != 100 || g != 0 {
			t.Fatalf("a refused switch moved traffic: %d/%d", b, g)
		}
	})

	t.Run("operate token switches, but not with --force", func(t *testing.T) {
		out, errOut, code := a.run(a.tokens["operate"], nil, "switch", service, "--to", "green", "--instant")
		if code != 0 {
			t.Fatalf("switch with the operate token: exit %d\n%s\n%s", code, out, errOut)
		}
		a.expectAll("green", 20*time.Second)
		_, errOut, code = a.run(a.tokens["operate"], nil, "switch", service, "--to", "blue", "--force", "--reason", "x")
		if code != 5 || !strings.Contains(errOut, "needs scope override") {
			t.Fatalf("switch --force with the operate token: exit %d, stderr %q; want exit 5 naming scope override", code, errOut)
		}
		if b, g := a.weights(t); b != 0 || g != 100 {
			t.Fatalf("a refused forced switch moved traffic: %d/%d", b, g)
		}
	})

	t.Run("override token forces", func(t *testing.T) {
		out, errOut, code := a.run(a.tokens["override"], nil, "switch", service, "--to", "blue", "--force", "--reason", "INC-15 drill")
		if code != 0 {
			t.Fatalf("switch --force with the override token: exit %d\n%s\n%s", code, out, errOut)
		}
		a.expectAll("blue", 20*time.Second)
	})

	t.Run("history names the tokens", func(t *testing.T) {
		out, errOut, code := a.run(a.tokens["read"], nil, "history", service, "-o", "json")
		if code != 0 {
			t.Fatalf("history: exit %d: %s", code, errOut)
		}
		var entries []struct {
			ToGreen  int    `json:"to_green_percent"`
			Actor    string `json:"actor"`
			Override string `json:"override"`
		}
		if err := json.Unmarshal([]byte(out), &entries); err != nil {
			t.Fatalf("history json: %v\n%s", err, out)
		}
		var toGreen, forced string
		for _, e := range entries {
			switch {
			case e.ToGreen == 100 && e.Override == "":
				toGreen = e.Actor
			case e.ToGreen == 0 && e.Override != "":
				forced = e.Actor
			}
		}
		actor := regexp.MustCompile(`^cli:\S+ \(token (\S+), 127\.0\.0\.1:\d+\)$`)
		if m := actor.FindStringSubmatch(toGreen); m == nil || m[1] != "deployer" {
			t.Errorf("switch to green: actor %q, want the token deployer", toGreen)
		}
		if m := actor.FindStringSubmatch(forced); m == nil || m[1] != "breakglass" {
			t.Errorf("forced switch to blue: actor %q, want the token breakglass", forced)
		}
		for _, tok := range a.tokens {
			if strings.Contains(out, tok) {
				t.Errorf("history shows a token")
			}
		}
		if t.Failed() {
			t.Logf("history:\n%s", out)
		}
	})

	t.Run("TLS: the CLI needs the CA; client certificates are verified when given", func(t *testing.T) {
		// BG_CA_FILE works as --ca-file does.
		_, errOut, code := harness.RunCLIEnv(t, a.bin, []string{"BG_ADDR=" + a.url, "BG_TOKEN=" + a.tokens["read"], "BG_CA_FILE=" + a.ca.CAFile}, "status", service)
		if code != 0 {
			t.Errorf("BG_CA_FILE: exit %d %s", code, errOut)
		}
		// Without the CA: the system roots do not know it.
		_, errOut, code = harness.RunCLIEnv(t, a.bin, []string{"BG_ADDR=" + a.url, "BG_TOKEN=" + a.tokens["read"], "BG_CA_FILE="}, "status", service)
		if code != 6 || !strings.Contains(errOut, "certificate") {
			t.Errorf("without --ca-file: exit %d %q, want 6 and a certificate error", code, errOut)
		}
		// A client certificate of the CA is accepted; one of another CA is refused.
		mine := a.ca.Issue("ops-laptop")
		_, errOut, code = a.run(a.tokens["read"], nil, "--cert", mine.CertFile, "--key", mine.KeyFile, "status", service)
		if code != 0 {
			t.Errorf("client certificate of the CA: exit %d %s", code, errOut)
		}
		other := harness.NewTestCA(t, "intruder-ca").Issue("intruder")
		_, errOut, code = a.run(a.tokens["read"], []string{"BG_CERT=" + other.CertFile, "BG_KEY=" + other.KeyFile}, "status", service)
		if code != 6 {
			t.Errorf("client certificate of another CA: exit %d %s, want 6 (refused in the handshake)", code, errOut)
		}
		// --cert without --key is a usage error; nothing is sent.
		_, errOut, code = a.run(a.tokens["read"], nil, "--cert", mine.CertFile, "status", service)
		if code != 2 || !strings.Contains(errOut, "--cert needs --key") {
			t.Errorf("--cert alone: exit %d %q", code, errOut)
		}
	})

	t.Run("a wrong token is rejected, and its repeats are rate-limited", func(t *testing.T) {
		for i := 1; i <= 10; i++ {
			_, errOut, code := a.run("wrong-token", nil, "status", service)
			if code != 5 || !strings.Contains(errOut, "unauthorized") {
				t.Fatalf("wrong token, try %d: exit %d %q; want 5, unauthorized", i, code, errOut)
			}
		}
		_, errOut, code := a.run("wrong-token", nil, "status", service)
		if code != 5 || !strings.Contains(errOut, "too many failed authentications") {
			t.Fatalf("11th wrong token: exit %d %q; want 5, rate limited", code, errOut)
		}
		// Unchecked while limited: even the right token is refused (429).
		code2, body, err := a.get("/v1/services", a.tokens["read"])
		if err != nil || code2 != http.StatusTooManyRequests || !strings.Contains(body, `"rate_limited"`) {
			t.Fatalf("right token while limited: %d %v %s; want 429 rate_limited", code2, err, body)
		}
		// 10 a minute: after 6 s one more request is checked.
		time.Sleep(6500 * time.Millisecond)
		code2, body, err = a.get("/metrics", a.tokens["read"])
		if err != nil || code2 != http.StatusOK {
			t.Fatalf("metrics after the wait: %d %v", code2, err)
		}
		for reason, atLeast := range map[string]int{"wrong": 10, "rate_limited": 2, "forbidden": 2} {
			m := regexp.MustCompile(`(?m)^bg_admin_auth_failures_total\{reason="` + reason + `"\} (\d+)`).FindStringSubmatch(body)
			if m == nil {
				t.Errorf("no bg_admin_auth_failures_total{reason=%q}", reason)
				continue
			}
			if n, _ := strconv.Atoi(m[1]); n < atLeast {
				t.Errorf("bg_admin_auth_failures_total{reason=%q} = %d, want at least %d", reason, n, atLeast)
			}
		}
	})
}

// bg refuses a non-loopback admin address without TLS once it has tokens,
// and its messages never show a token or a hash.
func TestAdminTokensConfigRefusals(t *testing.T) {
	bin := harness.BuildBG(t)
	const secret = "pasted-token-value-123"
	dir := t.TempDir()
	cfg := filepath.Join(dir, "bg.yaml")
	body := `admin:
  listen: 0.0.0.0:9090
  tokens:
    - {name: dash, scope: read, sha256: ` + sha256Hex("x") + `}
    - {name: oops, scope: read, sha256: ` + secret + `}
    - {name: twice, scope: root, sha256: ` + sha256Hex(secret) + `}
services: [{name: web, port: 10000}]
`
	if err := os.WriteFile(cfg, []byte(body), 0o600); err != nil {
		t.Fatal(err)
	}
	out, errOut, code := harness.RunCLIEnv(t, bin, []string{"BG_ADMIN_TOKEN="}, "validate", "--config", cfg)
	all := out + errOut
	if code != 2 || !strings.Contains(all, "admin.tls: required when admin.listen is not loopback (0.0.0.0:9090)") ||
		!strings.Contains(all, "admin.tokens[1].sha256: must be 64 hex digits") || !strings.Contains(all, `admin.tokens[2].scope: "root"`) {
		t.Fatalf("validate: exit %d\n%s", code, all)
	}
	for _, s := range []string{secret, sha256Hex(secret), sha256Hex("x")} {
		if strings.Contains(all, s) {
			t.Errorf("validate output shows %q:\n%s", s, all)
		}
	}
}
