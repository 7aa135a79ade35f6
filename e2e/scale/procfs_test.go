//go:build linux

package scale

import (
	"net"
	"os"
	"testing"
)

func TestProcReaders(t *testing.T) {
	pid := os.Getpid()
	if rss, err := rssBytes(pid); err != nil || rss < 1<<20 {
		t.Errorf("rssBytes = %d, %v", rss, err)
	}
	if _, err := cpuTime(pid); err != nil {
		t.Error(err)
	}

	lis, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer lis.Close()
	port := lis.Addr().(*net.TCPAddr).Port
	count := func() int {
		n, err := establishedTo(pid, port)
		if err != nil {
			t.Fatal(err)
		}
		return n
	}
	if n := count(); n != 0 {
		t.Fatalf("%d connections before dialing", n)
	}
	var conns []net.Conn
	for range 3 {
		c, err := net.Dial("tcp", lis.Addr().String())
		if err != nil {
			t.Fatal(err)
		}
		conns = append(conns, c)
		s, err := lis.Accept()
		if err != nil {
			t.Fatal(err)
		}
		defer s.Close() // accepted ends have the listener's port as local port: not counted
	}
	if n := count(); n != 3 {
		t.Errorf("%d connections to the port, want 3", n)
	}
	conns[0].Close()
	if n := count(); n != 2 {
		t.Errorf("%d connections after closing one, want 2", n)
	}
	for _, c := range conns[1:] {
		c.Close()
	}
}
