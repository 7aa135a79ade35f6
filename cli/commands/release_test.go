package commands_test

import (
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"reflect"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/bgctl/bg/cli/commands"
	apiv1 "github.com/bgctl/bg/controlplane/api/v1"
	"github.com/bgctl/bg/controlplane/model"
	"github.com/bgctl/bg/controlplane/release"
)

// releaseServer fakes the release endpoints of the admin API. Each
// release answers its frames in turn: every GET of it and every command
// on it returns the current frame and moves to the next (the last one
// stays).
type releaseServer struct {
	mu      sync.Mutex
	frames  map[string][]apiv1.ReleaseStatus
	cursor  map[string]int
	started string                // the release POST /v1/releases answers with
	list    []apiv1.ReleaseStatus // GET /v1/releases
	// refuse answers POST /v1/releases with this status and body.
	refuse     int
	refuseBody apiv1.ErrorBody
	token      string
	// failGets answers this many GETs of a release with failBody (503).
	failGets int
	failBody apiv1.ErrorBody

	calls  []string // "METHOD URI"
	starts []apiv1.ReleaseRequest
	bodies []apiv1.ReleaseCommand
}

func newReleaseServer(t *testing.T, frames ...apiv1.ReleaseStatus) (*releaseServer, string) {
	t.Helper()
	f := &releaseServer{frames: map[string][]apiv1.ReleaseStatus{}, cursor: map[string]int{}}
	for _, st := range frames {
		f.frames[st.Release.ID] = append(f.frames[st.Release.ID], st)
	}
	if len(frames) > 0 {
		f.started = frames[0].Release.ID
	}
	srv := httptest.NewServer(http.HandlerFunc(f.serve))
	t.Cleanup(srv.Close)
	return f, srv.Listener.Addr().String()
}

func (f *releaseServer) serve(w http.ResponseWriter, r *http.Request) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.calls = append(f.calls, r.Method+" "+r.URL.RequestURI())
	body, _ := io.ReadAll(r.Body)
	answer := func(code int, v any) {
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(code)
		_ = json.NewEncoder(w).Encode(v)
	}
	if f.token != "" && r.Header.Get("Authorization") != "Bearer "+f.token {
		answer(http.StatusUnauthorized, apiv1.ErrorBody{Error: "unauthorized", Code: apiv1.CodeUnauthorized})
		return
	}
	next := func(id string) (apiv1.ReleaseStatus, bool) {
		frames := f.frames[id]
		if len(frames) == 0 {
			return apiv1.ReleaseStatus{}, false
		}
		i := f.cursor[id]
		f.cursor[id] = min(i+1, len(frames)-1)
		return frames[i], true
	}
	rest, _ := strings.CutPrefix(r.URL.EscapedPath(), "/v1/releases")
	switch {
	case rest == "" && r.Method == http.MethodGet:
		list := f.list
		if list == nil {
			list = []apiv1.ReleaseStatus{}
		}
		answer(http.StatusOK, list)
	case rest == "" && r.Method == http.MethodPost:
		var req apiv1.ReleaseRequest
		dec := json.NewDecoder(strings.NewReader(string(body)))
		dec.DisallowUnknownFields()
		if err := dec.Decode(&req); err != nil {
			answer(http.StatusBadRequest, apiv1.ErrorBody{Error: err.Error(), Code: apiv1.CodeBadRequest})
			return
		}
		f.starts = append(f.starts, req)
		if f.refuse != 0 {
			answer(f.refuse, f.refuseBody)
			return
		}
		st, _ := next(f.started)
		answer(http.StatusCreated, st)
	case r.Method == http.MethodGet && f.failGets > 0:
		f.failGets--
		answer(http.StatusServiceUnavailable, f.failBody)
	default:
		parts := strings.Split(strings.TrimPrefix(rest, "/"), "/")
		st, ok := next(parts[0])
		switch {
		case !ok:
			answer(http.StatusNotFound, apiv1.ErrorBody{Error: `unknown release "` + parts[0] + `"`, Code: "unknown_release"})
		case len(parts) == 1 && r.Method == http.MethodGet:
			answer(http.StatusOK, st)
		case len(parts) == 2 && r.Method == http.MethodPost:
			var cmd apiv1.ReleaseCommand
			_ = json.Unmarshal(body, &cmd)
			f.bodies = append(f.bodies, cmd)
			answer(http.StatusOK, st)
		default:
			answer(http.StatusNotFound, apiv1.ErrorBody{Error: "no such endpoint", Code: apiv1.CodeBadRequest})
		}
	}
}

func (f *releaseServer) requests() []string {
	f.mu.Lock()
	defer f.mu.Unlock()
	return append([]string(nil), f.calls...)
}

var t0 = time.Date(2025, 3, 1, 12, 0, 0, 0, time.UTC)

// mem builds a member of the chain web → api → auth (plus mail, alone).
func mem(svc string, phase release.MemberPhase, switchID string) release.Member {
	m := release.Member{Service: svc, From: model.Blue, To: model.Green, Phase: phase, SwitchID: switchID}
	switch svc {
	case "api":
		m.Level, m.DependsOn = 1, []string{"auth"}
	case "web":
		m.Level, m.DependsOn = 2, []string{"api"}
	}
	return m
}

// rel builds a frame of release rel-1 "checkout" with the given members
// (auth, mail, api, web in start order) and splits.
func rel(phase release.Phase, members []release.Member, green map[string]int) apiv1.ReleaseStatus {
	st := apiv1.ReleaseStatus{
		Release: release.Release{ID: "rel-1", Name: "checkout", Phase: phase, MaxParallel: 2, CreatedAt: t0, StartedAt: t0.Add(time.Second),
			Generation: 3, Members: members},
		Order:   [][]string{{"auth", "mail"}, {"api"}, {"web"}},
		Weights: map[string]apiv1.Weights{},
	}
	for _, m := range members {
		g := green[m.Service]
		st.Weights[m.Service] = apiv1.Weights{Blue: 100 - g, Green: g}
	}
	if phase.Ended() {
		st.Release.EndedAt = t0.Add(time.Hour)
	}
	return st
}

// promotedFrames: auth and mail switch, then api, then web; promoted.
func promotedFrames() []apiv1.ReleaseStatus {
	W, S, P := release.MemberWaiting, release.MemberSwitching, release.MemberPromoted
	return []apiv1.ReleaseStatus{
		rel(release.Running, []release.Member{mem("auth", S, "gen-4"), mem("mail", S, "gen-2"), mem("api", W, ""), mem("web", W, "")}, map[string]int{"auth": 10, "mail": 10}),
		rel(release.Running, []release.Member{mem("auth", S, "gen-4"), mem("mail", S, "gen-2"), mem("api", W, ""), mem("web", W, "")}, map[string]int{"auth": 50, "mail": 10}),
		rel(release.Running, []release.Member{mem("auth", P, "gen-4"), mem("mail", P, "gen-2"), mem("api", S, "gen-5"), mem("web", W, "")}, map[string]int{"auth": 100, "mail": 100, "api": 10}),
		rel(release.Running, []release.Member{mem("auth", P, "gen-4"), mem("mail", P, "gen-2"), mem("api", P, "gen-5"), mem("web", S, "gen-9")}, map[string]int{"auth": 100, "mail": 100, "api": 100, "web": 10}),
		func() apiv1.ReleaseStatus {
			st := rel(release.Promoted, []release.Member{mem("auth", P, "gen-4"), mem("mail", P, "gen-2"), mem("api", P, "gen-5"), mem("web", P, "gen-9")}, map[string]int{"auth": 100, "mail": 100, "api": 100, "web": 100})
			st.Release.Reason = "every member promoted"
			return st
		}(),
	}
}

// rolledBackFrames: auth is promoted, api fails its analysis; web never
// starts, api and then auth go back.
func rolledBackFrames() []apiv1.ReleaseStatus {
	W, S, P := release.MemberWaiting, release.MemberSwitching, release.MemberPromoted
	failed := func(m release.Member, phase release.MemberPhase) release.Member {
		m.Phase, m.Cause, m.Reason = phase, model.CauseAnalysisFailed, "analysis failed: candidate 20% errors vs baseline 0%"
		return m
	}
	back := func(m release.Member, phase release.MemberPhase) release.Member {
		m.Phase, m.RollbackID, m.Reason = phase, "gen-7", "rolled back with the release"
		return m
	}
	skipped := mem("web", release.MemberSkipped, "")
	skipped.Reason = "the release ended first"
	fail := func(st apiv1.ReleaseStatus) apiv1.ReleaseStatus {
		st.Release.Member, st.Release.Cause = "api", model.CauseAnalysisFailed
		st.Release.Reason = "api: analysis failed: candidate 20% errors vs baseline 0%"
		return st
	}
	mailP := mem("mail", P, "gen-2")
	return []apiv1.ReleaseStatus{
		rel(release.Running, []release.Member{mem("auth", S, "gen-4"), mailP, mem("api", W, ""), mem("web", W, "")}, map[string]int{"auth": 10, "mail": 100}),
		rel(release.Running, []release.Member{mem("auth", P, "gen-4"), mailP, mem("api", S, "gen-5"), mem("web", W, "")}, map[string]int{"auth": 100, "mail": 100, "api": 10}),
		fail(rel(release.RollingBack, []release.Member{mem("auth", P, "gen-4"), mailP, failed(mem("api", S, "gen-5"), release.MemberRollingBack), skipped}, map[string]int{"auth": 100, "mail": 100})),
		fail(rel(release.RollingBack, []release.Member{back(mem("auth", P, "gen-4"), release.MemberRollingBack), back(mailP, release.MemberRollingBack), failed(mem("api", S, "gen-5"), release.MemberRolledBack), skipped}, map[string]int{})),
		fail(rel(release.RolledBack, []release.Member{back(mem("auth", P, "gen-4"), release.MemberRolledBack), back(mailP, release.MemberRolledBack), failed(mem("api", S, "gen-5"), release.MemberRolledBack), skipped}, map[string]int{})),
	}
}

func fastPoll(t *testing.T) {
	t.Cleanup(commands.SetReleasePoll(time.Millisecond))
}

// inOrder fails unless every want appears in s, each after the previous.
func inOrder(t *testing.T, s string, want ...string) {
	t.Helper()
	at := 0
	for _, w := range want {
		i := strings.Index(s[at:], w)
		if i < 0 {
			t.Fatalf("output lacks %q after offset %d:\n%s", w, at, s)
		}
		at += i + len(w)
	}
}

func TestReleaseUsage(t *testing.T) {
	f, addr := newReleaseServer(t, promotedFrames()...)
	cases := []struct {
		name    string
		args    []string
		wantErr string
	}{
		{"start without a name", []string{"start"}, "NAME"},
		{"start without a name, with services", []string{"start", "--services", "web,api"}, "NAME"},
		{"start with services as arguments", []string{"start", "checkout", "web", "api"}, "--services"},
		{"services and all", []string{"start", "checkout", "--services", "web", "--all"}, "one of --services, --all or --group"},
		{"all and group", []string{"start", "checkout", "--all", "--group", "g"}, "one of --services, --all or --group"},
		{"services and group", []string{"start", "--services", "web", "--group", "g"}, "one of --services, --all or --group"},
		{"empty service", []string{"start", "checkout", "--services", "web,,api"}, "empty service name"},
		{"empty services", []string{"start", "checkout", "--services", ""}, "empty service name"},
		{"service twice", []string{"start", "checkout", "--services", "web,api, web"}, `"web" is listed twice`},
		{"empty group", []string{"start", "checkout", "--group", " "}, "--group"},
		{"bad colour", []string{"start", "checkout", "--to", "purple"}, "purple"},
		{"max parallel 0", []string{"start", "checkout", "--max-parallel", "0"}, "--max-parallel"},
		{"max parallel not a number", []string{"start", "checkout", "--max-parallel", "many"}, "many"},
		{"force without reason", []string{"start", "checkout", "--force"}, "--force needs --reason"},
		{"force with a blank reason", []string{"start", "checkout", "--force", "--reason", "  "}, "--force needs --reason"},
		{"bad output", []string{"start", "checkout", "-o", "yaml"}, "yaml"},
		{"zero wait timeout", []string{"start", "checkout", "--wait", "--timeout", "0s"}, "--timeout"},
		{"status of two", []string{"status", "rel-1", "rel-2"}, "one release ID"},
		{"status -o yaml", []string{"status", "-o", "yaml"}, "yaml"},
		{"abort without ID", []string{"abort"}, "one release ID"},
		{"pause of two", []string{"pause", "rel-1", "rel-2"}, "one release ID"},
		{"pause has no --wait", []string{"pause", "rel-1", "--wait"}, "wait"},
		{"resume -o yaml", []string{"resume", "rel-1", "-o", "yaml"}, "yaml"},
		{"history with an argument", []string{"history", "rel-1"}, "no arguments"},
		{"unknown subcommand", []string{"nosuch"}, `unknown release command "nosuch"`},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			code, out, errOut := run(t, append([]string{"--addr", addr, "release"}, tc.args...)...)
			expect(t, code, out, errOut, commands.ExitUsage, tc.wantErr)
		})
	}
	if calls := f.requests(); len(calls) != 0 {
		t.Errorf("the control plane was asked: %v", calls)
	}
}

func TestReleaseStartRequests(t *testing.T) {
	cases := []struct {
		args []string
		want apiv1.ReleaseRequest
	}{
		// NAME alone is a configured group.
		{[]string{"checkout"}, apiv1.ReleaseRequest{Name: "checkout", Group: "checkout"}},
		{[]string{"--group", "checkout"}, apiv1.ReleaseRequest{Group: "checkout"}},
		{[]string{"hotfix", "--group", "checkout"}, apiv1.ReleaseRequest{Name: "hotfix", Group: "checkout"}},
		{[]string{"nightly", "--all", "--max-parallel", "4"}, apiv1.ReleaseRequest{Name: "nightly", All: true, MaxParallel: 4}},
		// Flags before or after NAME.
		{[]string{"checkout", "--services", "web, api,auth", "--to", "green", "--force", "--reason", "INC-42"},
			apiv1.ReleaseRequest{Name: "checkout", Services: []string{"web", "api", "auth"}, To: "green", Force: true, Reason: "INC-42"}},
		{[]string{"--services", "web", "--to", "blue", "checkout"}, apiv1.ReleaseRequest{Name: "checkout", Services: []string{"web"}, To: "blue"}},
	}
	for _, tc := range cases {
		t.Run(strings.Join(tc.args, " "), func(t *testing.T) {
			f, addr := newReleaseServer(t, promotedFrames()...)
			code, out, errOut := run(t, append([]string{"--addr", addr, "release", "start"}, tc.args...)...)
			expect(t, code, out, errOut, commands.ExitOK)
			if len(f.starts) != 1 || !reflect.DeepEqual(f.starts[0], tc.want) {
				t.Errorf("sent %+v, want %+v", f.starts, tc.want)
			}
			want := "release rel-1 (checkout) started: 4 services in 3 levels: auth, mail → api → web\nfollow it with: bg release status rel-1\n"
			if out != want {
				t.Errorf("stdout %q, want %q", out, want)
			}
		})
	}
	t.Run("json", func(t *testing.T) {
		_, addr := newReleaseServer(t, promotedFrames()...)
		code, out, errOut := run(t, "--addr", addr, "release", "start", "checkout", "-o", "json")
		expect(t, code, out, errOut, commands.ExitOK)
		var got apiv1.ReleaseStatus
		if err := json.Unmarshal([]byte(out), &got); err != nil || !reflect.DeepEqual(got, promotedFrames()[0]) {
			t.Errorf("json %v: %s", err, out)
		}
	})
}

// The control plane's refusals keep their exit codes.
func TestReleaseStartRefused(t *testing.T) {
	cases := []struct {
		status int
		body   apiv1.ErrorBody
		want   int
	}{
		{http.StatusConflict, apiv1.ErrorBody{Error: "api: a switch is running (gen-9)", Code: apiv1.CodeSwitchRunning}, commands.ExitRefused},
		{http.StatusConflict, apiv1.ErrorBody{Error: "web: deploy window closed until 2025-03-03T09:00:00Z", Code: apiv1.CodeWindowClosed}, commands.ExitRefused},
		{http.StatusConflict, apiv1.ErrorBody{Error: "api is in release rel-0", Code: "member_busy"}, commands.ExitRefused}, // a code this CLI does not know: by status
		{http.StatusNotFound, apiv1.ErrorBody{Error: `unknown service "nosuch"`, Code: apiv1.CodeUnknownService}, commands.ExitUsage},
		{http.StatusBadRequest, apiv1.ErrorBody{Error: "depends_on cycle: a → b → a", Code: apiv1.CodeBadRequest}, commands.ExitUsage},
	}
	for _, tc := range cases {
		t.Run(tc.body.Error, func(t *testing.T) {
			f, addr := newReleaseServer(t, promotedFrames()...)
			f.refuse, f.refuseBody = tc.status, tc.body
			code, out, errOut := run(t, "--addr", addr, "release", "start", "checkout", "--services", "web,api", "--wait")
			expect(t, code, out, errOut, tc.want, tc.body.Error)
			if out != "" {
				t.Errorf("stdout on a refusal: %q", out)
			}
		})
	}
	t.Run("unauthorized", func(t *testing.T) {
		f, addr := newReleaseServer(t, promotedFrames()...)
		f.token = "s3cret"
		for _, args := range [][]string{{"start", "checkout"}, {"status"}, {"status", "rel-1"}, {"abort", "rel-1"}, {"history"}} {
			code, out, errOut := run(t, append([]string{"--addr", addr, "--token", "wrong", "release"}, args...)...)
			expect(t, code, out, errOut, commands.ExitUnauthorized, "token")
		}
		code, out, errOut := run(t, "--addr", addr, "--token", "s3cret", "release", "status", "rel-1")
		expect(t, code, out, errOut, commands.ExitOK)
	})
}

func TestReleaseWaitPromoted(t *testing.T) {
	fastPoll(t)
	f, addr := newReleaseServer(t, promotedFrames()...)
	code, out, errOut := run(t, "--addr", addr, "release", "start", "checkout", "--services", "web,api,auth,mail", "--wait")
	expect(t, code, out, errOut, commands.ExitOK)
	inOrder(t, out,
		"release rel-1 (checkout): order auth, mail → api → web",
		"release rel-1 (checkout): running",
		"auth: switching gen-4: blue 90% green 10%",
		"mail: switching gen-2: blue 90% green 10%",
		"auth: switching gen-4: blue 50% green 50%",
		"auth: promoted gen-4",
		"api: switching gen-5: blue 90% green 10%",
		"api: promoted gen-5",
		"web: switching gen-9",
		"web: promoted gen-9",
		"release rel-1 (checkout): promoted: every member promoted",
	)
	// A line per change, not per poll; waiting members are implied at first.
	if n := strings.Count(out, "auth: promoted"); n != 1 {
		t.Errorf("auth: promoted printed %d times:\n%s", n, out)
	}
	if strings.Contains(out, "web: waiting") {
		t.Errorf("a waiting member printed at start:\n%s", out)
	}
	calls := f.requests()
	if calls[0] != "POST /v1/releases" || calls[len(calls)-1] != "GET /v1/releases/rel-1" || len(calls) != 5 {
		t.Errorf("calls %v", calls)
	}
}

func TestReleaseWaitRolledBack(t *testing.T) {
	fastPoll(t)
	t.Run("text", func(t *testing.T) {
		_, addr := newReleaseServer(t, rolledBackFrames()...)
		code, out, errOut := run(t, "--addr", addr, "release", "start", "checkout", "--services", "web,api,auth,mail", "--wait")
		expect(t, code, out, errOut, commands.ExitRolledBack,
			"release rel-1 (checkout) rolled back: api: analysis failed: candidate 20% errors vs baseline 0% [cause analysis_failed]")
		inOrder(t, out,
			"auth: promoted gen-4",
			"api: switching gen-5",
			"api: rolling_back gen-5: blue 100% green 0% (analysis failed: candidate 20% errors vs baseline 0%; cause analysis_failed)",
			"web: skipped (the release ended first)",
			"release rel-1 (checkout): rolling_back: api: analysis failed",
			"auth: rolling_back gen-4, back gen-7",
			"api: rolled_back gen-5",
			"auth: rolled_back gen-4, back gen-7 (rolled back with the release)",
			"release rel-1 (checkout): rolled_back: api: analysis failed",
		)
	})
	t.Run("json", func(t *testing.T) {
		_, addr := newReleaseServer(t, rolledBackFrames()...)
		code, out, errOut := run(t, "--addr", addr, "release", "start", "checkout", "--services", "web,api,auth,mail", "--wait", "-o", "json")
		expect(t, code, out, errOut, commands.ExitRolledBack, "api: analysis failed")
		var got apiv1.ReleaseStatus
		dec := json.NewDecoder(strings.NewReader(out))
		if err := dec.Decode(&got); err != nil {
			t.Fatalf("stdout is not one JSON document: %v\n%s", err, out)
		}
		if dec.More() {
			t.Errorf("more than the final report on stdout:\n%s", out)
		}
		frames := rolledBackFrames()
		if !reflect.DeepEqual(got, frames[len(frames)-1]) {
			t.Errorf("report %+v", got)
		}
	})
}

func TestReleaseWaitTimeout(t *testing.T) {
	fastPoll(t)
	frames := promotedFrames()[:1] // running for ever
	_, addr := newReleaseServer(t, frames...)
	code, out, errOut := run(t, "--addr", addr, "release", "start", "checkout", "--wait", "--timeout", "30ms")
	expect(t, code, out, errOut, commands.ExitTimedOut, "release rel-1 still running after 30ms")
	// --wait-timeout, as for switch, and -o json reports the last state.
	code, out, errOut = run(t, "--addr", addr, "release", "start", "checkout", "--wait", "--wait-timeout", "30ms", "-o", "json")
	expect(t, code, out, errOut, commands.ExitTimedOut)
	var got apiv1.ReleaseStatus
	if err := json.Unmarshal([]byte(out), &got); err != nil || got.Release.Phase != release.Running {
		t.Errorf("timeout report %v: %s", err, out)
	}
}

func TestReleaseAbort(t *testing.T) {
	fastPoll(t)
	P := release.MemberPromoted
	aborting := rel(release.RollingBack, []release.Member{mem("auth", P, "gen-4"), mem("mail", P, "gen-2"), mem("api", release.MemberAborting, "gen-5"), mem("web", release.MemberSkipped, "")}, map[string]int{"auth": 100, "mail": 100, "api": 10})
	aborting.Release.Cause, aborting.Release.Reason = model.CauseAborted, "INC-42"
	aborted := rel(release.Aborted, []release.Member{mem("auth", release.MemberRolledBack, "gen-4"), mem("mail", release.MemberRolledBack, "gen-2"), mem("api", release.MemberAborted, "gen-5"), mem("web", release.MemberSkipped, "")}, map[string]int{})
	aborted.Release.Cause, aborted.Release.Reason = model.CauseAborted, "INC-42"

	t.Run("by ID", func(t *testing.T) {
		f, addr := newReleaseServer(t, aborting, aborted)
		code, out, errOut := run(t, "--addr", addr, "release", "abort", "rel-1", "--reason", "INC-42")
		expect(t, code, out, errOut, commands.ExitOK)
		if out != "release rel-1 (checkout): rolling_back: INC-42 [cause aborted]\n" {
			t.Errorf("stdout %q", out)
		}
		if calls := f.requests(); !reflect.DeepEqual(calls, []string{"POST /v1/releases/rel-1/abort"}) || f.bodies[0].Reason != "INC-42" {
			t.Errorf("calls %v, bodies %+v", calls, f.bodies)
		}
	})
	t.Run("wait", func(t *testing.T) {
		_, addr := newReleaseServer(t, aborting, aborted)
		code, out, errOut := run(t, "--addr", addr, "release", "abort", "rel-1", "--reason", "INC-42", "--wait")
		expect(t, code, out, errOut, commands.ExitAborted, "release rel-1 (checkout) aborted: INC-42")
		inOrder(t, out, "api: aborting gen-5", "api: aborted gen-5", "release rel-1 (checkout): aborted")
	})
	t.Run("by name", func(t *testing.T) {
		f, addr := newReleaseServer(t, aborting, aborted)
		old := aborted
		old.Release.ID = "rel-0"
		f.list = []apiv1.ReleaseStatus{promotedFrames()[0], old}
		code, out, errOut := run(t, "--addr", addr, "release", "abort", "checkout")
		expect(t, code, out, errOut, commands.ExitOK)
		want := []string{"POST /v1/releases/checkout/abort", "GET /v1/releases", "POST /v1/releases/rel-1/abort"}
		if calls := f.requests(); !reflect.DeepEqual(calls, want) {
			t.Errorf("calls %v, want %v", calls, want)
		}
	})
	t.Run("unknown", func(t *testing.T) {
		_, addr := newReleaseServer(t, aborting)
		code, out, errOut := run(t, "--addr", addr, "release", "abort", "nosuch")
		expect(t, code, out, errOut, commands.ExitUsage, `unknown release "nosuch"`)
	})
	t.Run("a name of two running releases", func(t *testing.T) {
		f, addr := newReleaseServer(t, aborting)
		other := promotedFrames()[0]
		other.Release.ID = "rel-2"
		f.list = []apiv1.ReleaseStatus{other, promotedFrames()[0]}
		code, out, errOut := run(t, "--addr", addr, "release", "abort", "checkout")
		expect(t, code, out, errOut, commands.ExitUsage, `2 running releases are named "checkout"`, "rel-2, rel-1")
	})
}

func TestReleasePauseResume(t *testing.T) {
	fastPoll(t)
	paused := promotedFrames()[0]
	paused.Release.Phase, paused.Release.Reason = release.Paused, "paused by hand"
	f, addr := newReleaseServer(t, paused)
	code, out, errOut := run(t, "--addr", addr, "release", "pause", "rel-1", "--reason", "lunch")
	expect(t, code, out, errOut, commands.ExitOK)
	if out != "release rel-1 (checkout): paused: paused by hand\n" || f.bodies[0].Reason != "lunch" {
		t.Errorf("stdout %q, body %+v", out, f.bodies)
	}
	code, out, errOut = run(t, "--addr", addr, "release", "pause", "rel-1", "-o", "json")
	expect(t, code, out, errOut, commands.ExitOK)
	var got apiv1.ReleaseStatus
	if err := json.Unmarshal([]byte(out), &got); err != nil || !reflect.DeepEqual(got, paused) {
		t.Errorf("json %v: %s", err, out)
	}

	// resume --wait follows to the end.
	f, addr = newReleaseServer(t, promotedFrames()...)
	code, out, errOut = run(t, "--addr", addr, "release", "resume", "rel-1", "--wait")
	expect(t, code, out, errOut, commands.ExitOK)
	inOrder(t, out, "release rel-1 (checkout): running", "web: promoted", "release rel-1 (checkout): promoted")
	if calls := f.requests(); calls[0] != "POST /v1/releases/rel-1/resume" {
		t.Errorf("calls %v", calls)
	}

	// A refusal keeps its code.
	code, out, errOut = run(t, "--addr", addr, "release", "pause", "nosuch")
	expect(t, code, out, errOut, commands.ExitUsage, "unknown release")
}

func statusFixture() apiv1.ReleaseStatus {
	st := rolledBackFrames()[2]
	st.Release.Force, st.Release.ForceReason = true, "INC-42"
	return st
}

func TestReleaseStatusText(t *testing.T) {
	st := statusFixture()
	held := mem("web", release.MemberWaiting, "")
	held.Window = &release.Window{Until: t0.Add(2 * time.Hour), Reason: "weekday 09:00-17:00"}
	st.Release.Members[3] = held
	_, addr := newReleaseServer(t, st)
	code, out, errOut := run(t, "--addr", addr, "release", "status", "rel-1")
	expect(t, code, out, errOut, commands.ExitOK)
	want := `release rel-1 (checkout): rolling_back: api: analysis failed: candidate 20% errors vs baseline 0% [cause analysis_failed]
created 2025-03-01T12:00:00Z, started 2025-03-01T12:00:01Z, ended -; max parallel 2; generation 3
OVERRIDE (--force): INC-42
order: auth, mail → api → web
SERVICE  LEVEL  DEPENDS ON  MOVE        PHASE         SPLIT               SWITCH  WHY
auth     0      -           blue→green  promoted      blue 0% green 100%  gen-4   -
mail     0      -           blue→green  promoted      blue 0% green 100%  gen-2   -
api      1      auth        blue→green  rolling_back  blue 100% green 0%  gen-5   analysis failed: candidate 20% errors vs baseline 0%; cause analysis_failed
web      2      api         blue→green  waiting       blue 100% green 0%  -       held by its deploy window until 2025-03-01T14:00:00Z (weekday 09:00-17:00)
`
	if out != want {
		t.Errorf("stdout:\n%s\nwant:\n%s", out, want)
	}
}

func TestReleaseStatusJSON(t *testing.T) {
	st := statusFixture()
	_, addr := newReleaseServer(t, st)
	code, out, errOut := run(t, "--addr", addr, "release", "status", "rel-1", "-o", "json")
	expect(t, code, out, errOut, commands.ExitOK)
	var got apiv1.ReleaseStatus
	if err := json.Unmarshal([]byte(out), &got); err != nil || !reflect.DeepEqual(got, st) {
		t.Errorf("json %v:\n%s", err, out)
	}
	for _, field := range []string{`"level": 1`, `"depends_on": [`, `"switch_id": "gen-5"`, `"order": [`, `"weights": {`} {
		if !strings.Contains(out, field) {
			t.Errorf("json lacks %s", field)
		}
	}
}

func TestReleaseStatusByName(t *testing.T) {
	newer, older := promotedFrames()[4], rolledBackFrames()[4]
	newer.Release.ID, older.Release.ID = "rel-9", "rel-3"
	f, addr := newReleaseServer(t)
	f.list = []apiv1.ReleaseStatus{newer, older}
	code, out, errOut := run(t, "--addr", addr, "release", "status", "checkout")
	expect(t, code, out, errOut, commands.ExitOK)
	if !strings.HasPrefix(out, "release rel-9 (checkout): promoted") {
		t.Errorf("stdout:\n%s", out)
	}
	code, out, errOut = run(t, "--addr", addr, "release", "status", "nosuch")
	expect(t, code, out, errOut, commands.ExitUsage, `unknown release "nosuch"`)
}

func TestReleaseListAndHistory(t *testing.T) {
	running := promotedFrames()[2]
	running.Release.ID = "rel-3"
	done, failed := promotedFrames()[4], rolledBackFrames()[4]
	failed.Release.ID, failed.Release.Name = "rel-2", "nightly"
	f, addr := newReleaseServer(t)
	f.list = []apiv1.ReleaseStatus{running, failed, done}

	code, out, errOut := run(t, "--addr", addr, "release", "status")
	expect(t, code, out, errOut, commands.ExitOK)
	want := `ID     NAME      PHASE        SERVICES      CREATED               ENDED                 WHY
rel-3  checkout  running      2/4 promoted  2025-03-01T12:00:00Z  -                     -
rel-2  nightly   rolled_back  0/4 promoted  2025-03-01T12:00:00Z  2025-03-01T13:00:00Z  api: analysis failed: candidate 20% errors vs baseline 0% [cause analysis_failed]
rel-1  checkout  promoted     4/4 promoted  2025-03-01T12:00:00Z  2025-03-01T13:00:00Z  every member promoted
`
	if out != want {
		t.Errorf("status:\n%s\nwant:\n%s", out, want)
	}

	code, out, errOut = run(t, "--addr", addr, "release", "history")
	expect(t, code, out, errOut, commands.ExitOK)
	if strings.Contains(out, "rel-3") || !strings.Contains(out, "rel-2") || !strings.Contains(out, "rel-1") {
		t.Errorf("history lists more or less than the ended releases:\n%s", out)
	}
	code, out, errOut = run(t, "--addr", addr, "release", "history", "-o", "json")
	expect(t, code, out, errOut, commands.ExitOK)
	var got []apiv1.ReleaseStatus
	if err := json.Unmarshal([]byte(out), &got); err != nil || len(got) != 2 || got[0].Release.ID != "rel-2" || got[1].Release.ID != "rel-1" {
		t.Errorf("history json %v:\n%s", err, out)
	}

	f.list = []apiv1.ReleaseStatus{running}
	code, out, errOut = run(t, "--addr", addr, "release", "history")
	expect(t, code, out, errOut, commands.ExitOK)
	if out != "no ended releases\n" {
		t.Errorf("empty history: %q", out)
	}
	code, out, errOut = run(t, "--addr", addr, "release", "history", "-o", "json")
	expect(t, code, out, errOut, commands.ExitOK)
	if strings.TrimSpace(out) != "[]" {
		t.Errorf("empty history json: %q", out)
	}
	f.list = nil
	code, out, errOut = run(t, "--addr", addr, "release", "status")
	expect(t, code, out, errOut, commands.ExitOK)
	if out != "no releases\n" {
		t.Errorf("no releases: %q", out)
	}
}

// --wait reads through a leader change (503s) for a while; the release
// goes on in the control plane.
func TestReleaseWaitThroughLeaderChange(t *testing.T) {
	fastPoll(t)
	noLeader := apiv1.ErrorBody{Error: "no leader elected", Code: apiv1.CodeNoLeader}
	f, addr := newReleaseServer(t, promotedFrames()...)
	f.failGets, f.failBody = 3, noLeader
	code, out, errOut := run(t, "--addr", addr, "release", "start", "checkout", "--wait")
	expect(t, code, out, errOut, commands.ExitOK)
	if n := strings.Count(out, "retrying"); n != 1 {
		t.Errorf("%d retry lines:\n%s", n, out)
	}
	inOrder(t, out, "auth: switching", "no leader elected", "release rel-1 (checkout): promoted")

	t.Cleanup(commands.SetReleaseRetry(20 * time.Millisecond))
	f, addr = newReleaseServer(t, promotedFrames()...)
	f.failGets, f.failBody = 1<<30, noLeader
	code, out, errOut = run(t, "--addr", addr, "release", "start", "checkout", "--wait")
	expect(t, code, out, errOut, commands.ExitRefused, "no leader elected")

	// Not a leader change: reported at once.
	f, addr = newReleaseServer(t, promotedFrames()...)
	f.started = "start" // answers with rel-1, which GET does not know
	f.frames["start"] = []apiv1.ReleaseStatus{promotedFrames()[0]}
	delete(f.frames, "rel-1")
	code, out, errOut = run(t, "--addr", addr, "release", "start", "checkout", "--wait")
	expect(t, code, out, errOut, commands.ExitUsage, `unknown release "rel-1"`)
}
