;; Imports a host function that does not exist.
(module
  (import "wasmrunner:host/v1" "format_disk" (func $f (param i32) (result i32)))
  (memory (export "memory") 1)
  (func (export "wasmrunner_step") (param i32) (result i32) (i32.const 0)))
