// Package scale is the scale bench (GitHub issue 11): a real Consul with n
// services of one blue and one green instance each, then, one after the
// other, `bg serve` and a bare go-control-plane server serving the same
// resources, each to the same p simulated proxyless gRPC clients
// (controlplane/xds/adssim) following k services each. It measures time to
// ready, time until every proxy holds its full chains, idle RSS and CPU,
// switch propagation and goroutines, and bg's connections to Consul.
//
// It asserts correctness only (every proxy gets its chains, every switch
// reaches every subscriber, both servers become ready); speed on a shared
// machine is noisy, so the table quotes ratios. e2e/cmd/bg-scale runs it;
// e2e/scale_bench_test.go runs a small size in CI.
package scale

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"time"

	apiv1 "github.com/bgctl/bg/controlplane/api/v1"

	"github.com/bgctl/bg/cli/client"
	"github.com/bgctl/bg/controlplane/model"
	"github.com/bgctl/bg/controlplane/xds/adssim"
	"github.com/bgctl/bg/e2e/harness"
)

// Options size the bench.
type Options struct {
	Services int           // n: services in Consul and bg's config
	Proxies  int           // p: simulated proxies (one ADS stream each)
	PerProxy int           // k: services each proxy follows (default 5)
	Idle     time.Duration // idle window for RSS and CPU (default 30s)
	Switches int           // m: instant switches timed per server (default 20)
	// Conns is how many gRPC connections the proxies' streams share
	// (default p/64, at least 1, at most 64).
	Conns int
	// PprofDir, when set, receives each server's heap profile, if it
	// serves /debug/pprof/heap.
	PprofDir string
	// BareBin is a binary that serves the bare reference when run with
	// BareFlag: the bg-scale command itself (os.Executable), or
	// BuildCommand's output in a test.
	BareBin string
	// Logf reports progress; default t.Logf.
	Logf func(format string, args ...any)
}

// settle is a quiet pause between the last proxy's full chain and the
// idle window: bg may still write its ACK reports to Consul just after.
const settle = 2 * time.Second

func (o *Options) defaults() error {
	if o.PerProxy <= 0 {
		o.PerProxy = 5
	}
	if o.Idle <= 0 {
		o.Idle = 30 * time.Second
	}
	if o.Switches <= 0 {
		o.Switches = 20
	}
	if o.Conns <= 0 {
		o.Conns = min(max(o.Proxies/64, 1), 64)
	}
	switch {
	case o.Services < 1 || o.Proxies < 1:
		return fmt.Errorf("need at least 1 service and 1 proxy (got %d, %d)", o.Services, o.Proxies)
	case o.Services > 20000:
		return fmt.Errorf("at most 20000 services (instance and listener ports must fit)")
	case o.BareBin == "":
		return errors.New("no binary for the bare server (Options.BareBin)")
	}
	return nil
}

// Timeouts grow with the size, so they say "broken", never "slow machine".
func (o Options) readyTimeout() time.Duration {
	return time.Minute + time.Duration(o.Services)*100*time.Millisecond
}

func (o Options) chainTimeout() time.Duration {
	return time.Minute + time.Duration(o.Proxies)*50*time.Millisecond
}

func (o Options) switchTimeout() time.Duration {
	return 30*time.Second + time.Duration(o.Proxies)*5*time.Millisecond
}

// Measurements are one server's figures; zero or negative means not measured.
type Measurements struct {
	Ready   time.Duration // process start until /readyz 200
	Chains  time.Duration // proxies started until every one holds every chain
	IdleRSS int64         // bytes, at the end of the idle window
	IdleCPU time.Duration // utime+stime over the idle window
	// SettleCPU is utime+stime over the settle between the chains and the
	// idle window; Releases is bg_memory_releases_total at the end of the
	// idle window (-1: none).
	SettleCPU time.Duration
	Releases  int
	Window    time.Duration // the idle window as measured
	// Switches: switch requested until every subscriber of the service
	// ACKed the new weights; SwitchCalls: until the request returned (bg
	// answers once it has seen every ACK; the bare server at once).
	Switches, SwitchCalls []time.Duration
	Goroutines            int           // go_goroutines at the end of the idle window; -1 unknown
	HeapInuse, StackInuse int64         // go_memstats_{heap,stack}_inuse_bytes then; 0 unknown
	HeapRetained          int64         // heap idle but not yet returned to the OS
	LiveHeap              int64         // heap in use right after a forced GC; 0 unknown
	LiveObjects           int64         // bytes of live objects right after that GC; 0 unknown
	StateWrite            time.Duration // bg: mean Consul write per switch (bg_state_write_seconds); 0 unknown
	ConsulConns           int           // max ESTABLISHED to Consul's HTTP port over the phase; -1 n/a
	ConsulConnsIdle       int           // the same, at the end of the idle window
	Heap                  string
}

// Result is a whole run.
type Result struct {
	Options      Options
	Registration time.Duration // registering 2n instances in Consul
	BG, Bare     Measurements
	Subscribers  []int    // subscribers of each switched service
	Problems     []string // correctness failures: non-empty means the run failed
	Notes        []string
}

// Run runs the bench. Harness failures (Consul or bg would not start) go
// to t.Fatalf; correctness failures are in Result.Problems.
func Run(t harness.TB, o Options) Result {
	t.Helper()
	if err := o.defaults(); err != nil {
		t.Fatalf("scale: %v", err)
	}
	if o.Logf == nil {
		o.Logf = t.Logf
	}
	b := &bench{t: t, o: o, res: Result{Options: o}}
	b.run()
	return b.res
}

type bench struct {
	t   harness.TB
	o   Options
	res Result
	// switched lists the services timed, subscribed ones only, in order.
	switched []string
}

func (b *bench) logf(format string, args ...any) {
	b.t.Helper()
	b.o.Logf("bg-scale: "+format, args...)
}

func (b *bench) problem(format string, args ...any) {
	b.t.Helper()
	msg := fmt.Sprintf(format, args...)
	b.res.Problems = append(b.res.Problems, msg)
	b.logf("PROBLEM: %s", msg)
}

func (b *bench) note(format string, args ...any) {
	b.res.Notes = append(b.res.Notes, fmt.Sprintf(format, args...))
}

func (b *bench) run() {
	o := b.o
	b.logf("n=%d services, p=%d proxies × k=%d services, %d shared connections, idle %v, %d switches",
		o.Services, o.Proxies, o.PerProxy, o.Conns, o.Idle, o.Switches)
	b.pickSwitches()
	bgBin := harness.BuildBG(b.t)

	consul := harness.StartConsul(b.t)
	b.logf("consul at %s", consul.HTTPAddr())
	start := time.Now()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute+time.Duration(o.Services)*50*time.Millisecond)
	err := Register(ctx, consul.HTTPAddr(), Instances(o.Services))
	cancel()
	if err != nil {
		b.t.Fatalf("scale: %v", err)
	}
	b.res.Registration = time.Since(start)
	b.logf("registered %d instances in %v", 2*o.Services, b.res.Registration.Round(time.Millisecond))

	b.res.BG = b.phase(b.startBG(bgBin, consul.HTTPAddr()))
	// The bare server needs no Consul: stop it so it does not share the
	// machine with the second phase.
	consul.Stop()
	b.res.Bare = b.phase(b.startBareServer())
}

// pickSwitches chooses m services spread over those with subscribers.
func (b *bench) pickSwitches() {
	o := b.o
	seen := map[string]bool{}
	for i := range o.Proxies {
		for _, s := range ServicesOf(i, o.PerProxy, o.Services) {
			seen[s] = true
		}
	}
	subscribed := make([]string, 0, len(seen))
	for s := range seen {
		subscribed = append(subscribed, s)
	}
	slices.Sort(subscribed)
	for j := range o.Switches {
		i := j % len(subscribed) // more switches than services: again, back and forth
		if o.Switches <= len(subscribed) {
			i = j * len(subscribed) / o.Switches
		}
		b.switched = append(b.switched, subscribed[i])
	}
}

// server is one phase's process, as the bench drives it.
type server struct {
	name       string
	xdsAddr    string
	adminURL   string // http://host:port
	token      string
	consulPort int // bg: sample connections to it; 0 for the bare server
	pid        func() int
	running    func() bool
	// switchTo moves service to colour c and returns once the server answered.
	switchTo func(ctx context.Context, service string, c model.Color) error
	stop     func()
	started  time.Time
}

func (b *bench) startBG(bin, consulAddr string) *server {
	xdsAddr := fmt.Sprintf("127.0.0.1:%d", harness.FreePort(b.t))
	admin := fmt.Sprintf("127.0.0.1:%d", harness.FreePort(b.t))
	const token = "bg-scale-secret"
	cfg := WriteBGConfig(b.t, BGConfig{ConsulAddr: consulAddr, XDSAddr: xdsAddr, AdminAddr: admin, Token: token,
		Services: b.o.Services, SwitchTimeout: b.o.switchTimeout().String()})
	port, err := strconv.Atoi(consulAddr[strings.LastIndexByte(consulAddr, ':')+1:])
	if err != nil {
		b.t.Fatalf("scale: consul address %s: %v", consulAddr, err)
	}
	started := time.Now()
	// SkipReady: the bench times readiness itself, with a timeout that
	// grows with n (the harness waits 30 s at most).
	bg := harness.StartBG(b.t, harness.BGOptions{Bin: bin, Config: cfg, AdminAddr: admin, Token: token, SkipReady: true})
	api := &client.Client{Addr: admin, Token: token, Actor: "bg-scale", HTTP: &http.Client{Timeout: b.o.switchTimeout() + 30*time.Second}}
	return &server{
		name: "bg", xdsAddr: xdsAddr, adminURL: "http://" + admin, token: token, consulPort: port,
		pid: bg.Pid, running: bg.Running, stop: bg.Stop, started: started,
		switchTo: func(ctx context.Context, service string, c model.Color) error {
			res, err := api.Switch(ctx, service, apiv1.ChangeRequest{To: string(c), Instant: true, Reason: "bg-scale bench"})
			switch {
			case err != nil:
				return err
			case !res.Changed:
				return fmt.Errorf("bg changed nothing (status %+v)", res.Status)
			case !res.Acks.Complete():
				return fmt.Errorf("bg reports %d proxies pending (acked %d) %s", res.Acks.PendingCount(), res.Acks.Acked, res.Acks.Unconfirmed)
			}
			return nil
		},
	}
}

func (b *bench) startBareServer() *server {
	xdsAddr := fmt.Sprintf("127.0.0.1:%d", harness.FreePort(b.t))
	admin := fmt.Sprintf("127.0.0.1:%d", harness.FreePort(b.t))
	started := time.Now()
	p, err := startBare(b.t, b.o.BareBin, BareOptions{Services: b.o.Services, XDSAddr: xdsAddr, AdminAddr: admin})
	if err != nil {
		b.t.Fatalf("scale: %v", err)
	}
	hc := &http.Client{Timeout: 10 * time.Second}
	return &server{
		name: "bare", xdsAddr: xdsAddr, adminURL: "http://" + admin,
		pid: func() int { return p.cmd.Process.Pid }, running: p.running, stop: p.stop, started: started,
		switchTo: func(ctx context.Context, service string, c model.Color) error {
			req, err := http.NewRequestWithContext(ctx, http.MethodPost,
				"http://"+admin+"/switch?service="+service+"&to="+string(c), nil)
			if err != nil {
				return err
			}
			resp, err := hc.Do(req)
			if err != nil {
				return err
			}
			defer resp.Body.Close()
			body, _ := io.ReadAll(resp.Body)
			if resp.StatusCode != http.StatusOK {
				return fmt.Errorf("bare switch: HTTP %d: %s", resp.StatusCode, strings.TrimSpace(string(body)))
			}
			return nil
		},
	}
}

// phase measures one server, then stops it. A correctness failure is
// recorded and ends the phase early: what follows depends on it.
func (b *bench) phase(s *server) (m Measurements) {
	m = Measurements{Goroutines: -1, ConsulConns: -1, ConsulConnsIdle: -1, Releases: -1}
	defer s.stop()
	pid := s.pid()
	if s.consulPort != 0 {
		smp := SampleConnections(pid, s.consulPort, 200*time.Millisecond)
		defer func() {
			m.ConsulConns = smp.Stop()
			if smp.err != nil && m.ConsulConns < 0 {
				b.note("%s: Consul connections not sampled: %v", s.name, smp.err)
			}
		}()
	}

	if err := b.waitReady(s); err != nil {
		b.problem("%s: not ready: %v", s.name, err)
		return m
	}
	m.Ready = time.Since(s.started)
	b.logf("%s: ready in %v (pid %d)", s.name, m.Ready.Round(time.Millisecond), pid)

	fleet, chains, err := b.startProxies(s)
	if fleet != nil {
		defer fleet.Close()
	}
	if err != nil {
		b.problem("%s: %v", s.name, err)
		return m
	}
	m.Chains = chains
	b.logf("%s: all %d proxies hold their full chains after %v", s.name, b.o.Proxies, chains.Round(time.Millisecond))

	// The settle is not idle: the last ACKs arrive, and bg returns the
	// chains' garbage to the OS once xDS has been quiet for a second
	// (controlplane/memrelease). Its CPU is shown apart.
	if c0, err := cpuTime(pid); err == nil {
		time.Sleep(settle)
		if c1, err := cpuTime(pid); err == nil {
			m.SettleCPU = c1 - c0
		}
	} else {
		time.Sleep(settle)
	}
	if err := b.idle(s, pid, &m); err != nil {
		b.problem("%s: idle measurements: %v", s.name, err)
		return m
	}
	b.logf("%s: idle RSS %s, CPU %v in %v, %d goroutines", s.name, mib(m.IdleRSS), m.IdleCPU, m.Window.Round(time.Millisecond), m.Goroutines)

	if b.o.PprofDir != "" {
		// After the idle measurements, so profiling does not count in them.
		m.Heap = b.profile(s, "heap.pb.gz", "/debug/pprof/heap", 0)
		b.profile(s, "goroutines.txt", "/debug/pprof/goroutine?debug=1", 0)
		b.profile(s, "idle-cpu.pb.gz", fmt.Sprintf("/debug/pprof/profile?seconds=%d", max(int(b.o.Idle.Seconds()), 1)), b.o.Idle)
		// What wakes the process at idle (timers, Consul answers, pings):
		// `go tool trace` on this file; a CPU profile at idle holds too few
		// samples to tell.
		b.profile(s, "idle-trace.out", "/debug/pprof/trace?seconds=10", 10*time.Second)
	}
	b.switches(s, fleet, &m)
	return m
}

// waitReady polls /readyz until 200, the process exits or the timeout.
func (b *bench) waitReady(s *server) error {
	ctx, cancel := context.WithTimeout(context.Background(), b.o.readyTimeout())
	defer cancel()
	var last string
	for {
		if !s.running() {
			return errors.New("process exited")
		}
		code, body, err := b.get(ctx, s, "/readyz")
		switch {
		case err == nil && code == http.StatusOK:
			return nil
		case err != nil:
			last = err.Error()
		default:
			last = fmt.Sprintf("HTTP %d: %.300s", code, body)
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("after %v: %s", b.o.readyTimeout(), last)
		case <-time.After(50 * time.Millisecond):
		}
	}
}

// get fetches one admin path with the token.
func (b *bench) get(ctx context.Context, s *server, path string) (int, []byte, error) {
	return b.getWithin(ctx, s, path, 0)
}

// getWithin is get with a timeout of 10 s plus extra.
func (b *bench) getWithin(ctx context.Context, s *server, path string, extra time.Duration) (int, []byte, error) {
	ctx, cancel := context.WithTimeout(ctx, 10*time.Second+extra)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, s.adminURL+path, nil)
	if err != nil {
		return 0, nil, err
	}
	if s.token != "" {
		req.Header.Set("Authorization", "Bearer "+s.token)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return 0, nil, err
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	return resp.StatusCode, body, err
}

// startProxies connects the fleet and waits until every proxy has ACKed
// LDS, RDS, CDS and EDS for each of its services.
func (b *bench) startProxies(s *server) (*adssim.Fleet, time.Duration, error) {
	o := b.o
	ctx, cancel := context.WithTimeout(context.Background(), o.chainTimeout())
	defer cancel()
	start := time.Now()
	fleet, err := adssim.StartFleet(ctx, s.xdsAddr, adssim.FleetOptions{
		Options:    adssim.Options{NodeID: "scale-" + s.name, Clusters: true},
		Size:       o.Proxies,
		ServicesOf: func(i int) []string { return ServicesOf(i, o.PerProxy, o.Services) },
		Conns:      o.Conns,
	})
	if err != nil {
		return nil, 0, fmt.Errorf("proxies did not connect: %w", err)
	}
	if err := fleet.WaitReady(ctx); err != nil {
		return fleet, 0, fmt.Errorf("not every proxy got its full chains within %v: %w%s", o.chainTimeout(), err, notReady(fleet))
	}
	return fleet, time.Since(start), nil
}

// notReady describes a few proxies without their chains.
func notReady(f *adssim.Fleet) string {
	var out strings.Builder
	n := 0
	for _, c := range f.Clients {
		st := c.State()
		if st.Ready {
			continue
		}
		if n < 5 {
			fmt.Fprintf(&out, "\n  %s: %s", c.NodeID(), adssim.Summary(st))
			if st.Err != nil {
				fmt.Fprintf(&out, " (stream ended: %v)", st.Err)
			}
		}
		n++
	}
	if n > 5 {
		fmt.Fprintf(&out, "\n  … and %d more", n-5)
	}
	return out.String()
}

// idle measures RSS, CPU and goroutines over the idle window.
func (b *bench) idle(s *server, pid int, m *Measurements) error {
	cpu0, err := cpuTime(pid)
	if err != nil {
		return err
	}
	t0 := time.Now()
	time.Sleep(b.o.Idle)
	cpu1, err := cpuTime(pid)
	if err != nil {
		return err
	}
	m.Window = time.Since(t0)
	m.IdleCPU = cpu1 - cpu0
	if m.IdleRSS, err = rssBytes(pid); err != nil {
		return err
	}
	if s.consulPort != 0 {
		if n, err := establishedTo(pid, s.consulPort); err == nil {
			m.ConsulConnsIdle = n
		}
	}
	v, err := b.runtimeMetrics(s, "go_goroutines", "go_memstats_heap_inuse_bytes", "go_memstats_stack_inuse_bytes",
		"go_memstats_heap_idle_bytes", "go_memstats_heap_released_bytes")
	if err != nil {
		b.note("%s: runtime metrics not read: %v", s.name, err)
		return nil
	}
	m.Goroutines, m.HeapInuse, m.StackInuse = int(v[0]), int64(v[1]), int64(v[2])
	// Read after the idle window: a scrape of bg's /metrics at 1,000
	// services leaves megabytes of garbage, which would count in idle RSS.
	if v, err := b.runtimeMetrics(s, "bg_memory_releases_total"); err == nil {
		m.Releases = int(v[0])
	}
	m.HeapRetained = int64(v[3] - v[4])
	// The heap in use right after a collection (the profile endpoint
	// collects first when asked with gc=1): live objects plus the free
	// space in spans that still hold one. Idle RSS also depends on where
	// each process is in its GC cycle; the live objects alone are in the
	// heap profiles (-pprof).
	if code, _, err := b.get(context.Background(), s, "/debug/pprof/heap?gc=1"); err == nil && code == http.StatusOK {
		if v, err := b.runtimeMetrics(s, "go_memstats_heap_inuse_bytes", "go_memstats_heap_alloc_bytes"); err == nil {
			m.LiveHeap, m.LiveObjects = int64(v[0]), int64(v[1])
		}
	}
	return nil
}

// runtimeMetrics reads unlabelled series from the server's /metrics, in
// the order asked.
func (b *bench) runtimeMetrics(s *server, names ...string) ([]float64, error) {
	code, body, err := b.get(context.Background(), s, "/metrics")
	if err != nil {
		return nil, err
	}
	if code != http.StatusOK {
		return nil, fmt.Errorf("/metrics: HTTP %d", code)
	}
	found := map[string]float64{}
	sc := bufio.NewScanner(strings.NewReader(string(body)))
	sc.Buffer(make([]byte, 0, 64<<10), 4<<20)
	for sc.Scan() {
		name, v, ok := strings.Cut(sc.Text(), " ")
		if !ok || strings.HasPrefix(name, "#") {
			continue
		}
		if f, err := strconv.ParseFloat(strings.TrimSpace(v), 64); err == nil {
			found[name] = f
		}
	}
	out := make([]float64, len(names))
	for i, n := range names {
		f, ok := found[n]
		if !ok {
			return nil, fmt.Errorf("/metrics has no %s", n)
		}
		out[i] = f
	}
	return out, nil
}

// switches times each switch from the request until every subscriber of
// the service ACKed the new weights (counted by the proxies, for both
// servers alike), and checks the request's own answer.
func (b *bench) switches(s *server, fleet *adssim.Fleet, m *Measurements) {
	// bg stores each switch in Consul before it pushes; its own histogram
	// says how long that took, over these switches only.
	writes := []string{"bg_state_write_seconds_sum", "bg_state_write_seconds_count"}
	w0, werr := b.runtimeMetrics(s, writes...)
	defer func() {
		if w1, err := b.runtimeMetrics(s, writes...); err == nil && werr == nil && w1[1] > w0[1] {
			m.StateWrite = time.Duration((w1[0] - w0[0]) / (w1[1] - w0[1]) * float64(time.Second))
		}
	}()
	if b.o.PprofDir != "" {
		// An execution trace over the timed switches: where a switch's
		// time goes (`go tool trace`, or regions by goroutine).
		secs := max(int(float64(len(b.switched))*0.3)+1, 1)
		traced := make(chan struct{})
		go func() {
			defer close(traced)
			b.profile(s, "switch-trace.out", fmt.Sprintf("/debug/pprof/trace?seconds=%d", secs), time.Duration(secs)*time.Second)
		}()
		defer func() { <-traced }()
		time.Sleep(100 * time.Millisecond) // the trace has started
	}
	colour := map[string]model.Color{}
	subs := make([]int, 0, len(b.switched))
	for j, svc := range b.switched {
		from := colour[svc]
		if from == "" {
			from = model.Blue
		}
		to := otherColor(from)
		want := adssim.Weights{Blue: 100}
		if to == model.Green {
			want = adssim.Weights{Green: 100}
		}
		ctx, cancel := context.WithTimeout(context.Background(), b.o.switchTimeout())
		start := time.Now()
		called := make(chan error, 1)
		var callTook time.Duration
		go func() {
			err := s.switchTo(ctx, svc, to)
			callTook = time.Since(start)
			called <- err
		}()
		err := fleet.WaitService(ctx, svc, want)
		took := time.Since(start)
		callErr := <-called
		cancel()
		subs = append(subs, fleet.Subscribers(svc))
		if err != nil {
			b.problem("%s: switch %d (%s to %s) did not reach every subscriber in %v: %v", s.name, j+1, svc, to, b.o.switchTimeout(), err)
			return
		}
		if callErr != nil {
			b.problem("%s: switch %d (%s to %s): %v", s.name, j+1, svc, to, callErr)
			return
		}
		colour[svc] = to
		m.Switches = append(m.Switches, took)
		m.SwitchCalls = append(m.SwitchCalls, callTook)
		// Let the server finish what follows a switch (bg records history
		// and ACK reports) before the next one is timed.
		time.Sleep(250 * time.Millisecond)
	}
	b.res.Subscribers = subs
	b.logf("%s: %d switches, to all subscribers median %v, max %v", s.name, len(m.Switches),
		median(m.Switches).Round(time.Microsecond), slices.Max(append([]time.Duration{0}, m.Switches...)).Round(time.Microsecond))
}

// profile saves one of the server's profiles under PprofDir as
// NAME-file, or says why not. extra lengthens the request's timeout (a CPU
// profile takes as long as it samples).
func (b *bench) profile(s *server, file, path string, extra time.Duration) string {
	code, body, err := b.getWithin(context.Background(), s, path, extra)
	switch {
	case err != nil:
		return "not fetched: " + err.Error()
	case code != http.StatusOK:
		return fmt.Sprintf("not served (%s: HTTP %d)", path, code)
	}
	if err := os.MkdirAll(b.o.PprofDir, 0o755); err != nil {
		return "not saved: " + err.Error()
	}
	out := filepath.Join(b.o.PprofDir, s.name+"-"+file)
	if err := os.WriteFile(out, body, 0o644); err != nil {
		return "not saved: " + err.Error()
	}
	return out
}

// Sampler counts a process's established connections to a port at a
// fixed interval and keeps the most it saw.
type Sampler struct {
	stopc chan struct{}
	done  chan struct{}
	max   int
	err   error
}

// SampleConnections samples pid's connections to port every interval until Stop.
func SampleConnections(pid, port int, every time.Duration) *Sampler {
	s := &Sampler{stopc: make(chan struct{}), done: make(chan struct{}), max: -1}
	go func() {
		defer close(s.done)
		tick := time.NewTicker(every)
		defer tick.Stop()
		for {
			if n, err := establishedTo(pid, port); err != nil {
				if s.err == nil {
					s.err = err
				}
			} else if n > s.max {
				s.max = n
			}
			select {
			case <-s.stopc:
				return
			case <-tick.C:
			}
		}
	}()
	return s
}

// Stop ends sampling and returns the maximum seen (-1 if none); call it once.
func (s *Sampler) Stop() int {
	close(s.stopc)
	<-s.done
	return s.max
}

// Err is the first sampling error, if any (read after Stop).
func (s *Sampler) Err() error { return s.err }

func median(ds []time.Duration) time.Duration {
	if len(ds) == 0 {
		return 0
	}
	s := slices.Clone(ds)
	slices.Sort(s)
	if len(s)%2 == 1 {
		return s[len(s)/2]
	}
	return (s[len(s)/2-1] + s[len(s)/2]) / 2
}

func mib(b int64) string { return fmt.Sprintf("%.1f MiB", float64(b)/(1<<20)) }
