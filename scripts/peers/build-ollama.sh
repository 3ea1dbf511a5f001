#!/usr/bin/env bash
# Ollama from the Go module proxy at a pinned release (pins.env), built CPU-only with cgo and
# cached. The module zip is checked by the go tool against the checksum database and here against
# OLLAMA_MODULE_SUM. Module zips leave out vendor/ directories, so the headers llama.cpp includes
# from llama/llama.cpp/vendor are put back: miniaudio from its PyPI sdist (sha256-pinned), stb and
# nlohmann-json from the Debian packages libstb-dev and nlohmann-json3-dev.
# Cold: about 6 minutes of compiling on 2 cores.
source "$(dirname "$0")/lib.sh"
lock ollama
stamp="$OLLAMA_MODULE@$OLLAMA_VERSION $OLLAMA_MODULE_SUM"
bin="$OLLAMA_DIR/bin/ollama"
want="${OLLAMA_VERSION#v}"
reports_version() { "$bin" --version 2>&1 | grep -q "client version is $want\$"; }
if is_done "$OLLAMA_DIR" "$stamp" && [ -x "$bin" ] && reports_version; then
  log "ollama $OLLAMA_VERSION: cached in $bin"
  exit 0
fi
start=$(date +%s)
need_cmd go "the Go toolchain (go.dev/dl) builds Ollama"
need_cmd gcc "a C/C++ compiler (Debian: build-essential) builds Ollama's ggml"
need_cmd g++ "a C/C++ compiler (Debian: build-essential) builds Ollama's ggml"

# Headers from Debian packages: installed when missing and we are root, else a clear failure.
missing=()
[ -f /usr/include/stb/stb_image.h ] || missing+=(libstb-dev)
{ [ -f /usr/include/nlohmann/json.hpp ] && [ -f /usr/include/nlohmann/json_fwd.hpp ]; } || missing+=(nlohmann-json3-dev)
if [ ${#missing[@]} -gt 0 ]; then
  [ "$(id -u)" -eq 0 ] || die "building Ollama needs the Debian packages ${missing[*]}: apt-get install -y ${missing[*]}"
  log "installing ${missing[*]} (Debian)"
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null ||
    die "apt-get could not install ${missing[*]}"
fi

log "fetching $OLLAMA_MODULE@$OLLAMA_VERSION from the Go module proxy"
json="$(cd / && GOFLAGS=-mod=mod go mod download -json "$OLLAMA_MODULE@$OLLAMA_VERSION")" || die "go mod download $OLLAMA_MODULE@$OLLAMA_VERSION failed"
field() { printf '%s\n' "$json" | sed -n "s/^[[:space:]]*\"$1\": \"\\(.*\\)\",\\{0,1\\}\$/\\1/p" | head -n1; }
sum="$(field Sum)"
moddir="$(field Dir)"
[ "$sum" = "$OLLAMA_MODULE_SUM" ] || die "$OLLAMA_MODULE@$OLLAMA_VERSION has hash $sum, pinned $OLLAMA_MODULE_SUM"
[ -d "$moddir" ] || die "go mod download gave no directory for $OLLAMA_MODULE@$OLLAMA_VERSION"

rm -rf "$OLLAMA_DIR"
mkdir -p "$OLLAMA_DIR/bin"
src="$OLLAMA_DIR/src"
cp -r "$moddir" "$src"
chmod -R u+w "$src"
vendor="$src/llama/llama.cpp/vendor"
mkdir -p "$vendor/miniaudio" "$vendor/stb" "$vendor/nlohmann"

log "fetching miniaudio==$MINIAUDIO_SDIST_VERSION (PyPI sdist) for miniaudio.h"
ensure_uv
dl="$OLLAMA_DIR/miniaudio-sdist"
mkdir -p "$dl"
PIP_FIND_LINKS="" "$UV_DIR/bin/python" -m pip download -q --disable-pip-version-check --no-deps --no-binary :all: \
  -d "$dl" "miniaudio==$MINIAUDIO_SDIST_VERSION" || die "pip could not download the miniaudio==$MINIAUDIO_SDIST_VERSION sdist"
tarball="$dl/miniaudio-$MINIAUDIO_SDIST_VERSION.tar.gz"
[ -f "$tarball" ] || die "expected $tarball"
got="$(sha256sum "$tarball" | awk '{print $1}')"
[ "$got" = "$MINIAUDIO_SDIST_SHA256" ] || die "miniaudio sdist sha256 is $got, pinned $MINIAUDIO_SDIST_SHA256"
tar -xzf "$tarball" -C "$dl" "miniaudio-$MINIAUDIO_SDIST_VERSION/miniaudio/miniaudio.h" || die "miniaudio.h is not in the sdist"
cp "$dl/miniaudio-$MINIAUDIO_SDIST_VERSION/miniaudio/miniaudio.h" "$vendor/miniaudio/"
cp /usr/include/stb/stb_image.h "$vendor/stb/"
cp /usr/include/nlohmann/json.hpp /usr/include/nlohmann/json_fwd.hpp "$vendor/nlohmann/"

log "building ollama $OLLAMA_VERSION (CPU, cgo; first time about 6 minutes on 2 cores)"
(cd "$src" && CGO_ENABLED=1 GOFLAGS=-mod=mod go build -trimpath \
  -ldflags "-X github.com/ollama/ollama/version.Version=$want" -o "$bin" .) || die "go build of ollama $OLLAMA_VERSION failed (see the compiler output above)"
reports_version || die "the built ollama does not report version $want: $("$bin" --version 2>&1 | tr '\n' ' ')"
rm -rf "$dl" "$src"
mark_done "$OLLAMA_DIR" "$stamp"
log "ollama $OLLAMA_VERSION built in $(since "$start") s: $bin"
