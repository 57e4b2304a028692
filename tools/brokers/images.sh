#!/usr/bin/env bash
# pnpm brokers:images — builds the local broker images (no registry is reachable on our machines):
# a debootstrap'd Debian base, then Redis, RabbitMQ and Kafka on it. Idempotent: an image that
# exists is kept (`--force` rebuilds). Also makes sure podman and its Docker-compatible API run.
set -euo pipefail
. "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

force=0
[ "${1:-}" = "--force" ] && force=1

podman_service_ensure

image_present() { [ $force = 0 ] && podman image exists "$1"; }

build_base() {
  image_present "$BASE_LOCAL_IMAGE" && return 0
  need_root "debootstrap"
  local root
  root="$(mktemp -d "${TMPDIR:-/tmp}/plugmq-base.XXXXXX")"
  log "debootstrap --variant=minbase $DEBIAN_SUITE (about a minute)"
  local mirror
  mirror="$(sed -n 's/^URIs: *//p' /etc/apt/sources.list.d/debian.sources 2>/dev/null | head -1)"
  debootstrap --variant=minbase "$DEBIAN_SUITE" "$root" "${mirror:-http://deb.debian.org/debian}" >&2 ||
    die "debootstrap failed"
  # The host's apt sources include security updates; the resolver lets apt reach them during builds.
  [ -f /etc/apt/sources.list.d/debian.sources ] && cp /etc/apt/sources.list.d/debian.sources "$root/etc/apt/sources.list.d/"
  cp /etc/resolv.conf "$root/etc/resolv.conf"
  # Services must never start during image builds.
  printf '#!/bin/sh\nexit 101\n' >"$root/usr/sbin/policy-rc.d"
  chmod +x "$root/usr/sbin/policy-rc.d"
  rm -rf "$root"/var/cache/apt/*.bin "$root"/var/lib/apt/lists/*
  tar -C "$root" -c . | podman import - "$BASE_LOCAL_IMAGE" >/dev/null || die "podman import failed"
  rm -rf "$root"
}

# Builds one image from images/<name>.Containerfile with the given context directory.
build_image() {
  local tag="$1" file="$2" ctx="$3"
  image_present "$tag" && {
    log "$tag present"
    return 0
  }
  log "building $tag"
  # Host networking: apt inside the build reaches the mirror without a container network setup.
  podman build --network host --pull=never --build-arg "BASE=$BASE_LOCAL_IMAGE" -t "$tag" -f "$file" "$ctx" >&2 ||
    die "podman build $tag failed"
}

t0=$(date +%s)
build_base
build_image "$REDIS_LOCAL_IMAGE" "$BROKERS_DIR/images/redis.Containerfile" "$BROKERS_DIR/images"
build_image "$RABBITMQ_LOCAL_IMAGE" "$BROKERS_DIR/images/rabbitmq.Containerfile" "$BROKERS_DIR/images"
if ! image_present "$KAFKA_LOCAL_IMAGE"; then
  kafka_libs_ensure
  ctx="$(mktemp -d "${TMPDIR:-/tmp}/plugmq-kafka-ctx.XXXXXX")"
  # Hard links keep the 46 MB of jars from being copied twice on the same filesystem.
  cp -al "$KAFKA_LIBS" "$ctx/libs" 2>/dev/null || cp -a "$KAFKA_LIBS" "$ctx/libs"
  cp "$BROKERS_DIR/kafka/server.properties" "$BROKERS_DIR/kafka/log4j.properties" "$BROKERS_DIR/images/kafka-run.sh" "$ctx/"
  build_image "$KAFKA_LOCAL_IMAGE" "$BROKERS_DIR/images/kafka.Containerfile" "$ctx"
  rm -rf "$ctx"
else
  log "$KAFKA_LOCAL_IMAGE present"
fi
log "images ready in $(($(date +%s) - t0)) s: $REDIS_LOCAL_IMAGE $RABBITMQ_LOCAL_IMAGE $KAFKA_LOCAL_IMAGE"
