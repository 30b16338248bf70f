#!/usr/bin/env bash
# Compiles the WAT guests of the hostfuncs tests: each x.wat to x.wasm
# beside it. Needs wabt's wat2wasm (scripts/setup installs it).
set -euo pipefail
cd "$(dirname "$0")"
for wat in *.wat; do
	wat2wasm "$wat" -o "${wat%.wat}.wasm"
done
