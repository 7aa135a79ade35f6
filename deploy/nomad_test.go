package deploy

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"path"
	"path/filepath"
	"reflect"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/hashicorp/consul/api"
	"github.com/hashicorp/hcl/v2/hclsyntax"
	"github.com/urfave/cli/v2"
	"github.com/zclconf/go-cty/cty"

	"github.com/bgctl/bg/cli/commands"
	"github.com/bgctl/bg/controlplane/admin"
	"github.com/bgctl/bg/controlplane/config"
	"github.com/bgctl/bg/controlplane/devcerts"
	"github.com/bgctl/bg/controlplane/leader"
	"github.com/bgctl/bg/controlplane/membership"
	consulsrc "github.com/bgctl/bg/controlplane/membership/consul"
	"github.com/bgctl/bg/controlplane/model"
)

const (
	bgJobFile      = "nomad/bg.nomad.hcl"
	exampleJobFile = "nomad/service-bluegreen.nomad.hcl"

	// What the client fills in for ${NOMAD_*}: the host's address, and the
	// docker driver's task and secrets directories.
	hostIP     = "10.0.0.5"
	taskDir    = "/local"
	secretsDir = "/secrets"

	// healthToken is what the test passes as -var health_token.
	healthToken = "consul-health-check-token"

	// bg bounds its own shutdown (HTTP drain, lock release, ACK reports)
	// at 5 s (controlplane/serve/serve.go); the kill timeout must leave
	// room beyond it, or SIGKILL turns a clean handover into a crash
	// takeover. Nomad clients cap kill_timeout at max_kill_timeout, 30 s
	// by default: a longer one would be cut silently.
	minKillTimeout = 10 * time.Second
	maxKillTimeout = 30 * time.Second
)

func TestBGNomadJob(t *testing.T) {
	src := readFile(t, bgJobFile)
	cfg, p := checkBGJob(src, plainDir(t))
	fail(t, bgJobFile, p)
	if cfg == nil {
		t.Fatal("no config")
	}
	t.Logf("the shipped config is valid: %d service(s), admin TLS %v, xDS TLS %v, %d admin tokens",
		len(cfg.Services), cfg.Admin.TLS.Enabled(), cfg.XDS.TLS.CertFile != "", len(cfg.Admin.Tokens))
}

func TestExampleNomadJob(t *testing.T) {
	cfg, p := checkBGJob(readFile(t, bgJobFile), plainDir(t))
	fail(t, bgJobFile, p)
	fail(t, exampleJobFile, checkExampleJob(readFile(t, exampleJobFile), cfg))
}

func readFile(t *testing.T, name string) []byte {
	t.Helper()
	b, err := os.ReadFile(name)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func fail(t *testing.T, file string, p problems) {
	t.Helper()
	for _, s := range p {
		t.Errorf("%s: %s", file, s)
	}
	if len(p) > 0 {
		t.FailNow()
	}
}

// runtimeVars are the ${NOMAD_*} variables the client sets for a task
// with these ports (label → static port).
func runtimeVars(ports map[string]int) map[string]cty.Value {
	m := map[string]cty.Value{
		"NOMAD_TASK_DIR":    cty.StringVal(taskDir),
		"NOMAD_SECRETS_DIR": cty.StringVal(secretsDir),
	}
	for l, port := range ports {
		m["NOMAD_ADDR_"+l] = cty.StringVal(net.JoinHostPort(hostIP, strconv.Itoa(port)))
		m["NOMAD_IP_"+l] = cty.StringVal(hostIP)
		m["NOMAD_PORT_"+l] = cty.StringVal(strconv.Itoa(port))
	}
	return m
}

// template is a task's template block, evaluated.
type template struct {
	dest, data, left, perms string
	uid                     int // -1: unset (Nomad's own user, root)
	env                     bool
}

// checkBGJob checks the bg job and loads the config it ships, with its
// environment, from files written under dir where the job's templates
// would put them. It returns that config if it is valid.
func checkBGJob(src []byte, dir string) (*config.Config, problems) {
	var p problems
	j := parseJob(src, bgJobFile, map[string]string{"image": "registry.example.com/bg:test", "health_token": healthToken}, &p)
	if j == nil {
		return nil, p
	}
	jb := j.block.Body
	if l := label(j.block); l != "bg" {
		p.addf("job %q, want bg", l)
	}
	if typ := j.str(jb, "type", "job", &p); typ != "service" {
		p.addf("job.type %q, want service", typ)
	}
	groups := blocksOf(jb, "group")
	if len(groups) != 1 {
		p.addf("%d groups, want 1", len(groups))
		return nil, p
	}
	g := groups[0]
	gb := g.Body
	where := "group " + label(g)
	if n := j.num(gb, "count", where, &p); n != 3 {
		p.addf("%s.count = %d, want 3 replicas", where, n)
	}

	// One replica per host (job or group level).
	distinct := false
	for _, c := range append(blocksOf(jb, "constraint"), blocksOf(gb, "constraint")...) {
		if j.optStr(c.Body, "operator", "", "constraint", &p) == "distinct_hosts" &&
			j.optStr(c.Body, "value", "true", "constraint", &p) == "true" {
			distinct = true
		}
	}
	if !distinct {
		p.addf("no distinct_hosts constraint: two replicas could share a host")
	}

	// Update: one at a time, gated on checks, no canary (a group-level
	// block replaces the job's).
	upd := blocksOf(gb, "update")
	if len(upd) == 0 {
		upd = blocksOf(jb, "update")
	}
	if len(upd) != 1 {
		p.addf("%d update blocks, want 1", len(upd))
	} else {
		ub := upd[0].Body
		if n := j.num(ub, "max_parallel", "update", &p); n != 1 {
			p.addf("update.max_parallel = %d, want 1", n)
		}
		if n := j.num(ub, "canary", "update", &p); n != 0 {
			p.addf("update.canary = %d, want 0", n)
		}
		if hc := j.optStr(ub, "health_check", "checks", "update", &p); hc != "checks" {
			p.addf("update.health_check = %q, want checks (so /readyz gates the roll)", hc)
		}
	}
	if r := blocksOf(gb, "restart"); len(r) != 1 {
		p.addf("%s: %d restart blocks, want 1", where, len(r))
	}

	// Ports: static, so xDS clients find bg at a fixed address.
	ports := map[string]int{}
	if nw := one(gb, "network", where, &p); nw != nil {
		for _, pb := range blocksOf(nw.Body, "port") {
			if !has(pb.Body, "static") {
				p.addf("network port %q is not static", label(pb))
				continue
			}
			ports[label(pb)] = j.num(pb.Body, "static", "port "+label(pb), &p)
		}
	}
	for name, v := range runtimeVars(ports) {
		j.ctx.Variables[name] = v
	}

	task := one(gb, "task", where, &p)
	if task == nil {
		return nil, p
	}
	tb := task.Body
	tw := "task " + label(task)
	// The test maps /local and /secrets as the docker driver does.
	if d := j.str(tb, "driver", tw, &p); d != "docker" {
		p.addf("%s.driver = %q; the test knows the docker driver's directories", tw, d)
	}
	var cfgPath string
	if c := one(tb, "config", tw, &p); c != nil {
		cfgPath = serveConfigArg(j.strs(c.Body, "args", tw+".config", &p), &p)
	}
	if s := j.str(tb, "kill_signal", tw, &p); s != "SIGTERM" {
		p.addf("%s.kill_signal = %q, want SIGTERM: on SIGTERM the leader releases the lock", tw, s)
	}
	if d, err := time.ParseDuration(j.str(tb, "kill_timeout", tw, &p)); err != nil || d < minKillTimeout || d > maxKillTimeout {
		p.addf("%s.kill_timeout %v (%v): want %v..%v", tw, d, err, minKillTimeout, maxKillTimeout)
	}

	// Templates, and the files they write.
	var tmpls []template
	dests := map[string]bool{}
	for _, tp := range blocksOf(tb, "template") {
		t := template{
			dest:  inTask(j.str(tp.Body, "destination", "template", &p)),
			data:  j.str(tp.Body, "data", "template", &p),
			left:  j.optStr(tp.Body, "left_delimiter", "{{", "template", &p),
			perms: j.optStr(tp.Body, "perms", "0644", "template", &p),
			uid:   -1,
		}
		if has(tp.Body, "uid") {
			t.uid = j.num(tp.Body, "uid", "template", &p)
		}
		if v, ok := j.value(tp.Body, "env", "template", &p); ok && v.Type() == cty.Bool {
			t.env = v.True()
		}
		tmpls = append(tmpls, t)
		dests[t.dest] = true
	}
	// bg runs as the image's user: every file it reads must be readable
	// by that user (env templates are read by Nomad itself).
	imageUID, err := imageUser()
	if err != nil {
		p.addf("%v", err)
	}
	for _, t := range tmpls {
		mode, err := strconv.ParseUint(t.perms, 8, 32)
		switch {
		case t.env:
		case err != nil:
			p.addf("template %s: perms %q: %v", t.dest, t.perms, err)
		case mode&0o004 == 0 && !(t.uid == imageUID && mode&0o400 != 0):
			p.addf("template %s: perms %s, uid %d: the image's user (uid %d) cannot read it", t.dest, t.perms, t.uid, imageUID)
		}
	}
	local := func(p string) string { return filepath.Join(dir, filepath.FromSlash(p)) }
	env := map[string]string{}
	if e := one(tb, "env", tw, &p); e != nil {
		env = j.strMap(e.Body, tw+".env", &p)
	}
	files, fp := secretFiles(tmpls, cfgPath)
	p = append(p, fp...)
	for dest, data := range files {
		if err := os.MkdirAll(filepath.Dir(local(dest)), 0o700); err != nil {
			p.addf("%v", err)
		}
		if err := os.WriteFile(local(dest), data, 0o600); err != nil {
			p.addf("%v", err)
		}
	}
	var cfgData string
	found := false
	for _, t := range tmpls {
		switch {
		case t.dest == cfgPath:
			found = true
			cfgData = t.data
			// consul-template renders this file: bg's own {{ }} (analysis
			// queries) must not be read as its directives, and the file
			// must need no rendering for this test to load it as is.
			if t.left == "{{" && strings.Contains(t.data, "{{") {
				p.addf("template %s: bg's {{ }} would be read by consul-template; set left_delimiter/right_delimiter", t.dest)
			}
			if strings.Contains(t.data, t.left) {
				p.addf("template %s holds consul-template directives (%s); the test loads it unrendered", t.dest, t.left)
			}
		case t.env:
			// KEY=VALUE lines; the values come from Nomad Variables.
			for line := range strings.Lines(regexp.MustCompile(`\{\{.*?\}\}`).ReplaceAllLiteralString(t.data, "")) {
				if k, _, ok := strings.Cut(strings.TrimSpace(line), "="); ok {
					env[k] = "from-nomad-variables-" + strings.ToLower(k)
				}
			}
		}
	}
	if !found {
		p.addf("--config %s: no template writes it", cfgPath)
		return nil, p
	}
	// Every file the config names is one a template writes.
	for _, ref := range regexp.MustCompile(`(?:`+taskDir+`|`+secretsDir+`)/[A-Za-z0-9._-]+`).FindAllString(cfgData, -1) {
		if !dests[ref] {
			p.addf("the config names %s, which no template writes", ref)
		}
	}
	relocate := strings.NewReplacer(taskDir+"/", local(taskDir)+"/", secretsDir+"/", local(secretsDir)+"/")
	for k, v := range env {
		if !strings.HasPrefix(k, "BG_") {
			p.addf("env %s: bg reads only BG_* variables", k)
		}
		env[k] = relocate.Replace(v)
	}
	if err := os.MkdirAll(filepath.Dir(local(cfgPath)), 0o700); err != nil {
		p.addf("%v", err)
	}
	if err := os.WriteFile(local(cfgPath), []byte(relocate.Replace(cfgData)), 0o600); err != nil {
		p.addf("%v", err)
	}
	if len(p) > 0 {
		return nil, p
	}

	// bg serve's own load: file, BG_* environment, validation.
	var cfg *config.Config
	withEnv(env, func() { cfg, err = config.LoadValid(local(cfgPath), nil) })
	if err != nil {
		p.addf("the shipped config is invalid:\n%v", err)
		return nil, p
	}
	// Each BG_* variable must reach a config key: a typo binds nothing.
	// Changing its value must change what bg loads (or fail to decode).
	var full *config.Config
	withEnv(env, func() { full, _ = config.Load(local(cfgPath), nil) })
	for k, v := range env {
		changed := copyMap(env)
		changed[k] = v + "0"
		var c *config.Config
		var err error
		withEnv(changed, func() { c, err = config.Load(local(cfgPath), nil) })
		if err == nil && reflect.DeepEqual(c, full) {
			p.addf("env %s: changing it changes nothing bg loads: no config key binds it", k)
		}
	}
	if _, port, _ := net.SplitHostPort(cfg.XDS.Listen); port != strconv.Itoa(ports["xds"]) {
		p.addf("xds.listen %s is not on the xds port (%d)", cfg.XDS.Listen, ports["xds"])
	}
	if _, port, _ := net.SplitHostPort(cfg.Admin.Listen); port != strconv.Itoa(ports["admin"]) {
		p.addf("admin.listen %s is not on the admin port (%d)", cfg.Admin.Listen, ports["admin"])
	}
	if cfg.XDS.TLS.CertFile == "" {
		p.addf("xDS is served in plaintext: set xds.tls")
	}

	// Consul services: xDS with a TCP check, the admin API with /healthz
	// and /readyz checks that bg's own admin handler answers 200.
	var svcs []*hclsyntax.Block
	svcs = append(svcs, blocksOf(gb, "service")...)
	svcs = append(svcs, blocksOf(tb, "service")...)
	byPort := map[string]*hclsyntax.Block{}
	for _, s := range svcs {
		sw := "service"
		name := j.str(s.Body, "name", sw, &p)
		sw += " " + name
		if pr := j.optStr(s.Body, "provider", "consul", sw, &p); pr != "consul" {
			p.addf("%s: provider %q, want consul", sw, pr)
		}
		if name == leader.CheckService {
			p.addf("%s: bg registers each replica as %q itself (leader election); use another name", sw, leader.CheckService)
		}
		port := j.str(s.Body, "port", sw, &p)
		if _, ok := ports[port]; !ok {
			p.addf("%s: port %q is not a network port", sw, port)
		}
		byPort[port] = s
		if len(blocksOf(s.Body, "check")) == 0 {
			p.addf("%s: no check", sw)
		}
	}
	if s := byPort["xds"]; s == nil {
		p.addf("no service on the xds port")
	} else {
		tcp := false
		for _, c := range blocksOf(s.Body, "check") {
			switch typ := j.str(c.Body, "type", "xds check", &p); typ {
			case "tcp":
				tcp = true
			case "grpc":
				p.addf("xds service: a grpc check fails: bg serves no grpc.health.v1")
			}
		}
		if !tcp {
			p.addf("xds service: no tcp check")
		}
	}
	if s := byPort["admin"]; s == nil {
		p.addf("no service on the admin port")
	} else {
		p = append(p, checkAdminChecks(j, s, cfg)...)
	}
	return cfg, p
}

// serveConfigArg checks that args run `bg serve` with flags bg serve
// knows, and returns the --config path.
func serveConfigArg(args []string, p *problems) string {
	if len(args) == 0 || args[0] != "serve" {
		p.addf("args %q: want bg serve", args)
		return ""
	}
	var serve *cli.Command
	for _, c := range commands.App().Commands {
		if c.Name == "serve" {
			serve = c
		}
	}
	known := map[string]bool{}
	for _, f := range serve.Flags {
		for _, n := range f.Names() {
			known[n] = true
		}
	}
	var cfg string
	for i := 1; i < len(args); i++ {
		name, val, hasVal := strings.Cut(strings.TrimLeft(args[i], "-"), "=")
		if !strings.HasPrefix(args[i], "-") || !known[name] {
			p.addf("args %q: %q is not a flag of bg serve", args, args[i])
			continue
		}
		if !hasVal && i+1 < len(args) {
			i++
			val = args[i]
		}
		if name == "config" || name == "c" {
			cfg = path.Clean(val)
		}
	}
	if cfg == "" {
		p.addf("args %q: no --config", args)
	}
	return cfg
}

// secretFiles makes stand-ins for what the non-env templates other than
// the config write (from Nomad Variables in production): a CA, a
// certificate and key for this host's address, and tokens.
func secretFiles(tmpls []template, cfgPath string) (map[string][]byte, problems) {
	var p problems
	ca, err := devcerts.NewCA("deploy test CA")
	if err != nil {
		p.addf("%v", err)
		return nil, p
	}
	pair, err := ca.Server(hostIP, "localhost")
	if err != nil {
		p.addf("%v", err)
		return nil, p
	}
	out := map[string][]byte{}
	for _, t := range tmpls {
		if t.env || t.dest == cfgPath {
			continue
		}
		base := path.Base(t.dest)
		switch {
		case base == "ca.pem":
			out[t.dest] = ca.PEM()
		case strings.HasSuffix(base, "-key.pem"):
			out[t.dest] = pair.KeyPEM
		case strings.HasSuffix(base, ".pem"):
			out[t.dest] = pair.CertPEM
		case strings.HasSuffix(base, ".token"):
			b := make([]byte, 16)
			_, _ = rand.Read(b)
			out[t.dest] = []byte(hex.EncodeToString(b) + "\n")
		default:
			p.addf("template %s: the test does not know what it holds", t.dest)
		}
	}
	return out, p
}

// readyController is a controller that is ready; the health routes use
// nothing else.
type readyController struct{ admin.Controller }

func (readyController) Ready() bool       { return true }
func (readyController) Missing() []string { return nil }

// checkAdminChecks checks the admin service's HTTP checks against bg's
// own admin handler, with the credentials the shipped config holds.
func checkAdminChecks(j *job, s *hclsyntax.Block, cfg *config.Config) problems {
	var p problems
	creds, err := cfg.Admin.Credentials()
	if err != nil {
		p.addf("admin credentials: %v", err)
		return p
	}
	h := admin.Handler(readyController{}, admin.Options{Tokens: creds})
	paths := map[string]bool{}
	for _, c := range blocksOf(s.Body, "check") {
		cb := c.Body
		name := j.optStr(cb, "name", "", "check", &p)
		cw := "admin check " + name
		if typ := j.str(cb, "type", cw, &p); typ != "http" {
			p.addf("%s: type %q, want http", cw, typ)
			continue
		}
		want := "http"
		if cfg.Admin.TLS.Enabled() {
			want = "https"
		}
		if pr := j.optStr(cb, "protocol", "http", cw, &p); pr != want {
			p.addf("%s: protocol %q, but the admin API is served over %s", cw, pr, want)
		}
		hp := j.str(cb, "path", cw, &p)
		paths[hp] = true
		req := httptest.NewRequest(http.MethodGet, hp, nil)
		for _, hb := range blocksOf(cb, "header") {
			for k, v := range j.strMap(hb.Body, cw+".header", &p) {
				req.Header.Set(k, v)
			}
		}
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, req)
		if rec.Code != http.StatusOK {
			p.addf("%s: GET %s with its headers answers %d from bg's admin handler, want 200: %s", cw, hp, rec.Code, strings.TrimSpace(rec.Body.String()))
		}
		// A live but not ready replica (waiting for Consul) must not be
		// restarted in a loop; a hung one must.
		restart := len(blocksOf(cb, "check_restart")) > 0
		if hp == "/healthz" && !restart {
			p.addf("%s: no check_restart: a hung bg would never be restarted", cw)
		}
		if hp == "/readyz" && restart {
			p.addf("%s: check_restart on readiness restarts a replica that waits for Consul", cw)
		}
	}
	for _, want := range []string{"/healthz", "/readyz"} {
		if !paths[want] {
			p.addf("admin service: no check on %s", want)
		}
	}
	return p
}

// withEnv runs fn with exactly env as the BG_* environment.
func withEnv(env map[string]string, fn func()) {
	saved := map[string]string{}
	for _, kv := range os.Environ() {
		if k, v, _ := strings.Cut(kv, "="); strings.HasPrefix(k, "BG_") {
			saved[k] = v
			_ = os.Unsetenv(k)
		}
	}
	for k, v := range env {
		_ = os.Setenv(k, v)
	}
	defer func() {
		for k := range env {
			_ = os.Unsetenv(k)
		}
		for k, v := range saved {
			_ = os.Setenv(k, v)
		}
	}()
	fn()
}

func copyMap(m map[string]string) map[string]string {
	out := make(map[string]string, len(m))
	for k, v := range m {
		out[k] = v
	}
	return out
}

// checkExampleJob checks the blue/green example against bg's membership
// code: each group's Consul registration, read by the real Consul source
// with the colour rule of the config the bg job ships, lands in the
// group's colour, with its version.
func checkExampleJob(src []byte, bgCfg *config.Config) problems {
	var p problems
	versions := map[string]string{"blue": "v1.0.0", "green": "v1.1.0"}
	j := parseJob(src, exampleJobFile, map[string]string{
		"blue_image": "registry.example.com/web:v1.0.0", "blue_version": versions["blue"],
		"green_image": "registry.example.com/web:v1.1.0", "green_version": versions["green"],
	}, &p)
	if j == nil {
		return p
	}
	groups := blocksOf(j.block.Body, "group")
	if got := labels(groups); !slices.Equal(got, []string{"blue", "green"}) {
		p.addf("groups %q, want exactly blue and green", got)
	}
	consulOf := map[string]string{} // Consul service → a bg service reading it
	for _, s := range bgCfg.Services {
		consulOf[s.ConsulService] = s.Name
	}
	instances := map[string][]*api.ServiceEntry{}
	wantColour := map[string]model.Color{}
	for i, g := range groups {
		gw := "group " + label(g)
		if n := j.num(g.Body, "count", gw, &p); n < 1 {
			p.addf("%s.count = %d", gw, n)
		}
		if ts := blocksOf(g.Body, "task"); len(ts) == 0 {
			p.addf("%s: no task", gw)
		} else {
			for _, t := range ts {
				j.str(t.Body, "driver", gw+" task", &p)
			}
		}
		svcs := blocksOf(g.Body, "service")
		if len(svcs) != 1 {
			p.addf("%s: %d services, want 1", gw, len(svcs))
			continue
		}
		s := svcs[0].Body
		sw := gw + " service"
		name := j.str(s, "name", sw, &p)
		if _, ok := consulOf[name]; !ok {
			p.addf("%s: Consul service %q is no service's consul_service in the bg job's config", sw, name)
		}
		if pr := j.optStr(s, "provider", "consul", sw, &p); pr != "consul" {
			p.addf("%s: provider %q, want consul (bg reads Consul)", sw, pr)
		}
		if len(blocksOf(s, "check")) == 0 {
			p.addf("%s: no check: bg serves only passing instances, so an unchecked one is always served", sw)
		}
		var tags []string
		if has(s, "tags") {
			tags = j.strs(s, "tags", sw, &p)
		}
		meta := map[string]string{}
		for _, m := range blocksOf(s, "meta") {
			for k, v := range j.strMap(m.Body, sw+".meta", &p) {
				meta[k] = v
			}
		}
		id := "_nomad-task-" + label(g)
		instances[name] = append(instances[name], &api.ServiceEntry{
			Node:    &api.Node{Node: "node-" + strconv.Itoa(i), Address: "10.0.1." + strconv.Itoa(i+1)},
			Service: &api.AgentService{ID: id, Service: name, Tags: tags, Meta: meta, Port: 20000 + i},
			Checks:  api.HealthChecks{{Node: "node-" + strconv.Itoa(i), CheckID: id + "-check", Status: api.HealthPassing, ServiceID: id}},
		})
		wantColour[id] = model.Color(label(g))
	}
	if len(p) > 0 {
		return p
	}

	names := map[string]string{}
	for _, s := range bgCfg.Services {
		if len(instances[s.ConsulService]) > 0 {
			names[s.Name] = s.ConsulService
		}
	}
	rule := consulsrc.ColorRule{BlueTag: bgCfg.Consul.Color.BlueTag, GreenTag: bgCfg.Consul.Color.GreenTag, MetaKey: bgCfg.Consul.Color.MetaKey}
	source := consulsrc.New(fakeCatalog{instances: instances}, rule, names, time.Second, slog.New(slog.DiscardHandler), nil)
	source.MinInterval = time.Millisecond
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	got := map[string]membership.Update{}
	updates := make(chan membership.Update)
	go source.Run(ctx, func(u membership.Update) {
		select {
		case updates <- u:
		case <-ctx.Done():
		}
	})
	for len(got) < len(names) {
		select {
		case u := <-updates:
			got[u.Service] = u
		case <-ctx.Done():
			p.addf("bg's Consul source read %d of %d services in 10s", len(got), len(names))
			return p
		}
	}
	cancel()
	for svc, u := range got {
		for _, sk := range u.Skipped {
			p.addf("bg service %s: bg ignores an instance: %s", svc, sk)
		}
		for _, c := range []model.Color{model.Blue, model.Green} {
			eps := u.Membership.Fleet(c).Endpoints
			if len(eps) != 1 {
				p.addf("bg service %s: %d %s instances, want the %s group's 1", svc, len(eps), c, c)
			}
			for _, ep := range eps {
				if wantColour[ep.ID] != c {
					p.addf("bg service %s: instance %s (group %s) read as %s", svc, ep.ID, wantColour[ep.ID], c)
				}
				if want := versions[string(wantColour[ep.ID])]; ep.Version != want {
					p.addf("bg service %s: instance %s version %q, want %q (meta %q)", svc, ep.ID, ep.Version, want, consulsrc.VersionMeta)
				}
			}
		}
	}
	return p
}

// fakeCatalog answers bg's Consul source with fixed instances: the two
// blocking queries answer once, then block until the context ends.
type fakeCatalog struct {
	instances map[string][]*api.ServiceEntry
}

func (f fakeCatalog) Checks(ctx context.Context, index uint64, _ time.Duration) ([]*api.HealthCheck, uint64, error) {
	if index == 0 {
		var out []*api.HealthCheck
		for _, es := range f.instances {
			for _, e := range es {
				out = append(out, e.Checks...)
			}
		}
		return out, 1, nil
	}
	<-ctx.Done()
	return nil, 0, ctx.Err()
}

func (f fakeCatalog) Services(ctx context.Context, index uint64, _ time.Duration) (map[string][]string, uint64, error) {
	if index == 0 {
		out := map[string][]string{}
		for name, es := range f.instances {
			for _, e := range es {
				out[name] = append(out[name], e.Service.Tags...)
			}
		}
		return out, 1, nil
	}
	<-ctx.Done()
	return nil, 0, ctx.Err()
}

func (f fakeCatalog) Instances(_ context.Context, name string) ([]*api.ServiceEntry, error) {
	return f.instances[name], nil
}

// plainDir is a temporary directory whose path needs no quoting in YAML
// (t.TempDir's is named after the test, and subtests' names hold any text).
func plainDir(t *testing.T) string {
	t.Helper()
	dir, err := os.MkdirTemp("", "bg-deploy-")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = os.RemoveAll(dir) })
	return dir
}

// imageUser is the uid the bg image runs as: the USER of the Dockerfile's
// bg stage.
func imageUser() (int, error) {
	data, err := os.ReadFile("../Dockerfile")
	if err != nil {
		return -1, err
	}
	inBG := false
	for line := range strings.Lines(string(data)) {
		f := strings.Fields(line)
		switch {
		case len(f) >= 4 && strings.EqualFold(f[0], "FROM") && strings.EqualFold(f[2], "AS"):
			inBG = f[3] == "bg"
		case inBG && len(f) == 2 && strings.EqualFold(f[0], "USER"):
			uid, _, _ := strings.Cut(f[1], ":")
			return strconv.Atoi(uid)
		}
	}
	return -1, errors.New("../Dockerfile: no USER in the bg stage")
}

// inTask is where the task sees a template's destination: a relative one
// is relative to the task directory, which the docker driver mounts at /
// (local/ at /local, secrets/ at /secrets).
func inTask(dest string) string {
	if !path.IsAbs(dest) {
		dest = "/" + dest
	}
	return path.Clean(dest)
}
