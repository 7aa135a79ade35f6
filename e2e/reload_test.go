package e2e

import (
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	apiv1 "github.com/bgctl/bg/controlplane/api/v1"
	"github.com/bgctl/bg/controlplane/model"
	"github.com/bgctl/bg/controlplane/state/consulkv"
	"github.com/bgctl/bg/controlplane/traffic"
	"github.com/bgctl/bg/e2e/harness"
)

// reloadStack is a real Consul and Prometheus, one `bg serve` whose config
// file the test rewrites, and the fleets of three services (web, api,
// cart), each one blue and one green backend. The file starts with web
// and cart.
type reloadStack struct {
	t        *testing.T
	consul   *harness.Consul
	bin      string
	token    string
	prom     *harness.Prometheus
	bg       *harness.BG
	admin    string
	xds      string
	path     string
	backends map[string]*harness.Backend
	clients  map[string]*harness.Traffic
}

const reloadAnalysis = `
interval: 1s
bake: 3s
steps: [20, 50, 100]
min_requests: 50
unavailable_budget: 4s
`

func newReloadStack(t *testing.T) *reloadStack {
	t.Helper()
	s := &reloadStack{t: t, consul: harness.StartConsul(t), bin: harness.BuildBG(t), token: "e2e-secret",
		backends: map[string]*harness.Backend{}, clients: map[string]*harness.Traffic{}}
	var targets []string
	for _, svc := range []string{"web", "api", "cart"} {
		for _, fl := range []struct{ color, version string }{{"blue", "v1"}, {"green", "v2"}} {
			id := svc + "-" + fl.color + "-1"
			b := harness.StartBackend(t, harness.BackendOptions{Service: svc, Color: fl.color, ID: id, Version: fl.version})
			if err := b.Register(s.consul.Client()); err != nil {
				t.Fatalf("register %s: %v", id, err)
			}
			s.backends[id] = b
			targets = append(targets, b.MetricsAddr())
		}
	}
	s.prom = harness.StartPrometheus(t, targets)
	s.prom.WaitTargetsUp(30 * time.Second)
	s.admin = fmt.Sprintf("127.0.0.1:%d", harness.FreePort(t))
	s.xds = fmt.Sprintf("127.0.0.1:%d", harness.FreePort(t))
	s.path = s.write(t, s.xds, "", "web", "cart")
	s.bg = harness.StartBG(t, harness.BGOptions{Bin: s.bin, Config: s.path, AdminAddr: s.admin, Token: s.token})
	return s
}

// write (re)writes the config file with these services (and extra
// top-level YAML) and returns its path. A rewrite keeps the path.
func (s *reloadStack) write(t *testing.T, xds, top string, services ...string) string {
	t.Helper()
	var svcs []harness.BGService
	ports := map[string]int{"web": 10000, "api": 10001, "cart": 10002}
	for _, name := range services {
		analysis := reloadAnalysis
		if name == "cart" && strings.Contains(top, "#cart-steps-100") {
			analysis = strings.Replace(analysis, "steps: [20, 50, 100]", "steps: [100]", 1)
		}
		svcs = append(svcs, harness.BGService{Name: name, Port: ports[name], Analysis: analysis})
	}
	p := harness.WriteBGConfig(t, harness.BGConfig{ConsulAddr: s.consul.HTTPAddr(), XDSAddr: xds, AdminAddr: s.admin, Token: s.token,
		PrometheusURL: s.prom.URL(), Services: svcs, TopYAML: top})
	if s.path == "" {
		return p
	}
	b, err := os.ReadFile(p)
	if err != nil {
		t.Fatal(err)
	}
	s.overwrite(t, string(b))
	return s.path
}

// overwrite replaces the file's content in one rename, as editors and
// config management do.
func (s *reloadStack) overwrite(t *testing.T, body string) {
	t.Helper()
	tmp := s.path + ".tmp"
	if err := os.WriteFile(tmp, []byte(body), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.Rename(tmp, s.path); err != nil {
		t.Fatal(err)
	}
}

func (s *reloadStack) sighup(t *testing.T) time.Time {
	t.Helper()
	at := time.Now()
	if err := syscall.Kill(s.bg.Pid(), syscall.SIGHUP); err != nil {
		t.Fatal(err)
	}
	return at
}

func (s *reloadStack) startClient(t *testing.T, svc string) *harness.Traffic {
	t.Helper()
	// The whole test's: a subtest's t would stop it when the subtest ends.
	c := harness.StartTraffic(s.t, harness.TrafficOptions{XDSAddr: s.xds, NodeID: svc + "-client", Service: svc, Workers: 2})
	s.clients[svc] = c
	return c
}

func (s *reloadStack) cli(args ...string) (string, string, int) {
	return harness.RunCLIEnv(s.t, s.bin, []string{"BG_ADDR=" + s.admin, "BG_TOKEN=" + s.token}, args...)
}

// get reads an admin API path into v; it returns the HTTP status.
func (s *reloadStack) get(t *testing.T, path string, v any) int {
	t.Helper()
	return s.do(t, http.MethodGet, path, v)
}

func (s *reloadStack) do(t *testing.T, method, path string, v any) int {
	t.Helper()
	req, err := http.NewRequest(method, "http://"+s.admin+path, nil)
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Authorization", "Bearer "+s.token)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	if v != nil && resp.StatusCode < 300 || v != nil && strings.HasPrefix(path, "/v1/reload") {
		if err := json.Unmarshal(body, v); err != nil {
			t.Fatalf("%s %s: %v\n%s", method, path, err, body)
		}
	}
	if s, ok := v.(*string); ok {
		*s = string(body)
	}
	return resp.StatusCode
}

// reloadCount reads bg_config_reload_total{result}.
func (s *reloadStack) reloadCount(t *testing.T, result apiv1.ReloadResult) int {
	t.Helper()
	req, _ := http.NewRequest(http.MethodGet, "http://"+s.admin+"/metrics", nil)
	req.Header.Set("Authorization", "Bearer "+s.token)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	m := regexp.MustCompile(`(?m)^bg_config_reload_total\{result="` + string(result) + `"\} (\d+)$`).FindSubmatch(body)
	if m == nil {
		t.Fatalf("no bg_config_reload_total{result=%q} in /metrics", result)
	}
	n, _ := strconv.Atoi(string(m[1]))
	return n
}

type reloadSvcStatus struct {
	Weights    apiv1.Weights        `json:"weights"`
	Generation uint64               `json:"generation"`
	ConfigNote string               `json:"config_note"`
	Reload     *apiv1.ReloadStatus  `json:"reload"`
	Switch     *reloadSwitchJSON    `json:"switch"`
	Fleets     map[string]fleetJSON `json:"fleets"`
}

type fleetJSON struct {
	Healthy int `json:"healthy"`
}

type reloadSwitchJSON struct {
	ID    string `json:"id"`
	Phase string `json:"phase"`
	Plan  struct {
		Steps []int `json:"steps"`
	} `json:"plan"`
}

func (s *reloadStack) status(t *testing.T, svc string) (reloadSvcStatus, int) {
	t.Helper()
	var st reloadSvcStatus
	code := s.get(t, "/v1/services/"+svc, &st)
	return st, code
}

func (s *reloadStack) waitStatus(t *testing.T, svc, what string, timeout time.Duration, ok func(reloadSvcStatus, int) bool) reloadSvcStatus {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for {
		st, code := s.status(t, svc)
		if ok(st, code) {
			return st
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s: not reached in %s: HTTP %d %+v switch %+v", what, timeout, code, st, st.Switch)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// TestConfigReload is issue 16's reload evidence on real Consul,
// Prometheus and grpc-go xDS clients: a service added with SIGHUP is served
// within 2 s while the others see no change; an invalid file and a
// restart-only change leave the running config (status, metric, API
// answer); config.watch picks up an edit; a running switch keeps its plan;
// a service removed while its switch runs is served until the switch
// ends, then leaves xDS.
func TestConfigReload(t *testing.T) {
	s := newReloadStack(t)
	web := s.startClient(t, "web")
	web.Ready(t, 30*time.Second)
	cart := s.startClient(t, "cart")
	cart.Ready(t, 30*time.Second)
	webMark := web.Mark()

	t.Run("a service added to the file and SIGHUP is served within 2s; web sees no change", func(t *testing.T) {
		before, _ := s.status(t, "web")
		s.write(t, s.xds, "", "web", "cart", "api")
		at := s.sighup(t)
		api := s.startClient(t, "api")
		api.Ready(t, 30*time.Second)
		calls := api.Calls(harness.Mark{})
		first := slices.IndexFunc(calls, func(c harness.Call) bool { return c.Err == "" })
		if first < 0 {
			t.Fatal("no successful api call")
		}
		took := calls[first].End.Sub(at)
		t.Logf("api served %v after SIGHUP", took.Round(time.Millisecond))
		if took > 2*time.Second {
			t.Fatalf("api first answered %v after SIGHUP, want ≤ 2s", took)
		}
		after, _ := s.status(t, "web")
		if after.Weights != before.Weights || after.Generation != before.Generation {
			t.Fatalf("web changed across the reload: %+v -> %+v", before, after)
		}
		if r := after.Reload; r == nil || r.Generation != 2 || r.Last == nil || r.Last.Result != apiv1.ReloadSuccess || r.Last.Trigger != apiv1.TriggerSignal || r.Last.Change != "added api" {
			t.Fatalf("status reload = %+v last %+v", r, r.Last)
		}
		if n := web.Since(webMark); n.Failed != 0 || n.Green != 0 || n.Blue == 0 {
			t.Fatalf("web calls across the reload: %s", n)
		}
	})

	t.Run("an invalid file is refused: running config stays, API, status and metric say why", func(t *testing.T) {
		invalid := s.reloadCount(t, apiv1.ReloadInvalid)
		good, err := os.ReadFile(s.path)
		if err != nil {
			t.Fatal(err)
		}
		broken := strings.Replace(string(good), "protocol: http2", "protocol: http3", 1) + "bogus_key: 1\n"
		s.overwrite(t, broken)
		var a apiv1.ReloadAttempt
		if code := s.do(t, http.MethodPost, "/v1/reload", &a); code != http.StatusUnprocessableEntity {
			t.Fatalf("POST /v1/reload: HTTP %d %+v, want 422", code, a)
		}
		if a.Result != apiv1.ReloadInvalid || a.Code != apiv1.CodeConfigInvalid || !strings.Contains(a.Error, "protocol") || !strings.Contains(a.Error, "bogus_key") || a.Generation != 2 {
			t.Fatalf("answer %+v: want invalid naming both problems, generation 2", a)
		}
		if got := s.reloadCount(t, apiv1.ReloadInvalid); got != invalid+1 {
			t.Fatalf("bg_config_reload_total{result=invalid} = %d, want %d", got, invalid+1)
		}
		st, _ := s.status(t, "web")
		if r := st.Reload; r.Generation != 2 || r.Last == nil || r.Last.Result != apiv1.ReloadInvalid || !strings.Contains(r.Last.Error, "bogus_key") {
			t.Fatalf("status reload = %+v", r)
		}
		out, _, code := s.cli("status")
		if code != 0 || !strings.Contains(out, "invalid; the running config stays in force") || !strings.Contains(out, "bogus_key") {
			t.Fatalf("bg status (exit %d) does not show the failed reload:\n%s", code, out)
		}
		_, errOut, code := s.cli("reload")
		if code != 3 || !strings.Contains(errOut, "bogus_key") {
			t.Fatalf("bg reload: exit %d, stderr %q; want exit 3 naming the problem", code, errOut)
		}
		// Still in force: every service served as before.
		for _, svc := range []string{"web", "api", "cart"} {
			if _, code := s.status(t, svc); code != http.StatusOK {
				t.Fatalf("%s: HTTP %d after an invalid reload", svc, code)
			}
			c := s.clients[svc]
			m := c.Mark()
			time.Sleep(500 * time.Millisecond)
			if n := c.Since(m); n.Failed != 0 || n.OK() == 0 {
				t.Fatalf("%s calls after an invalid reload: %s", svc, n)
			}
		}
	})

	t.Run("a restart-only change is refused, naming the key", func(t *testing.T) {
		refused := s.reloadCount(t, apiv1.ReloadRefused)
		other := fmt.Sprintf("127.0.0.1:%d", harness.FreePort(t))
		s.write(t, other, "", "web", "cart", "api")
		_, errOut, code := s.cli("reload")
		if code != 3 || !strings.Contains(errOut, "xds.listen cannot change without a restart") {
			t.Fatalf("bg reload: exit %d, stderr %q", code, errOut)
		}
		if got := s.reloadCount(t, apiv1.ReloadRefused); got != refused+1 {
			t.Fatalf("refused count %d, want %d", got, refused+1)
		}
		if st, _ := s.status(t, "web"); st.Reload.Generation != 2 || st.Reload.Last.Result != apiv1.ReloadRefused {
			t.Fatalf("status reload = %+v", st.Reload)
		}
		if n := web.Since(webMark); n.Failed != 0 || n.Green != 0 {
			t.Fatalf("web calls: %s", n)
		}
	})

	t.Run("config.watch picks up an edit without a signal", func(t *testing.T) {
		s.write(t, s.xds, "config:\n  watch: true\n", "web", "cart", "api")
		if out, errOut, code := s.cli("reload"); code != 0 || !strings.Contains(out, "config.watch changed") {
			t.Fatalf("bg reload: exit %d\n%s%s", code, out, errOut)
		}
		s.write(t, s.xds, "config:\n  watch: true\n", "web", "api", "cart") // same services, reordered: no change
		s.write(t, s.xds, "config:\n  watch: true\n#cart-steps-100\n", "web", "cart", "api")
		s.waitStatus(t, "web", "the watch reloads the edit", 10*time.Second, func(st reloadSvcStatus, _ int) bool {
			l := st.Reload.Last
			return l != nil && l.Trigger == apiv1.TriggerWatch && l.Result == apiv1.ReloadSuccess && l.Change == "updated cart"
		})
		// Back to three steps for cart, by the watch as well.
		s.write(t, s.xds, "config:\n  watch: true\n", "web", "cart", "api")
		s.waitStatus(t, "web", "the watch reloads the second edit", 10*time.Second, func(st reloadSvcStatus, _ int) bool {
			l := st.Reload.Last
			return l != nil && l.Trigger == apiv1.TriggerWatch && l.Change == "updated cart" && st.Reload.Generation == 5
		})
	})

	t.Run("a running switch keeps its plan; a removed service is served until its switch ends, then leaves xDS", func(t *testing.T) {
		s.cliMust(t, "switch", "cart", "--to", "green")
		s.waitStatus(t, "cart", "the switch starts", 10*time.Second, func(st reloadSvcStatus, _ int) bool {
			return st.Switch != nil && st.Switch.Phase == "progressing"
		})
		// A live change of cart's steps is for the next switch.
		s.write(t, s.xds, "config:\n  watch: true\n#cart-steps-100\n", "web", "cart", "api")
		s.waitStatus(t, "web", "steps reloaded", 10*time.Second, func(st reloadSvcStatus, _ int) bool {
			return st.Reload.Generation == 6
		})
		if st, _ := s.status(t, "cart"); !slices.Equal(st.Switch.Plan.Steps, []int{20, 50, 100}) {
			t.Fatalf("the running switch's plan changed: %v", st.Switch.Plan.Steps)
		}
		cartMark := cart.Mark()
		s.write(t, s.xds, "config:\n  watch: true\n", "web", "api") // cart removed, by the watch
		st := s.waitStatus(t, "cart", "cart marked removed", 10*time.Second, func(st reloadSvcStatus, _ int) bool {
			return st.ConfigNote == traffic.RetiringNote
		})
		if st.Switch == nil || st.Switch.Phase != "progressing" {
			t.Fatalf("the switch did not keep running: %+v", st.Switch)
		}
		out, _, _ := s.cli("status")
		if !strings.Contains(out, "cart: "+traffic.RetiringNote) {
			t.Fatalf("bg status does not say cart is removed:\n%s", out)
		}
		if _, errOut, code := s.cli("preview", "cart"); code == 0 || !strings.Contains(errOut, "removed from config") {
			t.Fatalf("preview of a removed service: exit %d, %s", code, errOut)
		}
		// The switch ends as it would have; until then cart is served.
		deadline := time.Now().Add(60 * time.Second)
		for {
			st, code := s.status(t, "cart")
			if code == http.StatusNotFound {
				break
			}
			if time.Now().After(deadline) {
				t.Fatalf("cart never left: HTTP %d %+v switch %+v", code, st, st.Switch)
			}
			time.Sleep(20 * time.Millisecond)
		}
		// Its state stays in Consul: the switch was promoted before cart left.
		kv, _, err := s.consul.Client().KV().Get("bg/services/cart/traffic", nil)
		if err != nil || kv == nil {
			t.Fatalf("cart's stored state: %v %v", kv, err)
		}
		stored, err := consulkv.Decode(kv.Value)
		if err != nil {
			t.Fatal(err)
		}
		if r := stored.Rollout; r == nil || r.Phase != model.RolloutPromoted || stored.GreenPercent != 100 {
			t.Fatalf("cart left before its switch ended: stored %+v rollout %+v", stored, r)
		}
		left := time.Now()
		// Served until the end: no failed call before it left, green at the end.
		calls := cart.Calls(cartMark)
		var failedBefore, green int
		for _, c := range calls {
			if c.End.Before(left.Add(-time.Second)) && c.Err != "" {
				failedBefore++
			}
			if c.Err == "" && c.Color == "green" {
				green++
			}
		}
		if failedBefore != 0 || green == 0 {
			t.Fatalf("cart calls while the switch ran: %d failed, %d green", failedBefore, green)
		}
		// Then it is gone from xDS: the client's calls fail.
		cart.WaitFor(t, 30*time.Second, func(n harness.Counts) bool { return n.OK() == 0 && n.Failed > 0 })
		// The others never noticed.
		if n := web.Since(webMark); n.Failed != 0 || n.Green != 0 {
			t.Fatalf("web calls across every reload: %s", n)
		}
		api := s.clients["api"]
		m := api.Mark()
		time.Sleep(500 * time.Millisecond)
		if n := api.Since(m); n.Failed != 0 || n.OK() == 0 {
			t.Fatalf("api calls: %s", n)
		}
		if got := s.reloadCount(t, apiv1.ReloadSuccess); got < 5 {
			t.Fatalf("success count %d", got)
		}
	})
}

func (s *reloadStack) cliMust(t *testing.T, args ...string) string {
	t.Helper()
	out, errOut, code := s.cli(args...)
	if code != 0 {
		t.Fatalf("bg %s: exit %d\n%s%s", strings.Join(args, " "), code, out, errOut)
	}
	return out
}

// TestConfigReloadReplicas: each replica reloads its own file. A service
// added on two replicas (one by SIGHUP, one by bg reload) is served by
// both; only the leader creates its state; an instant switch of it through
// either replica completes only when the proxies of both hold it (ACK
// reports follow the new service set).
func TestConfigReloadReplicas(t *testing.T) {
	s := &reloadStack{t: t, consul: harness.StartConsul(t), bin: harness.BuildBG(t), token: "e2e-secret",
		backends: map[string]*harness.Backend{}, clients: map[string]*harness.Traffic{}}
	for _, svc := range []string{"web", "api"} {
		for _, fl := range []struct{ color, version string }{{"blue", "v1"}, {"green", "v2"}} {
			id := svc + "-" + fl.color + "-1"
			b := harness.StartBackend(t, harness.BackendOptions{Service: svc, Color: fl.color, ID: id, Version: fl.version})
			if err := b.Register(s.consul.Client()); err != nil {
				t.Fatalf("register %s: %v", id, err)
			}
			s.backends[id] = b
		}
	}
	type replica struct {
		admin, xds, path string
		bg               *harness.BG
	}
	write := func(r *replica, services ...string) {
		var svcs []harness.BGService
		for i, name := range services {
			svcs = append(svcs, harness.BGService{Name: name, Port: 10000 + i})
		}
		p := harness.WriteBGConfig(t, harness.BGConfig{ConsulAddr: s.consul.HTTPAddr(), XDSAddr: r.xds, AdminAddr: r.admin, Token: s.token, Services: svcs})
		if r.path == "" {
			r.path = p
			return
		}
		b, err := os.ReadFile(p)
		if err != nil {
			t.Fatal(err)
		}
		s.path = r.path
		s.overwrite(t, string(b))
	}
	var rs []*replica
	for range 2 {
		r := &replica{admin: fmt.Sprintf("127.0.0.1:%d", harness.FreePort(t)), xds: fmt.Sprintf("127.0.0.1:%d", harness.FreePort(t))}
		write(r, "web")
		r.bg = harness.StartBG(t, harness.BGOptions{Bin: s.bin, Config: r.path, AdminAddr: r.admin, Token: s.token})
		rs = append(rs, r)
	}
	cli := func(r *replica, args ...string) (string, string, int) {
		return harness.RunCLIEnv(t, s.bin, []string{"BG_ADDR=" + r.admin, "BG_TOKEN=" + s.token}, args...)
	}
	web := harness.StartTraffic(t, harness.TrafficOptions{XDSAddr: rs[1].xds, NodeID: "web-client", Service: "web", Workers: 2})
	web.Ready(t, 30*time.Second)
	webMark := web.Mark()

	write(rs[0], "web", "api")
	if err := syscall.Kill(rs[0].bg.Pid(), syscall.SIGHUP); err != nil {
		t.Fatal(err)
	}
	write(rs[1], "web", "api")
	if out, errOut, code := cli(rs[1], "reload"); code != 0 || !strings.Contains(out, "added api") {
		t.Fatalf("bg reload on replica 1: exit %d\n%s%s", code, out, errOut)
	}
	// A client of each replica gets api.
	var apis []*harness.Traffic
	for i, r := range rs {
		c := harness.StartTraffic(t, harness.TrafficOptions{XDSAddr: r.xds, NodeID: fmt.Sprintf("api-client-%d", i), Service: "api", Workers: 2})
		c.Ready(t, 10*time.Second)
		apis = append(apis, c)
	}
	// Through either replica, the switch completes with every proxy of
	// both replicas ACKing (exit 0), and both clients move.
	if out, errOut, code := cli(rs[1], "switch", "api", "--to", "green", "--instant"); code != 0 {
		t.Fatalf("switch api: exit %d\n%s%s", code, out, errOut)
	}
	for _, c := range apis {
		c.WaitFor(t, 5*time.Second, func(n harness.Counts) bool { return n.OK() > 0 && n.Green == n.OK() && n.Failed == 0 })
	}
	for i, r := range rs {
		var st reloadSvcStatus
		s.admin = r.admin
		if code := s.get(t, "/v1/services/api", &st); code != http.StatusOK || st.Weights.Green != 100 || st.Generation != 2 || st.Reload.Generation != 2 {
			t.Fatalf("replica %d: api HTTP %d %+v reload %+v", i, code, st, st.Reload)
		}
	}
	if n := web.Since(webMark); n.Failed != 0 || n.Green != 0 || n.Blue == 0 {
		t.Fatalf("web across both reloads: %s", n)
	}
}
