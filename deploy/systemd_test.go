package deploy

import (
	"bufio"
	"bytes"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/bgctl/bg/cli/commands"
)

const (
	unitFile = "systemd/bg.service"
	// unitBinary is where the unit expects bg.
	unitBinary = "/usr/local/bin/bg"
	// minNOFILE: one descriptor per xDS stream (Envoy or proxyless gRPC
	// client) plus Consul and admin connections, for tens of thousands of
	// streams.
	minNOFILE = 65536
)

func TestSystemdUnit(t *testing.T) {
	src := readFile(t, unitFile)
	fail(t, unitFile, checkUnit(src))
}

func TestSystemdAnalyzeVerify(t *testing.T) {
	analyze := systemdAnalyze(t)
	fail(t, unitFile, verifyUnit(t, analyze, readFile(t, unitFile)))
}

// systemdAnalyze finds systemd-analyze; without it the test skips, or
// fails in CI (CI set), as the e2e tests do with missing dependencies.
func systemdAnalyze(t *testing.T) string {
	t.Helper()
	path, err := exec.LookPath("systemd-analyze")
	if err != nil {
		if os.Getenv("CI") != "" {
			t.Fatalf("CI=%s: systemd-analyze not found: %v", os.Getenv("CI"), err)
		}
		t.Skipf("systemd-analyze not found: %v", err)
	}
	return path
}

var (
	bgBuild    sync.Once
	bgBinary   string
	bgBuildErr error
)

// builtBG builds bg once per test binary, into a directory removed at exit
// (TestMain).
func builtBG(t *testing.T) string {
	t.Helper()
	bgBuild.Do(func() {
		dir, err := os.MkdirTemp("", "bg-deploy-test-")
		if err != nil {
			bgBuildErr = err
			return
		}
		buildDir = dir
		bgBinary = filepath.Join(dir, "bg")
		out, err := exec.Command("go", "build", "-o", bgBinary, "github.com/bgctl/bg/cli/bg").CombinedOutput()
		if err != nil {
			bgBuildErr = errors.New("go build bg: " + err.Error() + "\n" + string(out))
		}
	})
	if bgBuildErr != nil {
		t.Fatal(bgBuildErr)
	}
	return bgBinary
}

var buildDir string

func TestMain(m *testing.M) {
	code := m.Run()
	if buildDir != "" {
		_ = os.RemoveAll(buildDir)
	}
	os.Exit(code)
}

// verifyUnit runs systemd-analyze verify on a copy of the unit whose
// commands use a freshly built bg instead of /usr/local/bin/bg, which does
// not exist here (verify checks that every command is executable). Any
// output is a problem: verify exits 0 on settings it ignores, printing
// "Failed to parse ..., ignoring".
func verifyUnit(t *testing.T, analyze string, src []byte) problems {
	var p problems
	bin := builtBG(t)
	if !bytes.Contains(src, []byte(unitBinary)) {
		p.addf("the unit does not run %s", unitBinary)
		return p
	}
	dir := t.TempDir()
	unit := filepath.Join(dir, "bg.service")
	if err := os.WriteFile(unit, bytes.ReplaceAll(src, []byte(unitBinary), []byte(bin)), 0o644); err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(analyze, "verify", unit)
	cmd.Dir = dir
	out, err := cmd.CombinedOutput()
	if err != nil {
		p.addf("systemd-analyze verify: %v", err)
	}
	if s := strings.TrimSpace(string(out)); s != "" {
		p.addf("systemd-analyze verify says:\n%s", s)
	}
	return p
}

// unit is a parsed unit file: section → key → values, in order.
type unit map[string]map[string][]string

func parseUnit(src []byte, p *problems) unit {
	u := unit{}
	section := ""
	sc := bufio.NewScanner(bytes.NewReader(src))
	for n := 1; sc.Scan(); n++ {
		line := strings.TrimSpace(sc.Text())
		switch {
		case line == "" || line[0] == '#' || line[0] == ';':
		case line[0] == '[' && line[len(line)-1] == ']':
			section = line[1 : len(line)-1]
			if u[section] == nil {
				u[section] = map[string][]string{}
			}
		case strings.HasSuffix(line, `\`):
			p.addf("line %d: continued lines are not parsed by this test", n)
		default:
			k, v, ok := strings.Cut(line, "=")
			if !ok || section == "" {
				p.addf("line %d: %q is not key=value in a section", n, line)
				continue
			}
			k = strings.TrimSpace(k)
			u[section][k] = append(u[section][k], strings.TrimSpace(v))
		}
	}
	return u
}

// last is the value in force for a single-valued key ("" if unset).
func (u unit) last(section, key string) string {
	vs := u[section][key]
	if len(vs) == 0 {
		return ""
	}
	return vs[len(vs)-1]
}

// systemdSeconds parses a systemd time span: a number of seconds, or
// numbers with units (s, sec, min, ms, h) such as "1min 30s".
func systemdSeconds(s string) (time.Duration, error) {
	if n, err := strconv.Atoi(s); err == nil {
		return time.Duration(n) * time.Second, nil
	}
	r := strings.NewReplacer("min", "m", "sec", "s", " ", "")
	return time.ParseDuration(r.Replace(s))
}

// checkUnit asserts the directives deploy/README.md describes.
func checkUnit(src []byte) problems {
	var p problems
	u := parseUnit(src, &p)
	svc := "Service"
	want := func(key, value, why string) {
		if got := u.last(svc, key); got != value {
			p.addf("%s=%q, want %q: %s", key, got, value, why)
		}
	}
	// bg does not call sd_notify: Type=notify would never become active.
	if typ := u.last(svc, "Type"); typ != "exec" && typ != "simple" {
		p.addf("Type=%q, want exec (or simple): bg does not notify systemd", typ)
	}
	want("ExecStart", unitBinary+" serve --config /etc/bg/bg.yaml", "runs bg serve")
	if starts := u[svc]["ExecStart"]; len(starts) != 1 {
		p.addf("%d ExecStart lines, want 1", len(starts))
	} else if f := strings.Fields(starts[0]); len(f) > 1 {
		serveConfigArg(f[1:], &p)
	}
	want("ExecReload", "/bin/kill -HUP $MAINPID", "SIGHUP reloads the config")
	want("Restart", "on-failure", "restart a crashed bg")
	// An invalid config exits with the usage code: restarting cannot fix it.
	if got := u.last(svc, "RestartPreventExitStatus"); !strings.Contains(" "+got+" ", " "+strconv.Itoa(commands.ExitUsage)+" ") {
		p.addf("RestartPreventExitStatus=%q, want it to hold %d (bg's exit code for an invalid config)", got, commands.ExitUsage)
	}
	if u.last(svc, "User") != "bg" && u.last(svc, "DynamicUser") != "yes" {
		p.addf("User=%q, DynamicUser=%q: want User=bg or DynamicUser=yes", u.last(svc, "User"), u.last(svc, "DynamicUser"))
	}
	want("NoNewPrivileges", "yes", "hardening")
	want("ProtectSystem", "strict", "bg writes nothing to disk")
	want("ProtectHome", "yes", "hardening")
	want("PrivateTmp", "yes", "hardening")
	want("EnvironmentFile", "-/etc/bg/bg.env", "optional BG_* secrets")
	want("KillSignal", "SIGTERM", "on SIGTERM the leader releases the lock")
	if d, err := systemdSeconds(u.last(svc, "TimeoutStopSec")); err != nil || d < minKillTimeout {
		p.addf("TimeoutStopSec=%q (%v): want at least %v, beyond bg's own 5 s shutdown bound", u.last(svc, "TimeoutStopSec"), err, minKillTimeout)
	}
	soft, _, _ := strings.Cut(u.last(svc, "LimitNOFILE"), ":")
	if n, err := strconv.Atoi(soft); (err != nil || n < minNOFILE) && soft != "infinity" {
		p.addf("LimitNOFILE=%q: want at least %d, one descriptor per xDS stream", u.last(svc, "LimitNOFILE"), minNOFILE)
	}
	if got := u.last("Install", "WantedBy"); got != "multi-user.target" {
		p.addf("[Install] WantedBy=%q, want multi-user.target", got)
	}
	return p
}
