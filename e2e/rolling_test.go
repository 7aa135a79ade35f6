package e2e

import (
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

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
	Weights struct{ Blue, Green int } `json:"weights"`
	Roll    *struct {
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

// watchInvariants polls status until stop, failing the test if more than
// one slot drains at once or fewer than 3 hosts serve; it returns every
// (slot, state) change in order.
func (rs *rollStack) watchInvariants(t *testing.T) (stop func() []string) {
	var (
		mu      sync.Mutex
		changes []string
		done    = make(chan struct{})
		wg      sync.WaitGroup
	)
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
			draining, serving := 0, 0
			for _, sl := range st.Roll.Slots {
				switch sl.State {
				case "draining", "restoring":
					draining++
					serving++ // the other host of the slot serves
				default:
					serving++
				}
				if last[sl.Key] != sl.State {
					mu.Lock()
					changes = append(changes, sl.Key+":"+sl.State)
					mu.Unlock()
					last[sl.Key] = sl.State
				}
			}
			if draining > 1 || serving < 3 {
				t.Errorf("invariant broken: %d draining, %d serving: %+v", draining, serving, st.Roll.Slots)
			}
		}
	}()
	return func() []string {
		close(done)
		wg.Wait()
		mu.Lock()
		defer mu.Unlock()
		return changes
	}
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

	t.Run("4-host roll: each session moves exactly once, to its host's replacement", func(t *testing.T) {
		m := rs.sessions.Mark()
		time.Sleep(time.Second) // every session calls its current host inside the window
		stop := rs.watchInvariants(t)
		out, errOut, code := rs.cli("switch", rollService, "--to", "green", "--wait")
		changes := stop()
		if code != 0 {
			t.Fatalf("exit %d\n%s\n%s", code, out, errOut)
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
