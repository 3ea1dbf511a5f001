#!/usr/bin/env bash
# Installs or builds every real peer the peer tests use, each cached (see lib.sh for where):
# open-webui (PyPI), gguf (PyPI), Ollama (Go module proxy), dcap-qvl (crates.io) and
# go-tdx-guest (Go module proxy). A warm run only checks the stamps (a few seconds). Any peer that
# cannot be installed fails the run with the reason: the peer tests never skip.
source "$(dirname "$0")/lib.sh"
start=$(date +%s)
bash "$PEERS_DIR/../ensure-system-deps.sh"
bash "$PEERS_DIR/install-open-webui.sh"
bash "$PEERS_DIR/install-gguf.sh"
bash "$PEERS_DIR/build-ollama.sh"
bash "$PEERS_DIR/build-native-verifiers.sh"
log "all peers ready in $(since "$start") s (cache: $PEERS_CACHE)"
