module github.com/wasmrunner/wasmrunner

go 1.26
