package main

import (
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
)

// A binary built with go build inside the git checkout prints the commit it
// was built from (and says whether the tree was modified), not "dev".
// -buildvcs=true overrides a GOFLAGS=-buildvcs=false in the environment.
func TestVersionFromBuild(t *testing.T) {
	if testing.Short() {
		t.Skip("builds the binary")
	}
	headNow := func() string {
		git, err := exec.Command("git", "rev-parse", "HEAD").Output()
		if err != nil {
			t.Skipf("not in a git checkout (or no git): %v", err)
		}
		return strings.TrimSpace(string(git))
	}
	head := headNow()
	// Go stamps VCS information only where .git is a directory; in a
	// `git worktree` checkout it is a file and the build says "devel".
	if top, err := exec.Command("git", "rev-parse", "--show-toplevel").Output(); err == nil {
		if fi, err := os.Stat(filepath.Join(strings.TrimSpace(string(top)), ".git")); err == nil && !fi.IsDir() {
			t.Skip("a git worktree (.git is a file): go build stamps no VCS information here")
		}
	}
	bin := filepath.Join(t.TempDir(), "bg")
	build := exec.Command("go", "build", "-buildvcs=true", "-o", bin, ".")
	if out, err := build.CombinedOutput(); err != nil {
		t.Fatalf("go build: %v\n%s", err, out)
	}
	out, err := exec.Command(bin, "--version").CombinedOutput()
	if err != nil {
		t.Fatalf("bg --version: %v\n%s", err, out)
	}
	re := regexp.MustCompile(`^bg version (\S+) \(revision ([0-9a-f]{40})(, modified)?, committed \S+\)\n$`)
	m := re.FindStringSubmatch(string(out))
	if m == nil {
		t.Fatalf("bg --version printed %q, want %s", out, re)
	}
	// Others may commit while this builds: HEAD before or after will do.
	if after := headNow(); m[2] != head && m[2] != after {
		t.Errorf("revision %s, want HEAD %s", m[2], head)
	}
	head = m[2]
	if m[1] == "dev" || m[1] == "devel" {
		t.Errorf("version %q: want the module version Go derives from the checkout", m[1])
	}

	// The ldflags override still wins over the module version.
	build = exec.Command("go", "build", "-buildvcs=true", "-ldflags", "-X github.com/bgctl/bg/cli/commands.Version=v9.9.9-test", "-o", bin, ".")
	if out, err := build.CombinedOutput(); err != nil {
		t.Fatalf("go build: %v\n%s", err, out)
	}
	out, err = exec.Command(bin, "--version").CombinedOutput()
	if err != nil || !strings.HasPrefix(string(out), "bg version v9.9.9-test (revision ") {
		t.Errorf("with -X Version: %q, %v", out, err)
	}
}
