package admin

import (
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/bgctl/bg/controlplane/model"
	"github.com/bgctl/bg/controlplane/traffic"
)

func fakeHistory(n int) []model.HistoryEntry {
	out := make([]model.HistoryEntry, n)
	for i := range out {
		out[i] = model.HistoryEntry{Generation: uint64(i + 1), At: time.Date(2025, 3, 1, 12, i, 0, 0, time.UTC),
			Actor: "cli:ann@laptop (127.0.0.1:5000)", Reason: fmt.Sprintf("change %d", i+1), ToGreen: 100,
			Phase: model.PhaseSwitched, Stable: model.Blue}
	}
	return out
}

func TestHistory(t *testing.T) {
	cases := []struct {
		query     string
		wantLimit int
		wantGens  []uint64
	}{
		{"", DefaultHistoryLimit, []uint64{1, 2, 3, 4, 5, 6, 7}},
		{"?limit=3", 3, []uint64{5, 6, 7}},
		{"?limit=1", 1, []uint64{7}},
		{"?limit=10000", MaxHistoryLimit, []uint64{1, 2, 3, 4, 5, 6, 7}},
	}
	for _, tc := range cases {
		t.Run(tc.query, func(t *testing.T) {
			r := newRig(t, "")
			r.ctrl.history = map[string][]model.HistoryEntry{"web": fakeHistory(7)}
			resp, raw := r.do(t, "GET", "/v1/services/web/history"+tc.query, "", "")
			if resp.StatusCode != http.StatusOK || resp.Header.Get("Content-Type") != "application/json" {
				t.Fatalf("status = %d, type %q; body %s", resp.StatusCode, resp.Header.Get("Content-Type"), raw)
			}
			var got []model.HistoryEntry
			dec := json.NewDecoder(strings.NewReader(string(raw)))
			dec.DisallowUnknownFields()
			if err := dec.Decode(&got); err != nil {
				t.Fatalf("body is not a list of entries: %v\n%s", err, raw)
			}
			gens := make([]uint64, len(got))
			for i, e := range got {
				gens[i] = e.Generation
			}
			if !slices.Equal(gens, tc.wantGens) {
				t.Errorf("generations %v, want %v", gens, tc.wantGens)
			}
			if got[0].Actor != "cli:ann@laptop (127.0.0.1:5000)" || !strings.HasPrefix(got[0].Reason, "change ") {
				t.Errorf("entry lost fields: %+v", got[0])
			}
			if !slices.Equal(r.ctrl.limits, []int{tc.wantLimit}) {
				t.Errorf("controller got limits %v, want [%d]", r.ctrl.limits, tc.wantLimit)
			}
		})
	}
}

func TestHistoryEmptyIsList(t *testing.T) {
	r := newRig(t, "")
	resp, raw := r.do(t, "GET", "/v1/services/web/history", "", "")
	if resp.StatusCode != http.StatusOK || strings.TrimSpace(string(raw)) != "[]" {
		t.Fatalf("status = %d, body %q; want 200 []", resp.StatusCode, raw)
	}
}

func TestHistoryBadLimit(t *testing.T) {
	for _, q := range []string{
		"limit=0", "limit=-1", "limit=10001", "limit=abc", "limit=5x", "limit=", "limit=1.5", "limit=1e3",
		"limit=5&limit=6", "limt=5", "limit=5&x=1", "limit=%zz",
	} {
		t.Run(q, func(t *testing.T) {
			r := newRig(t, "")
			resp, raw := r.do(t, "GET", "/v1/services/web/history?"+q, "", "")
			if resp.StatusCode != http.StatusBadRequest {
				t.Fatalf("status = %d, want 400; body %s", resp.StatusCode, raw)
			}
			if e := decodeError(t, resp, raw); e.Code != "bad_request" {
				t.Errorf("code = %q", e.Code)
			}
			if calls := r.ctrl.Calls(); len(calls) != 0 {
				t.Errorf("controller was called: %v", calls)
			}
		})
	}
}

func TestHistoryErrors(t *testing.T) {
	t.Run("unknown service", func(t *testing.T) {
		r := newRig(t, "")
		resp, raw := r.do(t, "GET", "/v1/services/nosuch/history", "", "")
		if resp.StatusCode != http.StatusNotFound {
			t.Fatalf("status = %d, want 404; body %s", resp.StatusCode, raw)
		}
		if e := decodeError(t, resp, raw); e.Code != "unknown_service" || !strings.Contains(e.Error, `"nosuch"`) {
			t.Errorf("body = %+v", e)
		}
	})
	t.Run("store error", func(t *testing.T) {
		r := newRig(t, "")
		r.ctrl.histErr = errors.New("consul key bg/history/web/00000000000000000002: invalid history entry: trailing data")
		resp, raw := r.do(t, "GET", "/v1/services/web/history", "", "")
		if resp.StatusCode != http.StatusServiceUnavailable {
			t.Fatalf("status = %d, want 503; body %s", resp.StatusCode, raw)
		}
		if e := decodeError(t, resp, raw); e.Error != r.ctrl.histErr.Error() {
			t.Errorf("body = %+v, want the store's message", e)
		}
	})
	t.Run("wrong method", func(t *testing.T) {
		r := newRig(t, "")
		resp, raw := r.do(t, "POST", "/v1/services/web/history", "", "")
		if resp.StatusCode != http.StatusMethodNotAllowed {
			t.Fatalf("status = %d, want 405; body %s", resp.StatusCode, raw)
		}
	})
}

// postAs sends a command with extra headers and returns the actor the
// controller saw.
func postAs(t *testing.T, r *rig, path string, headers map[string]string) string {
	t.Helper()
	body := `{"to":"green"}`
	if !strings.HasSuffix(path, "/switch") {
		body = ""
	}
	req, err := http.NewRequest("POST", r.srv.URL+path, strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	for k, v := range headers {
		req.Header.Set(k, v)
	}
	resp, err := r.srv.Client().Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("status = %d", resp.StatusCode)
	}
	r.ctrl.mu.Lock()
	defer r.ctrl.mu.Unlock()
	if len(r.ctrl.actors) != 1 {
		t.Fatalf("controller saw actors %q, want one", r.ctrl.actors)
	}
	return r.ctrl.actors[0]
}

func TestCommandsCarryActor(t *testing.T) {
	from := `\(127\.0\.0\.1:\d+\)$`
	long := strings.Repeat("x", 150)
	cases := []struct {
		name    string
		path    string
		headers map[string]string
		want    string // regexp
	}{
		{"cli", "switch", map[string]string{ActorHeader: "cli:ann@laptop"}, `^cli:ann@laptop ` + from},
		{"on abort too", "abort", map[string]string{ActorHeader: "cli:ann@laptop"}, `^cli:ann@laptop ` + from},
		{"missing", "switch", nil, `^api ` + from},
		{"blank", "switch", map[string]string{ActorHeader: "   "}, `^api ` + from},
		{"non-ASCII", "switch", map[string]string{ActorHeader: "zoë"}, `^zo\?\? ` + from},
		{"too long", "switch", map[string]string{ActorHeader: long}, `^` + long[:maxActor] + ` ` + from},
		{"forwarded by a replica", "switch", map[string]string{ActorHeader: "cli:ann@laptop", forwardedHeader: "1", "X-Forwarded-For": "10.0.0.9, 10.1.2.3"},
			`^cli:ann@laptop \(10\.1\.2\.3 via 127\.0\.0\.1:\d+\)$`},
		{"forwarded without a client", "switch", map[string]string{forwardedHeader: "1"}, `^api ` + from},
		{"client address not trusted unforwarded", "switch", map[string]string{"X-Forwarded-For": "10.1.2.3"}, `^api ` + from},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			r := newRig(t, "")
			got := postAs(t, r, "/v1/services/web/"+tc.path, tc.headers)
			if !regexp.MustCompile(tc.want).MatchString(got) {
				t.Errorf("actor = %q, want /%s/", got, tc.want)
			}
		})
	}
}

func TestSanitizeActor(t *testing.T) {
	for in, want := range map[string]string{
		"":                      "api",
		"\x00\x01":              "??",
		" cli:a@b ":             "cli:a@b",
		"a\nb":                  "a?b",
		strings.Repeat("é", 80): strings.Repeat("?", maxActor),
	} {
		if got := sanitizeActor(in); got != want {
			t.Errorf("sanitizeActor(%q) = %q, want %q", in, got, want)
		}
	}
}

// Go's client refuses control characters in headers, but other clients
// send them; call the middleware directly.
func TestActorMiddleware(t *testing.T) {
	var got []string
	h := withActor(http.HandlerFunc(func(_ http.ResponseWriter, r *http.Request) {
		got = append(got, traffic.ActorFrom(r.Context()))
	}))
	for _, tc := range []struct{ method, header, want string }{
		{"POST", "eve\x1b[2J\r\nroot", "eve?[2J??root (192.0.2.1:1234)"},
		{"POST", "cli:a@b", "cli:a@b (192.0.2.1:1234)"},
		{"GET", "cli:a@b", ""}, // reads change nothing, so they carry no actor
	} {
		got = nil
		req := httptest.NewRequest(tc.method, "/v1/services/web/switch", nil)
		req.Header[http.CanonicalHeaderKey(ActorHeader)] = []string{tc.header}
		h.ServeHTTP(httptest.NewRecorder(), req)
		if len(got) != 1 || got[0] != tc.want {
			t.Errorf("%s %q: actor %q, want %q", tc.method, tc.header, got, tc.want)
		}
	}
}
