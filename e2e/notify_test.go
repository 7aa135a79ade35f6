package e2e

import (
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// receiver is a webhook target that records what it is sent and answers
// as told: 200, 500, or not at all (it hangs until the sender gives up).
type receiver struct {
	srv   *httptest.Server
	mode  atomic.Int32 // receiverOK, receiver500, receiverHang
	calls atomic.Int32 // every request, answered or not
	mu    sync.Mutex
	got   []notice
}

const (
	receiverOK int32 = iota
	receiver500
	receiverHang
)

// notice is the part of a webhook event the test reads.
type notice struct {
	Event   string `json:"event"`
	Service string `json:"service"`
	Step    int    `json:"step"`
	Reason  string `json:"reason"`
	Cause   string `json:"cause"`
}

func newReceiver(t *testing.T) *receiver {
	r := &receiver{}
	r.srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
		r.calls.Add(1)
		switch r.mode.Load() {
		case receiver500:
			http.Error(w, "receiver down", http.StatusInternalServerError)
			return
		case receiverHang:
			select {
			case <-req.Context().Done():
			case <-time.After(time.Minute):
			}
			return
		}
		var n notice
		if err := json.NewDecoder(req.Body).Decode(&n); err != nil {
			http.Error(w, err.Error(), http.StatusBadRequest)
			return
		}
		r.mu.Lock()
		r.got = append(r.got, n)
		r.mu.Unlock()
	}))
	t.Cleanup(r.srv.Close)
	return r
}

// take returns what arrived since the last take.
func (r *receiver) take() []notice {
	r.mu.Lock()
	defer r.mu.Unlock()
	out := r.got
	r.got = nil
	return out
}

// count counts events by kind.
func count(ns []notice) map[string]int {
	m := map[string]int{}
	for _, n := range ns {
		m[n.Event]++
	}
	return m
}

// Three replicas, each configured with the same webhook: every event of a
// switch reaches it exactly once (only the leader sends), with the
// reason; and a receiver that fails or hangs slows no switch down.
func TestNotificationsAcrossReplicas(t *testing.T) {
	rcv := newReceiver(t)
	h := newHAStackWith(t, 3, fmt.Sprintf("notifications:\n  - name: hook\n    type: webhook\n    url: %s\n", rcv.srv.URL))
	ld := h.leader(t, 30*time.Second)
	colour := "green"
	// switchOnce runs a judged switch to the other colour through the
	// leader and returns how long it took and what was sent meanwhile
	// (waiting for deliveries still on their way).
	switchOnce := func(t *testing.T, wantCode int) (time.Duration, []notice) {
		t.Helper()
		began := time.Now()
		out, errOut, code := h.on(ld, "switch", service, "--to", colour, "--wait")
		took := time.Since(began)
		if code != wantCode {
			t.Fatalf("switch to %s: exit %d, want %d\n%s\n%s", colour, code, wantCode, out, errOut)
		}
		if code == 0 {
			colour = map[string]string{"green": "blue", "blue": "green"}[colour]
		}
		time.Sleep(2 * time.Second) // deliveries are asynchronous
		return took, rcv.take()
	}

	var healthy time.Duration
	t.Run("a healthy switch: started, each step once, promoted", func(t *testing.T) {
		took, got := switchOnce(t, 0)
		healthy = took
		c := count(got)
		steps := map[int]int{}
		for _, n := range got {
			if n.Event == "step" {
				steps[n.Step]++
			}
		}
		t.Logf("switch took %v; events %v, steps %v", took.Round(time.Millisecond), c, steps)
		if c["started"] != 1 || c["promoted"] != 1 || c["rolled_back"] != 0 || c["step"] < 2 || len(got) != c["started"]+c["step"]+c["promoted"] {
			t.Fatalf("events %+v", got)
		}
		for step, n := range steps {
			if n != 1 {
				t.Errorf("step %d announced %d times", step, n)
			}
		}
	})

	t.Run("a failing switch: started, rolled back once with the reason, never promoted", func(t *testing.T) {
		for _, b := range h.backends {
			if strings.Contains(b.Options().ID, colour) {
				b.SetFailRatio(0.3)
			}
		}
		defer func() {
			for _, b := range h.backends {
				b.SetFailRatio(0)
			}
		}()
		_, got := switchOnce(t, 10)
		c := count(got)
		t.Logf("events %v", c)
		if c["started"] != 1 || c["rolled_back"] != 1 || c["promoted"] != 0 {
			t.Fatalf("events %+v", got)
		}
		for _, n := range got {
			if n.Event == "rolled_back" && (n.Reason == "" || n.Cause != "analysis_failed") {
				t.Fatalf("rolled_back without its reason or cause: %+v", n)
			}
		}
	})

	for _, c := range []struct {
		name string
		mode int32
	}{{"a receiver answering 500", receiver500}, {"a hung receiver", receiverHang}} {
		t.Run(c.name+" delays no step", func(t *testing.T) {
			rcv.mode.Store(c.mode)
			defer rcv.mode.Store(receiverOK)
			before := rcv.calls.Load()
			took, _ := switchOnce(t, 0)
			tried := rcv.calls.Load() - before
			t.Logf("switch took %v against %v with a healthy receiver; %d delivery attempts", took.Round(time.Millisecond), healthy.Round(time.Millisecond), tried)
			if tried == 0 {
				t.Fatalf("bg never tried to deliver to %s: the timing below would prove nothing", c.name)
			}
			// ±1 analysis interval (haAnalysis: 1s).
			if d := took - healthy; d > time.Second || d < -time.Second {
				t.Fatalf("switch took %v with %s, %v with a healthy one: more than one interval apart", took, c.name, healthy)
			}
		})
	}
}
