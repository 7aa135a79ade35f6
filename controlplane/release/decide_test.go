package release

import (
	"testing"
	"time"

	"github.com/bgctl/bg/controlplane/model"
)

const (
	analysis = model.CauseAnalysisFailed
	aborted  = model.CauseAborted
)

// setSkipped marks members that never started as skipped at d.
func setSkipped(r *Release, d time.Duration, svcs ...string) {
	for _, s := range svcs {
		ms{svc: s, phase: MemberSkipped, end: d, reason: reasonSkipped}.apply(r)
		mem(r, s).StartedAt = time.Time{}
	}
}

func TestStart(t *testing.T) {
	held := with(chain(4), func(r *Release) { mem(r, "auth").Window = &Window{Until: at(time.Hour), Reason: "freeze"} })
	run(t, []tc{
		{name: "start runs the members without providers", in: chain(4), ev: Start{Now: t0},
			want: func(r *Release) {
				r.Phase, r.StartedAt = Running, t0
				set(r, st("auth", 0), st("mail", 0))
			},
			effs: []Effect{StartSwitch{Service: "auth", To: G}, StartSwitch{Service: "mail", To: G}}},
		{name: "max_parallel 1 starts the first by level then name", in: chain(1), ev: Start{Now: t0},
			want: func(r *Release) {
				r.Phase, r.StartedAt = Running, t0
				set(r, st("auth", 0))
			},
			effs: []Effect{StartSwitch{Service: "auth", To: G}}},
		{name: "a forced start records the override once and forces every switch", in: chain(4),
			ev: Start{Now: t0, Force: true, Reason: " INC-42 hotfix "},
			want: func(r *Release) {
				r.Phase, r.StartedAt, r.Force, r.ForceReason = Running, t0, true, "INC-42 hotfix"
				set(r, st("auth", 0), st("mail", 0))
			},
			effs: []Effect{StartSwitch{Service: "auth", To: G, Force: true}, StartSwitch{Service: "mail", To: G, Force: true}}},
		{name: "a forced start goes past closed windows", in: held, ev: Start{Now: t0, Force: true, Reason: "INC-42"},
			want: func(r *Release) {
				r.Phase, r.StartedAt, r.Force, r.ForceReason = Running, t0, true, "INC-42"
				mem(r, "auth").Window = nil
				set(r, st("auth", 0), st("mail", 0))
			},
			effs: []Effect{StartSwitch{Service: "auth", To: G, Force: true}, StartSwitch{Service: "mail", To: G, Force: true}}},
		{name: "a closed window holds its member at the start", in: held, ev: Start{Now: t0},
			want: func(r *Release) {
				r.Phase, r.StartedAt = Running, t0
				set(r, st("mail", 0))
			},
			effs: []Effect{StartSwitch{Service: "mail", To: G}}},
		{name: "a forced start needs a reason", in: chain(4), ev: Start{Now: t0, Force: true, Reason: "  "}, err: ErrNeedsReason},
		{name: "started twice", in: live(2, st("auth", 0), st("mail", 0)), ev: Start{Now: t0}, err: ErrStarted},
		{name: "started after the end", in: promotedChain(), ev: Start{Now: t0}, err: ErrEnded},
		{name: "a pending release ticks without starting", in: chain(4), ev: Tick{Now: t0}},
		{name: "no event", in: chain(4), ev: nil, err: ErrBadEvent},
	})
}

// promotedChain is the chain release ended promoted at 3D.
func promotedChain() Release {
	return with(live(10, pr("auth", "gen-1", 0, D), pr("mail", "gen-3", 0, D), pr("api", "gen-10", D, 2*D), pr("web", "gen-5", 2*D, 3*D)),
		func(r *Release) { r.Phase, r.EndedAt, r.Reason = Promoted, at(3*D), "every member promoted" })
}

func TestProgress(t *testing.T) {
	starting := live(3, st("auth", 0), st("mail", 0))
	level0 := live(5, sw("auth", "gen-1", 0), sw("mail", "gen-3", 0))
	run(t, []tc{
		{name: "a start observed running records its switch", in: starting, ev: obs(time.Second, "auth", "gen-1", G, SwitchRunning),
			want: func(r *Release) { set(r, sw("auth", "gen-1", 0)) }},
		{name: "the same observation again changes nothing", in: level0, ev: obs(2*time.Second, "auth", "gen-1", G, SwitchRunning)},
		{name: "the base switch of a starting member changes nothing", in: starting,
			ev: MemberObserved{Now: at(time.Second), Service: "mail", SwitchID: "gen-2", To: B, Phase: SwitchPromoted}},
		{name: "no switch at all on a member that never had one changes nothing", in: starting,
			ev: MemberObserved{Now: at(time.Second), Service: "auth"}},
		{name: "auth promoted starts api while mail still switches", in: level0, ev: obs(D, "auth", "gen-1", G, SwitchPromoted),
			want: func(r *Release) { set(r, pr("auth", "gen-1", 0, D), st("api", D)) },
			effs: []Effect{StartSwitch{Service: "api", To: B}}},
		{name: "mail promoted first starts nothing", in: level0, ev: obs(D, "mail", "gen-3", G, SwitchPromoted),
			want: func(r *Release) { set(r, pr("mail", "gen-3", 0, D)) }},
		{name: "a start observed promoted at once (an instant plan)", in: starting, ev: obs(time.Second, "auth", "gen-1", G, SwitchPromoted),
			want: func(r *Release) { set(r, pr("auth", "gen-1", 0, time.Second), st("api", time.Second)) },
			effs: []Effect{StartSwitch{Service: "api", To: B}}},
		{name: "web waits for mail as well as api", in: live(7, pr("auth", "gen-1", 0, D), sw("mail", "gen-3", 0), sw("api", "gen-10", D)),
			ev:   obs(2*D, "api", "gen-10", B, SwitchPromoted),
			want: func(r *Release) { set(r, pr("api", "gen-10", D, 2*D)) }},
		{name: "mail promoted last starts web", in: live(7, pr("auth", "gen-1", 0, D), sw("mail", "gen-3", 0), pr("api", "gen-10", D, 2*D)),
			ev:   obs(2*D+time.Minute, "mail", "gen-3", G, SwitchPromoted),
			want: func(r *Release) { set(r, pr("mail", "gen-3", 0, 2*D+time.Minute), st("web", 2*D+time.Minute)) },
			effs: []Effect{StartSwitch{Service: "web", To: G}}},
		{name: "the last promotion ends the release promoted",
			in: live(9, pr("auth", "gen-1", 0, D), pr("mail", "gen-3", 0, D), pr("api", "gen-10", D, 2*D), sw("web", "gen-5", 2*D)),
			ev: obs(3*D, "web", "gen-5", G, SwitchPromoted),
			want: func(r *Release) {
				set(r, pr("web", "gen-5", 2*D, 3*D))
				r.Phase, r.EndedAt, r.Reason = Promoted, at(3*D), "every member promoted"
			}},
		{name: "a late running after a promotion changes nothing", in: live(6, pr("auth", "gen-1", 0, D), sw("mail", "gen-3", 0), st("api", D)),
			ev: obs(D, "auth", "gen-1", G, SwitchRunning)},
		{name: "an ended release ignores observations", in: promotedChain(), ev: obs(4*D, "auth", "gen-7", B, SwitchPromoted)},
		{name: "an ended release ignores ticks", in: promotedChain(), ev: Tick{Now: at(4 * D)}},
		{name: "an observation of a service outside the release", in: level0, ev: obs(D, "crm", "gen-1", G, SwitchRunning), err: ErrUnknownMember, has: "crm"},
		{name: "a switch going back without its cause", in: level0, ev: obs(D, "auth", "gen-1", G, SwitchRolledBack), err: ErrBadEvent, has: "cause"},
		{name: "an unknown switch phase", in: level0, ev: obs(D, "auth", "gen-1", G, "exploded"), err: ErrBadEvent, has: "exploded"},
		{name: "an unknown colour", in: level0, ev: obs(D, "auth", "gen-1", "red", SwitchRunning), err: ErrBadEvent, has: "red"},
		{name: "an unknown cause", in: level0, ev: back(obs(D, "auth", "gen-1", G, SwitchRolledBack), "bad_luck", "", false), err: ErrBadEvent, has: "bad_luck"},
	})
}

// five independent services, a to e.
func independent(maxParallel int) Release {
	var specs []Spec
	for _, s := range []string{"e", "d", "c", "b", "a"} {
		specs = append(specs, Spec{Service: s, From: B, To: G})
	}
	r, err := New("rel-2", "batch", specs, maxParallel, t0)
	if err != nil {
		panic(err)
	}
	r.Phase, r.StartedAt, r.Generation = Running, t0, 3
	return r
}

func TestParallelismCap(t *testing.T) {
	two := with(independent(2), func(r *Release) { set(r, sw("a", "gen-1", 0), sw("b", "gen-1", 0)) })
	run(t, []tc{
		{name: "start at the cap", in: with(independent(2), func(r *Release) { r.Phase, r.StartedAt = Pending, time.Time{} }), ev: Start{Now: t0},
			want: func(r *Release) {
				r.Phase, r.StartedAt = Running, t0
				set(r, st("a", 0), st("b", 0))
			},
			effs: []Effect{StartSwitch{Service: "a", To: G}, StartSwitch{Service: "b", To: G}}},
		{name: "a tick at the cap starts nothing", in: two, ev: Tick{Now: at(time.Minute)}},
		{name: "one promoted frees one slot", in: two, ev: MemberObserved{Now: at(D), Service: "a", SwitchID: "gen-1", Release: "rel-2", To: G, Phase: SwitchPromoted},
			want: func(r *Release) { set(r, pr("a", "gen-1", 0, D), st("c", D)) },
			effs: []Effect{StartSwitch{Service: "c", To: G}}},
		{name: "a starting member holds its slot", in: with(independent(2), func(r *Release) { set(r, pr("a", "gen-1", 0, D), st("b", D), sw("c", "gen-1", D)) }),
			ev: Tick{Now: at(D + time.Minute)}},
		{name: "with max_parallel 1 the next member of level 0 goes before api",
			in:   with(live(4, sw("auth", "gen-1", 0)), func(r *Release) { r.MaxParallel = 1 }),
			ev:   obs(D, "auth", "gen-1", G, SwitchPromoted),
			want: func(r *Release) { set(r, pr("auth", "gen-1", 0, D), st("mail", D)) },
			effs: []Effect{StartSwitch{Service: "mail", To: G}}},
	})
}

// State names in TestFailure: after the failure of auth at 5m (F1) and
// the steps that follow.
func TestFailure(t *testing.T) {
	const f = 5 * time.Minute
	level0 := live(5, sw("auth", "gen-1", 0), sw("mail", "gen-3", 0))
	authFails := back(obs(f, "auth", "gen-1", G, SwitchRolledBack), analysis, "analysis failed: 9 errors", false)
	// F1: auth rolled back, unconfirmed; mail aborting; api, web skipped.
	f1 := with(level0, func(r *Release) {
		failing(r, "auth", analysis, "auth: analysis failed: 9 errors")
		set(r, ms{svc: "auth", phase: MemberRollingBack, id: "gen-1", cause: analysis, reason: "analysis failed: 9 errors"},
			ms{svc: "mail", phase: MemberAborting, id: "gen-3", reason: reasonAborting})
		setSkipped(r, f, "api", "web")
		r.Generation = 6
	})
	f2 := with(f1, func(r *Release) {
		set(r, ms{svc: "auth", phase: MemberRolledBack, id: "gen-1", end: f + time.Second, cause: analysis, reason: "analysis failed: 9 errors"})
		r.Generation = 7
	})
	// Level 0 promoted, api switching.
	level1 := live(7, pr("auth", "gen-1", 0, D), pr("mail", "gen-3", 0, D), sw("api", "gen-10", D))
	apiFails := back(obs(D+f, "api", "gen-10", B, SwitchRolledBack), analysis, "analysis failed", false)
	f4 := with(level1, func(r *Release) {
		failing(r, "api", analysis, "api: analysis failed")
		set(r, ms{svc: "api", phase: MemberRollingBack, id: "gen-10", start: D, cause: analysis, reason: "analysis failed"})
		setSkipped(r, D+f, "web")
		r.Generation = 8
	})
	f5 := with(f4, func(r *Release) {
		set(r, ms{svc: "api", phase: MemberRolledBack, id: "gen-10", start: D, end: D + f + time.Second, cause: analysis, reason: "analysis failed"},
			ms{svc: "auth", phase: MemberRollingBack, id: "gen-1", reason: reasonRolledBack},
			ms{svc: "mail", phase: MemberRollingBack, id: "gen-3", reason: reasonRolledBack})
		r.Generation = 9
	})
	backSwitch := func(d time.Duration, svc, id string, to model.Color, confirmed bool) MemberObserved {
		o := obs(d, svc, id, to, SwitchPromoted)
		o.Confirmed = confirmed
		return o
	}
	f7 := with(f5, func(r *Release) {
		set(r, ms{svc: "auth", phase: MemberRolledBack, id: "gen-1", end: D + f + 2*time.Second, reason: reasonRolledBack})
		mem(r, "auth").RollbackID = "gen-2"
		r.Generation = 10
	})
	refused := live(3, st("auth", 0), st("mail", 0))
	f12 := with(refused, func(r *Release) {
		failing(r, "auth", CauseStartRefused, "auth: start refused: fleet green is empty")
		set(r, ms{svc: "auth", phase: MemberSkipped, end: time.Second, cause: CauseStartRefused, reason: "fleet green is empty"},
			ms{svc: "mail", phase: MemberAborting, reason: reasonAborting})
		setSkipped(r, time.Second, "api", "web")
		r.Generation = 4
	})

	run(t, []tc{
		{name: "F1 auth rolled back by its analysis: mail aborted, api and web skipped", in: level0, ev: authFails,
			want: func(r *Release) { *r = f1; r.Generation-- },
			effs: []Effect{AbortSwitch{Service: "mail", SwitchID: "gen-3"}}},
		{name: "F2 auth's rollback confirmed", in: f1, ev: back(obs(f+time.Second, "auth", "gen-1", G, SwitchRolledBack), analysis, "analysis failed: 9 errors", true),
			want: func(r *Release) { *r = f2; r.Generation-- }},
		{name: "F3 mail's abort confirmed ends the release rolled back, naming auth", in: f2,
			ev: back(obs(f+2*time.Second, "mail", "gen-3", G, SwitchAborted), aborted, "release rel-1 rolling back", true),
			want: func(r *Release) {
				set(r, ms{svc: "mail", phase: MemberAborted, id: "gen-3", end: f + 2*time.Second, reason: reasonAborting})
				r.Phase, r.EndedAt = RolledBack, at(f+2*time.Second)
			}},
		{name: "F4 api fails: level 0 waits for api's rollback to be confirmed", in: level1, ev: apiFails,
			want: func(r *Release) { *r = f4; r.Generation-- }},
		{name: "F5 api's rollback confirmed: level 0 rolled back together", in: f4,
			ev:   back(obs(D+f+time.Second, "api", "gen-10", B, SwitchRolledBack), analysis, "analysis failed", true),
			want: func(r *Release) { *r = f5; r.Generation-- },
			effs: []Effect{RollBack{Service: "auth", SwitchID: "gen-1", To: B}, RollBack{Service: "mail", SwitchID: "gen-3", To: B}}},
		{name: "F6 the release's switch back observed, not confirmed yet", in: f5, ev: backSwitch(D+f+time.Second, "auth", "gen-2", B, false),
			want: func(r *Release) { mem(r, "auth").RollbackID = "gen-2" }},
		{name: "F7 the switch back confirmed", in: f5, ev: backSwitch(D+f+2*time.Second, "auth", "gen-2", B, true),
			want: func(r *Release) { *r = f7; r.Generation-- }},
		{name: "F8 the last switch back confirmed ends the release rolled back", in: f7, ev: backSwitch(D+f+3*time.Second, "mail", "gen-4", B, true),
			want: func(r *Release) {
				set(r, ms{svc: "mail", phase: MemberRolledBack, id: "gen-3", end: D + f + 3*time.Second, reason: reasonRolledBack})
				mem(r, "mail").RollbackID = "gen-4"
				r.Phase, r.EndedAt = RolledBack, at(D+f+3*time.Second)
			}},
		{name: "F9 the promoted switch seen again while its rollback is owed changes nothing", in: f5, ev: obs(D+f+2*time.Second, "auth", "gen-1", G, SwitchPromoted)},
		{name: "F10 web fails: api is rolled back first, alone",
			in: live(9, pr("auth", "gen-1", 0, D), pr("mail", "gen-3", 0, D), pr("api", "gen-10", D, 2*D), sw("web", "gen-5", 2*D)),
			ev: back(obs(2*D+f, "web", "gen-5", G, SwitchRolledBack), model.CauseLatencyRegressed, "p99 regressed", true),
			want: func(r *Release) {
				failing(r, "web", model.CauseLatencyRegressed, "web: p99 regressed")
				set(r, ms{svc: "web", phase: MemberRolledBack, id: "gen-5", start: 2 * D, end: 2*D + f, cause: model.CauseLatencyRegressed, reason: "p99 regressed"},
					ms{svc: "api", phase: MemberRollingBack, id: "gen-10", start: D, reason: reasonRolledBack})
			},
			effs: []Effect{RollBack{Service: "api", SwitchID: "gen-10", To: G}}},
		{name: "F11 an abort that came too late: promoted, then rolled back in its turn", in: f1, ev: obs(f+time.Second, "mail", "gen-3", G, SwitchPromoted),
			want: func(r *Release) {
				set(r, ms{svc: "mail", phase: MemberRollingBack, id: "gen-3", reason: reasonRolledBack})
			},
			effs: []Effect{RollBack{Service: "mail", SwitchID: "gen-3", To: B}}},
		{name: "F12 a second failure keeps the first", in: f1,
			ev: back(obs(f+time.Second, "mail", "gen-3", G, SwitchRolledBack), model.CauseMetricsUnavailable, "metrics unavailable for 5m", false),
			want: func(r *Release) {
				set(r, ms{svc: "mail", phase: MemberRollingBack, id: "gen-3", cause: model.CauseMetricsUnavailable, reason: "metrics unavailable for 5m"})
			}},
		{name: "F13 a gradual rollback fails the release as it begins", in: level0,
			ev: back(obs(f, "auth", "gen-1", G, SwitchRollingBack), model.CauseGateFailed, "gate smoke (step) failed: HTTP 500", false),
			want: func(r *Release) {
				*r = f1
				r.Generation--
				r.Cause, r.Reason = model.CauseGateFailed, "auth: gate smoke (step) failed: HTTP 500"
				set(r, ms{svc: "auth", phase: MemberRollingBack, id: "gen-1", cause: model.CauseGateFailed, reason: "gate smoke (step) failed: HTTP 500"})
			},
			effs: []Effect{AbortSwitch{Service: "mail", SwitchID: "gen-3"}}},
		{name: "F14 a member's switch aborted by hand fails the release, naming it", in: level0,
			ev: back(obs(f, "auth", "gen-1", G, SwitchAborted), "", "bad build", false),
			want: func(r *Release) {
				*r = f1
				r.Generation--
				r.Cause, r.Reason = aborted, "auth: bad build"
				set(r, ms{svc: "auth", phase: MemberAborting, id: "gen-1", cause: aborted, reason: "bad build"})
			},
			effs: []Effect{AbortSwitch{Service: "mail", SwitchID: "gen-3"}}},
		{name: "F15 a refused start fails the release", in: refused, ev: StartRefused{Now: at(time.Second), Service: "auth", Reason: "fleet green is empty"},
			want: func(r *Release) { *r = f12; r.Generation-- },
			effs: []Effect{AbortSwitch{Service: "mail"}}},
		{name: "F16 a start the release stopped before it began is skipped", in: f12,
			ev: StartRefused{Now: at(2 * time.Second), Service: "mail", Reason: "release rel-1 is rolling back"},
			want: func(r *Release) {
				set(r, ms{svc: "mail", phase: MemberSkipped, end: 2 * time.Second, reason: "not started: release rel-1 is rolling back"})
				r.Phase, r.EndedAt = RolledBack, at(2*time.Second)
			}},
		{name: "F17 a start the release stopped learns its switch, then aborts it", in: f12, ev: obs(2*time.Second, "mail", "gen-3", G, SwitchRunning),
			want: func(r *Release) { mem(r, "mail").SwitchID = "gen-3" }},
		{name: "F18 a refusal for a member that is not starting changes nothing", in: level0, ev: StartRefused{Now: at(f), Service: "auth", Reason: "late"}},
		{name: "F19 a refusal for a service outside the release", in: level0, ev: StartRefused{Now: at(f), Service: "crm"}, err: ErrUnknownMember},
	})
}

func TestAbort(t *testing.T) {
	level1 := live(7, pr("auth", "gen-1", 0, D), pr("mail", "gen-3", 0, D), sw("api", "gen-10", D))
	a2 := with(level1, func(r *Release) {
		r.Phase, r.Cause, r.Reason = RollingBack, aborted, "aborted by hand"
		set(r, ms{svc: "api", phase: MemberAborting, id: "gen-10", start: D, reason: reasonAborting})
		setSkipped(r, D+time.Minute, "web")
		r.Generation = 8
	})
	a3 := with(a2, func(r *Release) {
		set(r, ms{svc: "api", phase: MemberAborted, id: "gen-10", start: D, end: D + 2*time.Minute, reason: reasonAborting},
			ms{svc: "auth", phase: MemberRollingBack, id: "gen-1", reason: reasonRolledBack},
			ms{svc: "mail", phase: MemberRollingBack, id: "gen-3", reason: reasonRolledBack})
		r.Generation = 9
	})
	a4 := with(a3, func(r *Release) {
		set(r, ms{svc: "auth", phase: MemberRolledBack, id: "gen-1", end: D + 3*time.Minute, reason: reasonRolledBack})
		mem(r, "auth").RollbackID = "gen-2"
		r.Generation = 10
	})
	run(t, []tc{
		{name: "aborting a pending release ends it at once", in: chain(4), ev: Abort{Now: t0, Reason: "wrong services"},
			want: func(r *Release) {
				r.Phase, r.Cause, r.Reason, r.EndedAt = Aborted, aborted, "wrong services", t0
				setSkipped(r, 0, "auth", "mail", "api", "web")
			}},
		{name: "abort mid-release: the running switch aborted, the waiting member skipped", in: level1, ev: Abort{Now: at(D + time.Minute)},
			want: func(r *Release) { *r = a2; r.Generation-- },
			effs: []Effect{AbortSwitch{Service: "api", SwitchID: "gen-10"}}},
		{name: "the abort confirmed: level 0 rolled back", in: a2,
			ev:   back(obs(D+2*time.Minute, "api", "gen-10", B, SwitchAborted), aborted, "release rel-1 aborted", true),
			want: func(r *Release) { *r = a3; r.Generation-- },
			effs: []Effect{RollBack{Service: "auth", SwitchID: "gen-1", To: B}, RollBack{Service: "mail", SwitchID: "gen-3", To: B}}},
		{name: "the last switch back confirmed ends the release aborted", in: a4,
			ev: MemberObserved{Now: at(D + 4*time.Minute), Service: "mail", SwitchID: "gen-4", Release: "rel-1", To: B, Phase: SwitchPromoted, Confirmed: true},
			want: func(r *Release) {
				set(r, ms{svc: "mail", phase: MemberRolledBack, id: "gen-3", end: D + 4*time.Minute, reason: reasonRolledBack})
				mem(r, "mail").RollbackID = "gen-4"
				r.Phase, r.EndedAt = Aborted, at(D+4*time.Minute)
			}},
		{name: "abort while rolling back keeps the failure", in: a2, ev: Abort{Now: at(D + 2*time.Minute), Reason: "again"}},
		{name: "abort after the end", in: promotedChain(), ev: Abort{Now: at(4 * D)}, err: ErrEnded},
		{name: "a paused release can be aborted", in: with(level1, func(r *Release) { r.Phase, r.Reason = Paused, "paused by hand" }), ev: Abort{Now: at(D + time.Minute)},
			want: func(r *Release) { *r = a2; r.Generation-- },
			effs: []Effect{AbortSwitch{Service: "api", SwitchID: "gen-10"}}},
	})
}

func TestPauseResume(t *testing.T) {
	level0 := live(5, sw("auth", "gen-1", 0), sw("mail", "gen-3", 0))
	paused := with(level0, func(r *Release) { r.Phase, r.Reason = Paused, "paused by hand" })
	pausedHalf := with(paused, func(r *Release) { set(r, pr("auth", "gen-1", 0, D)) })
	run(t, []tc{
		{name: "pause", in: level0, ev: Pause{Now: at(time.Minute)},
			want: func(r *Release) { r.Phase, r.Reason = Paused, "paused by hand" }},
		{name: "a promotion while paused starts nothing", in: paused, ev: obs(D, "auth", "gen-1", G, SwitchPromoted),
			want: func(r *Release) { set(r, pr("auth", "gen-1", 0, D)) }},
		{name: "a tick while paused starts nothing", in: pausedHalf, ev: Tick{Now: at(D + time.Minute)}},
		{name: "resume starts what may start", in: pausedHalf, ev: Resume{Now: at(D + time.Minute)},
			want: func(r *Release) {
				r.Phase, r.Reason = Running, ""
				set(r, st("api", D+time.Minute))
			},
			effs: []Effect{StartSwitch{Service: "api", To: B}}},
		{name: "pause twice", in: paused, ev: Pause{Now: at(time.Minute)}},
		{name: "resume a running release", in: level0, ev: Resume{Now: at(time.Minute)}},
		{name: "pause a pending release", in: chain(4), ev: Pause{Now: t0}, err: ErrNotStarted},
		{name: "resume a pending release", in: chain(4), ev: Resume{Now: t0}, err: ErrNotStarted},
		{name: "pause an ended release", in: promotedChain(), ev: Pause{Now: at(4 * D)}, err: ErrEnded},
		{name: "a rollback cannot be paused", in: with(level0, func(r *Release) {
			failing(r, "auth", analysis, "auth: x")
			set(r, ms{svc: "auth", phase: MemberRollingBack, id: "gen-1", cause: analysis, reason: "x"}, ms{svc: "mail", phase: MemberAborting, id: "gen-3", reason: reasonAborting})
			setSkipped(r, time.Minute, "api", "web")
		}), ev: Pause{Now: at(2 * time.Minute)}, err: ErrRollingBack},
		{name: "a failure while paused rolls back", in: paused,
			ev: back(obs(5*time.Minute, "auth", "gen-1", G, SwitchRolledBack), analysis, "analysis failed: 9 errors", false),
			want: func(r *Release) {
				failing(r, "auth", analysis, "auth: analysis failed: 9 errors")
				set(r, ms{svc: "auth", phase: MemberRollingBack, id: "gen-1", cause: analysis, reason: "analysis failed: 9 errors"},
					ms{svc: "mail", phase: MemberAborting, id: "gen-3", reason: reasonAborting})
				setSkipped(r, 5*time.Minute, "api", "web")
			},
			effs: []Effect{AbortSwitch{Service: "mail", SwitchID: "gen-3"}}},
		{name: "paused, the last promotion ends the release promoted",
			in: with(live(9, pr("auth", "gen-1", 0, D), pr("mail", "gen-3", 0, D), pr("api", "gen-10", D, 2*D), sw("web", "gen-5", 2*D)),
				func(r *Release) { r.Phase, r.Reason = Paused, "paused by hand" }),
			ev: obs(3*D, "web", "gen-5", G, SwitchPromoted),
			want: func(r *Release) {
				set(r, pr("web", "gen-5", 2*D, 3*D))
				r.Phase, r.EndedAt, r.Reason = Promoted, at(3*D), "every member promoted"
			}},
	})
}

func TestSwitchedByHand(t *testing.T) {
	const h = 5 * time.Minute
	level0 := live(5, sw("auth", "gen-1", 0), sw("mail", "gen-3", 0))
	level2 := live(9, pr("auth", "gen-1", 0, D), pr("mail", "gen-3", 0, D), pr("api", "gen-10", D, 2*D), sw("web", "gen-5", 2*D))
	hand := func(d time.Duration, svc, id string, to model.Color, p SwitchPhase) MemberObserved {
		return MemberObserved{Now: at(d), Service: svc, SwitchID: id, To: to, Phase: p}
	}
	detached := func(svc, id string, start, end time.Duration, why string) ms {
		return ms{svc: svc, phase: MemberDetached, id: id, start: start, end: end, cause: CauseSwitchedOutside, reason: why}
	}
	rollingBackAuth := with(level2, func(r *Release) {
		failing(r, "web", analysis, "web: x")
		set(r, ms{svc: "web", phase: MemberRolledBack, id: "gen-5", start: 2 * D, end: 2*D + h, cause: analysis, reason: "x"},
			ms{svc: "api", phase: MemberRolledBack, id: "gen-10", start: D, end: 2*D + h + time.Second, reason: reasonRolledBack},
			ms{svc: "auth", phase: MemberRollingBack, id: "gen-1", reason: reasonRolledBack},
			ms{svc: "mail", phase: MemberRollingBack, id: "gen-3", reason: reasonRolledBack})
		mem(r, "api").RollbackID = "gen-11"
	})
	run(t, []tc{
		{name: "a waiting member switched by hand fails the release", in: level0, ev: hand(h, "web", "gen-5", G, SwitchRunning),
			want: func(r *Release) {
				why := "switched outside the release: its latest switch is gen-5 (to green, running)"
				failing(r, "web", CauseSwitchedOutside, "web: "+why)
				set(r, ms{svc: "auth", phase: MemberAborting, id: "gen-1", reason: reasonAborting},
					ms{svc: "mail", phase: MemberAborting, id: "gen-3", reason: reasonAborting})
				setSkipped(r, h, "api")
				set(r, detached("web", "", 0, h, why))
				mem(r, "web").StartedAt = time.Time{}
			},
			effs: []Effect{AbortSwitch{Service: "auth", SwitchID: "gen-1"}, AbortSwitch{Service: "mail", SwitchID: "gen-3"}}},
		{name: "a waiting member still on its base switch is no change", in: level0, ev: hand(h, "web", "gen-4", B, SwitchPromoted)},
		{name: "a promoted provider switched back by hand: its consumer aborted, itself left alone", in: level2, ev: hand(2*D+h, "auth", "gen-2", B, SwitchPromoted),
			want: func(r *Release) {
				why := "switched outside the release: its latest switch is gen-2 (to blue, promoted)"
				failing(r, "auth", CauseSwitchedOutside, "auth: "+why)
				set(r, detached("auth", "gen-1", 0, 2*D+h, why),
					ms{svc: "web", phase: MemberAborting, id: "gen-5", start: 2 * D, reason: reasonAborting})
			},
			effs: []Effect{AbortSwitch{Service: "web", SwitchID: "gen-5"}}},
		{name: "a switching member whose state shows no switch is detached", in: live(7, pr("auth", "gen-1", 0, D), pr("mail", "gen-3", 0, D), sw("api", "gen-10", D)),
			ev: MemberObserved{Now: at(D + h), Service: "api"},
			want: func(r *Release) {
				why := "switched outside the release: its state shows no switch"
				failing(r, "api", CauseSwitchedOutside, "api: "+why)
				set(r, detached("api", "gen-10", D, D+h, why),
					ms{svc: "auth", phase: MemberRollingBack, id: "gen-1", reason: reasonRolledBack},
					ms{svc: "mail", phase: MemberRollingBack, id: "gen-3", reason: reasonRolledBack})
				setSkipped(r, D+h, "web")
			},
			effs: []Effect{RollBack{Service: "auth", SwitchID: "gen-1", To: B}, RollBack{Service: "mail", SwitchID: "gen-3", To: B}}},
		{name: "a switching member whose state shows its base switch again is detached", in: live(7, pr("auth", "gen-1", 0, D), pr("mail", "gen-3", 0, D), sw("api", "gen-10", D)),
			ev: hand(D+h, "api", "gen-9", G, SwitchPromoted),
			want: func(r *Release) {
				why := "switched outside the release: its latest switch is gen-9 (to green, promoted)"
				failing(r, "api", CauseSwitchedOutside, "api: "+why)
				set(r, detached("api", "gen-10", D, D+h, why),
					ms{svc: "auth", phase: MemberRollingBack, id: "gen-1", reason: reasonRolledBack},
					ms{svc: "mail", phase: MemberRollingBack, id: "gen-3", reason: reasonRolledBack})
				setSkipped(r, D+h, "web")
			},
			effs: []Effect{RollBack{Service: "auth", SwitchID: "gen-1", To: B}, RollBack{Service: "mail", SwitchID: "gen-3", To: B}}},
		{name: "the release's switch back undone by hand detaches the member", in: rollingBackAuth,
			ev: MemberObserved{Now: at(2*D + h + 2*time.Second), Service: "auth", SwitchID: "gen-2", Release: "rel-1", To: B, Phase: SwitchAborted, Cause: aborted},
			want: func(r *Release) {
				set(r, detached("auth", "gen-1", 0, 2*D+h+2*time.Second, "switched outside the release: its switch back gen-2 was aborted"))
				mem(r, "auth").RollbackID = "gen-2"
			}},
		{name: "a settled member ignores later switches", in: rollingBackAuth, ev: hand(2*D+h+2*time.Second, "api", "gen-12", B, SwitchRunning)},
	})
}

func TestWindows(t *testing.T) {
	level0 := live(5, sw("auth", "gen-1", 0), sw("mail", "gen-3", 0))
	freeze := &Window{Until: at(3 * time.Hour), Reason: "freeze payday"}
	held := with(level0, func(r *Release) { mem(r, "api").Window = freeze })
	heldReady := with(held, func(r *Release) { set(r, pr("auth", "gen-1", 0, D)) })
	unknown := with(heldReady, func(r *Release) { mem(r, "api").Window = &Window{Reason: "no open time within 400 days"} })
	run(t, []tc{
		{name: "a window closing holds a waiting member", in: level0, ev: WindowClosed{Now: at(5 * time.Minute), Service: "api", Until: at(3 * time.Hour), Reason: "freeze payday"},
			want: func(r *Release) { mem(r, "api").Window = freeze }},
		{name: "a held member does not start when its provider is promoted", in: held, ev: obs(D, "auth", "gen-1", G, SwitchPromoted),
			want: func(r *Release) { set(r, pr("auth", "gen-1", 0, D)) }},
		{name: "a tick before the window opens starts nothing", in: heldReady, ev: Tick{Now: at(3*time.Hour - time.Second)}},
		{name: "a tick once it opens starts it", in: heldReady, ev: Tick{Now: at(3 * time.Hour)},
			want: func(r *Release) {
				mem(r, "api").Window = nil
				set(r, st("api", 3*time.Hour))
			},
			effs: []Effect{StartSwitch{Service: "api", To: B}}},
		{name: "running members continue: a window for a switching member changes nothing", in: level0, ev: WindowClosed{Now: at(time.Minute), Service: "auth", Until: at(time.Hour)}},
		{name: "a window for every member holds the waiting ones", in: level0, ev: WindowClosed{Now: at(time.Minute), Until: at(3 * time.Hour), Reason: "freeze payday"},
			want: func(r *Release) { mem(r, "api").Window, mem(r, "web").Window = freeze, freeze }},
		{name: "a window with no known opening holds past any time", in: unknown, ev: Tick{Now: at(1000 * time.Hour)}},
		{name: "until it opens", in: unknown, ev: WindowOpened{Now: at(5 * time.Hour), Service: "api"},
			want: func(r *Release) {
				mem(r, "api").Window = nil
				set(r, st("api", 5*time.Hour))
			},
			effs: []Effect{StartSwitch{Service: "api", To: B}}},
		{name: "a forced release ignores windows", in: with(level0, func(r *Release) { r.Force, r.ForceReason = true, "INC-42" }),
			ev: WindowClosed{Now: at(time.Minute), Service: "api", Until: at(time.Hour)}},
		{name: "a window already open again changes nothing", in: level0, ev: WindowClosed{Now: at(time.Hour), Service: "api", Until: at(time.Hour)}},
		{name: "a window for a service outside the release", in: level0, ev: WindowClosed{Now: at(time.Hour), Service: "crm", Until: at(2 * time.Hour)}, err: ErrUnknownMember},
		{name: "a start refused for its window waits for it", in: live(3, st("auth", 0), st("mail", 0)),
			ev: StartRefused{Now: at(time.Second), Service: "auth", Reason: "outside the deploy windows", Window: true, Until: at(time.Hour)},
			want: func(r *Release) {
				set(r, ms{svc: "auth", phase: MemberWaiting})
				mem(r, "auth").Window = &Window{Until: at(time.Hour), Reason: "outside the deploy windows"}
			}},
		{name: "a window closing after a failure changes nothing", in: with(level0, func(r *Release) {
			failing(r, "auth", analysis, "auth: x")
			set(r, ms{svc: "auth", phase: MemberRollingBack, id: "gen-1", cause: analysis, reason: "x"}, ms{svc: "mail", phase: MemberAborting, id: "gen-3", reason: reasonAborting})
			setSkipped(r, time.Minute, "api", "web")
		}), ev: WindowClosed{Now: at(2 * time.Minute), Until: at(time.Hour)}},
	})
}

func TestResync(t *testing.T) {
	mixed := live(5, st("auth", 0), sw("mail", "gen-3", 0))
	unwinding := with(live(9, pr("auth", "gen-1", 0, D), pr("mail", "gen-3", 0, D), sw("api", "gen-10", D)), func(r *Release) {
		r.Phase, r.Cause, r.Reason = RollingBack, aborted, "aborted by hand"
		set(r, ms{svc: "api", phase: MemberAborting, id: "gen-10", start: D, reason: reasonAborting})
		setSkipped(r, D, "web")
	})
	afterAbort := with(unwinding, func(r *Release) {
		set(r, ms{svc: "api", phase: MemberAborted, id: "gen-10", start: D, end: D + time.Minute, reason: reasonAborting},
			ms{svc: "auth", phase: MemberRollingBack, id: "gen-1", reason: reasonRolledBack},
			ms{svc: "mail", phase: MemberRollingBack, id: "gen-3", reason: reasonRolledBack})
	})
	run(t, []tc{
		{name: "a start decided and stored is owed", in: mixed, ev: Resync{Now: at(time.Minute)},
			effs: []Effect{StartSwitch{Service: "auth", To: G}}},
		{name: "a forced release's start is forced", in: with(mixed, func(r *Release) { r.Force, r.ForceReason = true, "INC-42" }), ev: Resync{Now: at(time.Minute)},
			effs: []Effect{StartSwitch{Service: "auth", To: G, Force: true}}},
		{name: "an abort is owed", in: unwinding, ev: Resync{Now: at(D + time.Minute)},
			effs: []Effect{AbortSwitch{Service: "api", SwitchID: "gen-10"}}},
		{name: "rollbacks are owed", in: afterAbort, ev: Resync{Now: at(D + 2*time.Minute)},
			effs: []Effect{RollBack{Service: "auth", SwitchID: "gen-1", To: B}, RollBack{Service: "mail", SwitchID: "gen-3", To: B}}},
		{name: "nothing owed", in: live(5, sw("auth", "gen-1", 0), sw("mail", "gen-3", 0)), ev: Resync{Now: at(time.Minute)}},
		{name: "an ended release owes nothing", in: promotedChain(), ev: Resync{Now: at(4 * D)}},
	})
}
