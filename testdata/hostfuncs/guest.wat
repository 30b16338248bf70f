;; A well-behaved guest of the wasmrunner:host/v1 module: one export per
;; scenario. Each scenario calls host functions, writes what they return to
;; the job log (so that tests can compare the whole log) and returns the
;; number of calls that did not return what it expected (0: all did).
(module
  (import "wasmrunner:host/v1" "log_write" (func $log_write (param i32 i32) (result i32)))
  (import "wasmrunner:host/v1" "log_line" (func $log_line (param i32 i32) (result i32)))
  (import "wasmrunner:host/v1" "section_start" (func $section_start (param i32 i32 i32 i32) (result i32)))
  (import "wasmrunner:host/v1" "section_end" (func $section_end (param i32 i32) (result i32)))
  (import "wasmrunner:host/v1" "job_id" (func $job_id (result i64)))
  (import "wasmrunner:host/v1" "job_project_id" (func $job_project_id (result i64)))
  (import "wasmrunner:host/v1" "job_timeout" (func $job_timeout (result i64)))
  (import "wasmrunner:host/v1" "job_string" (func $job_string (param i32 i32 i32) (result i32)))
  (import "wasmrunner:host/v1" "phase" (func $phase (result i32)))
  (import "wasmrunner:host/v1" "var_get" (func $var_get (param i32 i32 i32 i32) (result i32)))
  (import "wasmrunner:host/v1" "var_masked" (func $var_masked (param i32 i32) (result i32)))
  (import "wasmrunner:host/v1" "var_names" (func $var_names (param i32 i32) (result i32)))
  (import "wasmrunner:host/v1" "script_count" (func $script_count (result i32)))
  (import "wasmrunner:host/v1" "script_line" (func $script_line (param i32 i32 i32) (result i32)))
  (import "wasmrunner:host/v1" "dep_count" (func $dep_count (result i32)))
  (import "wasmrunner:host/v1" "dep_id" (func $dep_id (param i32) (result i64)))
  (import "wasmrunner:host/v1" "dep_name" (func $dep_name (param i32 i32 i32) (result i32)))
  (import "wasmrunner:host/v1" "dep_files" (func $dep_files (param i32 i32 i32) (result i32)))
  (import "wasmrunner:host/v1" "dep_file_size" (func $dep_file_size (param i32 i32 i32) (result i64)))
  (import "wasmrunner:host/v1" "dep_read" (func $dep_read (param i32 i32 i32 i64 i32 i32) (result i32)))
  (import "wasmrunner:host/v1" "artifact_add_file" (func $artifact_add_file (param i32 i32) (result i32)))
  (import "wasmrunner:host/v1" "artifact_add_data" (func $artifact_add_data (param i32 i32 i32 i32) (result i32)))
  (import "wasmrunner:host/v1" "sleep_ms" (func $sleep_ms (param i64) (result i32)))
  (import "wasmrunner:host/v1" "is_canceled" (func $is_canceled (result i32)))
  (import "wasmrunner:host/v1" "http_request" (func $http_request (param i32 i32 i32 i32) (result i32)))
  (import "wasmrunner:host/v1" "http_response" (func $http_response (param i32 i32) (result i32)))

  ;; 0x00000-0x00fff: strings; 0x01000-0x01fff: output buffer ($buf);
  ;; 0x07000-0x0711f: number formatting; 0x20000-0x2ffff: HTTP requests
  ;; written by the test; 0x30000-0x3ffff: HTTP responses.
  (memory (export "memory") 4)

  (data (i32.const 0x000) "hello ")
  (data (i32.const 0x010) "world")
  (data (i32.const 0x020) "!")
  (data (i32.const 0x030) "build")
  (data (i32.const 0x040) "Building things")
  (data (i32.const 0x060) "inside")
  (data (i32.const 0x070) "id=")
  (data (i32.const 0x078) "project=")
  (data (i32.const 0x088) "timeout=")
  (data (i32.const 0x098) "phase=")
  (data (i32.const 0x0a0) "A")
  (data (i32.const 0x0a8) "B")
  (data (i32.const 0x0b0) "SECRET")
  (data (i32.const 0x0c0) "NOPE")
  (data (i32.const 0x0d0) "count=")
  (data (i32.const 0x0e0) "a.txt")
  (data (i32.const 0x0f0) "size=")
  (data (i32.const 0x100) "out/report.txt")
  (data (i32.const 0x110) "data.bin")
  (data (i32.const 0x120) "payload")
  (data (i32.const 0x130) "masked=")
  (data (i32.const 0x140) "len=")
  (data (i32.const 0x148) "ret=")
  (data (i32.const 0x150) "|")
  (data (i32.const 0x160) "canceled=")
  ;; 100 bytes for the benchmark
  (data (i32.const 0x200) "0123456789abcdefghijklmnopqrstuvwxyz0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789abcdefghijklmnopqr")

  (global $buf i32 (i32.const 0x1000))
  (global $cap i32 (i32.const 0x1000))
  (global $fails (mut i32) (i32.const 0))

  ;; expect counts a result that is not the expected one.
  (func $expect (param $got i32) (param $want i32)
    (if (i32.ne (local.get $got) (local.get $want))
      (then (global.set $fails (i32.add (global.get $fails) (i32.const 1))))))

  ;; log_num logs prefix and v in decimal as one line.
  (func $log_num (param $prefix i32) (param $plen i32) (param $v i64)
    (local $p i32) (local $u i64)
    (call $expect (call $log_write (local.get $prefix) (local.get $plen)) (i32.const 0))
    (local.set $p (i32.const 0x7120))
    (local.set $u (local.get $v))
    (if (i64.lt_s (local.get $v) (i64.const 0))
      (then (local.set $u (i64.sub (i64.const 0) (local.get $v)))))
    (loop $digits
      (local.set $p (i32.sub (local.get $p) (i32.const 1)))
      (i32.store8 (local.get $p)
        (i32.add (i32.const 48) (i32.wrap_i64 (i64.rem_u (local.get $u) (i64.const 10)))))
      (local.set $u (i64.div_u (local.get $u) (i64.const 10)))
      (br_if $digits (i64.ne (local.get $u) (i64.const 0))))
    (if (i64.lt_s (local.get $v) (i64.const 0))
      (then
        (local.set $p (i32.sub (local.get $p) (i32.const 1)))
        (i32.store8 (local.get $p) (i32.const 45))))
    (call $expect
      (call $log_line (local.get $p) (i32.sub (i32.const 0x7120) (local.get $p)))
      (i32.const 0)))

  ;; log_result logs n bytes of $buf as a line if n >= 0, else "ret=n".
  (func $log_result (param $n i32)
    (if (i32.ge_s (local.get $n) (i32.const 0))
      (then (call $expect (call $log_line (global.get $buf) (local.get $n)) (i32.const 0)))
      (else (call $log_num (i32.const 0x148) (i32.const 4) (i64.extend_i32_s (local.get $n))))))

  (func (export "t_log") (result i32)
    (global.set $fails (i32.const 0))
    (call $expect (call $log_write (i32.const 0x000) (i32.const 6)) (i32.const 0))
    (call $expect (call $log_write (i32.const 0x010) (i32.const 5)) (i32.const 0))
    (call $expect (call $log_line (i32.const 0x020) (i32.const 1)) (i32.const 0))
    (call $expect (call $log_write (i32.const 0x020) (i32.const 0)) (i32.const 0))
    (call $expect (call $section_start (i32.const 0x030) (i32.const 5) (i32.const 0x040) (i32.const 15)) (i32.const 0))
    (call $expect (call $log_line (i32.const 0x060) (i32.const 6)) (i32.const 0))
    (call $expect (call $section_end (i32.const 0x030) (i32.const 5)) (i32.const 0))
    (call $expect (call $log_line (i32.const 0x020) (i32.const 0)) (i32.const 0))
    (global.get $fails))

  (func (export "t_job") (result i32)
    (local $f i32)
    (global.set $fails (i32.const 0))
    (call $log_num (i32.const 0x070) (i32.const 3) (call $job_id))
    (call $log_num (i32.const 0x078) (i32.const 8) (call $job_project_id))
    (call $log_num (i32.const 0x088) (i32.const 8) (call $job_timeout))
    ;; fields 0..4 (4 does not exist)
    (loop $fields
      (call $log_result (call $job_string (local.get $f) (global.get $buf) (global.get $cap)))
      (local.set $f (i32.add (local.get $f) (i32.const 1)))
      (br_if $fields (i32.le_s (local.get $f) (i32.const 4))))
    ;; a size query writes nothing
    (call $log_num (i32.const 0x140) (i32.const 4)
      (i64.extend_i32_s (call $job_string (i32.const 0) (i32.const 0) (i32.const 0))))
    (call $log_num (i32.const 0x098) (i32.const 6) (i64.extend_i32_s (call $phase)))
    (global.get $fails))

  (func (export "t_vars") (result i32)
    (global.set $fails (i32.const 0))
    (call $log_result (call $var_names (global.get $buf) (global.get $cap)))
    (call $log_result (call $var_get (i32.const 0x0a0) (i32.const 1) (global.get $buf) (global.get $cap)))
    (call $log_result (call $var_get (i32.const 0x0a8) (i32.const 1) (global.get $buf) (global.get $cap)))
    (call $log_num (i32.const 0x130) (i32.const 7)
      (i64.extend_i32_s (call $var_masked (i32.const 0x0b0) (i32.const 6))))
    (call $log_num (i32.const 0x130) (i32.const 7)
      (i64.extend_i32_s (call $var_masked (i32.const 0x0a0) (i32.const 1))))
    (call $log_result (call $var_masked (i32.const 0x0c0) (i32.const 4)))
    (call $log_result (call $var_get (i32.const 0x0c0) (i32.const 4) (global.get $buf) (global.get $cap)))
    ;; a buffer too small: the full length comes back, nothing is written
    (i32.store8 (global.get $buf) (i32.const 35))
    (call $log_num (i32.const 0x140) (i32.const 4)
      (i64.extend_i32_s (call $var_get (i32.const 0x0b0) (i32.const 6) (global.get $buf) (i32.const 2))))
    (call $log_result (i32.const 1))
    (global.get $fails))

  (func (export "t_script") (result i32)
    (local $i i32) (local $n i32)
    (global.set $fails (i32.const 0))
    (local.set $n (call $script_count))
    (call $log_num (i32.const 0x0d0) (i32.const 6) (i64.extend_i32_s (local.get $n)))
    (block $done
      (loop $lines
        (br_if $done (i32.ge_s (local.get $i) (local.get $n)))
        (call $log_result (call $script_line (local.get $i) (global.get $buf) (global.get $cap)))
        (local.set $i (i32.add (local.get $i) (i32.const 1)))
        (br $lines)))
    (call $log_result (call $script_line (local.get $n) (global.get $buf) (global.get $cap)))
    (global.get $fails))

  (func (export "t_deps") (result i32)
    (local $i i32) (local $n i32) (local $off i64) (local $got i32)
    (global.set $fails (i32.const 0))
    (local.set $n (call $dep_count))
    (call $log_num (i32.const 0x0d0) (i32.const 6) (i64.extend_i32_s (local.get $n)))
    (block $done
      (loop $deps
        (br_if $done (i32.ge_s (local.get $i) (local.get $n)))
        (call $log_num (i32.const 0x070) (i32.const 3) (call $dep_id (local.get $i)))
        (call $log_result (call $dep_name (local.get $i) (global.get $buf) (global.get $cap)))
        (call $log_result (call $dep_files (local.get $i) (global.get $buf) (global.get $cap)))
        (local.set $i (i32.add (local.get $i) (i32.const 1)))
        (br $deps)))
    (call $log_num (i32.const 0x0f0) (i32.const 5)
      (call $dep_file_size (i32.const 0) (i32.const 0x0e0) (i32.const 5)))
    ;; read a.txt of the first dependency 4 bytes at a time
    (block $eof
      (loop $chunks
        (local.set $got (call $dep_read (i32.const 0) (i32.const 0x0e0) (i32.const 5)
          (local.get $off) (global.get $buf) (i32.const 4)))
        (br_if $eof (i32.le_s (local.get $got) (i32.const 0)))
        (call $expect (call $log_write (global.get $buf) (local.get $got)) (i32.const 0))
        (call $expect (call $log_write (i32.const 0x150) (i32.const 1)) (i32.const 0))
        (local.set $off (i64.add (local.get $off) (i64.extend_i32_u (local.get $got))))
        (br $chunks)))
    (call $log_num (i32.const 0x148) (i32.const 4) (i64.extend_i32_s (local.get $got)))
    (global.get $fails))

  (func (export "t_artifacts") (result i32)
    (global.set $fails (i32.const 0))
    (call $log_num (i32.const 0x148) (i32.const 4)
      (i64.extend_i32_s (call $artifact_add_file (i32.const 0x100) (i32.const 14))))
    (call $log_num (i32.const 0x148) (i32.const 4)
      (i64.extend_i32_s (call $artifact_add_data (i32.const 0x110) (i32.const 8) (i32.const 0x120) (i32.const 7))))
    (global.get $fails))

  ;; t_sleep sleeps ms milliseconds and returns what sleep_ms returned.
  (func (export "t_sleep") (param $ms i64) (result i32)
    (call $sleep_ms (local.get $ms)))

  (func (export "t_canceled") (result i32)
    (call $is_canceled))

  ;; t_http sends the request the test wrote at req (len bytes) with a
  ;; response buffer of cap bytes. If the response does not fit, it
  ;; fetches it again with http_response into a 64 KiB buffer. It logs the
  ;; response and returns its length, or the error code.
  (func (export "t_http") (param $req i32) (param $len i32) (param $cap i32) (result i32)
    (local $n i32)
    (local.set $n (call $http_request (local.get $req) (local.get $len) (i32.const 0x30000) (local.get $cap)))
    (if (i32.lt_s (local.get $n) (i32.const 0)) (then (return (local.get $n))))
    (if (i32.gt_u (local.get $n) (local.get $cap))
      (then
        (if (i32.ne (call $http_response (i32.const 0x30000) (i32.const 0x10000)) (local.get $n))
          (then (return (i32.const -100))))))
    (drop (call $log_write (i32.const 0x30000) (local.get $n)))
    (local.get $n))

  ;; bench_log_line logs the same 100-byte line n times.
  (func (export "bench_log_line") (param $n i32) (result i32)
    (local $fails i32)
    (block $done
      (loop $again
        (br_if $done (i32.eqz (local.get $n)))
        (if (call $log_line (i32.const 0x200) (i32.const 100))
          (then (local.set $fails (i32.add (local.get $fails) (i32.const 1)))))
        (local.set $n (i32.sub (local.get $n) (i32.const 1)))
        (br $again)))
    (local.get $fails))
)
