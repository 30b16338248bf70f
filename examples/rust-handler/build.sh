#!/usr/bin/env bash
# Builds the shell handler to examples/rust-handler/shell.wasm, with the
# Rust SDK (guest-sdk/rust) as a path dependency. Needs Debian's Rust
# toolchain with the WebAssembly standard library:
#   apt-get install rustc cargo libstd-rust-dev-wasm32
# A rustup toolchain works too, with its target installed:
#   RUSTC=~/.cargo/bin/rustc CARGO=~/.cargo/bin/cargo RUSTDOC=~/.cargo/bin/rustdoc \
#     WASM_TARGET=wasm32-wasip1 bash build.sh
# (the target is named wasm32-wasip1 since Rust 1.78).
set -euo pipefail
cd "$(dirname "$0")"
export RUSTC="${RUSTC:-/usr/bin/rustc}"
cargo="${CARGO:-/usr/bin/cargo}"
target="${WASM_TARGET:-wasm32-wasi}"
libdir=$("$RUSTC" --print target-libdir --target "$target" 2>/dev/null || true)
if [ -z "$libdir" ] || [ ! -d "$libdir" ]; then
	echo "build.sh: $RUSTC has no $target standard library; apt-get install libstd-rust-dev-wasm32" >&2
	exit 1
fi
# A 64 KiB stack instead of 1 MiB: the module's minimum memory drops from
# 17 pages to 2, and each job's instance starts several times faster.
# examples/modules/shell.wasm is committed (exec runs it on machines
# without Rust) and CI checks that it matches this build byte for byte. Cargo
# bakes the sources' location into symbol names, so the sources are built
# from a fixed place whatever the checkout's path.
work="${WASMRUNNER_RUST_BUILD_DIR:-/tmp/wasmrunner-rust-build}"
rm -rf "$work/src"
mkdir -p "$work/src/guest-sdk" "$work/src/examples"
tar -C ../../guest-sdk --exclude=./rust/target -cf - ./rust | tar -C "$work/src/guest-sdk" -xf -
tar -C .. --exclude=./rust-handler/target -cf - ./rust-handler | tar -C "$work/src/examples" -xf -
export RUSTFLAGS="${RUSTFLAGS:--C link-arg=-zstack-size=65536 --remap-path-prefix=$work/src=.}"
(cd "$work/src/examples/rust-handler" && CARGO_TARGET_DIR="$work/target" "$cargo" build --offline --release --target "$target")
mkdir -p ../modules
cp "$work/target/$target/release/shell.wasm" ../modules/shell.wasm
echo "built examples/modules/shell.wasm ($(wc -c <../modules/shell.wasm) bytes)"
