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
# One run at a time per machine: runs share the engine, and the clean-up below sweeps every test project.
exec 9>"$CT_STATE_DIR/run.lock"
flock -w 900 9 || ct_die "another container test has held $CT_STATE_DIR/run.lock for 15 minutes"
# Stop the engine afterwards only if it was not running before this run.
engine_was_up=0
$DOCKER info >/dev/null 2>&1 && engine_was_up=1
# What an interrupted run may leave: compose projects of the tests (named ratlsct*) and FUSE mounts
# of the configfs-tsm stand-in. Unmounting the stand-in also ends its process.
leftovers() {
  local project
  for project in $($DOCKER ps -a --format '{{.Label "com.docker.compose.project"}}' | grep '^ratlsct' | sort -u); do
    ct_log "removing leftover compose project $project"
    $DOCKER ps -aq --filter "label=com.docker.compose.project=$project" | xargs -r $DOCKER rm -f >/dev/null
    $DOCKER network ls -q --filter "label=com.docker.compose.project=$project" | xargs -r $DOCKER network rm >/dev/null
    $DOCKER volume ls -q --filter "label=com.docker.compose.project=$project" | xargs -r $DOCKER volume rm >/dev/null
  done
  awk '$1 == "tsm-standin" { print $2 }' /proc/mounts | while read -r mnt; do
    ct_log "unmounting leftover configfs-tsm stand-in $mnt"
    umount -l "$mnt" || true
  done
  # scratch directories of the tests (env files, simulated worlds), once nothing is mounted in them
  rm -rf "${TMPDIR:-/tmp}"/ratls-ct-* 2>/dev/null || true
}

cleanup() {
  local rc=$?
  leftovers || true
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
