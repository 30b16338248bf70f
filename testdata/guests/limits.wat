;; limits: a reactor guest that pushes at the job's limits. Each script
;; line is a command chosen by its first byte:
;;   A  add 64 KiB artifacts (a000, a001, ...) until refused, log "refused"
;;   S  open 200 log sections with 2000-byte headers
;;   R  sleep 50 ms 40 times, ignoring cancellation, then return 0
;;   E  log the WASI environment, one KEY=value per line
;;   M  grow memory 1 MiB at a time until refused, log "grow refused"
;;   P  write 30 bytes of filler, then the value of SECRET, on one line
;;   B  spin in guest code for 3 x 2^31 iterations (seconds), then return 0
(module
  (import "wasmrunner:host/v1" "script_count" (func $script_count (result i32)))
  (import "wasmrunner:host/v1" "script_line" (func $script_line (param i32 i32 i32) (result i32)))
  (import "wasmrunner:host/v1" "log_line" (func $log_line (param i32 i32) (result i32)))
  (import "wasmrunner:host/v1" "log_write" (func $log_write (param i32 i32) (result i32)))
  (import "wasmrunner:host/v1" "var_get" (func $var_get (param i32 i32 i32 i32) (result i32)))
  (import "wasmrunner:host/v1" "sleep_ms" (func $sleep_ms (param i64) (result i32)))
  (import "wasmrunner:host/v1" "section_start" (func $section_start (param i32 i32 i32 i32) (result i32)))
  (import "wasmrunner:host/v1" "artifact_add_data" (func $add_data (param i32 i32 i32 i32) (result i32)))
  (import "wasi_snapshot_preview1" "environ_sizes_get" (func $environ_sizes_get (param i32 i32) (result i32)))
  (import "wasi_snapshot_preview1" "environ_get" (func $environ_get (param i32 i32) (result i32)))
  (memory (export "memory") 4)
  (data (i32.const 100) "refused")
  (data (i32.const 120) "grow refused")
  (data (i32.const 140) "SECRET")
  (data (i32.const 160) "0123456789012345678901234567890")
  (data (i32.const 200) "sec")
  (data (i32.const 300) "a000")

  ;; $name3 writes i as three decimal digits at 301..303.
  (func $name3 (param $i i32)
    (i32.store8 (i32.const 303) (i32.add (i32.const 48) (i32.rem_u (local.get $i) (i32.const 10))))
    (i32.store8 (i32.const 302) (i32.add (i32.const 48) (i32.rem_u (i32.div_u (local.get $i) (i32.const 10)) (i32.const 10))))
    (i32.store8 (i32.const 301) (i32.add (i32.const 48) (i32.rem_u (i32.div_u (local.get $i) (i32.const 100)) (i32.const 10)))))

  (func $run (result i32)
    (local $op i32) (local $i i32) (local $n i32) (local $size i32)
    (local.set $op (i32.load8_u (i32.const 1024)))
    (if (i32.eq (local.get $op) (i32.const 65)) ;; A
      (then
        (block $out
          (loop $more
            (br_if $out (i32.ge_u (local.get $i) (i32.const 1000)))
            (call $name3 (local.get $i))
            (if (i32.lt_s (call $add_data (i32.const 300) (i32.const 4) (i32.const 65536) (i32.const 65536)) (i32.const 0))
              (then (drop (call $log_line (i32.const 100) (i32.const 7))) (br $out)))
            (local.set $i (i32.add (local.get $i) (i32.const 1)))
            (br $more)))
        (return (i32.const 0))))
    (if (i32.eq (local.get $op) (i32.const 83)) ;; S
      (then
        (loop $more
          (drop (call $section_start (i32.const 200) (i32.const 3) (i32.const 65536) (i32.const 2000)))
          (local.set $i (i32.add (local.get $i) (i32.const 1)))
          (br_if $more (i32.lt_u (local.get $i) (i32.const 200))))
        (return (i32.const 0))))
    (if (i32.eq (local.get $op) (i32.const 82)) ;; R
      (then
        (loop $more
          (drop (call $sleep_ms (i64.const 50)))
          (local.set $i (i32.add (local.get $i) (i32.const 1)))
          (br_if $more (i32.lt_u (local.get $i) (i32.const 40))))
        (return (i32.const 0))))
    (if (i32.eq (local.get $op) (i32.const 69)) ;; E
      (then
        (if (call $environ_sizes_get (i32.const 8) (i32.const 12)) (then (return (i32.const 5))))
        (if (i32.gt_u (i32.load (i32.const 12)) (i32.const 60000)) (then (return (i32.const 6))))
        (if (call $environ_get (i32.const 2048) (i32.const 4096)) (then (return (i32.const 5))))
        (local.set $size (i32.load (i32.const 12)))
        ;; NULs become newlines
        (block $out
          (loop $more
            (br_if $out (i32.ge_u (local.get $i) (local.get $size)))
            (if (i32.eqz (i32.load8_u (i32.add (i32.const 4096) (local.get $i))))
              (then (i32.store8 (i32.add (i32.const 4096) (local.get $i)) (i32.const 10))))
            (local.set $i (i32.add (local.get $i) (i32.const 1)))
            (br $more)))
        (drop (call $log_write (i32.const 4096) (local.get $size)))
        (return (i32.const 0))))
    (if (i32.eq (local.get $op) (i32.const 77)) ;; M
      (then
        (loop $grow
          (br_if $grow (i32.ne (memory.grow (i32.const 16)) (i32.const -1))))
        (drop (call $log_line (i32.const 120) (i32.const 12)))
        (return (i32.const 0))))
    (if (i32.eq (local.get $op) (i32.const 80)) ;; P
      (then
        (drop (call $log_write (i32.const 160) (i32.const 30)))
        (local.set $n (call $var_get (i32.const 140) (i32.const 6) (i32.const 2048) (i32.const 1024)))
        (if (i32.lt_s (local.get $n) (i32.const 0)) (then (return (i32.const 7))))
        (drop (call $log_line (i32.const 2048) (local.get $n)))
        (return (i32.const 0))))
    (if (i32.eq (local.get $op) (i32.const 66)) ;; B
      (then
        (local.set $n (i32.const 3))
        (loop $outer
          (local.set $i (i32.const 0x7fffffff))
          (loop $spin
            (local.set $i (i32.sub (local.get $i) (i32.const 1)))
            (br_if $spin (i32.gt_s (local.get $i) (i32.const 0))))
          (local.set $n (i32.sub (local.get $n) (i32.const 1)))
          (br_if $outer (i32.gt_s (local.get $n) (i32.const 0))))
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
        (local.set $rc (call $run))
        (if (local.get $rc) (then (return (local.get $rc))))
        (local.set $i (i32.add (local.get $i) (i32.const 1)))
        (br $next)))
    (i32.const 0)))
