package serve

import (
	"crypto/rand"
	"encoding/hex"
	"net"
	"os"
)

// replicaID names this process: host plus a random suffix, so two
// replicas on one host (or a restart) never share an identity.
func replicaID() string {
	host, _ := os.Hostname()
	b := make([]byte, 3)
	_, _ = rand.Read(b)
	return host + "-" + hex.EncodeToString(b)
}

// advertise is the admin address other replicas forward commands to; a
// wildcard listen address is replaced by the host name.
func advertise(listen string) string {
	host, port, err := net.SplitHostPort(listen)
	if err != nil {
		return listen
	}
	if ip := net.ParseIP(host); host == "" || ip != nil && ip.IsUnspecified() {
		if h, err := os.Hostname(); err == nil {
			host = h
		}
	}
	return net.JoinHostPort(host, port)
}
