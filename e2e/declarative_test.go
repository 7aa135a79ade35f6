package e2e

import (
	"encoding/json"
	"strings"
	"testing"
	"time"
)

// convergeJSON is the status's "converge" section.
type convergeJSON struct {
	Auto    bool `json:"auto"`
	Desired *struct {
		Version string `json:"version"`
		Attempt string `json:"attempt"`
		Failed  *struct {
			Cause    string `json:"cause"`
			Reason   string `json:"reason"`
			SwitchID string `json:"switch_id"`
		} `json:"failed"`
	} `json:"desired"`
	State  string `json:"state"`
	Detail string `json:"detail"`
	Have   int    `json:"have"`
	Want   int    `json:"want"`
}

type declStatus struct {
	statusJSON
	Converge *convergeJSON `json:"converge"`
}

func (s *stack) declStatus(t *testing.T) declStatus {
	t.Helper()
	var st declStatus
	if err := s.statusInto(service, &st); err != nil {
		t.Fatal(err)
	}
	return st
}

// TestDeclarativeDelivery (issue 17) on real Consul and Prometheus with
// grpc-go xDS clients: a desired version converges by itself once its
// fleet is at capacity and settled; a failing version is rolled back,
// remembered and not retried.
func TestDeclarativeDelivery(t *testing.T) {
	s := newStackWith(t, stackOptions{blue: 2, green: 2, analysis: e2eAnalysis, serviceYAML: "auto: {enabled: true, settle: 5s}"})
	// Prometheus scrapes the green hosts from the start; they leave Consul
	// now and come back one by one, as a deploy brings them up.
	greens := []string{service + "-green-1", service + "-green-2"}
	for _, id := range greens {
		if err := s.backends[id].Deregister(s.consul.Client()); err != nil {
			t.Fatal(err)
		}
	}
	s.startClients(2)
	s.expectAll("blue", 20*time.Second)

	t.Run("v2 converges by itself once 2 are passing and 5 s settled", func(t *testing.T) {
		s.mustCLI("desire", service, "--version", "v2", "--reason", "e2e deploy")
		time.Sleep(2 * time.Second)
		if st := s.declStatus(t); st.Weights.Blue != 100 || st.Switch != nil || st.Converge == nil || st.Converge.State != "no_fleet_runs_version" {
			t.Fatalf("before any green: %+v %+v", st.Weights, st.Converge)
		}
		if err := s.backends[greens[0]].Register(s.consul.Client()); err != nil {
			t.Fatal(err)
		}
		time.Sleep(3 * time.Second)
		st := s.declStatus(t)
		if st.Weights.Blue != 100 || st.Switch != nil || st.Converge.State != "waiting_for_capacity" || st.Converge.Have != 1 || st.Converge.Want != 2 {
			t.Fatalf("with 1 of 2 green: %+v switch %+v converge %+v", st.Weights, st.Switch, st.Converge)
		}
		if out := s.mustCLI("status", service); !strings.Contains(out, "web: desired v2, serving v1: waiting for capacity (1/2 passing on green)") {
			t.Fatalf("status does not say why:\n%s", out)
		}
		// bg wait runs alongside, as CI would.
		type result struct {
			code           int
			stdout, stderr string
		}
		waited := make(chan result, 1)
		go func() {
			out, errOut, code := s.cli("wait", service, "--version", "v2", "--timeout", "2m")
			waited <- result{code, out, errOut}
		}()
		if err := s.backends[greens[1]].Register(s.consul.Client()); err != nil {
			t.Fatal(err)
		}
		ready := time.Now()
		var settling bool
		var started time.Time
		for deadline := time.Now().Add(30 * time.Second); started.IsZero(); {
			st := s.declStatus(t)
			if st.Converge.State == "settling" {
				settling = true
			}
			if st.Switch != nil {
				started = time.Now()
				break
			}
			if time.Now().After(deadline) {
				t.Fatalf("no switch 30 s after capacity: %+v", st.Converge)
			}
			time.Sleep(100 * time.Millisecond)
		}
		if took := started.Sub(ready); !settling || took < 5*time.Second || took > 15*time.Second {
			t.Fatalf("switch began %s after capacity (settling seen: %v); want 5 s of settling first", took, settling)
		}
		t.Logf("switch began %s after the second green was registered", started.Sub(ready).Round(100*time.Millisecond))
		r := <-waited
		if r.code != 0 || !strings.Contains(r.stdout, "serves 100%") {
			t.Fatalf("bg wait --version v2: exit %d\nstdout %s\nstderr %s", r.code, r.stdout, r.stderr)
		}
		// The converge section is decided again on every change and tick.
		for deadline := time.Now().Add(3 * time.Second); ; time.Sleep(100 * time.Millisecond) {
			if st = s.declStatus(t); st.Converge.State == "converged" || time.Now().After(deadline) {
				break
			}
		}
		if st.Weights.Green != 100 || st.Switch == nil || st.Switch.Phase != "promoted" || st.Converge.State != "converged" {
			t.Fatalf("after convergence: %+v switch %+v converge %+v", st.Weights, st.Switch, st.Converge)
		}
		steps := map[int]bool{}
		for _, v := range st.Switch.Verdicts {
			if v.Outcome == "pass" {
				steps[v.Percent] = true
			}
		}
		if !steps[20] || !steps[50] {
			t.Fatalf("not the progressive plan with the judge: verdicts %+v", st.Switch.Verdicts)
		}
		var byConverge bool
		for _, h := range s.history(t) {
			if strings.HasPrefix(h.Actor, "bg:converge") && strings.Contains(h.Reason, "desired version v2") {
				byConverge = true
			}
		}
		if !byConverge {
			t.Fatalf("history names no bg:converge switch to v2: %+v", s.history(t))
		}
		s.expectAll("green", 10*time.Second)
	})

	t.Run("failing v3 is rolled back, not retried, and bg wait exits 10", func(t *testing.T) {
		// Blue is redeployed with v3, which fails 30 % of its calls.
		for id, b := range s.backends {
			if strings.Contains(id, "-blue-") {
				b.SetFailRatio(0.3)
				if err := b.RegisterVersion(s.consul.Client(), "v3"); err != nil {
					t.Fatal(err)
				}
			}
		}
		defer func() {
			for id, b := range s.backends {
				if strings.Contains(id, "-blue-") {
					b.SetFailRatio(0)
				}
			}
		}()
		s.mustCLI("desire", service, "--version", "v3")
		out, errOut, code := s.cli("wait", service, "--version", "v3", "--timeout", "2m")
		if code != 10 || !strings.Contains(errOut, "rolled back") {
			t.Fatalf("bg wait --version v3: exit %d\nstdout %s\nstderr %s", code, out, errOut)
		}
		st := s.declStatus(t)
		if st.Switch == nil || st.Switch.Phase != "rolled_back" || st.Converge.Desired.Failed == nil || st.Converge.Desired.Failed.SwitchID != st.Switch.ID {
			t.Fatalf("after the rollback: switch %+v converge %+v", st.Switch, st.Converge)
		}
		id := st.Switch.ID
		// Not retried: the fleet stays ready well past the settle time.
		time.Sleep(12 * time.Second)
		st = s.declStatus(t)
		if st.Switch.ID != id || st.Weights.Green != 100 || st.Converge.State != "failed" {
			t.Fatalf("retried or moved: switch %s (was %s), weights %+v, converge %+v", st.Switch.ID, id, st.Weights, st.Converge)
		}
		if out := s.mustCLI("status", service); !strings.Contains(out, "web: desired v3, serving v2: failed (rolled back") {
			t.Fatalf("status does not show the failure:\n%s", out)
		}
		// A second wait for the same version fails at once, the same way.
		if _, _, code := s.cli("wait", service, "--version", "v3", "--timeout", "10s"); code != 10 {
			t.Fatalf("second wait exit %d, want 10", code)
		}
		var conv convergeJSON
		if err := json.Unmarshal([]byte(s.mustCLI("desire", service, "-o", "json")), &conv); err != nil || conv.Desired.Version != "v3" || conv.Desired.Failed == nil {
			t.Fatalf("bg desire web -o json: %+v %v", conv, err)
		}
	})
}

// TestDeclarativeSet: bg desire --set for two dependent services (web
// calls api) converges both as one release, api before web, on real
// Consul and Prometheus with grpc-go clients.
func TestDeclarativeSet(t *testing.T) {
	s := newRelStackYAML(t, 1, "", "auto: {enabled: true, settle: 3s}")
	s.startClients(0)
	s.mustCLI(0, "desire", "--set", "web=v2,api=v2", "--reason", "checkout 2.0")
	type result struct {
		code           int
		stdout, stderr string
	}
	waits := map[string]chan result{}
	for _, svc := range []string{"web", "api"} {
		ch := make(chan result, 1)
		waits[svc] = ch
		go func() {
			out, errOut, code := s.cli(0, "wait", svc, "--version", "v2", "--timeout", "2m")
			ch <- result{code, out, errOut}
		}()
	}
	for svc, ch := range waits {
		if r := <-ch; r.code != 0 {
			t.Fatalf("bg wait %s --version v2: exit %d\nstdout %s\nstderr %s", svc, r.code, r.stdout, r.stderr)
		}
	}
	web, api := s.svcStatus(0, "web"), s.svcStatus(0, "api")
	if web.Release == "" || web.Release != api.Release || web.Weights.Green != 100 || api.Weights.Green != 100 {
		t.Fatalf("not one release: web %+v, api %+v", web, api)
	}
	rel, err := s.releaseStatus(0, web.Release)
	if err != nil || rel.Release.Phase != "promoted" {
		t.Fatalf("release %s: %+v %v", web.Release, rel.Release, err)
	}
	_, apiPromoted := switchTimes(s.history(0, "api"), api.SwitchID)
	webFirst, _ := switchTimes(s.history(0, "web"), web.SwitchID)
	if apiPromoted.IsZero() || webFirst.IsZero() || webFirst.Before(apiPromoted) {
		t.Fatalf("web began %s, api promoted %s: want api first (web depends on it)", webFirst, apiPromoted)
	}
	// auth and search were not desired: untouched.
	for _, svc := range []string{"auth", "search"} {
		if st := s.svcStatus(0, svc); st.Weights.Blue != 100 || st.Release != "" {
			t.Fatalf("%s moved: %+v", svc, st)
		}
	}
	s.expectAll(map[string]string{"auth": "blue", "api": "green", "web": "green", "search": "blue"}, 20*time.Second)
}

// TestDeclarativeTrigger: with auto.trigger: version, a new fleet whose
// passing members all run a version the serving fleet does not is desired
// and converged to with no bg desire at all; the old fleet is never
// desired back.
func TestDeclarativeTrigger(t *testing.T) {
	// Green runs v1 too at first: nothing new to desire.
	s := newStackWith(t, stackOptions{blue: 2, green: 2, greenVersion: "v1", analysis: e2eAnalysis, serviceYAML: "auto: {enabled: true, trigger: version, settle: 2s}"})
	s.startClients(1)
	s.expectAll("blue", 20*time.Second)
	time.Sleep(2 * time.Second)
	if st := s.declStatus(t); st.Converge == nil || st.Converge.Desired != nil || st.Weights.Blue != 100 {
		t.Fatalf("desired something with no new version deployed: %+v", st.Converge)
	}
	// Green is redeployed with v2, host by host.
	for _, id := range []string{service + "-green-1", service + "-green-2"} {
		if err := s.backends[id].RegisterVersion(s.consul.Client(), "v2"); err != nil {
			t.Fatal(err)
		}
	}
	out, errOut, code := s.cli("wait", service, "--version", "v2", "--timeout", "90s")
	if code != 0 {
		t.Fatalf("bg wait --version v2: exit %d\nstdout %s\nstderr %s", code, out, errOut)
	}
	var conv struct {
		Desired struct {
			Version  string `json:"version"`
			Actor    string `json:"actor"`
			Previous string `json:"previous"`
		} `json:"desired"`
	}
	if err := json.Unmarshal([]byte(s.mustCLI("desire", service, "-o", "json")), &conv); err != nil {
		t.Fatal(err)
	}
	if conv.Desired.Version != "v2" || conv.Desired.Actor != "bg:converge (consul meta)" || conv.Desired.Previous != "v1" {
		t.Fatalf("desired %+v", conv.Desired)
	}
	id := s.declStatus(t).Switch.ID
	// Blue still runs v1, now idle: never desired back, nothing moves.
	time.Sleep(6 * time.Second)
	st := s.declStatus(t)
	if st.Switch.ID != id || st.Weights.Green != 100 || st.Converge.Desired.Version != "v2" || st.Converge.State != "converged" {
		t.Fatalf("after convergence: switch %s (was %s), weights %+v, converge %+v", st.Switch.ID, id, st.Weights, st.Converge)
	}
	s.expectAll("green", 10*time.Second)
}
