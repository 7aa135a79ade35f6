// Command bg-wakeups measures what one wakeup of an otherwise idle Go
// process costs in CPU on this machine, the figure behind bg's idle-CPU
// design (docs/leader.md): it starts a Consul dev agent, then, in this
// process, wakes n times p apart and reports utime+stime per wakeup for
// a timer alone and for a timer plus one TTL check update to the agent
// (what bg's leader heartbeat does).
//
//	go run ./e2e/cmd/bg-wakeups
package main

import (
	"flag"
	"fmt"
	"os"
	"syscall"
	"time"

	"github.com/hashicorp/consul/api"

	"github.com/bgctl/bg/e2e/harness"
)

func cpu() time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

func main() {
	n := flag.Int("n", 60, "wakeups per kind")
	every := flag.Duration("every", 500*time.Millisecond, "time between wakeups")
	flag.Parse()
	r, err := harness.NewRunner("bg-wakeups")
	if err != nil {
		fmt.Fprintf(os.Stderr, "bg-wakeups: %v\n", err)
		os.Exit(1)
	}
	c := harness.StartConsul(r).Client()
	reg := &api.AgentServiceRegistration{ID: "bg-wakeups", Name: "bg-wakeups",
		Check: &api.AgentServiceCheck{CheckID: "bg-wakeups-alive", TTL: "1m"}}
	if err := c.Agent().ServiceRegister(reg); err != nil {
		r.Errorf("register: %v", err)
		r.Exit(1)
	}
	kinds := []struct {
		name string
		do   func() error
	}{
		{"timer alone", func() error { return nil }},
		{"timer + TTL check update", func() error {
			return c.Agent().UpdateTTL("bg-wakeups-alive", "", api.HealthPassing)
		}},
	}
	fmt.Printf("| wakeup (%d, %v apart) | CPU per wakeup |\n|---|---|\n", *n, *every)
	for _, k := range kinds {
		for i := 0; i < 3; i++ { // warm the connection
			if err := k.do(); err != nil {
				r.Errorf("%s: %v", k.name, err)
				r.Exit(1)
			}
		}
		time.Sleep(*every)
		t := time.NewTicker(*every)
		c0 := cpu()
		for i := 0; i < *n; i++ {
			<-t.C
			if err := k.do(); err != nil {
				r.Errorf("%s: %v", k.name, err)
				r.Exit(1)
			}
		}
		t.Stop()
		fmt.Printf("| %s | %.2f ms |\n", k.name, float64(cpu()-c0)/float64(*n)/1e6)
	}
	r.Exit(0)
}
