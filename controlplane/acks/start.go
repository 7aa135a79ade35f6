package acks

import (
	"context"
	"errors"
	"log/slog"
	"strings"

	"github.com/hashicorp/consul/api"

	"github.com/bgctl/bg/controlplane/xds"
)

// Start runs this replica's Publisher for services until ctx ends and
// returns the Aggregator the leader answers with. It does not wait for
// Consul: the publisher retries in the background. After cancelling ctx,
// wait on the Aggregator's Stopped (bounded) so a clean shutdown removes
// this replica's reports at once instead of after its session's TTL.
// watch carries the Aggregator's one blocking query and client everything
// else (they may be the same client). checkID, if set, is the replica's own
// Consul check that its report session is bound to (PublisherOptions.CheckID).
func Start(ctx context.Context, client, watch *api.Client, prefix, replica, checkID string, srv *xds.Server, services []string, rolling func(service string) bool, log *slog.Logger) (*Aggregator, error) {
	if replica == "" || strings.Contains(replica, "/") {
		return nil, errors.New("acks: the replica id must be non-empty and contain no '/'")
	}
	if prefix != "" && !strings.HasSuffix(prefix, "/") {
		return nil, errors.New("acks: the KV prefix must end in '/'")
	}
	log = log.With("component", "acks")
	pub := NewPublisher(client.KV(), client.Txn(), client.Session(), srv, PublisherOptions{
		Prefix: prefix, Replica: replica, Services: append([]string(nil), services...), CheckID: checkID, Rolling: rolling,
	}, log)
	agg := NewAggregator(client.KV(), prefix, replica, srv, log)
	agg.rolling = rolling
	agg.watchKV = watch.KV()
	agg.stopped = make(chan struct{})
	agg.pub = pub
	go func() {
		defer close(agg.stopped)
		pub.Run(ctx)
	}()
	return agg, nil
}

// SetServices replaces the services this replica reports ACKs for (a
// config reload added or retired some).
func (a *Aggregator) SetServices(services []string) {
	if a.pub != nil {
		a.pub.SetServices(services)
	}
}
