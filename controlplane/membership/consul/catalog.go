package consul

import (
	"context"
	"time"

	"github.com/hashicorp/consul/api"
)

// Catalog is what the watcher needs from Consul: two catalog-wide blocking
// queries and a plain read of one service. Tests fake it; APICatalog is the
// real one.
type Catalog interface {
	// Checks is a blocking query on /v1/health/state/any: every check of
	// every node and service instance.
	Checks(ctx context.Context, index uint64, wait time.Duration) ([]*api.HealthCheck, uint64, error)
	// Services is a blocking query on /v1/catalog/services: every service
	// name with the union of its instances' tags.
	Services(ctx context.Context, index uint64, wait time.Duration) (map[string][]string, uint64, error)
	// Instances reads every instance of one service with its checks,
	// passing or not (/v1/health/service/NAME).
	Instances(ctx context.Context, name string) ([]*api.ServiceEntry, error)
}

// APICatalog reads Consul's HTTP API. Watch carries the two blocking
// queries and Read the per-service reads, so each can have its own,
// bounded, pool of connections.
type APICatalog struct {
	Watch, Read *api.Client
}

// Checks implements Catalog with a stale blocking query: any server may
// answer, and it works while the cluster has no leader.
func (c APICatalog) Checks(ctx context.Context, index uint64, wait time.Duration) ([]*api.HealthCheck, uint64, error) {
	checks, meta, err := c.Watch.Health().State(api.HealthAny, blocking(ctx, index, wait))
	if err != nil {
		return nil, 0, err
	}
	return checks, meta.LastIndex, nil
}

// Services implements Catalog with a stale blocking query.
func (c APICatalog) Services(ctx context.Context, index uint64, wait time.Duration) (map[string][]string, uint64, error) {
	services, meta, err := c.Watch.Catalog().Services(blocking(ctx, index, wait))
	if err != nil {
		return nil, 0, err
	}
	return services, meta.LastIndex, nil
}

// Instances implements Catalog. It reads from the Consul leader first, so
// the answer is never older than the blocking query that asked for it (a
// stale server may lag the one that answered the watch). Without a leader
// it falls back to a stale read, which keeps membership moving through a
// Consul election.
func (c APICatalog) Instances(ctx context.Context, name string) ([]*api.ServiceEntry, error) {
	entries, _, err := c.Read.Health().Service(name, "", false, (&api.QueryOptions{}).WithContext(ctx))
	if err == nil || ctx.Err() != nil {
		return entries, err
	}
	entries, _, staleErr := c.Read.Health().Service(name, "", false, (&api.QueryOptions{AllowStale: true}).WithContext(ctx))
	if staleErr != nil {
		return nil, err
	}
	return entries, nil
}

func blocking(ctx context.Context, index uint64, wait time.Duration) *api.QueryOptions {
	return (&api.QueryOptions{WaitIndex: index, WaitTime: wait, AllowStale: true}).WithContext(ctx)
}
