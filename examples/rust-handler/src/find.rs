//! find: GNU find's expressions (tests, operators, actions) over the build
//! dir, walking each dir's entries in sorted order (GNU's order is the
//! file system's).

use std::fs;
use std::time::{SystemTime, UNIX_EPOCH};

use crate::builtins::{base_name, message};
use crate::regex::{Regex, Syntax};
use crate::{Flow, Io, Shell, Status};

enum Test {
    Name(String, bool),
    Path(String, bool),
    Regex(Regex),
    Type(Vec<char>),
    Empty,
    /// Modified later than this (seconds, nanoseconds).
    Newer(u64, u32),
    /// -size: the comparison, the count, the unit in bytes.
    Size(char, u64, u64),
    /// -mtime, -mmin: the comparison, the count, the unit in seconds.
    Age(char, u64, u64),
    Const(bool),
}

enum Action {
    Print(char),
    Printf(String),
    Exec(Vec<String>),
    /// -exec ... {} +: its command and the paths gathered.
    ExecBatch(Vec<String>, usize),
    Delete,
    Prune,
    Quit,
}

enum Expr {
    And(Box<Expr>, Box<Expr>),
    Or(Box<Expr>, Box<Expr>),
    Not(Box<Expr>),
    Test(Test),
    Action(Action),
}

struct Parser<'a> {
    args: &'a [String],
    i: usize,
    has_action: bool,
    depth_first: bool,
    maxdepth: usize,
    mindepth: usize,
    batches: usize,
    regex_extended: bool,
    sh: &'a Shell,
}

fn num_arg(s: &str) -> Option<(char, u64)> {
    let (cmp, digits) = match s.chars().next() {
        Some(c @ ('+' | '-')) => (c, &s[1..]),
        _ => ('=', s),
    };
    digits.parse::<u64>().ok().map(|n| (cmp, n))
}

fn mtime(m: &fs::Metadata) -> (u64, u32) {
    m.modified()
        .ok()
        .and_then(|t| t.duration_since(UNIX_EPOCH).ok())
        .map(|d| (d.as_secs(), d.subsec_nanos()))
        .unwrap_or((0, 0))
}

impl<'a> Parser<'a> {
    fn next(&mut self) -> Option<&'a str> {
        let a = self.args.get(self.i)?;
        self.i += 1;
        Some(a.as_str())
    }

    fn value(&mut self, what: &str) -> Result<&'a str, String> {
        self.next().ok_or_else(|| format!("missing argument to `{}'", what))
    }

    fn or(&mut self) -> Result<Expr, String> {
        let mut e = self.and()?;
        while matches!(self.args.get(self.i).map(|s| s.as_str()), Some("-o") | Some("-or") | Some(",")) {
            self.i += 1;
            let r = self.and()?;
            e = Expr::Or(Box::new(e), Box::new(r));
        }
        Ok(e)
    }

    fn and(&mut self) -> Result<Expr, String> {
        let mut e = self.unary()?;
        loop {
            match self.args.get(self.i).map(|s| s.as_str()) {
                None | Some("-o") | Some("-or") | Some(",") | Some(")") => return Ok(e),
                Some("-a") | Some("-and") => self.i += 1,
                _ => {}
            }
            let r = self.unary()?;
            e = Expr::And(Box::new(e), Box::new(r));
        }
    }

    fn unary(&mut self) -> Result<Expr, String> {
        let a = match self.next() {
            Some(a) => a,
            None => return Err("expected an expression".into()),
        };
        match a {
            "!" | "-not" => Ok(Expr::Not(Box::new(self.unary()?))),
            "(" => {
                let e = self.or()?;
                if self.next() != Some(")") {
                    return Err("invalid expression; expected to find a ')' but didn't see one".into());
                }
                Ok(e)
            }
            _ => self.primary(a),
        }
    }

    fn primary(&mut self, a: &'a str) -> Result<Expr, String> {
        let test = |t| Ok(Expr::Test(t));
        match a {
            "-name" | "-iname" => {
                let v = self.value(a)?;
                test(Test::Name(v.to_string(), a == "-iname"))
            }
            "-path" | "-wholename" | "-ipath" | "-iwholename" => {
                let v = self.value(a)?;
                test(Test::Path(v.to_string(), a.starts_with("-i")))
            }
            "-regex" | "-iregex" => {
                let v = self.value(a)?;
                let (pat, syntax) = if self.regex_extended {
                    (format!("^({})$", v), Syntax::Extended)
                } else {
                    // Emacs syntax: BRE with + and ? as operators.
                    let mut p = String::from("^\\(");
                    let mut esc = false;
                    for c in v.chars() {
                        if !esc && (c == '+' || c == '?') {
                            p.push('\\');
                        }
                        esc = !esc && c == '\\';
                        p.push(c);
                    }
                    p.push_str("\\)$");
                    (p, Syntax::Basic)
                };
                match Regex::new(&pat, syntax, a == "-iregex") {
                    Ok(r) => test(Test::Regex(r)),
                    Err(e) => Err(format!("invalid regular expression '{}': {}", v, e)),
                }
            }
            "-regextype" => {
                let v = self.value(a)?;
                self.regex_extended = match v {
                    "posix-extended" | "egrep" | "posix-egrep" => true,
                    "emacs" | "posix-basic" | "grep" | "findutils-default" => false,
                    _ => return Err(format!("Unknown regular expression type '{}'", v)),
                };
                test(Test::Const(true))
            }
            "-type" | "-xtype" => {
                let v = self.value(a)?;
                let kinds: Vec<char> = v.split(',').filter_map(|k| k.chars().next()).collect();
                if kinds.is_empty() || kinds.iter().any(|k| !"fdlpsbc".contains(*k)) {
                    return Err(format!("Unknown argument to {}: {}", a, v));
                }
                test(Test::Type(kinds))
            }
            "-empty" => test(Test::Empty),
            "-true" => test(Test::Const(true)),
            "-false" => test(Test::Const(false)),
            "-newer" => {
                let v = self.value(a)?;
                match fs::metadata(self.sh.resolve(v)) {
                    Ok(m) => {
                        let (s, n) = mtime(&m);
                        test(Test::Newer(s, n))
                    }
                    Err(e) => Err(format!("'{}': {}", v, message(&e))),
                }
            }
            "-size" => {
                let v = self.value(a)?;
                let (digits, unit) = match v.chars().last() {
                    Some(c) if c.is_ascii_alphabetic() => (
                        &v[..v.len() - 1],
                        match c {
                            'c' => 1,
                            'w' => 2,
                            'b' => 512,
                            'k' => 1024,
                            'M' => 1 << 20,
                            'G' => 1 << 30,
                            _ => return Err(format!("invalid -size type `{}'", c)),
                        },
                    ),
                    _ => (v, 512),
                };
                match num_arg(digits) {
                    Some((c, n)) => test(Test::Size(c, n, unit)),
                    None => Err(format!("invalid argument `{}' to `-size'", v)),
                }
            }
            "-mtime" | "-mmin" => {
                let v = self.value(a)?;
                match num_arg(v) {
                    Some((c, n)) => test(Test::Age(c, n, if a == "-mtime" { 86400 } else { 60 })),
                    None => Err(format!("invalid argument `{}' to `{}'", v, a)),
                }
            }
            "-maxdepth" | "-mindepth" => {
                let v = self.value(a)?;
                let n = v
                    .parse::<usize>()
                    .map_err(|_| format!("Expected a positive decimal integer argument to {}, but got `{}'", a, v))?;
                if a == "-maxdepth" {
                    self.maxdepth = n;
                } else {
                    self.mindepth = n;
                }
                test(Test::Const(true))
            }
            "-depth" | "-d" => {
                self.depth_first = true;
                test(Test::Const(true))
            }
            "-xdev" | "-mount" | "-noleaf" | "-follow" | "-ignore_readdir_race" => test(Test::Const(true)),
            "-print" | "-print0" => {
                self.has_action = true;
                Ok(Expr::Action(Action::Print(if a == "-print" { '\n' } else { '\0' })))
            }
            "-printf" => {
                self.has_action = true;
                let v = self.value(a)?;
                Ok(Expr::Action(Action::Printf(v.to_string())))
            }
            "-delete" => {
                self.has_action = true;
                self.depth_first = true;
                Ok(Expr::Action(Action::Delete))
            }
            "-prune" => Ok(Expr::Action(Action::Prune)),
            "-quit" => Ok(Expr::Action(Action::Quit)),
            "-exec" | "-execdir" | "-ok" | "-okdir" => {
                if a != "-exec" {
                    return Err(format!("{} is not supported here (use -exec)", a));
                }
                self.has_action = true;
                let mut cmd = Vec::new();
                loop {
                    match self.next() {
                        None => return Err(format!("missing argument to `{}'", a)),
                        Some(";") => return Ok(Expr::Action(Action::Exec(cmd))),
                        Some("+") if cmd.last().map(|l| l == "{}").unwrap_or(false) => {
                            cmd.pop();
                            self.batches += 1;
                            return Ok(Expr::Action(Action::ExecBatch(cmd, self.batches - 1)));
                        }
                        Some(w) => cmd.push(w.to_string()),
                    }
                }
            }
            _ if a.starts_with('-') => Err(format!("unknown predicate `{}'", a)),
            _ => Err(format!("paths must precede expression: `{}'", a)),
        }
    }
}

/// One file's facts, read once.
struct Entry<'a> {
    path: &'a str,
    name: &'a str,
    meta: Option<fs::Metadata>,
    is_dir: bool,
    depth: usize,
}

struct Run<'a> {
    io: &'a Io,
    out: Vec<u8>,
    status: i32,
    batches: Vec<(Vec<String>, Vec<String>)>,
    prune: bool,
    quit: bool,
    now: u64,
}

impl<'a> Run<'a> {
    fn flush(&mut self) -> bool {
        let ok = self.out.is_empty() || self.io.write(&self.out);
        self.out.clear();
        ok
    }

    fn eval(&mut self, sh: &mut Shell, e: &Expr, f: &Entry) -> Result<bool, Flow> {
        Ok(match e {
            Expr::And(a, b) => self.eval(sh, a, f)? && self.eval(sh, b, f)?,
            Expr::Or(a, b) => self.eval(sh, a, f)? || self.eval(sh, b, f)?,
            Expr::Not(a) => !self.eval(sh, a, f)?,
            Expr::Test(t) => test(t, f, sh, self.now),
            Expr::Action(a) => match a {
                Action::Print(end) => {
                    self.out.extend_from_slice(f.path.as_bytes());
                    self.out.push(*end as u8);
                    if self.out.len() > 64 << 10 && !self.flush() {
                        self.quit = true;
                        self.status = 1;
                    }
                    true
                }
                Action::Printf(fmt) => {
                    let s = printf(fmt, f, sh);
                    self.out.extend_from_slice(&crate::utils::raw(&s));
                    true
                }
                Action::Exec(cmd) => {
                    if !self.flush() {
                        return Err(Flow::Exit(1));
                    }
                    let args: Vec<String> = cmd.iter().map(|w| w.replace("{}", f.path)).collect();
                    if args.is_empty() {
                        return Ok(true);
                    }
                    sh.no_errexit += 1;
                    let r = sh.run_args(&args, self.io);
                    sh.no_errexit -= 1;
                    r? == 0
                }
                Action::ExecBatch(_, k) => {
                    self.batches[*k].1.push(f.path.to_string());
                    true
                }
                Action::Delete => {
                    let p = sh.resolve(f.path);
                    let r = if f.is_dir { fs::remove_dir(&p) } else { fs::remove_file(&p) };
                    match r {
                        Ok(()) => true,
                        Err(e) => {
                            self.flush();
                            self.io.error(&format!("find: cannot delete '{}': {}", f.path, message(&e)));
                            self.status = 1;
                            false
                        }
                    }
                }
                Action::Prune => {
                    self.prune = true;
                    true
                }
                Action::Quit => {
                    self.quit = true;
                    true
                }
            },
        })
    }

    fn run_batches(&mut self, sh: &mut Shell) -> Result<(), Flow> {
        if !self.flush() {
            return Err(Flow::Exit(1));
        }
        for k in 0..self.batches.len() {
            let paths = std::mem::take(&mut self.batches[k].1);
            if paths.is_empty() {
                continue;
            }
            let mut args = self.batches[k].0.clone();
            args.extend(paths);
            sh.no_errexit += 1;
            let r = sh.run_args(&args, self.io);
            sh.no_errexit -= 1;
            if r? != 0 {
                self.status = 1;
            }
        }
        Ok(())
    }
}

fn test(t: &Test, f: &Entry, sh: &Shell, now: u64) -> bool {
    let kind = |m: &fs::Metadata| {
        let ft = m.file_type();
        if ft.is_symlink() {
            'l'
        } else if ft.is_dir() {
            'd'
        } else if ft.is_file() {
            'f'
        } else {
            'p'
        }
    };
    let size = f.meta.as_ref().map(|m| if f.is_dir { 4096 } else { m.len() }).unwrap_or(0);
    match t {
        Test::Name(p, icase) => {
            if *icase {
                crate::glob::matches(&p.to_lowercase(), &f.name.to_lowercase())
            } else {
                crate::glob::matches(p, f.name)
            }
        }
        Test::Path(p, icase) => {
            if *icase {
                crate::glob::matches(&p.to_lowercase(), &f.path.to_lowercase())
            } else {
                crate::glob::matches(p, f.path)
            }
        }
        Test::Regex(r) => r.is_match(&f.path.chars().collect::<Vec<char>>()),
        Test::Type(kinds) => f.meta.as_ref().map(|m| kinds.contains(&kind(m))).unwrap_or(false),
        Test::Empty => {
            if f.is_dir {
                fs::read_dir(sh.resolve(f.path)).map(|mut d| d.next().is_none()).unwrap_or(false)
            } else {
                f.meta.as_ref().map(|m| m.is_file() && m.len() == 0).unwrap_or(false)
            }
        }
        Test::Newer(s, n) => f.meta.as_ref().map(|m| mtime(m) > (*s, *n)).unwrap_or(false),
        Test::Size(c, n, unit) => {
            let v = (size + unit - 1) / unit;
            match c {
                '+' => v > *n,
                '-' => v < *n,
                _ => v == *n,
            }
        }
        Test::Age(c, n, unit) => {
            let t = f.meta.as_ref().map(|m| mtime(m).0).unwrap_or(0);
            let age = now.saturating_sub(t) / unit;
            match c {
                '+' => age > *n,
                '-' => age < *n,
                _ => age == *n,
            }
        }
        Test::Const(b) => *b,
    }
}

/// -printf's directives: %p %f %h %P %s %d %m %y %t... and escapes.
fn printf(fmt: &str, f: &Entry, sh: &Shell) -> String {
    let mut out = String::new();
    let cs: Vec<char> = fmt.chars().collect();
    let mut i = 0;
    while i < cs.len() {
        let c = cs[i];
        i += 1;
        if c == '\\' && i < cs.len() {
            let mut s = String::new();
            crate::utils::unescape(&format!("\\{}", cs[i]), &mut s, false);
            if cs[i] == '0' {
                s = "\0".into();
            }
            out.push_str(&s);
            i += 1;
            continue;
        }
        if c != '%' || i >= cs.len() {
            out.push(c);
            continue;
        }
        let d = cs[i];
        i += 1;
        let size = f.meta.as_ref().map(|m| if f.is_dir { 4096 } else { m.len() }).unwrap_or(0);
        match d {
            '%' => out.push('%'),
            'p' => out.push_str(f.path),
            'f' => out.push_str(f.name),
            'h' => out.push_str(match f.path.rfind('/') {
                Some(0) => "/",
                Some(k) => &f.path[..k],
                None => ".",
            }),
            'P' => {
                // The path under its starting point.
                let rest = f.path.splitn(f.depth + 1, '/').collect::<Vec<_>>();
                let start = f.path.len() - rest[1..].join("/").len();
                out.push_str(if f.depth == 0 { "" } else { &f.path[start..] });
            }
            's' => out.push_str(&size.to_string()),
            'd' => out.push_str(&f.depth.to_string()),
            'm' => out.push_str(&format!("{:o}", crate::coreutils::mode_of(sh, f.path, f.is_dir))),
            'y' => out.push(if f.is_dir {
                'd'
            } else if f.meta.as_ref().map(|m| m.file_type().is_symlink()).unwrap_or(false) {
                'l'
            } else {
                'f'
            }),
            'T' | 'A' | 'C' if cs.get(i) == Some(&'@') => {
                i += 1;
                let t = f.meta.as_ref().map(|m| mtime(m).0).unwrap_or(0);
                out.push_str(&t.to_string());
            }
            't' => {
                let t = f.meta.as_ref().map(|m| mtime(m).0).unwrap_or(0);
                out.push_str(&crate::utils::format_date(t as i64, "%a %b %d %H:%M:%S %Y"));
            }
            other => {
                out.push('%');
                out.push(other);
            }
        }
    }
    out
}

/// find [PATH...] [EXPRESSION]
pub(crate) fn find(sh: &mut Shell, args: &[String], io: &Io) -> Status {
    let mut i = 1;
    while i < args.len() && matches!(args[i].as_str(), "-L" | "-H" | "-P") {
        i += 1;
    }
    let mut roots = Vec::new();
    while i < args.len() && !(args[i].starts_with('-') && args[i].len() > 1) && args[i] != "!" && args[i] != "(" {
        roots.push(args[i].clone());
        i += 1;
    }
    if roots.is_empty() {
        roots.push(".".into());
    }
    let mut p = Parser {
        args,
        i,
        has_action: false,
        depth_first: false,
        maxdepth: usize::MAX,
        mindepth: 0,
        batches: 0,
        regex_extended: false,
        sh: &*sh,
    };
    let expr = if p.i < args.len() {
        match p.or() {
            Ok(e) if p.i >= args.len() => Some(e),
            Ok(_) => {
                io.error(&format!("find: invalid expression; unexpected `{}'", args[p.i]));
                return Ok(1);
            }
            Err(e) => {
                io.error(&format!("find: {}", e));
                return Ok(1);
            }
        }
    } else {
        None
    };
    let print = Expr::Action(Action::Print('\n'));
    let expr = match (expr, p.has_action) {
        (None, _) => print,
        (Some(e), false) => Expr::And(Box::new(e), Box::new(print)),
        (Some(e), true) => e,
    };
    let (depth_first, maxdepth, mindepth, nbatches) = (p.depth_first, p.maxdepth, p.mindepth, p.batches);
    let mut batches = vec![(Vec::new(), Vec::new()); nbatches];
    collect_batches(&expr, &mut batches);
    let mut run = Run {
        io,
        out: Vec::new(),
        status: 0,
        batches,
        prune: false,
        quit: false,
        now: SystemTime::now().duration_since(UNIX_EPOCH).map(|d| d.as_secs()).unwrap_or(0),
    };
    let mut count = 0usize;
    'roots: for root in &roots {
        let meta = match fs::symlink_metadata(sh.resolve(root)) {
            Ok(m) => m,
            Err(e) => {
                run.flush();
                io.error(&format!("find: '{}': {}", root, message(&e)));
                run.status = 1;
                continue;
            }
        };
        // (path, depth, is_dir, children listed): with -depth a dir is
        // pushed back after its children, to be visited last.
        let mut stack = vec![(root.clone(), 0usize, meta.is_dir(), false)];
        while let Some((path, depth, is_dir, listed)) = stack.pop() {
            count += 1;
            if count > 1_000_000 {
                io.error("find: too many files");
                return Ok(1);
            }
            if is_dir && depth < maxdepth && !listed {
                let mut entries: Vec<(String, bool)> = match fs::read_dir(sh.resolve(&path)) {
                    Ok(rd) => rd
                        .flatten()
                        .map(|e| {
                            let n = e.file_name().to_string_lossy().into_owned();
                            let d = e.file_type().map(|t| t.is_dir()).unwrap_or(false);
                            (n, d)
                        })
                        .collect(),
                    Err(e) => {
                        run.flush();
                        io.error(&format!("find: '{}': {}", path, message(&e)));
                        run.status = 1;
                        Vec::new()
                    }
                };
                entries.sort();
                let visit_first = !depth_first;
                if visit_first {
                    run.prune = false;
                    if depth >= mindepth {
                        let meta = fs::symlink_metadata(sh.resolve(&path)).ok();
                        let name = if depth == 0 { path.trim_end_matches('/') } else { base_name(&path) };
                        let name = if name.is_empty() { "/" } else { name };
                        let entry = Entry { path: &path, name, meta, is_dir, depth };
                        run.eval(sh, &expr, &entry)?;
                    }
                    if run.quit {
                        break 'roots;
                    }
                    if run.prune {
                        continue;
                    }
                } else {
                    stack.push((path.clone(), depth, is_dir, true));
                }
                for (n, d) in entries.into_iter().rev() {
                    let p = if path.ends_with('/') { format!("{}{}", path, n) } else { format!("{}/{}", path, n) };
                    stack.push((p, depth + 1, d, false));
                }
                continue;
            }
            if depth >= mindepth {
                let meta = fs::symlink_metadata(sh.resolve(&path)).ok();
                let name = if depth == 0 { path.trim_end_matches('/') } else { base_name(&path) };
                let name = if name.is_empty() { "/" } else { name };
                let entry = Entry { path: &path, name, meta, is_dir, depth };
                run.eval(sh, &expr, &entry)?;
                if run.quit {
                    break 'roots;
                }
            }
        }
    }
    run.run_batches(sh)?;
    if !run.flush() {
        return Ok(1);
    }
    Ok(run.status)
}

/// Fills in the commands of the -exec ... + batches.
fn collect_batches(e: &Expr, out: &mut Vec<(Vec<String>, Vec<String>)>) {
    match e {
        Expr::And(a, b) | Expr::Or(a, b) => {
            collect_batches(a, out);
            collect_batches(b, out);
        }
        Expr::Not(a) => collect_batches(a, out),
        Expr::Action(Action::ExecBatch(cmd, k)) => out[*k].0 = cmd.clone(),
        _ => {}
    }
}
