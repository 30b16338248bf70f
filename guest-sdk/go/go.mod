module github.com/wasmrunner/wasmrunner/guest-sdk/go

go 1.26
