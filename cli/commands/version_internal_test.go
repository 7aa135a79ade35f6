package commands

import (
	"runtime/debug"
	"testing"
)

func TestFormatVersion(t *testing.T) {
	const rev = "5dcdb65e0e4a3b2c1d0f9e8d7c6b5a4f3e2d1c0b"
	vcs := func(modified string) []debug.BuildSetting {
		return []debug.BuildSetting{
			{Key: "-trimpath", Value: "true"},
			{Key: "vcs", Value: "git"},
			{Key: "vcs.revision", Value: rev},
			{Key: "vcs.time", Value: "2026-12-01T00:30:00Z"},
			{Key: "vcs.modified", Value: modified},
		}
	}
	build := func(version string, s []debug.BuildSetting) *debug.BuildInfo {
		return &debug.BuildInfo{Main: debug.Module{Path: "github.com/bgctl/bg", Version: version}, Settings: s}
	}
	cases := []struct {
		name, override string
		bi             *debug.BuildInfo
		want           string
	}{
		{"no build info", "", nil, "devel"},
		{"ldflags, no build info", "v1.2.3", nil, "v1.2.3"},
		{"go run or no vcs", "", build("(devel)", nil), "devel"},
		{"tagged module, clean tree", "", build("v1.4.0", vcs("false")),
			"v1.4.0 (revision " + rev + ", committed 2026-12-01T00:30:00Z)"},
		{"pseudo-version, modified tree", "", build("v0.0.0-20261201003000-5dcdb65e0e4a+dirty", vcs("true")),
			"v0.0.0-20261201003000-5dcdb65e0e4a+dirty (revision " + rev + ", modified, committed 2026-12-01T00:30:00Z)"},
		{"ldflags beat the module version", "v2.0.0", build("v1.4.0", vcs("false")),
			"v2.0.0 (revision " + rev + ", committed 2026-12-01T00:30:00Z)"},
		{"ldflags in a build without vcs (docker)", "v2.0.0", build("(devel)", []debug.BuildSetting{{Key: "-trimpath", Value: "true"}}), "v2.0.0"},
		{"revision without time", "", build("(devel)", []debug.BuildSetting{{Key: "vcs.revision", Value: rev}}), "devel (revision " + rev + ")"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			if got := formatVersion(tc.override, tc.bi); got != tc.want {
				t.Errorf("got  %q\nwant %q", got, tc.want)
			}
		})
	}
}
