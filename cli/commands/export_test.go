package commands

import "time"

// SetReleasePoll sets how often `release … --wait` polls, for tests, and
// returns a function restoring it.
func SetReleasePoll(d time.Duration) (restore func()) {
	old := releasePollEvery
	releasePollEvery = d
	return func() { releasePollEvery = old }
}

// SetReleaseRetry sets how long `release … --wait` reads through transient
// errors, for tests, and returns a function restoring it.
func SetReleaseRetry(d time.Duration) (restore func()) {
	old := releaseRetryFor
	releaseRetryFor = d
	return func() { releaseRetryFor = old }
}
