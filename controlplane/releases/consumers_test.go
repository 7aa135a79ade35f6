package releases_test

import (
	"context"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/bgctl/bg/controlplane/notify"
	"github.com/bgctl/bg/controlplane/traffic"

	apiv1 "github.com/bgctl/bg/controlplane/api/v1"
	"github.com/bgctl/bg/controlplane/fleetmetrics"
	"github.com/bgctl/bg/controlplane/judge"
	"github.com/bgctl/bg/controlplane/model"
	"github.com/bgctl/bg/controlplane/release"
	"github.com/bgctl/bg/controlplane/releases"
)

// consumerCounters are a consumer's cumulative counters as a function of
// time: rate requests per second since an hour before t0, failing at
// before until breakAt and at after from then on.
type consumerCounters struct {
	mu            sync.Mutex
	service       string
	rate          float64
	before, after float64
	breakAt       time.Time // zero: never
	reads         []time.Time
}

func (c *consumerCounters) Read(_ context.Context, q fleetmetrics.Query) (fleetmetrics.Reading, error) {
	if q.Service != c.service || q.Color != model.Blue {
		return fleetmetrics.Reading{}, fleetmetrics.ErrUnavailable
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	c.reads = append(c.reads, q.At)
	secs := q.At.Sub(t0.Add(-time.Hour)).Seconds()
	req := c.rate * secs
	errs := c.before * req
	if !c.breakAt.IsZero() && q.At.After(c.breakAt) {
		broken := c.rate * q.At.Sub(c.breakAt).Seconds()
		errs += (c.after - c.before) * broken
	}
	return fleetmetrics.Reading{Requests: map[string]float64{`{service="api"}`: req}, Errors: map[string]float64{`{service="api"}`: float64(int(errs))}}, nil
}

func consumerWatch(src fleetmetrics.Source) *releases.ConsumerWatch {
	return &releases.ConsumerWatch{Source: src, Test: judge.Consumer{Confidence: 0.99, Margin: 0.5, MinErrors: 5}, Lookback: 10 * time.Minute}
}

// With release.watch_consumers, a provider whose switch makes a consumer
// fail (api calls auth; api's error ratio goes from 0.1 % to 5 % once
// auth's switch begins) is rolled back with cause consumer_regressed,
// although auth's own analysis saw nothing wrong; the release fails
// naming auth, and api never starts.
func TestConsumerRegressionFailsTheProvider(t *testing.T) {
	src := &consumerCounters{service: "api", rate: 100, before: 0.001, after: 0.05}
	r := newRig(t, rigOptions{services: []string{"auth", "api"}, deps: map[string][]string{"api": {"auth"}},
		progressive: []string{"auth", "api"}, consumers: consumerWatch(src)})
	src.breakAt = r.rt.Now()
	ctx := context.Background()
	if _, err := r.exec.Start(ctx, apiv1.ReleaseRequest{Name: "rel", Services: []string{"auth", "api"}}); err != nil {
		t.Fatal(err)
	}
	var failedAt time.Duration
	for i := 1; i <= 60; i++ {
		r.rt.Advance(time.Second)
		if rel := r.stored("rel-1"); rel.Phase.Ended() {
			failedAt = time.Duration(i) * time.Second
			break
		}
	}
	rel := r.stored("rel-1")
	auth, _ := rel.Find("auth")
	if rel.Phase != release.RolledBack || rel.Member != "auth" || rel.Cause != model.CauseConsumerRegressed || auth.Cause != model.CauseConsumerRegressed || phaseOf(rel, "api") != release.MemberSkipped {
		t.Fatalf("release %s member %q cause %q (%s); auth %+v; api %s", rel.Phase, rel.Member, rel.Cause, rel.Reason, auth, phaseOf(rel, "api"))
	}
	tr := r.traffic("auth")
	if tr.Rollout == nil || tr.Rollout.Cause != model.CauseConsumerRegressed || tr.Serving() != model.Blue {
		t.Fatalf("auth: %+v serving %s", tr.Rollout, tr.Serving())
	}
	t.Logf("failed %v after the start: %s", failedAt, tr.Rollout.Reason)
	// The reference was read at the lookback before the switch began.
	src.mu.Lock()
	first := src.reads[0]
	src.mu.Unlock()
	if want := auth.StartedAt.Add(-10 * time.Minute); !first.Equal(want) {
		t.Errorf("first read at %v, want the lookback before the switch %v", first, want)
	}
	if v := metric(t, r.reg, "bg_release_consumer_evidence", map[string]string{"release": "rel-1", "provider": "auth", "consumer": "api"}); v == v {
		t.Errorf("the consumer's evidence series outlived the release: %v", v)
	}
}

// A consumer that fails as much as before the switch never fails its
// provider, however long the switch looks; its evidence is exported.
func TestSteadyConsumerPassesTheProvider(t *testing.T) {
	src := &consumerCounters{service: "api", rate: 100, before: 0.01, after: 0.01}
	r := newRig(t, rigOptions{services: []string{"auth", "api"}, deps: map[string][]string{"api": {"auth"}},
		progressive: []string{"auth", "api"}, consumers: consumerWatch(src)})
	ctx := context.Background()
	if _, err := r.exec.Start(ctx, apiv1.ReleaseRequest{Name: "rel", Services: []string{"auth", "api"}}); err != nil {
		t.Fatal(err)
	}
	r.rt.Advance(5 * time.Minute)
	rel := r.stored("rel-1")
	if rel.Phase.Ended() || phaseOf(rel, "auth") != release.MemberSwitching {
		t.Fatalf("after 5 min of a steady consumer: %s, auth %s (%s)", rel.Phase, phaseOf(rel, "auth"), rel.Reason)
	}
	v := metric(t, r.reg, "bg_release_consumer_evidence", map[string]string{"release": "rel-1", "provider": "auth", "consumer": "api"})
	if !(v >= 0 && v < 200) {
		t.Fatalf("bg_release_consumer_evidence = %v, want a value below the bar", v)
	}
}

// Without the option nothing is read.
func TestConsumersNotWatchedByDefault(t *testing.T) {
	r := newRig(t, rigOptions{services: []string{"auth", "api"}, deps: map[string][]string{"api": {"auth"}}, progressive: []string{"auth", "api"}})
	if _, err := r.exec.Start(context.Background(), apiv1.ReleaseRequest{Name: "rel", Services: []string{"auth", "api"}}); err != nil {
		t.Fatal(err)
	}
	r.rt.Advance(time.Minute)
	if rel := r.stored("rel-1"); phaseOf(rel, "auth") != release.MemberSwitching {
		t.Fatalf("auth %s", phaseOf(rel, "auth"))
	}
}

// Options.Notify hears a release start and end, once each.
func TestReleaseNotifies(t *testing.T) {
	var mu sync.Mutex
	var got []string
	r := newRig(t, rigOptions{services: []string{"auth", "api"}, deps: map[string][]string{"api": {"auth"}}, progressive: []string{"auth"},
		notify: func(ev notify.Event) {
			mu.Lock()
			got = append(got, string(ev.Kind)+" "+ev.Release+" "+string(ev.Cause))
			mu.Unlock()
		}})
	ctx := context.Background()
	if _, err := r.exec.Start(ctx, apiv1.ReleaseRequest{Name: "rel", Services: []string{"auth", "api"}}); err != nil {
		t.Fatal(err)
	}
	r.rt.Advance(time.Second)
	if _, err := r.exec.Pause(ctx, "rel-1", apiv1.ReleaseCommand{}); err != nil {
		t.Fatal(err)
	}
	if _, err := r.exec.Resume(ctx, "rel-1", apiv1.ReleaseCommand{}); err != nil {
		t.Fatal(err)
	}
	if _, err := r.ctrl.Abort(ctx, traffic.Request{Service: "auth", Release: "rel-1", Reason: "test", Timeout: time.Second}); err != nil {
		t.Fatal(err)
	}
	r.rt.Advance(2 * time.Second)
	mu.Lock()
	defer mu.Unlock()
	if strings.Join(got, ",") != "release_started rel-1 ,release_rolled_back rel-1 aborted" {
		t.Fatalf("heard %q", got)
	}
}
