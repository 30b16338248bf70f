;; recurse: a reactor whose step recurses without end, with a few locals
;; per frame, growing wazero's own call stack (outside linear memory) until
;; wazero refuses ("stack overflow").
(module
  (memory (export "memory") 1)
  (func $recurse (param $x i64) (result i64)
    (local $a i64) (local $b i64) (local $c i64) (local $d i64)
    (local.set $a (i64.add (local.get $x) (i64.const 1)))
    (local.set $b (i64.mul (local.get $a) (i64.const 3)))
    (local.set $c (i64.xor (local.get $b) (local.get $x)))
    (local.set $d (call $recurse (local.get $a)))
    (i64.add (i64.add (local.get $d) (local.get $c)) (local.get $b)))
  (func (export "wasmrunner_step") (param $phase i32) (result i32)
    (i32.wrap_i64 (call $recurse (i64.const 0)))))
