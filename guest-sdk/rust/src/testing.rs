//! A fake host for unit tests of handlers: plain `cargo test` on the build
//! machine, no WebAssembly, no runner.
//!
//! Outside WebAssembly the crate's host functions talk to an in-process
//! fake host. A test describes the job with a [`FakeHost`] (fields,
//! script, variables, masked ones too, dependencies with their files, an
//! HTTP responder) and [installs](FakeHost::install) it; then [`run`]
//! runs a handler as the runner runs a job, and [`log`], [`sections`],
//! [`artifacts`], [`requests`] and [`sleeps`] tell what it did.
//!
//! ```
//! use wasmrunner::testing::{self, FakeHost};
//! use wasmrunner::{outputln, Handler, Phase};
//!
//! struct Greeter;
//!
//! impl Handler for Greeter {
//!     fn step(&mut self, script: &[String], _phase: Phase) -> Result<(), i32> {
//!         let greeting = wasmrunner::var("GREETING").ok_or(2)?;
//!         for who in script {
//!             outputln!("{greeting} {who}");
//!         }
//!         Ok(())
//!     }
//! }
//!
//! // In a #[test] function:
//! FakeHost::new().script(["world", "moon"]).var("GREETING", "hello").install();
//! assert_eq!(testing::run(&mut Greeter), 0);
//! assert_eq!(testing::log(), "hello world\nhello moon\n");
//! ```
//!
//! The host is per thread, as `cargo test` runs each test on a thread of
//! its own: a test installs its own, which replaces whatever the thread
//! had. Sleeps do not sleep: [`sleep`](crate::sleep) is recorded and
//! returns at once (see [`FakeHost::on_sleep`]). `std::env` is not faked:
//! read variables with [`var`](crate::var).
//!
//! The end-to-end counterpart, which runs the built `.wasm` through the
//! real engine against a fake GitLab, is the Go package
//! `github.com/wasmrunner/wasmrunner/handlertest`.

use std::cell::RefCell;
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::rc::Rc;
use std::time::Duration;

use crate::http::{Request, Response};
use crate::{Error, Handler, Phase};

const TOO_LARGE: i32 = -2;
const NOT_FOUND: i32 = -3;
const INVALID: i32 = -4;
const DENIED: i32 = -6;
const CANCELED: i32 = -7;
const IO: i32 = -8;

/// The most bytes one `dep_read` returns, so that readers loop.
const MAX_READ: usize = 4096;

type HttpFn = Rc<RefCell<dyn FnMut(&Request) -> Result<Response, Error>>>;
type SleepFn = Rc<RefCell<dyn FnMut(Duration)>>;

#[derive(Clone)]
pub(crate) struct Dep {
    pub id: i64,
    pub name: String,
    pub files: Vec<(String, Vec<u8>)>,
}

/// The state of this thread's fake host.
pub(crate) struct Host {
    job_id: i64,
    project_id: i64,
    timeout_secs: i64,
    /// name, stage, project name, image
    strings: [String; 4],
    phase: Phase,
    script: Vec<String>,
    after_script: Vec<String>,
    /// (name, value, masked)
    vars: Vec<(String, String, bool)>,
    deps: Vec<Dep>,
    build_dir: Option<PathBuf>,
    http: Option<HttpFn>,
    on_sleep: Option<SleepFn>,

    log: Vec<u8>,
    sections: Vec<Section>,
    open: Vec<usize>,
    artifacts: BTreeMap<String, Vec<u8>>,
    requests: Vec<Request>,
    sleeps: Vec<Duration>,
    canceled: bool,
    status: &'static str,
    response: Option<Vec<u8>>,
}

impl Default for Host {
    fn default() -> Host {
        Host {
            job_id: 1,
            project_id: 1,
            timeout_secs: 3600,
            strings: ["test".into(), "test".into(), "demo".into(), String::new()],
            phase: Phase::Script,
            script: Vec::new(),
            after_script: Vec::new(),
            vars: Vec::new(),
            deps: Vec::new(),
            build_dir: None,
            http: None,
            on_sleep: None,
            log: Vec::new(),
            sections: Vec::new(),
            open: Vec::new(),
            artifacts: BTreeMap::new(),
            requests: Vec::new(),
            sleeps: Vec::new(),
            canceled: false,
            status: "success",
            response: None,
        }
    }
}

thread_local! {
    static HOST: RefCell<Host> = RefCell::new(Host::default());
}

fn with<R>(f: impl FnOnce(&mut Host) -> R) -> R {
    HOST.with(|h| f(&mut h.borrow_mut()))
}

/// The job a handler sees and how the host behaves: build it, then
/// [`install`](FakeHost::install) it on the test's thread. Defaults: job 1
/// of project 1 (`demo`), named `test` in stage `test`, no image, a
/// timeout of one hour, the `script` phase, no script, variables or
/// dependencies, and no HTTP (every request is [`Error::Denied`]).
///
/// ```
/// use std::time::Duration;
/// use wasmrunner::http::Response;
/// use wasmrunner::testing::FakeHost;
///
/// FakeHost::new()
///     .name("build:linux")
///     .timeout(Duration::from_secs(600))
///     .script(["make"])
///     .after_script(["make clean"])
///     .var("TARGET", "x86_64")
///     .masked_var("API_TOKEN", "glpat-0123456789")
///     .dependency(11, "prepare", [("pkg/input.txt", "source")])
///     .http(|req| Ok(Response { status: 200, body: req.url.clone().into_bytes(), ..Response::default() }))
///     .install();
/// assert_eq!(wasmrunner::job().name, "build:linux");
/// assert_eq!(wasmrunner::dependencies()[0].read("pkg/input.txt").unwrap(), b"source");
/// ```
#[must_use = "a FakeHost does nothing until it is installed"]
pub struct FakeHost {
    host: Host,
}

impl Default for FakeHost {
    fn default() -> FakeHost {
        FakeHost::new()
    }
}

impl FakeHost {
    /// A host with the defaults.
    pub fn new() -> FakeHost {
        FakeHost {
            host: Host::default(),
        }
    }

    /// The job's id.
    pub fn job_id(mut self, id: i64) -> FakeHost {
        self.host.job_id = id;
        self
    }

    /// The id of the job's project.
    pub fn project_id(mut self, id: i64) -> FakeHost {
        self.host.project_id = id;
        self
    }

    /// The job's name.
    pub fn name(mut self, name: &str) -> FakeHost {
        self.host.strings[0] = name.to_string();
        self
    }

    /// The job's stage.
    pub fn stage(mut self, stage: &str) -> FakeHost {
        self.host.strings[1] = stage.to_string();
        self
    }

    /// The name of the job's project.
    pub fn project_name(mut self, name: &str) -> FakeHost {
        self.host.strings[2] = name.to_string();
        self
    }

    /// The job's image.
    pub fn image(mut self, image: &str) -> FakeHost {
        self.host.strings[3] = image.to_string();
        self
    }

    /// The job's timeout (whole seconds).
    pub fn timeout(mut self, timeout: Duration) -> FakeHost {
        self.host.timeout_secs = i64::try_from(timeout.as_secs()).unwrap_or(i64::MAX);
        self
    }

    /// The phase, for code that calls the crate's functions directly;
    /// [`run`] and [`step`] set it.
    pub fn phase(mut self, phase: Phase) -> FakeHost {
        self.host.phase = phase;
        self
    }

    /// The lines of the job's `script`.
    pub fn script<I, S>(mut self, lines: I) -> FakeHost
    where
        I: IntoIterator<Item = S>,
        S: Into<String>,
    {
        self.host.script = lines.into_iter().map(Into::into).collect();
        self
    }

    /// The lines of the job's `after_script`.
    pub fn after_script<I, S>(mut self, lines: I) -> FakeHost
    where
        I: IntoIterator<Item = S>,
        S: Into<String>,
    {
        self.host.after_script = lines.into_iter().map(Into::into).collect();
        self
    }

    /// Adds a job variable. A later definition of a name wins.
    pub fn var(mut self, name: &str, value: &str) -> FakeHost {
        self.host
            .vars
            .push((name.to_string(), value.to_string(), false));
        self
    }

    /// Adds a masked job variable: [`log`] shows its value as `[MASKED]`,
    /// as the runner does.
    pub fn masked_var(mut self, name: &str, value: &str) -> FakeHost {
        self.host
            .vars
            .push((name.to_string(), value.to_string(), true));
        self
    }

    /// Adds a dependency: job `id` named `name`, whose artifacts hold
    /// `files` (path, content); none means it has no artifacts
    /// ([`Dependency::files`](crate::Dependency::files) is
    /// [`Error::NotFound`]).
    pub fn dependency<I, N, C>(mut self, id: i64, name: &str, files: I) -> FakeHost
    where
        I: IntoIterator<Item = (N, C)>,
        N: Into<String>,
        C: Into<Vec<u8>>,
    {
        self.host.deps.push(Dep {
            id,
            name: name.to_string(),
            files: files
                .into_iter()
                .map(|(n, c)| (n.into(), c.into()))
                .collect(),
        });
        self
    }

    /// The build dir: [`install`](FakeHost::install) extracts the
    /// dependencies' files into it, [`add_artifact_file`](crate::add_artifact_file)
    /// reads its files there (else relative to the current dir) and
    /// [`add_artifact_data`](crate::add_artifact_data) writes them there.
    /// Handler code that uses `std::fs` must be told the dir itself: the
    /// current dir is shared by the test threads.
    pub fn build_dir(mut self, dir: impl Into<PathBuf>) -> FakeHost {
        self.host.build_dir = Some(dir.into());
        self
    }

    /// Answers the handler's HTTP requests (redirects are not followed).
    /// An `Err` is the request's error (e.g. [`Error::Io`] for a service
    /// that is down). The closure may call [`cancel`].
    pub fn http(
        mut self,
        f: impl FnMut(&Request) -> Result<Response, Error> + 'static,
    ) -> FakeHost {
        self.host.http = Some(Rc::new(RefCell::new(f)));
        self
    }

    /// Called by each [`sleep`](crate::sleep) with its duration, after it is
    /// recorded, e.g. to [`cancel`] the job at a point of the test: a sleep
    /// during which the job is cancelled returns [`Error::Canceled`].
    pub fn on_sleep(mut self, f: impl FnMut(Duration) + 'static) -> FakeHost {
        self.host.on_sleep = Some(Rc::new(RefCell::new(f)));
        self
    }

    /// Makes this the host of the current thread, replacing the one it
    /// had and its records. Panics if a dependency's file cannot be
    /// written into the build dir.
    pub fn install(self) {
        if let Some(dir) = &self.host.build_dir {
            for d in &self.host.deps {
                for (name, data) in &d.files {
                    write_file(dir, name, data)
                        .unwrap_or_else(|e| panic!("dependency {}: {}: {}", d.name, name, e));
                }
            }
        }
        with(|h| *h = self.host);
    }
}

/// A collapsible section of the job log: see [`sections`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Section {
    /// The section's name.
    pub name: String,
    /// Its header line.
    pub header: String,
    /// What was written to the log inside it (masked).
    pub log: String,
    /// Whether it was closed.
    pub ended: bool,
}

/// Runs `handler` as the runner runs a job: its `step` with the script
/// lines, then, if the job has `after_script` lines, with those
/// (`CI_JOB_STATUS` is `success`, `failed`, or `canceled` after [`cancel`],
/// and the `after_script` step is not cancelled, as after a graceful
/// cancel), then its `cleanup`. Returns the script step's exit code.
pub fn run<H: Handler + ?Sized>(handler: &mut H) -> i32 {
    let code = step(handler, Phase::Script);
    let after = with(|h| {
        h.status = if h.canceled {
            "canceled"
        } else if code != 0 {
            "failed"
        } else {
            "success"
        };
        h.canceled = false;
        !h.after_script.is_empty()
    });
    if after {
        step(handler, Phase::AfterScript);
    }
    handler.cleanup();
    code
}

/// Runs one step of `handler` with the phase's script lines, as the
/// runner does, and returns its exit code (`Err(0)` counts as 1).
pub fn step<H: Handler + ?Sized>(handler: &mut H, phase: Phase) -> i32 {
    with(|h| h.phase = phase);
    let script = crate::script();
    crate::handler::exit_code(handler.step(&script, phase))
}

/// Sets the phase as the host does before a step (for the crate's tests of
/// its entry points).
#[cfg(test)]
pub(crate) fn set_phase(phase: Phase) {
    with(|h| h.phase = phase)
}

/// Cancels the job: from now on [`is_canceled`](crate::is_canceled) is
/// true, and sleeps and HTTP requests fail with [`Error::Canceled`], until
/// [`run`] moves on to `after_script`.
pub fn cancel() {
    with(|h| h.canceled = true)
}

/// The job log so far, with masked variables' values replaced by
/// `[MASKED]` as the runner does. A section's header shows as a line where
/// the section starts, as in the job log.
pub fn log() -> String {
    with(|h| h.mask(&String::from_utf8_lossy(&h.log)))
}

/// The sections of the job log, in the order they were opened.
pub fn sections() -> Vec<Section> {
    with(|h| {
        h.sections
            .iter()
            .map(|s| Section {
                log: h.mask(&s.log),
                ..s.clone()
            })
            .collect()
    })
}

/// The files added to the job's artifacts, by path, with their content
/// when they were added.
pub fn artifacts() -> BTreeMap<String, Vec<u8>> {
    with(|h| h.artifacts.clone())
}

/// The HTTP requests the handler sent, in order (denied ones too).
pub fn requests() -> Vec<Request> {
    with(|h| h.requests.clone())
}

/// The sleeps the handler asked for (whole milliseconds), in order.
pub fn sleeps() -> Vec<Duration> {
    with(|h| h.sleeps.clone())
}

impl Host {
    fn mask(&self, s: &str) -> String {
        let mut s = s.to_string();
        for (_, value, masked) in &self.vars {
            if *masked && !value.is_empty() {
                s = s.replace(value.as_str(), "[MASKED]");
            }
        }
        s
    }

    fn write_log(&mut self, b: &[u8]) {
        self.log.extend_from_slice(b);
        let text = String::from_utf8_lossy(b);
        for &i in &self.open {
            self.sections[i].log.push_str(&text);
        }
    }

    /// The variables of the running phase: after_script has CI_JOB_STATUS.
    fn vars(&self) -> Vec<(String, String, bool)> {
        let mut vars = self.vars.clone();
        if self.phase == Phase::AfterScript {
            vars.push(("CI_JOB_STATUS".into(), self.status.into(), false));
        }
        vars
    }

    fn find_var(&self, name: &[u8]) -> Option<(String, bool)> {
        self.vars()
            .into_iter()
            .rev()
            .find(|v| v.0.as_bytes() == name)
            .map(|v| (v.1, v.2))
    }

    fn lines(&self) -> &[String] {
        match self.phase {
            Phase::Script => &self.script,
            Phase::AfterScript => &self.after_script,
        }
    }

    fn dep(&self, index: i32) -> Result<&Dep, i32> {
        usize::try_from(index)
            .ok()
            .and_then(|i| self.deps.get(i))
            .ok_or(INVALID)
    }
}

fn out(buf: &mut [u8], data: &[u8]) -> i32 {
    if data.len() <= buf.len() {
        buf[..data.len()].copy_from_slice(data);
    }
    data.len() as i32
}

fn text(b: &[u8]) -> Result<String, i32> {
    String::from_utf8(b.to_vec()).map_err(|_| INVALID)
}

/// A relative path inside the build dir, as the host accepts for
/// artifacts.
fn relative_path(b: &[u8]) -> Result<String, i32> {
    let p = text(b)?;
    if p.is_empty() || p.starts_with('/') || p.split('/').any(|c| c == "..") {
        return Err(INVALID);
    }
    Ok(p)
}

fn write_file(dir: &Path, name: &str, data: &[u8]) -> std::io::Result<()> {
    let path = dir.join(name);
    if let Some(parent) = path.parent() {
        std::fs::create_dir_all(parent)?;
    }
    std::fs::write(path, data)
}

// The host functions, called by sys.rs outside WebAssembly.

pub(crate) fn log_write(b: &[u8]) -> i32 {
    if b.len() > crate::MAX_LOG_WRITE {
        return TOO_LARGE;
    }
    with(|h| h.write_log(b));
    0
}

pub(crate) fn log_line(b: &[u8]) -> i32 {
    if b.len() > crate::MAX_LOG_WRITE {
        return TOO_LARGE;
    }
    let mut line = b.to_vec();
    line.push(b'\n');
    with(|h| h.write_log(&line));
    0
}

pub(crate) fn section_start(name: &[u8], header: &[u8]) -> i32 {
    let (name, header) = match (text(name), text(header)) {
        (Ok(n), Ok(h)) if !n.is_empty() => (n, h),
        _ => return INVALID,
    };
    with(|h| {
        h.log.extend_from_slice(header.as_bytes());
        h.log.push(b'\n');
        h.sections.push(Section {
            name,
            header,
            log: String::new(),
            ended: false,
        });
        h.open.push(h.sections.len() - 1);
    });
    0
}

pub(crate) fn section_end(name: &[u8]) -> i32 {
    with(|h| {
        let pos = h
            .open
            .iter()
            .rposition(|&i| h.sections[i].name.as_bytes() == name);
        match pos {
            Some(j) => {
                let i = h.open.remove(j);
                h.sections[i].ended = true;
                0
            }
            None => NOT_FOUND,
        }
    })
}

pub(crate) fn job_id() -> i64 {
    with(|h| h.job_id)
}

pub(crate) fn job_project_id() -> i64 {
    with(|h| h.project_id)
}

pub(crate) fn job_timeout() -> i64 {
    with(|h| h.timeout_secs)
}

pub(crate) fn job_string(field: i32, buf: &mut [u8]) -> i32 {
    with(
        |h| match usize::try_from(field).ok().and_then(|f| h.strings.get(f)) {
            Some(s) => out(buf, s.as_bytes()),
            None => NOT_FOUND,
        },
    )
}

pub(crate) fn phase() -> i32 {
    with(|h| h.phase.code())
}

pub(crate) fn script_count() -> i32 {
    with(|h| h.lines().len() as i32)
}

pub(crate) fn script_line(index: i32, buf: &mut [u8]) -> i32 {
    with(
        |h| match usize::try_from(index).ok().and_then(|i| h.lines().get(i)) {
            Some(line) => out(buf, line.as_bytes()),
            None => INVALID,
        },
    )
}

pub(crate) fn var_get(name: &[u8], buf: &mut [u8]) -> i32 {
    with(|h| match h.find_var(name) {
        Some((value, _)) => out(buf, value.as_bytes()),
        None => NOT_FOUND,
    })
}

pub(crate) fn var_masked(name: &[u8]) -> i32 {
    with(|h| match h.find_var(name) {
        Some((_, masked)) => masked as i32,
        None => NOT_FOUND,
    })
}

pub(crate) fn var_names(buf: &mut [u8]) -> i32 {
    with(|h| {
        let mut names: Vec<String> = Vec::new();
        for v in h.vars() {
            if !names.contains(&v.0) {
                names.push(v.0);
            }
        }
        out(buf, names.join("\0").as_bytes())
    })
}

pub(crate) fn dep_count() -> i32 {
    with(|h| h.deps.len() as i32)
}

pub(crate) fn dep_id(index: i32) -> i64 {
    with(|h| h.dep(index).map(|d| d.id).unwrap_or_else(i64::from))
}

pub(crate) fn dep_name(index: i32, buf: &mut [u8]) -> i32 {
    with(|h| match h.dep(index) {
        Ok(d) => out(buf, d.name.as_bytes()),
        Err(e) => e,
    })
}

pub(crate) fn dep_files(index: i32, buf: &mut [u8]) -> i32 {
    with(|h| match h.dep(index) {
        Ok(d) if d.files.is_empty() => NOT_FOUND,
        Ok(d) => {
            let names: Vec<&str> = d.files.iter().map(|f| f.0.as_str()).collect();
            out(buf, names.join("\0").as_bytes())
        }
        Err(e) => e,
    })
}

fn dep_file(index: i32, name: &[u8]) -> Result<Vec<u8>, i32> {
    with(|h| {
        h.dep(index)?
            .files
            .iter()
            .find(|f| f.0.as_bytes() == name)
            .map(|f| f.1.clone())
            .ok_or(NOT_FOUND)
    })
}

pub(crate) fn dep_file_size(index: i32, name: &[u8]) -> i64 {
    match dep_file(index, name) {
        Ok(data) => data.len() as i64,
        Err(e) => e.into(),
    }
}

pub(crate) fn dep_read(index: i32, name: &[u8], offset: i64, buf: &mut [u8]) -> i32 {
    let data = match dep_file(index, name) {
        Ok(data) => data,
        Err(e) => return e,
    };
    let off = match usize::try_from(offset) {
        Ok(o) => o,
        Err(_) => return INVALID,
    };
    if off >= data.len() {
        return 0;
    }
    let n = buf.len().min(data.len() - off).min(MAX_READ);
    buf[..n].copy_from_slice(&data[off..off + n]);
    n as i32
}

pub(crate) fn artifact_add_file(path: &[u8]) -> i32 {
    let p = match relative_path(path) {
        Ok(p) => p,
        Err(e) => return e,
    };
    let full = match with(|h| h.build_dir.clone()) {
        Some(dir) => dir.join(&p),
        None => PathBuf::from(&p),
    };
    match std::fs::read(full) {
        Ok(data) => with(|h| {
            h.artifacts.insert(p, data);
            0
        }),
        Err(_) => NOT_FOUND,
    }
}

pub(crate) fn artifact_add_data(name: &[u8], data: &[u8]) -> i32 {
    let p = match relative_path(name) {
        Ok(p) => p,
        Err(e) => return e,
    };
    if let Some(dir) = with(|h| h.build_dir.clone()) {
        if write_file(&dir, &p, data).is_err() {
            return IO;
        }
    }
    with(|h| {
        h.artifacts.insert(p, data.to_vec());
        0
    })
}

pub(crate) fn sleep_ms(millis: i64) -> i32 {
    let ms = match u64::try_from(millis) {
        Ok(ms) => ms,
        Err(_) => return INVALID,
    };
    let hook = with(|h| {
        if h.canceled {
            return Err(CANCELED);
        }
        h.sleeps.push(Duration::from_millis(ms));
        Ok(h.on_sleep.clone())
    });
    match hook {
        Err(e) => e,
        Ok(hook) => {
            if let Some(f) = hook {
                (f.borrow_mut())(Duration::from_millis(ms));
            }
            if is_canceled() == 1 {
                CANCELED
            } else {
                0
            }
        }
    }
}

pub(crate) fn is_canceled() -> i32 {
    with(|h| h.canceled as i32)
}

pub(crate) fn http_request(req: &[u8], buf: &mut [u8]) -> i32 {
    let decoded = decode_request(req);
    let (responder, canceled) = with(|h| {
        h.response = None;
        if let Some(r) = &decoded {
            h.requests.push(r.clone());
        }
        (h.http.clone(), h.canceled)
    });
    let req = match decoded {
        Some(r) => r,
        None => return INVALID,
    };
    if canceled {
        return CANCELED;
    }
    let responder = match responder {
        Some(f) => f,
        None => {
            let _ = log_line(
                b"wasmrunner: http_request: denied: the fake host answers no HTTP (FakeHost::http)",
            );
            return DENIED;
        }
    };
    let result = (responder.borrow_mut())(&req);
    match result {
        Ok(resp) => {
            let raw = encode_response(&resp);
            with(|h| {
                let n = out(buf, &raw);
                h.response = Some(raw);
                n
            })
        }
        Err(e) => e.code(),
    }
}

pub(crate) fn http_response(buf: &mut [u8]) -> i32 {
    with(|h| match &h.response {
        Some(resp) => out(buf, resp),
        None => NOT_FOUND,
    })
}

/// Decodes a request in the ABI's format (see [`Request::encode`]).
fn decode_request(raw: &[u8]) -> Option<Request> {
    let end = raw.windows(4).position(|w| w == b"\r\n\r\n")?;
    let head = std::str::from_utf8(&raw[..end]).ok()?;
    let mut lines = head.split("\r\n");
    let (method, url) = lines.next()?.split_once(' ')?;
    let mut req = Request::new(method, url);
    for line in lines {
        let (name, value) = line.split_once(':')?;
        req.headers
            .push((name.to_string(), value.trim_start().to_string()));
    }
    req.body = raw[end + 4..].to_vec();
    Some(req)
}

/// Encodes a response in the ABI's format; status 0 is 200.
fn encode_response(resp: &Response) -> Vec<u8> {
    let status = if resp.status == 0 { 200 } else { resp.status };
    let mut out = format!("{}\r\n", status).into_bytes();
    let mut headers = resp.headers.clone();
    headers.sort_by(|a, b| a.0.cmp(&b.0));
    for (name, value) in headers {
        out.extend_from_slice(format!("{}: {}\r\n", name, value).as_bytes());
    }
    out.extend_from_slice(b"\r\n");
    out.extend_from_slice(&resp.body);
    out
}
