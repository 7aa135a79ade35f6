package e2e

import (
	"fmt"
	"net/http"
	"slices"
	"strings"
	"testing"
	"time"

	apiv1 "github.com/bgctl/bg/controlplane/api/v1"
	"github.com/bgctl/bg/controlplane/model"
	"github.com/bgctl/bg/controlplane/release"
	"github.com/bgctl/bg/e2e/harness"
)

// Release gates and release.watch_consumers on real Consul, Prometheus
// and grpc-go xDS clients: a configured group's pre gate is called before
// its first member starts, its post gate after its last member is
// promoted; a failing post gate takes every member back, the consumer
// before its provider; a provider whose switch makes its consumer fail is
// rolled back although its own analysis passes.
func TestReleaseGatesAndConsumers(t *testing.T) {
	pre, post, hook := startGate(t), startGate(t), startGate(t)
	s := newRelStackWith(t, 1, `  watch_consumers: true
notifications:
  - {name: hook, type: webhook, url: "`+hook.URL+`", services: [auth, api]}
releases:
  - name: checkout
    services: [auth, api]
    gates:
      - {name: precheck, url: "`+pre.URL+`", stages: [pre], timeout: 2s}
      - {name: soak, url: "`+post.URL+`", stages: [post], timeout: 2s}
`)
	s.startClients(0)

	ok := t.Run("pre gate before the first member, post gate after the last promotion", func(t *testing.T) {
		before := s.marks()
		code, st, _ := s.startRelease(0, "checkout").wait(t)
		timeline(t, st)
		r := st.Release
		if code != 0 || r.Phase != release.Promoted {
			t.Fatalf("exit %d, release %s (%s); log:\n%s", code, r.Phase, r.Reason, s.bgLog())
		}
		auth, api := member(t, st, "auth"), member(t, st, "api")
		pres, posts := pre.take(), post.take()
		if len(pres) != 1 || len(posts) != 1 {
			t.Fatalf("gate calls: pre %d, post %d; want one each", len(pres), len(posts))
		}
		for _, c := range []struct {
			call  gateCall
			stage string
		}{{pres[0], "pre"}, {posts[0], "post"}} {
			if c.call.body["stage"] != c.stage || !strings.Contains(fmt.Sprint(c.call.body), r.ID) {
				t.Errorf("%s gate payload %v: want stage %s naming release %s", c.stage, c.call.body, c.stage, r.ID)
			}
		}
		if !pres[0].at.Before(auth.StartedAt) || !pres[0].at.Before(api.StartedAt) {
			t.Errorf("pre gate called %v; auth started %v, api %v: want the gate first", pres[0].at, auth.StartedAt, api.StartedAt)
		}
		if !posts[0].at.After(auth.EndedAt) || !posts[0].at.After(api.EndedAt) {
			t.Errorf("post gate called %v; auth promoted %v, api %v: want the gate after both", posts[0].at, auth.EndedAt, api.EndedAt)
		}
		if !r.EndedAt.After(api.EndedAt) {
			t.Errorf("release ended %v, not after its post gate's member %v", r.EndedAt, api.EndedAt)
		}
		t.Logf("measured: pre gate → auth started %v; api promoted → post gate called %v; release ended %v after",
			auth.StartedAt.Sub(pres[0].at).Round(time.Millisecond), posts[0].at.Sub(api.EndedAt).Round(time.Millisecond), r.EndedAt.Sub(posts[0].at).Round(time.Millisecond))
		s.expectAll(map[string]string{"auth": "green", "api": "green", "web": "blue", "search": "blue"}, 10*time.Second)
		// Notifications, in the order they happened, each once.
		want := []string{"release_started " + r.ID, "started auth", "promoted auth", "started api", "promoted api", "release_promoted " + r.ID}
		if got := notified(t, hook, want[len(want)-1]); !slices.Equal(got, want) {
			t.Errorf("notifications %q, want %q", got, want)
		}
		for svc, n := range s.since(before) {
			if n.Failed != 0 {
				t.Errorf("%s: %d failed calls", svc, n.Failed)
			}
		}
	})
	if !ok {
		t.Fatal("the first release did not promote: the failing one cannot run")
	}

	t.Run("a failing post gate rolls every member back, api before auth", func(t *testing.T) {
		post.status.Store(http.StatusServiceUnavailable)
		defer post.status.Store(http.StatusOK)
		run := s.startRelease(0, "checkout")
		code, st, _ := run.wait(t)
		timeline(t, st)
		r := st.Release
		if code != 10 || r.Phase != release.RolledBack || r.Cause != "gate_failed" || r.Member != "" || !strings.Contains(r.Reason, "soak") {
			t.Fatalf("exit %d, release %s cause %q member %q (%s); want rolled_back by the soak gate; stderr %s\nlog:\n%s",
				code, r.Phase, r.Cause, r.Member, r.Reason, run.errOut.String(), s.bgLog())
		}
		auth, api := member(t, st, "auth"), member(t, st, "api")
		for _, m := range []release.Member{auth, api} {
			if m.Phase != release.MemberRolledBack || m.SwitchID == "" || m.RollbackID == "" {
				t.Errorf("%s: %+v, want promoted then rolled back by the release", m.Service, m)
			}
		}
		// Consumers first: auth's switch back starts only after api's is
		// confirmed.
		authBack, _ := switchTimes(s.history(0, "auth"), auth.RollbackID)
		apiBack, apiDone := spanOf(s.history(0, "api"), api.RollbackID)
		if authBack.IsZero() || apiBack.IsZero() || !authBack.After(apiDone) {
			t.Errorf("auth's switch back first written %v; api's %v, done %v: want auth after api", authBack, apiBack, apiDone)
		}
		for _, m := range r.Members {
			if w := st.Weights[m.Service]; w != (apiv1.Weights{Green: 100}) {
				t.Errorf("%s: weights %+v, want back on green", m.Service, w)
			}
		}
		s.expectAll(map[string]string{"auth": "green", "api": "green", "web": "blue", "search": "blue"}, 10*time.Second)
		t.Logf("measured: post gate failed; api back %v, auth back %v after it", apiDone.Sub(apiBack).Round(time.Millisecond), authBack.Sub(apiDone).Round(time.Millisecond))
		if got := notified(t, hook, "release_rolled_back "+r.ID+" gate_failed"); len(got) == 0 || got[len(got)-1] != "release_rolled_back "+r.ID+" gate_failed" {
			t.Errorf("notifications %q, want release_rolled_back %s gate_failed last", got, r.ID)
		}
	})

	t.Run("watch_consumers: auth's switch makes api fail: auth rolled back, api never starts", func(t *testing.T) {
		consumerRegression(t, s, hook)
	})
}

// spanOf is when a switch's first and last history entries were written.
func spanOf(h []relHistory, switchID string) (first, last time.Time) {
	for _, e := range h {
		if strings.Contains(e.Detail, "switch "+switchID+" ") {
			if first.IsZero() {
				first = e.At
			}
			last = e.At
		}
	}
	return first, last
}

// consumerRegression is the third part of TestReleaseGatesAndConsumers.
func consumerRegression(t *testing.T, s *relStack, hook *gateServer) {
	// api calls auth. As soon as auth's switch begins, api's serving fleet
	// fails 20 % of calls, as if auth's new version broke it; auth's own
	// fleets stay healthy, so only the consumer test can see it.
	from := "green"
	if s.svcStatus(0, "api").Weights.Blue == 100 {
		from = "blue"
	}
	authOn := "green"
	if s.svcStatus(0, "auth").Weights.Blue == 100 {
		authOn = "blue"
	}
	to := map[string]string{"green": "blue", "blue": "green"}[authOn]
	before := s.marks()
	run := s.startRelease(0, "consumers", "--services", "auth,api", "--to", to)
	deadline := time.Now().Add(30 * time.Second)
	for s.svcStatus(0, "auth").Switch == nil || s.svcStatus(0, "auth").Switch.Phase != "progressing" {
		if time.Now().After(deadline) {
			t.Fatal("auth's switch never began")
		}
		time.Sleep(20 * time.Millisecond)
	}
	broke := time.Now()
	for id, b := range s.backends {
		if strings.HasPrefix(id, "api-"+from+"-") {
			b.SetFailRatio(0.2)
			defer b.SetFailRatio(0)
		}
	}
	code, st, _ := run.wait(t)
	timeline(t, st)
	r := st.Release
	auth, api := member(t, st, "auth"), member(t, st, "api")
	if code != 10 || r.Phase != release.RolledBack || r.Member != "auth" || r.Cause != model.CauseConsumerRegressed {
		t.Fatalf("exit %d, release %s member %q cause %q (%s); stderr %s\nlog:\n%s", code, r.Phase, r.Member, r.Cause, r.Reason, run.errOut.String(), s.bgLog())
	}
	if api.Phase != release.MemberSkipped || auth.Phase != release.MemberRolledBack || !strings.Contains(auth.Reason+r.Reason, "consumer api") {
		t.Errorf("auth %+v; api %+v", auth, api)
	}
	sv := s.svcStatus(0, "auth")
	if sv.Switch == nil || sv.Switch.Cause != "consumer_regressed" || sv.Switch.ConfirmedAt.IsZero() {
		t.Errorf("auth's switch %+v: want rolled back by consumer_regressed, confirmed", sv.Switch)
	} else {
		t.Logf("measured: api failing → auth's rollback confirmed %v", sv.Switch.ConfirmedAt.Sub(broke).Round(10*time.Millisecond))
	}
	want := []string{"release_started " + r.ID, "started auth", "rolled_back auth consumer_regressed", "release_rolled_back " + r.ID + " consumer_regressed"}
	if got := notified(t, hook, want[len(want)-1]); !slices.Equal(got, want) {
		t.Errorf("notifications %q, want %q", got, want)
	}
	// auth back on its colour (api keeps failing until the test ends).
	c := s.clients["auth"]
	c.WaitFor(t, 10*time.Second, func(n harness.Counts) bool { return n.OK() > 0 && colorCount(n, authOn) == n.OK() })
	m := c.Mark()
	time.Sleep(time.Second)
	if n := c.Since(m); n.OK() == 0 || colorCount(n, authOn) != n.OK() {
		t.Errorf("auth: want 100%% %s, got %s", authOn, n)
	}
	if n := s.since(before)["auth"]; n.Failed != 0 {
		t.Errorf("auth: %d failed calls; its own fleets were healthy", n.Failed)
	}
}

// notified waits until the hook has received last, then returns what it
// received since it was last read: "KIND SERVICE|RELEASE [CAUSE]".
func notified(t *testing.T, hook *gateServer, last string) []string {
	t.Helper()
	var out []string
	deadline := time.Now().Add(10 * time.Second)
	for {
		for _, c := range hook.take() {
			who := fmt.Sprint(c.body["service"])
			if c.body["service"] == nil {
				who = fmt.Sprint(c.body["release"])
			}
			line := fmt.Sprint(c.body["event"]) + " " + who
			if cause, ok := c.body["cause"]; ok {
				line += " " + fmt.Sprint(cause)
			}
			out = append(out, line)
		}
		if len(out) > 0 && out[len(out)-1] == last || time.Now().After(deadline) {
			return out
		}
		time.Sleep(50 * time.Millisecond)
	}
}
