module github.com/wasmrunner/wasmrunner

go 1.26

require github.com/cenkalti/backoff/v5 v5.0.3 // indirect
