package consulkv

import (
	"context"
	"testing"
	"time"

	"github.com/hashicorp/consul/api"

	"github.com/bgctl/bg/controlplane/model"
	"github.com/bgctl/bg/e2e/harness"
)

// BenchmarkSaveAgainstConsul times what a switch stores before it pushes
// (issue 11's "switch → all subscribers"), on a real Consul server with a
// data dir, as users run it: Save (one transaction: the intent check, the
// check-and-set of the state and the history entry) against a plain
// one-key PUT on the same server. Both wait for Consul's raft commit, which
// writes its log to disk before answering; that commit, not bg, is the
// cost (README, "At 1,000 services on one Consul agent").
//
//	go test -run '^$' -bench SaveAgainstConsul ./controlplane/state/consulkv/
func BenchmarkSaveAgainstConsul(b *testing.B) {
	consul := harness.StartConsul(b)
	ctx := context.Background()
	s := New(consul.Client(), "bench/")
	t := model.Traffic{Stable: model.Blue, Phase: model.PhaseStable, Generation: 1}
	idx, err := s.Save(ctx, "web", t, 0, model.HistoryEntry{})
	if err != nil {
		b.Fatal(err)
	}
	save := func() error {
		t.Generation++
		t.Stable = t.Stable.Other()
		t.GreenPercent = map[model.Color]int{model.Blue: 0, model.Green: 100}[t.Stable]
		idx, err = s.Save(ctx, "web", t, idx, model.HistoryEntry{})
		return err
	}
	kv := consul.Client().KV()
	put := func() error {
		_, err := kv.Put(&api.KVPair{Key: "bench/plain", Value: []byte("x")}, nil)
		return err
	}
	for _, c := range []struct {
		name string
		op   func() error
	}{{"Save", save}, {"plain PUT", put}} {
		b.Run(c.name+"/back to back", func(b *testing.B) {
			for b.Loop() {
				if err := c.op(); err != nil {
					b.Fatal(err)
				}
			}
		})
		// A switch's write comes alone, after an idle spell: the process
		// and the socket are cold, as in the scale bench.
		b.Run(c.name+"/after 20ms idle", func(b *testing.B) {
			for b.Loop() {
				b.StopTimer()
				time.Sleep(20 * time.Millisecond)
				b.StartTimer()
				if err := c.op(); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}
