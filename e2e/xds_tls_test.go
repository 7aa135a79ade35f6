package e2e

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"encoding/pem"
	"fmt"
	"io"
	"math/big"
	"net/http"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	core "github.com/envoyproxy/go-control-plane/envoy/config/core/v3"
	discovery "github.com/envoyproxy/go-control-plane/envoy/service/discovery/v3"
	"github.com/envoyproxy/go-control-plane/pkg/resource/v3"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials"
	"google.golang.org/grpc/status"

	"github.com/bgctl/bg/controlplane/devcerts"
	"github.com/bgctl/bg/e2e/harness"
)

// TestXDSTLS runs bg with xds.tls (mTLS, require_client_cert, node_id_from
// spiffe) on certificates made by `bg certs dev`: grpc-go xDS clients with
// gRFC A65 "tls" channel credentials move traffic through a switch; clients
// without a certificate, with another CA's or claiming another node are
// refused and counted; a certificate rotation mid-test reaches new
// connections while the open streams carry the next switch.
func TestXDSTLS(t *testing.T) {
	bin := harness.BuildBG(t)
	dir := t.TempDir()
	nodes := []string{"client-0", "client-1", "client-late", "intruder"}
	if out, errOut, code := harness.RunCLI(t, bin, "certs", "dev", "--dir", dir, "--node-ids", strings.Join(nodes, ",")); code != 0 {
		t.Fatalf("bg certs dev: exit %d\n%s%s", code, out, errOut)
	}
	s := newStackWith(t, stackOptions{blue: 1, green: 1, env: []string{
		"BG_XDS_TLS_CERT_FILE=" + filepath.Join(dir, devcerts.ServerFile),
		"BG_XDS_TLS_KEY_FILE=" + filepath.Join(dir, devcerts.ServerKeyFile),
		"BG_XDS_TLS_CLIENT_CA_FILE=" + filepath.Join(dir, devcerts.CAFile),
		"BG_XDS_TLS_REQUIRE_CLIENT_CERT=true",
		"BG_XDS_TLS_NODE_ID_FROM=spiffe",
	}})
	if !strings.Contains(s.bg.Log(), "xDS over mTLS") {
		t.Fatalf("bg did not report xDS over mTLS:\n%s", s.bg.Log())
	}
	clientFiles := func(node string) *harness.XDSClientTLS {
		cert, key := devcerts.ClientFiles(node)
		return &harness.XDSClientTLS{CAFile: filepath.Join(dir, devcerts.CAFile), CertFile: filepath.Join(dir, cert), KeyFile: filepath.Join(dir, key)}
	}
	start := func(node string, files *harness.XDSClientTLS) *harness.Traffic {
		return harness.StartTraffic(t, harness.TrafficOptions{XDSAddr: s.xdsAddr, NodeID: node, Service: service, Workers: 4, TLS: files})
	}

	t.Run("grpc-go xDS clients over mTLS move traffic through a switch", func(t *testing.T) {
		for _, n := range []string{"client-0", "client-1"} {
			c := start(n, clientFiles(n))
			c.Ready(t, 30*time.Second)
			s.clients = append(s.clients, c)
		}
		s.expectAll("blue", 20*time.Second)
		s.flip(t, "green", "switch", service, "--to", "green", "--instant")
	})

	t.Run("refused: no certificate, another CA, another node id; each counted", func(t *testing.T) {
		before := s.tlsFailures(t)
		caPool := x509.NewCertPool()
		caPEM, err := os.ReadFile(filepath.Join(dir, devcerts.CAFile))
		if err != nil {
			t.Fatal(err)
		}
		caPool.AppendCertsFromPEM(caPEM)
		other, err := devcerts.NewCA("another CA")
		if err != nil {
			t.Fatal(err)
		}
		foreign, err := other.Client("client-0")
		if err != nil {
			t.Fatal(err)
		}
		foreignCert, err := tls.X509KeyPair(foreign.CertPEM, foreign.KeyPEM)
		if err != nil {
			t.Fatal(err)
		}
		intruder := clientFiles("intruder")
		intruderCert, err := tls.LoadX509KeyPair(intruder.CertFile, intruder.KeyFile)
		if err != nil {
			t.Fatal(err)
		}
		cases := []struct {
			name  string
			certs []tls.Certificate
			code  codes.Code
		}{
			{"no certificate", nil, codes.Unavailable},
			{"another CA's certificate", []tls.Certificate{foreignCert}, codes.Unavailable},
			{"intruder's certificate claiming client-0", []tls.Certificate{intruderCert}, codes.PermissionDenied},
		}
		for _, c := range cases {
			err := claimNode(t, s.xdsAddr, &tls.Config{RootCAs: caPool, Certificates: c.certs}, "client-0")
			t.Logf("%s: %v", c.name, err)
			if status.Code(err) != c.code {
				t.Errorf("%s: %v, want %v", c.name, err, c.code)
			}
			if c.code == codes.PermissionDenied && (!strings.Contains(err.Error(), `"client-0"`) || !strings.Contains(err.Error(), `"intruder"`)) {
				t.Errorf("%s: %v, want both node ids named", c.name, err)
			}
		}
		// A grpc-go xDS client whose certificate names another node never
		// gets a config, so none of its calls succeed.
		liar := start("client-1", clientFiles("intruder"))
		from := liar.Mark()
		time.Sleep(2 * time.Second)
		if n := liar.Since(from); n.OK() != 0 {
			t.Errorf("xDS client claiming client-1 with intruder's certificate made %d calls", n.OK())
		}
		liar.Stop()
		var after map[string]float64
		deadline := time.Now().Add(10 * time.Second)
		for {
			after = s.tlsFailures(t)
			if after["handshake"]-before["handshake"] >= 2 && after["identity"]-before["identity"] >= 2 {
				break
			}
			if time.Now().After(deadline) {
				t.Fatalf("bg_xds_tls_failures_total before %v after %v: want handshake +2, identity +2", before, after)
			}
			time.Sleep(100 * time.Millisecond)
		}
		t.Logf("bg_xds_tls_failures_total before %v after %v", before, after)
		// Logged once per peer and reason, not per refusal.
		if n := strings.Count(s.bg.Log(), "reason=identity"); n != 1 {
			t.Errorf("%d identity refusals logged, want 1 (one peer):\n%s", n, grepLines(s.bg.Log(), "xDS TLS"))
		}
		if n := strings.Count(s.bg.Log(), "reason=handshake"); n != 1 {
			t.Errorf("%d handshake refusals logged, want 1 (one peer):\n%s", n, grepLines(s.bg.Log(), "xDS TLS"))
		}
		// The refusals left the accepted clients alone.
		if st := s.status(); st.Proxies.Connected != 2 || st.Proxies.Acked != 2 {
			t.Errorf("status proxies %+v, want the 2 accepted clients", st.Proxies)
		}
	})

	t.Run("certificates rotated: open streams continue, new connections see the new certificate", func(t *testing.T) {
		cfg := clientTLSConfig(t, clientFiles("client-late"))
		old := serialOf(t, s.xdsAddr, cfg)
		streams := s.proxyStreams(t)
		marks := s.marks()
		// Same CA (reused), new server certificate, written atomically.
		if out, errOut, code := harness.RunCLI(t, bin, "certs", "dev", "--dir", dir); code != 0 || !strings.Contains(out, "reused CA") {
			t.Fatalf("bg certs dev again: exit %d\n%s%s", code, out, errOut)
		}
		want := fileSerial(t, filepath.Join(dir, devcerts.ServerFile))
		if want.Cmp(old) == 0 {
			t.Fatal("rotation kept the serial")
		}
		rotated := time.Now()
		for {
			got := serialOf(t, s.xdsAddr, cfg)
			if got.Cmp(want) == 0 {
				break
			}
			if time.Since(rotated) > 5*time.Second {
				t.Fatalf("new connections still see serial %x 5s after the rotation, want %x", got, want)
			}
			time.Sleep(50 * time.Millisecond)
		}
		t.Logf("serial %x -> %x: seen by a new connection %v after the files changed", old, want, time.Since(rotated).Round(time.Millisecond))

		// The clients' streams are the same ones, and they carry a switch.
		s.flip(t, "blue", "switch", service, "--to", "blue", "--instant")
		if got := s.proxyStreams(t); !equalStreams(got, streams) {
			t.Errorf("streams before the rotation %v, after %v: want the same", streams, got)
		}
		if n := s.sumSince(marks); n.Failed != 0 {
			t.Errorf("failed calls across the rotation: %s", n)
		}
		late := start("client-late", clientFiles("client-late"))
		late.Ready(t, 30*time.Second)
		if n := late.WaitFor(t, 10*time.Second, func(n harness.Counts) bool { return n.Blue > 0 }); n.Green != 0 {
			t.Errorf("client connected after the rotation: %s, want blue only", n)
		}
	})
}

// claimNode opens an ADS stream over TLS claiming nodeID and returns how
// the first request was answered (nil: served).
func claimNode(t *testing.T, addr string, cfg *tls.Config, nodeID string) error {
	t.Helper()
	conn, err := grpc.NewClient(addr, grpc.WithTransportCredentials(credentials.NewTLS(cfg)))
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	st, err := discovery.NewAggregatedDiscoveryServiceClient(conn).StreamAggregatedResources(ctx)
	if err != nil {
		return err
	}
	if err := st.Send(&discovery.DiscoveryRequest{Node: &core.Node{Id: nodeID}, TypeUrl: resource.ClusterType}); err != nil {
		_, err = st.Recv()
		return err
	}
	_, err = st.Recv()
	return err
}

var tlsFailureRE = regexp.MustCompile(`(?m)^bg_xds_tls_failures_total\{reason="(\w+)"\} (\S+)$`)

// tlsFailures reads bg_xds_tls_failures_total by reason from /metrics.
func (s *stack) tlsFailures(t *testing.T) map[string]float64 {
	t.Helper()
	body := s.adminGet(t, "/metrics")
	out := map[string]float64{}
	for _, m := range tlsFailureRE.FindAllStringSubmatch(body, -1) {
		v, err := strconv.ParseFloat(m[2], 64)
		if err != nil {
			t.Fatal(err)
		}
		out[m[1]] = v
	}
	if _, ok := out["handshake"]; !ok {
		t.Fatalf("no bg_xds_tls_failures_total{reason=\"handshake\"} in /metrics")
	}
	return out
}

func (s *stack) adminGet(t *testing.T, path string) string {
	t.Helper()
	req, err := http.NewRequest(http.MethodGet, "http://"+s.admin+path, nil)
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Authorization", "Bearer "+s.token)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil || resp.StatusCode != http.StatusOK {
		t.Fatalf("GET %s: HTTP %d %v", path, resp.StatusCode, err)
	}
	return string(b)
}

// proxyStreams maps each connected node id to its stream id and connect time.
func (s *stack) proxyStreams(t *testing.T) map[string]string {
	t.Helper()
	var ps []struct {
		StreamID int64     `json:"stream_id"`
		NodeID   string    `json:"node_id"`
		Since    time.Time `json:"connected_since"`
	}
	if err := json.Unmarshal([]byte(s.adminGet(t, "/v1/proxies")), &ps); err != nil {
		t.Fatal(err)
	}
	out := map[string]string{}
	for _, p := range ps {
		out[p.NodeID] = fmt.Sprintf("stream %d since %s", p.StreamID, p.Since.Format(time.RFC3339Nano))
	}
	return out
}

func equalStreams(a, b map[string]string) bool {
	if len(a) != len(b) {
		return false
	}
	for k, v := range a {
		if b[k] != v {
			return false
		}
	}
	return true
}

func clientTLSConfig(t *testing.T, f *harness.XDSClientTLS) *tls.Config {
	t.Helper()
	pool := x509.NewCertPool()
	caPEM, err := os.ReadFile(f.CAFile)
	if err != nil {
		t.Fatal(err)
	}
	pool.AppendCertsFromPEM(caPEM)
	cert, err := tls.LoadX509KeyPair(f.CertFile, f.KeyFile)
	if err != nil {
		t.Fatal(err)
	}
	return &tls.Config{RootCAs: pool, Certificates: []tls.Certificate{cert}, NextProtos: []string{"h2"}}
}

// serialOf is the serial of the certificate a new TLS connection to addr sees.
func serialOf(t *testing.T, addr string, cfg *tls.Config) *big.Int {
	t.Helper()
	conn, err := tls.Dial("tcp", addr, cfg)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	return conn.ConnectionState().PeerCertificates[0].SerialNumber
}

func fileSerial(t *testing.T, path string) *big.Int {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	blk, _ := pem.Decode(b)
	if blk == nil {
		t.Fatalf("%s: no PEM", path)
	}
	c, err := x509.ParseCertificate(blk.Bytes)
	if err != nil {
		t.Fatal(err)
	}
	return c.SerialNumber
}

func grepLines(s, sub string) string {
	var out []string
	for _, l := range strings.Split(s, "\n") {
		if strings.Contains(l, sub) {
			out = append(out, l)
		}
	}
	return strings.Join(out, "\n")
}
