module github.com/wasmrunner/wasmrunner/examples/go-handler/labsubmit

go 1.26

require github.com/wasmrunner/wasmrunner/guest-sdk/go v0.0.0

replace github.com/wasmrunner/wasmrunner/guest-sdk/go => ../../../guest-sdk/go
