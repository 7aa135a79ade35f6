package xds

import (
	"log/slog"
	"reflect"
	"testing"

	route "github.com/envoyproxy/go-control-plane/envoy/config/route/v3"
	discovery "github.com/envoyproxy/go-control-plane/envoy/service/discovery/v3"
	"github.com/envoyproxy/go-control-plane/pkg/resource/v3"
	"google.golang.org/protobuf/types/known/anypb"
)

func TestGenAt(t *testing.T) {
	cps := []checkpoint{{version: 3, gen: 5}, {version: 7, gen: 6}, {version: 9, gen: 9}}
	for v, want := range map[uint64]uint64{0: 0, 2: 0, 3: 5, 6: 5, 7: 6, 8: 6, 9: 9, 100: 9} {
		if got := genAt(cps, v); got != want {
			t.Errorf("genAt(%d) = %d, want %d", v, got, want)
		}
	}
}

func TestDeclare(t *testing.T) {
	tr := newTracker("p-", newMetrics(nil), slog.New(slog.DiscardHandler))
	tr.declare("web", 3, 5)
	tr.declare("web", 3, 6) // same route, newer generation
	tr.declare("web", 8, 7)
	tr.declare("web", 5, 9) // stale: an older write
	if got, want := tr.gens["web"], []checkpoint{{3, 6}, {8, 7}}; !reflect.DeepEqual(got, want) {
		t.Errorf("checkpoints %v, want %v", got, want)
	}
	tr.declare("web", 10, 2) // generation went back: forget the past
	if got, want := tr.gens["web"], []checkpoint{{10, 2}}; !reflect.DeepEqual(got, want) {
		t.Errorf("after a lower generation: %v, want %v", got, want)
	}
	for i := range 2 * maxCheckpoints {
		tr.declare("api", uint64(i+1), uint64(i+1))
	}
	if cps := tr.gens["api"]; len(cps) != maxCheckpoints || cps[len(cps)-1].gen != 2*maxCheckpoints {
		t.Errorf("history not bounded: %d checkpoints, last %v", len(cps), cps[len(cps)-1])
	}
}

func TestRouteNames(t *testing.T) {
	var anys []*anypb.Any
	for _, n := range []string{"web", "api", ""} {
		a, err := anypb.New(&route.RouteConfiguration{Name: n, VirtualHosts: []*route.VirtualHost{{Name: "vh", Domains: []string{"*"}}}})
		if err != nil {
			t.Fatal(err)
		}
		anys = append(anys, a)
	}
	req := &discovery.DiscoveryRequest{ResourceNames: []string{"asked"}}
	if got := routeNames(&discovery.DiscoveryResponse{Resources: anys}, req); !reflect.DeepEqual(got, []string{"web", "api", ""}) {
		t.Errorf("routeNames = %q", got)
	}
	// Anything else: fall back to what was asked for.
	odd := &anypb.Any{TypeUrl: resource.ClusterType, Value: anys[0].Value}
	if got := routeNames(&discovery.DiscoveryResponse{Resources: []*anypb.Any{odd}}, req); !reflect.DeepEqual(got, []string{"asked"}) {
		t.Errorf("routeNames of a non-route = %q, want the request's names", got)
	}
	bad := &anypb.Any{TypeUrl: resource.RouteType, Value: []byte{0x0a, 0x10, 'x'}} // truncated
	if got := routeNames(&discovery.DiscoveryResponse{Resources: []*anypb.Any{bad}}, req); !reflect.DeepEqual(got, []string{"asked"}) {
		t.Errorf("routeNames of a truncated route = %q, want the request's names", got)
	}
}

// A new subscription keeps what the proxy holds of the routes it still
// subscribes to, forgets the others, and ignores duplicates and order.
func TestRouteSubsReplace(t *testing.T) {
	var r routeSubs
	if r.replace(nil) || r.has("web") || r.hold("web") != nil {
		t.Fatal("an empty subscription changed or holds something")
	}
	if !r.replace([]string{"web", "api", "web"}) || !reflect.DeepEqual(r.names, []string{"api", "web"}) {
		t.Fatalf("names %q", r.names)
	}
	r.hold("web").held = 7
	r.hold("api").nackV = 3
	if r.replace([]string{"api", "web"}) {
		t.Fatal("the same set in another order counted as a change")
	}
	if !r.replace([]string{"web", "cart"}) || !reflect.DeepEqual(r.names, []string{"cart", "web"}) {
		t.Fatalf("names %q", r.names)
	}
	if r.hold("web").held != 7 || *r.hold("cart") != (routeHold{}) || r.hold("api") != nil {
		t.Fatalf("holds after resubscribing: web %+v cart %+v api %+v", r.hold("web"), r.hold("cart"), r.hold("api"))
	}
	if !r.replace(nil) || r.has("web") || len(r.holds) != 0 {
		t.Fatalf("unsubscribing everything left %q %+v", r.names, r.holds)
	}
}

// The last response per type: the four ADS types in place, any other in a
// map made on first use; nothing sent reads as absent.
func TestSentByType(t *testing.T) {
	var b sentByType
	for _, typ := range []string{resource.RouteType, resource.SecretType} {
		if _, ok := b.get(typ); ok {
			t.Fatalf("%s present before anything was sent", typ)
		}
		b.set(typ, sent{nonce: "n-" + typ, version: "v"})
		if s, ok := b.get(typ); !ok || s.nonce != "n-"+typ {
			t.Fatalf("%s: %+v %v", typ, s, ok)
		}
	}
	if len(b.other) != 1 {
		t.Fatalf("other types %v: want only the secret type there", b.other)
	}
}
