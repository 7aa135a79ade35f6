#!/usr/bin/env bash
# The test command: installs what tests need, then runs every test, the
# e2e suite against real Consul and grpc-go xDS clients, and the benchmarks
# the README quotes. Exits non-zero on any failure.
set -euo pipefail
repo="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$repo"

scripts/install-test-deps.sh

# e2e tests fail instead of skipping when a dependency is missing.
export CI="${CI:-true}"

echo "== go vet"
go vet ./...
echo "== unit and e2e tests"
go test -count=1 -timeout 20m ./...
echo "== benchmarks"
go test -run '^$' -bench . -benchtime 10x -timeout 20m ./controlplane/traffic/
