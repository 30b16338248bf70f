;; probe: a reactor guest for engine tests. Each script line is a command
;; chosen by its first byte:
;;   e TEXT   log TEXT (the line from byte 2 on)   x   exit code 7
;;   v        log GREETING and SECRET               l   spin forever
;;   m        grow memory until refused, then trap  r   recurse forever
;;   t        trap (unreachable)                    p   WASI proc_exit(3)
;;   s        sleep 60 s (logs if cut short)        c   spin until is_canceled
;;   a        add artifact out/wasm.txt             d   log dependency 0's files
;;   w        scribble: overwrite a data segment, the line buffer's tail and
;;            memory in the second page (as a job's state would)
;;   k        log "pristine" if none of that is scribbled, else "dirty"
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
  (data (i32.const 360) "pristine")
  (data (i32.const 370) "dirty")
  (data (i32.const 380) "GREETING")
  (global $cleanups (mut i32) (i32.const 0))

  (func $log_var (param $name i32) (param $len i32)
    (local $n i32)
    (local.set $n (call $var_get (local.get $name) (local.get $len) (i32.const 2048) (i32.const 1024)))
    (if (i32.lt_s (local.get $n) (i32.const 0))
      (then (drop (call $log_line (i32.const 340) (i32.const 16))))
      (else (drop (call $log_line (i32.const 2048) (local.get $n))))))

  ;; fill: n bytes of v at addr. same: whether they all are v.
  (func $fill (param $addr i32) (param $v i32) (param $n i32)
    (block $end
      (loop $l
        (br_if $end (i32.eqz (local.get $n)))
        (i32.store8 (local.get $addr) (local.get $v))
        (local.set $addr (i32.add (local.get $addr) (i32.const 1)))
        (local.set $n (i32.sub (local.get $n) (i32.const 1)))
        (br $l))))
  (func $same (param $addr i32) (param $v i32) (param $n i32) (result i32)
    (block $end
      (loop $l
        (br_if $end (i32.eqz (local.get $n)))
        (if (i32.ne (i32.load8_u (local.get $addr)) (local.get $v)) (then (return (i32.const 0))))
        (local.set $addr (i32.add (local.get $addr) (i32.const 1)))
        (local.set $n (i32.sub (local.get $n) (i32.const 1)))
        (br $l)))
    (i32.const 1))

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
    ;; w: scribble; k: check.
    (if (i32.eq (local.get $op) (i32.const 119))
      (then
        (call $fill (i32.const 100) (i32.const 88) (i32.const 8))
        (call $fill (i32.const 1100) (i32.const 83) (i32.const 900))
        (call $fill (i32.const 65636) (i32.const 83) (i32.const 100))
        (return (i32.const 0))))
    (if (i32.eq (local.get $op) (i32.const 107))
      (then
        (if (i32.and
              (i32.and (i64.eq (i64.load (i32.const 100)) (i64.load (i32.const 380)))
                       (call $same (i32.const 1100) (i32.const 0) (i32.const 900)))
              (call $same (i32.const 65636) (i32.const 0) (i32.const 100)))
          (then (drop (call $log_line (i32.const 360) (i32.const 8))))
          (else (drop (call $log_line (i32.const 370) (i32.const 5)))))
        (return (i32.const 0))))
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
