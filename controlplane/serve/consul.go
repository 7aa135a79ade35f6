package serve

import (
	"context"
	"fmt"
	"net"
	"net/url"
	"sync"
	"time"

	"github.com/hashicorp/consul/api"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/bgctl/bg/controlplane/config"
)

// Consul connections. Consul allows each client address 200 concurrent
// HTTP connections by default, and a blocking query holds one for its
// whole wait, so bg uses a fixed number whatever the number of services,
// in three sets, each with its own limit, that cannot starve one another:
const (
	// consulWatchConns: the blocking queries on health/state/any,
	// catalog/services, the traffic state folder and the ACK reports.
	consulWatchConns = 4
	// consulReaders: per-service membership reads.
	consulReaders = 2
	// consulControlConns: leader election (one blocking query on the lock
	// key) and every write: state, history, sessions, ACK reports. Never
	// queued behind a membership read.
	consulControlConns = 2
)

// ConsulConnections is the most TCP connections bg opens to Consul.
const ConsulConnections = consulWatchConns + consulReaders + consulControlConns

// consulClientSet is one Consul client per use, each with its own bounded
// set of connections.
type consulClientSet struct {
	Watch, Read, Control *api.Client
}

func consulClients(c config.Consul, reg prometheus.Registerer) (consulClientSet, error) {
	open := prometheus.NewGaugeVec(prometheus.GaugeOpts{
		Name: "bg_consul_connections",
		Help: "Open TCP connections to Consul, by use (watch: blocking queries; read: membership reads; control: election and writes).",
	}, []string{"use"})
	if reg != nil {
		reg.MustRegister(open)
	}
	token, err := c.ResolveToken()
	if err != nil {
		return consulClientSet{}, err
	}
	var p consulClientSet
	for _, x := range []struct {
		client **api.Client
		use    string
		conns  int
	}{{&p.Watch, "watch", consulWatchConns}, {&p.Read, "read", consulReaders}, {&p.Control, "control", consulControlConns}} {
		client, err := consulClient(c, token, x.conns, open.WithLabelValues(x.use))
		if err != nil {
			return consulClientSet{}, err
		}
		*x.client = client
	}
	return p, nil
}

// consulClient returns a client that never has more than conns sockets
// open to Consul: its transport keeps at most conns (dialling, busy or
// idle), and its dialer holds one slot per socket until the socket
// closes, so the bound holds at the socket level whatever the transport's
// own bookkeeping does when requests are cancelled. Further requests wait
// for a free connection.
//
// Every client gets the same ACL token (token, resolved once from
// consul.token or consul.token_file) and TLS settings (consul.tls): the
// watch, read and control sets, so membership, KV, the lock and session,
// and the ACK reports all reach Consul the same way.
func consulClient(c config.Consul, token string, conns int, open prometheus.Gauge) (*api.Client, error) {
	ac := api.DefaultConfig() // a fresh pooled transport per call
	ac.Address, ac.Scheme = c.Address, c.Scheme()
	if u, err := url.Parse(c.Address); err == nil && (u.Scheme == "http" || u.Scheme == "https") {
		ac.Address = u.Host
	}
	ac.Token = token
	if t := c.TLS; t.Enabled() {
		ac.TLSConfig = api.TLSConfig{Address: t.ServerName, CAFile: t.CAFile, CertFile: t.CertFile, KeyFile: t.KeyFile}
	}
	ac.Datacenter = c.Datacenter
	ac.Transport.MaxConnsPerHost = conns
	ac.Transport.MaxIdleConnsPerHost = conns
	ac.Transport.DialContext = boundedDialer(conns, open)
	client, err := api.NewClient(ac)
	if err != nil {
		return nil, fmt.Errorf("consul client: %w", err)
	}
	return client, nil
}

// boundedDialer dials at most n sockets that are open at once; a dial
// waits for a slot until its context ends.
func boundedDialer(n int, open prometheus.Gauge) func(ctx context.Context, network, addr string) (net.Conn, error) {
	slots := make(chan struct{}, n)
	d := &net.Dialer{Timeout: 30 * time.Second, KeepAlive: 30 * time.Second}
	return func(ctx context.Context, network, addr string) (net.Conn, error) {
		select {
		case slots <- struct{}{}:
		case <-ctx.Done():
			return nil, ctx.Err()
		}
		conn, err := d.DialContext(ctx, network, addr)
		if err != nil {
			<-slots
			return nil, err
		}
		open.Inc()
		return &slotConn{Conn: conn, release: func() { <-slots; open.Dec() }}, nil
	}
}

// slotConn gives its dialer's slot back when closed.
type slotConn struct {
	net.Conn
	once    sync.Once
	release func()
}

func (c *slotConn) Close() error {
	err := c.Conn.Close()
	c.once.Do(c.release)
	return err
}
