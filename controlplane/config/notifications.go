package config

import (
	"fmt"
	"net/url"
	"os"
	"strings"

	"github.com/bgctl/bg/controlplane/notify"
)

// Notification is one notifications[] entry: where to tell people what bg
// did (docs: README "Notifications").
type Notification struct {
	Name string `mapstructure:"name"`
	// Type is webhook (the event as JSON), slack or teams.
	Type string `mapstructure:"type"`
	// URL, or URLFile holding it: Slack and Teams URLs are secrets.
	URL     string `mapstructure:"url"`
	URLFile string `mapstructure:"url_file"`
	// Events: which kinds (notify.Kinds); empty means all.
	Events []string `mapstructure:"events"`
	// Services: which services' events; empty means all. Release events
	// go to every notification that wants them.
	Services []string `mapstructure:"services"`
}

// validateNotifications checks notifications[] with field paths.
func (c *Config) validateNotifications(es *Errors) {
	names := map[string]bool{}
	known := map[string]bool{}
	for _, s := range c.Services {
		known[s.Name] = true
	}
	for i, n := range c.Notifications {
		p := fmt.Sprintf("notifications[%d]", i)
		switch {
		case strings.TrimSpace(n.Name) == "":
			es.add(p+".name", "required")
		case names[n.Name]:
			es.add(p+".name", "%q: used twice", n.Name)
		}
		names[n.Name] = true
		if err := notify.Type(n.Type).Validate(); err != nil {
			es.add(p+".type", "%v", err)
		}
		switch {
		case n.URL != "" && n.URLFile != "":
			es.add(p+".url", "set url or url_file, not both")
		case n.URL == "" && n.URLFile == "":
			es.add(p+".url", "required (or url_file)")
		case n.URL != "":
			if u, err := url.Parse(n.URL); err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
				es.add(p+".url", "must be an http(s) URL") // never echo it: it may be a secret
			}
		}
		for j, e := range n.Events {
			if err := notify.Kind(e).Validate(); err != nil {
				es.add(fmt.Sprintf("%s.events[%d]", p, j), "%v", err)
			}
		}
		for j, s := range n.Services {
			if !known[s] {
				es.add(fmt.Sprintf("%s.services[%d]", p, j), "%q: not a configured service", s)
			}
		}
	}
}

// NotifyTargets are the notifications as the notifier takes them, with
// each url_file read (an error names the file, never its content).
func (c *Config) NotifyTargets() ([]notify.Target, error) {
	var out []notify.Target
	for i, n := range c.Notifications {
		u := n.URL
		if n.URLFile != "" {
			b, err := os.ReadFile(n.URLFile)
			if err != nil {
				return nil, fmt.Errorf("notifications[%d].url_file: %w", i, err)
			}
			u = strings.TrimSpace(string(b))
			if pu, err := url.Parse(u); err != nil || (pu.Scheme != "http" && pu.Scheme != "https") || pu.Host == "" {
				return nil, fmt.Errorf("notifications[%d].url_file %s: does not hold an http(s) URL", i, n.URLFile)
			}
		}
		t := notify.Target{Name: n.Name, Type: notify.Type(n.Type), URL: u, Services: n.Services}
		for _, e := range n.Events {
			t.Events = append(t.Events, notify.Kind(e))
		}
		out = append(out, t)
	}
	return out, nil
}
