package commands_test

import (
	"bytes"
	"encoding/json"
	"os"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/bgctl/bg/cli/commands"
	"github.com/bgctl/bg/controlplane/model"
	"github.com/bgctl/bg/controlplane/traffic"
)

func TestStatusWatchPrintsFrames(t *testing.T) {
	c := newFake()
	addr := server(t, c, "")
	code, out, errOut := run(t, "--addr", addr, "status", "web", "--watch", "--interval", "10ms", "--count", "3")
	expect(t, code, out, errOut, 0)
	if n := strings.Count(out, "SERVICE"); n != 3 {
		t.Fatalf("want 3 frames, got %d:\n%s", n, out)
	}
	// Not a terminal: frames are separated by timestamp lines, never ANSI.
	if n := strings.Count(out, "--- "); n != 3 || strings.Contains(out, "\x1b[") {
		t.Fatalf("want 3 timestamp separators and no escape codes:\n%q", out)
	}
	for _, line := range strings.Split(out, "\n") {
		if ts, ok := strings.CutPrefix(line, "--- "); ok {
			if _, err := time.Parse(time.RFC3339, ts); err != nil {
				t.Fatalf("separator %q: %v", line, err)
			}
		}
	}
}

func TestStatusWatchShowsSwitchProgress(t *testing.T) {
	c := newFake()
	c.status.Weights = traffic.Weights{Blue: 80, Green: 20}
	c.status.Switch = &model.Rollout{ID: "web@3", From: model.Blue, To: model.Green, Phase: model.RolloutProgressing}
	c.status.Switch.Plan.Steps = []int{20, 50, 100}
	addr := server(t, c, "")
	code, out, errOut := run(t, "--addr", addr, "status", "--watch", "--interval", "10ms", "--count", "2")
	expect(t, code, out, errOut, 0)
	if n := strings.Count(out, "web@3 step 1/3: blue 80% green 20%"); n != 2 {
		t.Fatalf("want the progress line in both frames, got %d:\n%s", n, out)
	}
}

func TestStatusWatchJSONFrames(t *testing.T) {
	c := newFake()
	addr := server(t, c, "")
	code, out, errOut := run(t, "--addr", addr, "status", "web", "-w", "--interval", "10ms", "--count", "2", "-o", "json")
	expect(t, code, out, errOut, 0)
	frames := 0
	for _, part := range strings.Split(out, "--- ")[1:] {
		_, body, _ := strings.Cut(part, "\n")
		var st traffic.Status
		if err := json.Unmarshal([]byte(body), &st); err != nil || st.Service != "web" {
			t.Fatalf("frame %q: %v", body, err)
		}
		frames++
	}
	if frames != 2 {
		t.Fatalf("want 2 JSON frames, got %d:\n%s", frames, out)
	}
}

func TestStatusWatchErrors(t *testing.T) {
	c := newFake()
	addr := server(t, c, "")
	code, out, errOut := run(t, "--addr", addr, "status", "nope", "--watch", "--interval", "10ms", "--count", "2")
	expect(t, code, out, errOut, commands.ExitUsage, "nope")
	code, out, errOut = run(t, "--addr", addr, "status", "web", "--watch", "--interval", "0s")
	expect(t, code, out, errOut, commands.ExitUsage, "--interval")
}

// syncBuffer is written by the command while the test reads it.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

func TestStatusWatchExitsZeroOnSIGINT(t *testing.T) {
	c := newFake()
	addr := server(t, c, "")
	t.Setenv("BG_ADDR", "")
	t.Setenv("BG_TOKEN", "")
	var out, errOut syncBuffer
	done := make(chan int, 1)
	go func() {
		done <- commands.Run([]string{"bg", "--addr", addr, "status", "web", "--watch", "--interval", "20ms"}, &out, &errOut)
	}()
	deadline := time.Now().Add(10 * time.Second)
	for strings.Count(out.String(), "SERVICE") < 2 {
		if time.Now().After(deadline) {
			t.Fatalf("fewer than 2 frames in 10s:\n%s\nstderr: %s", out.String(), errOut.String())
		}
		time.Sleep(10 * time.Millisecond)
	}
	// The watch has been catching SIGINT since before its first frame.
	if err := syscall.Kill(syscall.Getpid(), syscall.SIGINT); err != nil {
		t.Fatal(err)
	}
	select {
	case code := <-done:
		if code != 0 {
			t.Fatalf("exit %d after SIGINT, stderr %s", code, errOut.String())
		}
	case <-time.After(10 * time.Second):
		t.Fatal("watch did not stop on SIGINT")
	}
	if n := strings.Count(out.String(), "SERVICE"); n < 2 {
		t.Fatalf("want ≥2 frames, got %d", n)
	}
}

func TestCompletionScripts(t *testing.T) {
	for _, shell := range []string{"bash", "zsh", "fish"} {
		t.Run(shell, func(t *testing.T) {
			code, out, errOut := run(t, "completion", shell)
			expect(t, code, out, errOut, 0)
			if strings.TrimSpace(out) == "" || !strings.Contains(out, "bg") {
				t.Fatalf("script does not mention bg:\n%s", out)
			}
			if shell != "fish" && !strings.Contains(out, "--generate-bash-completion") {
				t.Fatalf("script does not ask bg for completions:\n%s", out)
			}
			if shell == "fish" && !strings.Contains(out, "complete -c bg") {
				t.Fatalf("fish script has no completions for bg:\n%s", out)
			}
		})
	}
	code, out, errOut := run(t, "completion", "powershell")
	expect(t, code, out, errOut, commands.ExitUsage, "powershell")
	code, out, errOut = run(t, "completion")
	expect(t, code, out, errOut, commands.ExitUsage, "bash, zsh or fish")
}

func TestBashCompletionListsCommands(t *testing.T) {
	// urfave/cli reads the word being completed from os.Args.
	args := os.Args
	os.Args = []string{"bg", "--generate-bash-completion"}
	defer func() { os.Args = args }()
	code, out, errOut := run(t, "--generate-bash-completion")
	expect(t, code, out, errOut, 0)
	for _, cmd := range []string{"switch", "status", "completion"} {
		if !strings.Contains(out, cmd+"\n") {
			t.Errorf("completion lacks %q:\n%s", cmd, out)
		}
	}
}

func TestEveryCommandHelpHasExamples(t *testing.T) {
	for _, cmd := range commands.App().Commands {
		if !strings.Contains(cmd.Description, "Example") {
			t.Errorf("bg %s: Description has no Example:\n%s", cmd.Name, cmd.Description)
		}
		code, out, errOut := run(t, cmd.Name, "--help")
		expect(t, code, out, errOut, 0)
		if !strings.Contains(out, "Example") {
			t.Errorf("bg %s --help shows no example:\n%s", cmd.Name, out)
		}
	}
}
