package client

import (
	"context"
	"encoding/pem"
	"errors"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestBaseAddress(t *testing.T) {
	ca := TLSFiles{CAFile: "/ca.pem"}
	for _, tc := range []struct {
		addr    string
		tls     TLSFiles
		want    string
		wantErr string
	}{
		{"127.0.0.1:9090", TLSFiles{}, "http://127.0.0.1:9090", ""},
		{"127.0.0.1:9090", ca, "https://127.0.0.1:9090", ""},
		{"https://bg.internal:9090/", TLSFiles{}, "https://bg.internal:9090", ""},
		{"https://bg.internal:9090", ca, "https://bg.internal:9090", ""},
		{"http://bg.internal:9090", TLSFiles{}, "http://bg.internal:9090", ""},
		{"http://bg.internal:9090", ca, "", "need an https:// address"},
		{"http://bg.internal:9090", TLSFiles{CertFile: "c", KeyFile: "k"}, "", "need an https:// address"},
		{"ftp://bg.internal:9090", TLSFiles{}, "", "scheme must be http or https"},
	} {
		c := &Client{Addr: tc.addr, TLS: tc.tls}
		got, err := c.base()
		if tc.wantErr != "" {
			if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
				t.Errorf("%s %+v: %q %v, want error %q", tc.addr, tc.tls, got, err, tc.wantErr)
			}
			continue
		}
		if err != nil || got != tc.want {
			t.Errorf("%s %+v: %q %v, want %q", tc.addr, tc.tls, got, err, tc.want)
		}
	}
}

func TestTLSFilesErrors(t *testing.T) {
	dir := t.TempDir()
	notPEM := filepath.Join(dir, "ca.pem")
	_ = os.WriteFile(notPEM, []byte("nope"), 0o600)
	for _, tc := range []struct {
		files TLSFiles
		want  string
	}{
		{TLSFiles{CAFile: filepath.Join(dir, "missing.pem")}, "--ca-file"},
		{TLSFiles{CAFile: notPEM}, "no PEM certificate"},
		{TLSFiles{CertFile: "c.pem"}, "--cert needs --key"},
		{TLSFiles{KeyFile: "k.pem"}, "--key needs --cert"},
		{TLSFiles{CertFile: notPEM, KeyFile: notPEM}, "--cert/--key"},
	} {
		c := &Client{Addr: "https://127.0.0.1:1", TLS: tc.files}
		_, err := c.StatusAll(context.Background())
		var ce *ConfigError
		if !errors.As(err, &ce) || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%+v: %v, want a ConfigError with %q", tc.files, err, tc.want)
		}
	}
}

// An https:// admin API verified with --ca-file.
func TestHTTPSWithCAFile(t *testing.T) {
	srv := httptest.NewTLSServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		_, _ = w.Write([]byte(`[]`))
	}))
	t.Cleanup(srv.Close)
	caFile := filepath.Join(t.TempDir(), "ca.pem")
	_ = os.WriteFile(caFile, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: srv.Certificate().Raw}), 0o600)
	c := &Client{Addr: srv.URL, TLS: TLSFiles{CAFile: caFile}}
	if _, err := c.StatusAll(context.Background()); err != nil {
		t.Fatalf("with the CA: %v", err)
	}
	// host:port with a CA file is https too.
	c = &Client{Addr: strings.TrimPrefix(srv.URL, "https://"), TLS: TLSFiles{CAFile: caFile}}
	if _, err := c.StatusAll(context.Background()); err != nil {
		t.Fatalf("host:port with the CA: %v", err)
	}
	// Without it the system roots do not know the server.
	c = &Client{Addr: srv.URL}
	var ue *UnreachableError
	if _, err := c.StatusAll(context.Background()); !errors.As(err, &ue) || !strings.Contains(err.Error(), "certificate") {
		t.Fatalf("without the CA: %v, want an unreachable certificate error", err)
	}
}
