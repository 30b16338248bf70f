//! `shell`: a POSIX shell (with the bash extensions CI scripts use) as a
//! wasmrunner handler.
//!
//! Each step's script runs in one shell, as GitLab Runner runs it with
//! bash: each script line is echoed, then run, under `set -eo pipefail`
//! (a failing command stops the script with its status). Every command is
//! a builtin (see `builtins.rs` and `utils.rs`); files are the job's build
//! dir, the sandbox's `/`. See README.md for the language and commands.
//!
//! The guest is single-threaded: a pipeline's commands run one after the
//! other, each stage's output buffered for the next. Buffers (pipes,
//! `$(...)`, files read by `<`) are bounded per job by [`MAX_BUFFERED`];
//! nesting of commands, calls and substitutions by [`parse::MAX_DEPTH`]
//! and [`MAX_CALL_DEPTH`]; so a script cannot exhaust the module's memory
//! or its 64 KiB stack on its own.

mod arith;
mod awk;
mod bc;
mod builtins;
mod coreutils;
mod digest;
mod expand;
mod find;
mod glob;
mod parse;
mod regex;
mod utils;

use std::cell::{Cell, RefCell};
use std::collections::{BTreeMap, HashMap};
use std::fs::{File, OpenOptions};
use std::io::{self, Read, Write};
use std::rc::Rc;

use wasmrunner::{outputln, Handler, Phase};

use crate::parse::{AndOr, Assign, Command, Compound, Connector, List, Pipeline, RedirOp, Redirect};

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

/// Attributes of a variable (see [`Shell::attrs`]): assignments fail;
/// values are evaluated as arithmetic; lowercased; uppercased.
pub(crate) const ATTR_READONLY: u8 = 1;
pub(crate) const ATTR_INTEGER: u8 = 2;
pub(crate) const ATTR_LOWER: u8 = 4;
pub(crate) const ATTR_UPPER: u8 = 8;

/// How many bytes all of a job's buffers (pipes, command substitutions,
/// input files and here-documents) may hold at once.
pub(crate) const MAX_BUFFERED: usize = 16 << 20;

/// How deep function calls, `eval`, `source` and substitutions may nest
/// at run time.
pub(crate) const MAX_CALL_DEPTH: usize = 100;

/// What a pipe holds in Linux: a writer more than this ahead of its
/// reader blocks, and is killed by SIGPIPE when the reader exits.
const PIPE_CAPACITY: usize = 64 << 10;

/// The longest value a variable may hold.
pub(crate) const MAX_VAR: usize = 8 << 20;

/// How much of the module's 64 KiB stack the shell may use (the rest is
/// for the commands it runs at the deepest level): deeper nesting is an
/// error ("nesting too deep"), never a stack overflow.
#[cfg(target_arch = "wasm32")]
const STACK_LIMIT: usize = 40 << 10;
#[cfg(not(target_arch = "wasm32"))]
const STACK_LIMIT: usize = 1 << 20;

thread_local! {
    static TMP_MADE: Cell<bool> = Cell::new(false);
    static BUFFERED: Cell<usize> = Cell::new(0);
    static STACK_BASE: Cell<usize> = Cell::new(0);
}

/// An address on the stack of the caller.
#[inline(never)]
fn stack_pointer() -> usize {
    let marker = 0u8;
    &marker as *const u8 as usize
}

/// Records where the stack starts (at the start of a step).
fn mark_stack_base() {
    let sp = stack_pointer();
    STACK_BASE.with(|b| b.set(sp));
}

/// Whether the stack has room for one more level of nesting.
pub(crate) fn stack_ok() -> bool {
    let sp = stack_pointer();
    STACK_BASE.with(|b| {
        let base = b.get();
        base == 0 || base.saturating_sub(sp) < STACK_LIMIT
    })
}

/// Control flow out of a command.
#[derive(Debug)]
pub(crate) enum Flow {
    /// The shell stops with this status (`exit`, `set -e`, a fatal error).
    Exit(i32),
    /// `return` from a function (or a sourced file).
    Return(i32),
    Break(u32),
    Continue(u32),
}

pub(crate) type Status = Result<i32, Flow>;

/// Bytes that count against [`MAX_BUFFERED`] while they live.
#[derive(Default)]
pub(crate) struct Buf {
    data: Vec<u8>,
}

impl Buf {
    pub(crate) fn push(&mut self, b: &[u8]) -> io::Result<()> {
        BUFFERED.with(|t| {
            if t.get() + b.len() > MAX_BUFFERED {
                return Err(io::Error::new(
                    io::ErrorKind::Other,
                    format!("buffer limit exceeded (pipes, $(...) and inputs hold at most {} MiB in all)", MAX_BUFFERED >> 20),
                ));
            }
            t.set(t.get() + b.len());
            Ok(())
        })?;
        self.data.extend_from_slice(b);
        Ok(())
    }

    pub(crate) fn from_vec(v: Vec<u8>) -> io::Result<Buf> {
        let mut b = Buf::default();
        BUFFERED.with(|t| {
            if t.get() + v.len() > MAX_BUFFERED {
                return Err(io::Error::new(
                    io::ErrorKind::Other,
                    format!("buffer limit exceeded (pipes, $(...) and inputs hold at most {} MiB in all)", MAX_BUFFERED >> 20),
                ));
            }
            t.set(t.get() + v.len());
            Ok(())
        })?;
        b.data = v;
        Ok(b)
    }

    pub(crate) fn bytes(&self) -> &[u8] {
        &self.data
    }

    fn take(&mut self) -> Vec<u8> {
        let v = std::mem::take(&mut self.data);
        BUFFERED.with(|t| t.set(t.get() - v.len()));
        v
    }
}

impl Drop for Buf {
    fn drop(&mut self) {
        let n = self.data.len();
        BUFFERED.with(|t| t.set(t.get() - n));
    }
}

/// A command's standard input: bytes and how far they have been read.
pub(crate) struct Input {
    pub buf: Buf,
    pub pos: usize,
}

pub(crate) type Stdin = Rc<RefCell<Input>>;

/// Where a command's output goes.
#[derive(Clone)]
pub(crate) enum Sink {
    /// The job log.
    Log,
    /// Nowhere (`/dev/null`).
    Null,
    File(Rc<RefCell<File>>),
    /// A pipe to the next command, or a command substitution.
    Buf(Rc<RefCell<Buf>>),
}

impl Sink {
    /// Whether two sinks are the same place.
    pub(crate) fn same(&self, other: &Sink) -> bool {
        match (self, other) {
            (Sink::Log, Sink::Log) | (Sink::Null, Sink::Null) => true,
            (Sink::File(a), Sink::File(b)) => Rc::ptr_eq(a, b),
            (Sink::Buf(a), Sink::Buf(b)) => Rc::ptr_eq(a, b),
            _ => false,
        }
    }

    pub(crate) fn write_all(&self, b: &[u8]) -> io::Result<()> {
        match self {
            Sink::Log => {
                // The log takes at most MAX_LOG_WRITE bytes a call.
                for chunk in b.chunks(wasmrunner::MAX_LOG_WRITE) {
                    wasmrunner::log_write(chunk).map_err(io::Error::from)?;
                }
                Ok(())
            }
            Sink::Null => Ok(()),
            Sink::File(f) => f.borrow_mut().write_all(b),
            Sink::Buf(p) => p.borrow_mut().push(b),
        }
    }
}

/// A command's standard input, output and error.
#[derive(Clone)]
pub(crate) struct Io {
    pub stdin: Option<Stdin>,
    pub out: Sink,
    pub err: Sink,
}

impl Io {
    fn log() -> Io {
        Io {
            stdin: None,
            out: Sink::Log,
            err: Sink::Log,
        }
    }

    /// Writes to standard output; false on an error (reported).
    pub(crate) fn print(&self, s: &str) -> bool {
        self.write(s.as_bytes())
    }

    pub(crate) fn write(&self, b: &[u8]) -> bool {
        match self.out.write_all(b) {
            Ok(()) => true,
            Err(e) => {
                self.error(&format!("write error: {}", builtins::message(&e)));
                false
            }
        }
    }

    /// Writes a line to standard error.
    pub(crate) fn error(&self, s: &str) {
        let mut line = String::with_capacity(s.len() + 1);
        line.push_str(s);
        line.push('\n');
        let _ = self.err.write_all(line.as_bytes());
    }

    /// All of standard input that is left.
    pub(crate) fn read_all(&self) -> Vec<u8> {
        match &self.stdin {
            None => Vec::new(),
            Some(i) => {
                let mut i = i.borrow_mut();
                let pos = i.pos;
                let v = i.buf.bytes()[pos..].to_vec();
                i.pos = i.buf.bytes().len();
                v
            }
        }
    }

    /// The rest of standard input, left unread (see [`Io::consume`]).
    pub(crate) fn peek_all(&self) -> Vec<u8> {
        match &self.stdin {
            None => Vec::new(),
            Some(i) => {
                let i = i.borrow();
                i.buf.bytes()[i.pos..].to_vec()
            }
        }
    }

    /// Marks n more bytes of standard input read.
    pub(crate) fn consume(&self, n: usize) {
        if let Some(i) = &self.stdin {
            let mut i = i.borrow_mut();
            i.pos = (i.pos + n).min(i.buf.bytes().len());
        }
    }

    /// One line of standard input (without its newline, which the bool
    /// says was there), or None at its end.
    pub(crate) fn read_line(&self, delim: u8) -> Option<(Vec<u8>, bool)> {
        let i = self.stdin.as_ref()?;
        let mut i = i.borrow_mut();
        let pos = i.pos;
        let data = &i.buf.bytes()[pos..];
        if data.is_empty() {
            return None;
        }
        match data.iter().position(|&b| b == delim) {
            Some(n) => {
                let line = data[..n].to_vec();
                i.pos += n + 1;
                Some((line, true))
            }
            None => {
                let line = data.to_vec();
                i.pos += line.len();
                Some((line, false))
            }
        }
    }
}

/// A shell variable.
#[derive(Clone, Debug)]
pub(crate) struct Var {
    /// None once unset (hiding a job variable of that name).
    pub value: Option<String>,
    pub exported: bool,
}

/// The state of one shell: a step of the job.
#[derive(Clone)]
pub(crate) struct Shell {
    /// The working dir: a normalised path relative to the build dir ("" is
    /// the build dir itself).
    pub cwd: String,
    /// `$?`.
    pub status: i32,
    /// Variables set by the script (job variables are read through).
    pub vars: BTreeMap<String, Var>,
    /// `$1`...
    pub args: Vec<String>,
    pub functions: HashMap<String, Rc<Command>>,
    /// Saved variables of the running functions' `local`s.
    pub locals: Vec<Vec<(String, Option<Var>)>>,
    pub errexit: bool,
    pub nounset: bool,
    pub xtrace: bool,
    pub pipefail: bool,
    /// > 0 where a failure must not stop the shell (conditions, the left
    /// of && and ||).
    pub no_errexit: usize,
    /// How deep calls and substitutions nest now.
    pub depth: usize,
    /// How many loops enclose the running command.
    pub loops: u32,
    /// The `trap ... EXIT` command.
    pub exit_trap: Option<String>,
    /// `shopt -s nullglob`: a pattern without matches expands to nothing.
    pub nullglob: bool,
    /// How deep in command substitutions the shell is: `set -x` shows
    /// one more `+` per level, as bash does.
    pub trace_level: usize,
    /// pushd's stack of working dirs.
    pub dir_stack: Vec<String>,
    /// Indexed arrays (`a=(x y)`, `${a[@]}`).
    pub arrays: BTreeMap<String, Vec<String>>,
    /// The modes chmod gave files, by sandbox path: the sandbox has no
    /// permissions of its own (see coreutils::mode_of).
    pub modes: BTreeMap<String, u32>,
    /// Associative arrays (`declare -A m; m[k]=v`), keys in sorted order.
    pub assoc: BTreeMap<String, BTreeMap<String, String>>,
    /// When the shell started, in seconds since the epoch ($SECONDS).
    pub started: u64,
    /// The outputs `exec` redirected: the fd, its sink, and for 1 and 2
    /// the sink it replaced (see Shell::exec_io).
    pub fds: Vec<(u32, Sink, Option<Sink>)>,
    /// getopts' place inside a bundle of options (-abc): OPTIND it was
    /// for, the char index.
    pub getopts_pos: (usize, usize),
    /// `set -a`: variables set are exported.
    pub allexport: bool,
    /// The status of the last command substitution (for `x=$(false)`).
    pub subst_status: i32,
    /// The outputs of process substitutions, by the names they expanded
    /// to (/dev/fd/N), until the script line ends.
    pub proc_files: Vec<(String, Rc<Vec<u8>>)>,
    /// Where the sandbox's `/` is for the file system calls: empty in the
    /// handler, where the build dir is `/`; a temporary dir in unit tests,
    /// which run outside the sandbox.
    pub root: String,
    /// The lasting attributes of variables (`readonly`, `declare -i -l
    /// -u` outside functions): ATTR_* bits by name.
    pub attrs: BTreeMap<String, u8>,
    /// For each running function, the attributes its locals hid (restored
    /// when it returns), as locals holds their values.
    pub local_attrs: Vec<Vec<(String, Option<u8>)>>,
}

impl Shell {
    pub(crate) fn new() -> Shell {
        let mut arrays = BTreeMap::new();
        arrays.insert("PIPESTATUS".to_string(), vec!["0".to_string()]);
        Shell {
            cwd: String::new(),
            status: 0,
            vars: BTreeMap::new(),
            args: Vec::new(),
            functions: HashMap::new(),
            locals: Vec::new(),
            errexit: true,
            nounset: false,
            xtrace: false,
            pipefail: true,
            no_errexit: 0,
            depth: 0,
            loops: 0,
            exit_trap: None,
            nullglob: false,
            trace_level: 1,
            dir_stack: Vec::new(),
            arrays,
            modes: BTreeMap::new(),
            assoc: BTreeMap::new(),
            started: expand::now_secs(),
            fds: Vec::new(),
            getopts_pos: (0, 0),
            allexport: false,
            subst_status: 0,
            proc_files: Vec::new(),
            root: String::new(),
            attrs: BTreeMap::new(),
            local_attrs: Vec::new(),
        }
    }

    /// Runs the script lines; Err(status) if one failed.
    fn run_script(&mut self, script: &[String]) -> Result<(), i32> {
        mark_stack_base();
        let mut result = Ok(());
        for line in script {
            if wasmrunner::is_canceled() {
                return Err(STATUS_CANCELED);
            }
            echo_command(line);
            let r = self.run_source(line, &Io::log());
            self.proc_files.clear();
            match r {
                Ok(_) => {}
                Err(Flow::Exit(0)) => break,
                Err(Flow::Exit(code)) => {
                    result = Err(code);
                    break;
                }
                Err(_) => {}
            }
        }
        if let Some(trap) = self.exit_trap.take() {
            let saved = self.status;
            if let Err(code) = &result {
                self.status = *code;
            }
            self.errexit = false;
            let _ = self.run_source(&trap, &Io::log());
            self.status = saved;
        }
        result
    }

    /// Parses and runs source text in this shell.
    pub(crate) fn run_source(&mut self, src: &str, io: &Io) -> Status {
        let list = match parse::parse(src) {
            Ok(l) => l,
            Err(msg) => {
                io.error(&format!("sh: {}", msg));
                self.status = 2;
                return Err(Flow::Exit(2));
            }
        };
        self.run_list(&list, io)
    }

    pub(crate) fn run_list(&mut self, list: &List, io: &Io) -> Status {
        let mut status = 0;
        for ao in list {
            if wasmrunner::is_canceled() {
                return Err(Flow::Exit(STATUS_CANCELED));
            }
            if self.fds.is_empty() {
                status = self.run_and_or(ao, io)?;
            } else {
                let eio = self.exec_io(io);
                status = self.run_and_or(ao, &eio)?;
            }
        }
        Ok(status)
    }

    /// io with the redirections of `exec` applied: an output exec
    /// redirected is replaced where it is still the one exec saw (not
    /// where a later redirection or a substitution took its place).
    fn exec_io(&self, io: &Io) -> Io {
        let mut eio = io.clone();
        for (fd, sink, replaced) in &self.fds {
            match (fd, replaced) {
                (1, Some(r)) if r.same(&io.out) => eio.out = sink.clone(),
                (2, Some(r)) if r.same(&io.err) => eio.err = sink.clone(),
                _ => {}
            }
        }
        eio
    }

    /// `exec` with only redirections: they stay for the rest of the shell.
    fn exec_redirects(&mut self, redirects: &[Redirect], io: &Io) -> Status {
        let io = self.exec_io(io);
        for r in redirects {
            if matches!(r.op, RedirOp::In | RedirOp::Here) || r.fd == 0 {
                io.error("sh: exec: redirecting standard input (or reading a file descriptor) is not supported here");
                return Ok(1);
            }
            let fields = self.expand(&r.target, &io)?;
            if fields.len() != 1 {
                io.error(&format!("sh: {}: ambiguous redirect", fields.join(" ")));
                return Ok(1);
            }
            let name = fields[0].as_str();
            let sink = if r.op == RedirOp::Dup {
                match name {
                    "-" => {
                        self.fds.retain(|(f, _, _)| *f != r.fd);
                        if r.fd == 1 || r.fd == 2 {
                            let replaced = if r.fd == 1 { io.out.clone() } else { io.err.clone() };
                            self.fds.push((r.fd, Sink::Null, Some(replaced)));
                        }
                        continue;
                    }
                    "1" => io.out.clone(),
                    "2" => io.err.clone(),
                    n => match n.parse::<u32>().ok().and_then(|k| self.fds.iter().find(|(f, _, _)| *f == k)) {
                        Some((_, s, _)) => s.clone(),
                        None => {
                            io.error(&format!("sh: {}: Bad file descriptor", n));
                            return Ok(1);
                        }
                    },
                }
            } else if name == "/dev/null" {
                Sink::Null
            } else if name == "/dev/stdout" {
                io.out.clone()
            } else if name == "/dev/stderr" {
                io.err.clone()
            } else {
                let mut opts = OpenOptions::new();
                opts.create(true);
                if matches!(r.op, RedirOp::Append | RedirOp::AppendErr) {
                    opts.append(true);
                } else {
                    opts.write(true).truncate(true);
                }
                match opts.open(self.resolve(name)) {
                    Ok(f) => Sink::File(Rc::new(RefCell::new(f))),
                    Err(e) => {
                        io.error(&format!("sh: {}: {}", name, builtins::message(&e)));
                        return Ok(1);
                    }
                }
            };
            let fds: Vec<u32> = if matches!(r.op, RedirOp::OutErr | RedirOp::AppendErr) { vec![1, 2] } else { vec![r.fd] };
            for fd in fds {
                if fd > 9 {
                    io.error(&format!("sh: {}: Bad file descriptor", fd));
                    return Ok(1);
                }
                let replaced = match fd {
                    1 => Some(io.out.clone()),
                    2 => Some(io.err.clone()),
                    _ => None,
                };
                // Replacing an exec'd output again: what it replaced stays
                // the one to replace.
                let replaced = match self.fds.iter().position(|(f, _, _)| *f == fd) {
                    Some(k) => self.fds.remove(k).2.or(replaced),
                    None => replaced,
                };
                self.fds.push((fd, sink.clone(), replaced));
            }
        }
        Ok(0)
    }

    /// Runs a list as a condition: failures do not stop the shell.
    fn run_cond(&mut self, list: &List, io: &Io) -> Status {
        self.no_errexit += 1;
        let r = self.run_list(list, io);
        self.no_errexit -= 1;
        r
    }

    /// Runs an and-or list. As with `set -e`, a failure stops the shell
    /// unless it comes from a pipeline on the left of `&&` or `||`, or a
    /// negated one, or the shell is in a condition.
    fn run_and_or(&mut self, ao: &AndOr, io: &Io) -> Status {
        if ao.background {
            self.no_errexit += 1;
            let r = self.run_and_or(
                &AndOr {
                    first: ao.first.clone(),
                    rest: ao.rest.clone(),
                    background: false,
                },
                io,
            );
            self.no_errexit -= 1;
            r?;
            self.status = 0;
            return Ok(0);
        }
        let guarded = !ao.rest.is_empty();
        if guarded {
            self.no_errexit += 1;
        }
        let r = self.run_pipeline(&ao.first, io);
        if guarded {
            self.no_errexit -= 1;
        }
        let mut status = r?;
        self.status = status;
        let mut checked = !ao.first.negate && !guarded && !errexit_exempt(&ao.first);
        for (i, (conn, p)) in ao.rest.iter().enumerate() {
            let run = match conn {
                Connector::And => status == 0,
                Connector::Or => status != 0,
            };
            if run {
                let last = i == ao.rest.len() - 1;
                if !last {
                    self.no_errexit += 1;
                }
                let r = self.run_pipeline(p, io);
                if !last {
                    self.no_errexit -= 1;
                }
                status = r?;
                self.status = status;
                checked = last && !p.negate && !errexit_exempt(p);
            } else {
                checked = false;
            }
        }
        if status != 0 && checked && self.errexit && self.no_errexit == 0 {
            return Err(Flow::Exit(status));
        }
        Ok(status)
    }

    fn run_pipeline(&mut self, p: &Pipeline, io: &Io) -> Status {
        let status = if p.commands.len() == 1 {
            if p.negate {
                self.no_errexit += 1;
            }
            let r = self.run_command(&p.commands[0], io);
            if p.negate {
                self.no_errexit -= 1;
            }
            r?
        } else {
            // Each command in a subshell, one after the other, the
            // output of each buffered for the next.
            let mut stdin = io.stdin.clone();
            let mut statuses = Vec::new();
            let last = p.commands.len() - 1;
            for (i, c) in p.commands.iter().enumerate() {
                let pipe = Rc::new(RefCell::new(Buf::default()));
                let out = if i == last {
                    io.out.clone()
                } else {
                    Sink::Buf(pipe.clone())
                };
                let cio = Io {
                    stdin: stdin.take(),
                    out,
                    err: io.err.clone(),
                };
                let mut sub = self.clone();
                if p.negate {
                    sub.no_errexit += 1;
                }
                let s = match sub.run_command(c, &cio) {
                    Ok(s) => s,
                    Err(Flow::Exit(s)) | Err(Flow::Return(s)) => s,
                    Err(_) => 0,
                };
                statuses.push(s);
                // A writer whose reader left more than a pipe's capacity
                // unread would have been killed by SIGPIPE: status 141.
                if let Some(input) = &cio.stdin {
                    if i > 0 && io.stdin.as_ref().map(|s| !Rc::ptr_eq(s, input)).unwrap_or(true) {
                        let input = input.borrow();
                        if input.buf.bytes().len() - input.pos > PIPE_CAPACITY && statuses[i - 1] == 0 {
                            statuses[i - 1] = 141;
                        }
                    }
                }
                if i != last {
                    let data = pipe.borrow_mut().take();
                    let buf = Buf::from_vec(data).unwrap_or_default();
                    stdin = Some(Rc::new(RefCell::new(Input { buf, pos: 0 })));
                }
            }
            let status = if self.pipefail {
                statuses.iter().rev().copied().find(|&s| s != 0).unwrap_or(0)
            } else {
                statuses[last]
            };
            self.pipestatus(statuses.iter().map(|s| s.to_string()).collect());
            return Ok(if p.negate { (status == 0) as i32 } else { status });
        };
        self.pipestatus(vec![status.to_string()]);
        Ok(if p.negate { (status == 0) as i32 } else { status })
    }

    /// Sets PIPESTATUS to the statuses of the last pipeline's commands.
    fn pipestatus(&mut self, statuses: Vec<String>) {
        match self.arrays.get_mut("PIPESTATUS") {
            Some(a) => *a = statuses,
            None => {
                self.arrays.insert("PIPESTATUS".to_string(), statuses);
            }
        }
    }

    fn enter(&mut self, io: &Io) -> Result<(), Flow> {
        if self.depth >= MAX_CALL_DEPTH {
            io.error(&format!(
                "sh: nesting too deep (more than {} nested calls and substitutions)",
                MAX_CALL_DEPTH
            ));
            return Err(Flow::Exit(2));
        }
        self.depth += 1;
        Ok(())
    }

    pub(crate) fn run_command(&mut self, c: &Command, io: &Io) -> Status {
        if !stack_ok() {
            io.error("sh: nesting too deep (the shell's stack is used up)");
            return Err(Flow::Exit(2));
        }
        match c {
            Command::Simple {
                assigns,
                words,
                redirects,
            } => self.run_simple(assigns, words, redirects, io),
            Command::Function(name, body) => {
                self.functions.insert(name.clone(), body.clone());
                Ok(0)
            }
            Command::Compound(comp, redirects) => {
                let cio = match self.redirect(redirects, io)? {
                    Some(cio) => cio,
                    None => return Ok(1),
                };
                self.run_compound(comp, &cio)
            }
        }
    }

    fn run_compound(&mut self, c: &Compound, io: &Io) -> Status {
        match c {
            Compound::Brace(l) => self.run_list(l, io),
            Compound::Subshell(l) => {
                let mut sub = self.clone();
                sub.loops = 0;
                match sub.run_list(l, io) {
                    Ok(s) => Ok(s),
                    Err(Flow::Exit(s)) if s == STATUS_CANCELED && wasmrunner::is_canceled() => {
                        Err(Flow::Exit(s))
                    }
                    Err(Flow::Exit(s)) | Err(Flow::Return(s)) => Ok(s),
                    Err(_) => Ok(0),
                }
            }
            Compound::If {
                branches,
                otherwise,
            } => {
                for (cond, body) in branches {
                    if self.run_cond(cond, io)? == 0 {
                        return self.run_list(body, io);
                    }
                }
                match otherwise {
                    Some(l) => self.run_list(l, io),
                    None => Ok(0),
                }
            }
            Compound::For { var, words, body } => {
                let items = match words {
                    Some(ws) => {
                        let mut items = Vec::new();
                        for w in ws {
                            items.extend(self.expand(w, io)?);
                        }
                        items
                    }
                    None => self.args.clone(),
                };
                let mut status = 0;
                self.loops += 1;
                let r = (|| {
                    let shown = if self.xtrace {
                        let ws: Vec<String> = items.iter().map(|i| trace_quote(i)).collect();
                        format!("{} for {} in {}", "+".repeat(self.trace_level), var, ws.join(" "))
                    } else {
                        String::new()
                    };
                    for item in items {
                        if self.xtrace {
                            io.error(&shown);
                        }
                        self.set_var(var, item, io)?;
                        match self.run_list(body, io) {
                            Ok(s) => status = s,
                            Err(Flow::Break(n)) => {
                                if n > 1 {
                                    return Err(Flow::Break(n - 1));
                                }
                                break;
                            }
                            Err(Flow::Continue(n)) => {
                                if n > 1 {
                                    return Err(Flow::Continue(n - 1));
                                }
                            }
                            Err(e) => return Err(e),
                        }
                    }
                    Ok(status)
                })();
                self.loops -= 1;
                r
            }
            Compound::While { until, cond, body } => {
                let mut status = 0;
                self.loops += 1;
                let r = (|| {
                    loop {
                        if wasmrunner::is_canceled() {
                            return Err(Flow::Exit(STATUS_CANCELED));
                        }
                        let c = self.run_cond(cond, io);
                        let c = match c {
                            Ok(c) => c,
                            Err(Flow::Break(n)) => {
                                if n > 1 {
                                    return Err(Flow::Break(n - 1));
                                }
                                break;
                            }
                            Err(Flow::Continue(n)) => {
                                if n > 1 {
                                    return Err(Flow::Continue(n - 1));
                                }
                                continue;
                            }
                            Err(e) => return Err(e),
                        };
                        if (c == 0) == *until {
                            break;
                        }
                        match self.run_list(body, io) {
                            Ok(s) => status = s,
                            Err(Flow::Break(n)) => {
                                if n > 1 {
                                    return Err(Flow::Break(n - 1));
                                }
                                break;
                            }
                            Err(Flow::Continue(n)) => {
                                if n > 1 {
                                    return Err(Flow::Continue(n - 1));
                                }
                            }
                            Err(e) => return Err(e),
                        }
                    }
                    Ok(status)
                })();
                self.loops -= 1;
                r
            }
            Compound::Case { word, arms } => {
                let subject = self.expand_string(word, io)?;
                for (pats, body) in arms {
                    for p in pats {
                        let pat = self.expand_pattern(p, io)?;
                        if glob::matches(&pat, &subject) {
                            return self.run_list(body, io);
                        }
                    }
                }
                Ok(0)
            }
            Compound::Cond(c) => {
                if self.xtrace {
                    let t = self.trace_cond(c, io)?;
                    io.error(&format!("{} [[ {} ]]", "+".repeat(self.trace_level), t));
                }
                match self.eval_cond(c, io)? {
                    Ok(b) => Ok(if b { 0 } else { 1 }),
                    Err(msg) => {
                        io.error(&format!("sh: {}", msg));
                        Ok(2)
                    }
                }
            }
            Compound::ArithFor { init, cond, step, body } => {
                let mut status = 0;
                let eval = |sh: &mut Shell, w: &parse::Word, io: &Io| -> Result<Option<i64>, Flow> {
                    let text = sh.expand_string(w, io)?;
                    if text.trim().is_empty() {
                        return Ok(None);
                    }
                    match arith::eval(sh, &text) {
                        Ok(v) => Ok(Some(v)),
                        Err(msg) => {
                            io.error(&format!("sh: {}: {}", text.trim(), msg));
                            Err(Flow::Exit(1))
                        }
                    }
                };
                eval(self, init, io)?;
                self.loops += 1;
                let r = (|| {
                    loop {
                        if wasmrunner::is_canceled() {
                            return Err(Flow::Exit(STATUS_CANCELED));
                        }
                        if eval(self, cond, io)? == Some(0) {
                            break;
                        }
                        match self.run_list(body, io) {
                            Ok(s) => status = s,
                            Err(Flow::Break(n)) => {
                                if n > 1 {
                                    return Err(Flow::Break(n - 1));
                                }
                                break;
                            }
                            Err(Flow::Continue(n)) => {
                                if n > 1 {
                                    return Err(Flow::Continue(n - 1));
                                }
                            }
                            Err(e) => return Err(e),
                        }
                        eval(self, step, io)?;
                    }
                    Ok(status)
                })();
                self.loops -= 1;
                r
            }
            Compound::Arith(w) => {
                let text = self.expand_string(w, io)?;
                if self.xtrace {
                    io.error(&format!("{} (( {} ))", "+".repeat(self.trace_level), text));
                }
                match arith::eval(self, &text) {
                    Ok(v) => Ok(if v != 0 { 0 } else { 1 }),
                    Err(msg) => {
                        io.error(&format!("sh: {}", msg));
                        Ok(1)
                    }
                }
            }
        }
    }

    /// Expands a command's assignments left to right into values, each
    /// made visible (in provisional, to undo) to the ones after it; array
    /// and indexed ones are assigned. Some(status): stop with it.
    fn expand_assigns(
        &mut self,
        assigns: &[Assign],
        io: &Io,
        values: &mut Vec<(String, String)>,
        provisional: &mut Vec<(String, Option<Var>)>,
    ) -> Result<Option<i32>, Flow> {
        for a in assigns {
            if let Some(elems) = &a.array {
                self.assign_array(&a.name, elems, a.append, io)?;
                continue;
            }
            if let Some(ix) = &a.index {
                let text = self.expand_string(ix, io)?;
                let v = self.expand_string(&a.value, io)?;
                if let Some(map) = self.assoc.get_mut(&a.name) {
                    let e = map.entry(text).or_default();
                    if a.append {
                        e.push_str(&v);
                    } else {
                        *e = v;
                    }
                    continue;
                }
                let i = match arith::eval(self, &text) {
                    Ok(i) => i,
                    Err(msg) => {
                        io.error(&format!("sh: {}: {}", text, msg));
                        return Ok(Some(1));
                    }
                };
                let len = self.arrays.get(&a.name).map(|a| a.len()).unwrap_or(0) as i64;
                let i = if i < 0 { len + i } else { i };
                if !(0..=1_000_000).contains(&i) {
                    io.error(&format!("sh: {}[{}]: bad array subscript", a.name, text));
                    return Ok(Some(1));
                }
                let arr = self.arrays.entry(a.name.clone()).or_default();
                if arr.len() <= i as usize {
                    arr.resize(i as usize + 1, String::new());
                }
                if a.append {
                    arr[i as usize].push_str(&v);
                } else {
                    arr[i as usize] = v;
                }
                continue;
            }
            if self.readonly(&a.name) {
                // Fatal, as in bash (even in `R=2 || ...`).
                io.error(&format!("sh: {}: readonly variable", a.name));
                return Err(Flow::Exit(1));
            }
            let mut v = self.expand_string(&a.value, io)?;
            let integer = self.attrs.get(&a.name).map(|f| f & ATTR_INTEGER != 0).unwrap_or(false);
            if integer {
                let old = self.var(&a.name).unwrap_or_default();
                let old = self.integer_value(&old, io)?;
                let new = self.integer_value(&v, io)?;
                v = if a.append {
                    (old.parse::<i64>().unwrap_or(0)).wrapping_add(new.parse::<i64>().unwrap_or(0)).to_string()
                } else {
                    new
                };
            } else if a.append {
                v = self.var(&a.name).unwrap_or_default() + &v;
            }
            // Assignments are expanded left to right, each seeing the ones
            // before it (`dir=/tmp file=$dir/x`): visible at once, set for
            // good (or for the command only) below.
            let old = self.vars.get(&a.name).cloned();
            let exported = old.as_ref().map(|o| o.exported).unwrap_or(false);
            provisional.push((a.name.clone(), old));
            self.vars.insert(a.name.clone(), Var { value: Some(v.clone()), exported });
            values.push((a.name.clone(), v));
        }
        Ok(None)
    }

    fn run_simple(
        &mut self,
        assigns: &[Assign],
        words: &[parse::Word],
        redirects: &[Redirect],
        io: &Io,
    ) -> Status {
        self.subst_status = 0;
        let mut args = Vec::new();
        let decl = words
            .first()
            .and_then(|w| match w.parts.as_slice() {
                [parse::Part::Lit(s)] => Some(s.as_str()),
                _ => None,
            })
            .map(|s| matches!(s, "export" | "local" | "readonly" | "declare" | "typeset"))
            .unwrap_or(false);
        let mut array_args = Vec::new();
        for (k, w) in words.iter().enumerate() {
            if let (true, Some(parse::Part::ArrayLit(elems))) = (decl, w.parts.last()) {
                // local NAME=(a b): the name for the builtin, then the array.
                let name = match w.parts.first() {
                    Some(parse::Part::Lit(l)) => l.trim_end_matches('=').trim_end_matches('+').to_string(),
                    _ => continue,
                };
                args.push(name.clone());
                array_args.push((name, elems.clone()));
                continue;
            }
            // The NAME=value arguments of export and local are not split.
            if decl && k > 0 && is_assignment_word(w) {
                args.push(self.expand_string(w, io)?);
            } else {
                args.extend(self.expand(w, io)?);
            }
        }
        let mut values = Vec::new();
        let mut provisional: Vec<(String, Option<Var>)> = Vec::new();
        let expanded = self.expand_assigns(assigns, io, &mut values, &mut provisional);
        restore(&mut self.vars, provisional.into_iter().rev());
        if let Some(status) = expanded? {
            return Ok(status);
        }
        if self.xtrace {
            let mut line = "+".repeat(self.trace_level);
            for (n, v) in &values {
                line.push(' ');
                line.push_str(n);
                line.push('=');
                line.push_str(&trace_quote(v));
            }
            for a in &args {
                line.push(' ');
                line.push_str(&trace_quote(a));
            }
            io.error(&line);
        }
        if args.len() == 1 && args[0] == "exec" && !self.functions.contains_key("exec") {
            return self.exec_redirects(redirects, io);
        }
        let cio = match self.redirect(redirects, io)? {
            Some(cio) => cio,
            None => return Ok(1),
        };
        if args.is_empty() {
            let status = if words.is_empty() { self.subst_status } else { 0 };
            for (n, v) in values {
                self.set_var(&n, v, &cio)?;
            }
            return Ok(status);
        }
        if !array_args.is_empty() {
            let r = self.run_args(&args, &cio);
            for (name, elems) in array_args {
                self.assign_array(&name, &elems, false, io)?;
            }
            return r;
        }
        if values.is_empty() {
            return self.run_args(&args, &cio);
        }
        // NAME=value cmd: the variables for the command only (kept by
        // special builtins and functions, as in POSIX sh... and bash
        // keeps them for neither; so restore).
        let saved: Vec<(String, Option<Var>)> =
            values.iter().map(|(n, _)| (n.clone(), self.vars.get(n).cloned())).collect();
        for (n, v) in values {
            self.set_var(&n, v, &cio)?;
            if let Some(var) = self.vars.get_mut(&n) {
                var.exported = true;
            }
        }
        let r = self.run_args(&args, &cio);
        restore(&mut self.vars, saved.into_iter());
        r
    }

    /// NAME=(ELEMS) (or +=): an indexed array's items, with `[N]=v`
    /// elements at their index; an associative array's `[KEY]=v` pairs.
    fn assign_array(&mut self, name: &str, elems: &[parse::Word], append: bool, io: &Io) -> Result<(), Flow> {
        // `[KEY]=value` elements: the key and value, not split or globbed.
        let keyed = |w: &parse::Word| matches!(w.parts.first(), Some(parse::Part::Lit(l)) if l.starts_with('['));
        let split = |s: &str| -> Option<(String, String)> {
            let p = s.find("]=")?;
            Some((s[1..p].to_string(), s[p + 2..].to_string()))
        };
        if self.assoc.contains_key(name) {
            let mut map = if append { self.assoc.remove(name).unwrap_or_default() } else { BTreeMap::new() };
            for e in elems {
                let s = self.expand_string(e, io)?;
                match split(&s).filter(|_| keyed(e)) {
                    Some((k, v)) => {
                        map.insert(k, v);
                    }
                    None => io.error(&format!("sh: {}: {}: must use subscript when assigning associative array", name, s)),
                }
            }
            self.assoc.insert(name.to_string(), map);
            self.vars.remove(name);
            return Ok(());
        }
        let mut arr = if append { self.arrays.remove(name).unwrap_or_default() } else { Vec::new() };
        if append && arr.is_empty() {
            if let Some(v) = self.vars.get(name).and_then(|v| v.value.clone()) {
                arr.push(v);
            }
        }
        for e in elems {
            if keyed(e) {
                let s = self.expand_string(e, io)?;
                if let Some((k, v)) = split(&s) {
                    let i = match arith::eval(self, &k) {
                        Ok(i) if (0..=1_000_000).contains(&i) => i as usize,
                        _ => {
                            io.error(&format!("sh: {}[{}]: bad array subscript", name, k));
                            return Err(Flow::Exit(1));
                        }
                    };
                    if arr.len() <= i {
                        arr.resize(i + 1, String::new());
                    }
                    arr[i] = v;
                    continue;
                }
            }
            arr.extend(self.expand(e, io)?);
        }
        self.arrays.insert(name.to_string(), arr);
        self.vars.remove(name);
        Ok(())
    }

    /// Runs a command given as fields: a function, else a builtin.
    pub(crate) fn run_args(&mut self, args: &[String], io: &Io) -> Status {
        if let Some(body) = self.functions.get(&args[0]).cloned() {
            return self.call(&body, args, io);
        }
        if args[0].contains('/') {
            return self.run_file(&args[0], &args[1..], &[], io);
        }
        builtins::run(self, args, io)
    }

    /// Runs a shell script file in a subshell, as `./x.sh`, `sh x.sh` or
    /// `bash x.sh` would: with its arguments, and `opts` (like "-e")
    /// set first. Files that are not shell scripts cannot run here.
    pub(crate) fn run_file(&mut self, path: &str, args: &[String], opts: &[String], io: &Io) -> Status {
        let data = match builtins::read_file(&self.resolve(path)) {
            Ok(d) => d,
            Err(e) => {
                io.error(&format!("sh: {}: {}", path, builtins::message(&e)));
                return Ok(if e.kind() == io::ErrorKind::NotFound { 127 } else { 126 });
            }
        };
        let src = String::from_utf8_lossy(&data).into_owned();
        if let Some(first) = src.lines().next() {
            if first.starts_with("#!") && !(first.contains("sh") || first.contains("bash")) {
                io.error(&format!("sh: {}: cannot run {} here (only shell scripts run)", path, first[2..].trim()));
                return Ok(126);
            }
        }
        if data.contains(&0) {
            io.error(&format!("sh: {}: cannot execute binary file", path));
            return Ok(126);
        }
        self.run_sub(&src, path, args, opts, io)
    }

    /// Runs source text in a subshell as a new shell would: options off
    /// but those given, `$0` and the arguments set.
    pub(crate) fn run_sub(&mut self, src: &str, _name: &str, args: &[String], opts: &[String], io: &Io) -> Status {
        self.enter(io)?;
        let mut sub = self.clone();
        sub.errexit = false;
        sub.pipefail = false;
        sub.nounset = false;
        sub.xtrace = false;
        sub.loops = 0;
        sub.no_errexit = 0;
        sub.locals.clear();
        sub.functions.clear();
        sub.args = args.to_vec();
        // Only exported variables reach a new shell.
        sub.vars.retain(|_, v| v.exported || v.value.is_none());
        let mut set_args = vec!["set".to_string()];
        set_args.extend(opts.iter().cloned());
        let r = if opts.is_empty() {
            sub.run_source(src, io)
        } else {
            match builtins::run(&mut sub, &set_args, io) {
                Ok(0) => sub.run_source(src, io),
                r => r,
            }
        };
        self.depth -= 1;
        match r {
            Ok(s) | Err(Flow::Exit(s)) | Err(Flow::Return(s)) => Ok(s),
            Err(_) => Ok(0),
        }
    }

    fn call(&mut self, body: &Command, args: &[String], io: &Io) -> Status {
        self.enter(io)?;
        let saved_args = std::mem::replace(&mut self.args, args[1..].to_vec());
        self.locals.push(Vec::new());
        self.local_attrs.push(Vec::new());
        // FUNCNAME: the running functions, innermost first.
        self.arrays.entry("FUNCNAME".to_string()).or_default().insert(0, args[0].clone());
        let saved_loops = std::mem::replace(&mut self.loops, 0);
        let r = self.run_command(body, io);
        self.loops = saved_loops;
        if let Some(names) = self.arrays.get_mut("FUNCNAME") {
            if !names.is_empty() {
                names.remove(0);
            }
            if names.is_empty() {
                self.arrays.remove("FUNCNAME");
            }
        }
        if let Some(frame) = self.local_attrs.pop() {
            restore(&mut self.attrs, frame.into_iter().rev());
        }
        if let Some(frame) = self.locals.pop() {
            restore(&mut self.vars, frame.into_iter().rev());
        }
        self.args = saved_args;
        self.depth -= 1;
        match r {
            Err(Flow::Return(s)) => Ok(s),
            r => r,
        }
    }

    /// Applies redirections to io; None (after reporting) if one failed.
    pub(crate) fn redirect(&mut self, redirects: &[Redirect], io: &Io) -> Result<Option<Io>, Flow> {
        if redirects.is_empty() {
            return Ok(Some(io.clone()));
        }
        let mut cio = io.clone();
        for r in redirects {
            if r.op == RedirOp::Here {
                let text = self.expand_string(&r.target, io)?;
                let buf = match Buf::from_vec(text.into_bytes()) {
                    Ok(b) => b,
                    Err(e) => {
                        io.error(&format!("sh: {}", builtins::message(&e)));
                        return Ok(None);
                    }
                };
                if r.fd == 0 {
                    cio.stdin = Some(Rc::new(RefCell::new(Input { buf, pos: 0 })));
                }
                continue;
            }
            let fields = self.expand(&r.target, io)?;
            if fields.len() != 1 {
                io.error(&format!("sh: {}: ambiguous redirect", fields.join(" ")));
                return Ok(None);
            }
            let name = &fields[0];
            if r.op == RedirOp::Dup {
                let sink = match name.as_str() {
                    "1" => cio.out.clone(),
                    "2" => cio.err.clone(),
                    "-" => Sink::Null,
                    "0" if r.fd == 0 => continue,
                    n if self.fds.iter().any(|(f, _, _)| f.to_string() == n) => {
                        match self.fds.iter().find(|(f, _, _)| f.to_string() == n) {
                            Some((_, s, _)) => s.clone(),
                            None => Sink::Null,
                        }
                    }
                    _ => {
                        io.error(&format!("sh: {}: Bad file descriptor", name));
                        return Ok(None);
                    }
                };
                match r.fd {
                    1 => cio.out = sink,
                    2 => cio.err = sink,
                    0 => {}
                    _ => {}
                }
                continue;
            }
            if r.op == RedirOp::In {
                let data = if name == "/dev/null" {
                    Ok(Vec::new())
                } else if let Some(d) = self.proc_file(name) {
                    Ok(d.to_vec())
                } else {
                    read_limited(&self.resolve(name))
                };
                let buf = match data.and_then(Buf::from_vec) {
                    Ok(b) => b,
                    Err(e) => {
                        io.error(&format!("sh: {}: {}", name, builtins::message(&e)));
                        return Ok(None);
                    }
                };
                if r.fd == 0 {
                    cio.stdin = Some(Rc::new(RefCell::new(Input { buf, pos: 0 })));
                }
                continue;
            }
            let sink = if name == "/dev/null" {
                Sink::Null
            } else if name == "/dev/stderr" {
                cio.err.clone()
            } else if name == "/dev/stdout" {
                cio.out.clone()
            } else {
                let append = matches!(r.op, RedirOp::Append | RedirOp::AppendErr);
                let mut opts = OpenOptions::new();
                opts.create(true);
                if append {
                    opts.append(true);
                } else {
                    opts.write(true).truncate(true);
                }
                match opts.open(self.resolve(name)) {
                    Ok(f) => Sink::File(Rc::new(RefCell::new(f))),
                    Err(e) => {
                        io.error(&format!("sh: {}: {}", name, builtins::message(&e)));
                        return Ok(None);
                    }
                }
            };
            match (r.op, r.fd) {
                (RedirOp::OutErr, _) | (RedirOp::AppendErr, _) => {
                    cio.out = sink.clone();
                    cio.err = sink;
                }
                (_, 2) => cio.err = sink,
                (_, 1) => cio.out = sink,
                _ => {}
            }
        }
        Ok(Some(cio))
    }

    /// The value of a variable: the script's own, else the job's.
    pub(crate) fn var(&self, name: &str) -> Option<String> {
        match self.vars.get(name) {
            Some(v) => v.value.clone(),
            None => wasmrunner::var(name),
        }
    }

    /// Whether a variable is exported (job variables are).
    pub(crate) fn exported(&self, name: &str) -> bool {
        match self.vars.get(name) {
            Some(v) => v.exported && v.value.is_some(),
            None => wasmrunner::var(name).is_some(),
        }
    }

    /// Sets a variable, keeping whether it is exported.
    pub(crate) fn set_var(&mut self, name: &str, mut value: String, io: &Io) -> Result<(), Flow> {
        if let Some(&attrs) = self.attrs.get(name) {
            if attrs & ATTR_READONLY != 0 {
                io.error(&format!("sh: {}: readonly variable", name));
                return Err(Flow::Exit(1));
            }
            if attrs & ATTR_INTEGER != 0 {
                value = self.integer_value(&value, io)?;
            }
            if attrs & ATTR_LOWER != 0 {
                value = value.to_lowercase();
            } else if attrs & ATTR_UPPER != 0 {
                value = value.to_uppercase();
            }
        }
        if value.len() > MAX_VAR {
            io.error(&format!(
                "sh: {}: value too long (variables hold at most {} MiB)",
                name,
                MAX_VAR >> 20
            ));
            return Err(Flow::Exit(1));
        }
        let exported = self.allexport || self.exported(name);
        self.vars.insert(
            name.to_string(),
            Var {
                value: Some(value),
                exported,
            },
        );
        Ok(())
    }

    /// The value of an integer variable given text: its arithmetic value
    /// (empty is 0).
    pub(crate) fn integer_value(&mut self, text: &str, io: &Io) -> Result<String, Flow> {
        if text.trim().is_empty() {
            return Ok("0".to_string());
        }
        match arith::eval(self, text) {
            Ok(n) => Ok(n.to_string()),
            Err(msg) => {
                io.error(&format!("sh: {}: {}", text, msg));
                Err(Flow::Exit(1))
            }
        }
    }

    /// Whether name is readonly.
    pub(crate) fn readonly(&self, name: &str) -> bool {
        self.attrs.get(name).map(|a| a & ATTR_READONLY != 0).unwrap_or(false)
    }

    /// Makes name local to the running function.
    pub(crate) fn make_local(&mut self, name: &str) {
        let old = self.vars.get(name).cloned();
        if let Some(frame) = self.locals.last_mut() {
            if frame.iter().any(|(n, _)| n == name) {
                return;
            }
            frame.push((name.to_string(), old));
            // A local starts without the attributes of what it hides.
            let attrs = self.attrs.remove(name);
            if let Some(frame) = self.local_attrs.last_mut() {
                frame.push((name.to_string(), attrs));
            }
        }
    }

    /// A process substitution's output, if name is one's.
    pub(crate) fn proc_file(&self, name: &str) -> Option<Rc<Vec<u8>>> {
        self.proc_files.iter().find(|(n, _)| n == name).map(|(_, d)| d.clone())
    }

    /// Reads a file named by a command (or a process substitution).
    pub(crate) fn read_path(&self, name: &str) -> io::Result<Vec<u8>> {
        if let Some(d) = self.proc_file(name) {
            return Ok(d.to_vec());
        }
        if name == "/dev/null" {
            return Ok(Vec::new());
        }
        builtins::read_file(&self.resolve(name))
    }

    /// The path for the file system of a path given to a command: the
    /// sandbox path under [`Shell::root`].
    pub(crate) fn resolve(&self, p: &str) -> String {
        let g = self.guest_path(p);
        if (g == "/tmp" || g.starts_with("/tmp/")) && !TMP_MADE.with(|m| m.get()) {
            // Scripts write to /tmp as if it were there: the sandbox's
            // is made on first use (as mktemp does), in the build dir.
            let _ = std::fs::create_dir_all(format!("{}/tmp", self.root));
            TMP_MADE.with(|m| m.set(true));
        }
        format!("{}{}", self.root, g)
    }

    /// The sandbox path ("/a/b") of a path given to a command, relative
    /// to the working dir unless absolute. `..` never leaves the build
    /// dir (and the sandbox would not let it anyway).
    pub(crate) fn guest_path(&self, p: &str) -> String {
        let mut parts: Vec<&str> = Vec::new();
        let p = self.strip_project_dir(p);
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

    /// A path under $CI_PROJECT_DIR (what pwd shows) as a sandbox path.
    fn strip_project_dir<'a>(&self, p: &'a str) -> std::borrow::Cow<'a, str> {
        if let Some(base) = self.var("CI_PROJECT_DIR") {
            let base = base.trim_end_matches('/');
            if !base.is_empty() {
                if p == base {
                    return "/".into();
                }
                if let Some(rest) = p.strip_prefix(base) {
                    if rest.starts_with('/') {
                        return rest.to_string().into();
                    }
                }
            }
        }
        p.into()
    }

    /// The working dir as pwd shows it (under $CI_PROJECT_DIR).
    pub(crate) fn pwd(&self) -> String {
        let base = self
            .var("CI_PROJECT_DIR")
            .filter(|d| !d.is_empty())
            .unwrap_or_else(|| "/".to_string());
        if self.cwd.is_empty() {
            base
        } else {
            format!("{}/{}", base.trim_end_matches('/'), self.cwd)
        }
    }
}

/// Puts back saved entries of a map: each name's old value, or none.
fn restore<T>(map: &mut BTreeMap<String, T>, saved: impl Iterator<Item = (String, Option<T>)>) {
    for (n, old) in saved {
        match old {
            Some(v) => {
                map.insert(n, v);
            }
            None => {
                map.remove(&n);
            }
        }
    }
}

/// Whether a pipeline is one compound command whose failing status comes
/// from the commands inside it (a loop, `if`, `case`, `{ }`): as in bash,
/// set -e stopped the shell there already if it was to (so `while :; do
/// [ $i -ge 3 ] && break; done` goes on with the loop's status 1).
fn errexit_exempt(p: &Pipeline) -> bool {
    match p.commands.as_slice() {
        [Command::Compound(c, _)] => matches!(
            **c,
            Compound::Brace(_) | Compound::If { .. } | Compound::For { .. } | Compound::While { .. } | Compound::Case { .. } | Compound::ArithFor { .. }
        ),
        _ => false,
    }
}

/// Reads a file for `<`, at most what the buffers may still hold.
fn read_limited(path: &str) -> io::Result<Vec<u8>> {
    let f = File::open(path)?;
    if f.metadata()?.is_dir() {
        return Err(io::Error::new(io::ErrorKind::Other, "Is a directory"));
    }
    let mut v = Vec::new();
    f.take(MAX_BUFFERED as u64 + 1).read_to_end(&mut v)?;
    Ok(v)
}

fn is_assignment_word(w: &parse::Word) -> bool {
    match w.parts.first() {
        Some(parse::Part::Lit(s)) => match s.find('=') {
            Some(i) => parse::is_name(s[..i].trim_end_matches('+')),
            None => false,
        },
        _ => false,
    }
}

/// Quotes a field for `set -x` as bash does.
fn trace_quote(s: &str) -> String {
    if !s.is_empty()
        && s.chars()
            .all(|c| c.is_ascii_alphanumeric() || "_-./=:,+@%^".contains(c))
    {
        s.to_string()
    } else {
        format!("'{}'", s.replace('\'', "'\\''"))
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

    #[test]
    fn buffers_are_bounded() {
        let mut b = Buf::default();
        assert!(b.push(&vec![0u8; MAX_BUFFERED / 2]).is_ok());
        let mut c = Buf::default();
        assert!(c.push(&vec![0u8; MAX_BUFFERED / 2 + 1]).is_err());
        drop(b);
        assert!(c.push(&vec![0u8; MAX_BUFFERED / 2 + 1]).is_ok());
    }
}
