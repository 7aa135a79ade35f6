package xds_test

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"log/slog"
	"math/big"
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	core "github.com/envoyproxy/go-control-plane/envoy/config/core/v3"
	discovery "github.com/envoyproxy/go-control-plane/envoy/service/discovery/v3"
	"github.com/envoyproxy/go-control-plane/pkg/resource/v3"
	"github.com/prometheus/client_golang/prometheus"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/status"

	"github.com/bgctl/bg/controlplane/devcerts"
	"github.com/bgctl/bg/controlplane/xds"
)

// tlsEnv is a CA's files and a server using them.
type tlsEnv struct {
	dir  string
	ca   *devcerts.CA
	srv  *xds.Server
	addr string
	reg  *prometheus.Registry
}

func startTLSServer(t *testing.T, o xds.TLSOptions) *tlsEnv {
	t.Helper()
	dir := t.TempDir()
	res, err := devcerts.Dev(dir, []string{"127.0.0.1"}, nil)
	if err != nil {
		t.Fatal(err)
	}
	o.CertFile, o.KeyFile = filepath.Join(dir, devcerts.ServerFile), filepath.Join(dir, devcerts.ServerKeyFile)
	if o.ClientCAFile == "" && (o.RequireClientCert || o.NodeIDFrom != "") {
		o.ClientCAFile = filepath.Join(dir, devcerts.CAFile)
	}
	reg := prometheus.NewRegistry()
	s := xds.NewServer(slog.New(slog.DiscardHandler), reg)
	s.Load(resources(0))
	if err := s.UseTLS(o); err != nil {
		t.Fatal(err)
	}
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- s.Serve(ctx, lis) }()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("serve: %v", err)
		}
	})
	return &tlsEnv{dir: dir, ca: res.CA, srv: s, addr: lis.Addr().String(), reg: reg}
}

// failures is bg_xds_tls_failures_total{reason}.
func (e *tlsEnv) failures(t *testing.T, reason string) float64 {
	t.Helper()
	mfs, err := e.reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, mf := range mfs {
		if mf.GetName() != "bg_xds_tls_failures_total" {
			continue
		}
		for _, m := range mf.GetMetric() {
			for _, l := range m.GetLabel() {
				if l.GetName() == "reason" && l.GetValue() == reason {
					return m.GetCounter().GetValue()
				}
			}
		}
	}
	t.Fatalf("no bg_xds_tls_failures_total{reason=%q}", reason)
	return 0
}

// clientTLS is a client config trusting ca, presenting pair (if any).
func clientTLS(ca *devcerts.CA, pair *devcerts.Pair) *tls.Config {
	pool := x509.NewCertPool()
	pool.AddCert(ca.Cert)
	cfg := &tls.Config{RootCAs: pool, ServerName: "127.0.0.1"}
	if pair != nil {
		c, err := tls.X509KeyPair(pair.CertPEM, pair.KeyPEM)
		if err != nil {
			panic(err)
		}
		cfg.Certificates = []tls.Certificate{c}
	}
	return cfg
}

type adsClient = discovery.AggregatedDiscoveryService_StreamAggregatedResourcesClient

// openADS opens an ADS stream claiming nodeID and sends a CDS request; the
// first response or error is its answer.
func openADS(t *testing.T, addr string, creds credentials.TransportCredentials, nodeID string) (adsClient, *discovery.DiscoveryResponse, error) {
	t.Helper()
	conn, err := grpc.NewClient(addr, grpc.WithTransportCredentials(creds))
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	t.Cleanup(func() { cancel(); conn.Close() })
	st, err := discovery.NewAggregatedDiscoveryServiceClient(conn).StreamAggregatedResources(ctx)
	if err != nil {
		return nil, nil, err
	}
	if err := st.Send(&discovery.DiscoveryRequest{Node: &core.Node{Id: nodeID}, TypeUrl: resource.ClusterType}); err != nil {
		_, err = st.Recv() // the stream's status
		return nil, nil, err
	}
	resp, err := recv(t, st)
	return st, resp, err
}

// recv waits at most 5 s for the next response.
func recv(t *testing.T, st adsClient) (*discovery.DiscoveryResponse, error) {
	t.Helper()
	type r struct {
		resp *discovery.DiscoveryResponse
		err  error
	}
	ch := make(chan r, 1)
	go func() { resp, err := st.Recv(); ch <- r{resp, err} }()
	select {
	case got := <-ch:
		return got.resp, got.err
	case <-time.After(5 * time.Second):
		t.Fatal("no response or error within 5s")
		return nil, nil
	}
}

func mustClient(t *testing.T, ca *devcerts.CA, node string) *devcerts.Pair {
	t.Helper()
	p, err := ca.Client(node)
	if err != nil {
		t.Fatal(err)
	}
	return p
}

// mTLS with node_id_from spiffe: the certificate's node may stream; a
// client without a certificate, one of another CA, a plaintext one and one
// claiming another node id are refused and counted.
func TestTLSRefusesWrongClients(t *testing.T) {
	e := startTLSServer(t, xds.TLSOptions{RequireClientCert: true, NodeIDFrom: xds.NodeIDFromSPIFFE})
	a := mustClient(t, e.ca, "node-a")

	if _, resp, err := openADS(t, e.addr, credentials.NewTLS(clientTLS(e.ca, a)), "node-a"); err != nil || len(resp.GetResources()) == 0 {
		t.Fatalf("node-a with its certificate: %v, %d resources", err, len(resp.GetResources()))
	}
	if h, i := e.failures(t, "handshake"), e.failures(t, "identity"); h != 0 || i != 0 {
		t.Fatalf("failures before any refusal: handshake %v identity %v", h, i)
	}

	_, _, err := openADS(t, e.addr, credentials.NewTLS(clientTLS(e.ca, a)), "node-b")
	if st := status.Convert(err); st.Code() != codes.PermissionDenied || !strings.Contains(st.Message(), `"node-b"`) || !strings.Contains(st.Message(), `"node-a"`) {
		t.Errorf("node-a's certificate claiming node-b: %v; want PermissionDenied naming both", err)
	}
	if got := e.failures(t, "identity"); got != 1 {
		t.Errorf("identity failures %v, want 1", got)
	}

	other, err := devcerts.NewCA("other CA")
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct {
		name  string
		creds credentials.TransportCredentials
	}{
		{"no certificate", credentials.NewTLS(clientTLS(e.ca, nil))},
		{"another CA's certificate", credentials.NewTLS(clientTLS(e.ca, mustClient(t, other, "node-a")))},
		{"plaintext", insecure.NewCredentials()},
	} {
		before := e.failures(t, "handshake")
		_, _, err := openADS(t, e.addr, c.creds, "node-a")
		if err == nil || status.Code(err) == codes.OK {
			t.Errorf("%s: stream served", c.name)
		}
		// The server counts once its handshake ends (a client may see the
		// refusal first).
		deadline := time.Now().Add(5 * time.Second)
		for e.failures(t, "handshake") == before && time.Now().Before(deadline) {
			time.Sleep(10 * time.Millisecond)
		}
		if got := e.failures(t, "handshake"); got <= before {
			t.Errorf("%s: handshake failures %v, want more than %v (error %v)", c.name, got, before, err)
		}
	}
	if got := e.failures(t, "identity"); got != 1 {
		t.Errorf("identity failures %v, want still 1", got)
	}
}

// node_id_from cn reads the Subject common name; a later request on the
// stream that claims another node is refused too.
func TestTLSNodeIDFromCN(t *testing.T) {
	e := startTLSServer(t, xds.TLSOptions{NodeIDFrom: xds.NodeIDFromCN})
	a := mustClient(t, e.ca, "node-a")
	st, _, err := openADS(t, e.addr, credentials.NewTLS(clientTLS(e.ca, a)), "node-a")
	if err != nil {
		t.Fatal(err)
	}
	if err := st.Send(&discovery.DiscoveryRequest{Node: &core.Node{Id: "node-x"}, TypeUrl: resource.RouteType, ResourceNames: []string{"web"}}); err != nil {
		t.Fatal(err)
	}
	if _, err := recv(t, st); status.Code(err) != codes.PermissionDenied {
		t.Errorf("switching node id mid-stream: %v, want PermissionDenied", err)
	}
	// Without require_client_cert a client may connect without a
	// certificate, but then names no node.
	_, _, err = openADS(t, e.addr, credentials.NewTLS(clientTLS(e.ca, nil)), "node-a")
	if st := status.Convert(err); st.Code() != codes.PermissionDenied || !strings.Contains(st.Message(), "no verified client certificate") {
		t.Errorf("no certificate: %v", err)
	}
	if got := e.failures(t, "identity"); got != 2 {
		t.Errorf("identity failures %v, want 2", got)
	}
}

// TLS without client certificates: any node id.
func TestTLSServerOnly(t *testing.T) {
	e := startTLSServer(t, xds.TLSOptions{})
	if _, _, err := openADS(t, e.addr, credentials.NewTLS(clientTLS(e.ca, nil)), "anyone"); err != nil {
		t.Fatal(err)
	}
}

// serverSerial is the serial of the certificate a new TLS connection sees.
func serverSerial(t *testing.T, addr string, cfg *tls.Config) *big.Int {
	t.Helper()
	cfg = cfg.Clone()
	cfg.NextProtos = []string{"h2"}
	conn, err := tls.Dial("tcp", addr, cfg)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	return conn.ConnectionState().PeerCertificates[0].SerialNumber
}

// Rotated files reach new connections within about a second; an open
// stream keeps its connection and keeps receiving updates. A rotation that
// does not load keeps the previous certificate. A new client CA applies
// to new connections.
func TestTLSReloadKeepsStreams(t *testing.T) {
	e := startTLSServer(t, xds.TLSOptions{RequireClientCert: true, NodeIDFrom: xds.NodeIDFromSPIFFE})
	a := mustClient(t, e.ca, "node-a")
	cfgA := clientTLS(e.ca, a)
	st, _, err := openADS(t, e.addr, credentials.NewTLS(cfgA), "node-a")
	if err != nil {
		t.Fatal(err)
	}
	first := serverSerial(t, e.addr, cfgA)

	rotated, err := devcerts.Dev(e.dir, []string{"127.0.0.1"}, nil) // same CA, new server certificate
	if err != nil {
		t.Fatal(err)
	}
	want := rotated.Server.Cert.SerialNumber
	if want.Cmp(first) == 0 {
		t.Fatal("rotation kept the serial")
	}
	start := time.Now()
	for serverSerial(t, e.addr, cfgA).Cmp(want) != 0 {
		if time.Since(start) > 3*time.Second {
			t.Fatalf("new connections still see serial %x after 3s, want %x", first, want)
		}
		time.Sleep(50 * time.Millisecond)
	}
	t.Logf("new certificate seen by new connections %v after the rotation", time.Since(start).Round(time.Millisecond))

	// The stream opened before the rotation still answers, on its connection.
	if err := st.Send(&discovery.DiscoveryRequest{TypeUrl: resource.EndpointType}); err != nil {
		t.Fatal(err)
	}
	if resp, err := recv(t, st); err != nil || resp == nil {
		t.Fatalf("stream opened before the rotation: %v", err)
	}

	// Garbage in the certificate file: the last good certificate stays.
	if err := devcerts.WriteFile(filepath.Join(e.dir, devcerts.ServerFile), []byte("not a certificate"), 0o644); err != nil {
		t.Fatal(err)
	}
	time.Sleep(1100 * time.Millisecond)
	if got := serverSerial(t, e.addr, cfgA); got.Cmp(want) != 0 {
		t.Errorf("after a bad rotation new connections see %x, want the last good %x", got, want)
	}
	if err := rotated.Server.Write(e.dir, devcerts.ServerFile, devcerts.ServerKeyFile); err != nil {
		t.Fatal(err)
	}

	// A new client CA: its clients are accepted, the old CA's refused.
	newCA, err := devcerts.NewCA("new CA")
	if err != nil {
		t.Fatal(err)
	}
	if err := devcerts.WriteFile(filepath.Join(e.dir, devcerts.CAFile), newCA.PEM(), 0o644); err != nil {
		t.Fatal(err)
	}
	time.Sleep(1100 * time.Millisecond)
	b := mustClient(t, newCA, "node-b")
	cfgB := clientTLS(e.ca, b) // the server certificate is still the first CA's
	if _, _, err := openADS(t, e.addr, credentials.NewTLS(cfgB), "node-b"); err != nil {
		t.Errorf("client of the new CA: %v", err)
	}
	if _, _, err := openADS(t, e.addr, credentials.NewTLS(cfgA), "node-a"); err == nil {
		t.Error("client of the replaced CA served")
	}
}

func TestUseTLSRefusesBadFiles(t *testing.T) {
	dir := t.TempDir()
	if _, err := devcerts.Dev(dir, []string{"127.0.0.1"}, nil); err != nil {
		t.Fatal(err)
	}
	cert, key, ca := filepath.Join(dir, devcerts.ServerFile), filepath.Join(dir, devcerts.ServerKeyFile), filepath.Join(dir, devcerts.CAFile)
	bad := filepath.Join(dir, "bad.pem")
	if err := os.WriteFile(bad, []byte("junk"), 0o600); err != nil {
		t.Fatal(err)
	}
	for name, o := range map[string]xds.TLSOptions{
		"missing key":        {CertFile: cert, KeyFile: filepath.Join(dir, "missing")},
		"key of another":     {CertFile: cert, KeyFile: ca},
		"junk client CA":     {CertFile: cert, KeyFile: key, ClientCAFile: bad},
		"node id without CA": {CertFile: cert, KeyFile: key, NodeIDFrom: "cn"},
		"unknown source":     {CertFile: cert, KeyFile: key, ClientCAFile: ca, NodeIDFrom: "dns"},
	} {
		s := xds.NewServer(slog.New(slog.DiscardHandler), nil)
		if err := s.UseTLS(o); err == nil {
			t.Errorf("%s: UseTLS accepted %+v", name, o)
		}
	}
}
