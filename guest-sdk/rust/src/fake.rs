//! An in-process stand-in for the host, used outside WebAssembly so that
//! the SDK's safe layers (buffer growing, decoding, the handler glue) can
//! be unit-tested with `cargo test`. It follows the ABI's conventions:
//! functions with output return the full length and write only if it fits.
//! It is per thread: each test sets up its own host with [`reset`].

use std::cell::RefCell;

const NOT_FOUND: i32 = -3;
const INVALID: i32 = -4;
const CANCELED: i32 = -7;

#[derive(Default, Clone)]
pub(crate) struct Dep {
    pub id: i64,
    pub name: String,
    pub files: Vec<(String, Vec<u8>)>,
}

#[derive(Default)]
pub(crate) struct Host {
    pub log: Vec<u8>,
    pub sections: Vec<String>,
    pub job_id: i64,
    pub project_id: i64,
    pub timeout_secs: i64,
    pub strings: [String; 4],
    pub phase: i32,
    pub script: Vec<String>,
    /// (name, value, masked)
    pub vars: Vec<(String, String, bool)>,
    pub deps: Vec<Dep>,
    pub artifacts: Vec<(String, Option<Vec<u8>>)>,
    pub canceled: bool,
    pub slept_ms: i64,
    pub requests: Vec<Vec<u8>>,
    pub response: Option<Vec<u8>>,
    /// The number of host calls with an output buffer, to check growing.
    pub output_calls: usize,
}

thread_local! {
    static HOST: RefCell<Host> = RefCell::new(Host::default());
}

/// Replaces this thread's host with a fresh one.
#[allow(dead_code)]
pub(crate) fn reset() {
    HOST.with(|h| *h.borrow_mut() = Host::default());
}

pub(crate) fn with<R>(f: impl FnOnce(&mut Host) -> R) -> R {
    HOST.with(|h| f(&mut h.borrow_mut()))
}

fn out(h: &mut Host, buf: &mut [u8], data: &[u8]) -> i32 {
    h.output_calls += 1;
    if data.len() <= buf.len() {
        buf[..data.len()].copy_from_slice(data);
    }
    data.len() as i32
}

fn text(b: &[u8]) -> Result<String, i32> {
    String::from_utf8(b.to_vec()).map_err(|_| INVALID)
}

pub(crate) fn log_write(b: &[u8]) -> i32 {
    with(|h| h.log.extend_from_slice(b));
    0
}

pub(crate) fn log_line(b: &[u8]) -> i32 {
    with(|h| {
        h.log.extend_from_slice(b);
        h.log.push(b'\n');
    });
    0
}

pub(crate) fn section_start(name: &[u8], header: &[u8]) -> i32 {
    with(|h| {
        h.sections.push(format!(
            "start {} {}",
            String::from_utf8_lossy(name),
            String::from_utf8_lossy(header)
        ))
    });
    0
}

pub(crate) fn section_end(name: &[u8]) -> i32 {
    with(|h| {
        h.sections
            .push(format!("end {}", String::from_utf8_lossy(name)))
    });
    0
}

pub(crate) fn job_string(field: i32, buf: &mut [u8]) -> i32 {
    with(|h| {
        if !(0..4).contains(&field) {
            return NOT_FOUND;
        }
        let s = h.strings[field as usize].clone();
        out(h, buf, s.as_bytes())
    })
}

pub(crate) fn script_line(index: i32, buf: &mut [u8]) -> i32 {
    with(|h| {
        if index < 0 || index as usize >= h.script.len() {
            return INVALID;
        }
        let s = h.script[index as usize].clone();
        out(h, buf, s.as_bytes())
    })
}

fn find_var(h: &Host, name: &[u8]) -> Option<(String, bool)> {
    h.vars
        .iter()
        .rev()
        .find(|v| v.0.as_bytes() == name)
        .map(|v| (v.1.clone(), v.2))
}

pub(crate) fn var_get(name: &[u8], buf: &mut [u8]) -> i32 {
    with(|h| match find_var(h, name) {
        Some((value, _)) => out(h, buf, value.as_bytes()),
        None => NOT_FOUND,
    })
}

pub(crate) fn var_masked(name: &[u8]) -> i32 {
    with(|h| match find_var(h, name) {
        Some((_, masked)) => masked as i32,
        None => NOT_FOUND,
    })
}

pub(crate) fn var_names(buf: &mut [u8]) -> i32 {
    with(|h| {
        let mut names: Vec<&str> = Vec::new();
        for v in &h.vars {
            if !names.contains(&v.0.as_str()) {
                names.push(&v.0);
            }
        }
        let list = names.join("\0");
        out(h, buf, list.as_bytes())
    })
}

fn dep(h: &Host, index: i32) -> Result<Dep, i32> {
    if index < 0 || index as usize >= h.deps.len() {
        return Err(INVALID);
    }
    Ok(h.deps[index as usize].clone())
}

pub(crate) fn dep_id(index: i32) -> i64 {
    with(|h| dep(h, index).map(|d| d.id).unwrap_or_else(i64::from))
}

pub(crate) fn dep_name(index: i32, buf: &mut [u8]) -> i32 {
    with(|h| match dep(h, index) {
        Ok(d) => out(h, buf, d.name.as_bytes()),
        Err(e) => e,
    })
}

pub(crate) fn dep_files(index: i32, buf: &mut [u8]) -> i32 {
    with(|h| match dep(h, index) {
        Ok(d) if d.files.is_empty() => NOT_FOUND,
        Ok(d) => {
            let names: Vec<&str> = d.files.iter().map(|f| f.0.as_str()).collect();
            out(h, buf, names.join("\0").as_bytes())
        }
        Err(e) => e,
    })
}

fn dep_file(index: i32, name: &[u8]) -> Result<Vec<u8>, i32> {
    let name = text(name)?;
    with(|h| {
        let d = dep(h, index)?;
        d.files
            .into_iter()
            .find(|f| f.0 == name)
            .map(|f| f.1)
            .ok_or(NOT_FOUND)
    })
}

pub(crate) fn dep_file_size(index: i32, name: &[u8]) -> i64 {
    match dep_file(index, name) {
        Ok(data) => data.len() as i64,
        Err(e) => e.into(),
    }
}

/// Reads at most 7 bytes per call, so that readers must loop.
pub(crate) fn dep_read(index: i32, name: &[u8], offset: i64, buf: &mut [u8]) -> i32 {
    let data = match dep_file(index, name) {
        Ok(data) => data,
        Err(e) => return e,
    };
    if offset < 0 {
        return INVALID;
    }
    let off = offset as usize;
    if off >= data.len() {
        return 0;
    }
    let n = buf.len().min(data.len() - off).min(7);
    buf[..n].copy_from_slice(&data[off..off + n]);
    n as i32
}

pub(crate) fn artifact_add_file(path: &[u8]) -> i32 {
    match text(path) {
        Ok(p) if p.is_empty() || p.starts_with('/') => INVALID,
        Ok(p) => with(|h| {
            h.artifacts.push((p, None));
            0
        }),
        Err(e) => e,
    }
}

pub(crate) fn artifact_add_data(name: &[u8], data: &[u8]) -> i32 {
    match text(name) {
        Ok(p) if p.is_empty() || p.starts_with('/') => INVALID,
        Ok(p) => with(|h| {
            h.artifacts.push((p, Some(data.to_vec())));
            0
        }),
        Err(e) => e,
    }
}

pub(crate) fn sleep_ms(millis: i64) -> i32 {
    with(|h| {
        if millis < 0 {
            return INVALID;
        }
        if h.canceled {
            return CANCELED;
        }
        h.slept_ms += millis;
        0
    })
}

pub(crate) fn http_request(req: &[u8], buf: &mut [u8]) -> i32 {
    with(|h| {
        h.requests.push(req.to_vec());
        match h.response.clone() {
            Some(resp) => out(h, buf, &resp),
            None => -6,
        }
    })
}

pub(crate) fn http_response(buf: &mut [u8]) -> i32 {
    with(|h| match h.response.clone() {
        Some(resp) => out(h, buf, &resp),
        None => NOT_FOUND,
    })
}
