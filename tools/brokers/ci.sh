#!/usr/bin/env bash
# Called by .ci/run before the tests as `source <(tools/brokers/ci.sh)`: builds or reuses the broker
# images, makes sure podman's Docker-compatible API runs, installs what the local-process tests
# need, and prints (stdout) the exports the test run needs; also writes them to .brokers/ci.env.
# Progress goes to stderr. On failure it prints `exit 1` for the sourcing shell, because a failing
# process substitution would otherwise go unnoticed, and CI must fail loudly with the reason.
set -euo pipefail
. "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

on_exit() {
  local rc=$?
  if [ $rc != 0 ]; then
    echo "echo '[brokers] tools/brokers/ci.sh failed (exit $rc); see the lines above' >&2; exit 1"
  fi
}
trap on_exit EXIT

t0=$(date +%s)
# Programs the local-process tests run (the testkit's fallback is tested too, not just containers).
apt_ensure redis-server:redis-server rabbitmq-server:/usr/lib/rabbitmq/bin/rabbitmq-server \
  default-jre-headless:java uuid-runtime:uuidgen
kafka_libs_ensure
"$BROKERS_DIR/images.sh"
for image in "$REDIS_LOCAL_IMAGE" "$RABBITMQ_LOCAL_IMAGE" "$KAFKA_LOCAL_IMAGE"; do
  podman image exists "$image" || die "image $image missing after brokers:images"
done
podman_api_answers || die "podman API does not answer on $PODMAN_SOCKET_PATH"
log "brokers ready for tests in $(($(date +%s) - t0)) s"

# Labels this run's containers, so ci-down.sh checks exactly those (never someone else's).
run_id="${PLUGMQ_RUN_ID:-ci-$(date +%s)-$$}"
exports="$(
  cat <<ENV
export PLUGMQ_RUN_ID=$run_id
export DOCKER_HOST=unix://$PODMAN_SOCKET_PATH
export TESTCONTAINERS_RYUK_DISABLED=true
export TESTCONTAINERS_HOST_OVERRIDE=127.0.0.1
export PLUGMQ_REDIS_IMAGE=$REDIS_LOCAL_IMAGE
export PLUGMQ_RABBITMQ_IMAGE=$RABBITMQ_LOCAL_IMAGE
export PLUGMQ_KAFKA_IMAGE=$KAFKA_LOCAL_IMAGE
export PLUGMQ_KAFKA_LIBS=$KAFKA_LIBS
ENV
)"
mkdir -p "$BROKERS_DIR/../../.brokers"
printf '%s\n' "$exports" >"$BROKERS_DIR/../../.brokers/ci.env"
printf '%s\n' "$exports"
