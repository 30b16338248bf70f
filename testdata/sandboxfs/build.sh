#!/usr/bin/env bash
# Builds the WASI guests of the internal/sandboxfs tests beside their sources:
# escape.wasm (tries to leave its mounted dir), fs_ok.wasm (ordinary file
# work) and openloop.wasm (hoards descriptors). Needs clang for wasm32-wasi
# with wasi-libc (see scripts/setup).
# Idempotent: rebuilds a guest only when its source (or this script) is newer.
set -euo pipefail
cd "$(dirname "$0")"
for name in escape fs_ok openloop; do
	if [[ ! -e $name.wasm || $name.c -nt $name.wasm || build.sh -nt $name.wasm ]]; then
		clang --target=wasm32-wasi -O2 -Wall -Wl,--strip-all "$name.c" -o "$name.wasm.tmp"
		mv "$name.wasm.tmp" "$name.wasm"
		echo "built testdata/sandboxfs/$name.wasm"
	fi
done
