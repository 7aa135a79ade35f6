package xds

import (
	"context"
	"log/slog"
	"strings"
	"testing"

	core "github.com/envoyproxy/go-control-plane/envoy/config/core/v3"
	discovery "github.com/envoyproxy/go-control-plane/envoy/service/discovery/v3"
	"github.com/envoyproxy/go-control-plane/pkg/cache/v3"
	"github.com/envoyproxy/go-control-plane/pkg/resource/v3"
	rpcstatus "google.golang.org/genproto/googleapis/rpc/status"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/structpb"
)

// drive runs one request through the bounds and the tracker the way the
// ADS server does (open, request, response, the ACK or NACK to it,
// status, close) and checks what it may: a refusal is InvalidArgument; an
// accepted request is within every bound; nothing panics.
func drive(t *testing.T, req *discovery.DiscoveryRequest) {
	tr := newTracker("p-", newMetrics(nil), slog.New(slog.DiscardHandler))
	cb := boundRequests(tr)
	const id = 7
	if err := cb.OnStreamOpen(context.Background(), id, req.GetTypeUrl()); err != nil {
		t.Fatal(err)
	}
	defer func() {
		cb.OnStreamClosed(id, req.GetNode())
		if len(tr.proxies) != 0 || len(tr.subscribers) != 0 {
			t.Fatalf("closed stream left %d proxies, %d subscribed routes", len(tr.proxies), len(tr.subscribers))
		}
	}()
	err := cb.OnStreamRequest(id, req)
	if err != nil {
		if s, ok := status.FromError(err); !ok || s.Code() != codes.InvalidArgument || s.Message() == "" {
			t.Fatalf("refusal %v is not InvalidArgument with a message", err)
		}
		return
	}
	if n := len(req.GetResourceNames()); n > MaxResourceNames {
		t.Fatalf("accepted %d names", n)
	}
	for _, name := range req.GetResourceNames() {
		if len(name) > MaxResourceNameBytes {
			t.Fatalf("accepted a name of %d bytes", len(name))
		}
	}
	if n := proto.Size(req.GetNode()); n > MaxNodeBytes {
		t.Fatalf("accepted a node of %d bytes", n)
	}
	if m := req.GetErrorDetail().GetMessage(); len(m) > MaxNACKMessageBytes+len("…") {
		t.Fatalf("kept a NACK message of %d bytes", len(m))
	}
	_ = classify(&cache.Request{TypeUrl: req.GetTypeUrl(), Node: req.GetNode()})
	resp := &discovery.DiscoveryResponse{VersionInfo: "p-3", Nonce: "n1", TypeUrl: req.GetTypeUrl()}
	cb.OnStreamResponse(context.Background(), id, req, resp)
	next := proto.Clone(req).(*discovery.DiscoveryRequest)
	next.ResponseNonce = "n1"
	if err := cb.OnStreamRequest(id, next); err != nil {
		t.Fatalf("the same request again as an ACK/NACK refused: %v", err)
	}
	_ = tr.proxiesList()
	_, _ = tr.routeStatus("web", 3)
}

// FuzzDiscoveryRequest feeds arbitrary wire bytes, as a DiscoveryRequest,
// through the request path.
func FuzzDiscoveryRequest(f *testing.F) {
	md, _ := structpb.NewStruct(map[string]any{"bg.flavour": "envoy", "k": []any{1.0, "x"}})
	for _, r := range []*discovery.DiscoveryRequest{
		{TypeUrl: resource.RouteType, ResourceNames: []string{"web", "api"}, Node: &core.Node{Id: "envoy-1", UserAgentName: "envoy", Metadata: md}},
		{TypeUrl: resource.ClusterType, Node: &core.Node{Id: "grpc-1", Cluster: "c"}},
		{TypeUrl: resource.RouteType, ResourceNames: []string{"web"}, ErrorDetail: &rpcstatus.Status{Code: 3, Message: "bad route"}, VersionInfo: "p-2"},
		{TypeUrl: "type.googleapis.com/nope"},
	} {
		b, err := proto.Marshal(r)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(b)
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		var req discovery.DiscoveryRequest
		if proto.Unmarshal(data, &req) != nil {
			return
		}
		drive(t, &req)
	})
}

// FuzzDiscoveryRequestFields builds requests from their fields, so the
// fuzzer reaches the bounds quickly: names repeated count times, metadata
// of metaRepeat copies of metaVal, any type URL, a NACK message.
func FuzzDiscoveryRequestFields(f *testing.F) {
	f.Add("envoy-1", resource.RouteType, "web", uint16(1), "bg.flavour", "envoy", uint16(1), "")
	f.Add("n", resource.EndpointType, "web-green", uint16(10001), "k", "v", uint16(1), "")
	f.Add("n", resource.ClusterType, "", uint16(0), "k", "0123456789abcdef", uint16(5000), "")
	f.Add("", "", "x", uint16(3), "", "", uint16(0), "rejected: "+strings.Repeat("e", 100))
	f.Fuzz(func(t *testing.T, nodeID, typeURL, name string, count uint16, metaKey, metaVal string, metaRepeat uint16, nack string) {
		if len(name)*int(count) > 16<<20 || len(metaVal)*int(metaRepeat) > 16<<20 {
			return // beyond gRPC's 4 MiB message limit anyway
		}
		req := &discovery.DiscoveryRequest{TypeUrl: typeURL, Node: &core.Node{Id: nodeID}}
		for i := 0; i < int(count); i++ {
			req.ResourceNames = append(req.ResourceNames, name)
		}
		if metaRepeat > 0 {
			md, err := structpb.NewStruct(map[string]any{metaKey: strings.Repeat(metaVal, int(metaRepeat))})
			if err != nil {
				return // not valid UTF-8
			}
			req.Node.Metadata = md
		}
		if nack != "" {
			req.ErrorDetail = &rpcstatus.Status{Code: 3, Message: nack}
		}
		tooBig := int(count) > MaxResourceNames || (count > 0 && len(name) > MaxResourceNameBytes) || len(metaVal)*int(metaRepeat) > MaxNodeBytes
		known := typeURL == resource.ClusterType || typeURL == resource.EndpointType || typeURL == resource.ListenerType || typeURL == resource.RouteType
		if err := CheckRequest(proto.Clone(req).(*discovery.DiscoveryRequest)); (tooBig || !known) && err == nil {
			t.Fatalf("accepted %d names of %d bytes, metadata of %d bytes, type %q", count, len(name), len(metaVal)*int(metaRepeat), typeURL)
		}
		drive(t, req)
	})
}

// FuzzDeltaDiscoveryRequest feeds arbitrary wire bytes, as a
// DeltaDiscoveryRequest, through the delta bounds: never a panic, a
// refusal is InvalidArgument, an accepted request is within the bounds.
func FuzzDeltaDiscoveryRequest(f *testing.F) {
	for _, r := range []*discovery.DeltaDiscoveryRequest{
		{TypeUrl: resource.RouteType, ResourceNamesSubscribe: []string{"web"}, Node: &core.Node{Id: "n"}},
		{TypeUrl: resource.EndpointType, ResourceNamesUnsubscribe: []string{"a"}, InitialResourceVersions: map[string]string{"b": "1"}},
	} {
		b, _ := proto.Marshal(r)
		f.Add(b)
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		var req discovery.DeltaDiscoveryRequest
		if proto.Unmarshal(data, &req) != nil {
			return
		}
		cb := boundRequests(newTracker("p-", newMetrics(nil), slog.New(slog.DiscardHandler)))
		err := cb.OnStreamDeltaRequest(1, &req)
		if err != nil {
			if s, ok := status.FromError(err); !ok || s.Code() != codes.InvalidArgument {
				t.Fatalf("refusal %v is not InvalidArgument", err)
			}
			return
		}
		if n := len(req.GetResourceNamesSubscribe()) + len(req.GetResourceNamesUnsubscribe()) + len(req.GetInitialResourceVersions()); n > MaxResourceNames {
			t.Fatalf("accepted %d names", n)
		}
		if n := proto.Size(req.GetNode()); n > MaxNodeBytes {
			t.Fatalf("accepted a node of %d bytes", n)
		}
	})
}
