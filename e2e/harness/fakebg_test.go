package harness_test

import (
	"context"
	"fmt"
	"net/http"
	"os"
	"os/signal"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/bgctl/bg/e2e/harness"
)

// The real bg binary is written in parallel; until then the test binary
// plays a minimal bg so StartBG/Stop/Kill/Restart/RunCLI are exercised.
const (
	fakeBGEnv    = "HARNESS_FAKE_BG"
	fakeAdminEnv = "HARNESS_FAKE_ADMIN"
	fakeTokenEnv = "HARNESS_FAKE_TOKEN"
)

func fakeBGMain(args []string) int {
	if len(args) == 0 || args[0] != "serve" {
		fmt.Fprintln(os.Stdout, "out:"+strings.Join(args, " "))
		fmt.Fprintln(os.Stderr, "err:usage")
		return 3
	}
	token := os.Getenv(fakeTokenEnv)
	mux := http.NewServeMux()
	mux.HandleFunc("/readyz", func(w http.ResponseWriter, r *http.Request) {
		if token != "" && r.Header.Get("Authorization") != "Bearer "+token {
			w.WriteHeader(http.StatusUnauthorized)
			return
		}
		w.WriteHeader(http.StatusOK)
	})
	srv := &http.Server{Addr: os.Getenv(fakeAdminEnv), Handler: mux}
	sig := make(chan os.Signal, 1)
	signal.Notify(sig, syscall.SIGTERM)
	go func() {
		<-sig
		fmt.Println("fake bg: SIGTERM")
		ctx, cancel := context.WithTimeout(context.Background(), time.Second)
		defer cancel()
		_ = srv.Shutdown(ctx)
	}()
	fmt.Println("fake bg: serving", strings.Join(args[1:], " "))
	if err := srv.ListenAndServe(); err != http.ErrServerClosed {
		fmt.Println("fake bg:", err)
		return 1
	}
	return 0
}

func TestBGLifecycleWithFake(t *testing.T) {
	admin := fmt.Sprintf("127.0.0.1:%d", harness.FreePort(t))
	cfg := filepath.Join(t.TempDir(), "bg.yaml")
	bin, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	b := harness.StartBG(t, harness.BGOptions{
		Bin: bin, Config: cfg, AdminAddr: admin, Token: "s3cret",
		Env: []string{fakeBGEnv + "=1", fakeAdminEnv + "=" + admin, fakeTokenEnv + "=s3cret"},
	})
	if !b.Running() || !strings.Contains(b.Log(), "--config "+cfg) {
		t.Fatalf("not running with config; log:\n%s", b.Log())
	}

	b.Stop()
	if b.Running() || b.ExitCode() != 0 || !strings.Contains(b.Log(), "SIGTERM") {
		t.Fatalf("Stop: running=%v code=%d log:\n%s", b.Running(), b.ExitCode(), b.Log())
	}
	b.Restart()
	if !b.Running() {
		t.Fatal("not running after Restart")
	}
	b.Kill()
	if b.Running() || b.ExitCode() != -1 {
		t.Fatalf("Kill: running=%v code=%d", b.Running(), b.ExitCode())
	}
	b.Restart() // from a killed state too

	out, errOut, code := harness.RunCLIEnv(t, bin, []string{fakeBGEnv + "=1"}, "status", "web")
	if out != "out:status web\n" || errOut != "err:usage\n" || code != 3 {
		t.Fatalf("RunCLI = %q, %q, %d", out, errOut, code)
	}
}

func TestBuildBG(t *testing.T) {
	if m, _ := filepath.Glob(filepath.Join(harness.RepoRoot(t), "cli", "bg", "*.go")); len(m) == 0 {
		t.Skip("cli/bg has no Go files yet")
	}
	bin := harness.BuildBG(t)
	if bin2 := harness.BuildBG(t); bin2 != bin {
		t.Fatalf("second build gave %s, want %s", bin2, bin)
	}
	if _, err := os.Stat(bin); err != nil {
		t.Fatal(err)
	}
}
