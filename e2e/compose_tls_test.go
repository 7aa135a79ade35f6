package e2e

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"fmt"
	"log/slog"
	"net"
	"os"
	"path"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"

	tlsv3 "github.com/envoyproxy/go-control-plane/envoy/extensions/transport_sockets/tls/v3"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/bgctl/bg/controlplane/devcerts"
	"github.com/bgctl/bg/controlplane/model"
	"github.com/bgctl/bg/controlplane/translator"
	"github.com/bgctl/bg/controlplane/xds"
)

// composeEnv is a compose service's environment as a map (list or map syntax).
func composeEnv(t *testing.T, s composeService) map[string]string {
	t.Helper()
	out := map[string]string{}
	switch env := s.Environment.(type) {
	case map[string]any:
		for k, v := range env {
			out[k] = fmt.Sprint(v)
		}
	case []any:
		for _, kv := range env {
			k, v, _ := strings.Cut(fmt.Sprint(kv), "=")
			out[k] = v
		}
	case nil:
	default:
		t.Fatalf("environment is a %T", env)
	}
	return out
}

// volumeAt returns the named volume mounted at dir in s, or "".
func volumeAt(s composeService, dir string) string {
	for _, v := range s.Volumes {
		str, _ := v.(string)
		parts := strings.Split(str, ":")
		if len(parts) >= 2 && parts[1] == dir && !strings.HasPrefix(parts[0], ".") && !strings.HasPrefix(parts[0], "/") {
			return parts[0]
		}
	}
	return ""
}

var (
	nodeIDsFlag = regexp.MustCompile(`--node-ids[ =](\S+)`)
	hostsFlag   = regexp.MustCompile(`--hosts[ =](\S+)`)
	dirFlag     = regexp.MustCompile(`--dir[ =](\S+)`)
)

// The compose stack runs xDS over mTLS: the certs service writes, with
// `bg certs dev`, exactly the files that bg's xds.tls (from its
// environment) and Envoy's UpstreamTlsContext name, in one volume both
// mount; Envoy's certificate names its node id and bg's certificate the
// SNI Envoy checks. Then it plays it out without Docker: certificates made
// as the certs service makes them, bg's xDS server with the compose
// settings, and a client configured as Envoy's bootstrap says, claiming
// its node id, is served (and claiming another, refused).
func TestComposeXDSMTLS(t *testing.T) {
	root, spec := loadCompose(t)
	certsSvc, ok := spec.Services["certs"]
	if !ok {
		t.Fatal("no service certs")
	}
	bgSvc, envoySvc := spec.Services["bg"], spec.Services["envoy"]
	cmd := fmt.Sprint(certsSvc.Command)
	if !strings.Contains(cmd, "bg certs dev") {
		t.Fatalf("service certs command %q, want bg certs dev", cmd)
	}
	var dir, nodes, hosts string
	for _, f := range []struct {
		re  *regexp.Regexp
		out *string
	}{{dirFlag, &dir}, {nodeIDsFlag, &nodes}, {hostsFlag, &hosts}} {
		m := f.re.FindStringSubmatch(cmd)
		if m == nil {
			t.Fatalf("service certs command %q lacks %s", cmd, f.re)
		}
		*f.out = m[1]
	}
	vol := volumeAt(certsSvc, dir)
	if vol == "" {
		t.Fatalf("service certs writes %s, which is not a named volume (volumes %v)", dir, certsSvc.Volumes)
	}

	// bg: xds.tls from the environment, files in the volume.
	env := composeEnv(t, bgSvc)
	for k, v := range env {
		if strings.HasPrefix(k, "BG_XDS_TLS_") {
			t.Setenv(k, v)
		}
	}
	cfg := bgComposeConfig(t, root)
	xt := cfg.XDS.TLS
	if !xt.RequireClientCert || xt.NodeIDFrom != "spiffe" || xt.ClientCAFile == "" {
		t.Errorf("compose xds.tls %+v: want mTLS with require_client_cert and node_id_from spiffe", xt)
	}
	bgDir := path.Dir(xt.CertFile)
	if volumeAt(bgSvc, bgDir) != vol {
		t.Errorf("service bg does not mount volume %s at %s (volumes %v)", vol, bgDir, bgSvc.Volumes)
	}
	for got, want := range map[string]string{xt.CertFile: devcerts.ServerFile, xt.KeyFile: devcerts.ServerKeyFile, xt.ClientCAFile: devcerts.CAFile} {
		if got != path.Join(bgDir, want) {
			t.Errorf("bg reads %s, want %s (as bg certs dev writes it)", got, path.Join(bgDir, want))
		}
	}

	// Envoy: its xds cluster's TLS context.
	b := envoyBootstrapProto(t, root)
	var ctx *tlsv3.UpstreamTlsContext
	for _, c := range b.GetStaticResources().GetClusters() {
		if c.GetName() != "xds" {
			continue
		}
		ctx = &tlsv3.UpstreamTlsContext{}
		if err := c.GetTransportSocket().GetTypedConfig().UnmarshalTo(ctx); err != nil {
			t.Fatalf("cluster xds transport_socket: %v (want an UpstreamTlsContext)", err)
		}
	}
	if ctx == nil {
		t.Fatal("no static cluster xds")
	}
	node := b.GetNode().GetId()
	if !slices.Contains(strings.Split(nodes, ","), node) {
		t.Errorf("service certs issues %s, not Envoy's node id %s", nodes, node)
	}
	common := ctx.GetCommonTlsContext()
	if len(common.GetTlsCertificates()) != 1 {
		t.Fatalf("Envoy presents %d certificates, want 1", len(common.GetTlsCertificates()))
	}
	cert := common.GetTlsCertificates()[0]
	certFile, keyFile := cert.GetCertificateChain().GetFilename(), cert.GetPrivateKey().GetFilename()
	caFile := common.GetValidationContext().GetTrustedCa().GetFilename()
	envoyDir := path.Dir(certFile)
	if volumeAt(envoySvc, envoyDir) != vol {
		t.Errorf("service envoy does not mount volume %s at %s (volumes %v)", vol, envoyDir, envoySvc.Volumes)
	}
	wantCert, wantKey := devcerts.ClientFiles(node)
	for got, want := range map[string]string{certFile: wantCert, keyFile: wantKey, caFile: devcerts.CAFile} {
		if got != path.Join(envoyDir, want) {
			t.Errorf("Envoy reads %s, want %s", got, path.Join(envoyDir, want))
		}
	}
	sni := ctx.GetSni()
	if !slices.Contains(strings.Split(hosts, ","), sni) {
		t.Errorf("Envoy's sni %q is not among the server certificate's hosts %s", sni, hosts)
	}
	sans := common.GetValidationContext().GetMatchTypedSubjectAltNames()
	if len(sans) != 1 || sans[0].GetMatcher().GetExact() != sni {
		t.Errorf("Envoy does not check the server certificate names %q: %v", sni, sans)
	}
	if !slices.Contains(common.GetAlpnProtocols(), "h2") {
		t.Errorf("Envoy's ALPN %v lacks h2, which gRPC servers require", common.GetAlpnProtocols())
	}

	// Played out: the files as the certs service writes them, read from
	// the paths bg and Envoy use.
	tmp := t.TempDir()
	if _, err := devcerts.Dev(tmp, strings.Split(hosts, ","), strings.Split(nodes, ",")); err != nil {
		t.Fatal(err)
	}
	local := func(p string) string { return filepath.Join(tmp, path.Base(p)) }
	srv := xds.NewServer(slog.New(slog.DiscardHandler), nil)
	srv.Load(translator.Translate(model.View{EnvoyListenAddress: cfg.Envoy.ListenAddress, Services: []model.ServiceView{{
		Service: model.Service{Name: "demo", ListenerPort: 10000, Protocol: model.ProtocolHTTP1},
		Traffic: model.InitialTraffic(),
	}}}))
	if err := srv.UseTLS(xds.TLSOptions{CertFile: local(xt.CertFile), KeyFile: local(xt.KeyFile), ClientCAFile: local(xt.ClientCAFile),
		RequireClientCert: xt.RequireClientCert, NodeIDFrom: xt.NodeIDFrom}); err != nil {
		t.Fatal(err)
	}
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	sctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- srv.Serve(sctx, lis) }()
	defer func() { cancel(); <-done }()

	pool := x509.NewCertPool()
	caPEM, err := os.ReadFile(local(caFile))
	if err != nil {
		t.Fatal(err)
	}
	pool.AppendCertsFromPEM(caPEM)
	pair, err := tls.LoadX509KeyPair(local(certFile), local(keyFile))
	if err != nil {
		t.Fatal(err)
	}
	asEnvoy := &tls.Config{RootCAs: pool, Certificates: []tls.Certificate{pair}, ServerName: sni, NextProtos: common.GetAlpnProtocols()}
	if err := claimNode(t, lis.Addr().String(), asEnvoy, node); err != nil {
		t.Errorf("Envoy's TLS settings claiming %s: %v", node, err)
	}
	if err := claimNode(t, lis.Addr().String(), asEnvoy, node+"-other"); status.Code(err) != codes.PermissionDenied {
		t.Errorf("Envoy's certificate claiming another node: %v, want PermissionDenied", err)
	}
}
