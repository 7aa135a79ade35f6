package e2e

import (
	"bytes"
	"context"
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/bgctl/bg/e2e/harness"
)

// recipe runs docs/promote.sh, the script .github/workflows/promote.example.yml
// calls, against the stack.
type recipe struct {
	s      *stack
	script string
	dir    string
}

func newRecipe(t *testing.T, s *stack) *recipe {
	root := harness.RepoRoot(t)
	wf, err := os.ReadFile(filepath.Join(root, ".github", "workflows", "promote.example.yml"))
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(string(wf), `docs/promote.sh "$SERVICE" "$TO"`) {
		t.Fatalf("the example workflow no longer runs docs/promote.sh:\n%s", wf)
	}
	return &recipe{s: s, script: filepath.Join(root, "docs", "promote.sh"), dir: t.TempDir()}
}

// start runs the recipe in the background, as a workflow step would.
func (r *recipe) start(t *testing.T, to string, env ...string) (cmd *exec.Cmd, wait func() (code int, report statusJSON, stderr string)) {
	t.Helper()
	report := filepath.Join(r.dir, "report.json")
	_ = os.Remove(report)
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	cmd = exec.CommandContext(ctx, "bash", r.script, service, to)
	cmd.Dir = r.dir
	cmd.Env = append(os.Environ(), "BG_ADDR="+r.s.admin, "BG_TOKEN="+r.s.token, "BG_BIN="+r.s.bin,
		"BG_REPORT="+report, "BG_WAIT_TIMEOUT=90s", "GITHUB_ACTIONS=", "GITHUB_STEP_SUMMARY=")
	cmd.Env = append(cmd.Env, env...)
	var out, errOut bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errOut
	if err := cmd.Start(); err != nil {
		cancel()
		t.Fatal(err)
	}
	return cmd, func() (int, statusJSON, string) {
		defer cancel()
		_ = cmd.Wait()
		t.Logf("promote.sh exit %d\nstderr:\n%s", cmd.ProcessState.ExitCode(), errOut.String())
		var st statusJSON
		data, err := os.ReadFile(report)
		if err != nil {
			t.Fatalf("no report.json: %v", err)
		}
		if len(data) > 0 {
			if err := json.Unmarshal(data, &st); err != nil {
				t.Fatalf("report.json does not parse: %v\n%s", err, data)
			}
		}
		return cmd.ProcessState.ExitCode(), st, errOut.String()
	}
}

func TestCIRecipe(t *testing.T) {
	s := newStackWith(t, stackOptions{blue: 2, green: 2, analysis: e2eAnalysis})
	s.startClients(2)
	s.expectAll("blue", 20*time.Second)
	r := newRecipe(t, s)

	t.Run("healthy green is promoted: exit 0", func(t *testing.T) {
		_, wait := r.start(t, "green")
		code, rep, errOut := wait()
		if code != 0 || rep.Switch == nil || rep.Switch.Phase != "promoted" || rep.Weights.Green != 100 {
			t.Fatalf("exit %d, report %+v / %+v, stderr %s", code, rep, rep.Switch, errOut)
		}
		if !strings.Contains(errOut, "steps [20 50 100]") || !strings.Contains(errOut, "promoted: web") {
			t.Fatalf("stderr lacks the pre-flight plan or the verdict:\n%s", errOut)
		}
		s.expectAll("green", 10*time.Second)
	})

	// Back to blue at once, so that green is the candidate again.
	s.mustCLI("switch", service, "--to", "blue", "--instant")
	s.expectAll("blue", 10*time.Second)

	t.Run("green failing 20% is rolled back: exit 10", func(t *testing.T) {
		s.setGreenFailRatio(0.2)
		defer s.setGreenFailRatio(0)
		_, wait := r.start(t, "green")
		code, rep, errOut := wait()
		if code != 10 || rep.Switch == nil || rep.Switch.Phase != "rolled_back" || rep.Switch.Reason == "" || rep.Weights.Blue != 100 {
			t.Fatalf("exit %d, report %+v / %+v, stderr %s", code, rep, rep.Switch, errOut)
		}
		if !strings.Contains(errOut, "rolled back (exit 10)") {
			t.Fatalf("stderr does not explain exit 10:\n%s", errOut)
		}
		t.Logf("rolled back: %s", rep.Switch.Reason)
		s.setGreenFailRatio(0)
		s.expectAll("blue", 10*time.Second)
	})

	t.Run("a cancelled pipeline aborts the switch: exit 11", func(t *testing.T) {
		cmd, wait := r.start(t, "green", "BG_SWITCH_ARGS=--bake 30s", "BG_PREFLIGHT=0")
		s.waitSwitch(t, 30*time.Second, "first step", func(st statusJSON) bool {
			return st.Switch != nil && st.Switch.Phase == "progressing" && st.Weights.Green == 20
		})
		if err := cmd.Process.Signal(syscall.SIGTERM); err != nil {
			t.Fatal(err)
		}
		code, _, errOut := wait()
		if code != 11 || !strings.Contains(errOut, "pipeline cancelled") {
			t.Fatalf("exit %d, stderr %s", code, errOut)
		}
		if st := s.status(); st.Switch.Phase != "aborted" || st.Weights.Blue != 100 {
			t.Fatalf("after cancel: %+v %+v", st.Weights, st.Switch)
		}
		s.expectAll("blue", 10*time.Second)
	})

	t.Run("a wrong token fails pre-flight: exit 5, nothing changed", func(t *testing.T) {
		before := s.status().Generation
		_, wait := r.start(t, "green", "BG_TOKEN=wrong")
		code, _, errOut := wait()
		if code != 5 || !strings.Contains(errOut, "unauthorized (exit 5)") {
			t.Fatalf("exit %d, stderr %s", code, errOut)
		}
		if st := s.status(); st.Generation != before {
			t.Fatalf("generation %d -> %d", before, st.Generation)
		}
	})
}
