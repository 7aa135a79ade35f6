package harness

import (
	"bufio"
	"os"
	"path/filepath"
	"strings"
)

const modulePath = "github.com/bgctl/bg"

// RepoRoot walks up from the working directory to the go.mod of the main
// module. Nested modules (e2e/tools/consul) are skipped by the exact match.
func RepoRoot(t TB) string {
	t.Helper()
	root, ok := findRepoRoot()
	if !ok {
		t.Fatalf("harness: no go.mod with module %s above the working directory", modulePath)
	}
	return root
}

func findRepoRoot() (string, bool) {
	dir, err := os.Getwd()
	if err != nil {
		return "", false
	}
	for {
		if isMainModule(filepath.Join(dir, "go.mod")) {
			return dir, true
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			return "", false
		}
		dir = parent
	}
}

func isMainModule(goMod string) bool {
	f, err := os.Open(goMod)
	if err != nil {
		return false
	}
	defer f.Close()
	s := bufio.NewScanner(f)
	for s.Scan() {
		fields := strings.Fields(s.Text())
		if len(fields) == 2 && fields[0] == "module" && strings.Trim(fields[1], `"`) == modulePath {
			return true
		}
	}
	return false
}
