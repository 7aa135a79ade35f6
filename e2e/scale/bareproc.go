package scale

import (
	"context"
	"flag"
	"fmt"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"strconv"
	"syscall"
	"time"

	"github.com/bgctl/bg/e2e/harness"
)

// BareFlag, as a binary's first argument, makes it the bare reference
// server (BareMain) instead of the bench. The bg-scale command re-executes
// itself with it, so the bare server is a process of its own and its RSS
// and CPU compare with bg's process to process.
const BareFlag = "-bare-server"

// BareMain parses the bare server's flags (what follows BareFlag) and
// serves until SIGINT or SIGTERM. It returns the exit code.
func BareMain(args []string) int {
	fs := flag.NewFlagSet("bg-scale "+BareFlag, flag.ContinueOnError)
	var o BareOptions
	fs.IntVar(&o.Services, "services", 0, "services")
	fs.StringVar(&o.XDSAddr, "xds", "", "ADS listen address")
	fs.StringVar(&o.AdminAddr, "admin", "", "HTTP listen address")
	if err := fs.Parse(args); err != nil {
		return 2
	}
	if o.Services < 1 || o.XDSAddr == "" || o.AdminAddr == "" {
		fmt.Fprintln(os.Stderr, "bg-scale "+BareFlag+": -services, -xds and -admin are required")
		return 2
	}
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGINT, syscall.SIGTERM)
	defer stop()
	if err := ServeBare(ctx, o); err != nil {
		fmt.Fprintf(os.Stderr, "bg-scale %s: %v\n", BareFlag, err)
		return 1
	}
	return 0
}

// bareProc is the bare server running as a child process.
type bareProc struct {
	cmd     *exec.Cmd
	done    chan struct{}
	logPath string
}

func startBare(t harness.TB, bin string, o BareOptions) (*bareProc, error) {
	logPath := filepath.Join(t.TempDir(), "bare.log")
	logf, err := os.Create(logPath)
	if err != nil {
		return nil, err
	}
	cmd := exec.Command(bin, BareFlag, "-services", strconv.Itoa(o.Services), "-xds", o.XDSAddr, "-admin", o.AdminAddr)
	cmd.Stdout, cmd.Stderr = logf, logf
	cmd.SysProcAttr = childSysProcAttr()
	if err := cmd.Start(); err != nil {
		logf.Close()
		return nil, fmt.Errorf("start bare server %s: %w", bin, err)
	}
	p := &bareProc{cmd: cmd, done: make(chan struct{}), logPath: logPath}
	go func() {
		_ = cmd.Wait()
		logf.Close()
		close(p.done)
	}()
	t.Cleanup(p.stop)
	return p, nil
}

func (p *bareProc) running() bool {
	select {
	case <-p.done:
		return false
	default:
		return true
	}
}

// stop sends SIGTERM and escalates to SIGKILL after 10 s.
func (p *bareProc) stop() {
	_ = p.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-p.done:
	case <-time.After(10 * time.Second):
		_ = p.cmd.Process.Kill()
		<-p.done
	}
}
