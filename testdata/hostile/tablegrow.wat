;; tablegrow: a reactor whose table has no declared maximum. Its step asks
;; table.grow for 2^31-1 more elements (16 GiB in wazero, 8 bytes each):
;; it must be refused (-1), not take the runner's memory. It logs
;; "guest: table.grow refused" and returns 0, or "guest: table.grow
;; succeeded" and returns 1.
(module
  (import "wasmrunner:host/v1" "log_line" (func $log_line (param i32 i32) (result i32)))
  (memory (export "memory") 1)
  (table $t 1 funcref)
  (data (i32.const 100) "guest: table.grow refused")
  (data (i32.const 200) "guest: table.grow succeeded")
  (func (export "wasmrunner_step") (param $phase i32) (result i32)
    (if (i32.eq (table.grow $t (ref.null func) (i32.const 0x7fffffff)) (i32.const -1))
      (then
        (drop (call $log_line (i32.const 100) (i32.const 25)))
        (return (i32.const 0))))
    (drop (call $log_line (i32.const 200) (i32.const 27)))
    (i32.const 1)))
