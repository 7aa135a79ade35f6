package config

import (
	"bytes"
	"crypto/sha256"
	"crypto/tls"
	"crypto/x509"
	"encoding/hex"
	"errors"
	"fmt"
	"os"
	"regexp"
	"strings"
)

// AdminTLS serves the admin API over TLS. CertFile and KeyFile are both set
// or both empty; ClientCAFile, if set, verifies the client certificates
// that are given (a client without one still needs a token).
type AdminTLS struct {
	CertFile     string `mapstructure:"cert_file"`
	KeyFile      string `mapstructure:"key_file"`
	ClientCAFile string `mapstructure:"client_ca_file"`
}

// Enabled reports whether the admin API is served over TLS.
func (t AdminTLS) Enabled() bool { return t.CertFile != "" || t.KeyFile != "" }

// AdminToken is one scoped bearer token of the admin API. The server keeps
// only its SHA-256: SHA256 is that hash in hex, or File names a file holding
// the token itself (surrounding whitespace ignored), hashed when read.
type AdminToken struct {
	Name   string `mapstructure:"name"`
	Scope  Scope  `mapstructure:"scope"`
	SHA256 Secret `mapstructure:"sha256"` // a Secret: a token pasted here by mistake never prints
	File   string `mapstructure:"file"`
}

// Scope is what an admin token may do. Scopes are ordered: override
// allows everything operate does, which allows everything read does.
type Scope string

const (
	// ScopeRead: status, history, proxies, releases (read), metrics, healthz, readyz.
	ScopeRead Scope = "read"
	// ScopeOperate: switch, abort, pause, resume, promote, preview, releases.
	ScopeOperate Scope = "operate"
	// ScopeOverride: any command with "force": true.
	ScopeOverride Scope = "override"
)

// Scopes lists the scopes, weakest first.
var Scopes = []Scope{ScopeRead, ScopeOperate, ScopeOverride}

func (s Scope) rank() int {
	for i, x := range Scopes {
		if s == x {
			return i + 1
		}
	}
	return 0
}

// Validate reports a scope that is none of Scopes.
func (s Scope) Validate() error {
	if s.rank() == 0 {
		return fmt.Errorf("%q: must be read, operate or override", string(s))
	}
	return nil
}

// Allows reports whether a token of scope s may do what needs scope need.
// An invalid scope allows nothing and is allowed by nothing.
func (s Scope) Allows(need Scope) bool {
	return s.rank() > 0 && need.rank() > 0 && s.rank() >= need.rank()
}

// AdminCredential is a token as the server keeps it: its name, scope and
// SHA-256, never the token itself.
type AdminCredential struct {
	Name   string
	Scope  Scope
	SHA256 [sha256.Size]byte
}

// LegacyTokenName names admin.token, an override token, in history and logs.
const LegacyTokenName = "admin.token"

// HashToken is the SHA-256 the server compares a presented token with.
func HashToken(token string) [sha256.Size]byte { return sha256.Sum256([]byte(token)) }

var tokenNameRE = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9._:@-]{0,63}$`)

// Credentials returns every admin token as the server keeps it: admin.token
// (if set) as an override token named "admin.token", then admin.tokens,
// each file read and hashed here. Errors name the field, never a token or
// a hash.
func (a Admin) Credentials() ([]AdminCredential, error) {
	var es Errors
	creds := a.credentials(&es)
	if len(es) > 0 {
		return nil, es
	}
	return creds, nil
}

func (a Admin) credentials(es *Errors) []AdminCredential {
	var out []AdminCredential
	if a.Token != "" {
		out = append(out, AdminCredential{Name: LegacyTokenName, Scope: ScopeOverride, SHA256: HashToken(string(a.Token))})
	}
	names := map[string]string{}
	if a.Token != "" {
		names[LegacyTokenName] = "admin.token"
	}
	hashes := map[[sha256.Size]byte]string{}
	if a.Token != "" {
		hashes[out[0].SHA256] = "admin.token"
	}
	for i, t := range a.Tokens {
		at := fmt.Sprintf("admin.tokens[%d]", i)
		ok := true
		switch prev, dup := names[t.Name]; {
		case t.Name == "":
			es.add(at+".name", "required")
			ok = false
		case !tokenNameRE.MatchString(t.Name):
			es.add(at+".name", "%q: must be 1-64 letters, digits or ._:@- (starting with a letter or digit)", t.Name)
			ok = false
		case dup:
			es.add(at+".name", "%q: already used by %s", t.Name, prev)
			ok = false
		default:
			names[t.Name] = at
		}
		if err := t.Scope.Validate(); err != nil {
			es.add(at+".scope", "%v", err)
			ok = false
		}
		var sum [sha256.Size]byte
		switch {
		case t.SHA256 != "" && t.File != "":
			es.add(at, "set one of sha256 and file, not both")
			ok = false
		case t.SHA256 != "":
			b, err := hex.DecodeString(strings.TrimSpace(string(t.SHA256)))
			if err != nil || len(b) != sha256.Size {
				// Never echo the value: it may be a token pasted by mistake.
				es.add(at+".sha256", "must be 64 hex digits (printf %%s \"$TOKEN\" | sha256sum)")
				ok = false
			} else {
				copy(sum[:], b)
			}
		case t.File != "":
			s, err := readTokenFile(t.File)
			if err != nil {
				es.add(at+".file", "%v", err)
				ok = false
			} else {
				sum = s
			}
		default:
			es.add(at, "needs sha256 or file")
			ok = false
		}
		if !ok {
			continue
		}
		if prev, dup := hashes[sum]; dup {
			es.add(at, "same token as %s: each token must be different, or its name in history would be ambiguous", prev)
			continue
		}
		hashes[sum] = at
		out = append(out, AdminCredential{Name: t.Name, Scope: t.Scope, SHA256: sum})
	}
	return out
}

// maxTokenFile bounds what is read as a token.
const maxTokenFile = 4 << 10

// readTokenFile hashes the token in path; the plaintext is dropped here.
func readTokenFile(path string) ([sha256.Size]byte, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return [sha256.Size]byte{}, err // names the path, not the content
	}
	defer clear(data)
	if len(data) > maxTokenFile {
		return [sha256.Size]byte{}, fmt.Errorf("%s: longer than %d bytes, not a token", path, maxTokenFile)
	}
	tok := bytes.TrimSpace(data)
	if len(tok) == 0 {
		return [sha256.Size]byte{}, fmt.Errorf("%s: empty", path)
	}
	return sha256.Sum256(tok), nil
}

// validateAdmin checks admin.tls and admin.tokens. host is admin.listen's
// host. A non-loopback admin API needs a token (validateListeners) and,
// once it has one, TLS: tokens must not travel in clear over a network,
// unless admin.insecure_plaintext says the network is private.
func (c *Config) validateAdmin(es *Errors, host string, hostOK bool) {
	a := c.Admin
	a.credentials(es)
	t := a.TLS
	switch {
	case t.CertFile != "" && t.KeyFile == "":
		es.add("admin.tls.key_file", "required with admin.tls.cert_file")
	case t.KeyFile != "" && t.CertFile == "":
		es.add("admin.tls.cert_file", "required with admin.tls.key_file")
	case t.Enabled():
		if _, err := tls.LoadX509KeyPair(t.CertFile, t.KeyFile); err != nil {
			es.add("admin.tls", "cert_file and key_file: %v", err)
		}
	}
	if t.ClientCAFile != "" {
		if !t.Enabled() {
			es.add("admin.tls.client_ca_file", "needs admin.tls.cert_file and key_file")
		} else if _, err := LoadCertPool(t.ClientCAFile); err != nil {
			es.add("admin.tls.client_ca_file", "%v", err)
		}
	}
	hasToken := a.Token != "" || len(a.Tokens) > 0
	if hostOK && hasToken && !isLoopback(host) && !t.Enabled() && !a.InsecurePlaintext {
		es.add("admin.tls", "required when admin.listen is not loopback (%s): tokens would travel in clear; set cert_file and key_file (or admin.insecure_plaintext: true on a private network)", c.Admin.Listen)
	}
}

// LoadCertPool reads PEM certificates from path into a pool.
func LoadCertPool(path string) (*x509.CertPool, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	pool := x509.NewCertPool()
	if !pool.AppendCertsFromPEM(data) {
		return nil, errors.New(path + ": no PEM certificate")
	}
	return pool, nil
}
