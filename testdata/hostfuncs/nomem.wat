;; A guest without memory: host functions that take pointers find nothing
;; to read or write.
(module
  (import "wasmrunner:host/v1" "log_line" (func $log_line (param i32 i32) (result i32)))
  (import "wasmrunner:host/v1" "var_names" (func $var_names (param i32 i32) (result i32)))
  (import "wasmrunner:host/v1" "job_id" (func $job_id (result i64)))
  (func (export "log_line") (param i32 i32) (result i32) (call $log_line (local.get 0) (local.get 1)))
  (func (export "var_names") (param i32 i32) (result i32) (call $var_names (local.get 0) (local.get 1)))
  (func (export "job_id") (result i64) (call $job_id))
)
