package scale

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"sync"

	"github.com/bgctl/bg/e2e/harness"
)

var (
	buildOnce sync.Once
	buildPath string
	buildErr  error
)

// BuildCommand builds ./e2e/cmd/bg-scale once per process, for a test that
// needs its bare server (the command itself re-executes its own binary).
// The output is <repo>/.cache/e2e/bg-scale, written under a temp name and
// renamed, as harness.BuildBG does.
func BuildCommand(t harness.TB) string {
	t.Helper()
	root := harness.RepoRoot(t)
	buildOnce.Do(func() {
		dir := filepath.Join(root, ".cache", "e2e")
		if buildErr = os.MkdirAll(dir, 0o755); buildErr != nil {
			return
		}
		final := filepath.Join(dir, "bg-scale")
		tmp := fmt.Sprintf("%s.%d.tmp", final, os.Getpid())
		cmd := exec.Command("go", "build", "-o", tmp, "./e2e/cmd/bg-scale")
		cmd.Dir = root
		if out, err := cmd.CombinedOutput(); err != nil {
			os.Remove(tmp)
			buildErr = fmt.Errorf("go build ./e2e/cmd/bg-scale: %v\n%s", err, out)
			return
		}
		buildPath, buildErr = final, os.Rename(tmp, final)
	})
	if buildErr != nil {
		t.Fatalf("scale: %v", buildErr)
	}
	return buildPath
}
