#!/usr/bin/env bash
# Called by .ci/run after the tests, whatever their outcome; it provisions nothing. The testkit
# removes its containers and processes itself (and its watchdog does when a test process dies);
# this checks that it did: a container labelled with this run's PLUGMQ_RUN_ID (exported by
# .ci/run) that is still there is a cleanup bug, so under CI it is removed and fails the run. Then
# it stops a podman API service the tests' provisioning started during this run (by recorded pid).
set -uo pipefail
. "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

rc=0
if [ -z "${PLUGMQ_RUN_ID:-}" ]; then
  log "no PLUGMQ_RUN_ID: cannot tell this run's containers from others, not checking them"
elif command -v podman >/dev/null 2>&1; then
  leftovers=""
  # The watchdog needs a moment after the last test process exits.
  for _ in $(seq 1 40); do
    leftovers="$(podman ps -aq --filter "label=dev.plugmq.run=$PLUGMQ_RUN_ID")"
    [ -z "$leftovers" ] && break
    sleep 0.5
  done
  if [ -n "$leftovers" ]; then
    podman ps -a --filter "label=dev.plugmq.run=$PLUGMQ_RUN_ID" >&2
    if [ "${CI:-}" = true ]; then
      log "ERROR: broker containers left after the tests; removing them"
      # shellcheck disable=SC2086
      podman rm -f $leftovers >/dev/null
      rc=1
    else
      log "this run's broker containers still exist (not removed outside CI)"
    fi
  else
    log "no broker containers left"
  fi
fi

# The podman API service only if this run started it (the provisioning does when podman and its
# images are there but the API is not): recorded pid, that same process, started after the run
# began. One that was running before the run is someone else's and stays, as it does outside CI.
# Nothing else: the run started no brokers:up processes, and the testkit removes its own.
pidfile="$STATE_DIR/podman-service.pid"
run_started="${PLUGMQ_RUN_ID#ci-}"
run_started="${run_started%%-*}"
if [ "${CI:-}" = true ] && [ -f "$pidfile" ] && [[ "$run_started" =~ ^[0-9]+$ ]]; then
  pid="$(cat "$pidfile")"
  # cmdline is NUL-separated (grep alone never matched it); stat's field 22 is the start in ticks.
  if [ -d "/proc/$pid" ] && tr '\0' ' ' <"/proc/$pid/cmdline" 2>/dev/null | grep -q 'podman system service'; then
    started=$(($(awk '/^btime/ {print $2}' /proc/stat) + $(awk '{print $22}' "/proc/$pid/stat") / $(getconf CLK_TCK)))
    if [ "$started" -ge "$run_started" ]; then
      kill "$pid" && log "stopped podman API service (pid $pid), started by this run"
      rm -f "$pidfile"
    fi
  fi
fi
exit $rc
