package notify

import (
	"context"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/bgctl/bg/controlplane/model"
)

var t0 = time.Date(2026, 12, 1, 10, 0, 0, 0, time.UTC)

func kinds(evs []Event) string {
	var ks []string
	for _, e := range evs {
		ks = append(ks, string(e.Kind))
	}
	return strings.Join(ks, ",")
}

// Each stored change means what people expect: a start, each step, a
// pause, the end (promoted, rolled back once, aborted), instant switches,
// overrides; a change that moves nothing means nothing.
func TestClassify(t *testing.T) {
	plan := model.Plan{Steps: []int{10, 50, 100}}
	rollout := func(step int, phase model.RolloutPhase) *model.Rollout {
		return &model.Rollout{ID: "gen-2", From: model.Blue, To: model.Green, Plan: plan, Step: step, Phase: phase,
			Verdicts: []model.StepVerdict{{Outcome: "pass"}}}
	}
	stable := model.Traffic{Stable: model.Blue, Generation: 1}
	at := func(gen uint64, pct int, r *model.Rollout) model.Traffic {
		return model.Traffic{Stable: model.Blue, Generation: gen, GreenPercent: pct, Rollout: r, Release: "checkout-1"}
	}
	e := model.HistoryEntry{At: t0, Actor: "cli:ann", Reason: "deploy v2"}
	for _, tc := range []struct {
		name      string
		cur, next model.Traffic
		e         model.HistoryEntry
		want      string
	}{
		{"start", stable, at(2, 10, rollout(0, model.RolloutProgressing)), e, "started"},
		{"step", at(2, 10, rollout(0, model.RolloutProgressing)), at(3, 50, rollout(1, model.RolloutProgressing)), e, "step"},
		{"same step, new verdict", at(3, 50, rollout(1, model.RolloutProgressing)), at(4, 50, rollout(1, model.RolloutProgressing)), e, ""},
		{"paused", at(3, 50, rollout(1, model.RolloutProgressing)), at(4, 50, rollout(1, model.RolloutPaused)), e, "held"},
		{"promoted", at(4, 50, rollout(1, model.RolloutProgressing)), at(5, 100, rollout(2, model.RolloutPromoted)), e, "promoted"},
		{"rolling back", at(4, 50, rollout(1, model.RolloutProgressing)), at(5, 0, rollout(1, model.RolloutRollingBack)), e, "rolled_back"},
		{"rolled back after rolling back: once", at(5, 0, rollout(1, model.RolloutRollingBack)), at(6, 0, rollout(1, model.RolloutRolledBack)), e, ""},
		{"aborted", at(4, 50, rollout(1, model.RolloutProgressing)), at(5, 0, rollout(1, model.RolloutAborted)), e, "aborted"},
		{"instant", stable, model.Traffic{Stable: model.Blue, Target: model.Green, GreenPercent: 100, Phase: model.PhaseSwitched, Generation: 2}, e, "started,promoted"},
		{"forced", stable, model.Traffic{Stable: model.Blue, Target: model.Green, GreenPercent: 100, Phase: model.PhaseSwitched, Generation: 2},
			model.HistoryEntry{At: t0, Actor: "cli:ann", Reason: "INC-7", Override: "switch --force"}, "started,promoted,override"},
		{"nothing moved", stable, model.Traffic{Stable: model.Blue, Generation: 2}, e, ""},
	} {
		got := Classify("web", tc.cur, tc.next, tc.e)
		if k := kinds(got); k != tc.want {
			t.Errorf("%s: %q, want %q", tc.name, k, tc.want)
			continue
		}
		for _, ev := range got {
			if ev.Service != "web" || ev.Actor != tc.e.Actor || !ev.At.Equal(t0) || ev.Generation != tc.next.Generation || ev.Split != tc.next.GreenPercent {
				t.Errorf("%s: %+v", tc.name, ev)
			}
			if tc.next.Rollout != nil && (ev.From != model.Blue || ev.To != model.Green || ev.Steps != 3 || ev.Release != "checkout-1" || ev.Verdict != "pass") {
				t.Errorf("%s: switch fields %+v", tc.name, ev)
			}
		}
	}
	for _, k := range Kinds {
		if k.Validate() != nil {
			t.Errorf("%s invalid", k)
		}
	}
	if Kind("exploded").Validate() == nil || Type("pager").Validate() == nil {
		t.Error("unknown kind or type accepted")
	}
}

// The formats: the event itself; Slack's incoming-webhook text and
// blocks; a Teams MessageCard with facts and a link.
func TestRender(t *testing.T) {
	ev := Event{Kind: RolledBack, Service: "web", From: model.Blue, To: model.Green, Split: 0, Step: 2, Steps: 3,
		Verdict: "fail", Reason: "candidate 5% vs baseline 0.1%", Cause: model.CauseAnalysisFailed, Actor: "bg:r1", Generation: 7, At: t0, Link: "http://bg:9090/v1/services/web"}
	b, ctype, err := Render(Webhook, ev)
	var back Event
	if err != nil || ctype != "application/json" || json.Unmarshal(b, &back) != nil || back.Kind != RolledBack || back.Cause != model.CauseAnalysisFailed {
		t.Fatalf("webhook: %s %v", b, err)
	}
	b, _, err = Render(Slack, ev)
	var slack struct {
		Text   string `json:"text"`
		Blocks []struct {
			Type   string                  `json:"type"`
			Fields []struct{ Text string } `json:"fields"`
		} `json:"blocks"`
	}
	if err != nil || json.Unmarshal(b, &slack) != nil || slack.Text != "bg: web rolled back (blue → green, 0% green)" || len(slack.Blocks) != 2 || len(slack.Blocks[1].Fields) == 0 {
		t.Fatalf("slack: %s %v", b, err)
	}
	if !strings.Contains(string(b), "candidate 5% vs baseline 0.1%") || !strings.Contains(string(b), "2/3") {
		t.Errorf("slack lacks the reason or the step: %s", b)
	}
	b, _, err = Render(Teams, ev)
	var card struct {
		Type     string `json:"@type"`
		Title    string `json:"title"`
		Color    string `json:"themeColor"`
		Sections []struct {
			Facts []struct{ Name, Value string } `json:"facts"`
		} `json:"sections"`
		Actions []struct {
			Targets []struct{ URI string } `json:"targets"`
		} `json:"potentialAction"`
	}
	if err != nil || json.Unmarshal(b, &card) != nil || card.Type != "MessageCard" || card.Color != "D93F0B" || len(card.Sections) != 1 || len(card.Actions) != 1 || card.Actions[0].Targets[0].URI != ev.Link {
		t.Fatalf("teams: %s %v", b, err)
	}
}

// Delivery retries with backoff until the receiver answers 2xx; a target
// that never does is counted failed, its error kept (without its URL);
// a hung receiver never blocks Send; a full queue drops the oldest.
func TestDelivery(t *testing.T) {
	var fails atomic.Int32
	fails.Store(2)
	var mu sync.Mutex
	var got []Event
	ok := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if fails.Add(-1) >= 0 {
			http.Error(w, "busy", http.StatusServiceUnavailable)
			return
		}
		var ev Event
		body, _ := io.ReadAll(r.Body)
		_ = json.Unmarshal(body, &ev)
		mu.Lock()
		got = append(got, ev)
		mu.Unlock()
	}))
	defer ok.Close()
	down := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		http.Error(w, "nope", http.StatusForbidden)
	}))
	defer down.Close()
	hang := make(chan struct{})
	hung := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { <-hang }))
	defer hung.Close()
	defer close(hang)

	reg := prometheus.NewRegistry()
	n := New([]Target{
		{Name: "ok", Type: Webhook, URL: ok.URL, Events: []Kind{Promoted}},
		{Name: "down", Type: Slack, URL: down.URL + "/T000/B000/secret"},
		{Name: "hung", Type: Teams, URL: hung.URL, Services: []string{"web"}},
	}, Options{Attempts: 4, Backoff: 10 * time.Millisecond, Timeout: time.Minute, Queue: 2, Reg: reg})
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	go n.Run(ctx)

	start := time.Now()
	for i := 0; i < 10; i++ {
		n.Send(Event{Kind: Promoted, Service: "web", At: t0})
		n.Send(Event{Kind: Started, Service: "api", At: t0}) // only down wants it (hung: web only; ok: promoted only)
	}
	if took := time.Since(start); took > 100*time.Millisecond {
		t.Fatalf("Send blocked for %v with a hung receiver", took)
	}
	deadline := time.Now().Add(10 * time.Second)
	for testutil.ToFloat64(n.results.WithLabelValues("ok", "sent")) < 1 || testutil.ToFloat64(n.results.WithLabelValues("down", "failed")) < 1 {
		if time.Now().After(deadline) {
			t.Fatalf("ok sent %v, down failed %v", testutil.ToFloat64(n.results.WithLabelValues("ok", "sent")), testutil.ToFloat64(n.results.WithLabelValues("down", "failed")))
		}
		time.Sleep(10 * time.Millisecond)
	}
	mu.Lock()
	first := got[0]
	mu.Unlock()
	if first.Kind != Promoted || first.Service != "web" {
		t.Fatalf("delivered %+v", first)
	}
	if d := testutil.ToFloat64(n.results.WithLabelValues("hung", "dropped")); d < 1 {
		t.Errorf("hung's full queue dropped %v, want some", d)
	}
	for _, s := range n.Statuses() {
		if s.Name == "down" && (!strings.Contains(s.LastError, "HTTP 403: nope") || strings.Contains(s.LastError, "secret")) {
			t.Errorf("down's status %+v", s)
		}
	}
}
