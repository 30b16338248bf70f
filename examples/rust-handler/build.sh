#!/usr/bin/env bash
# Builds the shell handler to examples/modules/shell.wasm, with the Rust SDK
# (guest-sdk/rust) as a path dependency. Either Rust toolchain works,
# whichever cargo comes first on PATH:
#   - Debian's (apt-get install rustc cargo libstd-rust-dev-wasm32: rustc
#     1.63 with the wasm32-wasi standard library), used when installed: it
#     is what CI builds with, and it reproduces the committed
#     examples/modules/shell.wasm byte for byte;
#   - else rustup's active toolchain, if it has the WebAssembly target
#     (rustup target add wasm32-wasip1; wasm32-wasi before Rust 1.78). Its
#     shell.wasm works the same but differs from the committed one: do not
#     commit it.
# WASMRUNNER_RUST=debian or WASMRUNNER_RUST=rustup picks one; RUSTC and
# CARGO (and WASM_TARGET) pick the programs themselves.
set -euo pipefail
cd "$(dirname "$0")"

# has_target RUSTC TARGET: whether RUSTC has TARGET's standard library.
has_target() {
	local libdir
	libdir=$("$1" --print target-libdir --target "$2" 2>/dev/null) && [ -d "$libdir" ]
}

choice="${WASMRUNNER_RUST:-auto}"
if [ -n "${RUSTC:-}" ] || [ -n "${CARGO:-}" ]; then
	choice=given
fi
rustc="" cargo="" target="${WASM_TARGET:-}"
case "$choice" in
given)
	rustc="${RUSTC:-/usr/bin/rustc}"
	cargo="${CARGO:-/usr/bin/cargo}"
	if [ -z "$target" ]; then
		target=wasm32-wasi
		has_target "$rustc" wasm32-wasip1 && target=wasm32-wasip1
	fi
	;;
auto | debian | rustup)
	if [ "$choice" != rustup ] && [ -x /usr/bin/cargo ] && has_target /usr/bin/rustc "${target:-wasm32-wasi}"; then
		rustc=/usr/bin/rustc cargo=/usr/bin/cargo target="${target:-wasm32-wasi}"
	elif [ "$choice" != debian ] && command -v rustup >/dev/null &&
		r=$(rustup which rustc 2>/dev/null) && c=$(rustup which cargo 2>/dev/null); then
		for t in ${target:-wasm32-wasip1 wasm32-wasi}; do
			if has_target "$r" "$t"; then
				rustc="$r" cargo="$c" target="$t"
				break
			fi
		done
	fi
	;;
*)
	echo "build.sh: WASMRUNNER_RUST must be debian or rustup, not $choice" >&2
	exit 2
	;;
esac
if [ -z "$rustc" ]; then
	cat >&2 <<-EOF
		build.sh: no Rust toolchain with a WebAssembly (WASI) standard library. Either
		  apt-get install rustc cargo libstd-rust-dev-wasm32   # Debian's, as CI; or
		  rustup target add wasm32-wasip1                      # rustup's active toolchain
	EOF
	exit 1
fi
if ! has_target "$rustc" "$target"; then
	echo "build.sh: $rustc has no $target standard library" >&2
	exit 1
fi
echo "build.sh: $("$rustc" --version) ($rustc), target $target"
# The crates' .cargo/config.toml pin Debian's rustc; RUSTC overrides it.
export RUSTC="$rustc"
if [ "$rustc" != /usr/bin/rustc ] && [ -z "${RUSTDOC:-}" ]; then
	export RUSTDOC="$(dirname "$rustc")/rustdoc"
fi

# A 64 KiB stack instead of 1 MiB: the module's minimum memory drops from
# 17 pages to 2, and each job's instance starts several times faster.
# examples/modules/shell.wasm is committed (exec runs it on machines
# without Rust) and CI checks that it matches this build byte for byte. Cargo
# bakes the sources' location into symbol names, so the sources are built
# from a fixed place whatever the checkout's path.
work="${WASMRUNNER_RUST_BUILD_DIR:-/tmp/wasmrunner-rust-build}"
# One build at a time in the fixed place: two checkouts building at once
# would otherwise overwrite each other's sources.
mkdir -p "$work"
exec 9>"$work/.lock"
flock 9
rm -rf "$work/src"
mkdir -p "$work/src/guest-sdk" "$work/src/examples"
tar -C ../../guest-sdk --exclude=./rust/target -cf - ./rust | tar -C "$work/src/guest-sdk" -xf -
tar -C .. --exclude=./rust-handler/target -cf - ./rust-handler | tar -C "$work/src/examples" -xf -
export RUSTFLAGS="${RUSTFLAGS:--C link-arg=-zstack-size=65536 --remap-path-prefix=$work/src=.}"
(cd "$work/src/examples/rust-handler" && CARGO_TARGET_DIR="$work/target" "$cargo" build --offline --release --target "$target")
mkdir -p ../modules
cp "$work/target/$target/release/shell.wasm" ../modules/shell.wasm
echo "built examples/modules/shell.wasm ($(wc -c <../modules/shell.wasm) bytes)"
