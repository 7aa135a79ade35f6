package model

import (
	"strings"
	"testing"
	"time"
)

func TestValidateVersion(t *testing.T) {
	for _, ok := range []string{"v2", "1.4.0-rc.1+build.7", "sha:0123abcd", "release_2026_12"} {
		if err := ValidateVersion(ok); err != nil {
			t.Errorf("%q: %v", ok, err)
		}
	}
	for _, bad := range []string{"", "v 2", "v2\n", "v2/evil", "ü", strings.Repeat("a", MaxVersionLen+1), "$(rm)"} {
		if err := ValidateVersion(bad); err == nil {
			t.Errorf("%q accepted", bad)
		}
	}
}

func TestDesiredValidateAndLog(t *testing.T) {
	d := Desired{Version: "v2", Actor: "ci", At: time.Now()}
	if err := d.Validate(); err != nil {
		t.Fatal(err)
	}
	bad := d
	bad.Failed = &DesiredFailure{Cause: "weird"}
	if err := bad.Validate(); err == nil {
		t.Error("unknown failure cause accepted")
	}
	bad = d
	bad.Actor = ""
	if err := bad.Validate(); err == nil {
		t.Error("no actor accepted")
	}
	for i := 0; i < MaxDesireLog+5; i++ {
		d = d.Logged(DesireEvent{What: string(rune('a' + i))})
	}
	if len(d.Log) != MaxDesireLog || d.Log[0].What != string(rune('a'+5)) {
		t.Errorf("log %d events, first %q", len(d.Log), d.Log[0].What)
	}
	if err := d.Validate(); err != nil {
		t.Error(err)
	}
}
