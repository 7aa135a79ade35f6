package config

import (
	"strings"
	"testing"
	"time"
)

func TestValidateLeader(t *testing.T) {
	runRuleCases(t, []ruleCase{
		{"defaults ok", func(c *Config) {}, "", ""},
		{"check ttl zero", func(c *Config) { c.Leader.CheckTTL = 0 }, "leader.check_ttl", "must be between 1s and 1m"},
		{"check ttl below 1s", func(c *Config) { c.Leader.CheckTTL = 500 * time.Millisecond }, "leader.check_ttl", "must be between 1s and 1m"},
		{"check ttl above 1m", func(c *Config) { c.Leader.CheckTTL = 2 * time.Minute }, "leader.check_ttl", "must be between 1s and 1m"},
		{"check ttl 1s ok", func(c *Config) { c.Leader.CheckTTL = time.Second }, "", ""},
		{"check ttl not below session ttl", func(c *Config) { c.Leader.CheckTTL = 10 * time.Second }, "leader.check_ttl",
			"must be shorter than leader.session_ttl (10s), which is only the backstop"},
		{"check ttl below a longer session ttl ok", func(c *Config) { c.Leader.CheckTTL, c.Leader.SessionTTL = 30*time.Second, time.Minute }, "", ""},
		{"session ttl below consul minimum", func(c *Config) { c.Leader.SessionTTL = 5 * time.Second }, "leader.session_ttl", "between 10s (Consul's minimum) and 24h"},
		{"lock delay zero", func(c *Config) { c.Leader.LockDelay = 0 }, "leader.lock_delay", "must not be zero, Consul would apply its 15s default"},
		{"lock delay negative", func(c *Config) { c.Leader.LockDelay = -time.Second }, "leader.lock_delay", "between 1ms and 1m"},
		{"lock delay above consul maximum", func(c *Config) { c.Leader.LockDelay = 61 * time.Second }, "leader.lock_delay", "between 1ms and 1m"},
		{"lock delay below 1ms", func(c *Config) { c.Leader.LockDelay = 500 * time.Nanosecond }, "leader.lock_delay", "at least 1ms"},
		{"lock delay 1ms ok", func(c *Config) { c.Leader.LockDelay = time.Millisecond }, "", ""},
	})
}

func TestLoadLeaderKeys(t *testing.T) {
	c, err := Load(writeYAML(t, "leader:\n  check_ttl: 3s\n  session_ttl: 15s\n  lock_delay: 250ms\n"), nil)
	if err != nil {
		t.Fatal(err)
	}
	if c.Leader != (Leader{CheckTTL: 3 * time.Second, SessionTTL: 15 * time.Second, LockDelay: 250 * time.Millisecond}) {
		t.Fatalf("leader keys not applied: %+v", c.Leader)
	}
	t.Setenv("BG_LEADER_CHECK_TTL", "4s")
	if c, err = Load("", nil); err != nil || c.Leader.CheckTTL != 4*time.Second {
		t.Fatalf("BG_LEADER_CHECK_TTL not applied: %+v (%v)", c, err)
	}
}

// The defaults promise a takeover within about 3 s of a leader's death:
// the check lapses at most check_ttl after the last heartbeat, then the
// lock delay runs.
func TestLeaderDefaultsBoundTakeover(t *testing.T) {
	c, err := Load("", nil)
	if err != nil {
		t.Fatal(err)
	}
	if got := c.Leader.CheckTTL + c.Leader.LockDelay; got > 2500*time.Millisecond {
		t.Fatalf("check_ttl + lock_delay = %s: a dead leader's successor would lead later than the documented 1.3-2.5s", got)
	}
	if err := c.Validate(); err != nil && strings.Contains(err.Error(), "leader.") {
		t.Fatalf("defaults fail leader validation: %v", err)
	}
}
