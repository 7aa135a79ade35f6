package e2e

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/bgctl/bg/controlplane/xds/adssim"
	"github.com/bgctl/bg/e2e/harness"
)

// Safety invariants on real Consul (README "Safety invariants"). The fault
// simulation (controlplane/sim) attacks them in every order; these show
// them end to end with grpc-go clients.

type heldJSON struct {
	Fleets map[string]struct {
		Healthy int `json:"healthy"`
		Served  int `json:"served"`
		Held    *struct {
			Served int    `json:"served"`
			Read   int    `json:"read"`
			Reason string `json:"reason"`
		} `json:"held"`
	} `json:"fleets"`
}

// Invariant 4: the state key is deleted while green serves 100 %. Traffic
// stays on green and the leader writes the key back with a history entry.
func TestLostStateIsWrittenBack(t *testing.T) {
	s := newStack(t, 1, 1)
	s.startClients(1)
	s.mustCLI("switch", service, "--to", "green", "--instant")
	s.expectAll("green", 20*time.Second)
	before := s.status().Generation
	kv := s.consul.Client().KV()
	key := "bg/services/" + service + "/traffic"
	m := s.marks()
	if _, err := kv.Delete(key, nil); err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(15 * time.Second)
	for {
		pair, _, err := kv.Get(key, nil)
		if err == nil && pair != nil {
			var st struct {
				GreenPercent int    `json:"green_percent"`
				Generation   uint64 `json:"generation"`
			}
			if err := json.Unmarshal(pair.Value, &st); err != nil || st.GreenPercent != 100 || st.Generation <= before {
				t.Fatalf("written back %s (%v); want green 100%% above generation %d", pair.Value, err, before)
			}
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("the state key was not written back within 15 s")
		}
		time.Sleep(100 * time.Millisecond)
	}
	time.Sleep(time.Second)
	if n := s.sumSince(m); n.Blue != 0 || n.Failed != 0 || n.Green == 0 {
		t.Fatalf("traffic moved while the state key was missing: %s", n)
	}
	hist, _, _ := s.cli("history", service, "-o", "json")
	if !strings.Contains(hist, "stored state was missing") {
		t.Fatalf("no history entry says the state was written back:\n%s", hist)
	}
}

// Invariant 3: every check turns critical at once (node maintenance, as
// after an agent restart). Blue serves everything: calls keep succeeding,
// status shows both fleets held for the grace; after it the change applies
// to idle green, while blue, which carries all traffic, is never emptied.
func TestCarryingFleetSurvivesBadRead(t *testing.T) {
	const grace = 6 * time.Second
	s := newStackWith(t, stackOptions{blue: 4, green: 2, env: []string{"BG_MEMBERSHIP_SHRINK_GRACE=" + grace.String()}})
	s.startClients(1)
	s.expectAll("blue", 20*time.Second)
	held := func() heldJSON {
		var h heldJSON
		if err := s.statusInto(service, &h); err != nil {
			t.Fatal(err)
		}
		return h
	}
	maintenance(t, s.consul.HTTPAddr(), true)
	m := s.marks()
	deadline := time.Now().Add(15 * time.Second)
	for {
		h := held()
		b, g := h.Fleets["blue"], h.Fleets["green"]
		if b.Healthy == 0 && g.Healthy == 0 {
			if b.Held == nil || b.Served != 4 || g.Held == nil || g.Served != 2 {
				t.Fatalf("every check critical: blue %+v, green %+v; want both held with their last members", b, g)
			}
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("the critical checks never reached bg: %+v", h.Fleets)
		}
		time.Sleep(100 * time.Millisecond)
	}
	heldAt := time.Now()
	for time.Since(heldAt) < grace-2*time.Second {
		if h := held(); h.Fleets["blue"].Served != 4 || h.Fleets["green"].Held == nil {
			t.Fatalf("hold ended %s into a %s grace: %+v", time.Since(heldAt), grace, h.Fleets)
		}
		time.Sleep(250 * time.Millisecond)
	}
	deadline = time.Now().Add(grace + 10*time.Second)
	for {
		h := held()
		if g := h.Fleets["green"]; g.Held == nil && g.Served == 0 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("after the grace idle green still serves: %+v", h.Fleets["green"])
		}
		time.Sleep(200 * time.Millisecond)
	}
	if b := held().Fleets["blue"]; b.Served != 4 || b.Held == nil || b.Held.Read != 0 {
		t.Fatalf("blue, carrying all traffic, after the grace: %+v; want its 4 members kept", b)
	}
	if n := s.sumSince(m); n.Failed != 0 || n.Blue == 0 || n.Green != 0 {
		t.Fatalf("calls while every check was critical: %s", n)
	}
	maintenance(t, s.consul.HTTPAddr(), false)
	deadline = time.Now().Add(20 * time.Second)
	for {
		h := held()
		if b, g := h.Fleets["blue"], h.Fleets["green"]; b.Held == nil && b.Healthy == 4 && g.Served == 2 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("fleets did not come back after maintenance: %+v", h.Fleets)
		}
		time.Sleep(200 * time.Millisecond)
	}
}

// maintenance puts the local Consul agent's node in or out of maintenance:
// every service on it turns critical in one change.
func maintenance(t *testing.T, addr string, on bool) {
	t.Helper()
	req, _ := http.NewRequest(http.MethodPut, fmt.Sprintf("http://%s/v1/agent/maintenance?enable=%v&reason=e2e", addr, on), nil)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("node maintenance %v: HTTP %d", on, resp.StatusCode)
	}
}

// Invariant 2: three replicas, one grpc-go client each. A switch through
// any replica returns only once all three hold it, and a proxy on a
// follower that NACKs makes the command exit 4 naming it.
func TestConfirmationCountsEveryReplica(t *testing.T) {
	h := newHAStack(t, 3)
	ld := h.leader(t, 30*time.Second)
	fol := (ld + 1) % 3
	out, errOut, code := h.on(fol, "switch", service, "--to", "green", "--instant", "-o", "json")
	if code != 0 {
		t.Fatalf("switch: exit %d %s %s", code, out, errOut)
	}
	var res struct {
		Acks struct {
			Acked   int   `json:"acked"`
			Pending []any `json:"pending"`
		} `json:"acks"`
	}
	if err := json.Unmarshal([]byte(out), &res); err != nil || res.Acks.Acked != 3 || len(res.Acks.Pending) != 0 {
		t.Fatalf("switch answer %s (%v); want 3 proxies ACKed, none pending", out, err)
	}
	for _, c := range h.clients {
		c.WaitFor(t, 20*time.Second, func(n harness.Counts) bool { return n.Green > 0 })
	}
	// A proxy on a follower rejects every route.
	ctx, cancel := context.WithCancel(context.Background())
	t.Cleanup(cancel)
	bad, err := adssim.Dial(ctx, h.replicas[fol].xds, adssim.Options{Service: service, NodeID: "nacker", Routes: adssim.Accept})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(bad.Close)
	wctx, wcancel := context.WithTimeout(ctx, 20*time.Second)
	defer wcancel()
	if err := bad.WaitFor(wctx, func(st adssim.State) bool { return st.RouteVersion != "" }); err != nil {
		t.Fatalf("nacker never got the route: %v", err)
	}
	bad.SetRoutes(adssim.Reject)
	out, errOut, code = h.on(ld, "abort", service, "--timeout", "10s")
	if code != 4 || !strings.Contains(errOut, "nacker") {
		t.Fatalf("abort with a NACKing proxy on a follower: exit %d\nstdout %s\nstderr %s\nwant exit 4 naming nacker", code, out, errOut)
	}
}

// Invariant 1: green starts failing and Consul stops mid-switch. Whether
// the leader decided the rollback before it lost its lock (then it serves
// it unsaved and stores it once it can) or after Consul returned, traffic
// ends 100 % on blue, the switch ends rolled back, and no later leader
// promotes or resumes it.
func TestRollbackSurvivesConsulOutage(t *testing.T) {
	h := newHAStack(t, 2)
	h.expectAll("blue", 20*time.Second)
	ld := h.leader(t, 30*time.Second)
	if out, errOut, code := h.on(ld, "switch", service, "--to", "green"); code != 0 {
		t.Fatalf("switch: exit %d %s %s", code, out, errOut)
	}
	st := h.waitOn(t, ld, 60*time.Second, "step 2 (50 %)", func(st statusJSON) bool {
		return st.Switch != nil && st.Switch.Step >= 1 && st.Weights.Green >= 50
	})
	id := st.Switch.ID
	for _, b := range h.backends {
		if strings.Contains(b.Options().ID, "green") {
			b.SetFailRatio(0.5)
		}
	}
	time.Sleep(1500 * time.Millisecond)
	h.consul.Stop()
	decidedDuringOutage := false
	for end := time.Now().Add(25 * time.Second); time.Now().Before(end); { // sessions lapse meanwhile
		if st, err := h.statusOn(ld); err == nil && st.Switch != nil && st.Switch.ID == id && st.Switch.Phase == "rolled_back" {
			decidedDuringOutage = true
		}
		time.Sleep(250 * time.Millisecond)
	}
	t.Logf("rollback decided before the lock was lost: %v", decidedDuringOutage)
	h.consul.Start()
	h.leader(t, 90*time.Second)
	for i := range h.replicas {
		h.waitOn(t, i, 60*time.Second, "every replica serves the rollback", func(st statusJSON) bool {
			return st.Switch != nil && st.Switch.ID == id && st.Switch.Phase == "rolled_back" && st.Weights.Green == 0
		})
	}
	pair, _, err := h.consul.Client().KV().Get("bg/services/"+service+"/traffic", nil)
	if err != nil || pair == nil {
		t.Fatalf("stored state: %v %v", pair, err)
	}
	var stored struct {
		GreenPercent int `json:"green_percent"`
		Rollout      struct {
			ID    string `json:"id"`
			Phase string `json:"phase"`
			Cause string `json:"cause"`
		} `json:"rollout"`
	}
	if err := json.Unmarshal(pair.Value, &stored); err != nil || stored.GreenPercent != 0 || stored.Rollout.ID != id || stored.Rollout.Phase != "rolled_back" {
		t.Fatalf("stored %s (%v); want switch %s rolled back, green 0%%", pair.Value, err, id)
	}
	m := h.marks()
	time.Sleep(3 * time.Second)
	if n := h.sumSince(m); n.Green != 0 {
		t.Fatalf("green got traffic again after Consul returned: %s", n)
	}
}
