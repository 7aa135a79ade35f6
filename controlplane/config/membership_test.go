package config

import (
	"strings"
	"testing"
	"time"
)

func TestMembershipShrinkGrace(t *testing.T) {
	t.Run("default", func(t *testing.T) {
		c, err := Load("", nil)
		if err != nil {
			t.Fatal(err)
		}
		if c.Membership.ShrinkGrace != 30*time.Second || DefaultShrinkGrace != 30*time.Second {
			t.Errorf("membership.shrink_grace = %s, want 30s", c.Membership.ShrinkGrace)
		}
	})
	t.Run("file", func(t *testing.T) {
		c, err := Load(writeYAML(t, fileYAML+"membership:\n  shrink_grace: 2m\n"), nil)
		if err != nil {
			t.Fatal(err)
		}
		if c.Membership.ShrinkGrace != 2*time.Minute {
			t.Errorf("membership.shrink_grace = %s, want 2m", c.Membership.ShrinkGrace)
		}
		if err := c.Validate(); err != nil {
			t.Errorf("Validate: %v", err)
		}
	})
	t.Run("file zero kept", func(t *testing.T) {
		c, err := Load(writeYAML(t, fileYAML+"membership:\n  shrink_grace: 0s\n"), nil)
		if err != nil {
			t.Fatal(err)
		}
		if c.Membership.ShrinkGrace != 0 {
			t.Errorf("membership.shrink_grace = %s, want 0s", c.Membership.ShrinkGrace)
		}
	})
	t.Run("env beats file", func(t *testing.T) {
		t.Setenv("BG_MEMBERSHIP_SHRINK_GRACE", "45s")
		c, err := Load(writeYAML(t, fileYAML+"membership:\n  shrink_grace: 2m\n"), nil)
		if err != nil {
			t.Fatal(err)
		}
		if c.Membership.ShrinkGrace != 45*time.Second {
			t.Errorf("membership.shrink_grace = %s, want 45s", c.Membership.ShrinkGrace)
		}
	})
	t.Run("override", func(t *testing.T) {
		c, err := Load("", map[string]any{"membership.shrink_grace": "10s"})
		if err != nil {
			t.Fatal(err)
		}
		if c.Membership.ShrinkGrace != 10*time.Second {
			t.Errorf("membership.shrink_grace = %s, want 10s", c.Membership.ShrinkGrace)
		}
	})
	for _, tc := range []struct{ name, yaml, env, want string }{
		{"bare number", "membership:\n  shrink_grace: 30\n", "", "membership.shrink_grace: duration 30 has no unit"},
		{"not a duration", "membership:\n  shrink_grace: a while\n", "", `membership.shrink_grace: "a while" is not a duration`},
		{"env not a duration", "", "soon", `membership.shrink_grace: "soon" is not a duration`},
		{"unknown key", "membership:\n  grace: 30s\n", "", "membership.grace: unknown key"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			path := ""
			if tc.yaml != "" {
				path = writeYAML(t, tc.yaml)
			}
			if tc.env != "" {
				t.Setenv("BG_MEMBERSHIP_SHRINK_GRACE", tc.env)
			}
			_, err := Load(path, nil)
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("got %v, want an error containing %q", err, tc.want)
			}
		})
	}
	t.Run("validate", func(t *testing.T) {
		c, err := Load(writeYAML(t, fileYAML+"membership:\n  shrink_grace: 2h\n"), nil)
		if err != nil {
			t.Fatal(err)
		}
		es := asErrors(t, c.Validate())
		if len(es) != 1 || es[0].Error() != "membership.shrink_grace: 2h0m0s: must be between 0s (no grace) and 1h" {
			t.Fatalf("got %v", es)
		}
	})
}
