#!/usr/bin/env bash
# Builds the labsubmit example handler to examples/go-handler/labsubmit.wasm:
# a WASI reactor (-buildmode=c-shared) with the Go toolchain alone.
set -euo pipefail
cd "$(dirname "$0")/labsubmit"
export PATH="$PATH:/usr/local/go/bin"
GOOS=wasip1 GOARCH=wasm go build -buildmode=c-shared -trimpath -o ../labsubmit.wasm .
