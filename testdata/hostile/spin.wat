;; spin: a reactor whose step loops forever without a host call: only the
;; runner's interruption (limits.cpu = "interrupt") can stop it.
(module
  (memory (export "memory") 1)
  (func (export "wasmrunner_step") (param $phase i32) (result i32)
    (loop $spin (br $spin))
    (i32.const 0)))
