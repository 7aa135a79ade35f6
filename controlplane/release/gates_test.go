package release

import (
	"strings"
	"testing"
	"time"

	"github.com/bgctl/bg/controlplane/model"
)

// gate is a release gate at stages with on_failure onFailure.
func gate(name, onFailure string, stages ...string) model.Gate {
	return model.Gate{Name: name, URL: "http://gates.test/" + name, Stages: stages, Timeout: model.Duration(time.Second), OnFailure: onFailure}
}

// gatedChain is the pending chain release with the release gates gs.
func gatedChain(maxParallel int, gs ...model.Gate) Release {
	r, err := New("rel-1", "checkout", chainSpecs(), maxParallel, t0.Add(-time.Minute), gs...)
	if err != nil {
		panic(err)
	}
	return r
}

func passed(name, stage string, d time.Duration, attempts int) model.GateResult {
	return model.GateResult{Gate: name, Stage: stage, Passed: true, Status: 200, Detail: "ok", Attempts: attempts, At: at(d)}
}

func failed(name, stage string, d time.Duration, attempts int) model.GateResult {
	return model.GateResult{Gate: name, Stage: stage, Status: 503, Detail: "not ready", Attempts: attempts, At: at(d)}
}

func result(d time.Duration, stage string, rs ...model.GateResult) GatesResult {
	return GatesResult{Now: at(d), Stage: stage, Results: rs}
}

func TestReleaseGates(t *testing.T) {
	const pre, post = model.GatePre, model.GatePost
	smoke := gate("smoke", model.GateRollback, pre)
	change := gate("change", model.GateHold, pre)
	soak := gate("soak", model.GateRollback, post)
	wait := gate("wait", model.GateHold, post)
	both := gatedChain(4, smoke, change, soak)
	callPre := CallGates{Stage: pre, Gates: []model.Gate{smoke, change}}
	// waitingPre: started, its pre gates called, none answered yet.
	waitingPre := with(both, func(r *Release) {
		r.Phase, r.StartedAt, r.Gate, r.Reason, r.Generation = Running, t0, pre, "waiting for the release's pre gates", 2
	})
	heldPre := with(waitingPre, func(r *Release) {
		r.Reason = "held by release " + failed("change", pre, time.Second, 1).String()
		r.GateResults = []model.GateResult{passed("smoke", pre, time.Second, 1), failed("change", pre, time.Second, 1)}
		r.Generation = 3
	})
	// allPromoted: every member promoted, no gate asked yet (as stored before the last promotion's decision).
	lastRunning := with(live(9, pr("auth", "gen-1", 0, D), pr("mail", "gen-3", 0, D), pr("api", "gen-10", D, 2*D), sw("web", "gen-5", 2*D)),
		func(r *Release) { r.Gates = []model.Gate{smoke, soak, wait} })
	waitingPost := with(lastRunning, func(r *Release) {
		set(r, pr("web", "gen-5", 2*D, 3*D))
		r.Gate, r.Reason, r.Generation = post, "waiting for the release's post gates", 10
	})
	callPost := CallGates{Stage: post, Gates: []model.Gate{soak, wait}}
	run(t, []tc{
		{name: "pre gates are called before any member starts", in: both, ev: Start{Now: t0},
			want: func(r *Release) {
				r.Phase, r.StartedAt, r.Gate, r.Reason = Running, t0, pre, "waiting for the release's pre gates"
			},
			effs: []Effect{callPre}},
		{name: "a forced release skips its gates, recorded", in: both, ev: Start{Now: t0, Force: true, Reason: "INC-42"},
			want: func(r *Release) {
				r.Phase, r.StartedAt, r.Force, r.ForceReason, r.GatesSkipped = Running, t0, true, "INC-42", true
				set(r, st("auth", 0), st("mail", 0))
			},
			effs: []Effect{StartSwitch{Service: "auth", To: G, Force: true}, StartSwitch{Service: "mail", To: G, Force: true}}},
		{name: "post gates alone start the members at once", in: gatedChain(4, soak), ev: Start{Now: t0},
			want: func(r *Release) {
				r.Phase, r.StartedAt = Running, t0
				set(r, st("auth", 0), st("mail", 0))
			},
			effs: []Effect{StartSwitch{Service: "auth", To: G}, StartSwitch{Service: "mail", To: G}}},
		{name: "pre gates passing start the first level", in: waitingPre,
			ev: result(time.Second, pre, passed("smoke", pre, 0, 0), passed("change", pre, 0, 0)),
			want: func(r *Release) {
				r.Gate, r.Reason = "", "pre gates passed"
				r.GateResults = []model.GateResult{passed("smoke", pre, time.Second, 1), passed("change", pre, time.Second, 1)}
				set(r, st("auth", time.Second), st("mail", time.Second))
			},
			effs: []Effect{StartSwitch{Service: "auth", To: G}, StartSwitch{Service: "mail", To: G}}},
		{name: "a failing hold gate keeps the members waiting", in: waitingPre,
			ev: result(time.Second, pre, passed("smoke", pre, 0, 0), failed("change", pre, 0, 0)),
			want: func(r *Release) {
				r.Reason = heldPre.Reason
				r.GateResults = heldPre.GateResults
			}},
		{name: "a held release calls its gates again at the next tick", in: heldPre, ev: Tick{Now: at(time.Minute)},
			effs: []Effect{callPre}},
		{name: "passing later counts the attempts", in: heldPre,
			ev: result(time.Minute, pre, passed("smoke", pre, 0, 0), passed("change", pre, 0, 0)),
			want: func(r *Release) {
				r.Gate, r.Reason = "", "pre gates passed"
				r.GateResults = []model.GateResult{passed("smoke", pre, time.Minute, 2), passed("change", pre, time.Minute, 2)}
				set(r, st("auth", time.Minute), st("mail", time.Minute))
			},
			effs: []Effect{StartSwitch{Service: "auth", To: G}, StartSwitch{Service: "mail", To: G}}},
		{name: "a missing result holds even a rollback gate", in: waitingPre,
			ev: result(time.Second, pre, passed("change", pre, 0, 0)),
			want: func(r *Release) {
				miss := model.GateResult{Gate: "smoke", Stage: pre, Detail: "no result reported", Attempts: 1, At: at(time.Second)}
				r.Reason = "held by release " + miss.String()
				r.GateResults = []model.GateResult{miss, passed("change", pre, time.Second, 1)}
			}},
		{name: "a failing pre rollback gate ends the release rolled back, nothing moved", in: waitingPre,
			ev: result(time.Second, pre, failed("smoke", pre, 0, 0), passed("change", pre, 0, 0)),
			want: func(r *Release) {
				r.Gate, r.Phase, r.Cause, r.EndedAt = "", RolledBack, model.CauseGateFailed, at(time.Second)
				r.Reason = "release " + failed("smoke", pre, time.Second, 1).String()
				r.GateResults = []model.GateResult{failed("smoke", pre, time.Second, 1), passed("change", pre, time.Second, 1)}
				setSkipped(r, time.Second, "auth", "mail", "api", "web")
			}},
		{name: "an abort while pre gates are pending ends aborted", in: heldPre, ev: Abort{Now: at(time.Minute), Reason: "not today"},
			want: func(r *Release) {
				r.Gate, r.Phase, r.Cause, r.Reason, r.EndedAt = "", Aborted, aborted, "not today", at(time.Minute)
				setSkipped(r, time.Minute, "auth", "mail", "api", "web")
			}},
		{name: "pre gates pending are owed after a leader change", in: heldPre, ev: Resync{Now: at(time.Minute)}, effs: []Effect{callPre}},
		{name: "a late result of another stage is ignored", in: heldPre, ev: result(time.Minute, post, passed("soak", post, 0, 0))},
		{name: "a result for an unknown stage", in: heldPre, ev: result(time.Minute, "step"), err: ErrBadEvent, has: "step"},
		{name: "the last promotion asks for the post gates", in: lastRunning, ev: obs(3*D, "web", "gen-5", G, SwitchPromoted),
			want: func(r *Release) {
				set(r, pr("web", "gen-5", 2*D, 3*D))
				r.Gate, r.Reason = post, "waiting for the release's post gates"
			},
			effs: []Effect{callPost}},
		{name: "a forced release ends promoted without its post gates",
			in: with(lastRunning, func(r *Release) { r.Force, r.ForceReason, r.GatesSkipped = true, "INC-42", true }),
			ev: obs(3*D, "web", "gen-5", G, SwitchPromoted),
			want: func(r *Release) {
				set(r, pr("web", "gen-5", 2*D, 3*D))
				r.Phase, r.EndedAt, r.Reason = Promoted, at(3*D), "every member promoted"
			}},
		{name: "post gates passing end the release promoted", in: waitingPost,
			ev: result(3*D+time.Second, post, passed("soak", post, 0, 0), passed("wait", post, 0, 0)),
			want: func(r *Release) {
				r.Gate, r.Phase, r.EndedAt, r.Reason = "", Promoted, at(3*D+time.Second), "every member promoted; post gates passed"
				r.GateResults = []model.GateResult{passed("soak", post, 3*D+time.Second, 1), passed("wait", post, 3*D+time.Second, 1)}
			}},
		{name: "a failing post hold gate keeps it waiting", in: waitingPost,
			ev: result(3*D+time.Second, post, passed("soak", post, 0, 0), failed("wait", post, 0, 0)),
			want: func(r *Release) {
				r.Reason = "held by release " + failed("wait", post, 3*D+time.Second, 1).String()
				r.GateResults = []model.GateResult{passed("soak", post, 3*D+time.Second, 1), failed("wait", post, 3*D+time.Second, 1)}
			}},
		{name: "a failing post rollback gate rolls the consumers back first", in: waitingPost,
			ev: result(3*D+time.Second, post, failed("soak", post, 0, 0), failed("wait", post, 0, 0)),
			want: func(r *Release) {
				r.Gate, r.Phase, r.Cause = "", RollingBack, model.CauseGateFailed
				r.Reason = "release " + failed("soak", post, 3*D+time.Second, 1).String()
				r.GateResults = []model.GateResult{failed("soak", post, 3*D+time.Second, 1), failed("wait", post, 3*D+time.Second, 1)}
				set(r, ms{svc: "web", phase: MemberRollingBack, id: "gen-5", start: 2 * D, reason: reasonRolledBack})
				mem(r, "web").EndedAt = time.Time{}
			},
			effs: []Effect{RollBack{Service: "web", SwitchID: "gen-5", To: B}}},
		{name: "post gates pending are owed after a leader change", in: waitingPost, ev: Resync{Now: at(3 * D)}, effs: []Effect{callPost}},
	})
}

func TestNewRefusesReleaseGates(t *testing.T) {
	for _, c := range []struct {
		name string
		g    model.Gate
		has  string
	}{
		{"step", gate("smoke", model.GateRollback, model.GatePre, model.GateStep), "gates[0].stages: step"},
		{"bad on_failure", gate("smoke", "retry", model.GatePost), "gates[0]: on_failure"},
	} {
		_, err := New("rel-1", "checkout", chainSpecs(), 4, t0, c.g)
		if err == nil || !strings.Contains(err.Error(), c.has) {
			t.Errorf("%s: error %v, want %q", c.name, err, c.has)
		}
	}
}
