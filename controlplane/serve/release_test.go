package serve

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/hashicorp/consul/api"

	apiv1 "github.com/bgctl/bg/controlplane/api/v1"
	"github.com/bgctl/bg/controlplane/config"
	"github.com/bgctl/bg/controlplane/release"
	"github.com/bgctl/bg/e2e/harness"
)

// bg serve runs releases: elected, it loads them; a release started over
// the admin API is stored under the KV prefix (fenced by the leader's
// lock), switches its members providers first and ends promoted; the
// members' states name it; the metrics count it.
func TestServeRunsReleases(t *testing.T) {
	consul := harness.StartConsul(t)
	c := consul.Client()
	for i, svc := range []string{"auth", "api", "web"} {
		for j, colour := range []string{"blue", "green"} {
			if err := c.Agent().ServiceRegister(&api.AgentServiceRegistration{
				ID: svc + "-" + colour, Name: svc, Tags: []string{colour}, Address: "127.0.0.1", Port: 20000 + 10*i + j,
			}); err != nil {
				t.Fatal(err)
			}
		}
	}
	admin := fmt.Sprintf("127.0.0.1:%d", harness.FreePort(t))
	path := filepath.Join(t.TempDir(), "bg.yaml")
	yaml := fmt.Sprintf(`consul:
  address: %s
  kv_prefix: servetest/
  wait: 30s
xds:
  listen: 127.0.0.1:%d
admin:
  listen: %s
leader:
  lock_delay: 1ms
services:
  - name: auth
    port: 10000
  - name: api
    port: 10001
    depends_on: [auth]
  - name: web
    port: 10002
    depends_on: [api]
releases:
  - name: checkout
    services: [web, api, auth]
`, consul.HTTPAddr(), harness.FreePort(t), admin)
	if err := os.WriteFile(path, []byte(yaml), 0o600); err != nil {
		t.Fatal(err)
	}
	cfg, err := config.Load(path, nil)
	if err != nil {
		t.Fatal(err)
	}
	if err := cfg.Validate(); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- Run(ctx, cfg, slog.New(slog.DiscardHandler)) }()
	defer func() {
		cancel()
		select {
		case <-done:
		case <-time.After(15 * time.Second):
			t.Error("bg serve did not stop")
		}
	}()

	do := func(method, path, body string) (int, []byte) {
		t.Helper()
		req, _ := http.NewRequest(method, "http://"+admin+path, strings.NewReader(body))
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			return 0, []byte(err.Error())
		}
		defer resp.Body.Close()
		raw, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, raw
	}
	// Elected and loaded: a start is taken (retried while it is not yet).
	var code int
	var raw []byte
	deadline := time.Now().Add(60 * time.Second)
	for {
		code, raw = do("POST", "/v1/releases", `{"group":"checkout"}`)
		if code == http.StatusCreated || time.Now().After(deadline) {
			break
		}
		time.Sleep(200 * time.Millisecond)
	}
	if code != http.StatusCreated {
		t.Fatalf("start: %d %s", code, raw)
	}
	var st apiv1.ReleaseStatus
	if err := json.Unmarshal(raw, &st); err != nil || st.Release.ID != "checkout-1" || fmt.Sprint(st.Order) != "[[auth] [api] [web]]" {
		t.Fatalf("start answered %s (%v)", raw, err)
	}
	for deadline := time.Now().Add(30 * time.Second); ; time.Sleep(100 * time.Millisecond) {
		code, raw = do("GET", "/v1/releases/checkout-1", "")
		if err := json.Unmarshal(raw, &st); err == nil && st.Release.Phase.Ended() || time.Now().After(deadline) {
			break
		}
	}
	if st.Release.Phase != release.Promoted {
		t.Fatalf("release: %d %s", code, raw)
	}
	var started []time.Time
	for _, m := range st.Release.Members {
		started = append(started, m.StartedAt)
		if st.Weights[m.Service] != (apiv1.Weights{Green: 100}) {
			t.Errorf("%s: weights %+v", m.Service, st.Weights[m.Service])
		}
		code, raw = do("GET", "/v1/services/"+m.Service, "")
		var svc apiv1.Status
		if err := json.Unmarshal(raw, &svc); err != nil || svc.Release != "checkout-1" || svc.SwitchID != m.SwitchID {
			t.Errorf("%s: status %d %s", m.Service, code, raw)
		}
	}
	if st.Release.Members[0].Service != "auth" || started[0].After(started[1]) || started[1].After(started[2]) {
		t.Errorf("members started out of order: %+v", st.Release.Members)
	}
	if pair, _, err := c.KV().Get("servetest/releases/checkout-1", nil); err != nil || pair == nil {
		t.Fatalf("release not stored under the prefix: %v", err)
	} else if r, err := release.Decode(pair.Value); err != nil || r.Phase != release.Promoted {
		t.Fatalf("stored release: %+v %v", r.Phase, err)
	}
	if code, raw = do("GET", "/metrics", ""); !strings.Contains(string(raw), `bg_releases_total{outcome="promoted"} 1`) ||
		!strings.Contains(string(raw), `bg_releases_total{outcome="rolled_back"} 0`) {
		t.Errorf("metrics (%d) lack the release outcome:\n%s", code, grep(string(raw), "bg_release"))
	}
	// The next release of the group counts on; unknown IDs are 404.
	if code, raw = do("GET", "/v1/releases/checkout-7", ""); code != http.StatusNotFound {
		t.Errorf("unknown release: %d %s", code, raw)
	}
}

func grep(s, sub string) string {
	var out []string
	for _, l := range strings.Split(s, "\n") {
		if strings.Contains(l, sub) {
			out = append(out, l)
		}
	}
	return strings.Join(out, "\n")
}
