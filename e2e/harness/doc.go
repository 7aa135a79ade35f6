// Package harness starts the real pieces an e2e test of bg needs — Consul,
// gRPC backend fleets, proxyless xDS traffic and the bg binary — on
// 127.0.0.1, and tears them down with the test.
//
// Every child process gets Pdeathsig=SIGKILL (Linux) and a t.Cleanup, so a
// crashed or timed-out test leaves nothing running. Logs of child processes
// go to files in the test's temp dir; their tails are printed when the test
// fails.
package harness
