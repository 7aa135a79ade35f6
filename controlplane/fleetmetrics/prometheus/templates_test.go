package prometheus

import (
	"testing"
	"time"

	"github.com/bgctl/bg/controlplane/model"
)

func TestValidateTemplate(t *testing.T) {
	for _, ok := range []string{EnvoyRequests, EnvoyErrors, `sum(rate(x{s="{{.Service}}",c="{{.Color}}"}[{{.Window}}]))`} {
		if err := ValidateTemplate(ok); err != nil {
			t.Errorf("ValidateTemplate(%q) = %v", ok, err)
		}
	}
	for _, bad := range []string{"", "  ", `{{.Cluster`, `{{.Nope}}`, `{{nofunc .Cluster}}`, `{{if false}}x{{end}}`} {
		if err := ValidateTemplate(bad); err == nil {
			t.Errorf("ValidateTemplate(%q) succeeded", bad)
		}
	}
}

func TestTemplateDataWindow(t *testing.T) {
	for w, want := range map[time.Duration]string{
		30 * time.Second:        "30s",
		time.Minute:             "1m",
		90 * time.Second:        "1m30s",
		1500 * time.Millisecond: "1s500ms",
		2 * time.Hour:           "2h",
	} {
		d := NewTemplateData("web", model.Blue, w)
		if d.Window != want {
			t.Errorf("window %v = %q, want %q", w, d.Window, want)
		}
		if d.Cluster != "web-blue" || d.Service != "web" || d.Color != "blue" {
			t.Errorf("data = %+v", d)
		}
	}
}

func TestServerTimeout(t *testing.T) {
	for in, want := range map[time.Duration]time.Duration{
		0:                       time.Second,
		300 * time.Millisecond:  time.Second,
		5500 * time.Millisecond: 5 * time.Second,
		time.Minute:             time.Minute,
	} {
		if got := serverTimeout(in); got != want {
			t.Errorf("serverTimeout(%v) = %v, want %v", in, got, want)
		}
	}
}
