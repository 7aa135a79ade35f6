package e2e

import (
	"context"
	"fmt"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"

	core "github.com/envoyproxy/go-control-plane/envoy/config/core/v3"
	endpoint "github.com/envoyproxy/go-control-plane/envoy/config/endpoint/v3"
	route "github.com/envoyproxy/go-control-plane/envoy/config/route/v3"
	discovery "github.com/envoyproxy/go-control-plane/envoy/service/discovery/v3"
	"github.com/envoyproxy/go-control-plane/pkg/resource/v3"
	"google.golang.org/genproto/googleapis/rpc/status"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials/insecure"

	"github.com/bgctl/bg/controlplane/model"
	"github.com/bgctl/bg/e2e/harness"
)

const (
	rollService = "store"
	rollSlots   = 4
)

// rollYAML: 1 slot at a time, never fewer than 3 serving hosts.
const rollYAML = `strategy: rolling
affinity:
  header: x-session
rolling:
  max_unavailable: 1
  min_available: 3
  drain_timeout: 2s
  bake: 4s
  replace_timeout: 30s
  interval: 200ms
`

type rollStack struct {
	*stack
	sessions *harness.Sessions
}

func newRollStack(t *testing.T) *rollStack {
	return newRollStackWith(t, rollYAML, nil)
}

// newRollStackWith registers 4 slots per colour with extra meta and gives
// bg serviceYAML for the service.
func newRollStackWith(t *testing.T, serviceYAML string, meta map[string]string) *rollStack {
	s := &stack{t: t, consul: harness.StartConsul(t), bin: harness.BuildBG(t), backends: map[string]*harness.Backend{}, token: "e2e-secret"}
	for _, color := range []string{"blue", "green"} {
		for i := 0; i < rollSlots; i++ {
			id := fmt.Sprintf("%s-%s-%d", rollService, color, i)
			b := harness.StartBackend(t, harness.BackendOptions{Service: rollService, Color: color, ID: id, Version: color, Slot: fmt.Sprintf("slot-%d", i), Meta: meta})
			if err := b.Register(s.consul.Client()); err != nil {
				t.Fatal(err)
			}
			s.backends[id] = b
		}
	}
	s.xdsAddr = fmt.Sprintf("127.0.0.1:%d", harness.FreePort(t))
	s.admin = fmt.Sprintf("127.0.0.1:%d", harness.FreePort(t))
	path := harness.WriteBGConfig(t, harness.BGConfig{ConsulAddr: s.consul.HTTPAddr(), XDSAddr: s.xdsAddr, AdminAddr: s.admin,
		Token: s.token, Service: rollService, ServiceYAML: serviceYAML})
	s.bg = harness.StartBG(t, harness.BGOptions{Bin: s.bin, Config: path, AdminAddr: s.admin, Token: s.token})
	rs := &rollStack{stack: s}
	rs.sessions = harness.StartSessions(t, harness.SessionOptions{XDSAddr: s.xdsAddr, NodeID: "sessions-client", Service: rollService, Header: "x-session", Sessions: 40, Workers: 4})
	rs.sessions.WaitFor(t, 30*time.Second, func(n harness.SessionCounts) bool { return n.OK() > 0 && n.Failed == 0 })
	return rs
}

type rollStatus struct {
	Weights        struct{ Blue, Green int } `json:"weights"`
	SessionsAtRisk []struct {
		NodeID   string `json:"node_id"`
		Sessions string `json:"sessions"`
		Why      string `json:"sessions_why"`
	} `json:"sessions_at_risk"`
	Roll *struct {
		ID     string `json:"id"`
		Phase  string `json:"phase"`
		Reason string `json:"reason"`
		Slots  []struct {
			Key   string `json:"key"`
			Old   string `json:"old"`
			New   string `json:"new"`
			State string `json:"state"`
		} `json:"slots"`
	} `json:"roll"`
}

// rollMinServing is rollYAML's min_available: the fewest hosts the proxies
// may be left with.
const rollMinServing = 3

// watchInvariants checks, until stop, what the proxies are given: every
// route and endpoint push bg makes to an ADS client (subscribed like a
// proxyless gRPC client) must leave at least rollMinServing hosts a request
// can reach and at most one host DRAINING. It also polls status, failing
// the test if more than one slot drains at once, and returns every (slot,
// state) change in order.
func (rs *rollStack) watchInvariants(t *testing.T) (stop func() []string) {
	t.Helper()
	var (
		mu      sync.Mutex
		changes []string
		done    = make(chan struct{})
		wg      sync.WaitGroup
	)

	// Endpoints as pushed over xDS.
	var (
		pushes     int // complete states seen
		minServing = -1
		fewest     string // the state with minServing hosts
		ready      = make(chan struct{})
	)
	ctx, cancel := context.WithCancel(context.Background())
	err := watchXDS(ctx, &wg, rs.xdsAddr, grpcGoNode("rolling-invariants"), rollService, func(st xdsState) {
		serving, draining, complete := st.counts()
		if !complete {
			return
		}
		mu.Lock()
		pushes++
		if minServing < 0 || serving < minServing {
			minServing, fewest = serving, st.String()
		}
		if pushes == 1 {
			close(ready)
		}
		mu.Unlock()
		if serving < rollMinServing || draining > 1 {
			t.Errorf("invariant broken in what proxies receive: %d hosts serving (want >= %d), %d draining (want <= 1): %s",
				serving, rollMinServing, draining, st)
		}
	}, func(err error) { t.Errorf("xDS watch: %v", err) })
	if err != nil {
		cancel()
		t.Fatalf("xDS watch: %v", err)
	}
	select {
	case <-ready:
	case <-time.After(30 * time.Second):
		cancel()
		wg.Wait()
		t.Fatalf("xDS watch: no route and endpoints from %s within 30s", rs.xdsAddr)
	}

	last := map[string]string{}
	wg.Add(1)
	go func() {
		defer wg.Done()
		for {
			select {
			case <-done:
				return
			case <-time.After(50 * time.Millisecond):
			}
			var st rollStatus
			if err := rs.statusInto(rollService, &st); err != nil || st.Roll == nil {
				continue
			}
			draining := 0
			for _, sl := range st.Roll.Slots {
				switch sl.State {
				case "draining", "restoring":
					draining++
				}
				if last[sl.Key] != sl.State {
					mu.Lock()
					changes = append(changes, sl.Key+":"+sl.State)
					mu.Unlock()
					last[sl.Key] = sl.State
				}
			}
			if draining > 1 {
				t.Errorf("invariant broken: %d slots draining: %+v", draining, st.Roll.Slots)
			}
		}
	}()
	var once sync.Once
	stopAll := func() {
		once.Do(func() {
			close(done)
			cancel()
			wg.Wait()
		})
	}
	// A test that fails before stop must not leave goroutines calling t.Errorf.
	t.Cleanup(stopAll)
	return func() []string {
		stopAll()
		mu.Lock()
		defer mu.Unlock()
		t.Logf("xDS: %d complete states pushed; fewest serving hosts %d: %s", pushes, minServing, fewest)
		return changes
	}
}

// xdsState is what a proxyless gRPC client holds for a service: the cluster
// weights of its default route and the endpoints of each cluster.
type xdsState struct {
	Weights map[string]uint32    // cluster -> weight in the route without header matchers
	Hosts   map[string][]edsHost // cluster -> endpoints as last pushed
}

type edsHost struct {
	ID     string
	Status core.HealthStatus
}

// counts returns how many hosts a request without a pin header can reach
// (HEALTHY or UNKNOWN hosts of the clusters the route weights: gRPC drops
// every other status), and how many of those clusters' hosts are DRAINING.
// complete is false until the route and the endpoints of each weighted
// cluster arrived.
func (s xdsState) counts() (serving, draining int, complete bool) {
	if len(s.Weights) == 0 {
		return 0, 0, false
	}
	for cluster, w := range s.Weights {
		if w == 0 {
			continue
		}
		hosts, ok := s.Hosts[cluster]
		if !ok {
			return 0, 0, false
		}
		for _, h := range hosts {
			switch h.Status {
			case core.HealthStatus_HEALTHY, core.HealthStatus_UNKNOWN:
				serving++
			case core.HealthStatus_DRAINING:
				draining++
			}
		}
	}
	return serving, draining, true
}

func (s xdsState) String() string {
	names := make([]string, 0, len(s.Hosts))
	for c := range s.Hosts {
		names = append(names, c)
	}
	sort.Strings(names)
	var b strings.Builder
	for _, c := range names {
		fmt.Fprintf(&b, "%s(weight %d):", c, s.Weights[c])
		for _, h := range s.Hosts[c] {
			fmt.Fprintf(&b, " %s=%s", h.ID, h.Status)
		}
		b.WriteString("; ")
	}
	return strings.TrimSuffix(b.String(), "; ")
}

func (s xdsState) clone() xdsState {
	out := xdsState{Weights: make(map[string]uint32, len(s.Weights)), Hosts: make(map[string][]edsHost, len(s.Hosts))}
	for k, v := range s.Weights {
		out.Weights[k] = v
	}
	for k, v := range s.Hosts {
		out.Hosts[k] = append([]edsHost(nil), v...)
	}
	return out
}

// xdsNode is who a raw ADS watcher says it is.
type xdsNode struct{ id, agent, version string }

// grpcGoNode identifies a watcher as the grpc-go this module builds with.
func grpcGoNode(id string) xdsNode { return xdsNode{id, "gRPC Go", grpc.Version} }

// watchXDS subscribes over ADS, as grpc-go does, to the route named service
// and to the endpoints of both its clusters, ACKs every response and calls
// update with the state after each one. Like a gRPC client it keeps what it
// holds when the stream breaks (a restarted control plane) and reconnects.
// It runs until ctx ends; wg tracks its goroutine. fail reports a response
// it cannot read (it NACKs it).
func watchXDS(ctx context.Context, wg *sync.WaitGroup, addr string, node xdsNode, service string, update func(xdsState), fail func(error)) error {
	conn, err := grpc.NewClient("passthrough:///"+addr, grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		return err
	}
	st := xdsState{Weights: map[string]uint32{}, Hosts: map[string][]edsHost{}}
	versions := map[string]string{} // last ACKed version by type, resent on reconnect as grpc-go does
	wg.Add(1)
	go func() {
		defer wg.Done()
		defer conn.Close()
		for ctx.Err() == nil {
			_ = watchXDSStream(ctx, conn, node, service, &st, versions, update, fail)
			select {
			case <-ctx.Done():
			case <-time.After(100 * time.Millisecond):
			}
		}
	}()
	return nil
}

// watchXDSStream runs one ADS stream until it breaks.
func watchXDSStream(ctx context.Context, conn *grpc.ClientConn, node xdsNode, service string, st *xdsState,
	versions map[string]string, update func(xdsState), fail func(error)) error {
	stream, err := discovery.NewAggregatedDiscoveryServiceClient(conn).StreamAggregatedResources(ctx)
	if err != nil {
		return err
	}
	names := map[string][]string{
		resource.RouteType:    {service},
		resource.EndpointType: {model.ClusterName(service, model.Blue), model.ClusterName(service, model.Green)},
	}
	first := true
	send := func(typeURL, nonce string, nack error) error {
		req := &discovery.DiscoveryRequest{TypeUrl: typeURL, ResourceNames: names[typeURL], VersionInfo: versions[typeURL], ResponseNonce: nonce}
		if first { // grpc-go sends the node on the first request only
			req.Node = &core.Node{Id: node.id, UserAgentName: node.agent, UserAgentVersionType: &core.Node_UserAgentVersion{UserAgentVersion: node.version},
				ClientFeatures: []string{"envoy.lb.does_not_support_overprovisioning", "xds.config.resource-in-sotw"}}
			first = false
		}
		if nack != nil {
			req.ErrorDetail = &status.Status{Code: int32(codes.InvalidArgument), Message: nack.Error()}
		}
		return stream.Send(req)
	}
	if err := send(resource.RouteType, "", nil); err != nil {
		return err
	}
	if err := send(resource.EndpointType, "", nil); err != nil {
		return err
	}
	for {
		resp, err := stream.Recv()
		if err != nil {
			return err
		}
		// RDS and EDS are not state-of-the-world types: a resource missing
		// from a response is left as it was, as a gRPC client leaves it.
		var bad error
		switch resp.GetTypeUrl() {
		case resource.RouteType:
			for _, a := range resp.GetResources() {
				rc := &route.RouteConfiguration{}
				if bad = a.UnmarshalTo(rc); bad != nil {
					break
				}
				if rc.GetName() != service {
					continue
				}
				var w map[string]uint32
				if w, bad = defaultRouteWeights(rc); bad != nil {
					break
				}
				st.Weights = w
			}
		case resource.EndpointType:
			for _, a := range resp.GetResources() {
				cla := &endpoint.ClusterLoadAssignment{}
				if bad = a.UnmarshalTo(cla); bad != nil {
					break
				}
				var hosts []edsHost
				for _, loc := range cla.GetEndpoints() {
					if loc.GetLoadBalancingWeight().GetValue() == 0 {
						continue // gRPC ignores a locality without weight
					}
					for _, e := range loc.GetLbEndpoints() {
						id := e.GetEndpoint().GetHostname()
						if id == "" {
							sa := e.GetEndpoint().GetAddress().GetSocketAddress()
							id = fmt.Sprintf("%s:%d", sa.GetAddress(), sa.GetPortValue())
						}
						hosts = append(hosts, edsHost{ID: id, Status: e.GetHealthStatus()})
					}
				}
				st.Hosts[cla.GetClusterName()] = hosts
			}
		default:
			bad = fmt.Errorf("unexpected type %s", resp.GetTypeUrl())
		}
		if bad != nil {
			fail(fmt.Errorf("%s version %s: %w", resp.GetTypeUrl(), resp.GetVersionInfo(), bad))
		} else {
			versions[resp.GetTypeUrl()] = resp.GetVersionInfo()
		}
		if err := send(resp.GetTypeUrl(), resp.GetNonce(), bad); err != nil {
			return err
		}
		if bad == nil {
			update(st.clone())
		}
	}
}

// defaultRouteWeights returns the cluster weights of the first route of the
// only virtual host that matches without headers: where a call that pins no
// colour goes.
func defaultRouteWeights(rc *route.RouteConfiguration) (map[string]uint32, error) {
	vhs := rc.GetVirtualHosts()
	if len(vhs) != 1 {
		return nil, fmt.Errorf("route %s has %d virtual hosts, want 1", rc.GetName(), len(vhs))
	}
	for _, r := range vhs[0].GetRoutes() {
		if len(r.GetMatch().GetHeaders()) > 0 {
			continue
		}
		a := r.GetRoute()
		if a == nil {
			return nil, fmt.Errorf("route %s: default route %q has no route action", rc.GetName(), r.GetName())
		}
		if c := a.GetCluster(); c != "" {
			return map[string]uint32{c: 1}, nil
		}
		w := map[string]uint32{}
		for _, cw := range a.GetWeightedClusters().GetClusters() {
			w[cw.GetName()] = cw.GetWeight().GetValue()
		}
		if len(w) == 0 {
			return nil, fmt.Errorf("route %s: default route %q names no cluster", rc.GetName(), r.GetName())
		}
		return w, nil
	}
	return nil, fmt.Errorf("route %s has no route without header matchers", rc.GetName())
}

func TestRollingSwitchKeepsSessions(t *testing.T) {
	rs := newRollStack(t)

	// Before: every session sticks to one blue host.
	m := rs.sessions.Mark()
	time.Sleep(2 * time.Second)
	before := rs.sessions.History(m)
	for id, visits := range before {
		if len(visits) != 1 || !strings.Contains(visits[0].Server, "-blue-") {
			t.Fatalf("session %s before the roll: %+v", id, visits)
		}
	}

	// A client that places hosts by address (grpc-js-xds 1.14) subscribes
	// too: status names it, and only it, and the roll warns about it.
	jsCtx, stopJS := context.WithCancel(context.Background())
	var jsWG sync.WaitGroup
	defer func() { stopJS(); jsWG.Wait() }()
	if err := watchXDS(jsCtx, &jsWG, rs.xdsAddr, xdsNode{"js-client", "grpc-js", "1.14.0"}, rollService, func(xdsState) {}, func(error) {}); err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(10 * time.Second)
	for {
		var st rollStatus
		err := rs.statusInto(rollService, &st)
		if err == nil && len(st.SessionsAtRisk) == 1 && st.SessionsAtRisk[0].NodeID == "js-client" && st.SessionsAtRisk[0].Sessions == "lost" {
			t.Logf("sessions at risk: %+v", st.SessionsAtRisk)
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("status of a rolling service with a grpc-js client and grpc-go %s clients: sessions at risk %+v (%v), want only js-client", grpc.Version, st.SessionsAtRisk, err)
		}
		time.Sleep(100 * time.Millisecond)
	}

	t.Run("4-host roll: each session moves exactly once, to its host's replacement", func(t *testing.T) {
		m := rs.sessions.Mark()
		time.Sleep(time.Second) // every session calls its current host inside the window
		stop := rs.watchInvariants(t)
		out, errOut, code := rs.cli("switch", rollService, "--to", "green", "--wait")
		changes := stop()
		if code != 0 {
			t.Fatalf("exit %d\n%s\n%s", code, out, errOut)
		}
		if !strings.Contains(errOut, "1 connected proxy may not keep sessions through a roll") || !strings.Contains(errOut, "js-client (grpc-js places hosts by address)") {
			t.Fatalf("switch --wait of a roll with a grpc-js client subscribed printed no warning naming it:\n%s", errOut)
		}
		t.Logf("slot states in order: %v", changes)
		if n, errs := rs.sessions.Failed(m); n != 0 {
			t.Fatalf("%d failed calls during the roll: %v", n, errs)
		}
		moved := 0
		for id, visits := range rs.sessions.History(m) {
			if len(visits) != 2 {
				t.Fatalf("session %s visited %d hosts: %+v", id, len(visits), visits)
			}
			oldSlot := strings.TrimPrefix(visits[0].Server, rollService+"-blue-")
			newSlot := strings.TrimPrefix(visits[1].Server, rollService+"-green-")
			if oldSlot != newSlot {
				t.Fatalf("session %s moved from %s to %s: not its host's replacement", id, visits[0].Server, visits[1].Server)
			}
			moved++
		}
		// All 4 hosts drained, so every session was attached to a drained host.
		t.Logf("sessions that lost their host: %d; sessions attached to drained hosts: %d", moved, len(before))
		if moved != len(before) {
			t.Fatalf("moved %d sessions, want %d", moved, len(before))
		}
		var st rollStatus
		if err := rs.statusInto(rollService, &st); err != nil || st.Roll.Phase != "completed" || st.Weights.Green != 100 {
			t.Fatalf("after the roll: %+v %+v (%v)", st.Weights, st.Roll, err)
		}
	})

	t.Run("failure on the third replacement rolls hosts back in reverse", func(t *testing.T) {
		m := rs.sessions.Mark()
		time.Sleep(time.Second) // every session calls its current host inside the window
		stop := rs.watchInvariants(t)
		third := rs.backends[rollService+"-blue-2"]
		injected := make(chan struct{})
		go func() {
			defer close(injected)
			deadline := time.Now().Add(60 * time.Second)
			for time.Now().Before(deadline) {
				var st rollStatus
				if rs.statusInto(rollService, &st) == nil && st.Roll != nil && st.Roll.Phase == "rolling" && len(st.Roll.Slots) == rollSlots && st.Roll.Slots[2].State == "baking" {
					_ = third.Deregister(rs.consul.Client())
					return
				}
				time.Sleep(20 * time.Millisecond)
			}
		}()
		out, errOut, code := rs.cli("switch", rollService, "--to", "blue", "--wait")
		<-injected
		changes := stop()
		t.Logf("slot states in order: %v", changes)
		if code != 10 {
			t.Fatalf("exit %d, want 10 (rolled back)\n%s\n%s", code, out, errOut)
		}
		// Restored in reverse: slot-2 before slot-1 before slot-0.
		pos := func(s string) int {
			for i, c := range changes {
				if c == s {
					return i
				}
			}
			return -1
		}
		r2, r1, r0 := pos("slot-2:restored"), pos("slot-1:restored"), pos("slot-0:restored")
		if r2 < 0 || r1 < 0 || r0 < 0 || !(r2 < r1 && r1 < r0) {
			t.Fatalf("want slot-2, slot-1, slot-0 restored in that order; changes %v", changes)
		}
		if n, errs := rs.sessions.Failed(m); n != 0 {
			t.Fatalf("%d failed calls during the rollback: %v", n, errs)
		}
		var st rollStatus
		if err := rs.statusInto(rollService, &st); err != nil || st.Roll.Phase != "rolled_back" || st.Weights.Green != 100 {
			t.Fatalf("after the rollback: %+v %+v (%v)", st.Weights, st.Roll, err)
		}
		// Every session is back on a green host of its own slot.
		m2 := rs.sessions.Mark()
		time.Sleep(time.Second)
		for id, visits := range rs.sessions.History(m2) {
			if len(visits) != 1 || !strings.Contains(visits[0].Server, "-green-") {
				t.Fatalf("session %s after the rollback: %+v", id, visits)
			}
		}
	})

	t.Run("a restarted control plane resumes the roll at the right host", func(t *testing.T) {
		if err := rs.backends[rollService+"-blue-2"].Register(rs.consul.Client()); err != nil {
			t.Fatal(err)
		}
		time.Sleep(2 * time.Second) // the re-registered host passes its check
		m := rs.sessions.Mark()
		time.Sleep(time.Second) // every session calls its current host inside the window
		stop := rs.watchInvariants(t)
		rs.mustCLI("switch", rollService, "--to", "blue")
		deadline := time.Now().Add(60 * time.Second)
		for {
			var st rollStatus
			if rs.statusInto(rollService, &st) == nil && st.Roll != nil && st.Roll.Phase == "rolling" && st.Roll.Slots[1].State == "draining" {
				break
			}
			if time.Now().After(deadline) {
				t.Fatal("slot-1 never started draining")
			}
			time.Sleep(20 * time.Millisecond)
		}
		rs.bg.Restart()
		for deadline := time.Now().Add(90 * time.Second); ; time.Sleep(100 * time.Millisecond) {
			var st rollStatus
			if rs.statusInto(rollService, &st) == nil && st.Roll != nil && !strings.HasPrefix(st.Roll.Phase, "roll") && st.Roll.Phase != "held" {
				if st.Roll.Phase != "completed" || st.Weights.Blue != 100 {
					t.Fatalf("after the restart the roll ended %s: %+v", st.Roll.Phase, st.Roll)
				}
				break
			}
			if time.Now().After(deadline) {
				t.Fatalf("roll did not finish after the restart: %+v", st.Roll)
			}
		}
		changes := stop()
		t.Logf("slot states in order: %v", changes)
		for _, slot := range []string{"slot-0", "slot-1", "slot-2", "slot-3"} {
			n := 0
			for _, c := range changes {
				if c == slot+":draining" {
					n++
				}
			}
			if n != 1 {
				t.Fatalf("%s drained %d times across the restart; changes %v", slot, n, changes)
			}
		}
		if n, errs := rs.sessions.Failed(m); n != 0 {
			t.Fatalf("%d failed calls across the restart: %v", n, errs)
		}
		for id, visits := range rs.sessions.History(m) {
			if len(visits) != 2 || !strings.Contains(visits[1].Server, "-blue-") {
				t.Fatalf("session %s across the restarted roll: %+v", id, visits)
			}
		}
	})
}

// Consul meta bg-strategy=rolling makes a service stateful without config.
func TestConsulMetaMarksServiceRolling(t *testing.T) {
	onlyParams := rollYAML[strings.Index(rollYAML, "rolling:"):] // no strategy, no affinity in config
	rs := newRollStackWith(t, onlyParams, map[string]string{"bg-strategy": "rolling", "bg-affinity-header": "x-session"})
	var st struct {
		Strategy string `json:"strategy"`
	}
	if err := rs.statusInto(rollService, &st); err != nil || st.Strategy != "rolling" {
		t.Fatalf("strategy = %q (%v), want rolling from Consul meta", st.Strategy, err)
	}
	m := rs.sessions.Mark()
	time.Sleep(time.Second) // every session calls its current host inside the window
	out, errOut, code := rs.cli("switch", rollService, "--to", "green", "--wait")
	if code != 0 || !strings.Contains(out, "slot-3") {
		t.Fatalf("exit %d\n%s\n%s", code, out, errOut)
	}
	if n, errs := rs.sessions.Failed(m); n != 0 {
		t.Fatalf("%d failed calls: %v", n, errs)
	}
	for id, visits := range rs.sessions.History(m) {
		if len(visits) != 2 {
			t.Fatalf("session %s visited %+v", id, visits)
		}
	}
}
