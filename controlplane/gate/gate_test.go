package gate

import (
	"context"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/bgctl/bg/controlplane/model"
)

func gateFor(url string, timeout time.Duration) model.Gate {
	return model.Gate{Name: "smoke", URL: url, Stages: []string{model.GateStep}, Timeout: model.Duration(timeout), OnFailure: model.GateRollback}
}

func TestCall(t *testing.T) {
	cases := []struct {
		name    string
		handler http.HandlerFunc
		timeout time.Duration
		passed  bool
		status  int
		detail  string
	}{
		{"2xx passes", func(w http.ResponseWriter, r *http.Request) { w.WriteHeader(204) }, time.Second, true, 204, "answered in"},
		{"500 fails with the body", func(w http.ResponseWriter, r *http.Request) { http.Error(w, "checkout smoke test failed", 500) }, time.Second, false, 500, "checkout smoke test failed"},
		{"redirect is not a pass", func(w http.ResponseWriter, r *http.Request) { w.WriteHeader(304) }, time.Second, false, 304, ""},
		{"timeout fails", func(w http.ResponseWriter, r *http.Request) { time.Sleep(300 * time.Millisecond) }, 100 * time.Millisecond, false, 0, "no answer within 100ms"},
		{"long body is clipped", func(w http.ResponseWriter, r *http.Request) {
			w.WriteHeader(503)
			_, _ = w.Write([]byte(strings.Repeat("é", 500)))
		}, time.Second, false, 503, "é"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			// The handler hands what it decoded to the test through a
			// channel: when the gate times out, Call returns without any
			// answer from the handler, so nothing else orders the handler's
			// write before the test's read.
			received := make(chan Payload, 1)
			srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				if r.Method != http.MethodPost || r.Header.Get("Content-Type") != "application/json" {
					t.Errorf("got %s %s", r.Method, r.Header.Get("Content-Type"))
				}
				var got Payload
				if err := json.NewDecoder(r.Body).Decode(&got); err != nil {
					t.Errorf("decoding the payload: %v", err)
				}
				select {
				case received <- got:
				default: // a second request: the first one is what is checked
				}
				tc.handler(w, r)
			}))
			defer srv.Close()
			p := Payload{Service: "web", Switch: "gen-7", Stage: model.GateStep, From: model.Blue, To: model.Green, Step: 2, Steps: 4, Percent: 25, Generation: 9}
			res := Caller{}.Call(context.Background(), gateFor(srv.URL, tc.timeout), p)
			if res.Passed != tc.passed || res.Status != tc.status || !strings.Contains(res.Detail, tc.detail) {
				t.Fatalf("got %+v", res)
			}
			if len(res.Detail) > maxDetail+len("…") || !strings.HasPrefix(res.Gate, "smoke") || res.Stage != model.GateStep || res.Step != 1 {
				t.Fatalf("result fields: %+v", res)
			}
			select {
			case got := <-received:
				if got != p {
					t.Fatalf("payload %+v, want %+v", got, p)
				}
			case <-time.After(5 * time.Second):
				t.Fatal("the gate never received a payload")
			}
		})
	}
}

func TestUnreachableFails(t *testing.T) {
	srv := httptest.NewServer(http.NotFoundHandler())
	url := srv.URL
	srv.Close()
	res := Caller{}.Call(context.Background(), gateFor(url, time.Second), Payload{Stage: model.GatePre, Step: 1})
	if res.Passed || res.Status != 0 || res.Detail == "" {
		t.Fatalf("got %+v", res)
	}
}
