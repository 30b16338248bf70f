//! The host functions of `wasmrunner:host/v1` and thin safe wrappers.
//!
//! This is the only module with `unsafe` code. Each wrapper passes
//! pointers into slices it borrows, so the host reads and writes only
//! memory the guest owns for the duration of the call, and returns the raw
//! result of the host function (a length, a value or a negative error
//! code). Growing buffers and decoding results happen in safe code
//! elsewhere.
//!
//! Outside WebAssembly (`cargo test` on the build machine) the wrappers
//! are the fake host of the `testing` module, so that the safe layers and
//! handlers can be unit-tested.

#[cfg(target_arch = "wasm32")]
mod imp {
    #[link(wasm_import_module = "wasmrunner:host/v1")]
    extern "C" {
        fn log_write(ptr: *const u8, len: i32) -> i32;
        fn log_line(ptr: *const u8, len: i32) -> i32;
        fn section_start(
            name_ptr: *const u8,
            name_len: i32,
            header_ptr: *const u8,
            header_len: i32,
        ) -> i32;
        fn section_end(name_ptr: *const u8, name_len: i32) -> i32;

        fn job_id() -> i64;
        fn job_project_id() -> i64;
        fn job_timeout() -> i64;
        fn job_string(field: i32, buf: *mut u8, cap: i32) -> i32;
        fn phase() -> i32;
        fn script_count() -> i32;
        fn script_line(index: i32, buf: *mut u8, cap: i32) -> i32;

        fn var_get(name_ptr: *const u8, name_len: i32, buf: *mut u8, cap: i32) -> i32;
        fn var_masked(name_ptr: *const u8, name_len: i32) -> i32;
        fn var_names(buf: *mut u8, cap: i32) -> i32;

        fn dep_count() -> i32;
        fn dep_id(index: i32) -> i64;
        fn dep_name(index: i32, buf: *mut u8, cap: i32) -> i32;
        fn dep_files(index: i32, buf: *mut u8, cap: i32) -> i32;
        fn dep_file_size(index: i32, name_ptr: *const u8, name_len: i32) -> i64;
        fn dep_read(
            index: i32,
            name_ptr: *const u8,
            name_len: i32,
            offset: i64,
            buf: *mut u8,
            cap: i32,
        ) -> i32;

        fn artifact_add_file(path_ptr: *const u8, path_len: i32) -> i32;
        fn artifact_add_data(
            name_ptr: *const u8,
            name_len: i32,
            data_ptr: *const u8,
            data_len: i32,
        ) -> i32;

        fn sleep_ms(millis: i64) -> i32;
        fn is_canceled() -> i32;

        fn http_request(req_ptr: *const u8, req_len: i32, buf: *mut u8, cap: i32) -> i32;
        fn http_response(buf: *mut u8, cap: i32) -> i32;
    }

    /// A slice's length as the ABI's i32. Slices in a 32-bit address space
    /// larger than 2 GiB are passed as i32::MAX bytes: the host rejects
    /// them with a size error or uses less of an output buffer.
    fn len(b: &[u8]) -> i32 {
        i32::try_from(b.len()).unwrap_or(i32::MAX)
    }

    pub fn log_write_(b: &[u8]) -> i32 {
        unsafe { log_write(b.as_ptr(), len(b)) }
    }
    pub fn log_line_(b: &[u8]) -> i32 {
        unsafe { log_line(b.as_ptr(), len(b)) }
    }
    pub fn section_start_(name: &[u8], header: &[u8]) -> i32 {
        unsafe { section_start(name.as_ptr(), len(name), header.as_ptr(), len(header)) }
    }
    pub fn section_end_(name: &[u8]) -> i32 {
        unsafe { section_end(name.as_ptr(), len(name)) }
    }
    pub fn job_id_() -> i64 {
        unsafe { job_id() }
    }
    pub fn job_project_id_() -> i64 {
        unsafe { job_project_id() }
    }
    pub fn job_timeout_() -> i64 {
        unsafe { job_timeout() }
    }
    pub fn job_string_(field: i32, buf: &mut [u8]) -> i32 {
        unsafe { job_string(field, buf.as_mut_ptr(), len(buf)) }
    }
    pub fn phase_() -> i32 {
        unsafe { phase() }
    }
    pub fn script_count_() -> i32 {
        unsafe { script_count() }
    }
    pub fn script_line_(index: i32, buf: &mut [u8]) -> i32 {
        unsafe { script_line(index, buf.as_mut_ptr(), len(buf)) }
    }
    pub fn var_get_(name: &[u8], buf: &mut [u8]) -> i32 {
        unsafe { var_get(name.as_ptr(), len(name), buf.as_mut_ptr(), len(buf)) }
    }
    pub fn var_masked_(name: &[u8]) -> i32 {
        unsafe { var_masked(name.as_ptr(), len(name)) }
    }
    pub fn var_names_(buf: &mut [u8]) -> i32 {
        unsafe { var_names(buf.as_mut_ptr(), len(buf)) }
    }
    pub fn dep_count_() -> i32 {
        unsafe { dep_count() }
    }
    pub fn dep_id_(index: i32) -> i64 {
        unsafe { dep_id(index) }
    }
    pub fn dep_name_(index: i32, buf: &mut [u8]) -> i32 {
        unsafe { dep_name(index, buf.as_mut_ptr(), len(buf)) }
    }
    pub fn dep_files_(index: i32, buf: &mut [u8]) -> i32 {
        unsafe { dep_files(index, buf.as_mut_ptr(), len(buf)) }
    }
    pub fn dep_file_size_(index: i32, name: &[u8]) -> i64 {
        unsafe { dep_file_size(index, name.as_ptr(), len(name)) }
    }
    pub fn dep_read_(index: i32, name: &[u8], offset: i64, buf: &mut [u8]) -> i32 {
        unsafe {
            dep_read(
                index,
                name.as_ptr(),
                len(name),
                offset,
                buf.as_mut_ptr(),
                len(buf),
            )
        }
    }
    pub fn artifact_add_file_(path: &[u8]) -> i32 {
        unsafe { artifact_add_file(path.as_ptr(), len(path)) }
    }
    pub fn artifact_add_data_(name: &[u8], data: &[u8]) -> i32 {
        unsafe { artifact_add_data(name.as_ptr(), len(name), data.as_ptr(), len(data)) }
    }
    pub fn sleep_ms_(millis: i64) -> i32 {
        unsafe { sleep_ms(millis) }
    }
    pub fn is_canceled_() -> i32 {
        unsafe { is_canceled() }
    }
    pub fn http_request_(req: &[u8], buf: &mut [u8]) -> i32 {
        unsafe { http_request(req.as_ptr(), len(req), buf.as_mut_ptr(), len(buf)) }
    }
    pub fn http_response_(buf: &mut [u8]) -> i32 {
        unsafe { http_response(buf.as_mut_ptr(), len(buf)) }
    }

    /// The WASI environment as the host gives it now: "KEY=value" entries,
    /// each followed by a NUL byte. The C library reads it once, so the
    /// SDK passes it on at every step (see `handler::refresh_env`).
    pub(crate) fn environ_() -> Option<Vec<u8>> {
        #[link(wasm_import_module = "wasi_snapshot_preview1")]
        extern "C" {
            #[link_name = "environ_sizes_get"]
            fn wasi_environ_sizes_get(count: *mut u32, size: *mut u32) -> i32;
            #[link_name = "environ_get"]
            fn wasi_environ_get(environ: *mut *mut u8, buf: *mut u8) -> i32;
        }
        let (mut count, mut size) = (0u32, 0u32);
        if unsafe { wasi_environ_sizes_get(&mut count, &mut size) } != 0 {
            return None;
        }
        let mut ptrs: Vec<*mut u8> = vec![std::ptr::null_mut(); count as usize];
        let mut buf = vec![0u8; size as usize];
        if unsafe { wasi_environ_get(ptrs.as_mut_ptr(), buf.as_mut_ptr()) } != 0 {
            return None;
        }
        Some(buf)
    }

    /// Runs the static constructors of the module (the C library's and
    /// any others) once. A module that calls `__wasm_call_ctors` itself is
    /// a reactor to the linker, which then exports functions unwrapped
    /// instead of running constructors and destructors around every call.
    /// Inline so that only a crate that calls it (through
    /// `register_handler!`) references `__wasm_call_ctors`.
    #[inline]
    pub fn call_ctors() {
        extern "C" {
            fn __wasm_call_ctors();
        }
        unsafe { __wasm_call_ctors() }
    }
}

#[cfg(not(target_arch = "wasm32"))]
mod imp {
    pub(crate) use crate::testing::{
        artifact_add_data as artifact_add_data_, artifact_add_file as artifact_add_file_,
        dep_count as dep_count_, dep_file_size as dep_file_size_, dep_files as dep_files_,
        dep_id as dep_id_, dep_name as dep_name_, dep_read as dep_read_,
        http_request as http_request_, http_response as http_response_,
        is_canceled as is_canceled_, job_id as job_id_, job_project_id as job_project_id_,
        job_string as job_string_, job_timeout as job_timeout_, log_line as log_line_,
        log_write as log_write_, phase as phase_, script_count as script_count_,
        script_line as script_line_, section_end as section_end_, section_start as section_start_,
        sleep_ms as sleep_ms_, var_get as var_get_, var_masked as var_masked_,
        var_names as var_names_,
    };

    pub(crate) fn call_ctors() {}
    pub(crate) fn environ_() -> Option<Vec<u8>> {
        None
    }
}

pub(crate) use imp::{
    artifact_add_data_ as artifact_add_data, artifact_add_file_ as artifact_add_file, call_ctors,
    dep_count_ as dep_count, dep_file_size_ as dep_file_size, dep_files_ as dep_files,
    dep_id_ as dep_id, dep_name_ as dep_name, dep_read_ as dep_read, environ_ as environ,
    http_request_ as http_request, http_response_ as http_response, is_canceled_ as is_canceled,
    job_id_ as job_id, job_project_id_ as job_project_id, job_string_ as job_string,
    job_timeout_ as job_timeout, log_line_ as log_line, log_write_ as log_write, phase_ as phase,
    script_count_ as script_count, script_line_ as script_line, section_end_ as section_end,
    section_start_ as section_start, sleep_ms_ as sleep_ms, var_get_ as var_get,
    var_masked_ as var_masked, var_names_ as var_names,
};
