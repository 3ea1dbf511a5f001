#!/usr/bin/env bash
# Everything the container test needs before vitest runs, failing with a reason when it cannot:
# the engine (engine.sh start), the cached base image (base-image.sh), the project image built from
# the repository's Dockerfile on that base, and the configfs-tsm stand-in (a small Go program,
# cached by its source hash). Prints the variables the tests read, as KEY=VALUE lines.
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
repo="$(cd "$here/../.." && pwd)"
. "$here/common.sh"

bash "$here/engine.sh" start
bash "$here/base-image.sh"

ct_log "building $PROJECT_IMAGE from Dockerfile on $BASE_IMAGE"
$DOCKER build -q --build-arg "BASE_IMAGE=$BASE_IMAGE" -t "$PROJECT_IMAGE" "$repo" >/dev/null ||
  ct_die "docker build of the project image failed (rerun: $DOCKER build --build-arg BASE_IMAGE=$BASE_IMAGE $repo)"

standin_src="$repo/tests/container/tsm-standin"
command -v go >/dev/null 2>&1 || ct_die "the Go toolchain is needed to build the configfs-tsm stand-in ($standin_src); install Go 1.22 or newer"
[ -c /dev/fuse ] || ct_die "/dev/fuse is missing: the configfs-tsm stand-in is a FUSE file system (modprobe fuse)"
sum="$(cat "$standin_src"/go.mod "$standin_src"/go.sum "$standin_src"/*.go | sha256sum | cut -c1-16)"
standin="$CT_STATE_DIR/bin/tsm-standin-$sum"
if [ ! -x "$standin" ]; then
  ct_log "building the configfs-tsm stand-in"
  mkdir -p "$CT_STATE_DIR/bin"
  rm -f "$CT_STATE_DIR"/bin/tsm-standin-*
  (cd "$standin_src" && CGO_ENABLED=0 go build -trimpath -o "$standin.tmp" .) || ct_die "go build of $standin_src failed"
  mv "$standin.tmp" "$standin"
fi

echo "RATLS_CONTAINER_IMAGE=$PROJECT_IMAGE"
echo "RATLS_TSM_STANDIN=$standin"
