;; tablemax: a reactor whose table declares a maximum of 2^32-1 elements
;; (32 GiB in wazero). Either the module is refused at load or its
;; table.grow by 2^31-1 elements (16 GiB, within the declared maximum) is
;; refused; it logs and returns as tablegrow does.
(module
  (import "wasmrunner:host/v1" "log_line" (func $log_line (param i32 i32) (result i32)))
  (memory (export "memory") 1)
  (table $t 1 0xffffffff funcref)
  (data (i32.const 100) "guest: table.grow refused")
  (data (i32.const 200) "guest: table.grow succeeded")
  (func (export "wasmrunner_step") (param $phase i32) (result i32)
    (if (i32.eq (table.grow $t (ref.null func) (i32.const 0x7fffffff)) (i32.const -1))
      (then
        (drop (call $log_line (i32.const 100) (i32.const 25)))
        (return (i32.const 0))))
    (drop (call $log_line (i32.const 200) (i32.const 27)))
    (i32.const 1)))
