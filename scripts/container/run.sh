#!/usr/bin/env bash
# `npm run test:container`: builds what the container test needs (setup.sh), runs it
# (tests/container, its own vitest config), then removes what it built for this run (the project
# image; the base image and the stand-in binary stay cached) and stops the engine if setup started it.
# No silent skip: any step that cannot run fails the whole run with its reason.
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
repo="$(cd "$here/../.." && pwd)"
. "$here/common.sh"

started=$(date +%s)
# Stop the engine afterwards only if it was not running before this run.
engine_was_up=0
$DOCKER info >/dev/null 2>&1 && engine_was_up=1
cleanup() {
  local rc=$?
  if $DOCKER image inspect "$PROJECT_IMAGE" >/dev/null 2>&1; then
    $DOCKER image rm "$PROJECT_IMAGE" >/dev/null || ct_log "could not remove $PROJECT_IMAGE"
  fi
  [ "$engine_was_up" = 1 ] || bash "$here/engine.sh" stop || true
  ct_log "took $(($(date +%s) - started)) s"
  exit $rc
}
trap cleanup EXIT

vars="$(bash "$here/setup.sh")"
ct_log "ready after $(($(date +%s) - started)) s"
while IFS='=' read -r key value; do
  [ -n "$key" ] && export "$key=$value"
done <<<"$vars"

cd "$repo"
npx vitest run --config tests/container/vitest.config.ts "$@"
