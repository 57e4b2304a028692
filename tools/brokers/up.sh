#!/usr/bin/env bash
# pnpm brokers:up [redis|rabbitmq|kafka]... — local broker processes on loopback at the default
# ports (6379, 5672, 9092; PLUGMQ_<KIND>_PORT to move one), for working outside the tests or where no container engine exists.
# Installs what is missing, waits for a protocol-level answer, prints the URLs. Safe to run twice:
# a broker already up from an earlier run is left as it is. `pnpm brokers:down` stops them.
set -euo pipefail
. "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

kinds=("$@")
[ ${#kinds[@]} -eq 0 ] && kinds=(redis rabbitmq kafka)
for kind in "${kinds[@]}"; do
  case "$kind" in redis | rabbitmq | kafka) ;; *) die "unknown broker '$kind' (redis, rabbitmq or kafka)" ;; esac
done

probe() { node "$BROKERS_DIR/probe.mjs" "$@" >/dev/null 2>&1; }
free_port() { node "$BROKERS_DIR/probe.mjs" free-port; }
# A recorded pid counts only if that process still is the one we started (pids get reused).
ours_alive() {
  local kind="$1" pid start
  [ -f "$STATE_DIR/$kind.pid" ] || return 1
  read -r pid start <"$STATE_DIR/$kind.pid"
  [ -d "/proc/$pid" ] && [ "$(awk '{print $22}' "/proc/$pid/stat" 2>/dev/null)" = "$start" ]
}
record() { echo "$1 $(awk '{print $22}' "/proc/$1/stat")" >"$STATE_DIR/$2.pid"; }

# Default ports; PLUGMQ_<KIND>_PORT moves one (e.g. when a system service already holds it).
REDIS_PORT="${PLUGMQ_REDIS_PORT:-6379}"
RABBITMQ_PORT="${PLUGMQ_RABBITMQ_PORT:-5672}"
KAFKA_PORT="${PLUGMQ_KAFKA_PORT:-9092}"
KAFKA_CONTROLLER_PORT="${PLUGMQ_KAFKA_CONTROLLER_PORT:-$((KAFKA_PORT + 1))}"
url_of() {
  case "$1" in
  redis) echo "redis://127.0.0.1:$REDIS_PORT" ;;
  rabbitmq) echo "amqp://guest:guest@127.0.0.1:$RABBITMQ_PORT" ;;
  kafka) echo "kafka://127.0.0.1:$KAFKA_PORT" ;;
  esac
}
port_of() { case "$1" in redis) echo "$REDIS_PORT" ;; rabbitmq) echo "$RABBITMQ_PORT" ;; kafka) echo "$KAFKA_PORT" ;; esac }
port_busy() { ss -ltnH "sport = :$1" 2>/dev/null | grep -q .; }

# Each broker runs under setsid: its own process group, so down reaches the whole tree.
start_redis() {
  apt_ensure redis-server:redis-server
  mkdir -p "$STATE_DIR/redis-data"
  setsid redis-server --port "$REDIS_PORT" --bind 127.0.0.1 --dir "$STATE_DIR/redis-data" --appendonly yes --save "" \
    --protected-mode no >"$STATE_DIR/redis.log" 2>&1 </dev/null &
  record $! redis
}

start_rabbitmq() {
  apt_ensure rabbitmq-server:/usr/lib/rabbitmq/bin/rabbitmq-server
  local dir="$STATE_DIR/rabbitmq-data" epmd_port dist_port
  mkdir -p "$dir"
  # A private epmd (recorded, stopped by down) instead of the daemon Erlang would leave running.
  epmd_port="$(free_port)"
  dist_port="$(free_port)"
  setsid epmd -port "$epmd_port" -address 127.0.0.1 >"$STATE_DIR/epmd.log" 2>&1 </dev/null &
  record $! epmd
  printf '[].\n' >"$dir/enabled_plugins"
  : >"$dir/rabbitmq-env.conf"
  : >"$dir/rabbitmq.conf"
  HOME="$dir" ERL_EPMD_PORT="$epmd_port" RABBITMQ_NODENAME="plugmq$RABBITMQ_PORT@localhost" RABBITMQ_NODE_IP_ADDRESS=127.0.0.1 \
    RABBITMQ_NODE_PORT="$RABBITMQ_PORT" RABBITMQ_DIST_PORT="$dist_port" RABBITMQ_MNESIA_BASE="$dir/mnesia" \
    RABBITMQ_LOG_BASE="$dir/log" RABBITMQ_LOGS=- RABBITMQ_CONFIG_FILE="$dir/rabbitmq.conf" \
    RABBITMQ_CONF_ENV_FILE="$dir/rabbitmq-env.conf" RABBITMQ_ENABLED_PLUGINS_FILE="$dir/enabled_plugins" \
    RABBITMQ_PID_FILE="$dir/rabbitmq.pid" \
    setsid /usr/lib/rabbitmq/bin/rabbitmq-server >"$STATE_DIR/rabbitmq.log" 2>&1 </dev/null &
  record $! rabbitmq
}

start_kafka() {
  kafka_libs_ensure
  local dir="$STATE_DIR/kafka-data" props="$STATE_DIR/kafka.properties"
  mkdir -p "$dir"
  sed -e 's#@HOST@#127.0.0.1#g' -e "s#@PORT@#$KAFKA_PORT#g" -e "s#@CONTROLLER_PORT@#$KAFKA_CONTROLLER_PORT#g" -e "s#@LOG_DIR@#$dir#g" \
    "$BROKERS_DIR/kafka/server.properties" >"$props"
  local jopts=(-cp "$KAFKA_LIBS/*" "-Dlog4j.configuration=file:$BROKERS_DIR/kafka/log4j.properties")
  java "${jopts[@]}" kafka.tools.StorageTool format --ignore-formatted -t "$(cat /proc/sys/kernel/random/uuid)" \
    -c "$props" >"$STATE_DIR/kafka-format.log" 2>&1 || die "kafka storage format failed: $STATE_DIR/kafka-format.log"
  setsid java -Xms256m -Xmx512m "${jopts[@]}" kafka.Kafka "$props" >"$STATE_DIR/kafka.log" 2>&1 </dev/null &
  record $! kafka
}

failed=0
for kind in "${kinds[@]}"; do
  url="$(url_of "$kind")"
  if ours_alive "$kind" && probe "$kind" "$url" 3000; then
    log "$kind already up (started by an earlier brokers:up): $url"
    continue
  fi
  if port_busy "$(port_of "$kind")"; then
    # Someone else's broker (a system service, another user): use it, never touch it.
    if probe "$kind" "$url" 3000; then
      log "$kind: port $(port_of "$kind") is already served by a broker brokers:up did not start; using it as is: $url"
      continue
    fi
    log "$kind: port $(port_of "$kind") is taken by something that is not a serving $kind"
    failed=1
    continue
  fi
  [ "$kind" = kafka ] && apt_ensure default-jre-headless:java
  t0=$(date +%s%N)
  "start_$kind"
  read -r pid _ <"$STATE_DIR/$kind.pid"
  ready=0
  for _ in $(seq 1 120); do
    if probe "$kind" "$url" 1500; then
      ready=1
      break
    fi
    kill -0 "$pid" 2>/dev/null || break
    sleep 0.5
  done
  if [ $ready = 1 ]; then
    log "$kind ready in $((($(date +%s%N) - t0) / 1000000)) ms: $url (pid $pid, log $STATE_DIR/$kind.log)"
  else
    log "$kind did not come up; last lines of $STATE_DIR/$kind.log:"
    tail -20 "$STATE_DIR/$kind.log" >&2 || true
    failed=1
  fi
done

echo "# brokers (pnpm brokers:down stops the ones brokers:up started)"
for kind in "${kinds[@]}"; do
  echo "export PLUGMQ_$(echo "$kind" | tr a-z A-Z)_URL=$(url_of "$kind")"
done
exit $failed
