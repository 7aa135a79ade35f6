package harness

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"sync"
	"time"
)

// bgStartTimeout bounds how long bg may take to report /readyz 200.
const bgStartTimeout = 30 * time.Second

var (
	buildOnce sync.Once
	buildPath string
	buildErr  error
)

// BuildBG builds ./cli/bg once per test process and returns the binary.
// $BG_BIN, when set, is used instead (a CI step may build it once for all
// packages). The output is <repo>/.cache/e2e/bg, written to a temp name and
// renamed so parallel test processes never run a half-written file.
func BuildBG(t TB) string {
	t.Helper()
	if p := os.Getenv("BG_BIN"); p != "" {
		return p
	}
	root := RepoRoot(t)
	buildOnce.Do(func() { buildPath, buildErr = buildBG(root) })
	if buildErr != nil {
		t.Fatalf("harness: %v", buildErr)
	}
	return buildPath
}

func buildBG(root string) (string, error) {
	dir := filepath.Join(root, ".cache", "e2e")
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return "", err
	}
	final := filepath.Join(dir, "bg")
	tmp := fmt.Sprintf("%s.%d.tmp", final, os.Getpid())
	cmd := exec.Command("go", "build", "-o", tmp, "./cli/bg")
	cmd.Dir = root
	out, err := cmd.CombinedOutput()
	if err != nil {
		os.Remove(tmp)
		return "", fmt.Errorf("go build ./cli/bg: %v\n%s", err, out)
	}
	return final, os.Rename(tmp, final)
}

// BGOptions describe one `bg serve` process.
type BGOptions struct {
	Bin       string   // from BuildBG
	Config    string   // passed as --config
	AdminAddr string   // host:port of the admin HTTP server, for /readyz
	Token     string   // sent as a Bearer token to the admin API, if set
	Env       []string // added to the environment
	Args      []string // extra flags after `serve --config X`
	SkipReady bool     // return once started, for tests of a bg that must not become ready
}

// BG is a running `bg serve`.
type BG struct {
	t    TB
	opts BGOptions
	p    *proc
}

// StartBG runs `bg serve --config Config` and waits for /readyz 200. It is
// stopped when the test ends.
func StartBG(t TB, o BGOptions) *BG {
	t.Helper()
	args := append([]string{"serve", "--config", o.Config}, o.Args...)
	b := &BG{t: t, opts: o, p: newProc(t, "bg", o.Bin, args, o.Env)}
	t.Cleanup(func() { b.Stop() })
	b.start()
	return b
}

func (b *BG) start() {
	b.t.Helper()
	if err := b.p.start(); err != nil {
		b.t.Fatalf("harness: %v", err)
	}
	if b.opts.SkipReady {
		return
	}
	if err := b.waitReady(); err != nil {
		b.t.Fatalf("harness: bg: %v", err)
	}
}

func (b *BG) waitReady() error {
	ctx, cancel := context.WithTimeout(context.Background(), bgStartTimeout)
	defer cancel()
	url := "http://" + b.opts.AdminAddr + "/readyz"
	var last error
	for {
		select {
		case <-b.p.exited():
			return fmt.Errorf("exited before ready (code %d)", b.p.exitCode())
		default:
		}
		code, err := adminGet(ctx, url, b.opts.Token)
		if err == nil && code == http.StatusOK {
			return nil
		}
		if err == nil {
			err = fmt.Errorf("readyz: HTTP %d", code)
		}
		last = err
		select {
		case <-ctx.Done():
			return fmt.Errorf("not ready after %v: %w", bgStartTimeout, last)
		case <-time.After(50 * time.Millisecond):
		}
	}
}

// Stop sends SIGTERM and waits; it fails the test if bg needs a SIGKILL
// after 10 s, since a clean shutdown is part of bg's contract.
func (b *BG) Stop() {
	if !b.p.stop(10 * time.Second) {
		b.t.Errorf("harness: bg ignored SIGTERM for 10s; killed")
	}
}

// Kill sends SIGKILL and waits: a crash, no shutdown hooks.
func (b *BG) Kill() { b.p.kill() }

// Restart stops bg (if running) and starts it with the same options.
func (b *BG) Restart() {
	b.t.Helper()
	b.Stop()
	b.start()
}

// Running reports whether the process is alive.
func (b *BG) Running() bool { return b.p.running() }

// ExitCode of the last run, -1 if running or killed by a signal.
func (b *BG) ExitCode() int { return b.p.exitCode() }

// Log is everything bg wrote to stdout/stderr so far, across restarts.
func (b *BG) Log() string { return b.p.log() }

// RunCLI runs the bg binary with args (one minute at most) and returns its
// output and exit code; a failure to run at all fails the test.
func RunCLI(t TB, bin string, args ...string) (stdout, stderr string, exitCode int) {
	t.Helper()
	return RunCLIEnv(t, bin, nil, args...)
}

// RunCLIEnv is RunCLI with extra environment variables.
func RunCLIEnv(t TB, bin string, env []string, args ...string) (stdout, stderr string, exitCode int) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, bin, args...)
	cmd.Env = append(os.Environ(), env...)
	cmd.SysProcAttr = childSysProcAttr()
	var out, errb bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errb
	err := cmd.Run()
	var ee *exec.ExitError
	switch {
	case err == nil:
	case errors.As(err, &ee) && ctx.Err() == nil:
	default:
		t.Fatalf("harness: run %s %q: %v\nstderr:\n%s", bin, args, err, errb.String())
	}
	return out.String(), errb.String(), cmd.ProcessState.ExitCode()
}

// adminGet does one GET and returns the status code.
func adminGet(ctx context.Context, url, token string) (int, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return 0, err
	}
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	c := http.Client{Timeout: 2 * time.Second}
	resp, err := c.Do(req)
	if err != nil {
		return 0, err
	}
	resp.Body.Close()
	return resp.StatusCode, nil
}
