#!/usr/bin/env bash
# Builds the test guests beside their sources: *.wat with wat2wasm (wabt),
# *.c with clang for wasm32-wasi (wasi-libc).
set -euo pipefail
cd "$(dirname "$0")"
for src in *.wat; do
	wat2wasm "$src" -o "${src%.wat}.wasm"
done
for src in *.c; do
	clang --target=wasm32-wasi -O2 -Wl,--strip-all "$src" -o "${src%.c}.wasm"
done
