//! `shell`: a tiny POSIX-like shell as a wasmrunner handler.
//!
//! Each script line is a command line, run with builtins only in the
//! job's build dir (the sandbox's `/`). Lines are echoed as GitLab
//! runners do, and the script stops at the first line that fails, as with
//! `set -e`. See README.md for the language and the commands.

mod builtins;
mod parse;

use std::cell::RefCell;
use std::collections::BTreeMap;
use std::fs::{File, OpenOptions};
use std::io::{self, Write};
use std::rc::Rc;

use wasmrunner::{outputln, Handler, Phase};

use crate::parse::{AndOr, Command, Connector, Param, Part, Pipeline, Target, Word};

wasmrunner::register_handler!(ShellHandler::default());

/// The handler: a fresh shell for each step, as GitLab runners run
/// `script` and `after_script` in separate shells.
#[derive(Default)]
struct ShellHandler {
    /// The shells' root (see [`Shell::root`]).
    root: String,
}

impl Handler for ShellHandler {
    fn step(&mut self, script: &[String], _phase: Phase) -> Result<(), i32> {
        let mut sh = Shell::new();
        sh.root = self.root.clone();
        sh.run_script(script)
    }
}

/// The exit status of a shell that was asked to stop: `exit`, or the job
/// being cancelled.
pub(crate) const STATUS_CANCELED: i32 = 130;

/// Control flow out of a command: the shell stops with this status.
#[derive(Debug)]
pub(crate) struct Exit(pub i32);

/// Where a command's output goes.
#[derive(Clone)]
pub(crate) enum Sink {
    /// The job log.
    Log,
    /// Nowhere (`/dev/null`).
    Null,
    File(Rc<RefCell<File>>),
    /// The next command of a pipeline.
    Pipe(Rc<RefCell<Vec<u8>>>),
}

impl Sink {
    pub(crate) fn write_all(&self, b: &[u8]) -> io::Result<()> {
        match self {
            Sink::Log => wasmrunner::log_write(b).map_err(io::Error::from),
            Sink::Null => Ok(()),
            Sink::File(f) => f.borrow_mut().write_all(b),
            Sink::Pipe(p) => {
                p.borrow_mut().extend_from_slice(b);
                Ok(())
            }
        }
    }
}

/// A command's standard input, output and error.
pub(crate) struct Io {
    /// What the previous command of a pipeline wrote; None without a pipe.
    pub stdin: Option<Vec<u8>>,
    pub out: Sink,
    pub err: Sink,
}

impl Io {
    /// Writes to standard output, ignoring errors (like a closed pipe).
    pub(crate) fn print(&self, s: &str) -> bool {
        self.out.write_all(s.as_bytes()).is_ok()
    }

    /// Writes a line to standard error.
    pub(crate) fn error(&self, s: &str) {
        let mut line = String::with_capacity(s.len() + 1);
        line.push_str(s);
        line.push('\n');
        let _ = self.err.write_all(line.as_bytes());
    }
}

/// The state of one shell: a step of the job.
pub(crate) struct Shell {
    /// The working dir: a normalised path relative to the build dir ("" is
    /// the build dir itself).
    pub cwd: String,
    /// `$?`.
    pub status: i32,
    /// Variables set by the script: Some(value), or None once unset
    /// (hiding a job variable of that name).
    pub vars: BTreeMap<String, Option<String>>,
    /// Where the sandbox's `/` is for the file system calls: empty in the
    /// handler, where the build dir is `/`; a temporary dir in unit tests,
    /// which run outside the sandbox.
    pub root: String,
}

impl Shell {
    pub(crate) fn new() -> Shell {
        Shell {
            cwd: String::new(),
            status: 0,
            vars: BTreeMap::new(),
            root: String::new(),
        }
    }

    /// Runs the script lines; Err(status) if one failed.
    fn run_script(&mut self, script: &[String]) -> Result<(), i32> {
        for line in script {
            if wasmrunner::is_canceled() {
                return Err(STATUS_CANCELED);
            }
            match self.run_line(line) {
                Ok(()) => {}
                Err(Exit(0)) => return Ok(()),
                Err(Exit(code)) => return Err(code),
            }
        }
        Ok(())
    }

    /// Echoes and runs one script line (which may hold several lines).
    /// Err when the shell must stop: `exit`, or a failing command (set -e).
    pub(crate) fn run_line(&mut self, line: &str) -> Result<(), Exit> {
        echo_command(line);
        let list = match parse::parse(line) {
            Ok(l) => l,
            Err(msg) => {
                outputln!("shell: syntax error: {msg}");
                self.status = 2;
                return Err(Exit(2));
            }
        };
        for and_or in &list {
            self.run_and_or(and_or)?;
        }
        Ok(())
    }

    /// Runs an and-or list. As with `set -e`, a failure stops the shell
    /// unless it comes from a pipeline on the left of `&&` or `||`, or a
    /// negated one.
    fn run_and_or(&mut self, ao: &AndOr) -> Result<(), Exit> {
        let mut status = self.run_pipeline(&ao.first)?;
        self.status = status;
        let mut checked = ao.rest.is_empty() && !ao.first.negate;
        for (i, (conn, p)) in ao.rest.iter().enumerate() {
            let run = match conn {
                Connector::And => status == 0,
                Connector::Or => status != 0,
            };
            if run {
                status = self.run_pipeline(p)?;
                self.status = status;
                checked = i == ao.rest.len() - 1 && !p.negate;
            }
        }
        if status != 0 && checked {
            return Err(Exit(status));
        }
        Ok(())
    }

    fn run_pipeline(&mut self, p: &Pipeline) -> Result<i32, Exit> {
        let mut stdin = None;
        let mut status = 0;
        let last = p.commands.len() - 1;
        for (i, c) in p.commands.iter().enumerate() {
            let pipe = Rc::new(RefCell::new(Vec::new()));
            let out = if i == last {
                Sink::Log
            } else {
                Sink::Pipe(pipe.clone())
            };
            let io = Io {
                stdin: stdin.take(),
                out,
                err: Sink::Log,
            };
            status = self.run_command(c, io)?;
            if i != last {
                stdin = Some(std::mem::take(&mut *pipe.borrow_mut()));
            }
        }
        if p.negate {
            status = (status == 0) as i32;
        }
        Ok(status)
    }

    fn run_command(&mut self, c: &Command, mut io: Io) -> Result<i32, Exit> {
        // Redirections first, in order, as sh does.
        for r in &c.redirects {
            let sink = match &r.target {
                Target::Dup(1) => io.out.clone(),
                Target::Dup(_) => io.err.clone(),
                Target::File { word, append } => {
                    let fields = self.expand(word);
                    if fields.len() != 1 {
                        io.error("shell: ambiguous redirect");
                        return Ok(1);
                    }
                    let name = &fields[0];
                    if name == "/dev/null" {
                        Sink::Null
                    } else {
                        let path = self.resolve(name);
                        let mut opts = OpenOptions::new();
                        opts.create(true);
                        if *append {
                            opts.append(true);
                        } else {
                            opts.write(true).truncate(true);
                        }
                        match opts.open(&path) {
                            Ok(f) => Sink::File(Rc::new(RefCell::new(f))),
                            Err(e) => {
                                io.error(&format!("shell: {}: {}", name, builtins::message(&e)));
                                return Ok(1);
                            }
                        }
                    }
                }
            };
            if r.fd == 2 {
                io.err = sink;
            } else {
                io.out = sink;
            }
        }

        // Assignments alone (NAME=value ...) set shell variables.
        if !c.words.is_empty() && c.words.iter().all(|w| w.assignment().is_some()) {
            for w in &c.words {
                if let Some((name, value)) = w.assignment() {
                    let v = self.expand_joined(&value);
                    self.vars.insert(name, Some(v));
                }
            }
            return Ok(0);
        }

        let mut args = Vec::new();
        for w in &c.words {
            args.extend(self.expand(w));
        }
        if args.is_empty() {
            return Ok(0);
        }
        builtins::run(self, &args, &io)
    }

    /// The value of a variable: the script's own, else the job's.
    pub(crate) fn var(&self, name: &str) -> Option<String> {
        match self.vars.get(name) {
            Some(v) => v.clone(),
            None => wasmrunner::var(name),
        }
    }

    fn param(&self, p: &Param) -> String {
        match p {
            Param::Status => self.status.to_string(),
            Param::Positional(0) => "shell".to_string(),
            Param::Positional(_) => String::new(),
            Param::Var { name, default } => match (self.var(name), default) {
                (Some(v), Some(d)) if v.is_empty() => d.clone(),
                (Some(v), _) => v,
                (None, Some(d)) => d.clone(),
                (None, None) => String::new(),
            },
        }
    }

    /// Expands a word into fields: parameters are substituted, and the
    /// values of unquoted ones split at blanks.
    pub(crate) fn expand(&self, w: &Word) -> Vec<String> {
        let mut fields = Vec::new();
        let mut cur = String::new();
        let mut has = false; // whether cur is a field, even if empty
        for part in &w.parts {
            match part {
                Part::Text { s, .. } => {
                    cur.push_str(s);
                    has = true;
                }
                Part::Param {
                    param,
                    quoted: true,
                } => {
                    cur.push_str(&self.param(param));
                    has = true;
                }
                Part::Param {
                    param,
                    quoted: false,
                } => {
                    let v = self.param(param);
                    let blank = |c: char| c == ' ' || c == '\t' || c == '\n';
                    if v.starts_with(blank) && has {
                        fields.push(std::mem::take(&mut cur));
                        has = false;
                    }
                    let mut pieces = v.split(blank).filter(|s| !s.is_empty()).peekable();
                    let any = pieces.peek().is_some();
                    while let Some(piece) = pieces.next() {
                        cur.push_str(piece);
                        has = true;
                        if pieces.peek().is_some() {
                            fields.push(std::mem::take(&mut cur));
                        }
                    }
                    if any && v.ends_with(blank) {
                        fields.push(std::mem::take(&mut cur));
                        has = false;
                    }
                }
            }
        }
        if has {
            fields.push(cur);
        }
        fields
    }

    /// Expands a word into one string, without splitting (assignments).
    fn expand_joined(&self, w: &Word) -> String {
        let mut s = String::new();
        for part in &w.parts {
            match part {
                Part::Text { s: t, .. } => s.push_str(t),
                Part::Param { param, .. } => s.push_str(&self.param(param)),
            }
        }
        s
    }

    /// The path for the file system of a path given to a command: the
    /// sandbox path under [`Shell::root`].
    pub(crate) fn resolve(&self, p: &str) -> String {
        format!("{}{}", self.root, self.guest_path(p))
    }

    /// The sandbox path ("/a/b") of a path given to a command, relative
    /// to the working dir unless absolute. `..` never leaves the build
    /// dir (and the sandbox would not let it anyway).
    pub(crate) fn guest_path(&self, p: &str) -> String {
        let mut parts: Vec<&str> = Vec::new();
        if !p.starts_with('/') {
            parts.extend(self.cwd.split('/').filter(|s| !s.is_empty()));
        }
        for comp in p.split('/') {
            match comp {
                "" | "." => {}
                ".." => {
                    parts.pop();
                }
                c => parts.push(c),
            }
        }
        format!("/{}", parts.join("/"))
    }
}

/// Echoes a command as GitLab runners do: green, after "$ ". A command of
/// several lines shows its first.
fn echo_command(line: &str) {
    let trimmed = line.trim_end_matches('\n');
    match trimmed.split_once('\n') {
        Some((first, _)) => outputln!("\x1b[32;1m$ {first} # collapsed multi-line command\x1b[0;m"),
        None => outputln!("\x1b[32;1m$ {trimmed}\x1b[0;m"),
    }
}

#[cfg(test)]
mod handler_tests;

#[cfg(test)]
mod tests {
    use super::*;

    fn fields(sh: &Shell, line: &str) -> Vec<String> {
        let list = parse::parse(line).unwrap();
        let c = &list[0].first.commands[0];
        c.words.iter().flat_map(|w| sh.expand(w)).collect()
    }

    #[test]
    fn expansion() {
        let mut sh = Shell::new();
        sh.vars.insert("A".into(), Some(" x  y ".into()));
        sh.vars.insert("E".into(), Some(String::new()));
        sh.vars.insert("U".into(), None);
        sh.status = 3;
        assert_eq!(fields(&sh, "echo $A"), vec!["echo", "x", "y"]);
        assert_eq!(fields(&sh, "echo \"$A\""), vec!["echo", " x  y "]);
        assert_eq!(fields(&sh, "echo a${A}b"), vec!["echo", "a", "x", "y", "b"]);
        assert_eq!(fields(&sh, "echo $E $U"), vec!["echo"]);
        assert_eq!(fields(&sh, "echo \"$E\" ''"), vec!["echo", "", ""]);
        assert_eq!(fields(&sh, "echo $? ${?}x"), vec!["echo", "3", "3x"]);
        assert_eq!(
            fields(&sh, "echo ${U:-def} ${E:-d2} ${A:-no}"),
            vec!["echo", "def", "d2", "x", "y"]
        );
        assert_eq!(fields(&sh, "echo '$A' \\$A"), vec!["echo", "$A", "$A"]);
    }

    #[test]
    fn paths() {
        let mut sh = Shell::new();
        assert_eq!(sh.resolve("a/b"), "/a/b");
        assert_eq!(sh.resolve("."), "/");
        assert_eq!(sh.resolve("../../x"), "/x");
        sh.cwd = "d/e".into();
        assert_eq!(sh.resolve("f"), "/d/e/f");
        assert_eq!(sh.resolve("../f/./g/"), "/d/f/g");
        assert_eq!(sh.resolve("/top"), "/top");
        assert_eq!(sh.resolve(".."), "/d");
    }
}
