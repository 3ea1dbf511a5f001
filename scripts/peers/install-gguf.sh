#!/usr/bin/env bash
# The `gguf` package from PyPI (pinned) in a small cached virtualenv: it writes the tiny models.
source "$(dirname "$0")/lib.sh"
lock gguf
stamp="gguf==$GGUF_VERSION exclude-newer=$PYPI_EXCLUDE_NEWER"
if is_done "$GGUF_DIR" "$stamp"; then
  log "gguf $GGUF_VERSION: cached in $GGUF_DIR"
  exit 0
fi
start=$(date +%s)
ensure_uv
py="$(peers_python)"
log "installing gguf $GGUF_VERSION into $GGUF_DIR"
rm -rf "$GGUF_DIR"
"$UV" venv -q --python "$py" "$GGUF_DIR" || die "uv venv failed"
"$UV" pip install -q --python "$GGUF_DIR/bin/python" --exclude-newer "$PYPI_EXCLUDE_NEWER" "gguf==$GGUF_VERSION" numpy ||
  die "uv could not install gguf==$GGUF_VERSION from PyPI"
got="$("$GGUF_DIR/bin/python" -c 'import importlib.metadata as m; print(m.version("gguf"))')"
[ "$got" = "$GGUF_VERSION" ] || die "installed gguf is $got, expected $GGUF_VERSION"
mark_done "$GGUF_DIR" "$stamp"
log "gguf $GGUF_VERSION installed in $(since "$start") s"
