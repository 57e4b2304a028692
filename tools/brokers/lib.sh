#!/usr/bin/env bash
# Shared helpers for tools/brokers/*.sh: versions, state paths, installs, the podman API service.
# Sourced, never run. Everything here is idempotent: each function checks before it acts.

BROKERS_DIR="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
# shellcheck source=versions.env
set -a
. "$BROKERS_DIR/versions.env"
set +a

# Caches and state live outside the repo so a fresh clone or `git clean` does not throw them away.
PLUGMQ_CACHE="${PLUGMQ_CACHE:-$HOME/.cache/plugmq}"
KAFKA_LIBS="$PLUGMQ_CACHE/kafka-libs-$KAFKA_VERSION"
STATE_DIR="${PLUGMQ_BROKERS_STATE:-$PLUGMQ_CACHE/brokers-state}"
PODMAN_SOCKET_PATH="${PLUGMQ_PODMAN_SOCKET:-/run/plugmq-podman.sock}"
mkdir -p "$PLUGMQ_CACHE" "$STATE_DIR"

log() { printf '[brokers] %s\n' "$*" >&2; }
die() {
  printf '[brokers] ERROR: %s\n' "$*" >&2
  exit 1
}

need_root() {
  [ "$(id -u)" = 0 ] || die "$1 needs root (apt-get, podman); run as root or install it yourself"
}

# Installs Debian packages whose command is missing. Services must not start on install (the Debian
# packages would grab 6379/5672 as system services), so a policy-rc.d denies starts during the install
# unless one is already in place (it is on container-style machines).
apt_ensure() {
  local missing=() pkg cmd
  for pair in "$@"; do
    pkg="${pair%%:*}"
    cmd="${pair#*:}"
    if ! command -v "$cmd" >/dev/null 2>&1 && ! [ -x "$cmd" ]; then missing+=("$pkg"); fi
  done
  [ ${#missing[@]} -eq 0 ] && return 0
  need_root "installing ${missing[*]}"
  log "installing ${missing[*]} (apt)"
  local policy_added=0
  if [ ! -e /usr/sbin/policy-rc.d ]; then
    printf '#!/bin/sh\nexit 101\n' >/usr/sbin/policy-rc.d
    chmod +x /usr/sbin/policy-rc.d
    policy_added=1
  fi
  local lists_marker="$PLUGMQ_CACHE/apt-updated"
  # One `apt-get update` per machine is enough; a fresh machine has no marker.
  if [ ! -e "$lists_marker" ]; then
    DEBIAN_FRONTEND=noninteractive apt-get update -q >&2 || die "apt-get update failed"
    touch "$lists_marker"
  fi
  local rc=0
  DEBIAN_FRONTEND=noninteractive apt-get install -y -q -o DPkg::Lock::Timeout=300 --no-install-recommends "${missing[@]}" >&2 || rc=$?
  if [ $rc != 0 ]; then
    # Package lists may have gone stale since the marker was written: refresh once and retry.
    rc=0
    DEBIAN_FRONTEND=noninteractive apt-get update -q >&2 &&
      DEBIAN_FRONTEND=noninteractive apt-get install -y -q -o DPkg::Lock::Timeout=300 --no-install-recommends "${missing[@]}" >&2 || rc=$?
  fi
  [ $policy_added = 1 ] && rm -f /usr/sbin/policy-rc.d
  [ $rc = 0 ] || die "apt-get install ${missing[*]} failed (exit $rc)"
}

# Kafka is not packaged by Debian: its jars come from Maven Central through a throw-away pom.
kafka_libs_ensure() {
  if [ -f "$KAFKA_LIBS/kafka_${KAFKA_SCALA}-${KAFKA_VERSION}.jar" ]; then return 0; fi
  apt_ensure maven:mvn default-jre-headless:java
  log "fetching Kafka $KAFKA_VERSION jars from Maven Central into $KAFKA_LIBS"
  local tmp="$KAFKA_LIBS.tmp.$$"
  rm -rf "$tmp"
  (cd "$BROKERS_DIR/kafka" && mvn -q -B -Dstyle.color=never dependency:copy-dependencies -DoutputDirectory="$tmp" \
    -Dkafka.version="$KAFKA_VERSION" -Dkafka.scala="$KAFKA_SCALA" -Dslf4j.version="$SLF4J_RELOAD4J_VERSION" >&2) ||
    die "mvn could not fetch Kafka $KAFKA_VERSION jars"
  rm -rf "$KAFKA_LIBS"
  mv "$tmp" "$KAFKA_LIBS"
}

# What the testkit's local-process source runs, per broker kind: one apt run for all the kinds asked
# for (redis-cli and openssl too: the Redis cluster and TLS tests run them), then Kafka's jars.
local_programs_ensure() {
  local pairs=() kind kafka=0
  for kind in "$@"; do
    case "$kind" in
    redis) pairs+=(redis-server:redis-server redis-tools:redis-cli openssl:openssl) ;;
    rabbitmq) pairs+=(rabbitmq-server:/usr/lib/rabbitmq/bin/rabbitmq-server) ;;
    kafka)
      pairs+=(default-jre-headless:java)
      # Maven only fetches the jars: not needed once they are cached.
      [ -f "$KAFKA_LIBS/kafka_${KAFKA_SCALA}-${KAFKA_VERSION}.jar" ] || pairs+=(maven:mvn)
      kafka=1
      ;;
    *) die "unknown broker '$kind' (redis, rabbitmq or kafka)" ;;
    esac
  done
  [ ${#pairs[@]} -gt 0 ] && apt_ensure "${pairs[@]}"
  if [ $kafka = 1 ]; then kafka_libs_ensure; fi
}

podman_api_answers() {
  curl -sf --max-time 3 --unix-socket "$PODMAN_SOCKET_PATH" http://d/_ping >/dev/null 2>&1
}

# podman from Debian, configured for this VM (see BROKERS.md): no ulimit raising, runc not crun.
podman_ensure() {
  apt_ensure podman:podman runc:runc debootstrap:debootstrap curl:curl
  if [ ! -e /etc/containers/containers.conf ]; then
    need_root "writing /etc/containers/containers.conf"
    mkdir -p /etc/containers
    cat >/etc/containers/containers.conf <<'CONF'
# Written by PlugMQ tools/brokers (BROKERS.md): this VM forbids raising RLIMIT_NOFILE/NPROC and
# crun refuses its hybrid cgroups.
[containers]
default_ulimits = []
pids_limit = 0
[engine]
runtime = "runc"
CONF
  fi
}

# Starts podman's Docker-compatible API on PODMAN_SOCKET_PATH unless something already answers there.
podman_service_ensure() {
  podman_ensure
  if podman_api_answers; then return 0; fi
  rm -f "$PODMAN_SOCKET_PATH"
  log "starting podman API service on unix://$PODMAN_SOCKET_PATH"
  setsid podman system service --time=0 "unix://$PODMAN_SOCKET_PATH" >"$STATE_DIR/podman-service.log" 2>&1 </dev/null &
  echo $! >"$STATE_DIR/podman-service.pid"
  for _ in $(seq 1 50); do
    podman_api_answers && return 0
    sleep 0.2
  done
  die "podman API service did not answer on $PODMAN_SOCKET_PATH (log: $STATE_DIR/podman-service.log)"
}
