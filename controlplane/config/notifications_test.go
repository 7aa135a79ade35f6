package config

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/bgctl/bg/controlplane/notify"
)

// notifications[] is checked with field paths; a bad URL is named
// without being echoed (it may hold a secret).
func TestValidateNotifications(t *testing.T) {
	for _, tc := range []struct {
		name string
		n    Notification
		path string
		msg  string
	}{
		{"no name", Notification{Type: "webhook", URL: "http://x"}, "notifications[0].name", "required"},
		{"bad type", Notification{Name: "a", Type: "pager", URL: "http://x"}, "notifications[0].type", "unknown type"},
		{"no url", Notification{Name: "a", Type: "slack"}, "notifications[0].url", "required"},
		{"both", Notification{Name: "a", Type: "slack", URL: "http://x", URLFile: "/f"}, "notifications[0].url", "not both"},
		{"not a url", Notification{Name: "a", Type: "teams", URL: "hooks.slack.com/T0/B0/s3cr3t"}, "notifications[0].url", "must be an http(s) URL"},
		{"bad event", Notification{Name: "a", Type: "webhook", URL: "http://x", Events: []string{"exploded"}}, "notifications[0].events[0]", "unknown event"},
		{"bad service", Notification{Name: "a", Type: "webhook", URL: "http://x", Services: []string{"nope"}}, "notifications[0].services[0]", "not a configured service"},
	} {
		c := valid()
		c.Notifications = []Notification{tc.n}
		err := c.Validate()
		if err == nil || !strings.Contains(err.Error(), tc.path+": ") || !strings.Contains(err.Error(), tc.msg) {
			t.Errorf("%s: %v, want %s: …%s", tc.name, err, tc.path, tc.msg)
		}
		if err != nil && strings.Contains(err.Error(), "s3cr3t") {
			t.Errorf("%s: the URL was echoed: %v", tc.name, err)
		}
	}
	c := valid()
	c.Notifications = []Notification{
		{Name: "ops", Type: "slack", URL: "https://hooks.slack.com/services/T0/B0/x", Events: []string{"rolled_back", "release_rolled_back"}},
		{Name: "ops", Type: "webhook", URL: "http://x"},
	}
	if err := c.Validate(); err == nil || !strings.Contains(err.Error(), `notifications[1].name: "ops": used twice`) {
		t.Errorf("duplicate name: %v", err)
	}
	c.Notifications = c.Notifications[:1]
	if err := c.Validate(); err != nil {
		t.Fatal(err)
	}
}

// url_file is read at start; its content never appears in an error.
func TestNotifyTargets(t *testing.T) {
	dir := t.TempDir()
	good, bad := filepath.Join(dir, "good"), filepath.Join(dir, "bad")
	os.WriteFile(good, []byte("https://outlook.office.com/webhook/abc\n"), 0o600)
	os.WriteFile(bad, []byte("s3cr3t-not-a-url"), 0o600)
	c := valid()
	c.Notifications = []Notification{{Name: "teams", Type: "teams", URLFile: good, Events: []string{"promoted"}}}
	ts, err := c.NotifyTargets()
	if err != nil || len(ts) != 1 || ts[0].URL != "https://outlook.office.com/webhook/abc" || ts[0].Type != notify.Teams || ts[0].Events[0] != notify.Promoted {
		t.Fatalf("%+v %v", ts, err)
	}
	c.Notifications[0].URLFile = bad
	if _, err := c.NotifyTargets(); err == nil || strings.Contains(err.Error(), "s3cr3t") || !strings.Contains(err.Error(), "notifications[0].url_file") {
		t.Fatalf("bad file: %v", err)
	}
	c.Notifications[0].URLFile = filepath.Join(dir, "missing")
	if _, err := c.NotifyTargets(); err == nil {
		t.Fatal("a missing file was accepted")
	}
}
