;; probe: a reactor guest for engine tests. Each script line is a command
;; chosen by its first byte:
;;   e TEXT   log TEXT (the line from byte 2 on)   x   exit code 7
;;   v        log GREETING and SECRET               l   spin forever
;;   m        grow memory until refused, then trap  r   recurse forever
;;   t        trap (unreachable)                    p   WASI proc_exit(3)
;;   s        sleep 60 s (logs if cut short)        c   spin until is_canceled
;;   a        add artifact out/wasm.txt             d   log dependency 0's files
(module
  (import "wasmrunner:host/v1" "script_count" (func $script_count (result i32)))
  (import "wasmrunner:host/v1" "script_line" (func $script_line (param i32 i32 i32) (result i32)))
  (import "wasmrunner:host/v1" "log_line" (func $log_line (param i32 i32) (result i32)))
  (import "wasmrunner:host/v1" "var_get" (func $var_get (param i32 i32 i32 i32) (result i32)))
  (import "wasmrunner:host/v1" "sleep_ms" (func $sleep_ms (param i64) (result i32)))
  (import "wasmrunner:host/v1" "is_canceled" (func $is_canceled (result i32)))
  (import "wasmrunner:host/v1" "artifact_add_data" (func $add_data (param i32 i32 i32 i32) (result i32)))
  (import "wasmrunner:host/v1" "dep_files" (func $dep_files (param i32 i32 i32) (result i32)))
  (import "wasi_snapshot_preview1" "proc_exit" (func $proc_exit (param i32)))
  (memory (export "memory") 2)
  (data (i32.const 100) "GREETING")
  (data (i32.const 120) "SECRET")
  (data (i32.const 200) "sleep cut short")
  (data (i32.const 220) "noticed the cancel")
  (data (i32.const 300) "out/wasm.txt")
  (data (i32.const 320) "from wasm\n")
  (data (i32.const 340) "no such variable")
  (global $cleanups (mut i32) (i32.const 0))

  (func $log_var (param $name i32) (param $len i32)
    (local $n i32)
    (local.set $n (call $var_get (local.get $name) (local.get $len) (i32.const 2048) (i32.const 1024)))
    (if (i32.lt_s (local.get $n) (i32.const 0))
      (then (drop (call $log_line (i32.const 340) (i32.const 16))))
      (else (drop (call $log_line (i32.const 2048) (local.get $n))))))

  (func $recurse (param $x i32) (result i32)
    (i32.add (call $recurse (i32.add (local.get $x) (i32.const 1))) (i32.const 1)))

  (func $run (param $len i32) (result i32)
    (local $op i32) (local $n i32)
    (local.set $op (i32.load8_u (i32.const 1024)))
    ;; e TEXT
    (if (i32.eq (local.get $op) (i32.const 101))
      (then
        (if (i32.lt_s (local.get $len) (i32.const 2)) (then (return (i32.const 0))))
        (drop (call $log_line (i32.const 1026) (i32.sub (local.get $len) (i32.const 2))))
        (return (i32.const 0))))
    (if (i32.eq (local.get $op) (i32.const 120)) (then (return (i32.const 7))))
    (if (i32.eq (local.get $op) (i32.const 118))
      (then
        (call $log_var (i32.const 100) (i32.const 8))
        (call $log_var (i32.const 120) (i32.const 6))
        (return (i32.const 0))))
    (if (i32.eq (local.get $op) (i32.const 108))
      (then (loop $spin (br $spin))))
    (if (i32.eq (local.get $op) (i32.const 109))
      (then
        (loop $grow
          (br_if $grow (i32.ne (memory.grow (i32.const 16)) (i32.const -1))))
        unreachable))
    (if (i32.eq (local.get $op) (i32.const 114))
      (then (return (call $recurse (i32.const 0)))))
    (if (i32.eq (local.get $op) (i32.const 116)) (then unreachable))
    (if (i32.eq (local.get $op) (i32.const 112)) (then (call $proc_exit (i32.const 3))))
    (if (i32.eq (local.get $op) (i32.const 115))
      (then
        (if (i32.ne (call $sleep_ms (i64.const 60000)) (i32.const 0))
          (then (drop (call $log_line (i32.const 200) (i32.const 15)))))
        (return (i32.const 0))))
    (if (i32.eq (local.get $op) (i32.const 99))
      (then
        (block $out
          (loop $wait
            (br_if $out (call $is_canceled))
            (br $wait)))
        (drop (call $log_line (i32.const 220) (i32.const 18)))
        (return (i32.const 0))))
    (if (i32.eq (local.get $op) (i32.const 97))
      (then (return (call $add_data (i32.const 300) (i32.const 12) (i32.const 320) (i32.const 10)))))
    (if (i32.eq (local.get $op) (i32.const 100))
      (then
        (local.set $n (call $dep_files (i32.const 0) (i32.const 4096) (i32.const 60000)))
        (if (i32.lt_s (local.get $n) (i32.const 0)) (then (return (i32.const 9))))
        (drop (call $log_line (i32.const 4096) (local.get $n)))
        (return (i32.const 0))))
    (i32.const 127))

  (func (export "wasmrunner_step") (param $phase i32) (result i32)
    (local $i i32) (local $n i32) (local $len i32) (local $rc i32)
    (local.set $n (call $script_count))
    (block $done
      (loop $next
        (br_if $done (i32.ge_s (local.get $i) (local.get $n)))
        (local.set $len (call $script_line (local.get $i) (i32.const 1024) (i32.const 1000)))
        (if (i32.lt_s (local.get $len) (i32.const 1)) (then (return (i32.const 126))))
        (local.set $rc (call $run (local.get $len)))
        (if (local.get $rc) (then (return (local.get $rc))))
        (local.set $i (i32.add (local.get $i) (i32.const 1)))
        (br $next)))
    (i32.const 0))

  (func (export "wasmrunner_cleanup")
    (global.set $cleanups (i32.add (global.get $cleanups) (i32.const 1)))))
