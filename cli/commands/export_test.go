package commands

import "time"

// SetReleasePoll sets how often `release … --wait` polls, for tests, and
// returns a function restoring it.
func SetReleasePoll(d time.Duration) (restore func()) {
	old := releasePollEvery
	releasePollEvery = d
	return func() { releasePollEvery = old }
}
