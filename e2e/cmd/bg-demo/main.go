// Command bg-demo runs bg's main job on loopback with the real pieces of
// the e2e harness: Consul, a blue (v1) and a green (v2) gRPC fleet, a real
// Prometheus scraping both fleets every second, `bg serve` and proxyless
// grpc-go xDS clients. It prints the traffic split live and runs the real bg
// CLI through three acts:
//
//  1. a progressive switch to green, judged live, during which green starts
//     failing a share of its calls: bg rolls it back on its own, and the
//     demo measures the time from error onset to all traffic on blue;
//  2. a healthy green promoted through every step;
//  3. an instant switch and an abort.
//
// It exits non-zero if any act does not behave (the failing green promoted,
// the healthy one rolled back, a call failing outside the failure window,
// traffic not where bg says), so it doubles as a smoke test.
// scripts/demo.sh builds and runs it.
package main

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"maps"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	apiv1 "github.com/bgctl/bg/controlplane/api/v1"
	"github.com/bgctl/bg/controlplane/model"
	"github.com/bgctl/bg/e2e/harness"
)

const (
	service = "demo"
	tick    = 500 * time.Millisecond
	// settle is how long after a command returns calls may still be on the
	// old colour: the command waits for every proxy's ACK, so this only
	// covers calls already picked when the ACK went out.
	settle = 200 * time.Millisecond

	// The demo's analysis: the judge and its defaults (confidence 0.99,
	// margin 0.1, min_requests 200 per fleet and step) are the product's;
	// only the clock is fast. Prometheus scrapes every 1 s, bg reads it
	// every interval. insufficient_budget bounds a box too slow to reach
	// min_requests, so the demo fails instead of hanging.
	interval    = time.Second
	bake        = 5 * time.Second
	minRequests = 200
	firstStep   = 10
	analysis    = `
interval: 1s
bake: 5s
steps: [10, 50, 100]
min_requests: 200
insufficient_budget: 20s
unavailable_budget: 5s
`
	// injected is the text of a call failed on purpose by Backend.SetFailRatio.
	injected = "injected failure"
	// maxRollback bounds error onset → all on blue before the demo calls
	// it a failure (measured 2–3 s; see the README).
	maxRollback = 10 * time.Second
)

func main() {
	bgFlag := flag.String("bg", "bin/bg", "bg binary (relative paths are taken from the repo root)")
	clients := flag.Int("clients", 3, "proxyless xDS clients")
	workers := flag.Int("workers", 2, "concurrent callers per client")
	failRatio := flag.Float64("fail-ratio", 0.2, "share of green's calls failed on purpose in act 1 (0..1)")
	flag.Parse()
	if *failRatio <= 0 || *failRatio > 1 {
		fmt.Fprintln(os.Stderr, "bg-demo: --fail-ratio must be in (0, 1]")
		os.Exit(2)
	}

	r, err := harness.NewRunner("bg-demo")
	if err != nil {
		fmt.Fprintf(os.Stderr, "bg-demo: %v\n", err)
		os.Exit(1)
	}
	d := &demo{r: r, bgShown: *bgFlag, failRatio: *failRatio}
	d.run(*clients, *workers)
}

type demo struct {
	r         *harness.Runner
	bgShown   string // as typed, for the printed commands
	bgBin     string
	admin     string
	failRatio float64
	green     []*harness.Backend
	clients   []*harness.Traffic
	started   []harness.Mark // taken as each client started
	problem   []string       // expectations that did not hold

	// The failure window of act 1: failures injected from onset; the
	// clients' last call not served by blue started at allBlue.
	onset, allBlue time.Time

	out sync.Mutex // one line at a time from the CLI and the split ticker
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

	fmt.Printf("== starting: Consul, 2 blue (v1) + 2 green (v2) backends, Prometheus, bg serve, %d xDS clients\n", nClients)
	t0 := time.Now()
	consul := harness.StartConsul(r)
	fmt.Printf("   consul      http %s  (ready in %v)\n", consul.HTTPAddr(), time.Since(t0).Round(100*time.Millisecond))

	var targets []string
	for _, f := range []struct{ color, version string }{{"blue", "v1"}, {"green", "v2"}} {
		for i := 1; i <= 2; i++ {
			id := fmt.Sprintf("%s-%s-%d", service, f.color, i)
			b := harness.StartBackend(r, harness.BackendOptions{Service: service, Color: f.color, ID: id, Version: f.version})
			if err := b.Register(consul.Client()); err != nil {
				r.Fatalf("register %s: %v", id, err)
			}
			if f.color == "green" {
				d.green = append(d.green, b)
			}
			targets = append(targets, b.MetricsAddr())
			fmt.Printf("   backend     %-13s %s  tag %-5s version %s  metrics %s\n", id, b.Addr(), f.color, f.version, b.MetricsAddr())
		}
	}

	t1 := time.Now()
	prom := harness.StartPrometheus(r, targets)
	prom.WaitTargetsUp(30 * time.Second)
	fmt.Printf("   prometheus  %s  scraping the 4 backends every 1s  (all up in %v)\n", prom.URL(), time.Since(t1).Round(100*time.Millisecond))

	xdsAddr := fmt.Sprintf("127.0.0.1:%d", harness.FreePort(r))
	d.admin = fmt.Sprintf("127.0.0.1:%d", harness.FreePort(r))
	// No admin token: bg allows that on a loopback listener, and it keeps the
	// printed commands copy-pasteable.
	cfgPath := harness.WriteBGConfig(r, harness.BGConfig{
		ConsulAddr: consul.HTTPAddr(), XDSAddr: xdsAddr, AdminAddr: d.admin, Service: service,
		PrometheusURL: prom.URL(), Analysis: analysis,
	})
	harness.StartBG(r, harness.BGOptions{Bin: d.bgBin, Config: cfgPath, AdminAddr: d.admin})
	fmt.Printf("   bg serve    xds %s  admin %s  (config %s)\n", xdsAddr, d.admin, cfgPath)
	fmt.Printf("               judged on bg_demo_requests_total / bg_demo_errors_total per colour: steps [10 50 100], bake %s, an analysis every %s,\n", bake, interval)
	fmt.Printf("               min_requests %d per fleet and step, confidence 0.99, margin 0.1\n", minRequests)

	for i := range nClients {
		c := harness.StartTraffic(r, harness.TrafficOptions{XDSAddr: xdsAddr, NodeID: fmt.Sprintf("demo-client-%d", i+1), Service: service, Workers: workers})
		d.clients = append(d.clients, c)
		d.started = append(d.started, c.Mark())
		c.Ready(r, 30*time.Second)
	}
	fmt.Printf("   clients     %d × xds:///%s, %d callers each  (all up %v after start)\n", nClients, service, workers, time.Since(t0).Round(100*time.Millisecond))
	fmt.Printf("   meanwhile, from another shell:  BG_ADDR=%s %s status %s\n", d.admin, d.bgShown, service)

	fmt.Println("\n== all traffic on blue")
	blue1 := d.phase("blue", d.marks(), 3*time.Second)
	d.checkRate(blue1)

	rolledBack := d.actFailing()
	promoted := d.actHealthy()

	fmt.Println("\n== act 3: an instant switch back to blue, and an abort")
	blue3 := d.flip("blue", 4*time.Second, "switch", service, "--to", "blue", "--instant")
	green3 := d.flip("green", 4*time.Second, "abort", service)

	fmt.Println()
	d.cli(true, "status", service)
	d.checkStatus("green")

	d.summary([]phaseResult{blue1, rolledBack, promoted, blue3, green3})

	if len(d.problem) > 0 {
		// Failed makes the harness print its processes' log tails and keeps
		// the logs.
		r.Errorf("%s", strings.Join(d.problem, "; "))
	}
	fmt.Print("\n== cleaning up ... ")
	start := time.Now()
	r.Close()
	fmt.Printf("done (%v, %v in all)\n", time.Since(start).Round(time.Millisecond), time.Since(t0).Round(time.Second))
	if r.Failed() {
		fmt.Println("FAIL: see the errors above")
		os.Exit(1)
	}
	fmt.Println("PASS: the failing green was rolled back on its own, the healthy green promoted, and every other call succeeded")
}

// checkRate says whether the clients' rate lets the first step reach
// min_requests within its bake, as the judge needs (docs/judge.md).
func (d *demo) checkRate(p phaseResult) {
	rate := float64(p.n.Total()) / p.dur.Seconds()
	first := rate * firstStep / 100 * bake.Seconds()
	fmt.Printf("   traffic: %.0f calls/s; at the %d%% step green gets ≈ %.0f calls per %s bake (min_requests %d)\n",
		rate, firstStep, first, bake, minRequests)
	if first < minRequests {
		fmt.Printf("   note: below min_requests; each step will hold until it has %d calls per fleet\n", minRequests)
	}
}

// actFailing runs a progressive switch to green and turns green's failures
// on once the 50% step is applied: the judge fails it, bg rolls back, and
// the clients show when every call was back on blue.
func (d *demo) actFailing() phaseResult {
	fmt.Printf("\n== act 1: progressive switch to green; at the 50%% step green starts failing %s of its calls\n", percent(d.failRatio))
	var at50 time.Time // when the status first showed the 50% step
	onStatus := func(st apiv1.Status) {
		if !d.onset.IsZero() {
			return
		}
		if at50.IsZero() {
			if st.Switch != nil && st.Switch.Step == 1 && st.Weights.Green == 50 {
				at50 = time.Now()
			}
			return
		}
		if time.Since(at50) < time.Second {
			return // a moment of healthy 50/50 first
		}
		d.onset = time.Now()
		for _, b := range d.green {
			b.SetFailRatio(d.failRatio)
		}
		d.say("%s  >> green now fails %s of its calls (error onset)\n", clock(d.onset), percent(d.failRatio))
	}
	from := d.marks()
	code, st, fresh := d.progressive(onStatus, "switch", service, "--to", "green", "--wait")
	for _, b := range d.green {
		b.SetFailRatio(0)
	}
	// Until measured below: failures are expected until they were turned off.
	d.allBlue = time.Now()
	if fresh {
		d.verdicts(st)
	}

	sw := st.Switch
	if !fresh {
		sw = nil // refused: not this act's switch
	}
	switch {
	case d.onset.IsZero():
		d.problem = append(d.problem, "act 1: the switch never reached its 50% step, so no failure was injected")
	case code == 0 || sw != nil && sw.Phase == model.RolloutPromoted:
		d.problem = append(d.problem, "act 1: the failing green was PROMOTED")
	case code != 10 || sw == nil || sw.Phase != model.RolloutRolledBack:
		d.problem = append(d.problem, fmt.Sprintf("act 1: want a rollback (exit 10), got exit %d, %s", code, reasonOf(sw)))
	}
	if sw != nil && sw.Phase == model.RolloutRolledBack {
		if sw.Cause != model.CauseAnalysisFailed {
			d.problem = append(d.problem, fmt.Sprintf("act 1: rolled back for %q, want %q", sw.Cause, model.CauseAnalysisFailed))
		}
		if !slices.ContainsFunc(sw.Verdicts, func(v model.StepVerdict) bool { return v.Percent == firstStep && v.Outcome == "pass" }) {
			d.problem = append(d.problem, fmt.Sprintf("act 1: no passing verdict at %d%% before the failure", firstStep))
		}
	}

	// Show blue for a while, then find the moment after which every call
	// the clients made was served by blue.
	time.Sleep(settle)
	res := d.phase("blue", d.marks(), 2*time.Second)
	res.want = "blue (rolled back)"
	if !d.onset.IsZero() && sw != nil && sw.Phase == model.RolloutRolledBack {
		var last time.Time // start of the last call not served by blue
		for i, c := range d.clients {
			for _, call := range c.Calls(from[i]) {
				if call.Color != "blue" && !call.Start.Before(d.onset) && call.Start.After(last) {
					last = call.Start
				}
			}
		}
		if last.IsZero() {
			last = d.onset
		}
		d.allBlue = last
		took := d.allBlue.Sub(d.onset)
		fmt.Printf("\n   measured from error onset (%s):\n", clock(d.onset))
		if sw != nil && !sw.DetectedAt.IsZero() {
			fmt.Printf("   %+8.2fs  bg's analysis fails green            (switch detected_at %s)\n", sw.DetectedAt.Sub(d.onset).Seconds(), clock(sw.DetectedAt))
		}
		if sw != nil && !sw.ConfirmedAt.IsZero() {
			fmt.Printf("   %+8.2fs  every proxy has ACKed 100%% blue      (switch confirmed_at %s)\n", sw.ConfirmedAt.Sub(d.onset).Seconds(), clock(sw.ConfirmedAt))
		}
		fmt.Printf("   %+8.2fs  all traffic on blue, as the clients saw it (last call not served by blue started %s)\n", took.Seconds(), clock(d.allBlue))
		if took > maxRollback {
			d.problem = append(d.problem, fmt.Sprintf("act 1: error onset → all on blue took %v, bound %v", took.Round(10*time.Millisecond), maxRollback))
		}
	}
	return res
}

// actHealthy runs a progressive switch to a healthy green: every step
// passes and green is promoted.
func (d *demo) actHealthy() phaseResult {
	fmt.Println("\n== act 2: progressive switch to a healthy green (failures off)")
	code, st, fresh := d.progressive(nil, "switch", service, "--to", "green", "--wait")
	sw := st.Switch
	if fresh {
		d.verdicts(st)
	} else {
		sw = nil // not this act's switch
	}
	switch {
	case code == 10 || sw != nil && sw.Phase == model.RolloutRolledBack:
		d.problem = append(d.problem, fmt.Sprintf("act 2: the healthy green was ROLLED BACK (%s)", reasonOf(sw)))
	case code != 0 || sw == nil || sw.Phase != model.RolloutPromoted || st.Weights.Green != 100:
		d.problem = append(d.problem, fmt.Sprintf("act 2: want promoted (exit 0), got exit %d, weights %+v, switch %s", code, st.Weights, reasonOf(sw)))
	default:
		for _, p := range []int{10, 50} {
			if !slices.ContainsFunc(sw.Verdicts, func(v model.StepVerdict) bool { return v.Percent == p && v.Outcome == "pass" }) {
				d.problem = append(d.problem, fmt.Sprintf("act 2: no passing verdict at %d%%", p))
			}
		}
	}
	time.Sleep(settle)
	res := d.phase("green", d.marks(), 2*time.Second)
	res.want = "green (promoted)"
	return res
}

func reasonOf(sw *model.Rollout) string {
	if sw == nil {
		return "no switch"
	}
	return fmt.Sprintf("%s: %s", sw.Phase, sw.Reason)
}

// progressive runs a `bg switch --wait` and streams its lines as they come,
// with the clients' split every second in between. onStatus, if set, sees
// bg's status as the switch runs. It returns the CLI's exit code and the
// final status, and whether its switch is a new one (false when the
// switch was refused).
func (d *demo) progressive(onStatus func(apiv1.Status), args ...string) (int, apiv1.Status, bool) {
	prev := ""
	if st, ok := d.status(); ok && st.Switch != nil {
		prev = st.Switch.ID
	}
	fmt.Printf("$ %s %s\n", d.bgShown, strings.Join(args, " "))
	ctx, cancel := context.WithTimeout(context.Background(), 90*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, d.bgBin, append(args, "--wait-timeout", "80s")...)
	cmd.Env = append(os.Environ(), "BG_ADDR="+d.admin, "BG_TOKEN=")
	pr, pw := io.Pipe()
	cmd.Stdout, cmd.Stderr = pw, pw
	start := time.Now()
	if err := cmd.Start(); err != nil {
		d.r.Fatalf("bg %s: %v", strings.Join(args, " "), err)
	}
	d.r.Cleanup(func() { cancel() })
	lines := make(chan struct{})
	go func() {
		defer close(lines)
		sc := bufio.NewScanner(pr)
		for sc.Scan() {
			d.say("  %s\n", sc.Text())
		}
	}()
	exited := make(chan error, 1)
	go func() {
		err := cmd.Wait()
		pw.Close()
		exited <- err
	}()

	window := d.marks()
	next := time.Now().Add(time.Second)
	var err error
loop:
	for {
		select {
		case err = <-exited:
			break loop
		case <-time.After(100 * time.Millisecond):
		}
		d.parkIfClosing()
		if onStatus != nil {
			if st, ok := d.status(); ok {
				onStatus(st)
			}
		}
		if time.Now().After(next) {
			w := d.sum(window)
			window = d.marks()
			d.splitLine(w, time.Second)
			next = next.Add(time.Second)
		}
	}
	<-lines
	d.parkIfClosing()
	code := 0
	var ee *exec.ExitError
	if errors.As(err, &ee) {
		code = ee.ExitCode()
	} else if err != nil {
		d.r.Fatalf("bg %s: %v", strings.Join(args, " "), err)
	}
	fmt.Printf("  (exit %d, %v)\n", code, time.Since(start).Round(time.Millisecond))
	st, ok := d.status()
	if !ok {
		d.r.Fatalf("bg status after %s: no answer", strings.Join(args, " "))
	}
	return code, st, st.Switch != nil && st.Switch.ID != prev
}

// verdicts prints the switch's record: one line per step analysed.
func (d *demo) verdicts(st apiv1.Status) {
	sw := st.Switch
	if sw == nil {
		return
	}
	fmt.Printf("   verdicts of %s (%s → %s):\n", sw.ID, sw.From, sw.To)
	for _, v := range sw.Verdicts {
		fmt.Printf("     %3d%%  %-5s after %d analyses  candidate error ratio %.4f, baseline %.4f  %s\n",
			v.Percent, v.Outcome, v.Analyses, v.CandidateRatio, v.BaselineRatio, v.Reason)
	}
	end := sw.EndedAt
	if end.IsZero() {
		end = time.Now()
	}
	fmt.Printf("   ended %s after %v", sw.Phase, end.Sub(sw.StartedAt).Round(100*time.Millisecond))
	if sw.Cause != "" {
		fmt.Printf(" (cause %s)", sw.Cause)
	}
	fmt.Println()
}

// status reads bg's status of the service from the admin API.
func (d *demo) status() (apiv1.Status, bool) {
	var st apiv1.Status
	c := http.Client{Timeout: 2 * time.Second}
	resp, err := c.Get("http://" + d.admin + "/v1/services/" + service)
	if err != nil {
		return st, false
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return st, false
	}
	if err := json.NewDecoder(resp.Body).Decode(&st); err != nil {
		return st, false
	}
	return st, true
}

func (d *demo) say(format string, args ...any) {
	d.out.Lock()
	defer d.out.Unlock()
	fmt.Printf(format, args...)
}

// percent formats a ratio: 0.2 → "20%", 0.0001 → "0.01%".
func percent(r float64) string { return strconv.FormatFloat(100*r, 'g', 3, 64) + "%" }

func clock(t time.Time) string { return t.Format("15:04:05.000") }

// splitLine prints what the clients saw over the last window.
func (d *demo) splitLine(w harness.Counts, window time.Duration) {
	total := d.total()
	d.say("%s  blue %s  green %s  %5.0f calls/s, %4d failed  (%d calls, %d failed in all)\n",
		time.Now().Format("15:04:05"), pct(w.Blue, w.OK()), pct(w.Green, w.OK()),
		float64(w.Total())/window.Seconds(), w.Failed, total.Total(), total.Failed)
}

type phaseResult struct {
	want string
	n    harness.Counts // calls started once the phase had settled
	dur  time.Duration
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
	start := time.Now()
	end := start.Add(dur)
	for time.Now().Before(end) {
		w0 := time.Now()
		time.Sleep(min(tick, time.Until(end)))
		w := d.sum(window)
		window = d.marks()
		d.parkIfClosing()
		d.splitLine(w, time.Since(w0))
	}
	n := d.sum(from)
	got := n.Blue
	if want == "green" {
		got = n.Green
	}
	if n.OK() == 0 || got != n.OK() || n.Failed != 0 {
		d.problem = append(d.problem, fmt.Sprintf("want 100%% %s, got blue=%d green=%d other=%d failed=%d", want, n.Blue, n.Green, n.Other, n.Failed))
	}
	return phaseResult{want: want, n: n, dur: time.Since(start)}
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

// checkStatus asserts what `bg status` must say at the end: want at 100%
// and every client connected and ACKed.
func (d *demo) checkStatus(want string) {
	var st struct {
		Weights struct{ Blue, Green int }      `json:"weights"`
		Proxies struct{ Connected, Acked int } `json:"proxies"`
	}
	out := d.cli(false, "status", service, "-o", "json")
	if err := json.Unmarshal([]byte(out), &st); err != nil {
		d.r.Fatalf("status -o json: %v\n%s", err, out)
	}
	if got := map[string]int{"blue": st.Weights.Blue, "green": st.Weights.Green}[want]; got != 100 {
		d.problem = append(d.problem, fmt.Sprintf("status weights blue=%d green=%d, want 100%% %s", st.Weights.Blue, st.Weights.Green, want))
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
		fmt.Printf("check %d  want %-18s  got blue %d, green %d, failed %d\n", i+1, p.want, n.Blue, n.Green, n.Failed)
	}
	var per []string
	for _, id := range slices.Sorted(maps.Keys(total.ByServer)) {
		per = append(per, fmt.Sprintf("%s %d", id, total.ByServer[id]))
	}
	fmt.Printf("served   %s\n", strings.Join(per, ", "))

	// Every failure must be one injected into green between error onset
	// and the moment all traffic was back on blue.
	expected, other := 0, 0
	var firstOther string
	for i, c := range d.clients {
		for _, call := range c.Calls(d.started[i]) {
			if call.Err == "" {
				continue
			}
			// A call in flight at the onset may be failed too: it is judged
			// by when it ended.
			if strings.Contains(call.Err, injected) && !d.onset.IsZero() && !call.End.Before(d.onset) && !call.Start.After(d.allBlue) {
				expected++
				continue
			}
			other++
			if firstOther == "" {
				firstOther = fmt.Sprintf("%s at %s", call.Err, clock(call.Start))
			}
		}
	}
	fmt.Printf("failed   %d injected into green between error onset and all-on-blue, %d otherwise\n", expected, other)
	if other != 0 {
		d.problem = append(d.problem, fmt.Sprintf("%d calls failed outside the failure window (first: %s)", other, firstOther))
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
