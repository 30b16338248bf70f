//! The job log.

use std::fmt;
use std::io;

use crate::error::status;
use crate::{sys, Error};

/// The most bytes the host takes in one log call.
pub const MAX_LOG_WRITE: usize = 1 << 20;

/// Appends bytes to the job log, as they are (no newline added).
///
/// The runner masks secrets (masked variables, GitLab tokens) in
/// everything written to the log. Writes larger than the host's limit of
/// one call ([`MAX_LOG_WRITE`]) are split.
///
/// ```
/// wasmrunner::log_write(b"progress: 50%\r").unwrap();
/// ```
pub fn log_write(b: &[u8]) -> Result<(), Error> {
    for chunk in b.chunks(MAX_LOG_WRITE) {
        status(sys::log_write(chunk))?;
    }
    Ok(())
}

/// Appends a line (the text and a newline) to the job log.
///
/// ```
/// wasmrunner::log_line("Compiling...").unwrap();
/// ```
pub fn log_line(s: &str) -> Result<(), Error> {
    let b = s.as_bytes();
    if b.len() <= MAX_LOG_WRITE {
        return status(sys::log_line(b));
    }
    // All but the last chunk, then the last one with the newline.
    let last = (b.len() - 1) / MAX_LOG_WRITE * MAX_LOG_WRITE;
    log_write(&b[..last])?;
    status(sys::log_line(&b[last..]))
}

#[doc(hidden)]
pub fn write_fmt(args: fmt::Arguments<'_>) {
    match args.as_str() {
        Some(s) => {
            let _ = log_write(s.as_bytes());
        }
        None => {
            let _ = log_write(fmt::format(args).as_bytes());
        }
    }
}

#[doc(hidden)]
pub fn line_fmt(args: fmt::Arguments<'_>) {
    match args.as_str() {
        Some(s) => {
            let _ = log_line(s);
        }
        None => {
            let _ = log_line(&fmt::format(args));
        }
    }
}

/// Writes formatted text to the job log, like `print!`.
///
/// Errors of the host are ignored, as `print!` ignores a closed stdout
/// (use [`log_write`] to see them).
///
/// ```
/// let done = 3;
/// wasmrunner::output!("{done} of 10 done\r");
/// ```
#[macro_export]
macro_rules! output {
    ($($arg:tt)*) => {
        $crate::log::write_fmt(::std::format_args!($($arg)*))
    };
}

/// Writes a formatted line to the job log, like `println!`.
///
/// ```
/// let name = "build";
/// wasmrunner::outputln!("Running {name}");
/// wasmrunner::outputln!();
/// ```
#[macro_export]
macro_rules! outputln {
    () => {
        $crate::log::line_fmt(::std::format_args!(""))
    };
    ($($arg:tt)*) => {
        $crate::log::line_fmt(::std::format_args!($($arg)*))
    };
}

/// The job log as a [`std::io::Write`], for code that writes to any
/// writer. Every `write` is one host call: wrap it in a
/// [`std::io::BufWriter`] for many small writes.
///
/// ```
/// use std::io::Write;
///
/// let mut log = wasmrunner::Log;
/// writeln!(log, "{} files", 42).unwrap();
/// ```
#[derive(Debug, Clone, Copy, Default)]
pub struct Log;

impl io::Write for Log {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        let n = buf.len().min(MAX_LOG_WRITE);
        status(sys::log_write(&buf[..n]))?;
        Ok(n)
    }

    fn write_all(&mut self, buf: &[u8]) -> io::Result<()> {
        log_write(buf).map_err(io::Error::from)
    }

    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

/// Opens a collapsible section of the job log named `name` (letters,
/// digits, `_`, `.`, `-`) with a header line. Close it with
/// [`section_end`], or use [`section`].
///
/// ```
/// wasmrunner::section_start("deps", "Fetching dependencies").unwrap();
/// wasmrunner::outputln!("...");
/// wasmrunner::section_end("deps").unwrap();
/// ```
pub fn section_start(name: &str, header: &str) -> Result<(), Error> {
    status(sys::section_start(name.as_bytes(), header.as_bytes()))
}

/// Closes the section opened with [`section_start`].
pub fn section_end(name: &str) -> Result<(), Error> {
    status(sys::section_end(name.as_bytes()))
}

/// Runs `f` inside a collapsible section of the job log and returns its
/// result. The section is closed however `f` returns (not if it panics:
/// a panic ends the job).
///
/// ```
/// let n = wasmrunner::section("compile", "Compiling", || {
///     wasmrunner::outputln!("cc -c main.c");
///     1
/// });
/// assert_eq!(n, 1);
/// ```
pub fn section<T>(name: &str, header: &str, f: impl FnOnce() -> T) -> T {
    let _ = section_start(name, header);
    let r = f();
    let _ = section_end(name);
    r
}
