package config

import (
	"errors"
	"fmt"
	"net"
	"net/netip"
	"net/url"
	"strconv"
	"strings"
)

// splitListen parses host:port with a numeric port in 1..65535.
func splitListen(addr string) (host string, port int, err error) {
	host, p, err := net.SplitHostPort(addr)
	if err != nil {
		var ae *net.AddrError
		if errors.As(err, &ae) {
			// net's message repeats the address; we already quote it.
			return "", 0, fmt.Errorf("%q: %s", addr, strings.TrimSuffix(ae.Err, " in address"))
		}
		return "", 0, fmt.Errorf("%q: %v", addr, err)
	}
	port, err = strconv.Atoi(p)
	if err != nil || port < 1 || port > 65535 {
		return "", 0, fmt.Errorf("%q: port must be a number in 1..65535", addr)
	}
	return host, port, nil
}

// isLoopback is true only for localhost, 127.0.0.0/8 and ::1;
// an empty host binds every interface, so it is not loopback.
func isLoopback(host string) bool {
	if host == "localhost" {
		return true
	}
	ip, err := netip.ParseAddr(host)
	return err == nil && ip.IsLoopback()
}

// isWildcard reports a host that binds every interface.
func isWildcard(host string) bool {
	ip, err := netip.ParseAddr(host)
	return host == "" || (err == nil && ip.IsUnspecified())
}

// checkConsulAddress accepts host:port or an http(s) URL with a host,
// the TCP forms the Consul API client understands.
func checkConsulAddress(addr string) error {
	if addr == "" {
		return errors.New("required")
	}
	if !strings.Contains(addr, "://") {
		_, _, err := splitListen(addr)
		return err
	}
	return checkHTTPURL(addr)
}

// checkHTTPURL accepts an http or https URL with a host.
func checkHTTPURL(addr string) error {
	u, err := url.Parse(addr)
	switch {
	case err != nil:
		return fmt.Errorf("%q: not a valid URL", addr)
	case u.Scheme != "http" && u.Scheme != "https":
		return fmt.Errorf("%q: URL scheme must be http or https", addr)
	case u.Host == "":
		return fmt.Errorf("%q: URL has no host", addr)
	}
	return nil
}
