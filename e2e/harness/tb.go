package harness

// TB is the part of testing.TB the harness uses. It is narrow so programs
// outside `go test` (e2e/cmd/bg-demo) can drive the harness with their own
// runner; testing.TB satisfies it, so tests pass t as before.
type TB interface {
	Helper()
	Cleanup(func())
	Errorf(format string, args ...any)
	Fatalf(format string, args ...any)
	Logf(format string, args ...any)
	Skipf(format string, args ...any)
	TempDir() string
	Failed() bool
}
