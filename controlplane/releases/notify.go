package releases

import (
	"github.com/bgctl/bg/controlplane/notify"
	"github.com/bgctl/bg/controlplane/release"
)

// releaseKinds maps a release phase entered to what people are told.
var releaseKinds = map[release.Phase]notify.Kind{
	release.Running:    notify.ReleaseStarted,
	release.Promoted:   notify.ReleasePromoted,
	release.RolledBack: notify.ReleaseRolledBack,
	release.Aborted:    notify.ReleaseAborted,
}

// notify tells Options.Notify of a release that started (running for the
// first time: not a resume after a pause) or ended.
func (e *Executor) notify(prev, next release.Release) {
	f := e.opts.Notify
	kind, ok := releaseKinds[next.Phase]
	if f == nil || !ok || (next.Phase == release.Running && prev.Phase != release.Pending && prev.Phase != "") {
		return
	}
	reason := next.Reason
	if next.Member != "" {
		reason = next.Member + ": " + reason
	}
	f(notify.Event{Kind: kind, Release: next.ID, Reason: reason, Cause: next.Cause, At: e.rt.Now(), Generation: next.Generation})
}
