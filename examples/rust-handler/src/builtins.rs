//! The shell's commands. Each returns its exit status; errors are written
//! to standard error as `NAME: message` with status 1 (2 for misuse).

use std::fs;
use std::io::{self, Read};
use std::path::Path;
use std::time::Duration;

use crate::{Exit, Io, Shell, STATUS_CANCELED};

type Builtin = fn(&mut Shell, &[String], &Io) -> Result<i32, Exit>;

/// The commands, sorted by name.
const BUILTINS: &[(&str, Builtin)] = &[
    (":", true_),
    ("[", test),
    ("artifact", artifact),
    ("cat", cat),
    ("cd", cd),
    ("cp", cp),
    ("echo", echo),
    ("env", env),
    ("exit", exit),
    ("export", export),
    ("false", false_),
    ("head", head),
    ("ls", ls),
    ("mkdir", mkdir),
    ("mv", mv),
    ("printenv", printenv),
    ("pwd", pwd),
    ("rm", rm),
    ("seq", seq),
    ("sleep", sleep),
    ("test", test),
    ("touch", touch),
    ("true", true_),
    ("unset", unset),
    ("wc", wc),
];

/// Runs the command args[0] with its arguments.
pub(crate) fn run(sh: &mut Shell, args: &[String], io: &Io) -> Result<i32, Exit> {
    let name = args[0].as_str();
    match BUILTINS.binary_search_by(|(n, _)| n.cmp(&name)) {
        Ok(i) => (BUILTINS[i].1)(sh, args, io),
        Err(_) => {
            io.error(&format!("shell: {}: command not found", name));
            Ok(127)
        }
    }
}

/// The message of an I/O error, without Rust's "(os error N)".
pub(crate) fn message(e: &io::Error) -> String {
    let s = e.to_string();
    match s.find(" (os error ") {
        Some(i) => s[..i].to_string(),
        None => s,
    }
}

/// Splits leading single-letter flags ("-rf", "-n") off the arguments
/// (after the command name). Flags must be among `known`; "--" ends them.
fn flags<'a>(
    name: &str,
    args: &'a [String],
    known: &str,
    io: &Io,
) -> Result<(Vec<char>, &'a [String]), i32> {
    let mut set = Vec::new();
    let mut i = 1;
    while i < args.len() {
        let a = &args[i];
        if a == "--" {
            i += 1;
            break;
        }
        if !a.starts_with('-') || a.len() == 1 {
            break;
        }
        for c in a[1..].chars() {
            if !known.contains(c) {
                io.error(&format!("{}: invalid option -- '{}'", name, c));
                return Err(2);
            }
            set.push(c);
        }
        i += 1;
    }
    Ok((set, &args[i..]))
}

macro_rules! flags_or_return {
    ($name:expr, $args:expr, $known:expr, $io:expr) => {
        match flags($name, $args, $known, $io) {
            Ok(v) => v,
            Err(status) => return Ok(status),
        }
    };
}

fn true_(_: &mut Shell, _: &[String], _: &Io) -> Result<i32, Exit> {
    Ok(0)
}

fn false_(_: &mut Shell, _: &[String], _: &Io) -> Result<i32, Exit> {
    Ok(1)
}

fn echo(_: &mut Shell, args: &[String], io: &Io) -> Result<i32, Exit> {
    let mut rest = &args[1..];
    let mut newline = true;
    while rest.first().map(|a| a == "-n").unwrap_or(false) {
        newline = false;
        rest = &rest[1..];
    }
    let mut s = rest.join(" ");
    if newline {
        s.push('\n');
    }
    io.print(&s);
    Ok(0)
}

fn exit(sh: &mut Shell, args: &[String], io: &Io) -> Result<i32, Exit> {
    match args.get(1) {
        None => Err(Exit(sh.status)),
        Some(n) => match n.parse::<i64>() {
            Ok(n) => Err(Exit(n.rem_euclid(256) as i32)),
            Err(_) => {
                io.error(&format!("exit: {}: numeric argument required", n));
                Err(Exit(2))
            }
        },
    }
}

/// Parses a duration like sleep(1) does: seconds with decimals, or with a
/// suffix s, m, h or d.
fn parse_duration(s: &str) -> Option<Duration> {
    let (num, mult) = match s.chars().last()? {
        's' => (&s[..s.len() - 1], 1.0),
        'm' => (&s[..s.len() - 1], 60.0),
        'h' => (&s[..s.len() - 1], 3600.0),
        'd' => (&s[..s.len() - 1], 86400.0),
        _ => (s, 1.0),
    };
    if num.is_empty() || !num.chars().all(|c| c.is_ascii_digit() || c == '.') {
        return None;
    }
    let secs = num.parse::<f64>().ok()? * mult;
    if !secs.is_finite() || !(0.0..1e10).contains(&secs) {
        return None;
    }
    Some(Duration::from_secs_f64(secs))
}

fn sleep(_: &mut Shell, args: &[String], io: &Io) -> Result<i32, Exit> {
    if args.len() < 2 {
        io.error("sleep: missing operand");
        return Ok(1);
    }
    let mut total = Duration::ZERO;
    for a in &args[1..] {
        match parse_duration(a) {
            Some(d) => total += d,
            None => {
                io.error(&format!("sleep: invalid time interval '{}'", a));
                return Ok(1);
            }
        }
    }
    match wasmrunner::sleep(total) {
        Ok(()) => Ok(0),
        // The job is over: stop the shell as sh does on SIGINT.
        Err(wasmrunner::Error::Canceled) => Err(Exit(STATUS_CANCELED)),
        Err(e) => {
            io.error(&format!("sleep: {}", e));
            Ok(1)
        }
    }
}

/// Standard input, or nothing outside a pipeline.
fn stdin(io: &Io) -> &[u8] {
    io.stdin.as_deref().unwrap_or(&[])
}

fn cat(sh: &mut Shell, args: &[String], io: &Io) -> Result<i32, Exit> {
    let (_, files) = flags_or_return!("cat", args, "", io);
    if files.is_empty() {
        let _ = io.out.write_all(stdin(io));
        return Ok(0);
    }
    let mut status = 0;
    for name in files {
        if name == "-" {
            let _ = io.out.write_all(stdin(io));
            continue;
        }
        if let Err(e) = copy_file(&sh.resolve(name), io) {
            io.error(&format!("cat: {}: {}", name, message(&e)));
            status = 1;
        }
    }
    Ok(status)
}

/// Copies a file to standard output in chunks.
fn copy_file(path: &str, io: &Io) -> io::Result<()> {
    let mut f = fs::File::open(path)?;
    if f.metadata()?.is_dir() {
        return Err(io::Error::new(io::ErrorKind::Other, "Is a directory"));
    }
    let mut buf = vec![0u8; 64 << 10];
    loop {
        let n = f.read(&mut buf)?;
        if n == 0 {
            return Ok(());
        }
        io.out.write_all(&buf[..n])?;
    }
}

/// The contents of the named files (or standard input), for head and wc.
/// Errors are reported and counted in status.
fn inputs(
    sh: &Shell,
    name: &str,
    files: &[String],
    io: &Io,
    status: &mut i32,
) -> Vec<(String, Vec<u8>)> {
    if files.is_empty() {
        return vec![(String::new(), stdin(io).to_vec())];
    }
    let mut out = Vec::new();
    for f in files {
        if f == "-" {
            out.push((f.clone(), stdin(io).to_vec()));
            continue;
        }
        match read_file(&sh.resolve(f)) {
            Ok(data) => out.push((f.clone(), data)),
            Err(e) => {
                io.error(&format!("{}: {}: {}", name, f, message(&e)));
                *status = 1;
            }
        }
    }
    out
}

fn read_file(path: &str) -> io::Result<Vec<u8>> {
    if fs::metadata(path)?.is_dir() {
        return Err(io::Error::new(io::ErrorKind::Other, "Is a directory"));
    }
    fs::read(path)
}

fn head(sh: &mut Shell, args: &[String], io: &Io) -> Result<i32, Exit> {
    let mut n: usize = 10;
    let mut files = Vec::new();
    let mut i = 1;
    while i < args.len() {
        let a = &args[i];
        let count = if a == "-n" {
            i += 1;
            match args.get(i) {
                Some(v) => Some(v.as_str()),
                None => {
                    io.error("head: option requires an argument -- 'n'");
                    return Ok(1);
                }
            }
        } else if let Some(v) = a.strip_prefix("-n") {
            Some(v)
        } else if a.len() > 1 && a.starts_with('-') && a[1..].chars().all(|c| c.is_ascii_digit()) {
            Some(&a[1..])
        } else {
            files.push(a.clone());
            None
        };
        if let Some(c) = count {
            match c.parse() {
                Ok(v) => n = v,
                Err(_) => {
                    io.error(&format!("head: invalid number of lines: '{}'", c));
                    return Ok(1);
                }
            }
        }
        i += 1;
    }
    let mut status = 0;
    let ins = inputs(sh, "head", &files, io, &mut status);
    let many = ins.len() > 1;
    for (k, (name, data)) in ins.iter().enumerate() {
        if many {
            io.print(&format!(
                "{}==> {} <==\n",
                if k > 0 { "\n" } else { "" },
                name
            ));
        }
        let mut end = 0;
        for _ in 0..n {
            match data[end..].iter().position(|&b| b == b'\n') {
                Some(p) => end += p + 1,
                None => {
                    end = data.len();
                    break;
                }
            }
        }
        let _ = io.out.write_all(&data[..end]);
    }
    Ok(status)
}

fn wc(sh: &mut Shell, args: &[String], io: &Io) -> Result<i32, Exit> {
    let (mut set, files) = flags_or_return!("wc", args, "lwc", io);
    if set.is_empty() {
        set = vec!['l', 'w', 'c'];
    }
    let mut status = 0;
    let ins = inputs(sh, "wc", files, io, &mut status);
    let mut totals = [0usize; 3];
    let mut out = String::new();
    let line = |counts: [usize; 3], name: &str| {
        let mut cols: Vec<String> = Vec::new();
        for (flag, n) in ['l', 'w', 'c'].iter().zip(counts.iter()) {
            if set.contains(flag) {
                cols.push(n.to_string());
            }
        }
        if !name.is_empty() {
            cols.push(name.to_string());
        }
        cols.join(" ") + "\n"
    };
    for (name, data) in &ins {
        let counts = [
            data.iter().filter(|&&b| b == b'\n').count(),
            String::from_utf8_lossy(data).split_whitespace().count(),
            data.len(),
        ];
        for (t, c) in totals.iter_mut().zip(counts.iter()) {
            *t += c;
        }
        out.push_str(&line(counts, name));
    }
    if ins.len() > 1 {
        out.push_str(&line(totals, "total"));
    }
    io.print(&out);
    Ok(status)
}

fn mkdir(sh: &mut Shell, args: &[String], io: &Io) -> Result<i32, Exit> {
    let (set, dirs) = flags_or_return!("mkdir", args, "p", io);
    if dirs.is_empty() {
        io.error("mkdir: missing operand");
        return Ok(1);
    }
    let parents = set.contains(&'p');
    let mut status = 0;
    for d in dirs {
        let path = sh.resolve(d);
        let r = if parents {
            fs::create_dir_all(&path)
        } else {
            fs::create_dir(&path)
        };
        if let Err(e) = r {
            io.error(&format!(
                "mkdir: cannot create directory '{}': {}",
                d,
                message(&e)
            ));
            status = 1;
        }
    }
    Ok(status)
}

fn touch(sh: &mut Shell, args: &[String], io: &Io) -> Result<i32, Exit> {
    let (_, files) = flags_or_return!("touch", args, "", io);
    if files.is_empty() {
        io.error("touch: missing file operand");
        return Ok(1);
    }
    let mut status = 0;
    for f in files {
        if let Err(e) = fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(sh.resolve(f))
        {
            io.error(&format!("touch: cannot touch '{}': {}", f, message(&e)));
            status = 1;
        }
    }
    Ok(status)
}

/// The names in a dir, sorted; dot files only with `all`.
fn dir_names(path: &str, all: bool) -> io::Result<Vec<String>> {
    let mut names = Vec::new();
    for entry in fs::read_dir(path)? {
        let name = entry?.file_name().to_string_lossy().into_owned();
        if all || !name.starts_with('.') {
            names.push(name);
        }
    }
    names.sort();
    Ok(names)
}

fn ls(sh: &mut Shell, args: &[String], io: &Io) -> Result<i32, Exit> {
    let (set, paths) = flags_or_return!("ls", args, "a1", io);
    let all = set.contains(&'a');
    let dot = [".".to_string()];
    let paths = if paths.is_empty() { &dot[..] } else { paths };
    let mut status = 0;
    let mut out = String::new();
    let (mut files, mut dirs) = (Vec::new(), Vec::new());
    for p in paths {
        match fs::metadata(sh.resolve(p)) {
            Ok(m) if m.is_dir() => dirs.push(p),
            Ok(_) => files.push(p),
            Err(e) => {
                io.error(&format!("ls: cannot access '{}': {}", p, message(&e)));
                status = 1;
            }
        }
    }
    files.sort();
    dirs.sort();
    for f in &files {
        out.push_str(f);
        out.push('\n');
    }
    let headers = paths.len() > 1;
    for (i, d) in dirs.iter().enumerate() {
        if headers {
            if i > 0 || !files.is_empty() {
                out.push('\n');
            }
            out.push_str(d);
            out.push_str(":\n");
        }
        match dir_names(&sh.resolve(d), all) {
            Ok(names) => {
                for n in names {
                    out.push_str(&n);
                    out.push('\n');
                }
            }
            Err(e) => {
                io.error(&format!(
                    "ls: cannot open directory '{}': {}",
                    d,
                    message(&e)
                ));
                status = 1;
            }
        }
    }
    io.print(&out);
    Ok(status)
}

/// The final path component of p.
fn base_name(p: &str) -> &str {
    p.trim_end_matches('/').rsplit('/').next().unwrap_or(p)
}

/// Where cp and mv put src: into dst if it is a dir.
fn destination(sh: &Shell, src: &str, dst: &str) -> String {
    let d = sh.resolve(dst);
    if Path::new(&d).is_dir() {
        sh.resolve(&format!("{}/{}", dst, base_name(src)))
    } else {
        d
    }
}

fn copy_tree(src: &str, dst: &str) -> io::Result<()> {
    fs::create_dir_all(dst)?;
    for entry in fs::read_dir(src)? {
        let entry = entry?;
        let name = entry.file_name().to_string_lossy().into_owned();
        let (s, d) = (format!("{}/{}", src, name), format!("{}/{}", dst, name));
        if entry.file_type()?.is_dir() {
            copy_tree(&s, &d)?;
        } else {
            fs::copy(&s, &d)?;
        }
    }
    Ok(())
}

fn cp(sh: &mut Shell, args: &[String], io: &Io) -> Result<i32, Exit> {
    let (set, rest) = flags_or_return!("cp", args, "rR", io);
    if rest.len() != 2 {
        io.error("cp: usage: cp [-r] SOURCE DEST");
        return Ok(1);
    }
    let (src, dst) = (&rest[0], &rest[1]);
    let from = sh.resolve(src);
    let is_dir = match fs::metadata(&from) {
        Ok(m) => m.is_dir(),
        Err(e) => {
            io.error(&format!("cp: cannot stat '{}': {}", src, message(&e)));
            return Ok(1);
        }
    };
    let to = destination(sh, src, dst);
    let r = if is_dir {
        if set.is_empty() {
            io.error(&format!(
                "cp: -r not specified; omitting directory '{}'",
                src
            ));
            return Ok(1);
        }
        if to == from || to.starts_with(&format!("{}/", from.trim_end_matches('/'))) {
            io.error(&format!(
                "cp: cannot copy a directory, '{}', into itself, '{}'",
                src, dst
            ));
            return Ok(1);
        }
        copy_tree(&from, &to)
    } else {
        fs::copy(&from, &to).map(|_| ())
    };
    if let Err(e) = r {
        io.error(&format!(
            "cp: cannot copy '{}' to '{}': {}",
            src,
            dst,
            message(&e)
        ));
        return Ok(1);
    }
    Ok(0)
}

fn mv(sh: &mut Shell, args: &[String], io: &Io) -> Result<i32, Exit> {
    let (_, rest) = flags_or_return!("mv", args, "", io);
    if rest.len() != 2 {
        io.error("mv: usage: mv SOURCE DEST");
        return Ok(1);
    }
    let (src, dst) = (&rest[0], &rest[1]);
    if let Err(e) = fs::rename(sh.resolve(src), destination(sh, src, dst)) {
        io.error(&format!(
            "mv: cannot move '{}' to '{}': {}",
            src,
            dst,
            message(&e)
        ));
        return Ok(1);
    }
    Ok(0)
}

fn rm(sh: &mut Shell, args: &[String], io: &Io) -> Result<i32, Exit> {
    let (set, paths) = flags_or_return!("rm", args, "rRf", io);
    let recursive = set.contains(&'r') || set.contains(&'R');
    let force = set.contains(&'f');
    if paths.is_empty() && !force {
        io.error("rm: missing operand");
        return Ok(1);
    }
    let mut status = 0;
    for p in paths {
        let path = sh.resolve(p);
        if path == "/" {
            io.error(&format!(
                "rm: refusing to remove '{}': it is the build dir",
                p
            ));
            status = 1;
            continue;
        }
        let r = match fs::symlink_metadata(&path) {
            Err(e) if force && e.kind() == io::ErrorKind::NotFound => continue,
            Err(e) => Err(e),
            Ok(m) if m.is_dir() => {
                if !recursive {
                    io.error(&format!("rm: cannot remove '{}': Is a directory", p));
                    status = 1;
                    continue;
                }
                fs::remove_dir_all(&path)
            }
            Ok(_) => fs::remove_file(&path),
        };
        if let Err(e) = r {
            io.error(&format!("rm: cannot remove '{}': {}", p, message(&e)));
            status = 1;
        }
    }
    Ok(status)
}

fn pwd(sh: &mut Shell, _: &[String], io: &Io) -> Result<i32, Exit> {
    let base = sh
        .var("CI_PROJECT_DIR")
        .filter(|d| !d.is_empty())
        .unwrap_or_else(|| "/".to_string());
    let dir = if sh.cwd.is_empty() {
        base
    } else {
        format!("{}/{}", base.trim_end_matches('/'), sh.cwd)
    };
    io.print(&(dir + "\n"));
    Ok(0)
}

fn cd(sh: &mut Shell, args: &[String], io: &Io) -> Result<i32, Exit> {
    let target = match args.get(1) {
        None => "/",
        Some(t) => t.as_str(),
    };
    let path = sh.guest_path(target);
    match fs::metadata(sh.resolve(target)) {
        Ok(m) if m.is_dir() => {
            sh.cwd = path.trim_start_matches('/').to_string();
            Ok(0)
        }
        Ok(_) => {
            io.error(&format!("cd: {}: Not a directory", target));
            Ok(1)
        }
        Err(e) => {
            io.error(&format!("cd: {}: {}", target, message(&e)));
            Ok(1)
        }
    }
}

fn seq(_: &mut Shell, args: &[String], io: &Io) -> Result<i32, Exit> {
    let mut nums = Vec::new();
    for a in &args[1..] {
        match a.parse::<i64>() {
            Ok(n) => nums.push(n),
            Err(_) => {
                io.error(&format!("seq: invalid argument: '{}'", a));
                return Ok(1);
            }
        }
    }
    let (first, step, last) = match nums[..] {
        [last] => (1, 1, last),
        [first, last] => (first, 1, last),
        [first, step, last] if step != 0 => (first, step, last),
        [_, _, _] => {
            io.error("seq: the increment must not be zero");
            return Ok(1);
        }
        _ => {
            io.error("seq: usage: seq [FIRST [INCREMENT]] LAST");
            return Ok(1);
        }
    };
    let mut out = String::new();
    let mut n = first;
    while (step > 0 && n <= last) || (step < 0 && n >= last) {
        out.push_str(&n.to_string());
        out.push('\n');
        if out.len() >= 64 << 10 {
            io.out.write_all(out.as_bytes()).ok();
            out.clear();
        }
        n = match n.checked_add(step) {
            Some(v) => v,
            None => break,
        };
    }
    io.print(&out);
    Ok(0)
}

/// The visible variables: the job's, then those the script set.
fn all_vars(sh: &Shell) -> Vec<(String, String)> {
    let mut out = Vec::new();
    for name in wasmrunner::var_names() {
        if sh.vars.contains_key(&name) {
            continue;
        }
        if let Some(v) = wasmrunner::var(&name) {
            out.push((name, v));
        }
    }
    for (name, v) in &sh.vars {
        if let Some(v) = v {
            out.push((name.clone(), v.clone()));
        }
    }
    out
}

fn env(sh: &mut Shell, args: &[String], io: &Io) -> Result<i32, Exit> {
    if args.len() > 1 {
        io.error("env: running commands is not supported");
        return Ok(2);
    }
    let mut out = String::new();
    for (name, value) in all_vars(sh) {
        out.push_str(&format!("{}={}\n", name, value));
    }
    io.print(&out);
    Ok(0)
}

fn printenv(sh: &mut Shell, args: &[String], io: &Io) -> Result<i32, Exit> {
    if args.len() == 1 {
        return env(sh, args, io);
    }
    let mut status = 0;
    let mut out = String::new();
    for name in &args[1..] {
        match sh.var(name) {
            Some(v) => {
                out.push_str(&v);
                out.push('\n');
            }
            None => status = 1,
        }
    }
    io.print(&out);
    Ok(status)
}

fn export(sh: &mut Shell, args: &[String], io: &Io) -> Result<i32, Exit> {
    let mut status = 0;
    for a in &args[1..] {
        let (name, value) = match a.split_once('=') {
            Some((n, v)) => (n, Some(v)),
            None => (a.as_str(), None),
        };
        if !crate::parse::is_name(name) {
            io.error(&format!("export: '{}': not a valid identifier", a));
            status = 1;
            continue;
        }
        if let Some(v) = value {
            sh.vars.insert(name.to_string(), Some(v.to_string()));
        }
    }
    Ok(status)
}

fn unset(sh: &mut Shell, args: &[String], _: &Io) -> Result<i32, Exit> {
    for name in &args[1..] {
        sh.vars.insert(name.clone(), None);
    }
    Ok(0)
}

fn artifact(sh: &mut Shell, args: &[String], io: &Io) -> Result<i32, Exit> {
    if args.len() < 2 {
        io.error("artifact: missing file operand");
        return Ok(1);
    }
    let mut status = 0;
    for f in &args[1..] {
        let rel = sh.guest_path(f).trim_start_matches('/').to_string();
        let r = if rel.is_empty() {
            Err(wasmrunner::Error::Invalid)
        } else {
            wasmrunner::add_artifact_file(&rel)
        };
        match r {
            Ok(()) => {}
            Err(wasmrunner::Error::NotFound) => {
                io.error(&format!("artifact: {}: No such file or directory", f));
                status = 1;
            }
            Err(wasmrunner::Error::Invalid) => {
                io.error(&format!("artifact: {}: not a file of the build dir", f));
                status = 1;
            }
            Err(e) => {
                io.error(&format!("artifact: {}: {}", f, e));
                status = 1;
            }
        }
    }
    Ok(status)
}

/// test and [: the status of an expression (2 for a malformed one).
fn test(sh: &mut Shell, args: &[String], io: &Io) -> Result<i32, Exit> {
    let name = args[0].as_str();
    let mut ops: Vec<&str> = args[1..].iter().map(|s| s.as_str()).collect();
    if name == "[" {
        if ops.last() != Some(&"]") {
            io.error("[: missing ']'");
            return Ok(2);
        }
        ops.pop();
    }
    match eval_test(sh, &ops) {
        Ok(true) => Ok(0),
        Ok(false) => Ok(1),
        Err(msg) => {
            io.error(&format!("{}: {}", name, msg));
            Ok(2)
        }
    }
}

fn eval_test(sh: &Shell, ops: &[&str]) -> Result<bool, String> {
    match *ops {
        [] => Ok(false),
        [s] => Ok(!s.is_empty()),
        ["!", ref rest @ ..] => eval_test(sh, rest).map(|b| !b),
        [op, arg] => unary(sh, op, arg),
        [a, op, b] => binary(a, op, b),
        _ => Err("too many arguments".into()),
    }
}

fn unary(sh: &Shell, op: &str, arg: &str) -> Result<bool, String> {
    let meta = || fs::metadata(sh.resolve(arg));
    Ok(match op {
        "-n" => !arg.is_empty(),
        "-z" => arg.is_empty(),
        "-e" => meta().is_ok(),
        "-f" => meta().map(|m| m.is_file()).unwrap_or(false),
        "-d" => meta().map(|m| m.is_dir()).unwrap_or(false),
        "-s" => meta().map(|m| m.len() > 0).unwrap_or(false),
        _ => return Err(format!("{}: unary operator expected", op)),
    })
}

fn binary(a: &str, op: &str, b: &str) -> Result<bool, String> {
    match op {
        "=" | "==" => return Ok(a == b),
        "!=" => return Ok(a != b),
        _ => {}
    }
    let int = |s: &str| {
        s.trim()
            .parse::<i64>()
            .map_err(|_| format!("{}: integer expression expected", s))
    };
    let (x, y) = (int(a)?, int(b)?);
    Ok(match op {
        "-eq" => x == y,
        "-ne" => x != y,
        "-lt" => x < y,
        "-le" => x <= y,
        "-gt" => x > y,
        "-ge" => x >= y,
        _ => return Err(format!("{}: binary operator expected", op)),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn builtins_are_sorted() {
        let names: Vec<&str> = BUILTINS.iter().map(|b| b.0).collect();
        let mut sorted = names.clone();
        sorted.sort();
        assert_eq!(names, sorted);
    }

    #[test]
    fn durations() {
        assert_eq!(parse_duration("1.5"), Some(Duration::from_millis(1500)));
        assert_eq!(parse_duration("2m"), Some(Duration::from_secs(120)));
        assert_eq!(parse_duration(".25s"), Some(Duration::from_millis(250)));
        for bad in ["", "-1", "x", "1e3", "s", "nan", "1..2"] {
            assert_eq!(parse_duration(bad), None, "{}", bad);
        }
    }

    #[test]
    fn tests() {
        let sh = Shell::new();
        assert_eq!(eval_test(&sh, &["a", "=", "a"]), Ok(true));
        assert_eq!(eval_test(&sh, &["a", "!=", "a"]), Ok(false));
        assert_eq!(eval_test(&sh, &["!", "-z", ""]), Ok(false));
        assert_eq!(eval_test(&sh, &["-n", "x"]), Ok(true));
        assert_eq!(eval_test(&sh, &["3", "-lt", "10"]), Ok(true));
        assert_eq!(eval_test(&sh, &[""]), Ok(false));
        assert_eq!(eval_test(&sh, &[]), Ok(false));
        assert!(eval_test(&sh, &["a", "-lt", "1"]).is_err());
        assert!(eval_test(&sh, &["-q", "x"]).is_err());
        assert!(eval_test(&sh, &["a", "b", "c", "d", "e"]).is_err());
    }

    #[test]
    fn messages() {
        let e = io::Error::from_raw_os_error(2);
        assert!(!message(&e).contains("os error"));
        assert_eq!(base_name("a/b/c/"), "c");
        assert_eq!(base_name("c"), "c");
    }
}
