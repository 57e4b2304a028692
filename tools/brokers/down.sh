#!/usr/bin/env bash
# pnpm brokers:down [redis|rabbitmq|kafka]... — stops what `pnpm brokers:up` started, by the pids
# it recorded (each a process group), and deletes their data. Never by name: a broker someone else
# started stays. Safe to run twice.
set -euo pipefail
. "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

kinds=("$@")
[ ${#kinds[@]} -eq 0 ] && kinds=(redis rabbitmq kafka)

stop_recorded() {
  local name="$1" pid start
  [ -f "$STATE_DIR/$name.pid" ] || return 0
  read -r pid start <"$STATE_DIR/$name.pid"
  # Only if that pid is still the process we started (same start time): pids get reused.
  if [ -d "/proc/$pid" ] && [ "$(awk '{print $22}' "/proc/$pid/stat" 2>/dev/null)" = "$start" ]; then
    kill -TERM -- "-$pid" 2>/dev/null || true
    for _ in $(seq 1 60); do
      [ -d "/proc/$pid" ] || break
      sleep 0.5
    done
    kill -KILL -- "-$pid" 2>/dev/null || true
    log "stopped $name (pid $pid)"
  fi
  rm -f "$STATE_DIR/$name.pid"
}

for kind in "${kinds[@]}"; do
  stop_recorded "$kind"
  [ "$kind" = rabbitmq ] && stop_recorded epmd
  rm -rf "${STATE_DIR:?}/$kind-data" "$STATE_DIR/$kind.properties"
done
log "down: ${kinds[*]}"
