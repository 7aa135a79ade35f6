package e2e

import (
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/bgctl/bg/e2e/harness"
)

// flip runs one switch-like command and checks the traffic moved entirely,
// with zero failed calls from before the command until after it settled.
func (s *stack) flip(t *testing.T, to string, args ...string) {
	t.Helper()
	before := s.marks()
	start := time.Now()
	out := s.mustCLI(args...)
	t.Logf("bg %s (%v): %s", strings.Join(args, " "), time.Since(start).Round(time.Millisecond), strings.TrimSpace(out))
	// The command returned after every proxy ACKed: calls started a moment
	// later must all land on the new colour.
	time.Sleep(200 * time.Millisecond)
	after := s.marks()
	time.Sleep(time.Second)
	if n := s.sumSince(after); n.OK() == 0 || colorCount(n, to) != n.OK() || n.Failed != 0 {
		t.Fatalf("after bg %s: want 100%% %s, got %s", args[0], to, n)
	}
	if n := s.sumSince(before); n.Failed != 0 {
		t.Fatalf("failed calls across the flip: %s", n)
	}
	st := s.status()
	if st.Proxies.Connected < len(s.clients) || st.Proxies.Acked != st.Proxies.Connected {
		t.Fatalf("status proxies = %+v, want all %d ACKed", st.Proxies, len(s.clients))
	}
}

func TestSwitchAbortMembershipOutageRestart(t *testing.T) {
	s := newStack(t, 2, 2)
	s.startClients(2)

	t.Run("all traffic starts on blue", func(t *testing.T) {
		s.expectAll("blue", 20*time.Second)
		st := s.status()
		if st.Service != service || st.Weights.Blue != 100 || st.Weights.Green != 0 || st.Stable != "blue" {
			t.Fatalf("status = %+v", st)
		}
		if st.Fleets["green"].Healthy != 2 || len(st.Fleets["green"].Versions) != 1 || st.Fleets["green"].Versions[0] != "v2" {
			t.Fatalf("green fleet = %+v", st.Fleets["green"])
		}
	})

	t.Run("switch to green instantly, zero failed calls", func(t *testing.T) {
		s.flip(t, "green", "switch", service, "--to", "green", "--instant")
		if st := s.status(); st.Weights.Green != 100 {
			t.Fatalf("status = %+v", st)
		}
	})

	t.Run("abort returns to blue, zero failed calls", func(t *testing.T) {
		gen := s.status().Generation
		s.flip(t, "blue", "abort", service)
		if st := s.status(); st.Weights.Blue != 100 || st.Generation != gen+1 {
			t.Fatalf("status = %+v (generation before %d)", st, gen)
		}
	})

	t.Run("green membership follows consul", func(t *testing.T) {
		s.flip(t, "green", "switch", service, "--to", "green", "--instant")
		before := s.marks()
		if err := s.backends["web-green-1"].Deregister(s.consul.Client()); err != nil {
			t.Fatal(err)
		}
		for _, c := range s.clients {
			c.WaitFor(t, 15*time.Second, func(n harness.Counts) bool { return n.ByServer["web-green-1"] == 0 && n.ByServer["web-green-2"] > 0 })
		}
		s.addBackend("green", 3, "v2")
		for _, c := range s.clients {
			c.WaitFor(t, 15*time.Second, func(n harness.Counts) bool { return n.ByServer["web-green-3"] > 0 })
		}
		if n := s.sumSince(before); n.Failed != 0 || n.Blue != 0 {
			t.Fatalf("membership change: %s", n)
		}
	})

	t.Run("consul down: calls keep succeeding; back: updates resume", func(t *testing.T) {
		before := s.marks()
		s.consul.Stop()
		time.Sleep(4 * time.Second)
		if n := s.sumSince(before); n.Failed != 0 || n.Green == 0 || n.Blue != 0 {
			t.Fatalf("while consul was down: %s", n)
		}
		if st := s.status(); st.Fleets["green"].Healthy != 2 {
			t.Fatalf("bg forgot fleets while consul was down: %+v", st.Fleets)
		}
		s.consul.Start()
		s.addBackend("green", 4, "v2")
		for _, c := range s.clients {
			c.WaitFor(t, 30*time.Second, func(n harness.Counts) bool { return n.ByServer["web-green-4"] > 0 })
		}
		if n := s.sumSince(before); n.Failed != 0 || n.Blue != 0 {
			t.Fatalf("across the consul outage: %s", n)
		}
	})

	t.Run("bg restart serves the persisted split, no flip", func(t *testing.T) {
		gen := s.status().Generation
		before := s.marks()
		s.bg.Restart()
		// Let every client reconnect and receive the restarted server's config.
		time.Sleep(3 * time.Second)
		st := s.status()
		if st.Weights.Green != 100 || st.Generation != gen {
			t.Fatalf("after restart status = %+v, want green 100%% at generation %d", st, gen)
		}
		if st.Proxies.Connected < len(s.clients) {
			t.Fatalf("clients did not reconnect: %+v", st.Proxies)
		}
		if n := s.sumSince(before); n.Blue != 0 || n.Failed != 0 || n.Green == 0 {
			t.Fatalf("across the restart: %s", n)
		}
	})

	t.Run("switch to an empty colour is refused", func(t *testing.T) {
		before := s.status()
		for _, id := range []string{"web-blue-1", "web-blue-2"} {
			if err := s.backends[id].Deregister(s.consul.Client()); err != nil {
				t.Fatal(err)
			}
		}
		waitStatus(t, s, func(st statusJSON) bool { return st.Fleets["blue"].Healthy == 0 })
		_, errOut, code := s.cli("switch", service, "--to", "blue", "--instant")
		if code != 3 || !strings.Contains(errOut, "no passing instances") {
			t.Fatalf("exit %d, stderr %q; want exit 3 naming the empty fleet", code, errOut)
		}
		if after := s.status(); after.Generation != before.Generation || after.Weights.Green != 100 {
			t.Fatalf("refused switch changed state: %+v", after)
		}
	})

	t.Run("wrong token is refused and changes nothing", func(t *testing.T) {
		before := s.status()
		_, errOut, code := s.cliToken("wrong", "abort", service)
		if code != 5 || !strings.Contains(errOut, "token") {
			t.Fatalf("exit %d, stderr %q; want exit 5 about the token", code, errOut)
		}
		req, _ := http.NewRequest(http.MethodPost, "http://"+s.admin+"/v1/services/web/abort", strings.NewReader(`{}`))
		req.Header.Set("Authorization", "Bearer wrong")
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != http.StatusUnauthorized {
			t.Fatalf("HTTP %d, want 401", resp.StatusCode)
		}
		if after := s.status(); after.Generation != before.Generation || after.Weights != before.Weights {
			t.Fatalf("unauthorized request changed state: %+v -> %+v", before, after)
		}
	})
}

func waitStatus(t *testing.T, s *stack, ok func(statusJSON) bool) statusJSON {
	t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for {
		st := s.status()
		if ok(st) {
			return st
		}
		if time.Now().After(deadline) {
			t.Fatalf("status never matched: %+v", st)
		}
		time.Sleep(200 * time.Millisecond)
	}
}
