// Command bg-scale is the scale bench of GitHub issue 11: it starts a real
// Consul dev agent (default limits), registers n services with one blue and
// one green instance each, and then, one after the other, runs `bg serve`
// and a bare go-control-plane server holding the same resources, each with
// the same p simulated proxyless gRPC proxies following k services each. It
// prints a markdown table of bg against the bare server and exits non-zero
// if a proxy did not get its full chains, a switch did not reach every
// subscriber, or a server did not become ready.
//
//	go run ./e2e/cmd/bg-scale -services 1000 -proxies 2000
//
// Run under `flock /tmp/bg-e2e.lock` on a shared machine: it starts Consul
// and bg. The bare server is this binary re-executed with -bare-server, so
// both servers' RSS and CPU are those of a process of their own.
package main

import (
	"flag"
	"fmt"
	"os"
	"time"

	"github.com/bgctl/bg/e2e/harness"
	"github.com/bgctl/bg/e2e/scale"
)

func main() {
	if len(os.Args) > 1 && os.Args[1] == scale.BareFlag {
		os.Exit(scale.BareMain(os.Args[2:]))
	}
	var o scale.Options
	flag.IntVar(&o.Services, "services", 1000, "services registered in Consul and configured in bg (n)")
	flag.IntVar(&o.Proxies, "proxies", 2000, "simulated proxies, one ADS stream each (p)")
	flag.IntVar(&o.PerProxy, "per-proxy", 5, "services each proxy follows (k): proxy i gets services i*k … i*k+k-1 mod n")
	flag.DurationVar(&o.Idle, "idle", 30*time.Second, "idle window for RSS and CPU")
	flag.IntVar(&o.Switches, "switches", 20, "instant switches timed per server (m)")
	flag.IntVar(&o.Conns, "conns", 0, "gRPC connections the proxies' streams share (0: p/64, 1..64)")
	flag.StringVar(&o.PprofDir, "pprof", "", "directory for each server's heap profile, if it serves /debug/pprof")
	flag.Parse()
	if flag.NArg() > 0 {
		fmt.Fprintf(os.Stderr, "bg-scale: unexpected arguments %q\n", flag.Args())
		os.Exit(2)
	}
	self, err := os.Executable()
	if err != nil {
		fmt.Fprintf(os.Stderr, "bg-scale: %v\n", err)
		os.Exit(1)
	}
	o.BareBin = self

	r, err := harness.NewRunner("bg-scale")
	if err != nil {
		fmt.Fprintf(os.Stderr, "bg-scale: %v\n", err)
		os.Exit(1)
	}
	res := scale.Run(r, o)
	fmt.Print(res.Table())
	if len(res.Problems) > 0 {
		r.Errorf("bg-scale: %d correctness problem(s), see above", len(res.Problems))
		r.Exit(1)
	}
	if r.Failed() {
		r.Exit(1)
	}
	r.Exit(0)
}
