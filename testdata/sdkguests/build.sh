#!/usr/bin/env bash
# Builds the SDK test guests beside this script: envgo.wasm with the Go SDK
# (Go alone) and envrust.wasm with the Rust SDK (Debian's Rust with its
# wasm32-wasi standard library; see scripts/setup).
set -euo pipefail
cd "$(dirname "$0")"
export PATH="$PATH:/usr/local/go/bin"
(cd go && GOOS=wasip1 GOARCH=wasm go build -buildmode=c-shared -trimpath -o ../envgo.wasm .)
export RUSTC="${RUSTC:-/usr/bin/rustc}"
target="${WASM_TARGET:-wasm32-wasi}"
work="${WASMRUNNER_RUST_BUILD_DIR:-/tmp/wasmrunner-rust-build}/sdkguests"
(cd rust && CARGO_TARGET_DIR="$work" RUSTFLAGS="-C link-arg=-zstack-size=65536" "${CARGO:-/usr/bin/cargo}" build --offline --release -q --target "$target")
cp "$work/$target/release/envrust.wasm" envrust.wasm
