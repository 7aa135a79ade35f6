package traffic_test

import (
	"context"
	"testing"

	"github.com/bgctl/bg/controlplane/acks"
	"github.com/bgctl/bg/controlplane/model"
	"github.com/bgctl/bg/controlplane/state/memstate"
	"github.com/bgctl/bg/controlplane/traffic"
	"github.com/bgctl/bg/controlplane/xds"
)

// Status says when a service has no port, so no Envoy listener.
func TestStatusNoEnvoyListener(t *testing.T) {
	search := model.Service{Name: "search", Protocol: model.ProtocolHTTP2} // no ListenerPort
	c := traffic.New([]model.Service{webService, search}, "0.0.0.0", memstate.New(), xds.NewServer(quiet, nil), quiet, traffic.NewMetrics(nil))
	for name, want := range map[string]bool{"web": false, "search": true} {
		st, err := c.Status(name)
		if err != nil {
			t.Fatal(err)
		}
		if st.NoEnvoyListener != want {
			t.Errorf("%s: NoEnvoyListener = %v, want %v", name, st.NoEnvoyListener, want)
		}
	}
}

// fixedAcks answers every status with the same cross-replica result.
type fixedAcks struct{ r acks.Result }

func (f fixedAcks) Wait(context.Context, string, uint64) acks.Result   { return f.r }
func (f fixedAcks) Status(context.Context, string, uint64) acks.Result { return f.r }

// Status names the proxies that may lose sessions only for a rolling
// service: a blue-green switch moves whole fleets and has no sessions to
// keep host by host.
func TestStatusSessionsAtRiskOnlyForRolling(t *testing.T) {
	kv := model.Service{Name: "kv", ListenerPort: 10010, Protocol: model.ProtocolHTTP2, Strategy: model.StrategyRolling, Affinity: model.Affinity{Header: "x-session"}}
	c := traffic.New([]model.Service{webService, kv}, "0.0.0.0", memstate.New(), xds.NewServer(quiet, nil), quiet, traffic.NewMetrics(nil))
	js := xds.ProxyInfo{NodeID: "js", Replica: "r2", Sessions: xds.SessionsLost, SessionsWhy: "grpc-js places hosts by address"}
	c.SetAcks(fixedAcks{acks.Result{Subscribed: 3, Acked: 3, Complete: true, NoSessions: []xds.ProxyInfo{js}, NoSessionsUnlisted: 2}})
	for name, want := range map[string]int{"web": 0, "kv": 3} {
		st, err := c.Status(name)
		if err != nil {
			t.Fatal(err)
		}
		if got := len(st.SessionsAtRisk) + st.SessionsAtRiskUnlisted; got != want || (want > 0 && st.SessionsAtRisk[0].NodeID != js.NodeID) {
			t.Errorf("%s (%s): sessions at risk %+v and %d more, want %d in all", name, st.Strategy, st.SessionsAtRisk, st.SessionsAtRiskUnlisted, want)
		}
	}
}
