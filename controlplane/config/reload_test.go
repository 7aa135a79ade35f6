package config

import (
	"errors"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
)

const reloadBase = `
consul:
  address: 127.0.0.1:8500
xds:
  listen: 127.0.0.1:18000
admin:
  listen: 127.0.0.1:9090
prometheus:
  address: http://127.0.0.1:9091
services:
  - name: web
    port: 10000
  - name: api
    protocol: http2
`

func loadYAML(t *testing.T, body string) *Config {
	t.Helper()
	p := filepath.Join(t.TempDir(), "bg.yaml")
	if err := os.WriteFile(p, []byte(body), 0o600); err != nil {
		t.Fatal(err)
	}
	cfg, err := LoadValid(p, nil)
	if err != nil {
		t.Fatalf("config does not load: %v\n%s", err, body)
	}
	return cfg
}

func TestDiff(t *testing.T) {
	tests := []struct {
		name string
		next string
		// want: the Change's summary; restart: the keys refused (then no Change).
		want    string
		restart []string
	}{
		{name: "same file", next: reloadBase, want: "no change"},
		{name: "service added", next: reloadBase + "  - name: cart\n    port: 10002\n", want: "added cart"},
		{name: "service removed", next: strings.Replace(reloadBase, "  - name: api\n    protocol: http2\n", "", 1), want: "removed api"},
		{name: "analysis steps", next: reloadBase + "    analysis: {steps: [10, 100]}\n", want: "updated api"},
		{name: "gates", next: reloadBase + "    gates: [{name: smoke, url: 'http://127.0.0.1:1/x', stages: [pre]}]\n", want: "updated api"},
		{name: "pools", next: reloadBase + "    pools: [{header: x-staff, value: '1'}]\n", want: "updated api"},
		{name: "windows", next: reloadBase + "    windows: {freeze: [{reason: x, from: '2030-01-01T00:00:00Z', to: '2030-01-02T00:00:00Z'}]}\n", want: "updated api"},
		{name: "notifications", next: reloadBase + "notifications: [{name: ops, type: webhook, url: 'http://127.0.0.1:1/hook', events: [started]}]\n", want: "notifications changed"},
		{name: "config.watch", next: reloadBase + "config: {watch: true}\n", want: "config.watch changed"},
		{name: "several at once", next: strings.Replace(reloadBase, "  - name: api\n    protocol: http2\n", "", 1) + "  - name: cart\nconfig: {watch: true}\n", want: "added cart; removed api; config.watch changed"},

		{name: "xds listen", next: strings.Replace(reloadBase, "127.0.0.1:18000", "127.0.0.1:18001", 1), restart: []string{"xds.listen"}},
		{name: "consul address and kv prefix", next: strings.Replace(reloadBase, "address: 127.0.0.1:8500", "address: 127.0.0.1:8501\n  kv_prefix: other/", 1),
			restart: []string{"consul.address", "consul.kv_prefix"}},
		{name: "admin token is named, never shown", next: strings.Replace(reloadBase, "listen: 127.0.0.1:9090", "listen: 127.0.0.1:9090\n  token: s3cret", 1), restart: []string{"admin.token"}},
		{name: "leader", next: reloadBase + "leader: {check_ttl: 3s}\n", restart: []string{"leader.check_ttl"}},
		{name: "prometheus address", next: strings.Replace(reloadBase, "9091", "9092", 1), restart: []string{"prometheus.address"}},
		{name: "service port", next: strings.Replace(reloadBase, "port: 10000", "port: 10001", 1), restart: []string{"services[web].port"}},
		{name: "service protocol", next: strings.Replace(reloadBase, "protocol: http2", "protocol: http1", 1), restart: []string{"services[api].protocol"}},
		{name: "restart keys refuse the live ones too", next: strings.Replace(reloadBase, "127.0.0.1:18000", "127.0.0.1:18001", 1) + "  - name: cart\n",
			restart: []string{"xds.listen"}},
		{name: "added service with depends_on", next: reloadBase + "  - name: cart\n    depends_on: [api]\n", restart: []string{"services[cart].depends_on"}},
	}
	old := loadYAML(t, reloadBase)
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			ch, err := Diff(old, loadYAML(t, tc.next))
			if tc.restart != nil {
				var re *RestartError
				if !errors.As(err, &re) || !errors.Is(err, ErrRestartRequired) {
					t.Fatalf("want a RestartError, got %v (change %s)", err, ch)
				}
				if !slices.Equal(re.Keys, tc.restart) {
					t.Fatalf("keys = %v, want %v", re.Keys, tc.restart)
				}
				if !ch.Empty() {
					t.Fatalf("a refused reload returned a change: %s", ch)
				}
				for _, k := range tc.restart {
					if !strings.Contains(err.Error(), k+" cannot change without a restart") {
						t.Fatalf("error %q does not name %s", err, k)
					}
				}
				if strings.Contains(err.Error(), "s3cret") {
					t.Fatal("the error shows a secret")
				}
				return
			}
			if err != nil {
				t.Fatalf("Diff: %v", err)
			}
			if got := ch.String(); got != tc.want {
				t.Fatalf("change = %q, want %q", got, tc.want)
			}
		})
	}
}

func TestDiffAddedServiceIsComplete(t *testing.T) {
	ch, err := Diff(loadYAML(t, reloadBase), loadYAML(t, reloadBase+"  - name: cart\n    port: 10002\n"))
	if err != nil {
		t.Fatal(err)
	}
	if len(ch.Added) != 1 || ch.Added[0].ConsulService != "cart" || ch.Added[0].Protocol != "http1" || len(ch.Added[0].Analysis.Steps) == 0 {
		t.Fatalf("added service not defaulted as at start: %+v", ch.Added)
	}
}
