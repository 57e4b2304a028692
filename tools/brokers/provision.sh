#!/usr/bin/env bash
# Installs what the test run lacks; called by the tests' provisioning step
# (packages/testkit/src/brokers/provision.ts, the vitest globalSetup of `pnpm test`), which decides
# what is missing and prints the one line per broker. Arguments, any of:
#   redis rabbitmq kafka   the programs the testkit's local-process source runs (lib.sh)
#   chromium               Debian's chromium for the dashboard's browser test
#   podman-service         podman's Docker-compatible API on $PODMAN_SOCKET_PATH (left running;
#                          `pnpm brokers:down` stops it by its recorded pid)
# Idempotent: each install checks first. Progress and apt's output go to stderr.
set -euo pipefail
. "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

kinds=()
chromium=0
podman=0
for arg in "$@"; do
  case "$arg" in
  redis | rabbitmq | kafka) kinds+=("$arg") ;;
  chromium) chromium=1 ;;
  podman-service) podman=1 ;;
  *) die "unknown argument '$arg' (redis, rabbitmq, kafka, chromium or podman-service)" ;;
  esac
done

[ ${#kinds[@]} -gt 0 ] && local_programs_ensure "${kinds[@]}"
if [ $chromium = 1 ]; then bash "$BROKERS_DIR/../ci/install-chromium.sh" >&2; fi
if [ $podman = 1 ]; then podman_service_ensure; fi
exit 0
