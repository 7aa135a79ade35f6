package xds

import (
	"bytes"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"strings"
	"testing"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
)

// Each failure is counted; only the first per peer host and reason is
// logged, and the set of logged peers stays bounded.
func TestFailuresLogOncePerPeer(t *testing.T) {
	var buf bytes.Buffer
	m := newMetrics(prometheus.NewRegistry())
	f := &failures{count: m.tlsFailures, log: slog.New(slog.NewTextHandler(&buf, nil)), logged: map[string]struct{}{}}
	peer := func(host string, port int) net.Addr { return &net.TCPAddr{IP: net.ParseIP(host), Port: port} }
	for port := 1000; port < 1100; port++ { // a client retrying from new ports
		f.report(peer("10.0.0.1", port), failHandshake, errors.New("bad certificate"))
	}
	f.report(peer("10.0.0.1", 1), failIdentity, errors.New("node id"))
	f.report(peer("10.0.0.2", 1), failHandshake, errors.New("bad certificate"))
	if got := testutil.ToFloat64(m.tlsFailures.WithLabelValues(failHandshake)); got != 101 {
		t.Errorf("handshake failures %v, want 101", got)
	}
	if got := testutil.ToFloat64(m.tlsFailures.WithLabelValues(failIdentity)); got != 1 {
		t.Errorf("identity failures %v, want 1", got)
	}
	if lines := strings.Count(buf.String(), "\n"); lines != 3 {
		t.Errorf("%d log lines, want 3 (one per peer and reason):\n%s", lines, buf.String())
	}
	for i := range 3 * maxLoggedPeers {
		f.report(peer(fmt.Sprintf("10.1.%d.%d", i/256, i%256), 1), failHandshake, errors.New("x"))
		if len(f.logged) > maxLoggedPeers {
			t.Fatalf("%d peers remembered, bound %d", len(f.logged), maxLoggedPeers)
		}
	}
}
