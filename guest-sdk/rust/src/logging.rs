//! Leveled records in the job log, in the style of the `log` crate's
//! facade and with no dependency: [`error!`](crate::error!),
//! [`warn!`](crate::warn!), [`info!`](crate::info!),
//! [`debug!`](crate::debug!) and [`trace!`](crate::trace!) write one line
//! each to the job log, so code deep in a handler (or a module of its
//! crate) logs without a job handle:
//!
//! ```
//! # wasmrunner::testing::FakeHost::new().install();
//! let lab = "hw-7";
//! wasmrunner::info!("submitting to {lab}");
//! wasmrunner::warn!(lab = lab, attempt = 2; "lab busy, retrying");
//! assert_eq!(
//!     wasmrunner::testing::log(),
//!     "\x1b[36;1mINFO\x1b[0;m submitting to hw-7\n\
//!      \x1b[33;1mWARN\x1b[0;m lab busy, retrying lab=hw-7 attempt=2\n"
//! );
//! ```
//!
//! A record is one line, formatted as the runner formats the `log/slog`
//! records of Go handlers: the level (coloured for GitLab's log view),
//! the message, and `key = value` pairs (given before a `;`) as
//! `key=value`, values quoted when they hold spaces, `=`, quotes or
//! control characters. No time is written: GitLab timestamps job log
//! lines itself. The runner masks records like all output, and they count
//! against the handler's `limits.log`.
//!
//! Records below the maximum level ([`set_max_level`], default
//! [`Level::Info`]) are skipped without formatting their arguments.

use std::cell::Cell;
use std::fmt::{self, Write as _};

use crate::log::log_write;

/// The level of a record, from the most to the least severe.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Level {
    /// Something failed.
    Error = 1,
    /// Something may need attention.
    Warn,
    /// What happens, at a pace a reader follows.
    Info,
    /// Details for whoever debugs the handler.
    Debug,
    /// Even more details.
    Trace,
}

impl Level {
    /// The level's name as records show it: `ERROR`, `WARN`, `INFO`,
    /// `DEBUG`, `TRACE`.
    pub fn as_str(self) -> &'static str {
        match self {
            Level::Error => "ERROR",
            Level::Warn => "WARN",
            Level::Info => "INFO",
            Level::Debug => "DEBUG",
            Level::Trace => "TRACE",
        }
    }

    fn colour(self) -> &'static str {
        match self {
            Level::Error => "\x1b[31;1m",
            Level::Warn => "\x1b[33;1m",
            Level::Info => "\x1b[36;1m",
            Level::Debug | Level::Trace => "\x1b[0;90m",
        }
    }
}

impl fmt::Display for Level {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

thread_local! {
    // One per thread: a guest has one; tests run on several.
    static MAX_LEVEL: Cell<Level> = Cell::new(Level::Info);
}

/// Sets the least severe level written: `set_max_level(Level::Debug)`
/// lets debug records through, `Level::Error` keeps only errors.
pub fn set_max_level(level: Level) {
    MAX_LEVEL.with(|l| l.set(level));
}

/// The least severe level written.
pub fn max_level() -> Level {
    MAX_LEVEL.with(|l| l.get())
}

/// Whether records of `level` are written.
pub fn enabled(level: Level) -> bool {
    level <= max_level()
}

/// Formats a record as its job log line (with the newline).
pub fn format_record(level: Level, args: fmt::Arguments<'_>, kvs: &[(&str, &dyn fmt::Display)]) -> String {
    let mut line = String::with_capacity(64);
    line.push_str(level.colour());
    line.push_str(level.as_str());
    line.push_str("\x1b[0;m");
    let msg = match args.as_str() {
        Some(s) => s.to_string(),
        None => fmt::format(args),
    };
    let msg = msg.trim_end_matches('\n');
    if !msg.is_empty() {
        line.push(' ');
        line.push_str(msg);
    }
    let mut value = String::new();
    for (key, v) in kvs {
        line.push(' ');
        push_quoted(&mut line, key);
        line.push('=');
        value.clear();
        let _ = write!(value, "{v}");
        push_quoted(&mut line, &value);
    }
    line.push('\n');
    line
}

#[doc(hidden)]
pub fn __record(level: Level, args: fmt::Arguments<'_>, kvs: &[(&str, &dyn fmt::Display)]) {
    // One host call per record: nothing comes between its parts.
    let _ = log_write(format_record(level, args, kvs).as_bytes());
}

/// Appends s, quoted (with Go's escapes, as the runner's records have
/// them) if it is empty or holds a space, '=', a quote or a character
/// that is not printable.
fn push_quoted(out: &mut String, s: &str) {
    let plain = !s.is_empty()
        && s.chars().all(|c| c > ' ' && c != '=' && c != '"' && c != '\u{7f}' && c != '\u{fffd}' && !c.is_control());
    if plain {
        out.push_str(s);
        return;
    }
    out.push('"');
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            '\u{7}' => out.push_str("\\a"),
            '\u{8}' => out.push_str("\\b"),
            '\u{c}' => out.push_str("\\f"),
            '\u{b}' => out.push_str("\\v"),
            c if (c as u32) < 0x20 || c == '\u{7f}' => {
                let _ = write!(out, "\\x{:02x}", c as u32);
            }
            c if c.is_control() => {
                let _ = write!(out, "\\u{:04x}", c as u32);
            }
            c => out.push(c),
        }
    }
    out.push('"');
}

/// Writes a record of a [`Level`] to the job log: `log!(level, "format",
/// args...)` or `log!(level, key = value, ...; "format", args...)`.
/// Values are anything that implements `Display`.
#[macro_export]
macro_rules! log {
    ($level:expr, $($key:ident = $value:expr),+ ; $($arg:tt)+) => {{
        let level = $level;
        if $crate::logging::enabled(level) {
            $crate::logging::__record(
                level,
                ::std::format_args!($($arg)+),
                &[$((::std::stringify!($key), &$value as &dyn ::std::fmt::Display)),+],
            );
        }
    }};
    ($level:expr, $($arg:tt)+) => {{
        let level = $level;
        if $crate::logging::enabled(level) {
            $crate::logging::__record(level, ::std::format_args!($($arg)+), &[]);
        }
    }};
}

/// Writes an error record to the job log; see [`log!`](crate::log!).
#[macro_export]
macro_rules! error {
    ($($arg:tt)+) => { $crate::log!($crate::logging::Level::Error, $($arg)+) };
}

/// Writes a warning record to the job log; see [`log!`](crate::log!).
#[macro_export]
macro_rules! warn {
    ($($arg:tt)+) => { $crate::log!($crate::logging::Level::Warn, $($arg)+) };
}

/// Writes an info record to the job log; see [`log!`](crate::log!).
#[macro_export]
macro_rules! info {
    ($($arg:tt)+) => { $crate::log!($crate::logging::Level::Info, $($arg)+) };
}

/// Writes a debug record to the job log (skipped unless
/// [`set_max_level`](crate::logging::set_max_level) lets it through);
/// see [`log!`](crate::log!).
#[macro_export]
macro_rules! debug {
    ($($arg:tt)+) => { $crate::log!($crate::logging::Level::Debug, $($arg)+) };
}

/// Writes a trace record to the job log (skipped unless
/// [`set_max_level`](crate::logging::set_max_level) lets it through);
/// see [`log!`](crate::log!).
#[macro_export]
macro_rules! trace {
    ($($arg:tt)+) => { $crate::log!($crate::logging::Level::Trace, $($arg)+) };
}

#[cfg(all(test, not(target_arch = "wasm32")))]
mod tests {
    use super::*;
    use crate::testing::{self, FakeHost};

    // The lines of the runner's own job log handler for the same records
    // (engine/joblog_internal_test.go, guest-sdk/go/joblog).
    #[test]
    fn format() {
        FakeHost::new().install();
        crate::info!("submitted");
        crate::warn!("w");
        crate::error!("e");
        assert_eq!(
            testing::log(),
            "\x1b[36;1mINFO\x1b[0;m submitted\n\x1b[33;1mWARN\x1b[0;m w\n\x1b[31;1mERROR\x1b[0;m e\n"
        );
    }

    #[test]
    fn attributes_and_quoting() {
        FakeHost::new().install();
        let wait = "30s";
        crate::info!(lab = "hw-7", attempt = 2, wait = wait, ok = false; "lab busy");
        crate::info!(space = "a b", eq = "a=b", quote = "say \"hi\"", empty = "", nl = "a\nb", esc = "\x1b[31m", uni = "café"; "q");
        crate::info!(k = 1; "");
        crate::info!("line\n\n");
        assert_eq!(
            testing::log(),
            "\x1b[36;1mINFO\x1b[0;m lab busy lab=hw-7 attempt=2 wait=30s ok=false\n\
             \x1b[36;1mINFO\x1b[0;m q space=\"a b\" eq=\"a=b\" quote=\"say \\\"hi\\\"\" empty=\"\" nl=\"a\\nb\" esc=\"\\x1b[31m\" uni=café\n\
             \x1b[36;1mINFO\x1b[0;m k=1\n\
             \x1b[36;1mINFO\x1b[0;m line\n"
        );
    }

    #[test]
    fn levels() {
        FakeHost::new().install();
        let mut formatted = 0;
        let mut count = || {
            formatted += 1;
            formatted
        };
        crate::debug!("hidden {}", count());
        set_max_level(Level::Debug);
        crate::debug!("shown {}", count());
        crate::trace!("hidden");
        set_max_level(Level::Error);
        crate::warn!("hidden");
        crate::log!(Level::Error, "kept");
        set_max_level(Level::Info);
        assert_eq!(testing::log(), "\x1b[0;90mDEBUG\x1b[0;m shown 1\n\x1b[31;1mERROR\x1b[0;m kept\n");
        assert_eq!(formatted, 1, "a skipped record's arguments were evaluated");
    }

    #[test]
    fn masked() {
        FakeHost::new().masked_var("LAB_TOKEN", "t0k3n-very-secret").install();
        let token = crate::var("LAB_TOKEN").unwrap();
        crate::info!(token = token; "connecting");
        assert_eq!(testing::log(), "\x1b[36;1mINFO\x1b[0;m connecting token=[MASKED]\n");
    }
}
