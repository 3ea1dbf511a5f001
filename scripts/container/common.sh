# Shared settings of the container test scripts (sourced, not run).
# Debian's own docker CLI comes first: BuildKit is built into it, while a newer CLI elsewhere on PATH
# would want the buildx plugin.
if [ -x /usr/bin/docker ]; then DOCKER=/usr/bin/docker; else DOCKER=docker; fi
export DOCKER_BUILDKIT=1
# Where the scripts keep their own bookkeeping (which daemon they started, logs, timings).
CT_STATE_DIR="${RATLS_CONTAINER_STATE_DIR:-${TMPDIR:-/tmp}/ratls-container-test}"
mkdir -p "$CT_STATE_DIR"

# The base image stands in for node:22-slim, which no registry here can serve. Bump NODE_VERSION
# together with the official image's Node 22 line; NPM_VERSION is what that release bundles.
NODE_VERSION=22.23.3
NPM_VERSION=10.9.9
BASE_IMAGE="ratls-test-base/node:${NODE_VERSION}-bookworm-slim"
PROJECT_IMAGE="${RATLS_CONTAINER_IMAGE:-ratls-proxy:container-test}"

ct_log() { printf '[container-test] %s\n' "$*" >&2; }
ct_die() {
  printf '[container-test] FAILED: %s\n' "$*" >&2
  exit 1
}
