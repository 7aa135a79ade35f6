package serve

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"io"
	"log"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"

	"github.com/bgctl/bg/controlplane/config"
	"github.com/bgctl/bg/controlplane/fleetmetrics"
	"github.com/bgctl/bg/controlplane/model"
)

// fakePrometheusTLS answers instant queries over HTTPS with an empty
// vector, and records each request's Authorization header.
func fakePrometheusTLS(t *testing.T, pki *testPKI) (url string, auths func() []string) {
	t.Helper()
	var mu sync.Mutex
	var seen []string
	srv := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		mu.Lock()
		seen = append(seen, r.Header.Get("Authorization"))
		mu.Unlock()
		w.Header().Set("Content-Type", "application/json")
		_, _ = w.Write([]byte(`{"status":"success","data":{"resultType":"vector","result":[]}}`))
	}))
	certFile, keyFile := pki.issue(t, "prometheus", x509.ExtKeyUsageServerAuth, "prometheus.internal")
	cert, err := tls.LoadX509KeyPair(certFile, keyFile)
	if err != nil {
		t.Fatal(err)
	}
	srv.TLS = &tls.Config{Certificates: []tls.Certificate{cert}}
	srv.Config.ErrorLog = log.New(io.Discard, "", 0)
	srv.StartTLS()
	t.Cleanup(srv.Close)
	return "https://" + srv.Listener.Addr().String(), func() []string {
		mu.Lock()
		defer mu.Unlock()
		return append([]string(nil), seen...)
	}
}

func secretFile(t *testing.T, content string) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), "secret")
	if err := os.WriteFile(p, []byte(content), 0o600); err != nil {
		t.Fatal(err)
	}
	return p
}

func promConfig(addr string, h config.PrometheusHTTP) *config.Config {
	return &config.Config{Prometheus: config.Prometheus{Address: addr, HTTP: h},
		Services: []config.Service{{Name: "web", Analysis: config.Analysis{Requests: config.DefaultRequestsQuery, Errors: config.DefaultErrorsQuery}}}}
}

func readOnce(t *testing.T, cfg *config.Config) error {
	t.Helper()
	src, _, err := analysis(cfg, slog.New(slog.NewTextHandler(io.Discard, nil)), nil)
	if err != nil {
		t.Fatal(err)
	}
	_, err = src.Read(context.Background(), fleetmetrics.Query{Service: "web", Color: model.Green})
	return err
}

// prometheus.http reaches the source bg judges switches with: Prometheus's
// certificate is checked against tls.ca_file and server_name, and each
// query carries basic auth (password from its file) or the bearer token
// from its file.
func TestPrometheusHTTPConfigReachesTheSource(t *testing.T) {
	pki := newTestPKI(t)
	addr, auths := fakePrometheusTLS(t, pki)
	tlsOK := config.PrometheusTLS{CAFile: pki.CAFile, ServerName: "prometheus.internal"}

	basic := config.PrometheusHTTP{TLS: tlsOK, BasicAuth: config.PrometheusBasic{Username: "bg", PasswordFile: secretFile(t, "pw-123\n")}}
	if err := readOnce(t, promConfig(addr, basic)); err != nil {
		t.Fatalf("basic auth over TLS: %v", err)
	}
	bearer := config.PrometheusHTTP{TLS: tlsOK, BearerTokenFile: secretFile(t, "tok-456\n")}
	if err := readOnce(t, promConfig(addr, bearer)); err != nil {
		t.Fatalf("bearer over TLS: %v", err)
	}
	got := auths()
	if len(got) != 2 { // one query per read (requests and errors together)
		t.Fatalf("%d queries reached Prometheus, want 2: %q", len(got), got)
	}
	if got[0] != "Basic Ymc6cHctMTIz" { // base64("bg:pw-123")
		t.Errorf("basic auth header %q", got[0])
	}
	if got[1] != "Bearer tok-456" {
		t.Errorf("bearer header %q", got[1])
	}

	// Another CA, or another server name: the query fails on the
	// certificate and never reaches the handler.
	other := newTestPKI(t)
	for name, tc := range map[string]config.PrometheusTLS{
		"other CA":          {CAFile: other.CAFile, ServerName: "prometheus.internal"},
		"wrong server name": {CAFile: pki.CAFile, ServerName: "grafana.internal"},
		"system roots":      {ServerName: "prometheus.internal"},
	} {
		err := readOnce(t, promConfig(addr, config.PrometheusHTTP{TLS: tc}))
		if err == nil || !strings.Contains(err.Error(), "certificate") {
			t.Errorf("%s: err = %v, want a certificate error", name, err)
		}
	}
	if n := len(auths()); n != len(got) {
		t.Errorf("%d queries reached Prometheus with a bad certificate check", n-len(got))
	}
}
