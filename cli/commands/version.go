package commands

import (
	"runtime/debug"
	"strings"
)

// Version overrides the module version that `bg --version` prints; set it at
// build time with -ldflags "-X github.com/bgctl/bg/cli/commands.Version=v1.2.3"
// (the Dockerfile does, from its VERSION build argument, since .git is not in
// the build context). Empty: the version Go recorded in the binary.
var Version = ""

// VersionString is what `bg --version` prints after "bg version": the
// version, then the VCS revision Go embedded (go build inside a git checkout
// records it), whether the tree had uncommitted changes, and the commit time.
func VersionString() string {
	bi, _ := debug.ReadBuildInfo()
	return formatVersion(Version, bi)
}

// formatVersion is VersionString for given inputs; bi may be nil.
func formatVersion(override string, bi *debug.BuildInfo) string {
	v := override
	if v == "" && bi != nil && bi.Main.Version != "" && bi.Main.Version != "(devel)" {
		v = bi.Main.Version
	}
	if v == "" {
		v = "devel"
	}
	if bi == nil {
		return v
	}
	var rev, modified, at string
	for _, s := range bi.Settings {
		switch s.Key {
		case "vcs.revision":
			rev = s.Value
		case "vcs.modified":
			modified = s.Value
		case "vcs.time":
			at = s.Value
		}
	}
	if rev == "" {
		return v
	}
	parts := []string{"revision " + rev}
	if modified == "true" {
		parts = append(parts, "modified")
	}
	if at != "" {
		parts = append(parts, "committed "+at)
	}
	return v + " (" + strings.Join(parts, ", ") + ")"
}
