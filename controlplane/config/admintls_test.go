package config

import (
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func adminHexSum(token string) Secret {
	s := sha256.Sum256([]byte(token))
	return Secret(hex.EncodeToString(s[:]))
}

func adminTokenFile(t *testing.T, body string) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), "token")
	if err := os.WriteFile(p, []byte(body), 0o600); err != nil {
		t.Fatal(err)
	}
	return p
}

func TestScopeValidate(t *testing.T) {
	for _, s := range Scopes {
		if err := s.Validate(); err != nil {
			t.Errorf("%s: %v", s, err)
		}
	}
	for _, s := range []Scope{"", "admin", "READ", "write"} {
		if err := s.Validate(); err == nil {
			t.Errorf("%q: valid", s)
		}
	}
}

func TestValidateAdminTLS(t *testing.T) {
	cert, key := testCerts(t)
	tok := []AdminToken{{Name: "dash", Scope: ScopeRead, SHA256: adminHexSum("x")}}
	cases := []ruleCase{
		{"loopback plaintext ok", func(c *Config) { c.Admin.Token = "s3cret" }, "", ""},
		{"non-loopback with token, no TLS", func(c *Config) { c.Admin.Listen, c.Admin.Token = "0.0.0.0:9090", "s3cret" },
			"admin.tls", "required when admin.listen is not loopback (0.0.0.0:9090)"},
		{"non-loopback with scoped tokens, no TLS", func(c *Config) { c.Admin.Listen, c.Admin.Tokens = "10.0.0.5:9090", tok },
			"admin.tls", "required when admin.listen is not loopback"},
		{"non-loopback with TLS", func(c *Config) {
			c.Admin.Listen, c.Admin.Tokens, c.Admin.TLS = "0.0.0.0:9090", tok, AdminTLS{CertFile: cert, KeyFile: key, ClientCAFile: cert}
		}, "", ""},
		{"non-loopback plaintext allowed explicitly", func(c *Config) {
			c.Admin.Listen, c.Admin.Token, c.Admin.InsecurePlaintext = "0.0.0.0:9090", "s3cret", true
		}, "", ""},
		{"cert without key", func(c *Config) { c.Admin.TLS.CertFile = cert }, "admin.tls.key_file", "required with admin.tls.cert_file"},
		{"key without cert", func(c *Config) { c.Admin.TLS.KeyFile = key }, "admin.tls.cert_file", "required with admin.tls.key_file"},
		{"client CA without cert", func(c *Config) { c.Admin.TLS.ClientCAFile = cert }, "admin.tls.client_ca_file", "needs admin.tls.cert_file"},
		{"cert missing", func(c *Config) { c.Admin.TLS = AdminTLS{CertFile: cert + ".gone", KeyFile: key} }, "admin.tls", "no such file"},
		{"cert and key mismatch", func(c *Config) {
			_, other := testCerts(t)
			c.Admin.TLS = AdminTLS{CertFile: cert, KeyFile: other}
		}, "admin.tls", "private key does not match"},
		{"client CA not PEM", func(c *Config) {
			c.Admin.TLS = AdminTLS{CertFile: cert, KeyFile: key, ClientCAFile: adminTokenFile(t, "nope")}
		}, "admin.tls.client_ca_file", "no PEM certificate"},
	}
	runRuleCases(t, cases)
}

func TestValidateAdminTokens(t *testing.T) {
	const plaintext = "correct-horse-battery-staple"
	good := adminHexSum(plaintext)
	file := adminTokenFile(t, plaintext+"\n")
	cases := []ruleCase{
		{"sha256 ok", func(c *Config) { c.Admin.Tokens = []AdminToken{{Name: "dash", Scope: ScopeRead, SHA256: good}} }, "", ""},
		{"upper-case hex ok", func(c *Config) {
			c.Admin.Tokens = []AdminToken{{Name: "dash", Scope: ScopeRead, SHA256: Secret(strings.ToUpper(string(good)))}}
		}, "", ""},
		{"file ok", func(c *Config) { c.Admin.Tokens = []AdminToken{{Name: "ci", Scope: ScopeOperate, File: file}} }, "", ""},
		{"no name", func(c *Config) { c.Admin.Tokens = []AdminToken{{Scope: ScopeRead, SHA256: good}} }, "admin.tokens[0].name", "required"},
		{"bad name", func(c *Config) { c.Admin.Tokens = []AdminToken{{Name: "a b", Scope: ScopeRead, SHA256: good}} }, "admin.tokens[0].name", "must be"},
		{"bad scope", func(c *Config) { c.Admin.Tokens = []AdminToken{{Name: "x", Scope: "admin", SHA256: good}} }, "admin.tokens[0].scope", `"admin": must be read, operate or override`},
		{"no scope", func(c *Config) { c.Admin.Tokens = []AdminToken{{Name: "x", SHA256: good}} }, "admin.tokens[0].scope", "must be"},
		{"neither", func(c *Config) { c.Admin.Tokens = []AdminToken{{Name: "x", Scope: ScopeRead}} }, "admin.tokens[0]", "needs sha256 or file"},
		{"both", func(c *Config) {
			c.Admin.Tokens = []AdminToken{{Name: "x", Scope: ScopeRead, SHA256: good, File: file}}
		}, "admin.tokens[0]", "not both"},
		{"short hash", func(c *Config) { c.Admin.Tokens = []AdminToken{{Name: "x", Scope: ScopeRead, SHA256: good[:60]}} }, "admin.tokens[0].sha256", "64 hex digits"},
		{"missing file", func(c *Config) { c.Admin.Tokens = []AdminToken{{Name: "x", Scope: ScopeRead, File: file + ".gone"}} }, "admin.tokens[0].file", "no such file"},
		{"empty file", func(c *Config) {
			c.Admin.Tokens = []AdminToken{{Name: "x", Scope: ScopeRead, File: adminTokenFile(t, " \n")}}
		}, "admin.tokens[0].file", "empty"},
		{"duplicate name", func(c *Config) {
			c.Admin.Tokens = []AdminToken{{Name: "x", Scope: ScopeRead, SHA256: good}, {Name: "x", Scope: ScopeRead, SHA256: adminHexSum("other")}}
		}, "admin.tokens[1].name", `"x": already used by admin.tokens[0]`},
		{"name of admin.token", func(c *Config) {
			c.Admin.Token = "s3cret"
			c.Admin.Tokens = []AdminToken{{Name: "admin.token", Scope: ScopeRead, SHA256: good}}
		}, "admin.tokens[0].name", "already used by admin.token"},
		{"same token twice", func(c *Config) {
			c.Admin.Tokens = []AdminToken{{Name: "a", Scope: ScopeRead, SHA256: good}, {Name: "b", Scope: ScopeOverride, File: file}}
		}, "admin.tokens[1]", "same token as admin.tokens[0]"},
		{"same as admin.token", func(c *Config) {
			c.Admin.Token = plaintext
			c.Admin.Tokens = []AdminToken{{Name: "a", Scope: ScopeRead, SHA256: good}}
		}, "admin.tokens[0]", "same token as admin.token"},
		{"scoped tokens stand in for admin.token off loopback", func(c *Config) {
			c.Admin.Listen, c.Admin.InsecurePlaintext = "0.0.0.0:9090", true
			c.Admin.Tokens = []AdminToken{{Name: "dash", Scope: ScopeRead, SHA256: good}}
		}, "", ""},
	}
	runRuleCases(t, cases)
}

// Errors never show a token or a hash, even one pasted in the wrong field.
func TestAdminErrorsShowNoSecrets(t *testing.T) {
	const secret = "s3cret-token-value-0123456789"
	c := valid()
	c.Admin.Listen = "0.0.0.0:9090"
	c.Admin.Token = secret
	c.Admin.Tokens = []AdminToken{
		{Name: "pasted", Scope: ScopeRead, SHA256: Secret(secret)},
		{Name: "dup", Scope: "bogus", SHA256: adminHexSum(secret)},
		{Name: "same", Scope: ScopeRead, SHA256: adminHexSum(secret)},
	}
	err := c.Validate()
	if err == nil {
		t.Fatal("no error")
	}
	for _, s := range []string{secret, string(adminHexSum(secret))} {
		if strings.Contains(err.Error(), s) {
			t.Errorf("error shows %q:\n%v", s, err)
		}
	}
	// admin.token is a Secret: printing the config does not show it.
	for _, out := range []string{fmt.Sprintf("%v", c.Admin), fmt.Sprintf("%+v", *c), fmt.Sprintf("%#v", c.Admin)} {
		if strings.Contains(out, secret) {
			t.Errorf("printing the config shows admin.token: %s", out)
		}
	}
}

func TestAdminCredentials(t *testing.T) {
	const fromFile = "token-from-file"
	a := Admin{Token: "legacy", Tokens: []AdminToken{
		{Name: "dash", Scope: ScopeRead, SHA256: adminHexSum("dash-token")},
		{Name: "ci", Scope: ScopeOperate, File: adminTokenFile(t, "  "+fromFile+"\r\n")},
	}}
	creds, err := a.Credentials()
	if err != nil {
		t.Fatal(err)
	}
	want := []AdminCredential{
		{Name: "admin.token", Scope: ScopeOverride, SHA256: sha256.Sum256([]byte("legacy"))},
		{Name: "dash", Scope: ScopeRead, SHA256: sha256.Sum256([]byte("dash-token"))},
		{Name: "ci", Scope: ScopeOperate, SHA256: sha256.Sum256([]byte(fromFile))},
	}
	if len(creds) != len(want) {
		t.Fatalf("creds %+v", creds)
	}
	for i := range want {
		if creds[i] != want[i] {
			t.Errorf("creds[%d] = %+v, want %+v", i, creds[i], want[i])
		}
	}
	if _, err := (Admin{Tokens: []AdminToken{{Name: "x", Scope: ScopeRead}}}).Credentials(); err == nil {
		t.Error("a token without sha256 or file gave credentials")
	}
}

// admin.tokens decodes from YAML; the scalar admin.tls keys come from env too.
func TestLoadAdminTokens(t *testing.T) {
	cert, key := testCerts(t)
	t.Setenv("BG_ADMIN_TLS_CERT_FILE", cert)
	t.Setenv("BG_ADMIN_TLS_KEY_FILE", key)
	c, err := LoadValid(writeYAML(t, `admin:
  listen: 0.0.0.0:9090
  tokens:
    - {name: dash, scope: read, sha256: `+string(adminHexSum("d"))+`}
    - name: deployer
      scope: operate
      file: `+adminTokenFile(t, "deploy")+`
services: [{name: web, port: 10000}]
`), nil)
	if err != nil {
		t.Fatal(err)
	}
	if len(c.Admin.Tokens) != 2 || c.Admin.Tokens[1].Scope != ScopeOperate || c.Admin.TLS.CertFile != cert || c.Admin.TLS.KeyFile != key {
		t.Errorf("admin = %+v", c.Admin)
	}
	_, err = LoadValid(writeYAML(t, "admin:\n  tokens: [{name: x, scope: read, sha256: abc, hash: y}]\nservices: [{name: web, port: 10000}]\n"), nil)
	if err == nil || !strings.Contains(err.Error(), "admin.tokens[0].hash: unknown key") {
		t.Errorf("unknown token key: %v", err)
	}
}
