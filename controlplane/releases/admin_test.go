package releases_test

import (
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/bgctl/bg/controlplane/admin"
	apiv1 "github.com/bgctl/bg/controlplane/api/v1"
	"github.com/bgctl/bg/controlplane/release"
	"github.com/bgctl/bg/controlplane/xds"
)

// The admin API over the real executor and controller: a release started
// over HTTP runs, its members refuse switches by hand with 409 in_release
// naming it, and it reads back by ID and in the list.
func TestAdminAPIOverTheExecutor(t *testing.T) {
	r := newRig(t, rigOptions{services: []string{"a", "b"}, deps: map[string][]string{"b": {"a"}}, progressive: []string{"a"}})
	srv := httptest.NewServer(admin.Handler(r.ctrl, admin.Options{DefaultTimeout: time.Second, Gatherer: prometheus.NewRegistry(), Log: quiet,
		Proxies: func() []xds.ProxyInfo { return nil }, Releases: r.exec}))
	defer srv.Close()
	do := func(method, path, body string) (int, []byte) {
		t.Helper()
		req, _ := http.NewRequest(method, srv.URL+path, strings.NewReader(body))
		resp, err := srv.Client().Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		raw, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, raw
	}
	code, raw := do("POST", "/v1/releases", `{"name":"rel","services":["b","a"]}`)
	if code != http.StatusCreated {
		t.Fatalf("start: %d %s", code, raw)
	}
	var st apiv1.ReleaseStatus
	if err := json.Unmarshal(raw, &st); err != nil || st.Release.ID != "rel-1" || st.Release.Phase != release.Running {
		t.Fatalf("start answered %s (%v)", raw, err)
	}
	r.rt.Advance(2 * time.Second)

	code, raw = do("POST", "/v1/services/a/abort", "")
	var e apiv1.ErrorBody
	_ = json.Unmarshal(raw, &e)
	if code != http.StatusConflict || e.Code != apiv1.CodeInRelease || !strings.Contains(e.Error, "release rel-1") {
		t.Fatalf("abort of a member by hand: %d %s", code, raw)
	}
	code, raw = do("POST", "/v1/releases", `{"name":"again","services":["a"]}`)
	if _ = json.Unmarshal(raw, &e); code != http.StatusConflict || e.Code != apiv1.CodeInRelease {
		t.Fatalf("a second release of a member: %d %s", code, raw)
	}
	code, raw = do("GET", "/v1/releases/rel-1", "")
	if err := json.Unmarshal(raw, &st); code != http.StatusOK || err != nil || st.Release.Members[0].Phase != release.MemberSwitching {
		t.Fatalf("get: %d %s", code, raw)
	}
	if code, raw = do("GET", "/v1/releases/rel-9", ""); code != http.StatusNotFound || !strings.Contains(string(raw), apiv1.CodeUnknownRelease) {
		t.Fatalf("get of an unknown release: %d %s", code, raw)
	}
	if code, raw = do("POST", "/v1/releases/rel-1/resume", ""); code != http.StatusOK {
		t.Fatalf("resume of a running release: %d %s", code, raw)
	}
	if code, raw = do("POST", "/v1/releases/rel-1/abort", `{"reason":"INC-9"}`); code != http.StatusOK {
		t.Fatalf("abort: %d %s", code, raw)
	}
	r.rt.Advance(0)
	if code, raw = do("POST", "/v1/releases/rel-1/pause", ""); code != http.StatusConflict || !strings.Contains(string(raw), apiv1.CodeReleaseState) {
		t.Fatalf("pause of an aborted release: %d %s", code, raw)
	}
	code, raw = do("GET", "/v1/releases", "")
	var all []apiv1.ReleaseStatus
	if err := json.Unmarshal(raw, &all); code != http.StatusOK || err != nil || len(all) != 1 || all[0].Release.Phase != release.Aborted || all[0].Release.Reason != "INC-9" {
		t.Fatalf("list: %d %s", code, raw)
	}
	// The service is free again.
	if code, raw = do("POST", "/v1/services/a/switch", `{"instant":true}`); code != http.StatusOK {
		t.Fatalf("switch after the release: %d %s", code, raw)
	}
}
