package harness

import (
	"net"
)

// FreePort returns a TCP port on 127.0.0.1 that was free a moment ago. The
// usual small race (someone else may grab it before use) is accepted.
func FreePort(t TB) int {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatalf("harness: free port: %v", err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port
}

// freeTCPUDPPort finds a port free for both TCP and UDP, as Serf needs both.
func freeTCPUDPPort(t TB) int {
	t.Helper()
	for range 50 {
		l, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatalf("harness: free port: %v", err)
		}
		port := l.Addr().(*net.TCPAddr).Port
		u, err := net.ListenUDP("udp", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1), Port: port})
		l.Close()
		if err == nil {
			u.Close()
			return port
		}
	}
	t.Fatalf("harness: no port free for both TCP and UDP")
	return 0
}
