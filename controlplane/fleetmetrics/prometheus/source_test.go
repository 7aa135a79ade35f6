package prometheus

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/bgctl/bg/controlplane/fleetmetrics"
	"github.com/bgctl/bg/controlplane/model"
)

// fakeProm answers /api/v1/query with canned Prometheus API JSON: the
// requests query gets reqBody, the errors query errBody.
type fakeProm struct {
	mu      sync.Mutex
	reqBody response
	errBody response
	seen    []seenQuery
}

type response struct {
	code int
	body string
}

type seenQuery struct{ query, time, timeout string }

func ok(data string) response { return response{200, `{"status":"success","data":` + data + `}`} }

func vec(values ...string) response {
	var s []string
	for i, v := range values {
		s = append(s, fmt.Sprintf(`{"metric":{"i":"%d"},"value":[1700000000.5,%q]}`, i, v))
	}
	return ok(`{"resultType":"vector","result":[` + strings.Join(s, ",") + `]}`)
}

func (f *fakeProm) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if r.URL.Path != "/api/v1/query" {
		http.NotFound(w, r)
		return
	}
	q := r.FormValue("query")
	f.mu.Lock()
	f.seen = append(f.seen, seenQuery{q, r.FormValue("time"), r.FormValue("timeout")})
	resp := f.reqBody
	if strings.HasPrefix(q, "errors") {
		resp = f.errBody
	} else if q == "vector(1)" {
		resp = vec("1")
	}
	f.mu.Unlock()
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(resp.code)
	fmt.Fprint(w, resp.body)
}

// testTemplates make the rendered query show what the template saw.
var testTemplates = Templates{
	Requests: `requests {{.Service}} {{.Color}} {{.Cluster}} {{.Window}}`,
	Errors:   `errors {{.Service}} {{.Color}} {{.Cluster}} {{.Window}}`,
}

func newFake(t *testing.T, f *fakeProm, log *slog.Logger) *Source {
	t.Helper()
	srv := httptest.NewServer(f)
	t.Cleanup(srv.Close)
	s, err := New(srv.URL, map[string]Templates{"web": testTemplates}, log)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func TestSampleRendersBothQueriesAtOneTime(t *testing.T) {
	f := &fakeProm{reqBody: vec("120.5"), errBody: vec("3")}
	s := newFake(t, f, nil)
	ctx, cancel := context.WithTimeout(context.Background(), 5500*time.Millisecond)
	defer cancel()
	got, err := s.Sample(ctx, fleetmetrics.Query{Service: "web", Color: model.Green, Window: 90 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	if got.Requests != 120.5 || got.Errors != 3 {
		t.Fatalf("sample = %+v, want 120.5 requests, 3 errors", got)
	}
	if len(f.seen) != 2 {
		t.Fatalf("queries = %+v, want 2", f.seen)
	}
	if q := f.seen[0].query; q != "requests web green web-green 1m30s" {
		t.Errorf("requests query = %q", q)
	}
	if q := f.seen[1].query; q != "errors web green web-green 1m30s" {
		t.Errorf("errors query = %q", q)
	}
	if f.seen[0].time == "" || f.seen[0].time != f.seen[1].time {
		t.Errorf("evaluation times %q and %q, want one explicit time", f.seen[0].time, f.seen[1].time)
	}
	// Whole seconds, rounded down: Prometheus 2.x rejects "5.4s".
	for _, q := range f.seen {
		if q.timeout != "5s" {
			t.Errorf("timeout = %q, want 5s", q.timeout)
		}
	}
}

func TestSampleDefaultTimeoutIsWholeSeconds(t *testing.T) {
	f := &fakeProm{reqBody: vec("1"), errBody: vec("0")}
	if _, err := newFake(t, f, nil).Sample(context.Background(), fleetmetrics.Query{Service: "web", Color: model.Blue, Window: time.Minute}); err != nil {
		t.Fatal(err)
	}
	if to := f.seen[0].timeout; to != "9s" && to != "10s" {
		t.Errorf("timeout = %q, want 9s or 10s", to)
	}
}

func TestSampleRejectsUnusableResults(t *testing.T) {
	apiErr := response{400, `{"status":"error","errorType":"bad_data","error":"parse error at char 5"}`}
	cases := []struct {
		name     string
		req, err response
		want     string
	}{
		{"empty requests", vec(), vec("0"), "requests query for web-green returned no series"},
		{"empty errors", vec("10"), vec(), "errors query for web-green returned no series"},
		{"two series", vec("1", "2"), vec("0"), "requests query for web-green returned 2 series; the template must aggregate"},
		{"NaN", vec("10"), vec("NaN"), "errors query for web-green returned NaN"},
		{"+Inf", vec("+Inf"), vec("0"), "requests query for web-green returned +Inf"},
		{"-Inf", vec("10"), vec("-Inf"), "errors query for web-green returned -Inf"},
		{"negative", vec("-1"), vec("0"), "requests query for web-green returned negative -1"},
		{"scalar", ok(`{"resultType":"scalar","result":[1700000000,"1"]}`), vec("0"), "returned a scalar, want an instant vector"},
		{"matrix", ok(`{"resultType":"matrix","result":[]}`), vec("0"), "returned a matrix"},
		{"bad query", apiErr, vec("0"), "requests query for web-green failed: bad_data: parse error at char 5"},
		{"server error", vec("10"), response{503, "down"}, "errors query for web-green failed: server_error"},
		{"not JSON", response{200, "<html>"}, vec("0"), "requests query for web-green failed"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			s := newFake(t, &fakeProm{reqBody: c.req, errBody: c.err}, nil)
			_, err := s.Sample(context.Background(), fleetmetrics.Query{Service: "web", Color: model.Green, Window: time.Minute})
			if !errors.Is(err, fleetmetrics.ErrUnavailable) {
				t.Fatalf("err = %v, want ErrUnavailable", err)
			}
			if !strings.Contains(err.Error(), c.want) {
				t.Fatalf("err = %q, want it to contain %q", err, c.want)
			}
		})
	}
}

func TestSampleLogsWarnings(t *testing.T) {
	var buf bytes.Buffer
	log := slog.New(slog.NewTextHandler(&buf, nil))
	warn := response{200, `{"status":"success","warnings":["partial response"],"data":{"resultType":"vector","result":[{"metric":{},"value":[1,"7"]}]}}`}
	got, err := newFake(t, &fakeProm{reqBody: warn, errBody: vec("0")}, log).
		Sample(context.Background(), fleetmetrics.Query{Service: "web", Color: model.Green, Window: time.Minute})
	if err != nil || got.Requests != 7 {
		t.Fatalf("sample = %+v, %v; want 7 requests", got, err)
	}
	if !strings.Contains(buf.String(), "partial response") {
		t.Errorf("log = %q, want the warning", buf.String())
	}
}

func TestSampleUnreachable(t *testing.T) {
	srv := httptest.NewServer(http.NotFoundHandler())
	srv.Close()
	s, err := New(srv.URL, map[string]Templates{"web": EnvoyTemplates}, nil)
	if err != nil {
		t.Fatal(err)
	}
	_, err = s.Sample(context.Background(), fleetmetrics.Query{Service: "web", Color: model.Blue, Window: time.Minute})
	if !errors.Is(err, fleetmetrics.ErrUnavailable) || !strings.Contains(err.Error(), "requests query for web-blue failed") {
		t.Fatalf("err = %v", err)
	}
	if err := s.Check(context.Background()); !errors.Is(err, fleetmetrics.ErrUnavailable) {
		t.Fatalf("Check = %v, want ErrUnavailable", err)
	}
}

func TestSampleBadQuery(t *testing.T) {
	s := newFake(t, &fakeProm{}, nil)
	for _, q := range []fleetmetrics.Query{
		{Service: "api", Color: model.Blue, Window: time.Minute},
		{Service: "web", Color: model.Blue, Window: 0},
	} {
		if _, err := s.Sample(context.Background(), q); !errors.Is(err, fleetmetrics.ErrUnavailable) {
			t.Errorf("Sample(%+v) = %v, want ErrUnavailable", q, err)
		}
	}
}

func TestCheck(t *testing.T) {
	if err := newFake(t, &fakeProm{}, nil).Check(context.Background()); err != nil {
		t.Fatal(err)
	}
}

func TestNewRejects(t *testing.T) {
	for _, addr := range []string{"", "127.0.0.1:9090", "ftp://x", "http://"} {
		if _, err := New(addr, nil, nil); err == nil {
			t.Errorf("New(%q) succeeded", addr)
		}
	}
	_, err := New("http://127.0.0.1:9090", map[string]Templates{
		"web": {Requests: EnvoyRequests, Errors: `sum({{.Clutser}})`},
	}, nil)
	if err == nil || !strings.Contains(err.Error(), `service "web": errors template`) {
		t.Fatalf("err = %v, want it to name the service and the errors template", err)
	}
	_, err = New("http://127.0.0.1:9090", map[string]Templates{"api": {Requests: `{{`, Errors: EnvoyErrors}}, nil)
	if err == nil || !strings.Contains(err.Error(), `service "api": requests template`) {
		t.Fatalf("err = %v, want it to name the service and the requests template", err)
	}
}
