package e2e

import (
	"bytes"
	"encoding/json"
	"os/exec"
	"strings"
	"testing"
	"time"
)

// analysis for the e2e: 1 s analyses of the counts since the switch began,
// so a regression is seen within seconds; small min_requests because steps
// are short.
const e2eAnalysis = `
interval: 1s
bake: 2s
steps: [20, 50, 100]
min_requests: 100
unavailable_budget: 4s
`

// waitSwitch polls status until ok or fails after timeout.
func (s *stack) waitSwitch(t *testing.T, timeout time.Duration, what string, ok func(statusJSON) bool) statusJSON {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for {
		st := s.status()
		if ok(st) {
			return st
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s: not reached in %s; status %+v switch %+v", what, timeout, st, st.Switch)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// startWait runs `bg switch ... --wait -o json` in the background.
func (s *stack) startWait(t *testing.T, args ...string) (wait func() (code int, report statusJSON, stderr string)) {
	t.Helper()
	cmd := exec.Command(s.bin, append([]string{"switch", service, "--wait", "-o", "json"}, args...)...)
	cmd.Env = append(cmd.Environ(), "BG_ADDR="+s.admin, "BG_TOKEN="+s.token)
	var out, errOut bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errOut
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	return func() (int, statusJSON, string) {
		_ = cmd.Wait()
		var st statusJSON
		if err := json.Unmarshal(out.Bytes(), &st); err != nil {
			t.Fatalf("--wait -o json printed no report (%v): stdout %q stderr %q", err, out.String(), errOut.String())
		}
		return cmd.ProcessState.ExitCode(), st, errOut.String()
	}
}

func (s *stack) setGreenFailRatio(r float64) {
	for id, b := range s.backends {
		if strings.Contains(id, "-green-") {
			b.SetFailRatio(r)
		}
	}
}

func TestProgressiveSwitch(t *testing.T) {
	s := newStackWith(t, stackOptions{blue: 2, green: 2, analysis: e2eAnalysis})
	s.startClients(2)
	s.expectAll("blue", 20*time.Second)

	t.Run("dry run prints the plan and runs each query once", func(t *testing.T) {
		out := s.mustCLI("switch", service, "--to", "green", "--dry-run")
		for _, want := range []string{"steps [20 50 100]", "green", "blue", "requests"} {
			if !strings.Contains(out, want) {
				t.Fatalf("dry run output lacks %q:\n%s", want, out)
			}
		}
		if st := s.status(); st.Weights.Blue != 100 || st.Switch != nil {
			t.Fatalf("dry run changed state: %+v", st)
		}
	})

	t.Run("healthy green is promoted through every step", func(t *testing.T) {
		before := s.marks()
		wait := s.startWait(t, "--to", "green")
		code, rep, errOut := wait()
		if code != 0 || rep.Switch == nil || rep.Switch.Phase != "promoted" || rep.Weights.Green != 100 {
			t.Fatalf("exit %d, report %+v / %+v, stderr %s", code, rep, rep.Switch, errOut)
		}
		steps := map[int]bool{}
		for _, v := range rep.Switch.Verdicts {
			if v.Outcome == "pass" {
				steps[v.Percent] = true
			}
		}
		if !steps[20] || !steps[50] {
			t.Fatalf("want a passing analysis at 20%% and 50%%, verdicts %+v", rep.Switch.Verdicts)
		}
		// Weight changes themselves fail no call (see TestSwitchAbort...); on
		// this loaded 2-core box a rare call can still miss its 2 s deadline.
		if n := s.sumSince(before); n.Failed*1000 > n.Total() {
			t.Fatalf("failed calls during a healthy switch: %s", n)
		} else {
			t.Logf("calls during the switch: %s", n)
		}
		s.expectAll("green", 10*time.Second)
	})

	t.Run("abort back to blue", func(t *testing.T) {
		s.flip(t, "blue", "abort", service)
	})

	t.Run("green failing 20% from the second step is rolled back", func(t *testing.T) {
		wait := s.startWait(t, "--to", "green", "--bake", "3s")
		s.waitSwitch(t, 30*time.Second, "second step", func(st statusJSON) bool {
			return st.Switch != nil && st.Switch.Step == 1 && st.Weights.Green == 50
		})
		onset := s.marks()
		s.setGreenFailRatio(0.2)
		defer s.setGreenFailRatio(0)
		code, rep, errOut := wait()
		if code != 10 || rep.Switch.Phase != "rolled_back" || rep.Weights.Blue != 100 || !strings.Contains(errOut, "rolled back") {
			t.Fatalf("exit %d, report %+v / %+v, stderr %s", code, rep, rep.Switch, errOut)
		}
		if rep.Switch.ConfirmedAt.IsZero() && s.status().Switch.ConfirmedAt.IsZero() {
			t.Fatalf("rollback was never confirmed by proxy ACKs: %+v", rep.Switch)
		}
		// Error onset → the last call any client sent to green.
		var lastGreen time.Time
		for i, c := range s.clients {
			for _, call := range c.Calls(onset[i]) {
				if (call.Color == "green" || call.Err != "") && call.Start.After(lastGreen) {
					lastGreen = call.Start
				}
			}
		}
		took := lastGreen.Sub(onset[0].Time())
		t.Logf("error onset → 100%% of calls on blue: %v (reason: %s)", took.Round(10*time.Millisecond), rep.Switch.Reason)
		if took > 5*time.Second {
			t.Fatalf("rollback took %v, target 5s", took)
		}
		s.setGreenFailRatio(0)
		s.expectAll("blue", 10*time.Second)
	})

	t.Run("prometheus down: split holds, then the policy rolls back", func(t *testing.T) {
		wait := s.startWait(t, "--to", "green", "--bake", "30s")
		first := s.waitSwitch(t, 30*time.Second, "first step analysed", func(st statusJSON) bool {
			return st.Switch != nil && st.Switch.Phase == "progressing" && st.Weights.Green == 20 &&
				len(st.Switch.Verdicts) > 0 && st.Switch.Verdicts[0].Outcome == "pass"
		})
		s.prom.Stop()
		held := s.waitSwitch(t, 10*time.Second, "holding", func(st statusJSON) bool {
			return st.Switch != nil && strings.Contains(st.Switch.Reason, "metrics unavailable")
		})
		if held.Weights.Green != first.Weights.Green || held.Switch.Step != 0 {
			t.Fatalf("split moved while metrics were unavailable: %+v -> %+v", first.Weights, held.Weights)
		}
		code, rep, _ := wait()
		if code != 10 || !strings.Contains(rep.Switch.Reason, "metrics unavailable") || rep.Weights.Blue != 100 {
			t.Fatalf("exit %d, report %+v / %+v", code, rep, rep.Switch)
		}
		s.prom.Start()
		s.prom.WaitTargetsUp(30 * time.Second)
	})

	t.Run("pause, resume and promote mid-plan", func(t *testing.T) {
		s.mustCLI("switch", service, "--to", "green", "--bake", "1s", "--steps", "10,50,100")
		s.mustCLI("pause", service)
		time.Sleep(3 * time.Second)
		if st := s.status(); st.Switch.Phase != "paused" || st.Switch.Step != 0 || st.Weights.Green != 10 {
			t.Fatalf("paused switch moved: %+v %+v", st.Weights, st.Switch)
		}
		s.mustCLI("resume", service)
		s.waitSwitch(t, 20*time.Second, "advance after resume", func(st statusJSON) bool { return st.Switch.Step == 1 })
		s.mustCLI("promote", service)
		st := s.waitSwitch(t, 20*time.Second, "promoted", func(st statusJSON) bool { return st.Switch.Phase == "promoted" })
		if st.Weights.Green != 100 {
			t.Fatalf("promoted but weights %+v", st.Weights)
		}
	})

	t.Run("abort mid-plan", func(t *testing.T) {
		s.mustCLI("switch", service, "--to", "blue", "--bake", "30s")
		s.waitSwitch(t, 10*time.Second, "first step", func(st statusJSON) bool { return st.Weights.Blue == 20 })
		s.flip(t, "green", "abort", service)
		if st := s.status(); st.Switch.Phase != "aborted" {
			t.Fatalf("switch %+v", st.Switch)
		}
	})

	t.Run("promote --force skips analysis and is recorded", func(t *testing.T) {
		s.mustCLI("switch", service, "--to", "blue", "--bake", "30s")
		s.mustCLI("promote", service, "--force", "--reason", "e2e override")
		st := s.status()
		if st.Switch.Phase != "promoted" || st.Weights.Blue != 100 || len(st.Switch.Overrides) != 1 || !strings.Contains(st.Switch.Overrides[0], "e2e override") {
			t.Fatalf("status %+v switch %+v", st.Weights, st.Switch)
		}
	})

	t.Run("a second switch while one runs is refused, naming it", func(t *testing.T) {
		s.mustCLI("switch", service, "--to", "green", "--bake", "30s")
		_, errOut, code := s.cli("switch", service, "--to", "green")
		if code != 3 || !strings.Contains(errOut, "gen-") {
			t.Fatalf("exit %d stderr %q", code, errOut)
		}
		s.mustCLI("abort", service)
	})
}
