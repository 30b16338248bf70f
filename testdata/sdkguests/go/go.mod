module github.com/wasmrunner/wasmrunner/testdata/sdkguests/go

go 1.26

require github.com/wasmrunner/wasmrunner/guest-sdk/go v0.0.0

replace github.com/wasmrunner/wasmrunner/guest-sdk/go => ../../../guest-sdk/go
