package xds

import (
	"fmt"
	"strconv"
	"strings"

	core "github.com/envoyproxy/go-control-plane/envoy/config/core/v3"
)

// Sessions says whether an xDS client keeps a rolling service's sessions:
// whether it places hosts on its hash ring by the endpoint's hash key
// (EDS metadata envoy.lb hash_key, gRFC A76), which bg keeps per slot
// across a roll, or by address, which a roll changes.
type Sessions string

const (
	// SessionsKept: the client hashes by the endpoint's hash key.
	SessionsKept Sessions = "kept"
	// SessionsOptIn: the client can, but only when configured to (an
	// environment variable bg cannot see).
	SessionsOptIn Sessions = "opt_in"
	// SessionsLost: the client hashes by address; a roll moves its
	// sessions more than once.
	SessionsLost Sessions = "lost"
	// SessionsUnknown: a client bg has no facts about.
	SessionsUnknown Sessions = "unknown"
)

// A76 is on by default in grpc-go from 1.80.0 (grpc-go #8922; 1.79.3 still
// defaults GRPC_XDS_ENDPOINT_HASH_KEY_BACKWARD_COMPAT to true) and behind
// that variable from 1.73.0 (grpc-go #8159).
var (
	grpcGoA76Default = semver{1, 80, 0}
	grpcGoA76OptIn   = semver{1, 73, 0}
)

// ClientSessions classifies a node's client, with the reason in words.
// Envoy honours hash_key; grpc-go does by default from 1.80.0;
// grpc-js-xds (1.14 measured) hashes by address.
func ClientSessions(n *core.Node) (Sessions, string) {
	agent, version := n.GetUserAgentName(), nodeVersion(n)
	switch {
	case agent == "envoy":
		return SessionsKept, "Envoy places hosts by hash_key"
	case agent == "gRPC Go":
		v, ok := parseSemver(version)
		switch {
		case !ok:
			return SessionsUnknown, fmt.Sprintf("grpc-go of unreadable version %q", version)
		case !v.less(grpcGoA76Default):
			return SessionsKept, "grpc-go " + version + " places hosts by hash_key"
		case !v.less(grpcGoA76OptIn):
			return SessionsOptIn, "grpc-go " + version + " places hosts by hash_key only with GRPC_XDS_ENDPOINT_HASH_KEY_BACKWARD_COMPAT=false (the default from 1.80.0)"
		default:
			return SessionsLost, "grpc-go " + version + " places hosts by address (hash_key from 1.73.0 opt-in, 1.80.0 default)"
		}
	case strings.Contains(strings.ToLower(agent), "grpc-js") || strings.Contains(strings.ToLower(agent), "grpc node"):
		return SessionsLost, "grpc-js places hosts by address"
	case agent == "":
		return SessionsUnknown, "the client sent no user agent"
	}
	return SessionsUnknown, fmt.Sprintf("no facts about %q %s", agent, version)
}

// nodeVersion is the client's version string, from either form a node
// may send it in.
func nodeVersion(n *core.Node) string {
	if v := n.GetUserAgentVersion(); v != "" {
		return v
	}
	if sv := n.GetUserAgentBuildVersion().GetVersion(); sv != nil {
		return fmt.Sprintf("%d.%d.%d", sv.GetMajorNumber(), sv.GetMinorNumber(), sv.GetPatch())
	}
	return ""
}

type semver [3]int

func (a semver) less(b semver) bool {
	for i := range a {
		if a[i] != b[i] {
			return a[i] < b[i]
		}
	}
	return false
}

// parseSemver reads "1.85.0", "v1.85.0" or "1.86.0-dev".
func parseSemver(s string) (semver, bool) {
	s = strings.TrimPrefix(s, "v")
	if i := strings.IndexAny(s, "-+ "); i >= 0 {
		s = s[:i]
	}
	parts := strings.Split(s, ".")
	if len(parts) < 2 || len(parts) > 3 {
		return semver{}, false
	}
	var v semver
	for i, p := range parts {
		n, err := strconv.Atoi(p)
		if err != nil || n < 0 {
			return semver{}, false
		}
		v[i] = n
	}
	return v, true
}
