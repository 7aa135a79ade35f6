package e2e

import (
	"fmt"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/hashicorp/consul/api"

	"github.com/bgctl/bg/e2e/harness"
)

// A corrupt stored state is reported and never replaced by a default: bg
// serves no xDS until the state is valid, then serves exactly that state.
func TestCorruptStateIsNeverServed(t *testing.T) {
	consul := harness.StartConsul(t)
	for _, color := range []string{"blue", "green"} {
		b := harness.StartBackend(t, harness.BackendOptions{Service: service, Color: color, ID: "web-" + color + "-1", Version: "v1"})
		if err := b.Register(consul.Client()); err != nil {
			t.Fatal(err)
		}
	}
	kv := consul.Client().KV()
	key := "bg/services/web/traffic"
	corrupt := []byte(`{"stable":"purple","green_percent":0,"phase":"stable","generation":3}`)
	if _, err := kv.Put(&api.KVPair{Key: key, Value: corrupt}, nil); err != nil {
		t.Fatal(err)
	}

	xdsAddr := fmt.Sprintf("127.0.0.1:%d", harness.FreePort(t))
	admin := fmt.Sprintf("127.0.0.1:%d", harness.FreePort(t))
	cfg := harness.WriteBGConfig(t, harness.BGConfig{ConsulAddr: consul.HTTPAddr(), XDSAddr: xdsAddr, AdminAddr: admin, Token: "tok", Service: service})
	harness.StartBG(t, harness.BGOptions{Bin: harness.BuildBG(t), Config: cfg, AdminAddr: admin, Token: "tok", SkipReady: true})

	readyz := func() (int, string) {
		req, _ := http.NewRequest(http.MethodGet, "http://"+admin+"/readyz", nil)
		req.Header.Set("Authorization", "Bearer tok")
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			return 0, err.Error()
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, string(b)
	}
	deadline := time.Now().Add(15 * time.Second)
	for {
		code, body := readyz()
		if code == http.StatusServiceUnavailable && strings.Contains(body, "invalid traffic state") {
			t.Logf("readyz: %s", body)
			break
		}
		if code == http.StatusOK || time.Now().After(deadline) {
			t.Fatalf("readyz = %d %s; want 503 naming the invalid state", code, body)
		}
		time.Sleep(100 * time.Millisecond)
	}

	client := harness.StartTraffic(t, harness.TrafficOptions{XDSAddr: xdsAddr, NodeID: "client-corrupt", Service: service, Workers: 1})
	m := client.Mark()
	time.Sleep(2 * time.Second)
	if n := client.Since(m); n.OK() != 0 {
		t.Fatalf("a proxy got config while the stored state was invalid: %s", n)
	}
	if pair, _, err := kv.Get(key, nil); err != nil || pair == nil || string(pair.Value) != string(corrupt) {
		t.Fatalf("bg changed the stored state: %v %v", pair, err)
	}

	// Fixed by an operator: green holds all traffic. bg must serve exactly that.
	fixed := []byte(`{"stable":"blue","target":"green","green_percent":100,"phase":"switched","generation":4}`)
	if _, err := kv.Put(&api.KVPair{Key: key, Value: fixed}, nil); err != nil {
		t.Fatal(err)
	}
	client.WaitFor(t, 30*time.Second, func(n harness.Counts) bool { return n.Green > 0 && n.Blue == 0 && n.Failed == 0 })
	m = client.Mark()
	time.Sleep(time.Second)
	if n := client.Since(m); n.Blue != 0 || n.Green == 0 {
		t.Fatalf("after the fix: want 100%% green, got %s", n)
	}
}
