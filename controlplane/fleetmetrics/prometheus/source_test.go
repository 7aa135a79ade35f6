package prometheus

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"math"
	"net/http"
	"net/http/httptest"
	"reflect"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/bgctl/bg/controlplane/fleetmetrics"
	"github.com/bgctl/bg/controlplane/model"
)

// fakeProm answers /api/v1/query with canned Prometheus API JSON, chosen by
// the rendered template's first word (see testTemplates): requests, errors
// or latency, and timestamp(requests or timestamp(errors. A Read's joined
// query (label_replace arms joined with or) gets the union of its arms'
// answers, each series labelled with its arm, as Prometheus would; if an
// arm's answer is an error, or not a vector, the whole query fails as
// Prometheus's would, with that error or bad_data. A template sent alone
// (the diagnosis) gets its own answer. It records every query it saw.
type fakeProm struct {
	mu   sync.Mutex
	resp map[string]response // first word of the template → answer
	seen []seenQuery
}

type response struct {
	code int
	body string
}

type seenQuery struct{ query, time, timeout string }

func ok(data string) response { return response{200, `{"status":"success","data":` + data + `}`} }

// series is one sample of a canned vector: its labels as JSON and value.
type series struct{ metric, value string }

// vec is an instant vector; with no series it is the empty vector.
func vec(ss ...series) response {
	var out []string
	for _, s := range ss {
		out = append(out, fmt.Sprintf(`{"metric":%s,"value":[1700000000.25,%q]}`, s.metric, s.value))
	}
	return ok(`{"resultType":"vector","result":[` + strings.Join(out, ",") + `]}`)
}

// single is a vector of one series labelled {i="0"}.
func single(v string) response { return vec(series{`{"i":"0"}`, v}) }

var armRE = regexp.MustCompile(`label_replace\(\((.*?)\), "` + ReadLabel + `", "([a-z ]+)", "", ""\)`)

func (f *fakeProm) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if r.URL.Path != "/api/v1/query" {
		http.NotFound(w, r)
		return
	}
	q := r.FormValue("query")
	f.mu.Lock()
	f.seen = append(f.seen, seenQuery{q, r.FormValue("time"), r.FormValue("timeout")})
	var resp response
	if arms := armRE.FindAllStringSubmatch(q, -1); arms != nil {
		resp = f.joined(arms)
	} else {
		resp = f.answer(q)
	}
	f.mu.Unlock()
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(resp.code)
	fmt.Fprint(w, resp.body)
}

func (f *fakeProm) answer(expr string) response {
	if expr == "vector(1)" {
		return single("1")
	}
	if resp, found := f.resp[strings.Fields(expr + " x")[0]]; found {
		return resp
	}
	return response{400, `{"status":"error","errorType":"bad_data","error":"fakeProm: unexpected query"}`}
}

// joined answers a Read's query: the union of its arms' vectors.
func (f *fakeProm) joined(arms [][]string) response {
	type sample struct {
		Metric map[string]string `json:"metric"`
		Value  []any             `json:"value"`
	}
	var union []sample
	var warnings []string
	for _, a := range arms {
		resp := f.answer(a[1])
		if resp.code != 200 {
			return resp
		}
		var body struct {
			Warnings []string `json:"warnings"`
			Data     struct {
				ResultType string          `json:"resultType"`
				Result     json.RawMessage `json:"result"`
			} `json:"data"`
		}
		if err := json.Unmarshal([]byte(resp.body), &body); err != nil {
			return resp // not JSON: the whole answer is garbage
		}
		if body.Data.ResultType != "vector" {
			return response{400, `{"status":"error","errorType":"bad_data","error":"expected type instant vector in call to function \"label_replace\", got ` + body.Data.ResultType + `"}`}
		}
		var ss []sample
		if err := json.Unmarshal(body.Data.Result, &ss); err != nil {
			panic(err)
		}
		for _, s := range ss {
			s.Metric[ReadLabel] = a[2]
			union = append(union, s)
		}
		warnings = append(warnings, body.Warnings...)
	}
	out, _ := json.Marshal(map[string]any{"status": "success", "warnings": warnings,
		"data": map[string]any{"resultType": "vector", "result": union}})
	return response{200, string(out)}
}

func (f *fakeProm) queries() []seenQuery {
	f.mu.Lock()
	defer f.mu.Unlock()
	return append([]seenQuery(nil), f.seen...)
}

// testTemplates make the rendered query show what the template saw.
var testTemplates = Templates{
	Requests: `requests {{.Service}} {{.Color}} {{.Cluster}}`,
	Errors:   `errors {{.Service}} {{.Color}} {{.Cluster}}`,
	Latency:  `latency {{.Service}} {{.Color}} {{.Cluster}}`,
}

func newFake(t *testing.T, f *fakeProm, ts Templates, log *slog.Logger) *Source {
	t.Helper()
	srv := httptest.NewServer(f)
	t.Cleanup(srv.Close)
	s, err := New(srv.URL, map[string]Templates{"web": ts}, log)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

// at is the analysis instant of the tests: a fraction of a second that
// float64 holds exactly, so the `time` parameter can be compared as text.
var at = time.Unix(1700000000, 250_000_000)

func TestReadBothFleetsAtOneExplicitTime(t *testing.T) {
	f := &fakeProm{resp: map[string]response{
		"requests": single("120.5"),
		"errors":   single("3"),
		"latency": vec(series{`{"i":"0","le":"0.1"}`, "100"}, series{`{"i":"0","le":"+Inf"}`, "120.5"},
			series{`{"i":"0","le":"1e-3"}`, "7"}),
	}}
	s := newFake(t, f, testTemplates, nil)
	ctx, cancel := context.WithTimeout(context.Background(), 5500*time.Millisecond)
	defer cancel()
	var got []fleetmetrics.Reading
	for _, c := range []model.Color{model.Blue, model.Green} {
		r, err := s.Read(ctx, fleetmetrics.Query{Service: "web", Color: c, At: at})
		if err != nil {
			t.Fatal(err)
		}
		got = append(got, r)
	}
	want := fleetmetrics.Reading{
		Requests: map[string]float64{`{i="0"}`: 120.5},
		Errors:   map[string]float64{`{i="0"}`: 3},
		Latency: map[string]fleetmetrics.Bucket{
			`{i="0", le="0.1"}`:  {Le: 0.1, Count: 100},
			`{i="0", le="+Inf"}`: {Le: math.Inf(1), Count: 120.5},
			`{i="0", le="1e-3"}`: {Le: 0.001, Count: 7},
		},
	}
	for i, r := range got {
		if !reflect.DeepEqual(r, want) {
			t.Errorf("read %d = %+v, want %+v", i, r, want)
		}
	}

	seen := f.queries()
	var queries []string
	for _, q := range seen {
		queries = append(queries, q.query)
		// One evaluation time for every query of both fleets, the one the
		// caller chose: both fleets count the same scrapes.
		if q.time != "1700000000.25" {
			t.Errorf("%q evaluated at time=%q, want 1700000000.25 (q.At)", q.query, q.time)
		}
		// Whole seconds, rounded down: Prometheus 2.x rejects "5.4s".
		if q.timeout != "5s" {
			t.Errorf("%q timeout = %q, want 5s", q.query, q.timeout)
		}
	}
	// One query per fleet: each arm is a template, tagged with its kind,
	// so one evaluation sees each target's scrape whole.
	wantQueries := []string{
		`label_replace((requests web blue web-blue), "bg_read", "requests", "", "") or ` +
			`label_replace((errors web blue web-blue), "bg_read", "errors", "", "") or ` +
			`label_replace((latency web blue web-blue), "bg_read", "latency", "", "")`,
		`label_replace((requests web green web-green), "bg_read", "requests", "", "") or ` +
			`label_replace((errors web green web-green), "bg_read", "errors", "", "") or ` +
			`label_replace((latency web green web-green), "bg_read", "latency", "", "")`,
	}
	if !reflect.DeepEqual(queries, wantQueries) {
		t.Errorf("queries = %q, want %q", queries, wantQueries)
	}
}

func TestReadZeroAtIsNow(t *testing.T) {
	f := &fakeProm{resp: map[string]response{"requests": single("1"), "errors": vec()}}
	before := time.Now()
	if _, err := newFake(t, f, Templates{Requests: testTemplates.Requests, Errors: testTemplates.Errors}, nil).
		Read(context.Background(), fleetmetrics.Query{Service: "web", Color: model.Blue}); err != nil {
		t.Fatal(err)
	}
	after := time.Now()
	for _, q := range f.queries() {
		sec, err := strconv.ParseFloat(q.time, 64)
		if err != nil {
			t.Fatalf("time = %q: %v", q.time, err)
		}
		if ts := time.Unix(0, int64(sec*1e9)); ts.Before(before.Add(-time.Millisecond)) || ts.After(after.Add(time.Millisecond)) {
			t.Errorf("zero At evaluated at %v, want now (%v..%v)", ts, before, after)
		}
	}
}

func TestReadDefaultTimeoutIsWholeSeconds(t *testing.T) {
	f := &fakeProm{resp: map[string]response{"requests": single("1"), "errors": single("0"), "latency": vec()}}
	if _, err := newFake(t, f, testTemplates, nil).Read(context.Background(), fleetmetrics.Query{Service: "web", Color: model.Blue, At: at}); err != nil {
		t.Fatal(err)
	}
	for _, q := range f.queries() {
		if q.timeout != "9s" && q.timeout != "10s" {
			t.Errorf("%q timeout = %q, want 9s or 10s (DefaultTimeout, whole seconds)", q.query, q.timeout)
		}
	}
}

func TestReadWithoutLatencyTemplate(t *testing.T) {
	f := &fakeProm{resp: map[string]response{"requests": single("1"), "errors": single("0")}}
	for _, latency := range []string{"", "  \n"} {
		ts := testTemplates
		ts.Latency = latency
		r, err := newFake(t, f, ts, nil).Read(context.Background(), fleetmetrics.Query{Service: "web", Color: model.Blue, At: at})
		if err != nil {
			t.Fatal(err)
		}
		if r.Latency != nil {
			t.Errorf("latency %q: Reading.Latency = %v, want nil (not judged)", latency, r.Latency)
		}
	}
	for _, q := range f.queries() {
		if strings.HasPrefix(q.query, "latency") {
			t.Errorf("queried %q without a latency template", q.query)
		}
	}
}

func TestReadEmptyVectorsAreEmptyMaps(t *testing.T) {
	f := &fakeProm{resp: map[string]response{"requests": vec(), "errors": vec(), "latency": vec()}}
	r, err := newFake(t, f, testTemplates, nil).Read(context.Background(), fleetmetrics.Query{Service: "web", Color: model.Green, At: at})
	if err != nil {
		t.Fatalf("no series = %v, want no error (no data is the tracker's call)", err)
	}
	if r.Requests == nil || len(r.Requests) != 0 || r.Errors == nil || len(r.Errors) != 0 || r.Latency == nil || len(r.Latency) != 0 {
		t.Fatalf("reading = %#v, want three empty, non-nil maps", r)
	}
}

func TestReadKeysSeriesByLabels(t *testing.T) {
	f := &fakeProm{resp: map[string]response{
		"requests": vec(
			series{`{"__name__":"rq_total","instance":"10.0.0.1:9901","cluster":"web-green"}`, "1000"},
			series{`{"__name__":"rq_total","instance":"10.0.0.2:9901","cluster":"web-green"}`, "0"},
			series{`{"instance":"10.0.0.3:9901"}`, "12.5"},
		),
		"errors": vec(series{`{"__name__":"rq_xx","instance":"10.0.0.2:9901","class":"5"}`, "4"}),
	}}
	r, err := newFake(t, f, Templates{Requests: testTemplates.Requests, Errors: testTemplates.Errors}, nil).
		Read(context.Background(), fleetmetrics.Query{Service: "web", Color: model.Green, At: at})
	if err != nil {
		t.Fatal(err)
	}
	wantReq := map[string]float64{
		`rq_total{cluster="web-green", instance="10.0.0.1:9901"}`: 1000,
		`rq_total{cluster="web-green", instance="10.0.0.2:9901"}`: 0,
		`{instance="10.0.0.3:9901"}`:                              12.5,
	}
	if !reflect.DeepEqual(r.Requests, wantReq) {
		t.Errorf("requests = %v, want %v", r.Requests, wantReq)
	}
	if want := map[string]float64{`rq_xx{class="5", instance="10.0.0.2:9901"}`: 4}; !reflect.DeepEqual(r.Errors, want) {
		t.Errorf("errors = %v, want %v", r.Errors, want)
	}
}

func TestReadRejectsUnusableResults(t *testing.T) {
	apiErr := response{400, `{"status":"error","errorType":"bad_data","error":"parse error at char 5"}`}
	good := func(r map[string]response) map[string]response {
		out := map[string]response{"requests": single("10"), "errors": single("0"), "latency": vec(series{`{"le":"+Inf"}`, "10"})}
		for k, v := range r {
			out[k] = v
		}
		return out
	}
	cases := []struct {
		name string
		resp map[string]response
		want string
	}{
		{"NaN", good(map[string]response{"errors": single("NaN")}),
			`errors query for web-green returned NaN for {i="0"}; counters are finite and non-negative [query: errors web green web-green]`},
		{"+Inf", good(map[string]response{"requests": single("+Inf")}),
			`requests query for web-green returned +Inf for {i="0"}; counters are finite and non-negative`},
		{"-Inf", good(map[string]response{"errors": single("-Inf")}),
			`errors query for web-green returned -Inf for {i="0"}`},
		{"negative", good(map[string]response{"requests": single("-1")}),
			`requests query for web-green returned -1 for {i="0"}; counters are finite and non-negative`},
		{"one bad series among good ones", good(map[string]response{"requests": vec(series{`{"i":"0"}`, "5"}, series{`{"i":"1"}`, "-0.5"})}),
			`requests query for web-green returned -0.5 for {i="1"}`},
		{"negative bucket", good(map[string]response{"latency": vec(series{`{"le":"1"}`, "-3"})}),
			`latency query for web-green returned -3 for {le="1"}`},
		{"scalar", good(map[string]response{"requests": ok(`{"resultType":"scalar","result":[1700000000,"1"]}`)}),
			"requests query for web-green returned a scalar, want an instant vector of counters [query: requests web green web-green]"},
		{"matrix", good(map[string]response{"errors": ok(`{"resultType":"matrix","result":[]}`)}),
			"errors query for web-green returned a matrix, want an instant vector of counters"},
		{"API error", good(map[string]response{"requests": apiErr}),
			"requests query for web-green failed: bad_data: parse error at char 5 [query: requests web green web-green]"},
		{"503", good(map[string]response{"errors": {503, "down"}}),
			"counter query for web-green failed: server_error"},
		{"not JSON", good(map[string]response{"requests": {200, "<html>"}}),
			"counter query for web-green failed: bad_response"},
		{"latency series without le", good(map[string]response{"latency": single("10")}),
			`latency query for web-green returned {i="0"} without a numeric le label; select histogram _bucket series`},
		{"latency le not a number", good(map[string]response{"latency": vec(series{`{"le":"fast"}`, "10"})}),
			`latency query for web-green returned {le="fast"} without a numeric le label`},
		{"latency le NaN", good(map[string]response{"latency": vec(series{`{"le":"NaN"}`, "10"})}),
			`latency query for web-green returned {le="NaN"} without a numeric le label`},
		{"latency API error", good(map[string]response{"latency": apiErr}),
			"latency query for web-green failed: bad_data"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			s := newFake(t, &fakeProm{resp: c.resp}, testTemplates, nil)
			r, err := s.Read(context.Background(), fleetmetrics.Query{Service: "web", Color: model.Green, At: at})
			if !errors.Is(err, fleetmetrics.ErrUnavailable) {
				t.Fatalf("err = %v, want ErrUnavailable", err)
			}
			if !strings.Contains(err.Error(), c.want) {
				t.Fatalf("err = %q, want it to contain %q", err, c.want)
			}
			if r.Requests != nil || r.Errors != nil || r.Latency != nil {
				t.Errorf("reading = %+v with the error, want none", r)
			}
			if n := testutil.ToFloat64(s.queryErrors.WithLabelValues("web")); n != 1 {
				t.Errorf("bg_prometheus_query_errors_total{service=web} = %v, want 1", n)
			}
		})
	}
}

func TestReadLogsWarnings(t *testing.T) {
	var buf bytes.Buffer
	log := slog.New(slog.NewTextHandler(&buf, nil))
	warn := response{200, `{"status":"success","warnings":["partial response"],"data":{"resultType":"vector","result":[{"metric":{},"value":[1,"7"]}]}}`}
	f := &fakeProm{resp: map[string]response{"requests": warn, "errors": vec()}}
	got, err := newFake(t, f, Templates{Requests: testTemplates.Requests, Errors: testTemplates.Errors}, log).
		Read(context.Background(), fleetmetrics.Query{Service: "web", Color: model.Green, At: at})
	if err != nil || !reflect.DeepEqual(got.Requests, map[string]float64{"{}": 7}) {
		t.Fatalf("read = %+v, %v; want 7 requests in series {}", got, err)
	}
	if !strings.Contains(buf.String(), "partial response") || !strings.Contains(buf.String(), "requests web green web-green") {
		t.Errorf("log = %q, want the warning and its query", buf.String())
	}
}

func TestReadUnreachable(t *testing.T) {
	srv := httptest.NewServer(http.NotFoundHandler())
	srv.Close()
	s, err := New(srv.URL, map[string]Templates{"web": EnvoyTemplates}, nil)
	if err != nil {
		t.Fatal(err)
	}
	_, err = s.Read(context.Background(), fleetmetrics.Query{Service: "web", Color: model.Blue, At: at})
	if !errors.Is(err, fleetmetrics.ErrUnavailable) || !strings.Contains(err.Error(), "counter query for web-blue failed") {
		t.Fatalf("err = %v", err)
	}
	if err := s.Check(context.Background()); !errors.Is(err, fleetmetrics.ErrUnavailable) {
		t.Fatalf("Check = %v, want ErrUnavailable", err)
	}
}

func TestReadUnknownService(t *testing.T) {
	f := &fakeProm{}
	s := newFake(t, f, testTemplates, nil)
	_, err := s.Read(context.Background(), fleetmetrics.Query{Service: "api", Color: model.Blue, At: at})
	if !errors.Is(err, fleetmetrics.ErrUnavailable) || !strings.Contains(err.Error(), `no query templates for service "api"`) {
		t.Fatalf("err = %v, want ErrUnavailable naming the service", err)
	}
	if n := len(f.queries()); n != 0 {
		t.Errorf("%d queries sent for an unknown service", n)
	}
	if n := testutil.ToFloat64(s.queryErrors.WithLabelValues("api")); n != 0 {
		t.Errorf("query errors for an unknown service = %v; it has no series to count on", n)
	}
}

func TestCheck(t *testing.T) {
	if err := newFake(t, &fakeProm{}, testTemplates, nil).Check(context.Background()); err != nil {
		t.Fatal(err)
	}
}

func TestNewRejects(t *testing.T) {
	for _, addr := range []string{"", "127.0.0.1:9090", "ftp://x", "http://"} {
		if _, err := New(addr, nil, nil); err == nil {
			t.Errorf("New(%q) succeeded", addr)
		}
	}
	for _, c := range []struct {
		ts   Templates
		want string
	}{
		{Templates{Requests: EnvoyRequests, Errors: `sum({{.Clutser}})`}, `service "web": errors template`},
		{Templates{Requests: `{{`, Errors: EnvoyErrors}, `service "web": requests template`},
		{Templates{Requests: EnvoyRequests, Errors: EnvoyErrors, Latency: `{{.Window}}`}, `service "web": latency template`},
		{Templates{Requests: "", Errors: EnvoyErrors}, `service "web": requests template: empty template`},
	} {
		_, err := New("http://127.0.0.1:9090", map[string]Templates{"web": c.ts}, nil)
		if err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("New(%+v) = %v, want it to contain %q", c.ts, err, c.want)
		}
	}
}

// TestNewRefusesRetiredTemplates: a config written for windowed queries
// fails at load with the way to migrate, whichever template it is in.
func TestNewRefusesRetiredTemplates(t *testing.T) {
	old := `sum(increase(envoy_cluster_upstream_rq_total{envoy_cluster_name="{{.Cluster}}"}[{{.Window}}]))`
	for kind, ts := range map[string]Templates{
		"requests": {Requests: old, Errors: EnvoyErrors},
		"errors":   {Requests: EnvoyRequests, Errors: `sum(rate (x[1m]))`},
		"latency":  {Requests: EnvoyRequests, Errors: EnvoyErrors, Latency: `histogram_quantile(0.99, rate(x_bucket[5m]))`},
	} {
		_, err := New("http://127.0.0.1:9090", map[string]Templates{"web": ts}, nil)
		if !errors.Is(err, ErrRetiredTemplate) {
			t.Errorf("%s: err = %v, want ErrRetiredTemplate", kind, err)
			continue
		}
		if want := `service "web": ` + kind + ` template: windowed templates are retired`; !strings.Contains(err.Error(), want) {
			t.Errorf("%s: err = %q, want it to contain %q", kind, err, want)
		}
	}
}

// Scraped is the oldest sample time among the request and error series,
// read with timestamp() in the same query (so of the same scrapes); it is
// only asked for when wanted (a switch's starting point).
func TestReadScraped(t *testing.T) {
	f := &fakeProm{resp: map[string]response{
		"requests":           single("10"),
		"errors":             single("1"),
		"timestamp(requests": vec(series{`{"i":"0"}`, "1700000000.5"}, series{`{"i":"1"}`, "1699999999.75"}),
		"timestamp(errors":   vec(series{`{"i":"0"}`, "1700000000.125"}),
	}}
	s := newFake(t, f, Templates{Requests: testTemplates.Requests, Errors: testTemplates.Errors}, nil)
	r, err := s.Read(context.Background(), fleetmetrics.Query{Service: "web", Color: model.Green, At: at})
	if err != nil || !r.Scraped.IsZero() || len(f.queries()) != 1 || strings.Contains(f.queries()[0].query, "timestamp") {
		t.Fatalf("without Scraped: %+v, %v, queries %q; want one query, no timestamp()", r, err, f.queries())
	}
	r, err = s.Read(context.Background(), fleetmetrics.Query{Service: "web", Color: model.Green, At: at, Scraped: true})
	if err != nil {
		t.Fatal(err)
	}
	if want := time.UnixMilli(1699999999750); !r.Scraped.Equal(want) {
		t.Errorf("scraped %v, want the oldest sample %v", r.Scraped, want)
	}
	if want := map[string]float64{`{i="0"}`: 10}; !reflect.DeepEqual(r.Requests, want) {
		t.Errorf("requests %v, want %v: the timestamps are not counters", r.Requests, want)
	}
	qs := f.queries()
	if want := `label_replace((requests web green web-green), "bg_read", "requests", "", "") or ` +
		`label_replace((timestamp(requests web green web-green)), "bg_read", "requests scraped", "", "") or ` +
		`label_replace((errors web green web-green), "bg_read", "errors", "", "") or ` +
		`label_replace((timestamp(errors web green web-green)), "bg_read", "errors scraped", "", "")`; len(qs) != 2 || qs[1].query != want {
		t.Errorf("queries %q, want a second one %q", qs, want)
	}
	f.mu.Lock()
	f.resp["timestamp(errors"] = response{503, "down"}
	f.mu.Unlock()
	if _, err := s.Read(context.Background(), fleetmetrics.Query{Service: "web", Color: model.Green, At: at, Scraped: true}); !errors.Is(err, fleetmetrics.ErrUnavailable) {
		t.Errorf("a failed timestamp query: %v, want ErrUnavailable", err)
	}
}

// TestReadDiagnosesOnlyRefusals: a joined query Prometheus refuses is
// followed by each template alone, to name the wrong one; one that fails
// for any other reason (Prometheus down, overloaded) is not, so a struggling
// Prometheus gets no extra queries.
func TestReadDiagnosesOnlyRefusals(t *testing.T) {
	for _, c := range []struct {
		name    string
		errors  response
		queries int
		want    string
	}{
		{"refused", response{400, `{"status":"error","errorType":"bad_data","error":"parse error"}`}, 3,
			"errors query for web-green failed: bad_data: parse error [query: errors web green web-green]"},
		{"execution error", response{422, `{"status":"error","errorType":"execution","error":"many-to-many matching"}`}, 3,
			"errors query for web-green failed: execution: many-to-many matching"},
		{"down", response{503, "down"}, 1, "counter query for web-green failed: server_error"},
		{"timed out (client_golang calls every 503 server_error)", response{503, `{"status":"error","errorType":"timeout","error":"query timed out"}`}, 1,
			"counter query for web-green failed: server_error"},
	} {
		t.Run(c.name, func(t *testing.T) {
			f := &fakeProm{resp: map[string]response{"requests": single("1"), "errors": c.errors}}
			_, err := newFake(t, f, Templates{Requests: testTemplates.Requests, Errors: testTemplates.Errors}, nil).
				Read(context.Background(), fleetmetrics.Query{Service: "web", Color: model.Green, At: at})
			if !errors.Is(err, fleetmetrics.ErrUnavailable) || !strings.Contains(err.Error(), c.want) {
				t.Errorf("err = %v, want ErrUnavailable containing %q", err, c.want)
			}
			if n := len(f.queries()); n != c.queries {
				t.Errorf("%d queries %q, want %d", n, f.queries(), c.queries)
			}
		})
	}
}

// TestReadRejectsUntaggedSeries: a series in the answer that no arm tagged
// (a backend that does not honour label_replace) is an error, not counted
// under some kind or dropped.
func TestReadRejectsUntaggedSeries(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		fmt.Fprint(w, `{"status":"success","data":{"resultType":"vector","result":[`+
			`{"metric":{"bg_read":"requests"},"value":[1,"1"]},{"metric":{"i":"0"},"value":[1,"2"]}]}}`)
	}))
	defer srv.Close()
	s, err := New(srv.URL, map[string]Templates{"web": EnvoyTemplates}, nil)
	if err != nil {
		t.Fatal(err)
	}
	_, err = s.Read(context.Background(), fleetmetrics.Query{Service: "web", Color: model.Green, At: at})
	if !errors.Is(err, fleetmetrics.ErrUnavailable) || !strings.Contains(err.Error(), `returned {i="0"} labelled bg_read="", which no template asked for`) {
		t.Fatalf("err = %v", err)
	}
}
