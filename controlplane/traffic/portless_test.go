package traffic_test

import (
	"testing"

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
