#!/usr/bin/env bash
# promote.sh — the CI recipe of docs/ci.md: switch SERVICE to the freshly
# deployed colour with `bg switch --wait -o json`, keep the JSON report, and
# exit with bg's exit code after saying what it means for the pipeline.
#
#   docs/promote.sh SERVICE [blue|green]
#
# Environment:
#   BG_ADDR, BG_TOKEN   the control plane's admin API and token (read by bg)
#   BG_BIN              the bg binary (default: bg on PATH)
#   BG_REPORT           where the JSON report goes (default: report.json)
#   BG_WAIT_TIMEOUT     give up following after this long, exit 12 (default: 30m)
#   BG_PREFLIGHT        1 (default) runs `bg switch --dry-run` first; 0 skips it
#   BG_SWITCH_ARGS      extra switch flags, e.g. "--steps 10,50,100 --bake 1m"
#
# On SIGINT/SIGTERM (a cancelled pipeline) the switch is aborted: traffic
# goes back to the stable colour, and the script exits 11.
set -uo pipefail

service=${1:?usage: promote.sh SERVICE [blue|green]}
to=${2:-}
bg=${BG_BIN:-bg}
report=${BG_REPORT:-report.json}
wait_timeout=${BG_WAIT_TIMEOUT:-30m}
to_args=()
if [ -n "$to" ]; then
  to_args=(--to "$to")
fi
read -r -a extra <<<"${BG_SWITCH_ARGS:-}"

say() {
  if [ "${GITHUB_ACTIONS:-}" = true ]; then
    if [ "$1" = 0 ]; then echo "::notice::$2"; else echo "::error::$2"; fi
  fi
  echo "promote.sh: $2" >&2
  if [ -n "${GITHUB_STEP_SUMMARY:-}" ]; then
    echo "**bg switch $service**: $2" >>"$GITHUB_STEP_SUMMARY"
  fi
}

explain() {
  case $1 in
    0) say 0 "promoted: $service is on the new colour" ;;
    2) say 2 "usage error (exit 2): bad flags, unknown service or colour; fix the pipeline" ;;
    3) say 3 "refused (exit 3): another switch is running, the target fleet is empty or the control plane is not ready; check 'bg status $service', do not retry blindly" ;;
    4) say 4 "not acknowledged (exit 4): some proxies did not ACK in time; traffic may be split, check 'bg status $service' and abort or promote by hand" ;;
    5) say 5 "unauthorized (exit 5): BG_TOKEN is missing or wrong" ;;
    6) say 6 "unreachable (exit 6): no answer from the control plane at ${BG_ADDR:-127.0.0.1:9090}; a started switch keeps running there, check 'bg status $service'" ;;
    10) say 10 "rolled back (exit 10): the new colour failed analysis and traffic is back on the stable one; see $report" ;;
    11) say 11 "aborted (exit 11): the switch was aborted; traffic is back on the stable colour" ;;
    12) say 12 "timed out (exit 12): the switch was still running after $wait_timeout; it goes on, abort it or promote it" ;;
    *) say "$1" "unexpected failure (exit $1)" ;;
  esac
}

# The report always exists; it stays empty when bg did not get as far as one.
: >"$report"

if [ "${BG_PREFLIGHT:-1}" = 1 ]; then
  "$bg" switch "$service" ${to_args[@]+"${to_args[@]}"} --dry-run ${extra[@]+"${extra[@]}"} >&2
  code=$?
  if [ "$code" != 0 ]; then
    say "$code" "pre-flight (--dry-run) failed, nothing was changed"
    explain "$code"
    exit "$code"
  fi
fi

pid=
cancel() {
  trap - INT TERM
  say 11 "pipeline cancelled: aborting the switch of $service"
  if [ -n "$pid" ]; then kill -TERM "$pid" 2>/dev/null; wait "$pid" 2>/dev/null; fi
  "$bg" abort "$service" --reason "pipeline cancelled" >&2
  exit 11
}
trap cancel INT TERM

# bg runs in the background so that the trap runs as soon as a signal comes.
"$bg" switch "$service" ${to_args[@]+"${to_args[@]}"} ${extra[@]+"${extra[@]}"} \
  --wait --wait-timeout "$wait_timeout" -o json >"$report" &
pid=$!
wait "$pid"
code=$?
pid=
trap - INT TERM

explain "$code"
if [ -s "$report" ] && command -v jq >/dev/null 2>&1; then
  jq -r '"switch \(.switch.id // "-"): \(.switch.phase // "-") at blue \(.weights.blue)% / green \(.weights.green)%" +
    (if .switch.reason then " (\(.switch.reason))" else "" end)' "$report" >&2 || true
fi
exit "$code"
