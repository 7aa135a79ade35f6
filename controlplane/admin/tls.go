package admin

import (
	"crypto/tls"
	"crypto/x509"
	"fmt"
	"log/slog"
	"os"
	"sync"
	"time"

	"github.com/bgctl/bg/controlplane/config"
)

// TLSConfigs are the admin API's server TLS config and the client config
// of commands forwarded to the leader.
type TLSConfigs struct {
	Server  *tls.Config
	Forward *tls.Config
}

// NewTLS builds the admin API's TLS from admin.tls. The certificate and
// key are re-read when either file's modification time or size changes,
// checked at most once a second on a handshake; a pair that fails to load
// keeps the last good one (and is logged). With client_ca_file, a client
// certificate that is given must verify against it (a token is still
// needed); one that is not given is fine. Forwarded commands present the
// same certificate and trust the system roots plus client_ca_file.
func NewTLS(t config.AdminTLS, log *slog.Logger) (TLSConfigs, error) {
	kp := &keyPair{cert: t.CertFile, key: t.KeyFile, log: log, now: time.Now}
	if err := kp.load(); err != nil {
		return TLSConfigs{}, err
	}
	server := &tls.Config{MinVersion: tls.VersionTLS12, GetCertificate: kp.getCertificate}
	roots, err := x509.SystemCertPool()
	if err != nil || roots == nil {
		roots = x509.NewCertPool()
	}
	if t.ClientCAFile != "" {
		pool, err := config.LoadCertPool(t.ClientCAFile)
		if err != nil {
			return TLSConfigs{}, fmt.Errorf("admin.tls.client_ca_file: %w", err)
		}
		server.ClientCAs = pool
		server.ClientAuth = tls.VerifyClientCertIfGiven
		data, _ := os.ReadFile(t.ClientCAFile)
		roots.AppendCertsFromPEM(data)
	}
	forward := &tls.Config{MinVersion: tls.VersionTLS12, RootCAs: roots,
		GetClientCertificate: func(*tls.CertificateRequestInfo) (*tls.Certificate, error) { return kp.current(), nil }}
	return TLSConfigs{Server: server, Forward: forward}, nil
}

// keyPair holds the served certificate and reloads it when its files change.
type keyPair struct {
	cert, key string
	log       *slog.Logger
	now       func() time.Time

	mu      sync.Mutex
	pair    *tls.Certificate
	stamp   string
	checked time.Time
}

func fileStamp(paths ...string) string {
	s := ""
	for _, p := range paths {
		fi, err := os.Stat(p)
		if err != nil {
			return ""
		}
		s += fmt.Sprintf("%s:%d:%d;", p, fi.ModTime().UnixNano(), fi.Size())
	}
	return s
}

func (k *keyPair) load() error {
	stamp := fileStamp(k.cert, k.key)
	pair, err := tls.LoadX509KeyPair(k.cert, k.key)
	if err != nil {
		return fmt.Errorf("admin.tls: %w", err)
	}
	k.mu.Lock()
	k.pair, k.stamp = &pair, stamp
	k.mu.Unlock()
	return nil
}

func (k *keyPair) current() *tls.Certificate {
	k.mu.Lock()
	defer k.mu.Unlock()
	return k.pair
}

func (k *keyPair) getCertificate(*tls.ClientHelloInfo) (*tls.Certificate, error) {
	k.mu.Lock()
	now := k.now()
	due := now.Sub(k.checked) >= time.Second
	if due {
		k.checked = now
	}
	old := k.stamp
	k.mu.Unlock()
	if due {
		if stamp := fileStamp(k.cert, k.key); stamp != "" && stamp != old {
			if err := k.load(); err != nil {
				k.log.Warn("admin TLS certificate changed but does not load; serving the previous one", "error", err)
				k.mu.Lock()
				k.stamp = stamp // do not retry every second until it changes again
				k.mu.Unlock()
			} else {
				k.log.Info("admin TLS certificate reloaded", "cert_file", k.cert)
			}
		}
	}
	return k.current(), nil
}
