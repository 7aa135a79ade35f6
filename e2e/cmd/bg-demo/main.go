// Command bg-demo runs a scripted blue/green switch on loopback with the
// real pieces of the e2e harness: Consul, a blue (v1) and a green (v2) gRPC
// fleet, `bg serve` and proxyless grpc-go xDS clients. It prints the traffic
// split live, runs the real bg CLI, and exits non-zero if any call failed or
// the traffic did not move as expected, so it doubles as a smoke test.
// scripts/demo.sh builds and runs it.
package main

import (
	"encoding/json"
	"flag"
	"fmt"
	"maps"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"time"

	"github.com/bgctl/bg/e2e/harness"
)

const (
	service = "demo"
	tick    = 500 * time.Millisecond
	// settle is how long after a command returns calls may still be on the
	// old colour: the command waits for every proxy's ACK, so this only
	// covers calls already picked when the ACK went out.
	settle = 200 * time.Millisecond
)

func main() {
	bgFlag := flag.String("bg", "bin/bg", "bg binary (relative paths are taken from the repo root)")
	clients := flag.Int("clients", 3, "proxyless xDS clients")
	workers := flag.Int("workers", 2, "concurrent callers per client")
	flag.Parse()

	r, err := harness.NewRunner("bg-demo")
	if err != nil {
		fmt.Fprintf(os.Stderr, "bg-demo: %v\n", err)
		os.Exit(1)
	}
	d := &demo{r: r, bgShown: *bgFlag}
	d.run(*clients, *workers)
}

type demo struct {
	r       *harness.Runner
	bgShown string // as typed, for the printed commands
	bgBin   string
	admin   string
	clients []*harness.Traffic
	started []harness.Mark // taken as each client started
	problem []string       // expectations that did not hold
}

func (d *demo) run(nClients, workers int) {
	r := d.r
	d.bgBin = d.bgShown
	if !filepath.IsAbs(d.bgBin) {
		d.bgBin = filepath.Join(harness.RepoRoot(r), d.bgBin)
	}
	if _, err := os.Stat(d.bgBin); err != nil {
		r.Fatalf("bg binary: %v (build it with: go build -o bin/bg ./cli/bg)", err)
	}

	fmt.Printf("== starting: Consul, 2 blue (v1) + 2 green (v2) backends, bg serve, %d xDS clients\n", nClients)
	t0 := time.Now()
	consul := harness.StartConsul(r)
	fmt.Printf("   consul    http %s  (ready in %v)\n", consul.HTTPAddr(), time.Since(t0).Round(100*time.Millisecond))

	for _, f := range []struct{ color, version string }{{"blue", "v1"}, {"green", "v2"}} {
		for i := 1; i <= 2; i++ {
			id := fmt.Sprintf("%s-%s-%d", service, f.color, i)
			b := harness.StartBackend(r, harness.BackendOptions{Service: service, Color: f.color, ID: id, Version: f.version})
			if err := b.Register(consul.Client()); err != nil {
				r.Fatalf("register %s: %v", id, err)
			}
			fmt.Printf("   backend   %-13s %s  tag %-5s version %s\n", id, b.Addr(), f.color, f.version)
		}
	}

	xdsAddr := fmt.Sprintf("127.0.0.1:%d", harness.FreePort(r))
	d.admin = fmt.Sprintf("127.0.0.1:%d", harness.FreePort(r))
	// No admin token: bg allows that on a loopback listener, and it keeps the
	// printed commands copy-pasteable.
	cfgPath := harness.WriteBGConfig(r, harness.BGConfig{ConsulAddr: consul.HTTPAddr(), XDSAddr: xdsAddr, AdminAddr: d.admin, Service: service})
	harness.StartBG(r, harness.BGOptions{Bin: d.bgBin, Config: cfgPath, AdminAddr: d.admin})
	fmt.Printf("   bg serve  xds %s  admin %s  (config %s)\n", xdsAddr, d.admin, cfgPath)

	for i := range nClients {
		c := harness.StartTraffic(r, harness.TrafficOptions{XDSAddr: xdsAddr, NodeID: fmt.Sprintf("demo-client-%d", i+1), Service: service, Workers: workers})
		d.clients = append(d.clients, c)
		d.started = append(d.started, c.Mark())
		c.Ready(r, 30*time.Second)
	}
	fmt.Printf("   clients   %d × xds:///%s, %d callers each  (all up %v after start)\n", nClients, service, workers, time.Since(t0).Round(100*time.Millisecond))
	fmt.Printf("   meanwhile, from another shell:  BG_ADDR=%s %s status %s\n", d.admin, d.bgShown, service)

	fmt.Println("\n== all traffic on blue")
	blue1 := d.phase("blue", d.marks(), 3*time.Second)

	green := d.flip("green", 4*time.Second, "switch", service, "--to", "green", "--instant")
	blue2 := d.flip("blue", 4*time.Second, "abort", service)

	fmt.Println()
	d.cli(true, "status", service)
	d.checkStatus()

	d.summary([]phaseResult{blue1, green, blue2})

	if len(d.problem) > 0 {
		// Failed makes the harness print its processes' log tails and keeps
		// the logs.
		r.Errorf("%s", strings.Join(d.problem, "; "))
	}
	fmt.Print("\n== cleaning up ... ")
	start := time.Now()
	r.Close()
	fmt.Printf("done (%v)\n", time.Since(start).Round(time.Millisecond))
	if r.Failed() {
		fmt.Println("FAIL: see the errors above")
		os.Exit(1)
	}
	fmt.Println("PASS: every call succeeded and traffic moved blue → green → blue")
}

type phaseResult struct {
	want string
	n    harness.Counts // calls started once the phase had settled
}

// flip runs a bg command that moves traffic to want, then shows d of
// traffic and checks it all landed on want.
func (d *demo) flip(want string, dur time.Duration, args ...string) phaseResult {
	fmt.Println()
	d.cli(true, args...)
	time.Sleep(settle)
	return d.phase(want, d.marks(), dur-settle)
}

// phase prints a live line every tick for dur and returns what the clients
// saw since from, recording a problem unless it was all want.
func (d *demo) phase(want string, from []harness.Mark, dur time.Duration) phaseResult {
	window := from
	end := time.Now().Add(dur)
	for time.Now().Before(end) {
		time.Sleep(min(tick, time.Until(end)))
		w := d.sum(window)
		window = d.marks()
		total := d.total()
		d.parkIfClosing()
		fmt.Printf("%s  blue %s  green %s  (%d calls, %d failed)\n",
			time.Now().Format("15:04:05"), pct(w.Blue, w.OK()), pct(w.Green, w.OK()), total.Total(), total.Failed)
	}
	n := d.sum(from)
	got := n.Blue
	if want == "green" {
		got = n.Green
	}
	if n.OK() == 0 || got != n.OK() || n.Failed != 0 {
		d.problem = append(d.problem, fmt.Sprintf("want 100%% %s, got blue=%d green=%d other=%d failed=%d", want, n.Blue, n.Green, n.Other, n.Failed))
	}
	return phaseResult{want: want, n: n}
}

func pct(n, of int) string {
	if of == 0 {
		return "   -"
	}
	return fmt.Sprintf("%3d%%", (200*n+of)/(2*of)) // rounded
}

// cli runs the real bg binary against the demo's admin API; show prints the
// command line and its output as a user would see them.
func (d *demo) cli(show bool, args ...string) string {
	if show {
		fmt.Printf("$ %s %s\n", d.bgShown, strings.Join(args, " "))
	}
	start := time.Now()
	// BG_TOKEN emptied so a token in the caller's environment can't interfere.
	out, errOut, code := harness.RunCLIEnv(d.r, d.bgBin, []string{"BG_ADDR=" + d.admin, "BG_TOKEN="}, args...)
	d.parkIfClosing()
	if show {
		fmt.Print(indent(out + errOut))
		fmt.Printf("  (exit %d, %v)\n", code, time.Since(start).Round(time.Millisecond))
	}
	if code != 0 {
		d.r.Fatalf("bg %s: exit %d\n%s%s", strings.Join(args, " "), code, out, errOut)
	}
	return out
}

// parkIfClosing stops the story once a signal's cleanup has begun: what it
// would print or check next is about processes being torn down. The signal
// handler exits the program.
func (d *demo) parkIfClosing() {
	if d.r.Closing() {
		select {}
	}
}

func indent(s string) string {
	s = strings.TrimRight(s, "\n")
	if s == "" {
		return ""
	}
	return "  " + strings.ReplaceAll(s, "\n", "\n  ") + "\n"
}

// checkStatus asserts what `bg status` must say after the abort: blue at
// 100% and every client connected and ACKed.
func (d *demo) checkStatus() {
	var st struct {
		Weights struct{ Blue, Green int }      `json:"weights"`
		Proxies struct{ Connected, Acked int } `json:"proxies"`
	}
	out := d.cli(false, "status", service, "-o", "json")
	if err := json.Unmarshal([]byte(out), &st); err != nil {
		d.r.Fatalf("status -o json: %v\n%s", err, out)
	}
	if st.Weights.Blue != 100 || st.Weights.Green != 0 {
		d.problem = append(d.problem, fmt.Sprintf("status weights blue=%d green=%d, want 100/0", st.Weights.Blue, st.Weights.Green))
	}
	if st.Proxies.Connected < len(d.clients) || st.Proxies.Acked != st.Proxies.Connected {
		d.problem = append(d.problem, fmt.Sprintf("status proxies connected=%d acked=%d, want all %d ACKed", st.Proxies.Connected, st.Proxies.Acked, len(d.clients)))
	}
}

func (d *demo) summary(phases []phaseResult) {
	total := d.total()
	fmt.Println("\n== summary")
	fmt.Printf("calls    %d total (blue %d, green %d), failed %d\n", total.Total(), total.Blue, total.Green, total.Failed)
	for _, e := range total.Errors {
		fmt.Printf("         error: %s\n", e)
	}
	for i, p := range phases {
		n := p.n
		fmt.Printf("phase %d  want %-5s  got blue %d, green %d, failed %d\n", i+1, p.want, n.Blue, n.Green, n.Failed)
	}
	var per []string
	for _, id := range slices.Sorted(maps.Keys(total.ByServer)) {
		per = append(per, fmt.Sprintf("%s %d", id, total.ByServer[id]))
	}
	fmt.Printf("served   %s\n", strings.Join(per, ", "))
	if total.Failed != 0 {
		d.problem = append(d.problem, fmt.Sprintf("%d calls failed", total.Failed))
	}
}

func (d *demo) marks() []harness.Mark {
	m := make([]harness.Mark, len(d.clients))
	for i, c := range d.clients {
		m[i] = c.Mark()
	}
	return m
}

// total counts the clients' calls from their start, warm-up included, so a
// failure before Ready fails the demo too.
func (d *demo) total() harness.Counts { return d.sum(d.started) }

func (d *demo) sum(marks []harness.Mark) harness.Counts {
	total := harness.Counts{ByServer: map[string]int{}}
	for i, c := range d.clients {
		n := c.Since(marks[i])
		total.Blue += n.Blue
		total.Green += n.Green
		total.Other += n.Other
		total.Failed += n.Failed
		for id, k := range n.ByServer {
			total.ByServer[id] += k
		}
		for _, e := range n.Errors {
			if !slices.Contains(total.Errors, e) {
				total.Errors = append(total.Errors, e)
			}
		}
	}
	return total
}
