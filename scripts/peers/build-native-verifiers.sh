#!/usr/bin/env bash
# The native DCAP verifiers the differential tests and `npm run bench -- native` compare against:
# Phala's dcap-qvl crate (crates.io; Cargo.lock pins every crate by checksum) and Google's
# go-tdx-guest module (Go module proxy; go.sum pins every module), each behind the small CLI
# wrapper next to this script. Incremental: cargo and go rebuild only what changed (a warm run is
# a second or two). Cold: about a minute, mostly compiling ring.
source "$(dirname "$0")/lib.sh"
lock native
start=$(date +%s)
need_cmd cargo "Rust (rustup.rs) builds the dcap-qvl wrapper"
need_cmd go "the Go toolchain (go.dev/dl) builds the go-tdx-guest wrapper"
grep -q "^dcap-qvl = { version = \"=$DCAP_QVL_VERSION\"" "$PEERS_DIR/dcap-qvl-cli/Cargo.toml" ||
  die "dcap-qvl-cli/Cargo.toml does not pin dcap-qvl =$DCAP_QVL_VERSION (pins.env); update both together"
grep -q "^require github.com/google/go-tdx-guest $GO_TDX_GUEST_VERSION\$" "$PEERS_DIR/go-tdx-guest-cli/go.mod" ||
  die "go-tdx-guest-cli/go.mod does not require go-tdx-guest $GO_TDX_GUEST_VERSION (pins.env); update both together"

mkdir -p "$NATIVE_DIR/bin"
# The target directory lives in the cache, never in the checkout.
CARGO_TARGET_DIR="$NATIVE_DIR/cargo-target" cargo build -q --release --locked --manifest-path "$PEERS_DIR/dcap-qvl-cli/Cargo.toml" ||
  die "cargo could not build the dcap-qvl $DCAP_QVL_VERSION wrapper (crates.io reachable?)"
install -m 755 "$NATIVE_DIR/cargo-target/release/dcap-qvl-verify" "$NATIVE_DIR/bin/dcap-qvl-verify"

(cd "$PEERS_DIR/go-tdx-guest-cli" && CGO_ENABLED=0 GOFLAGS=-mod=readonly go build -trimpath -o "$NATIVE_DIR/bin/go-tdx-guest-verify" .) ||
  die "go could not build the go-tdx-guest $GO_TDX_GUEST_VERSION wrapper (Go module proxy reachable?)"
got="$(cd "$PEERS_DIR/go-tdx-guest-cli" && go list -m -f '{{.Version}}' github.com/google/go-tdx-guest)"
[ "$got" = "$GO_TDX_GUEST_VERSION" ] || die "go-tdx-guest resolved to $got, pinned $GO_TDX_GUEST_VERSION"
log "native verifiers ready in $(since "$start") s: $NATIVE_DIR/bin/{dcap-qvl-verify,go-tdx-guest-verify}"
