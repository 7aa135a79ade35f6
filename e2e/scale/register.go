package scale

import (
	"context"
	"fmt"
	"sync"

	"github.com/hashicorp/consul/api"

	"github.com/bgctl/bg/controlplane/model"
)

// registerParallel bounds concurrent registrations: well under Consul's
// default of 200 HTTP connections per client address, and enough to keep a
// single-node raft busy (it batches concurrent applies).
const registerParallel = 16

// Register puts every instance into Consul's catalog. It uses the catalog
// API (PUT /v1/catalog/register), one instance and its passing check per
// call, on external nodes: no agent runs the checks or syncs the nodes
// (anti-entropy only touches the agent's own node), so 2,000 instances cost
// 2,000 raft writes and nothing after. bg reads them through the same
// health API as agent-registered ones.
func Register(ctx context.Context, consulAddr string, insts []Instance) error {
	cfg := api.DefaultConfig()
	cfg.Address, cfg.Scheme = consulAddr, "http"
	cfg.Transport.MaxIdleConnsPerHost = registerParallel // reuse, don't churn, connections
	client, err := api.NewClient(cfg)
	if err != nil {
		return err
	}
	defer cfg.Transport.CloseIdleConnections()
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	work := make(chan Instance)
	var (
		wg       sync.WaitGroup
		once     sync.Once
		firstErr error
	)
	for range registerParallel {
		wg.Go(func() {
			for in := range work {
				if err := registerOne(ctx, client, in); err != nil {
					once.Do(func() { firstErr = err; cancel() })
				}
			}
		})
	}
feed:
	for _, in := range insts {
		select {
		case work <- in:
		case <-ctx.Done():
			break feed
		}
	}
	close(work)
	wg.Wait()
	if firstErr == nil {
		firstErr = ctx.Err()
	}
	return firstErr
}

func registerOne(ctx context.Context, c *api.Client, in Instance) error {
	reg := &api.CatalogRegistration{
		Node:    in.Node,
		Address: in.Address,
		Service: &api.AgentService{
			ID:      in.ID,
			Service: in.Service,
			Tags:    []string{string(in.Color)},
			Meta:    map[string]string{"version": in.Version},
			Address: in.Address,
			Port:    in.Port,
			Weights: api.AgentWeights{Passing: 1, Warning: 1},
		},
		Check: &api.AgentCheck{
			Node:      in.Node,
			CheckID:   "service:" + in.ID,
			Name:      "bg-scale " + in.ID,
			Status:    api.HealthPassing,
			ServiceID: in.ID,
		},
	}
	if _, err := c.Catalog().Register(reg, (&api.WriteOptions{}).WithContext(ctx)); err != nil {
		return fmt.Errorf("register %s: %w", in.ID, err)
	}
	return nil
}

// otherColor is the colour a switch moves to.
func otherColor(c model.Color) model.Color {
	if c == model.Green {
		return model.Blue
	}
	return model.Green
}
