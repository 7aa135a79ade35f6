package xds

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/url"
	"os"
	"sync"
	"time"

	core "github.com/envoyproxy/go-control-plane/envoy/config/core/v3"
	discovery "github.com/envoyproxy/go-control-plane/envoy/service/discovery/v3"
	serverv3 "github.com/envoyproxy/go-control-plane/pkg/server/v3"
	"github.com/prometheus/client_golang/prometheus"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials"
	"google.golang.org/grpc/peer"
	"google.golang.org/grpc/status"
)

// TLSOptions serve xDS over TLS (xds.tls in the config).
type TLSOptions struct {
	CertFile, KeyFile string
	// ClientCAFile, if set, verifies client certificates (mTLS); with
	// RequireClientCert a client without one is refused at the handshake.
	ClientCAFile      string
	RequireClientCert bool
	// NodeIDFrom binds each stream's node id to its client certificate:
	// NodeIDFromSPIFFE or NodeIDFromCN; empty accepts any node id.
	NodeIDFrom string
}

// Sources of a stream's node identity (TLSOptions.NodeIDFrom).
const (
	NodeIDFromSPIFFE = "spiffe"
	NodeIDFromCN     = "cn"
)

// Reasons of bg_xds_tls_failures_total.
const (
	failHandshake = "handshake"
	failIdentity  = "identity"
)

// reloadEvery bounds how often the certificate files are checked for changes.
const reloadEvery = time.Second

// maxLoggedPeers bounds the set of peers whose failure was already logged;
// when full it starts over, so a peer may be logged again, never per request.
const maxLoggedPeers = 4096

// UseTLS makes Serve use TLS. The files are read now, so a bad certificate
// is a startup error; afterwards they are re-read when they change (checked
// at most once a second, on a new connection): only new handshakes see the
// new certificates, open connections and their streams are untouched. A
// change that does not load (say a key not yet written) keeps the previous
// certificates and is logged.
func (s *Server) UseTLS(o TLSOptions) error {
	switch o.NodeIDFrom {
	case "", NodeIDFromSPIFFE, NodeIDFromCN:
	default:
		return fmt.Errorf("node_id_from %q: want spiffe or cn", o.NodeIDFrom)
	}
	if o.NodeIDFrom != "" && o.ClientCAFile == "" {
		return errors.New("node_id_from needs client_ca_file")
	}
	src := &tlsSource{opts: o, log: s.log, now: time.Now}
	if _, err := src.load(); err != nil {
		return err
	}
	s.tlsSrc = src
	s.tracker.m.tlsFailures.WithLabelValues(failHandshake)
	s.tracker.m.tlsFailures.WithLabelValues(failIdentity)
	s.failures = &failures{count: s.tracker.m.tlsFailures, log: s.log, logged: map[string]struct{}{}}
	return nil
}

// serverCreds are the gRPC transport credentials of UseTLS, counting failed handshakes.
func (s *Server) serverCreds() credentials.TransportCredentials {
	base := &tls.Config{MinVersion: tls.VersionTLS12, GetConfigForClient: s.tlsSrc.forClient}
	return &countingCreds{TransportCredentials: credentials.NewTLS(base), fail: s.failures}
}

// callbacks are the tracker's, behind the node identity check when one is configured.
func (s *Server) callbacks() serverv3.Callbacks {
	if s.tlsSrc == nil || s.tlsSrc.opts.NodeIDFrom == "" {
		return s.tracker
	}
	return &identityGuard{Callbacks: s.tracker, from: s.tlsSrc.opts.NodeIDFrom, fail: s.failures,
		sotw: map[int64]*streamIdentity{}, delta: map[int64]*streamIdentity{}}
}

// tlsSource holds the current server tls.Config and rebuilds it when a file changes.
type tlsSource struct {
	opts TLSOptions
	log  *slog.Logger
	now  func() time.Time

	mu      sync.Mutex
	checked time.Time
	stamps  []fileStamp
	cfg     *tls.Config
}

type fileStamp struct {
	mod  time.Time
	size int64
}

func (t *tlsSource) files() []string {
	fs := []string{t.opts.CertFile, t.opts.KeyFile}
	if t.opts.ClientCAFile != "" {
		fs = append(fs, t.opts.ClientCAFile)
	}
	return fs
}

func (t *tlsSource) statAll() ([]fileStamp, error) {
	var out []fileStamp
	for _, f := range t.files() {
		st, err := os.Stat(f)
		if err != nil {
			return nil, err
		}
		out = append(out, fileStamp{st.ModTime(), st.Size()})
	}
	return out, nil
}

// load reads every file and installs the tls.Config they make.
func (t *tlsSource) load() (*tls.Config, error) {
	stamps, err := t.statAll()
	if err != nil {
		return nil, err
	}
	cert, err := tls.LoadX509KeyPair(t.opts.CertFile, t.opts.KeyFile)
	if err != nil {
		return nil, fmt.Errorf("server certificate: %w", err)
	}
	cfg := &tls.Config{
		MinVersion:   tls.VersionTLS12,
		Certificates: []tls.Certificate{cert},
		NextProtos:   []string{"h2"}, // gRPC requires ALPN h2
	}
	if t.opts.ClientCAFile != "" {
		pem, err := os.ReadFile(t.opts.ClientCAFile)
		if err != nil {
			return nil, fmt.Errorf("client CA: %w", err)
		}
		pool := x509.NewCertPool()
		if !pool.AppendCertsFromPEM(pem) {
			return nil, fmt.Errorf("client CA %s: no PEM certificate", t.opts.ClientCAFile)
		}
		cfg.ClientCAs = pool
		cfg.ClientAuth = tls.VerifyClientCertIfGiven
		if t.opts.RequireClientCert {
			cfg.ClientAuth = tls.RequireAndVerifyClientCert
		}
	}
	t.mu.Lock()
	t.cfg, t.stamps, t.checked = cfg, stamps, t.now()
	t.mu.Unlock()
	return cfg, nil
}

// forClient is tls.Config.GetConfigForClient: the current config, re-read
// first if a file changed and it was not checked within reloadEvery.
func (t *tlsSource) forClient(*tls.ClientHelloInfo) (*tls.Config, error) {
	t.mu.Lock()
	cfg, due := t.cfg, t.now().Sub(t.checked) >= reloadEvery
	if due {
		t.checked = t.now()
	}
	old := t.stamps
	t.mu.Unlock()
	if !due {
		return cfg, nil
	}
	stamps, err := t.statAll()
	if err != nil {
		t.log.Warn("xDS TLS: cannot check certificate files; keeping the loaded ones", "error", err)
		return cfg, nil
	}
	if equalStamps(old, stamps) {
		return cfg, nil
	}
	next, err := t.load()
	if err != nil {
		// Not recorded as loaded: retried on the next check.
		t.log.Warn("xDS TLS: changed certificate files do not load; keeping the previous ones", "error", err)
		return cfg, nil
	}
	t.log.Info("xDS TLS: certificates reloaded", "cert_file", t.opts.CertFile, "client_ca_file", t.opts.ClientCAFile)
	return next, nil
}

func equalStamps(a, b []fileStamp) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if !a[i].mod.Equal(b[i].mod) || a[i].size != b[i].size {
			return false
		}
	}
	return true
}

// failures counts TLS failures and logs the first of each peer (by host)
// and reason.
type failures struct {
	count  *prometheus.CounterVec
	log    *slog.Logger
	mu     sync.Mutex
	logged map[string]struct{}
}

func (f *failures) report(addr net.Addr, reason string, err error, attrs ...any) {
	f.count.WithLabelValues(reason).Inc()
	host := ""
	if addr != nil {
		host = addr.String()
		if h, _, e := net.SplitHostPort(host); e == nil {
			host = h
		}
	}
	key := reason + " " + host
	f.mu.Lock()
	_, seen := f.logged[key]
	if !seen {
		if len(f.logged) >= maxLoggedPeers {
			clear(f.logged)
		}
		f.logged[key] = struct{}{}
	}
	f.mu.Unlock()
	if seen {
		return
	}
	args := append([]any{"peer", host, "reason", reason, "error", err}, attrs...)
	f.log.Warn("xDS TLS: peer refused (its further refusals for this reason are only counted in bg_xds_tls_failures_total)", args...)
}

// countingCreds reports failed server handshakes.
type countingCreds struct {
	credentials.TransportCredentials
	fail *failures
}

func (c *countingCreds) ServerHandshake(conn net.Conn) (net.Conn, credentials.AuthInfo, error) {
	out, info, err := c.TransportCredentials.ServerHandshake(conn)
	if err != nil {
		c.fail.report(conn.RemoteAddr(), failHandshake, err)
	}
	return out, info, err
}

func (c *countingCreds) Clone() credentials.TransportCredentials {
	return &countingCreds{TransportCredentials: c.TransportCredentials.Clone(), fail: c.fail}
}

// identityGuard refuses a stream whose node id is not its client certificate's.
type identityGuard struct {
	serverv3.Callbacks
	from string
	fail *failures

	mu          sync.Mutex
	sotw, delta map[int64]*streamIdentity // by stream id (separate counters)
}

// streamIdentity is what a stream's certificate allows.
type streamIdentity struct {
	id   string // the node id the certificate names
	err  error  // why it names none
	addr net.Addr
}

// identityOf reads the node id that the peer's verified certificate names.
func identityOf(ctx context.Context, from string) *streamIdentity {
	p, ok := peer.FromContext(ctx)
	if !ok {
		return &streamIdentity{err: errors.New("no peer information")}
	}
	si := &streamIdentity{addr: p.Addr}
	info, ok := p.AuthInfo.(credentials.TLSInfo)
	if !ok || len(info.State.VerifiedChains) == 0 || len(info.State.PeerCertificates) == 0 {
		si.err = errors.New("no verified client certificate")
		return si
	}
	si.id, si.err = NodeIDOf(info.State.PeerCertificates[0], from)
	return si
}

// NodeIDOf is the node id a client certificate names: the path of its one
// spiffe:// URI SAN (spiffe://trust-domain/PATH -> PATH), or its Subject CN.
func NodeIDOf(cert *x509.Certificate, from string) (string, error) {
	switch from {
	case NodeIDFromCN:
		if cert.Subject.CommonName == "" {
			return "", errors.New("client certificate has no common name")
		}
		return cert.Subject.CommonName, nil
	case NodeIDFromSPIFFE:
		var ids []*url.URL
		for _, u := range cert.URIs {
			if u.Scheme == "spiffe" {
				ids = append(ids, u)
			}
		}
		switch {
		case len(ids) == 0:
			return "", errors.New("client certificate has no spiffe:// URI SAN")
		case len(ids) > 1:
			return "", fmt.Errorf("client certificate has %d SPIFFE IDs, want one", len(ids))
		case ids[0].Host == "" || len(ids[0].Path) < 2:
			return "", fmt.Errorf("SPIFFE ID %s has no trust domain or no path", ids[0])
		}
		return ids[0].Path[1:], nil // without the leading slash
	}
	return "", fmt.Errorf("node_id_from %q", from)
}

func (g *identityGuard) open(m map[int64]*streamIdentity, ctx context.Context, id int64) {
	si := identityOf(ctx, g.from)
	g.mu.Lock()
	m[id] = si
	g.mu.Unlock()
}

func (g *identityGuard) close(m map[int64]*streamIdentity, id int64) {
	g.mu.Lock()
	delete(m, id)
	g.mu.Unlock()
}

// check refuses a request whose node id the stream's certificate does not
// name. The node is the stream's (the server fills it in on requests
// without one), so every request is checked, at the cost of a comparison.
func (g *identityGuard) check(m map[int64]*streamIdentity, id int64, node *core.Node) error {
	g.mu.Lock()
	si := m[id]
	g.mu.Unlock()
	if si == nil {
		return status.Error(codes.Internal, "xds: stream identity unknown")
	}
	claimed := node.GetId()
	if si.err == nil && claimed == si.id {
		return nil
	}
	var err error
	if si.err != nil {
		err = status.Errorf(codes.PermissionDenied, "xds: node id %q refused: %v (xds.tls.node_id_from: %s)", claimed, si.err, g.from)
	} else {
		err = status.Errorf(codes.PermissionDenied, "xds: node id %q refused: the client certificate names node id %q (xds.tls.node_id_from: %s)", claimed, si.id, g.from)
	}
	g.fail.report(si.addr, failIdentity, err, "node_id", claimed, "certificate_node_id", si.id)
	return err
}

func (g *identityGuard) OnStreamOpen(ctx context.Context, id int64, typeURL string) error {
	g.open(g.sotw, ctx, id)
	return g.Callbacks.OnStreamOpen(ctx, id, typeURL)
}

func (g *identityGuard) OnStreamClosed(id int64, node *core.Node) {
	g.close(g.sotw, id)
	g.Callbacks.OnStreamClosed(id, node)
}

func (g *identityGuard) OnStreamRequest(id int64, req *discovery.DiscoveryRequest) error {
	if err := g.check(g.sotw, id, req.GetNode()); err != nil {
		return err
	}
	return g.Callbacks.OnStreamRequest(id, req)
}

func (g *identityGuard) OnDeltaStreamOpen(ctx context.Context, id int64, typeURL string) error {
	g.open(g.delta, ctx, id)
	return g.Callbacks.OnDeltaStreamOpen(ctx, id, typeURL)
}

func (g *identityGuard) OnDeltaStreamClosed(id int64, node *core.Node) {
	g.close(g.delta, id)
	g.Callbacks.OnDeltaStreamClosed(id, node)
}

func (g *identityGuard) OnStreamDeltaRequest(id int64, req *discovery.DeltaDiscoveryRequest) error {
	if err := g.check(g.delta, id, req.GetNode()); err != nil {
		return err
	}
	return g.Callbacks.OnStreamDeltaRequest(id, req)
}

// OnFetchRequest refuses REST fetches (not served by bg, but the
// interface has them): they carry no stream to check.
func (g *identityGuard) OnFetchRequest(ctx context.Context, req *discovery.DiscoveryRequest) error {
	si := identityOf(ctx, g.from)
	if si.err == nil && si.id == req.GetNode().GetId() {
		return g.Callbacks.OnFetchRequest(ctx, req)
	}
	return status.Error(codes.PermissionDenied, "xds: fetch refused: node id does not match the client certificate")
}
