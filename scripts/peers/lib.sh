# Shared by scripts/peers/*.sh: the pins, the cache layout, logging and locking. Source it.
# Everything lands under ${RATLS_PEERS_CACHE:-$HOME/.cache/ratls-peers}, one directory per pinned
# version, so a warm run finds it and a changed pin builds next to the old one.
set -euo pipefail

PEERS_DIR="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
# shellcheck source=pins.env
source "$PEERS_DIR/pins.env"
PEERS_CACHE="${RATLS_PEERS_CACHE:-$HOME/.cache/ratls-peers}"
mkdir -p "$PEERS_CACHE"

# uv verifies TLS with its bundled roots unless told to use the system's (a TLS-inspecting proxy
# or a private mirror puts its CA only there).
export UV_SYSTEM_CERTS="${UV_SYSTEM_CERTS:-1}"

UV_DIR="$PEERS_CACHE/uv-$UV_VERSION"
UV="$UV_DIR/bin/uv"
OPEN_WEBUI_DIR="$PEERS_CACHE/open-webui-$OPEN_WEBUI_VERSION"
GGUF_DIR="$PEERS_CACHE/gguf-$GGUF_VERSION"
OLLAMA_DIR="$PEERS_CACHE/ollama-$OLLAMA_VERSION"
NATIVE_DIR="$PEERS_CACHE/native"

log() { printf '[peers] %s\n' "$*" >&2; }
die() {
  printf '[peers] FAILED: %s\n' "$*" >&2
  exit 1
}

# Holds an exclusive lock on the cache entry NAME until the script exits, so two runs never
# build the same thing at once.
lock() {
  exec 9>"$PEERS_CACHE/.lock-$1"
  flock 9
}

# True when DIR/.ok holds exactly STAMP (written last, after every check passed).
is_done() { [ -f "$1/.ok" ] && [ "$(cat "$1/.ok")" = "$2" ]; }
mark_done() { printf '%s' "$2" >"$1/.ok"; }

need_cmd() { command -v "$1" >/dev/null 2>&1 || die "$1 is not installed: $2"; }

# Seconds since START (an epoch), for the timing lines.
since() { echo $(($(date +%s) - $1)); }

# The Python the virtualenvs are made from: RATLS_PEERS_PYTHON or python3, checked against the
# range open-webui supports.
peers_python() {
  local py="${RATLS_PEERS_PYTHON:-python3}"
  need_cmd "$py" "Python $PYTHON_VERSION is needed (set RATLS_PEERS_PYTHON to its path)"
  local v
  v="$("$py" -c 'import sys; print("%d.%d" % sys.version_info[:2])')"
  case "$v" in
    3.11 | 3.12) ;;
    *) die "$py is Python $v; open-webui $OPEN_WEBUI_VERSION needs 3.11 or 3.12 (set RATLS_PEERS_PYTHON)" ;;
  esac
  command -v "$py"
}

# uv, pinned, in its own virtualenv (pip from PyPI).
ensure_uv() {
  exec 8>"$PEERS_CACHE/.lock-uv"
  flock 8
  if [ -x "$UV" ] && [ "$("$UV" --version | awk '{print $2}')" = "$UV_VERSION" ]; then
    flock -u 8
    return 0
  fi
  local py
  py="$(peers_python)"
  log "installing uv $UV_VERSION (PyPI) into $UV_DIR"
  rm -rf "$UV_DIR"
  "$py" -m venv "$UV_DIR" || die "python -m venv failed (Debian: apt-get install python3-venv)"
  "$UV_DIR/bin/python" -m pip install -q --disable-pip-version-check "uv==$UV_VERSION" || die "pip could not install uv==$UV_VERSION from PyPI"
  [ "$("$UV" --version | awk '{print $2}')" = "$UV_VERSION" ] || die "uv reports $("$UV" --version), expected $UV_VERSION"
  flock -u 8
}
