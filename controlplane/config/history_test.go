package config

import (
	"strings"
	"testing"
)

func TestHistoryRetention(t *testing.T) {
	t.Run("default", func(t *testing.T) {
		c, err := Load("", nil)
		if err != nil {
			t.Fatal(err)
		}
		if c.History.Retention != 1000 {
			t.Errorf("history.retention = %d, want 1000", c.History.Retention)
		}
	})
	t.Run("file", func(t *testing.T) {
		c, err := Load(writeYAML(t, fileYAML+"history:\n  retention: 50\n"), nil)
		if err != nil {
			t.Fatal(err)
		}
		if c.History.Retention != 50 {
			t.Errorf("history.retention = %d, want 50", c.History.Retention)
		}
	})
	t.Run("env beats file", func(t *testing.T) {
		t.Setenv("BG_HISTORY_RETENTION", "20000")
		c, err := Load(writeYAML(t, fileYAML+"history:\n  retention: 50\n"), nil)
		if err != nil {
			t.Fatal(err)
		}
		if c.History.Retention != 20000 {
			t.Errorf("history.retention = %d, want 20000", c.History.Retention)
		}
	})
	t.Run("env not a number", func(t *testing.T) {
		t.Setenv("BG_HISTORY_RETENTION", "lots")
		_, err := Load("", nil)
		if err == nil || !strings.Contains(err.Error(), "history.retention") {
			t.Fatalf("got %v, want an error naming history.retention", err)
		}
	})
	t.Run("unknown key", func(t *testing.T) {
		_, err := Load(writeYAML(t, "history:\n  retain: 50\n"), nil)
		if err == nil || !strings.Contains(err.Error(), "history.retain: unknown key") {
			t.Fatalf("got %v", err)
		}
	})
}

func TestValidateHistoryRetention(t *testing.T) {
	for _, tc := range []struct {
		retention int
		wantErr   bool
	}{
		{10, false}, {1000, false}, {1_000_000, false},
		{9, true}, {1, true}, {0, true}, {-5, true},
	} {
		c := valid()
		c.History.Retention = tc.retention
		err := c.Validate()
		if !tc.wantErr {
			if err != nil {
				t.Errorf("retention %d: unexpected %v", tc.retention, err)
			}
			continue
		}
		es := asErrors(t, err)
		if len(es) != 1 || es[0].Path != "history.retention" || !strings.Contains(es[0].Message, "at least 10") {
			t.Errorf("retention %d: got %v, want one history.retention error", tc.retention, err)
		}
	}
}
