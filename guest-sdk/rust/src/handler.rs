//! The module's entry points and the handler they call.

use std::cell::RefCell;
use std::collections::HashMap;
use std::ffi::OsStr;
#[cfg(unix)]
use std::os::unix::ffi::OsStrExt;
#[cfg(target_os = "wasi")]
use std::os::wasi::ffi::OsStrExt;

use crate::{sys, Phase};

/// A job handler: what a wasmrunner module does with a job's steps.
///
/// Register one with [`register_handler!`](crate::register_handler). The
/// engine creates a fresh instance of the module for each job and calls
/// [`step`](Handler::step) for the job's `script`, then for its
/// `after_script` (also after a failure, a cancel or a timeout), then
/// [`cleanup`](Handler::cleanup) once. The handler value lives for the
/// whole job, so it can keep state between the steps.
///
/// ```
/// use wasmrunner::{outputln, Handler, Phase};
///
/// struct Echo;
///
/// impl Handler for Echo {
///     fn step(&mut self, script: &[String], phase: Phase) -> Result<(), i32> {
///         for line in script {
///             outputln!("{:?}: {}", phase, line);
///         }
///         Ok(())
///     }
/// }
///
/// wasmrunner::register_handler!(Echo);
/// ```
pub trait Handler {
    /// Runs one step with its script lines. `Ok(())` is success; `Err(code)`
    /// fails the step with exit code `code` (0 counts as 1). A failed
    /// `script` fails the job; `after_script`'s result is only logged.
    fn step(&mut self, script: &[String], phase: Phase) -> Result<(), i32>;

    /// Called once after the last step, also after a cancel or a timeout.
    /// The default does nothing.
    fn cleanup(&mut self) {}
}

thread_local! {
    static HANDLER: RefCell<Option<Box<dyn Handler>>> = RefCell::new(None);
}

/// Runs a step for the `wasmrunner_step` export: makes the handler the
/// first time, fetches the script lines, and turns the result into an
/// exit code.
pub(crate) fn step<H: Handler + 'static>(phase: i32, make: impl FnOnce() -> H) -> i32 {
    let phase = match Phase::from_code(phase) {
        Some(p) => p,
        None => {
            let _ = crate::log_line(&format!("wasmrunner: unknown phase {}", phase));
            return 1;
        }
    };
    refresh_env();
    let script = crate::script();
    HANDLER.with(|cell| {
        let mut slot = cell.borrow_mut();
        let h = slot.get_or_insert_with(|| Box::new(make()));
        exit_code(h.step(&script, phase))
    })
}

/// The exit code of a step's result: `Err(0)` counts as a failure.
pub(crate) fn exit_code(r: Result<(), i32>) -> i32 {
    match r {
        Ok(()) => 0,
        Err(0) => 1,
        Err(code) => code,
    }
}

thread_local! {
    /// The host's environment when the module started (see
    /// [`__private::initialize`]): what the C library read, until the
    /// first step has compared it with that step's.
    static START_ENV: RefCell<Option<Vec<u8>>> = RefCell::new(None);
}

/// Makes the process environment (`std::env`) the host's environment of
/// this step: the C library reads it once, when first asked, but it changes
/// between steps (after_script has `CI_JOB_STATUS`).
///
/// Every job pays for it, with 60 to 100 variables, so this does as little
/// as it can (a loop iteration in WebAssembly costs several times what it
/// does natively): at the first step the
/// environment is almost always the one the module started with (compared
/// eight bytes at a time), and otherwise it changes only what differs, one
/// pass over each side (`setenv` scans the whole environment on each call:
/// setting every variable was quadratic).
fn refresh_env() {
    let block = match sys::environ() {
        Some(b) => b,
        None => return,
    };
    if let Some(start) = START_ENV.with(|s| s.borrow_mut().take()) {
        if same_bytes(&start, &block) {
            return;
        }
    }
    let mut now: HashMap<&[u8], &[u8]> = HashMap::new();
    for entry in block.split(|&b| b == 0) {
        if let Some(eq) = entry.iter().position(|&b| b == b'=') {
            if eq > 0 {
                now.insert(&entry[..eq], &entry[eq + 1..]);
            }
        }
    }
    for (k, v) in std::env::vars_os() {
        match now.get(k.as_bytes()) {
            Some(new) if *new == v.as_bytes() => {
                now.remove(k.as_bytes());
            }
            Some(_) => {}
            None => std::env::remove_var(&k),
        }
    }
    for (k, v) in now {
        std::env::set_var(OsStr::from_bytes(k), OsStr::from_bytes(v));
    }
}

/// Whether a and b hold the same bytes, compared a word at a time (`==` on
/// slices compares a byte at a time in WebAssembly without SIMD).
fn same_bytes(a: &[u8], b: &[u8]) -> bool {
    if a.len() != b.len() {
        return false;
    }
    let (wa, wb) = (a.chunks_exact(8), b.chunks_exact(8));
    let (ra, rb) = (wa.remainder(), wb.remainder());
    wa.zip(wb).all(|(x, y)| {
        u64::from_ne_bytes([x[0], x[1], x[2], x[3], x[4], x[5], x[6], x[7]])
            == u64::from_ne_bytes([y[0], y[1], y[2], y[3], y[4], y[5], y[6], y[7]])
    }) && ra == rb
}

/// Runs the `wasmrunner_cleanup` export: cleans up and drops the handler.
pub(crate) fn cleanup() {
    let h = HANDLER.with(|cell| cell.borrow_mut().take());
    if let Some(mut h) = h {
        h.cleanup();
    }
}

/// Glue for [`register_handler!`](crate::register_handler); not part of
/// the API.
#[doc(hidden)]
pub mod __private {
    use super::Handler;

    pub fn initialize() {
        super::sys::call_ctors();
        let env = super::sys::environ();
        super::START_ENV.with(|s| *s.borrow_mut() = env);
    }

    pub fn step<H: Handler + 'static>(phase: i32, make: impl FnOnce() -> H) -> i32 {
        super::step(phase, make)
    }

    pub fn cleanup() {
        super::cleanup()
    }
}

/// Registers the module's [`Handler`]: emits the module's exports
/// `wasmrunner_step`, `wasmrunner_cleanup` and `_initialize` (the reactor
/// initializer, which runs the static constructors once) so that the
/// engine drives the handler. Use it once, at the top level of a `cdylib`
/// crate built for `wasm32-wasi`.
///
/// The argument is an expression making the handler, or a closure
/// without parameters returning one. Either is evaluated once per job,
/// when the first step starts.
///
/// ```
/// use wasmrunner::{Handler, Phase};
///
/// #[derive(Default)]
/// struct Counter {
///     lines: usize,
/// }
///
/// impl Handler for Counter {
///     fn step(&mut self, script: &[String], _phase: Phase) -> Result<(), i32> {
///         self.lines += script.len();
///         wasmrunner::outputln!("{} lines so far", self.lines);
///         Ok(())
///     }
///
///     fn cleanup(&mut self) {
///         wasmrunner::outputln!("ran {} lines", self.lines);
///     }
/// }
///
/// wasmrunner::register_handler!(|| Counter::default());
/// ```
#[macro_export]
macro_rules! register_handler {
    (@emit $make:expr) => {
        /// The reactor initializer: runs the static constructors once.
        #[cfg(target_arch = "wasm32")]
        #[no_mangle]
        pub extern "C" fn _initialize() {
            $crate::__private::initialize()
        }

        /// Runs one step of the job (0 script, 1 after_script) and
        /// returns its exit code.
        #[no_mangle]
        pub extern "C" fn wasmrunner_step(phase: i32) -> i32 {
            $crate::__private::step(phase, || $make)
        }

        /// Called once after the last step.
        #[no_mangle]
        pub extern "C" fn wasmrunner_cleanup() {
            $crate::__private::cleanup()
        }
    };
    (|| $make:expr) => {
        $crate::register_handler!(@emit $make);
    };
    (move || $make:expr) => {
        $crate::register_handler!(@emit $make);
    };
    ($make:expr) => {
        $crate::register_handler!(@emit $make);
    };
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testing::{self, FakeHost};

    struct Rec {
        steps: Vec<(Vec<String>, Phase)>,
        fail: Option<i32>,
    }

    impl Handler for Rec {
        fn step(&mut self, script: &[String], phase: Phase) -> Result<(), i32> {
            self.steps.push((script.to_vec(), phase));
            crate::outputln!("step {} with {} lines", self.steps.len(), script.len());
            match self.fail {
                Some(c) => Err(c),
                None => Ok(()),
            }
        }
        fn cleanup(&mut self) {
            crate::outputln!("cleanup after {} steps", self.steps.len());
        }
    }

    #[test]
    fn steps_share_one_handler() {
        FakeHost::new()
            .script(["a", "b"])
            .after_script(["c"])
            .install();
        let mut made = 0;
        assert_eq!(
            step(0, || {
                made += 1;
                Rec {
                    steps: vec![],
                    fail: None,
                }
            }),
            0
        );
        testing::set_phase(Phase::AfterScript); // as the host does
        assert_eq!(
            step(1, || {
                made += 1;
                Rec {
                    steps: vec![],
                    fail: None,
                }
            }),
            0
        );
        assert_eq!(made, 1);
        cleanup();
        cleanup(); // a second cleanup has nothing to do
        let log = testing::log();
        assert_eq!(
            log,
            "step 1 with 2 lines\nstep 2 with 1 lines\ncleanup after 2 steps\n"
        );
    }

    #[test]
    fn exit_codes() {
        FakeHost::new().install();
        assert_eq!(
            step(0, || Rec {
                steps: vec![],
                fail: Some(3)
            }),
            3
        );
        cleanup();
        assert_eq!(
            step(0, || Rec {
                steps: vec![],
                fail: Some(0)
            }),
            1
        );
        cleanup();
        assert_eq!(
            step(7, || Rec {
                steps: vec![],
                fail: None
            }),
            1
        );
        let log = testing::log();
        assert!(log.ends_with("wasmrunner: unknown phase 7\n"), "{}", log);
    }
}
