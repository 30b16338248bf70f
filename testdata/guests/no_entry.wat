;; Exports neither wasmrunner_step nor _start.
(module (memory (export "memory") 1))
