//! The Rust SDK for [wasmrunner] job handlers: WebAssembly modules that run
//! GitLab CI jobs inside wasmrunner, a GitLab runner.
//!
//! A handler is a `cdylib` crate built for `wasm32-wasi` that implements
//! [`Handler`] and registers it with [`register_handler!`]:
//!
//! ```
//! use wasmrunner::{outputln, Handler, Phase};
//!
//! struct Greeter;
//!
//! impl Handler for Greeter {
//!     fn step(&mut self, script: &[String], _phase: Phase) -> Result<(), i32> {
//!         let who = wasmrunner::var("GITLAB_USER_NAME").unwrap_or_else(|| "world".into());
//!         for line in script {
//!             outputln!("hello {who}: {line}");
//!         }
//!         Ok(())
//!     }
//! }
//!
//! wasmrunner::register_handler!(Greeter);
//! ```
//!
//! ```toml
//! [lib]
//! crate-type = ["cdylib"]
//!
//! [dependencies]
//! wasmrunner = { path = "guest-sdk/rust" }
//! ```
//!
//! Build it with `cargo build --release --target wasm32-wasi` (add
//! `RUSTFLAGS="-C link-arg=-zstack-size=65536"`: a 64 KiB stack instead of
//! 1 MiB makes every job's instance several times cheaper to start) and
//! drop the `.wasm` into the runner's modules dir: jobs whose `image:` is
//! the file's name run in it.
//!
//! The rest of the crate wraps the host functions of the guest ABI
//! (import module `wasmrunner:host/v1`, described in the repository's
//! `docs/abi.md`): the job log and its sections ([`outputln!`],
//! [`section`]), the job's fields and variables ([`job()`], [`var`],
//! [`variables`]), the dependencies' artifacts ([`dependencies`]), the
//! job's own artifacts ([`add_artifact_file`], [`add_artifact_data`]),
//! cancellation ([`is_canceled`], [`sleep`]) and HTTP to the hosts the
//! handler's manifest allows ([`http`]). Leveled records ([`info!`],
//! [`warn!`], [`error!`], [`debug!`], [`trace!`], module [`logging`])
//! reach the job log from anywhere in the handler's code, formatted as
//! the runner formats Go handlers' `log/slog` records. Failures of the host come back as
//! [`Error`] values.
//!
//! The module's file system is the job's build dir, mounted at `/`:
//! `std::fs` reads and writes it with relative or absolute paths. Its
//! standard output and standard error go to the job log too.
//!
//! Outside WebAssembly (`cargo test` on the build machine) the crate talks
//! to an in-process fake host, which a handler's unit tests set up with
//! [`testing::FakeHost`]: the job's script, variables and dependencies, an
//! HTTP responder, cancellation; [`testing::run`] runs the handler as the
//! runner does and [`testing::log`] and its siblings tell what it did.
//!
//! ```
//! # use wasmrunner::{outputln, Handler, Phase};
//! # struct Greeter;
//! # impl Handler for Greeter {
//! #     fn step(&mut self, script: &[String], _phase: Phase) -> Result<(), i32> {
//! #         let who = wasmrunner::var("GITLAB_USER_NAME").unwrap_or_else(|| "world".into());
//! #         for line in script { outputln!("hello {who}: {line}"); }
//! #         Ok(())
//! #     }
//! # }
//! // tests.rs, or a #[cfg(test)] module of the handler's crate
//! use wasmrunner::testing::{self, FakeHost};
//!
//! # fn main() {
//! // #[test]
//! // fn greets() {
//!     FakeHost::new().script(["build"]).var("GITLAB_USER_NAME", "ada").install();
//!     assert_eq!(testing::run(&mut Greeter), 0);
//!     assert_eq!(testing::log(), "hello ada: build\n");
//! // }
//! # }
//! ```
//!
//! [wasmrunner]: https://github.com/wasmrunner/wasmrunner

#![warn(missing_docs)]
#![deny(unsafe_op_in_unsafe_fn)]

mod buf;
mod deps;
mod error;
mod handler;
pub mod http;
mod job;
#[doc(hidden)]
pub mod log;
pub mod logging;
mod sys;
#[cfg(not(target_arch = "wasm32"))]
pub mod testing;

use std::time::Duration;

pub use deps::{dependencies, DepFile, Dependency};
pub use error::Error;
#[doc(hidden)]
pub use handler::__private;
pub use handler::Handler;
pub use job::{job, phase, script, var, var_masked, var_names, variables, Job, Phase, Variable};
pub use log::{log_line, log_write, section, section_end, section_start, Log, MAX_LOG_WRITE};

use error::status;

/// Adds a file of the build dir (a path relative to it) to the job's
/// artifacts archive, in addition to what the job's `artifacts:paths`
/// select. [`Error::NotFound`] if it does not exist, [`Error::Invalid`]
/// for an absolute path or one leaving the build dir.
///
/// ```
/// std::fs::write("report.txt", "all good\n").unwrap();
/// wasmrunner::add_artifact_file("report.txt").unwrap();
/// # std::fs::remove_file("report.txt").unwrap();
/// ```
pub fn add_artifact_file(path: &str) -> Result<(), Error> {
    status(sys::artifact_add_file(path.as_bytes()))
}

/// Writes `data` to the build dir file `name` (a relative path; missing
/// parent dirs are made) and adds it to the job's artifacts.
///
/// ```
/// wasmrunner::add_artifact_data("out/summary.json", br#"{"passed": 12}"#).unwrap();
/// ```
pub fn add_artifact_data(name: &str, data: &[u8]) -> Result<(), Error> {
    status(sys::artifact_add_data(name.as_bytes(), data))
}

/// Whether the running step should stop: the job was cancelled or timed
/// out. A handler that notices returns soon; after a grace period (1 s by
/// default) the runner interrupts it wherever it is.
///
/// ```
/// for chunk in 0..100 {
///     if wasmrunner::is_canceled() {
///         wasmrunner::outputln!("stopping after {chunk} chunks");
///         break;
///     }
///     // ... work on the chunk
/// }
/// ```
pub fn is_canceled() -> bool {
    sys::is_canceled() == 1
}

/// Sleeps for `d` (whole milliseconds, rounded up), or until the job is
/// cancelled or times out: then [`Error::Canceled`].
///
/// ```
/// use std::time::Duration;
///
/// match wasmrunner::sleep(Duration::from_millis(1500)) {
///     Ok(()) => wasmrunner::outputln!("polling again"),
///     Err(wasmrunner::Error::Canceled) => wasmrunner::outputln!("cancelled"),
///     Err(e) => wasmrunner::outputln!("sleep: {e}"),
/// }
/// ```
pub fn sleep(d: Duration) -> Result<(), Error> {
    let mut ms = d.as_millis();
    if d.subsec_nanos() % 1_000_000 != 0 {
        ms += 1;
    }
    status(sys::sleep_ms(i64::try_from(ms).unwrap_or(i64::MAX)))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn artifacts() {
        let dir = std::env::temp_dir().join(format!("wasmrunner-sdk-test-{}", std::process::id()));
        testing::FakeHost::new()
            .build_dir(&dir)
            .dependency(1, "dep", [("in/a.txt", "from the dependency")])
            .install();
        add_artifact_file("in/a.txt").unwrap();
        add_artifact_data("b.bin", &[1, 2, 3]).unwrap();
        assert_eq!(std::fs::read(dir.join("b.bin")).unwrap(), vec![1, 2, 3]);
        assert_eq!(add_artifact_file("/etc/passwd"), Err(Error::Invalid));
        assert_eq!(add_artifact_file("a/../../x"), Err(Error::Invalid));
        assert_eq!(add_artifact_file("missing"), Err(Error::NotFound));
        let arts: Vec<(String, Vec<u8>)> = testing::artifacts().into_iter().collect();
        assert_eq!(
            arts,
            vec![
                ("b.bin".to_string(), vec![1, 2, 3]),
                ("in/a.txt".to_string(), b"from the dependency".to_vec()),
            ]
        );
        std::fs::remove_dir_all(dir).unwrap();
    }

    #[test]
    fn sleeping() {
        let calls = std::rc::Rc::new(std::cell::Cell::new(0));
        let seen = calls.clone();
        testing::FakeHost::new()
            .on_sleep(move |d| {
                seen.set(seen.get() + 1);
                if d == Duration::from_secs(60) {
                    testing::cancel();
                }
            })
            .install();
        sleep(Duration::from_micros(1500)).unwrap();
        sleep(Duration::from_secs(2)).unwrap();
        assert_eq!(
            testing::sleeps(),
            vec![Duration::from_millis(2), Duration::from_secs(2)]
        );
        assert!(!is_canceled());
        assert_eq!(sleep(Duration::from_secs(60)), Err(Error::Canceled));
        assert!(is_canceled());
        assert_eq!(sleep(Duration::from_secs(1)), Err(Error::Canceled));
        assert_eq!(calls.get(), 3);
    }

    #[test]
    fn logging() {
        testing::FakeHost::new().install();
        let n = 3;
        output!("a{}", n);
        output!("b");
        outputln!(" c {n}");
        outputln!();
        section("s1", "Header", || outputln!("inside"));
        log_line(&"x".repeat(MAX_LOG_WRITE + 10)).unwrap();
        let log = testing::log();
        assert!(
            log.starts_with("a3b c 3\n\nHeader\ninside\n"),
            "{:?}",
            &log[..20]
        );
        assert_eq!(
            log.len(),
            "a3b c 3\n\nHeader\ninside\n".len() + MAX_LOG_WRITE + 11
        );
        assert!(log.ends_with("x\n"));
        assert_eq!(
            testing::sections(),
            vec![testing::Section {
                name: "s1".into(),
                header: "Header".into(),
                log: "inside\n".into(),
                ended: true
            }]
        );
    }

    #[test]
    fn errors() {
        for code in -9..0 {
            assert_eq!(Error::from_code(code).code(), code);
        }
        assert_eq!(Error::from_code(-42), Error::Unknown(-42));
        assert_eq!(Error::Unknown(-42).to_string(), "unknown error -42");
        let e: std::io::Error = Error::NotFound.into();
        assert_eq!(e.kind(), std::io::ErrorKind::NotFound);
        let boxed: Box<dyn std::error::Error> = Box::new(Error::Io);
        assert_eq!(boxed.to_string(), "i/o error");
    }
}
