#!/usr/bin/env bash
# Installs what the e2e tests need on a fresh machine. Idempotent: each step
# is skipped when its tool already works. Callable from any directory.
set -euo pipefail

repo="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
bin="$repo/.cache/bin"
mkdir -p "$bin"

# --- Consul -----------------------------------------------------------------
# Built from source via the Go module proxy (no prebuilt downloads reach this
# network). The tools module pins the version; the first build takes ~3 min.
if "$bin/consul" version >/dev/null 2>&1; then
	echo "consul: $("$bin/consul" version | head -n1) (cached)"
else
	echo "consul: building from e2e/tools/consul ..."
	# Build into a temp name and rename so an interrupted build never leaves a
	# half-written binary that a later run would trust.
	(cd "$repo/e2e/tools/consul" && go build -o "$bin/consul.tmp" .)
	mv -f "$bin/consul.tmp" "$bin/consul"
	echo "consul: $("$bin/consul" version | head -n1)"
fi

# --- Prometheus -------------------------------------------------------------
# Debian's package; needs root (true on dev machines and CI here).
if command -v prometheus >/dev/null 2>&1; then
	echo "prometheus: $(prometheus --version 2>&1 | head -n1) (installed)"
else
	echo "prometheus: installing from apt ..."
	sudo_cmd=()
	if [ "$(id -u)" -ne 0 ]; then sudo_cmd=(sudo); fi
	export DEBIAN_FRONTEND=noninteractive
	if ! "${sudo_cmd[@]}" apt-get install -y --no-install-recommends prometheus; then
		# Package lists may be missing or stale on a fresh machine.
		"${sudo_cmd[@]}" apt-get update
		"${sudo_cmd[@]}" apt-get install -y --no-install-recommends prometheus
	fi
	echo "prometheus: $(prometheus --version 2>&1 | head -n1)"
fi

# --- systemd-analyze ----------------------------------------------------------
# deploy/ tests run `systemd-analyze verify` on deploy/systemd/bg.service.
if command -v systemd-analyze >/dev/null 2>&1; then
	echo "systemd-analyze: $(systemd-analyze --version | head -n1) (installed)"
else
	echo "systemd-analyze: installing Debian's systemd package ..."
	sudo_cmd=()
	if [ "$(id -u)" -ne 0 ]; then sudo_cmd=(sudo); fi
	export DEBIAN_FRONTEND=noninteractive
	if ! "${sudo_cmd[@]}" apt-get install -y --no-install-recommends systemd; then
		"${sudo_cmd[@]}" apt-get update
		"${sudo_cmd[@]}" apt-get install -y --no-install-recommends systemd
	fi
	echo "systemd-analyze: $(systemd-analyze --version | head -n1)"
fi
