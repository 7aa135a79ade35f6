package scale

import (
	"fmt"
	"slices"
	"strings"
	"time"
)

// Table is the result as a markdown table, bg against the bare server,
// with the run's size, subscribers, notes and problems below it.
func (r Result) Table() string {
	o := r.Options
	var b strings.Builder
	b.WriteString("| | bg | bare go-control-plane | ratio |\n|---|---|---|---|\n")
	row := func(name, bg, bare, ratio string) {
		fmt.Fprintf(&b, "| %s | %s | %s | %s |\n", name, bg, bare, ratio)
	}
	durRow := func(name string, bg, bare time.Duration) {
		row(name, fmtDur(bg), fmtDur(bare), ratio(float64(bg), float64(bare)))
	}
	durRow("time to ready", r.BG.Ready, r.Bare.Ready)
	durRow(fmt.Sprintf("all %d proxies with full chains", o.Proxies), r.BG.Chains, r.Bare.Chains)
	row("idle RSS", fmtBytes(r.BG.IdleRSS), fmtBytes(r.Bare.IdleRSS), ratio(float64(r.BG.IdleRSS), float64(r.Bare.IdleRSS)))
	row("  of which Go heap in use", fmtBytes(r.BG.HeapInuse), fmtBytes(r.Bare.HeapInuse), ratio(float64(r.BG.HeapInuse), float64(r.Bare.HeapInuse)))
	row("  of which free heap not yet returned to the OS", fmtBytes(r.BG.HeapRetained), fmtBytes(r.Bare.HeapRetained), ratio(float64(r.BG.HeapRetained), float64(r.Bare.HeapRetained)))
	row("  of which goroutine stacks", fmtBytes(r.BG.StackInuse), fmtBytes(r.Bare.StackInuse), ratio(float64(r.BG.StackInuse), float64(r.Bare.StackInuse)))
	row("Go heap in use right after a GC", fmtBytes(r.BG.LiveHeap), fmtBytes(r.Bare.LiveHeap), ratio(float64(r.BG.LiveHeap), float64(r.Bare.LiveHeap)))
	if r.BG.LiveObjects > 0 && r.Bare.LiveObjects > 0 {
		row("  of which live objects", fmtBytes(r.BG.LiveObjects), fmtBytes(r.Bare.LiveObjects), ratio(float64(r.BG.LiveObjects), float64(r.Bare.LiveObjects)))
		bgFree, bareFree := r.BG.LiveHeap-r.BG.LiveObjects, r.Bare.LiveHeap-r.Bare.LiveObjects
		row("  of which free slots in spans in use", fmtBytes(bgFree), fmtBytes(bareFree), ratio(float64(bgFree), float64(bareFree)))
	}
	row(fmt.Sprintf("CPU in the %v settle before the idle window", settle), fmtDur(r.BG.SettleCPU), fmtDur(r.Bare.SettleCPU), "—")
	bgCPU, bareCPU := cpuPer30s(r.BG), cpuPer30s(r.Bare)
	row("idle CPU (s per 30 s)", fmtCPU(bgCPU), fmtCPU(bareCPU), ratio(bgCPU, bareCPU))
	row(fmt.Sprintf("switch → all subscribers, median (max) of %d", o.Switches),
		medMax(r.BG.Switches), medMax(r.Bare.Switches), medMaxRatio(r.BG.Switches, r.Bare.Switches))
	if r.BG.StateWrite > 0 {
		row("  of which storing the state in Consul first (mean)", fmtDur(r.BG.StateWrite), "— (stores nothing)", "—")
	}
	row("switch request answered, median (max)",
		medMax(r.BG.SwitchCalls), medMax(r.Bare.SwitchCalls), medMaxRatio(r.BG.SwitchCalls, r.Bare.SwitchCalls))
	row("goroutines", fmtCount(r.BG.Goroutines), fmtCount(r.Bare.Goroutines), ratio(float64(r.BG.Goroutines), float64(r.Bare.Goroutines)))
	consul := fmtCount(r.BG.ConsulConns)
	if r.BG.ConsulConnsIdle >= 0 {
		consul += fmt.Sprintf(" (idle %d)", r.BG.ConsulConnsIdle)
	}
	row("Consul connections, max over the run", consul, "— (no Consul)", "—")

	fmt.Fprintf(&b, "\nn=%d services (2 instances each, registered in %s), p=%d proxies × k=%d services on %d shared gRPC connections, idle window %s, %d switches.\n",
		o.Services, fmtDur(r.Registration), o.Proxies, o.PerProxy, o.Conns, o.Idle, o.Switches)
	if len(r.Subscribers) > 0 {
		fmt.Fprintf(&b, "Subscribers per switched service: %d–%d.\n", slices.Min(r.Subscribers), slices.Max(r.Subscribers))
	}
	b.WriteString("Ratio is bg / bare. CPU is utime+stime from /proc (10 ms resolution); RSS is VmRSS at the end of the idle window.\n")
	if r.BG.Releases >= 0 {
		fmt.Fprintf(&b, "bg returned a burst's memory to the OS %d time(s) by the end of the idle window (bg_memory_releases_total: one collection once xDS was quiet for 1 s; in the settle, its CPU is in the settle row). The bare server does not.\n", r.BG.Releases)
	}
	if r.BG.Heap != "" || r.Bare.Heap != "" {
		fmt.Fprintf(&b, "Heap profiles: bg %s; bare %s.\n", orDash(r.BG.Heap), orDash(r.Bare.Heap))
	}
	for _, n := range r.Notes {
		fmt.Fprintf(&b, "Note: %s\n", n)
	}
	for _, p := range r.Problems {
		fmt.Fprintf(&b, "PROBLEM: %s\n", p)
	}
	return b.String()
}

func cpuPer30s(m Measurements) float64 {
	if m.Window <= 0 {
		return -1
	}
	return m.IdleCPU.Seconds() * 30 / m.Window.Seconds()
}

func fmtDur(d time.Duration) string {
	switch {
	case d <= 0:
		return "—"
	case d < time.Millisecond:
		return fmt.Sprintf("%d µs", d.Microseconds())
	case d < time.Second:
		return fmt.Sprintf("%.1f ms", float64(d)/float64(time.Millisecond))
	case d < time.Minute:
		return fmt.Sprintf("%.2f s", d.Seconds())
	}
	return fmt.Sprintf("%.1f s", d.Seconds())
}

func fmtBytes(n int64) string {
	if n <= 0 {
		return "—"
	}
	return mib(n)
}

func fmtCPU(s float64) string {
	if s < 0 {
		return "—"
	}
	return fmt.Sprintf("%.2f", s)
}

func fmtCount(n int) string {
	if n < 0 {
		return "—"
	}
	return fmt.Sprint(n)
}

func orDash(s string) string {
	if s == "" {
		return "—"
	}
	return s
}

// ratio is bg / bare, "—" when either is unknown or bare is 0.
func ratio(bg, bare float64) string {
	if bg < 0 || bare <= 0 {
		return "—"
	}
	return fmt.Sprintf("%.1f×", bg/bare)
}

func medMax(ds []time.Duration) string {
	if len(ds) == 0 {
		return "—"
	}
	return fmt.Sprintf("%s (%s)", fmtDur(median(ds)), fmtDur(slices.Max(ds)))
}

func medMaxRatio(bg, bare []time.Duration) string {
	if len(bg) == 0 || len(bare) == 0 {
		return "—"
	}
	return fmt.Sprintf("%s (%s)", ratio(float64(median(bg)), float64(median(bare))), ratio(float64(slices.Max(bg)), float64(slices.Max(bare))))
}
