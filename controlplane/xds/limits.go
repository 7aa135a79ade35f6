package xds

import (
	"context"
	"unicode/utf8"

	discovery "github.com/envoyproxy/go-control-plane/envoy/service/discovery/v3"
	"github.com/envoyproxy/go-control-plane/pkg/resource/v3"
	serverv3 "github.com/envoyproxy/go-control-plane/pkg/server/v3"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/proto"
)

// Bounds on one xDS request, checked before anything else sees it. gRPC
// already caps a message at 4 MiB; these keep what bg stores per stream
// (the node, the route subscription, the last NACK) small and refuse
// nonsense with a clear InvalidArgument instead of a cache error.
const (
	// MaxResourceNames bounds the names of one request (a delta request's
	// subscribe, unsubscribe and initial versions together). An Envoy in
	// front of 1,000 services asks for about 2,000 EDS names.
	MaxResourceNames = 10000
	// MaxResourceNameBytes bounds one name; bg's are service names plus a
	// colour.
	MaxResourceNameBytes = 1024
	// MaxNodeBytes bounds the node (id, cluster, metadata, locality, …) as
	// encoded.
	MaxNodeBytes = 64 << 10
	// MaxNACKMessageBytes: a longer error_detail message is cut to this
	// length (a NACK is never refused: it is how proxies say what failed).
	MaxNACKMessageBytes = 4 << 10
)

// servedTypes are the type URLs bg serves; anything else is refused.
var servedTypes = map[string]bool{
	resource.ClusterType:  true,
	resource.EndpointType: true,
	resource.ListenerType: true,
	resource.RouteType:    true,
}

// CheckRequest reports why a state-of-the-world request is refused, as a
// gRPC InvalidArgument status error, or nil. It may shorten the request's
// NACK message in place.
func CheckRequest(req *discovery.DiscoveryRequest) error {
	if err := checkType(req.GetTypeUrl()); err != nil {
		return err
	}
	if err := checkNames("resource_names", req.GetResourceNames(), 0); err != nil {
		return err
	}
	if n := proto.Size(req.GetNode()); n > MaxNodeBytes {
		return status.Errorf(codes.InvalidArgument, "node is %d bytes, more than %d", n, MaxNodeBytes)
	}
	if d := req.GetErrorDetail(); d != nil && len(d.GetMessage()) > MaxNACKMessageBytes {
		d.Message = truncateUTF8(d.GetMessage(), MaxNACKMessageBytes) + "…"
	}
	return nil
}

// CheckDeltaRequest is CheckRequest for the incremental protocol.
func CheckDeltaRequest(req *discovery.DeltaDiscoveryRequest) error {
	if err := checkType(req.GetTypeUrl()); err != nil {
		return err
	}
	sub, unsub := req.GetResourceNamesSubscribe(), req.GetResourceNamesUnsubscribe()
	if err := checkNames("resource_names_subscribe", sub, 0); err != nil {
		return err
	}
	if err := checkNames("resource_names_unsubscribe", unsub, len(sub)); err != nil {
		return err
	}
	if n := len(sub) + len(unsub) + len(req.GetInitialResourceVersions()); n > MaxResourceNames {
		return status.Errorf(codes.InvalidArgument, "%d resource names, more than %d", n, MaxResourceNames)
	}
	for name := range req.GetInitialResourceVersions() {
		if len(name) > MaxResourceNameBytes {
			return status.Errorf(codes.InvalidArgument, "initial_resource_versions: a name of %d bytes, more than %d", len(name), MaxResourceNameBytes)
		}
	}
	if n := proto.Size(req.GetNode()); n > MaxNodeBytes {
		return status.Errorf(codes.InvalidArgument, "node is %d bytes, more than %d", n, MaxNodeBytes)
	}
	if d := req.GetErrorDetail(); d != nil && len(d.GetMessage()) > MaxNACKMessageBytes {
		d.Message = truncateUTF8(d.GetMessage(), MaxNACKMessageBytes) + "…"
	}
	return nil
}

func checkType(typeURL string) error {
	if !servedTypes[typeURL] {
		if len(typeURL) > 200 {
			typeURL = truncateUTF8(typeURL, 200) + "…"
		}
		return status.Errorf(codes.InvalidArgument, "type_url %q: not served (bg serves clusters, endpoints, listeners and routes)", typeURL)
	}
	return nil
}

// checkNames bounds a list of names; already counts names checked before.
func checkNames(field string, names []string, already int) error {
	if n := already + len(names); n > MaxResourceNames {
		return status.Errorf(codes.InvalidArgument, "%s: %d resource names, more than %d", field, n, MaxResourceNames)
	}
	for _, name := range names {
		if len(name) > MaxResourceNameBytes {
			return status.Errorf(codes.InvalidArgument, "%s: a name of %d bytes, more than %d", field, len(name), MaxResourceNameBytes)
		}
	}
	return nil
}

// truncateUTF8 cuts s to at most n bytes without splitting a rune.
func truncateUTF8(s string, n int) string {
	if len(s) <= n {
		return s
	}
	for n > 0 && !utf8.RuneStart(s[n]) {
		n--
	}
	return s[:n]
}

// bounded checks every request against the bounds before next sees it;
// a refused request closes its stream with the InvalidArgument status.
type bounded struct{ serverv3.Callbacks }

func boundRequests(next serverv3.Callbacks) serverv3.Callbacks { return bounded{next} }

func (b bounded) OnStreamRequest(id int64, req *discovery.DiscoveryRequest) error {
	if err := CheckRequest(req); err != nil {
		return err
	}
	return b.Callbacks.OnStreamRequest(id, req)
}

func (b bounded) OnStreamDeltaRequest(id int64, req *discovery.DeltaDiscoveryRequest) error {
	if err := CheckDeltaRequest(req); err != nil {
		return err
	}
	return b.Callbacks.OnStreamDeltaRequest(id, req)
}

func (b bounded) OnFetchRequest(ctx context.Context, req *discovery.DiscoveryRequest) error {
	if err := CheckRequest(req); err != nil {
		return err
	}
	return b.Callbacks.OnFetchRequest(ctx, req)
}
