#!/usr/bin/env bash
# Installs what the test run lacks; called by the tests' provisioning step
# (packages/testkit/src/brokers/provision.ts, the vitest globalSetup of `pnpm test`), which decides
# what is missing and prints the one line per broker. Arguments, any of:
#   redis rabbitmq kafka   the programs the testkit's local-process source runs (lib.sh)
#   chromium               Debian's chromium for the dashboard's browser test
#   postgresql             Debian's PostgreSQL server for the outbox's tests (the testkit runs it as
#                          a local process on a free port; the packaged service is not started)
#   podman-service         podman's Docker-compatible API on $PODMAN_SOCKET_PATH (left running;
#                          `pnpm brokers:down` stops it by its recorded pid)
# Idempotent: each install checks first. Progress and apt's output go to stderr.
set -euo pipefail
. "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

kinds=()
chromium=0
podman=0
postgres=0
for arg in "$@"; do
  case "$arg" in
  redis | rabbitmq | kafka) kinds+=("$arg") ;;
  chromium) chromium=1 ;;
  postgresql) postgres=1 ;;
  podman-service) podman=1 ;;
  *) die "unknown argument '$arg' (redis, rabbitmq, kafka, chromium, postgresql or podman-service)" ;;
  esac
done

[ ${#kinds[@]} -gt 0 ] && local_programs_ensure "${kinds[@]}"
if [ $chromium = 1 ]; then bash "$BROKERS_DIR/../ci/install-chromium.sh" >&2; fi
if [ $podman = 1 ]; then podman_service_ensure; fi
# The server's binaries live under a versioned directory, not on PATH: check for any version, and
# hand apt_ensure a path that never exists so it installs.
if [ $postgres = 1 ] && ! compgen -G '/usr/lib/postgresql/*/bin/initdb' >/dev/null; then
  apt_ensure postgresql:/usr/lib/postgresql/.initdb-missing
fi
exit 0
