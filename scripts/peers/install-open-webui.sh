#!/usr/bin/env bash
# open-webui from PyPI, pinned (pins.env), in a cached virtualenv made with uv. Dependencies
# resolve as PyPI stood on PYPI_EXCLUDE_NEWER. About 7 GB (torch and CUDA wheels come with it).
source "$(dirname "$0")/lib.sh"
lock open-webui
stamp="open-webui==$OPEN_WEBUI_VERSION exclude-newer=$PYPI_EXCLUDE_NEWER"
if is_done "$OPEN_WEBUI_DIR" "$stamp"; then
  log "open-webui $OPEN_WEBUI_VERSION: cached in $OPEN_WEBUI_DIR"
  exit 0
fi
start=$(date +%s)
ensure_uv
py="$(peers_python)"
log "installing open-webui $OPEN_WEBUI_VERSION into $OPEN_WEBUI_DIR (first time: several GB, minutes)"
rm -rf "$OPEN_WEBUI_DIR"
"$UV" venv -q --python "$py" "$OPEN_WEBUI_DIR" || die "uv venv failed"
"$UV" pip install -q --python "$OPEN_WEBUI_DIR/bin/python" --exclude-newer "$PYPI_EXCLUDE_NEWER" "open-webui==$OPEN_WEBUI_VERSION" ||
  die "uv could not install open-webui==$OPEN_WEBUI_VERSION from PyPI (network? disk space: it needs about 7 GB)"
got="$("$OPEN_WEBUI_DIR/bin/python" -c 'import importlib.metadata as m; print(m.version("open-webui"))')"
[ "$got" = "$OPEN_WEBUI_VERSION" ] || die "installed open-webui is $got, expected $OPEN_WEBUI_VERSION"
[ -x "$OPEN_WEBUI_DIR/bin/open-webui" ] || die "the open-webui entry point is missing from $OPEN_WEBUI_DIR/bin"
mark_done "$OPEN_WEBUI_DIR" "$stamp"
log "open-webui $OPEN_WEBUI_VERSION installed in $(since "$start") s"
