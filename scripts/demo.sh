#!/usr/bin/env bash
# Local blue/green demo, and a smoke test: real Consul, a blue (v1) and a
# green (v2) gRPC fleet, a real Prometheus scraping them every second,
# `bg serve` and proxyless grpc-go xDS clients, all on 127.0.0.1. Shows the
# split live while it runs the real CLI: a progressive switch judged live in
# which green starts failing and is rolled back on its own (printing the time
# from error onset to all traffic on blue), a healthy green promoted, then an
# instant switch and an abort. Exits non-zero if any of them misbehaves (the
# failing green promoted, the healthy one rolled back, a call failing outside
# the failure window, traffic not where bg says). About 1.5 minutes.
# Everything it starts is stopped on exit, error or Ctrl-C.
set -euo pipefail
repo="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$repo"

scripts/install-test-deps.sh

echo "building bin/bg and the demo driver ..."
go build -o bin/bg ./cli/bg
go build -o .cache/e2e/bg-demo ./e2e/cmd/bg-demo

# exec: no shell in between, so Ctrl-C and SIGTERM reach the driver, which
# owns the cleanup.
exec .cache/e2e/bg-demo --bg bin/bg "$@"
