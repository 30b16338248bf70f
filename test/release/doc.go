// Package release checks the files that ship and run wasmrunner outside
// the Go code: the GoReleaser configuration (.goreleaser.yaml: the
// platforms, a static reproducible build, the version and revision stamped
// into the binary) and the systemd unit (deploy/systemd: hardened, drains
// on stop). Its tests build the binary as a release does and run it.
package release
