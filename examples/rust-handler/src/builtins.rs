//! The shell's builtins and file commands. Each returns its exit status;
//! errors are written to standard error as `NAME: message` (GNU's
//! wording) with status 1 (2 for misuse). Text utilities are in utils.rs.

use std::fs;
use std::io;
use std::path::Path;
use std::time::Duration;

use crate::{utils, Flow, Io, Shell, Status, STATUS_CANCELED};

pub(crate) type Builtin = fn(&mut Shell, &[String], &Io) -> Status;

/// The commands, sorted by name.
const BUILTINS: &[(&str, Builtin)] = &[
    (".", source),
    (":", true_),
    ("[", test),
    ("artifact", artifact),
    ("awk", crate::awk::awk),
    ("base64", utils::base64),
    ("basename", basename),
    ("bash", sh),
    ("bc", crate::bc::bc),
    ("break", break_),
    ("cat", crate::coreutils::cat),
    ("cd", cd),
    ("chmod", chmod),
    ("cmp", utils::cmp),
    ("column", crate::coreutils::column),
    ("comm", crate::coreutils::comm),
    ("command", command),
    ("continue", continue_),
    ("cp", cp),
    ("cut", utils::cut),
    ("date", utils::date),
    ("declare", local),
    ("diff", utils::diff),
    ("dirname", dirname),
    ("dirs", dirs),
    ("du", crate::coreutils::du),
    ("echo", utils::echo),
    ("env", env),
    ("envsubst", utils::envsubst),
    ("eval", eval),
    ("exec", exec),
    ("exit", exit),
    ("export", export),
    ("expr", utils::expr),
    ("false", false_),
    ("find", crate::find::find),
    ("fold", crate::coreutils::fold),
    ("getopts", getopts),
    ("grep", utils::grep),
    ("head", utils::head),
    ("install", crate::coreutils::install),
    ("join", crate::coreutils::join),
    ("let", let_),
    ("ln", crate::coreutils::ln),
    ("local", local),
    ("ls", ls),
    ("mapfile", mapfile),
    ("md5sum", crate::coreutils::checksum),
    ("mkdir", mkdir),
    ("mktemp", mktemp),
    ("mv", mv),
    ("nl", crate::coreutils::nl),
    ("nproc", crate::coreutils::nproc),
    ("od", crate::coreutils::od),
    ("paste", crate::coreutils::paste),
    ("popd", popd),
    ("printenv", printenv),
    ("printf", utils::printf),
    ("pushd", pushd),
    ("pwd", pwd),
    ("read", read),
    ("readarray", mapfile),
    ("readlink", realpath),
    ("readonly", export),
    ("realpath", realpath),
    ("return", return_),
    ("rev", utils::rev),
    ("rm", rm),
    ("rmdir", rmdir),
    ("sed", utils::sed),
    ("seq", utils::seq),
    ("set", set),
    ("sh", sh),
    ("sha1sum", crate::coreutils::checksum),
    ("sha256sum", crate::coreutils::checksum),
    ("sha512sum", crate::coreutils::checksum),
    ("shift", shift),
    ("shopt", shopt),
    ("sleep", sleep),
    ("sort", utils::sort),
    ("source", source),
    ("split", crate::coreutils::split),
    ("stat", crate::coreutils::stat),
    ("tac", crate::coreutils::tac),
    ("tail", utils::tail),
    ("tee", utils::tee),
    ("test", test),
    ("timeout", timeout),
    ("touch", touch),
    ("tr", utils::tr),
    ("trap", trap),
    ("true", true_),
    ("type", type_),
    ("typeset", local),
    ("umask", true_),
    ("uname", crate::coreutils::uname),
    ("uniq", utils::uniq),
    ("unset", unset),
    ("wait", true_),
    ("wc", utils::wc),
    ("which", which),
    ("xargs", utils::xargs),
    ("yes", crate::coreutils::yes),
];

fn lookup(name: &str) -> Option<Builtin> {
    BUILTINS
        .binary_search_by(|(n, _)| n.cmp(&name))
        .ok()
        .map(|i| BUILTINS[i].1)
}

/// Runs the command args[0] with its arguments.
pub(crate) fn run(sh: &mut Shell, args: &[String], io: &Io) -> Status {
    match lookup(&args[0]) {
        Some(f) => f(sh, args, io),
        None => {
            io.error(&format!("sh: {}: command not found", args[0]));
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

/// Parsed options: short ones with their values, long ones, operands.
pub(crate) struct Opts {
    pub flags: Vec<(char, String)>,
    pub long: Vec<String>,
    pub rest: Vec<String>,
}

impl Opts {
    pub(crate) fn has(&self, c: char) -> bool {
        self.flags.iter().any(|(f, _)| *f == c)
    }

    /// The last value of option c.
    pub(crate) fn value(&self, c: char) -> Option<&str> {
        self.flags.iter().rev().find(|(f, _)| *f == c).map(|(_, v)| v.as_str())
    }

    pub(crate) fn values(&self, c: char) -> Vec<&str> {
        self.flags.iter().filter(|(f, _)| *f == c).map(|(_, v)| v.as_str()).collect()
    }
}

/// Parses options as getopt does: `spec` lists the letters, a ':' after
/// one that takes a value. Options end at "--" or the first operand,
/// unless `anywhere` (GNU's permutation). Long options (--x) are kept
/// as they are, for the command to check.
pub(crate) fn getopt(name: &str, args: &[String], spec: &str, anywhere: bool, io: &Io) -> Result<Opts, i32> {
    let mut o = Opts {
        flags: Vec::new(),
        long: Vec::new(),
        rest: Vec::new(),
    };
    let mut i = 1;
    let mut done = false;
    while i < args.len() {
        let a = &args[i];
        i += 1;
        if done || !a.starts_with('-') || a == "-" {
            o.rest.push(a.clone());
            if !anywhere {
                done = true;
            }
            continue;
        }
        if a == "--" {
            done = true;
            continue;
        }
        if let Some(l) = a.strip_prefix("--") {
            o.long.push(l.to_string());
            continue;
        }
        let cs: Vec<char> = a[1..].chars().collect();
        let mut k = 0;
        while k < cs.len() {
            let c = cs[k];
            let pos = match spec.find(c) {
                Some(p) => p,
                None => {
                    io.error(&format!("{}: invalid option -- '{}'", name, c));
                    return Err(2);
                }
            };
            if spec[pos + c.len_utf8()..].starts_with(':') {
                let v: String = cs[k + 1..].iter().collect();
                if !v.is_empty() {
                    o.flags.push((c, v));
                } else if i < args.len() {
                    o.flags.push((c, args[i].clone()));
                    i += 1;
                } else {
                    io.error(&format!("{}: option requires an argument -- '{}'", name, c));
                    return Err(2);
                }
                break;
            }
            o.flags.push((c, String::new()));
            k += 1;
        }
    }
    Ok(o)
}

macro_rules! opts_or_return {
    ($name:expr, $args:expr, $spec:expr, $any:expr, $io:expr) => {
        match crate::builtins::getopt($name, $args, $spec, $any, $io) {
            Ok(v) => v,
            Err(status) => return Ok(status),
        }
    };
}
pub(crate) use opts_or_return;

/// sh and bash: `-c 'commands' [NAME ARGS...]` or `FILE ARGS...` in a
/// subshell, with options like -e, -u, -x, -o pipefail.
fn sh(sh: &mut Shell, args: &[String], io: &Io) -> Status {
    let mut opts = Vec::new();
    let mut command = None;
    let mut i = 1;
    while i < args.len() {
        let a = &args[i];
        if a == "-c" {
            i += 1;
            match args.get(i) {
                Some(c) => command = Some(c.clone()),
                None => {
                    io.error(&format!("{}: -c: option requires an argument", args[0]));
                    return Ok(2);
                }
            }
            i += 1;
            break;
        }
        if a == "-o" || a == "+o" {
            opts.push(a.clone());
            opts.push(args.get(i + 1).cloned().unwrap_or_default());
            i += 2;
            continue;
        }
        if a == "--" {
            i += 1;
            break;
        }
        if (a.starts_with('-') || a.starts_with('+')) && a.len() > 1 && !a.starts_with("--") {
            let flags: String = a[1..].chars().filter(|c| !matches!(c, 'l' | 'i' | 's' | 'c')).collect();
            if !flags.is_empty() {
                opts.push(format!("{}{}", &a[..1], flags));
            }
            i += 1;
            if a.starts_with('-') && a.contains('c') {
                // -ec 'commands'
                match args.get(i) {
                    Some(c) => command = Some(c.clone()),
                    None => {
                        io.error(&format!("{}: -c: option requires an argument", args[0]));
                        return Ok(2);
                    }
                }
                i += 1;
                break;
            }
            continue;
        }
        if a.starts_with("--") {
            i += 1;
            continue;
        }
        break;
    }
    match command {
        Some(c) => {
            let rest = if i < args.len() { args[i + 1..].to_vec() } else { Vec::new() };
            sh.run_sub(&c, &args[0], &rest, &opts, io)
        }
        None => match args.get(i) {
            Some(file) => sh.run_file(file, &args[i + 1..], &opts, io),
            None => {
                // A script on standard input.
                let src = String::from_utf8_lossy(&io.read_all()).into_owned();
                sh.run_sub(&src, &args[0], &[], &opts, io)
            }
        },
    }
}

/// timeout DURATION CMD...: runs CMD (the job's own timeout bounds it).
fn timeout(sh: &mut Shell, args: &[String], io: &Io) -> Status {
    let mut i = 1;
    while i < args.len() && args[i].starts_with('-') {
        if args[i] == "-s" || args[i] == "-k" {
            i += 1;
        }
        i += 1;
    }
    if i + 1 >= args.len() {
        io.error("timeout: missing operand");
        return Ok(125);
    }
    if parse_duration(&args[i]).is_none() {
        io.error(&format!("timeout: invalid time interval '{}'", args[i]));
        return Ok(125);
    }
    sh.run_args(&args[i + 1..], io)
}

fn true_(_: &mut Shell, _: &[String], _: &Io) -> Status {
    Ok(0)
}

fn false_(_: &mut Shell, _: &[String], _: &Io) -> Status {
    Ok(1)
}

fn exit(sh: &mut Shell, args: &[String], io: &Io) -> Status {
    match args.get(1) {
        None => Err(Flow::Exit(sh.status)),
        Some(n) => match n.parse::<i64>() {
            Ok(n) => Err(Flow::Exit(n.rem_euclid(256) as i32)),
            Err(_) => {
                io.error(&format!("sh: exit: {}: numeric argument required", n));
                Err(Flow::Exit(2))
            }
        },
    }
}

fn return_(sh: &mut Shell, args: &[String], io: &Io) -> Status {
    let n = match args.get(1) {
        None => sh.status,
        Some(n) => match n.parse::<i64>() {
            Ok(n) => n.rem_euclid(256) as i32,
            Err(_) => {
                io.error(&format!("sh: return: {}: numeric argument required", n));
                2
            }
        },
    };
    if sh.locals.is_empty() && sh.depth == 0 {
        io.error("sh: return: can only `return' from a function or sourced script");
        return Ok(1);
    }
    Err(Flow::Return(n))
}

fn loop_count(name: &str, sh: &Shell, args: &[String], io: &Io) -> Result<u32, i32> {
    let n = match args.get(1) {
        None => 1,
        Some(a) => match a.parse::<u32>() {
            Ok(n) if n > 0 => n,
            _ => {
                io.error(&format!("sh: {}: {}: loop count out of range", name, a));
                return Err(1);
            }
        },
    };
    if sh.loops == 0 {
        return Err(0);
    }
    Ok(n.min(sh.loops))
}

fn break_(sh: &mut Shell, args: &[String], io: &Io) -> Status {
    match loop_count("break", sh, args, io) {
        Ok(n) => Err(Flow::Break(n)),
        Err(s) => Ok(s),
    }
}

fn continue_(sh: &mut Shell, args: &[String], io: &Io) -> Status {
    match loop_count("continue", sh, args, io) {
        Ok(n) => Err(Flow::Continue(n)),
        Err(s) => Ok(s),
    }
}

fn shift(sh: &mut Shell, args: &[String], io: &Io) -> Status {
    let n = match args.get(1).map(|a| a.parse::<usize>()) {
        None => 1,
        Some(Ok(n)) => n,
        Some(Err(_)) => {
            io.error(&format!("sh: shift: {}: numeric argument required", args[1]));
            return Ok(1);
        }
    };
    if n > sh.args.len() {
        return Ok(1);
    }
    sh.args.drain(..n);
    Ok(0)
}

fn set(sh: &mut Shell, args: &[String], io: &Io) -> Status {
    if args.len() == 1 {
        let mut out = String::new();
        for (n, v) in all_vars(sh, false) {
            out.push_str(&format!("{}={}\n", n, quote_value(&v)));
        }
        io.print(&out);
        return Ok(0);
    }
    let mut i = 1;
    while i < args.len() {
        let a = &args[i];
        if a == "--" {
            sh.args = args[i + 1..].to_vec();
            return Ok(0);
        }
        let on = a.starts_with('-');
        if !on && !a.starts_with('+') || a.len() < 2 {
            sh.args = args[i..].to_vec();
            return Ok(0);
        }
        for c in a[1..].chars() {
            match c {
                'e' => sh.errexit = on,
                'u' => sh.nounset = on,
                'x' => sh.xtrace = on,
                'a' => sh.allexport = on,
                'f' | 'v' | 'h' | 'B' | 'C' | 'm' => {}
                'o' => {
                    i += 1;
                    match args.get(i).map(|s| s.as_str()) {
                        Some("pipefail") => sh.pipefail = on,
                        Some("errexit") => sh.errexit = on,
                        Some("nounset") => sh.nounset = on,
                        Some("xtrace") => sh.xtrace = on,
                        Some("allexport") => sh.allexport = on,
                        Some("noglob") | Some("noclobber") | Some("posix") | Some("verbose") => {}
                        Some(o) => {
                            io.error(&format!("sh: set: {}: invalid option name", o));
                            return Ok(2);
                        }
                        None => {
                            let s = |b: bool| if b { "on" } else { "off" };
                            io.print(&format!(
                                "errexit        \t{}\nnounset        \t{}\npipefail       \t{}\nxtrace         \t{}\n",
                                s(sh.errexit),
                                s(sh.nounset),
                                s(sh.pipefail),
                                s(sh.xtrace)
                            ));
                        }
                    }
                }
                _ => {
                    io.error(&format!("sh: set: -{}: invalid option", c));
                    return Ok(2);
                }
            }
        }
        i += 1;
    }
    Ok(0)
}

fn quote_value(v: &str) -> String {
    if v.chars().all(|c| c.is_ascii_alphanumeric() || "_-./:,+@%".contains(c)) && !v.is_empty() {
        v.to_string()
    } else {
        format!("'{}'", v.replace('\'', "'\\''"))
    }
}

/// The visible variables: the job's, then those the script set.
pub(crate) fn all_vars(sh: &Shell, exported_only: bool) -> Vec<(String, String)> {
    let mut out = std::collections::BTreeMap::new();
    for name in wasmrunner::var_names() {
        if sh.vars.contains_key(&name) {
            continue;
        }
        if let Some(v) = wasmrunner::var(&name) {
            out.insert(name, v);
        }
    }
    for (name, v) in &sh.vars {
        if name.contains('[') {
            continue;
        }
        if let Some(value) = &v.value {
            if !exported_only || v.exported {
                out.insert(name.clone(), value.clone());
            }
        }
    }
    out.into_iter().collect()
}

fn env(sh: &mut Shell, args: &[String], io: &Io) -> Status {
    let mut i = 1;
    let mut assigns = Vec::new();
    while i < args.len() {
        if args[i] == "-i" || args[i] == "-" {
            i += 1;
            continue;
        }
        match args[i].split_once('=') {
            Some((n, v)) if crate::parse::is_name(n) => assigns.push((n.to_string(), v.to_string())),
            _ => break,
        }
        i += 1;
    }
    if i < args.len() {
        // env NAME=value cmd: run cmd with the variables.
        let mut sub = sh.clone();
        for (n, v) in assigns {
            sub.set_var(&n, v, io)?;
            if let Some(var) = sub.vars.get_mut(&n) {
                var.exported = true;
            }
        }
        return match sub.run_args(&args[i..], io) {
            Ok(s) | Err(Flow::Exit(s)) | Err(Flow::Return(s)) => Ok(s),
            Err(_) => Ok(0),
        };
    }
    let mut vars = all_vars(sh, true);
    for (n, v) in assigns {
        vars.retain(|(x, _)| *x != n);
        vars.push((n, v));
    }
    let mut out = String::new();
    for (name, value) in vars {
        out.push_str(&format!("{}={}\n", name, value));
    }
    io.print(&out);
    Ok(0)
}

fn printenv(sh: &mut Shell, args: &[String], io: &Io) -> Status {
    if args.len() == 1 {
        return env(sh, args, io);
    }
    let mut status = 0;
    let mut out = String::new();
    for name in &args[1..] {
        match sh.var(name) {
            Some(v) if sh.exported(name) => {
                out.push_str(&v);
                out.push('\n');
            }
            _ => status = 1,
        }
    }
    io.print(&out);
    Ok(status)
}

fn export(sh: &mut Shell, args: &[String], io: &Io) -> Status {
    let mut status = 0;
    for a in &args[1..] {
        if a.starts_with('-') {
            continue;
        }
        let (name, value) = match a.split_once('=') {
            Some((n, v)) => (n, Some(v)),
            None => (a.as_str(), None),
        };
        if !crate::parse::is_name(name) {
            io.error(&format!("sh: {}: `{}': not a valid identifier", args[0], a));
            status = 1;
            continue;
        }
        let value = match value {
            Some(v) => Some(v.to_string()),
            None => sh.var(name),
        };
        if args[0] == "readonly" && sh.readonly(name) && value.is_some() {
            io.error(&format!("sh: readonly: {}: readonly variable", name));
            status = 1;
            continue;
        }
        if let Some(v) = &value {
            sh.set_var(name, v.clone(), io)?;
        }
        if args[0] == "readonly" {
            *sh.attrs.entry(name.to_string()).or_default() |= crate::ATTR_READONLY;
        }
        match sh.vars.get_mut(name) {
            Some(var) => var.exported = true,
            None => {
                sh.vars.insert(
                    name.to_string(),
                    crate::Var {
                        value,
                        exported: true,
                    },
                );
            }
        }
    }
    Ok(status)
}

fn local(sh: &mut Shell, args: &[String], io: &Io) -> Status {
    let mut status = 0;
    let mut flags = String::new();
    for a in &args[1..] {
        if (a.starts_with('-') || a.starts_with('+')) && a.len() > 1 {
            if a.starts_with('-') {
                flags.push_str(&a[1..]);
            }
            if let Some(c) = a[1..].chars().find(|c| !"aAgxrilu".contains(*c)) {
                io.error(&format!("sh: {}: -{}: not supported here (supported: -a -A -g -x -r -i -l -u)", args[0], c));
                return Ok(2);
            }
            continue;
        }
        if flags.contains('A') || flags.contains('a') {
            // An array: created empty here; NAME=(...) fills it after.
            let name = a.split('=').next().unwrap_or("");
            if !crate::parse::is_name(name) {
                io.error(&format!("sh: {}: `{}': not a valid identifier", args[0], a));
                status = 1;
                continue;
            }
            if flags.contains('A') {
                sh.arrays.remove(name);
                sh.assoc.entry(name.to_string()).or_default();
            } else if !sh.assoc.contains_key(name) {
                sh.arrays.entry(name.to_string()).or_default();
            }
            sh.vars.remove(name);
            continue;
        }
        let (name, value) = match a.split_once('=') {
            Some((n, v)) => (n, Some(v.to_string())),
            None => (a.as_str(), None),
        };
        if !crate::parse::is_name(name) {
            io.error(&format!("sh: {}: `{}': not a valid identifier", args[0], a));
            status = 1;
            continue;
        }
        if args[0] != "local" && (flags.contains('g') || sh.locals.is_empty()) {
            // declare outside functions, or -g: a global.
        } else {
            sh.make_local(name);
        }
        if sh.readonly(name) && value.is_some() {
            io.error(&format!("sh: {}: {}: readonly variable", args[0], name));
            status = 1;
            continue;
        }
        let mut v = match value {
            Some(v) => v,
            None if args[0] != "local" => sh.var(name).unwrap_or_default(),
            None => String::new(),
        };
        if flags.contains('i') {
            v = sh.integer_value(&v, io)?;
        }
        if flags.contains('l') {
            v = v.to_lowercase();
        } else if flags.contains('u') {
            v = v.to_uppercase();
        }
        sh.set_var(name, v, io)?;
        {
            // A function's locals keep theirs until it returns (see
            // Shell::make_local).
            let mut attrs = 0;
            for (c, a) in [('r', crate::ATTR_READONLY), ('i', crate::ATTR_INTEGER), ('l', crate::ATTR_LOWER), ('u', crate::ATTR_UPPER)] {
                if flags.contains(c) {
                    attrs |= a;
                }
            }
            if attrs != 0 {
                *sh.attrs.entry(name.to_string()).or_default() |= attrs;
            }
        }
        if flags.contains('x') {
            if let Some(var) = sh.vars.get_mut(name) {
                var.exported = true;
            }
        }
    }
    Ok(status)
}

fn unset(sh: &mut Shell, args: &[String], io: &Io) -> Status {
    let mut funcs = false;
    let mut status = 0;
    for name in &args[1..] {
        match name.as_str() {
            "-f" => funcs = true,
            "-v" => funcs = false,
            _ if funcs => {
                sh.functions.remove(name);
            }
            _ if sh.readonly(name) => {
                io.error(&format!("sh: unset: {}: cannot unset: readonly variable", name));
                status = 1;
            }
            _ => {
                if let (Some(b), true) = (name.find('['), name.ends_with(']')) {
                    let base = &name[..b];
                    if let Some(m) = sh.assoc.get_mut(base) {
                        let k = &name[b + 1..name.len() - 1];
                        let k = k.trim_matches(|c| c == '"' || c == '\'');
                        m.remove(k);
                        continue;
                    }
                    if let Ok(i) = name[b + 1..name.len() - 1].parse::<usize>() {
                        if let Some(a) = sh.arrays.get_mut(base) {
                            if i < a.len() {
                                a.remove(i);
                            }
                        }
                    }
                    continue;
                }
                sh.arrays.remove(name);
                sh.assoc.remove(name);
                sh.vars.insert(
                    name.clone(),
                    crate::Var {
                        value: None,
                        exported: false,
                    },
                );
            }
        }
    }
    Ok(status)
}

/// exec CMD ARGS...: runs CMD, then the shell ends with its status (the
/// form with redirections only is Shell::exec_redirects).
fn exec(sh: &mut Shell, args: &[String], io: &Io) -> Status {
    let mut rest = &args[1..];
    while let Some(a) = rest.first() {
        match a.as_str() {
            "--" => {
                rest = &rest[1..];
                break;
            }
            "-c" | "-l" => rest = &rest[1..],
            "-a" => rest = rest.get(2..).unwrap_or(&[]),
            _ => break,
        }
    }
    if rest.is_empty() {
        return Ok(0);
    }
    let status = match sh.run_args(rest, io) {
        Ok(s) | Err(Flow::Exit(s)) | Err(Flow::Return(s)) => s,
        Err(_) => 0,
    };
    Err(Flow::Exit(status))
}

/// getopts OPTSTRING NAME [ARGS...]: the next option of the arguments
/// (or of "$@"), with OPTARG and OPTIND as bash sets them; a leading ':'
/// in OPTSTRING reports errors in NAME and OPTARG instead of messages.
fn getopts(sh: &mut Shell, args: &[String], io: &Io) -> Status {
    if args.len() < 3 {
        io.error("sh: getopts: usage: getopts optstring name [arg ...]");
        return Ok(2);
    }
    let spec = args[1].as_str();
    let name = args[2].as_str();
    if !crate::parse::is_name(name) {
        io.error(&format!("sh: getopts: `{}': not a valid identifier", name));
        return Ok(1);
    }
    let list: Vec<String> = if args.len() > 3 { args[3..].to_vec() } else { sh.args.clone() };
    let silent = spec.starts_with(':');
    let spec = spec.trim_start_matches(':');
    let quiet = silent || sh.var("OPTERR").map(|v| v == "0").unwrap_or(false);
    let mut optind = sh.var("OPTIND").and_then(|v| v.trim().parse::<usize>().ok()).unwrap_or(1).max(1);
    let mut pos = if sh.getopts_pos.0 == optind { sh.getopts_pos.1 } else { 0 };
    let set = |sh: &mut Shell, n: &str, v: &str| sh.set_var(n, v.to_string(), io);
    let end = |sh: &mut Shell, optind: usize| -> Status {
        sh.set_var(name, "?".into(), io)?;
        sh.set_var("OPTIND", optind.to_string(), io)?;
        sh.getopts_pos = (0, 0);
        Ok(1)
    };
    let arg: Vec<char> = match list.get(optind - 1) {
        Some(a) => a.chars().collect(),
        None => return end(sh, optind),
    };
    if pos >= arg.len() {
        // The arguments changed under the same OPTIND.
        pos = 0;
    }
    if pos == 0 {
        if arg.len() < 2 || arg[0] != '-' {
            return end(sh, optind);
        }
        if arg == ['-', '-'] {
            return end(sh, optind + 1);
        }
        pos = 1;
    }
    let c = arg[pos];
    pos += 1;
    if pos >= arg.len() {
        optind += 1;
        pos = 0;
    }
    let known = c != ':' && spec.contains(c);
    let takes = known && spec[spec.find(c).unwrap_or(0) + c.len_utf8()..].starts_with(':');
    sh.vars.remove("OPTARG");
    if !known {
        if !quiet {
            io.error(&format!("sh: illegal option -- {}", c));
        }
        set(sh, name, "?")?;
        if silent {
            set(sh, "OPTARG", &c.to_string())?;
        }
    } else if takes {
        if pos > 0 {
            let v: String = arg[pos..].iter().collect();
            set(sh, "OPTARG", &v)?;
            optind += 1;
            pos = 0;
            set(sh, name, &c.to_string())?;
        } else if let Some(v) = list.get(optind - 1) {
            let v = v.clone();
            set(sh, "OPTARG", &v)?;
            optind += 1;
            set(sh, name, &c.to_string())?;
        } else if silent {
            set(sh, name, ":")?;
            set(sh, "OPTARG", &c.to_string())?;
        } else {
            if !quiet {
                io.error(&format!("sh: option requires an argument -- {}", c));
            }
            set(sh, name, "?")?;
        }
    } else {
        set(sh, name, &c.to_string())?;
    }
    set(sh, "OPTIND", &optind.to_string())?;
    sh.getopts_pos = (optind, pos);
    Ok(0)
}

fn let_(sh: &mut Shell, args: &[String], io: &Io) -> Status {
    let mut v = 0;
    for a in &args[1..] {
        v = match crate::arith::eval(sh, a) {
            Ok(v) => v,
            Err(msg) => {
                io.error(&format!("sh: let: {}: {}", a, msg));
                return Ok(1);
            }
        };
    }
    Ok(if v != 0 { 0 } else { 1 })
}

fn eval(sh: &mut Shell, args: &[String], io: &Io) -> Status {
    let src = args[1..].join(" ");
    sh_enter(sh, io)?;
    let r = sh.run_source(&src, io);
    sh.depth -= 1;
    r
}

fn sh_enter(sh: &mut Shell, io: &Io) -> Result<(), Flow> {
    if sh.depth >= crate::MAX_CALL_DEPTH || !crate::stack_ok() {
        io.error(&format!(
            "sh: nesting too deep (more than {} nested calls and substitutions)",
            crate::MAX_CALL_DEPTH
        ));
        return Err(Flow::Exit(2));
    }
    sh.depth += 1;
    Ok(())
}

fn source(sh: &mut Shell, args: &[String], io: &Io) -> Status {
    let file = match args.get(1) {
        Some(f) => f,
        None => {
            io.error(&format!("sh: {}: filename argument required", args[0]));
            return Ok(2);
        }
    };
    let src = match sh.read_path(file) {
        Ok(b) => String::from_utf8_lossy(&b).into_owned(),
        Err(e) => {
            io.error(&format!("sh: {}: {}", file, message(&e)));
            return Ok(1);
        }
    };
    sh_enter(sh, io)?;
    let saved = if args.len() > 2 {
        Some(std::mem::replace(&mut sh.args, args[2..].to_vec()))
    } else {
        None
    };
    let r = sh.run_source(&src, io);
    if let Some(a) = saved {
        sh.args = a;
    }
    sh.depth -= 1;
    match r {
        Err(Flow::Return(s)) => Ok(s),
        r => r,
    }
}

fn trap(sh: &mut Shell, args: &[String], _: &Io) -> Status {
    if args.len() >= 3 {
        let action = &args[1];
        for sig in &args[2..] {
            if sig == "EXIT" || sig == "0" {
                sh.exit_trap = if action.is_empty() || action == "-" { None } else { Some(action.clone()) };
            }
        }
    }
    Ok(0)
}

/// mapfile/readarray [-t] NAME: standard input's lines into an array.
fn mapfile(sh: &mut Shell, args: &[String], io: &Io) -> Status {
    let o = opts_or_return!(&args[0], args, "tn:s:", false, io);
    let name = o.rest.first().cloned().unwrap_or_else(|| "MAPFILE".into());
    let data = io.read_all();
    let text = String::from_utf8_lossy(&data);
    let mut items: Vec<String> = text.split_inclusive('\n').map(|l| l.to_string()).collect();
    if o.has('t') {
        for l in items.iter_mut() {
            if l.ends_with('\n') {
                l.pop();
            }
        }
    }
    if let Some(n) = o.value('s').and_then(|v| v.parse::<usize>().ok()) {
        items.drain(..n.min(items.len()));
    }
    if let Some(n) = o.value('n').and_then(|v| v.parse::<usize>().ok()) {
        if n > 0 {
            items.truncate(n);
        }
    }
    sh.vars.remove(&name);
    sh.arrays.insert(name, items);
    Ok(0)
}

fn read(sh: &mut Shell, args: &[String], io: &Io) -> Status {
    let o = opts_or_return!("read", args, "rp:d:st:n:a:", false, io);
    let raw = o.has('r');
    let delim = match o.value('d') {
        Some(d) => d.bytes().next().unwrap_or(0),
        None => b'\n',
    };
    let mut names = o.rest.clone();
    if names.is_empty() {
        names.push("REPLY".into());
    }
    let mut line = String::new();
    let mut got = false;
    let mut complete = false;
    let count = o.value('n').and_then(|v| v.parse::<usize>().ok());
    if let Some(n) = count {
        // read -n N: at most N chars, or up to the delimiter.
        let data = io.peek_all();
        let text = String::from_utf8_lossy(&data);
        let mut consumed = 0;
        let mut taken = 0;
        for c in text.chars() {
            if taken == n {
                break;
            }
            consumed += c.len_utf8();
            if c as u32 == delim as u32 {
                complete = true;
                break;
            }
            line.push(c);
            taken += 1;
        }
        complete = complete || taken == n;
        got = consumed > 0;
        io.consume(consumed);
    } else {
        loop {
            match io.read_line(delim) {
                None => break,
                Some((bytes, nl)) => {
                    got = true;
                    let s = String::from_utf8_lossy(&bytes).into_owned();
                    if !raw && s.ends_with('\\') && nl {
                        line.push_str(&s[..s.len() - 1]);
                        continue;
                    }
                    line.push_str(&s);
                    complete = nl;
                    break;
                }
            }
        }
    }
    if !raw {
        let mut out = String::new();
        let mut cs = line.chars();
        while let Some(c) = cs.next() {
            if c == '\\' {
                if let Some(n) = cs.next() {
                    out.push(n);
                }
            } else {
                out.push(c);
            }
        }
        line = out;
    }
    let ifs = sh.var("IFS").unwrap_or_else(|| " \t\n".into());
    if let Some(a) = o.value('a') {
        let items = split_read(&line, &ifs, usize::MAX / 2);
        sh.vars.remove(a);
        sh.arrays.insert(a.to_string(), items.into_iter().filter(|s| !s.is_empty() || !ifs.trim().is_empty()).collect());
        return Ok(if got && complete { 0 } else { 1 });
    }
    let values = split_read(&line, &ifs, names.len());
    for (k, n) in names.iter().enumerate() {
        let v = values.get(k).cloned().unwrap_or_default();
        sh.set_var(n, v, io)?;
    }
    Ok(if got && complete { 0 } else { 1 })
}

/// Splits a line for read: n fields, the last taking the rest.
fn split_read(line: &str, ifs: &str, n: usize) -> Vec<String> {
    let is_ws = |c: char| ifs.contains(c) && (c == ' ' || c == '\t' || c == '\n');
    let line = line.trim_matches(is_ws);
    if n == 1 {
        return vec![line.to_string()];
    }
    let mut out = Vec::new();
    let cs: Vec<char> = line.chars().collect();
    let mut i = 0;
    while out.len() < n - 1 && i < cs.len() {
        let mut f = String::new();
        while i < cs.len() && !ifs.contains(cs[i]) {
            f.push(cs[i]);
            i += 1;
        }
        out.push(f);
        // Skip one delimiter (with the blanks around it).
        while i < cs.len() && is_ws(cs[i]) {
            i += 1;
        }
        if i < cs.len() && ifs.contains(cs[i]) && !is_ws(cs[i]) {
            i += 1;
            while i < cs.len() && is_ws(cs[i]) {
                i += 1;
            }
        }
    }
    if i < cs.len() {
        let rest: String = cs[i..].iter().collect();
        out.push(rest.trim_end_matches(is_ws).to_string());
    }
    out
}

fn is_command(sh: &Shell, name: &str) -> bool {
    sh.functions.contains_key(name) || lookup(name).is_some()
}

fn is_special(name: &str) -> bool {
    matches!(
        name,
        "." | ":" | "break" | "cd" | "continue" | "eval" | "exec" | "exit" | "export" | "getopts" | "local" | "read" | "readonly"
            | "return" | "set" | "shift" | "source" | "trap" | "unset" | "let" | "declare" | "typeset" | "wait"
            | "umask" | "command" | "type" | "true" | "false" | "echo" | "printf" | "pwd" | "test" | "["
    )
}

fn command(sh: &mut Shell, args: &[String], io: &Io) -> Status {
    match args.get(1).map(|s| s.as_str()) {
        Some("-v") | Some("-V") => {
            let mut status = 0;
            for n in &args[2..] {
                if is_command(sh, n) {
                    if sh.functions.contains_key(n.as_str()) || is_special(n) {
                        io.print(&format!("{}\n", n));
                    } else {
                        io.print(&format!("/usr/bin/{}\n", n));
                    }
                } else {
                    status = 1;
                }
            }
            Ok(status)
        }
        Some(_) => run(sh, &args[1..], io),
        None => Ok(0),
    }
}

fn which(sh: &mut Shell, args: &[String], io: &Io) -> Status {
    let mut status = 0;
    for n in &args[1..] {
        if lookup(n).is_some() && !is_special(n) {
            io.print(&format!("/usr/bin/{}\n", n));
        } else {
            status = 1;
        }
    }
    let _ = sh;
    Ok(status)
}

fn type_(sh: &mut Shell, args: &[String], io: &Io) -> Status {
    let mut status = 0;
    for n in &args[1..] {
        if sh.functions.contains_key(n.as_str()) {
            io.print(&format!("{} is a function\n", n));
        } else if is_special(n) {
            io.print(&format!("{} is a shell builtin\n", n));
        } else if lookup(n).is_some() {
            io.print(&format!("{} is /usr/bin/{}\n", n, n));
        } else {
            io.error(&format!("sh: type: {}: not found", n));
            status = 1;
        }
    }
    Ok(status)
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

fn sleep(_: &mut Shell, args: &[String], io: &Io) -> Status {
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
        Err(wasmrunner::Error::Canceled) => Err(Flow::Exit(STATUS_CANCELED)),
        Err(e) => {
            io.error(&format!("sleep: {}", e));
            Ok(1)
        }
    }
}

/// The most a command reads of one file.
pub(crate) const MAX_FILE: u64 = 16 << 20;

/// The most lines a command handles in one input.
pub(crate) const MAX_LINES: usize = 1_000_000;

pub(crate) fn read_file(path: &str) -> io::Result<Vec<u8>> {
    use std::io::Read;
    let f = fs::File::open(path)?;
    let m = f.metadata()?;
    if m.is_dir() {
        return Err(io::Error::new(io::ErrorKind::Other, "Is a directory"));
    }
    if m.len() > MAX_FILE {
        return Err(io::Error::new(
            io::ErrorKind::Other,
            format!("File too large (commands read at most {} MiB of a file)", MAX_FILE >> 20),
        ));
    }
    let mut v = Vec::new();
    f.take(MAX_FILE).read_to_end(&mut v)?;
    Ok(v)
}

/// Whether data has more lines than commands handle.
pub(crate) fn too_many_lines(data: &[u8]) -> bool {
    data.len() > MAX_LINES && data.iter().filter(|&&b| b == b'\n').count() > MAX_LINES
}

/// The contents of the named files (or standard input). Errors are
/// reported as "NAME: FILE: message" and set status to 1.
pub(crate) fn inputs(sh: &Shell, name: &str, files: &[String], io: &Io, status: &mut i32) -> Vec<(String, Vec<u8>)> {
    if files.is_empty() {
        let data = io.read_all();
        if too_many_lines(&data) {
            io.error(&format!("{}: -: too many lines (commands handle at most {})", name, MAX_LINES));
            *status = 1;
            return Vec::new();
        }
        return vec![("-".into(), data)];
    }
    let mut out = Vec::new();
    for f in files {
        if f == "-" {
            out.push((f.clone(), io.read_all()));
            continue;
        }
        match sh.read_path(f) {
            Ok(data) if too_many_lines(&data) => {
                io.error(&format!("{}: {}: too many lines (commands handle at most {})", name, f, MAX_LINES));
                *status = 1;
            }
            Ok(data) => out.push((f.clone(), data)),
            Err(e) => {
                io.error(&format!("{}: {}: {}", name, f, message(&e)));
                *status = 1;
            }
        }
    }
    out
}

fn mkdir(sh: &mut Shell, args: &[String], io: &Io) -> Status {
    let o = opts_or_return!("mkdir", args, "pvm:", true, io);
    if o.rest.is_empty() {
        io.error("mkdir: missing operand");
        return Ok(1);
    }
    let mut status = 0;
    for d in &o.rest {
        let path = sh.resolve(d);
        let r = if o.has('p') {
            fs::create_dir_all(&path)
        } else {
            fs::create_dir(&path)
        };
        match r {
            Ok(()) => {
                if o.has('v') {
                    io.print(&format!("mkdir: created directory '{}'\n", d));
                }
            }
            Err(e) => {
                io.error(&format!("mkdir: cannot create directory '{}': {}", d, message(&e)));
                status = 1;
            }
        }
    }
    Ok(status)
}

fn rmdir(sh: &mut Shell, args: &[String], io: &Io) -> Status {
    let o = opts_or_return!("rmdir", args, "p", true, io);
    let mut status = 0;
    for d in &o.rest {
        if let Err(e) = fs::remove_dir(sh.resolve(d)) {
            io.error(&format!("rmdir: failed to remove '{}': {}", d, message(&e)));
            status = 1;
        }
    }
    Ok(status)
}

fn touch(sh: &mut Shell, args: &[String], io: &Io) -> Status {
    let o = opts_or_return!("touch", args, "acm", true, io);
    if o.rest.is_empty() {
        io.error("touch: missing file operand");
        return Ok(1);
    }
    let mut status = 0;
    for f in &o.rest {
        let r = fs::OpenOptions::new().create(true).append(true).open(sh.resolve(f));
        match r {
            Ok(file) => {
                let _ = file.set_modified_now();
            }
            Err(e) => {
                io.error(&format!("touch: cannot touch '{}': {}", f, message(&e)));
                status = 1;
            }
        }
    }
    Ok(status)
}

trait SetModified {
    fn set_modified_now(&self) -> io::Result<()>;
}

impl SetModified for fs::File {
    fn set_modified_now(&self) -> io::Result<()> {
        Ok(())
    }
}

fn chmod(sh: &mut Shell, args: &[String], io: &Io) -> Status {
    // The sandbox has no permissions: chmod checks that the files exist
    // and records their modes for stat, ls -l and test -x.
    let o = opts_or_return!("chmod", args, "Rvfc", false, io);
    if o.rest.len() < 2 {
        io.error("chmod: missing operand");
        return Ok(1);
    }
    let spec = &o.rest[0];
    let mut status = 0;
    for f in &o.rest[1..] {
        let is_dir = match fs::symlink_metadata(sh.resolve(f)) {
            Ok(m) => m.is_dir(),
            Err(e) => {
                io.error(&format!("chmod: cannot access '{}': {}", f, message(&e)));
                status = 1;
                continue;
            }
        };
        let mut paths = vec![(f.clone(), is_dir)];
        if o.has('R') && is_dir {
            let mut files = Vec::new();
            utils::walk_files(sh, f, &mut files, 0);
            paths.extend(files.into_iter().map(|p| (p, false)));
        }
        for (p, d) in paths {
            let old = crate::coreutils::mode_of(sh, &p, d);
            match apply_mode(spec, old, d) {
                Some(m) => {
                    let g = sh.guest_path(&p);
                    sh.modes.insert(g, m);
                }
                None => {
                    io.error(&format!("chmod: invalid mode: '{}'", spec));
                    return Ok(1);
                }
            }
        }
    }
    Ok(status)
}

/// A mode after chmod's MODE (octal, or symbolic like u+x,go-w), with a
/// umask of 022; None if MODE is malformed.
fn apply_mode(spec: &str, old: u32, is_dir: bool) -> Option<u32> {
    if !spec.is_empty() && spec.chars().all(|c| ('0'..='7').contains(&c)) {
        return u32::from_str_radix(spec, 8).ok().filter(|m| *m <= 0o7777);
    }
    let mut mode = old;
    for clause in spec.split(',') {
        let cs: Vec<char> = clause.chars().collect();
        let mut i = 0;
        let mut who = 0u32;
        while i < cs.len() && "ugoa".contains(cs[i]) {
            who |= match cs[i] {
                'u' => 0o4700,
                'g' => 0o2070,
                'o' => 0o1007,
                _ => 0o7777,
            };
            i += 1;
        }
        let masked = who == 0;
        if masked {
            who = 0o7777;
        }
        if i >= cs.len() {
            return None;
        }
        while i < cs.len() {
            let op = cs[i];
            if !"+-=".contains(op) {
                return None;
            }
            i += 1;
            let mut perm = 0u32;
            while i < cs.len() && "rwxXst".contains(cs[i]) {
                perm |= match cs[i] {
                    'r' => 0o444,
                    'w' => 0o222,
                    'x' => 0o111,
                    'X' if is_dir || old & 0o111 != 0 => 0o111,
                    's' => 0o6000,
                    't' => 0o1000,
                    _ => 0,
                };
                i += 1;
            }
            let mut bits = perm & who;
            if masked {
                bits &= !0o022;
            }
            match op {
                '+' => mode |= bits,
                '-' => mode &= !bits,
                _ => mode = (mode & !who) | bits,
            }
        }
    }
    Some(mode)
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
    names.sort_by(|a, b| ls_key(a).cmp(&ls_key(b)).then(a.cmp(b)));
    Ok(names)
}

/// GNU ls's sort order in the C locale is plain byte order.
fn ls_key(s: &str) -> &str {
    s
}

fn ls_long(sh: &Shell, dir: &str, name: &str) -> String {
    let path = if dir.is_empty() { name.to_string() } else { format!("{}/{}", dir.trim_end_matches('/'), name) };
    match fs::symlink_metadata(sh.resolve(&path)) {
        Ok(m) => {
            let kind = if m.is_dir() {
                "drwxr-xr-x"
            } else if m.file_type().is_symlink() {
                "lrwxrwxrwx"
            } else {
                "-rw-r--r--"
            };
            format!("{} 1 ci ci {:>8} {}\n", kind, m.len(), name)
        }
        Err(_) => format!("?????????? ? ? ? ? {}\n", name),
    }
}

fn ls(sh: &mut Shell, args: &[String], io: &Io) -> Status {
    let o = opts_or_return!("ls", args, "aA1ldFrRthS", true, io);
    let all = o.has('a') || o.has('A');
    let long = o.has('l');
    let rev = o.has('r');
    let dot = vec![".".to_string()];
    let paths = if o.rest.is_empty() { &dot } else { &o.rest };
    let mut status = 0;
    let mut out = String::new();
    let (mut files, mut dirs) = (Vec::new(), Vec::new());
    for p in paths {
        match fs::metadata(sh.resolve(p)) {
            Ok(m) if m.is_dir() && !o.has('d') => dirs.push(p.clone()),
            Ok(_) => files.push(p.clone()),
            Err(e) => {
                io.error(&format!("ls: cannot access '{}': {}", p, message(&e)));
                status = 2;
            }
        }
    }
    files.sort();
    dirs.sort();
    if rev {
        files.reverse();
        dirs.reverse();
    }
    for f in &files {
        if long {
            out.push_str(&ls_long(sh, "", f));
        } else {
            out.push_str(f);
            out.push('\n');
        }
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
            Ok(mut names) => {
                if o.has('a') {
                    names.insert(0, "..".into());
                    names.insert(0, ".".into());
                }
                if rev {
                    names.reverse();
                }
                if long {
                    out.push_str("total 0\n");
                }
                for n in names {
                    if long {
                        out.push_str(&ls_long(sh, d, &n));
                    } else {
                        out.push_str(&n);
                        if o.has('F') && fs::metadata(sh.resolve(&format!("{}/{}", d, n))).map(|m| m.is_dir()).unwrap_or(false) {
                            out.push('/');
                        }
                        out.push('\n');
                    }
                }
            }
            Err(e) => {
                io.error(&format!("ls: cannot open directory '{}': {}", d, message(&e)));
                status = 2;
            }
        }
    }
    io.print(&out);
    Ok(status)
}

/// The final path component of p.
pub(crate) fn base_name(p: &str) -> &str {
    let t = p.trim_end_matches('/');
    if t.is_empty() {
        return if p.is_empty() { "" } else { "/" };
    }
    t.rsplit('/').next().unwrap_or(t)
}

fn dir_name(p: &str) -> String {
    let t = p.trim_end_matches('/');
    if t.is_empty() {
        return if p.is_empty() { ".".into() } else { "/".into() };
    }
    match t.rfind('/') {
        None => ".".into(),
        Some(i) => {
            let d = t[..i].trim_end_matches('/');
            if d.is_empty() {
                "/".into()
            } else {
                d.to_string()
            }
        }
    }
}

fn basename(_: &mut Shell, args: &[String], io: &Io) -> Status {
    let o = opts_or_return!("basename", args, "as:z", false, io);
    if o.rest.is_empty() {
        io.error("basename: missing operand");
        return Ok(1);
    }
    let (names, suffix): (Vec<&String>, Option<String>) = if o.has('a') || o.has('s') {
        (o.rest.iter().collect(), o.value('s').map(|s| s.to_string()))
    } else if o.rest.len() == 2 {
        (vec![&o.rest[0]], Some(o.rest[1].clone()))
    } else if o.rest.len() == 1 {
        (vec![&o.rest[0]], None)
    } else {
        io.error(&format!("basename: extra operand '{}'", o.rest[2]));
        return Ok(1);
    };
    let mut out = String::new();
    for n in names {
        let mut b = base_name(n).to_string();
        if let Some(s) = &suffix {
            if b.len() > s.len() && b.ends_with(s.as_str()) {
                b.truncate(b.len() - s.len());
            }
        }
        out.push_str(&b);
        out.push('\n');
    }
    io.print(&out);
    Ok(0)
}

fn dirname(_: &mut Shell, args: &[String], io: &Io) -> Status {
    if args.len() < 2 {
        io.error("dirname: missing operand");
        return Ok(1);
    }
    let mut out = String::new();
    for a in &args[1..] {
        out.push_str(&dir_name(a));
        out.push('\n');
    }
    io.print(&out);
    Ok(0)
}

fn realpath(sh: &mut Shell, args: &[String], io: &Io) -> Status {
    let name = args[0].as_str();
    let o = opts_or_return!(name, args, if name == "readlink" { "femnqsvz" } else { "emsqLPz" }, true, io);
    if o.rest.is_empty() {
        io.error(&format!("{}: missing operand", name));
        return Ok(1);
    }
    let mut out = String::new();
    let mut status = 0;
    for a in &o.rest {
        if name == "readlink" && !o.has('f') && !o.has('e') && !o.has('m') {
            // Plain readlink: a symlink's target.
            match fs::read_link(sh.resolve(a)) {
                Ok(t) => {
                    out.push_str(&t.to_string_lossy());
                    if !o.has('n') {
                        out.push('\n');
                    }
                }
                Err(_) => status = 1,
            }
            continue;
        }
        let must_exist = o.has('e');
        if must_exist && fs::symlink_metadata(sh.resolve(a)).is_err() {
            if name == "realpath" {
                io.error(&format!("realpath: {}: No such file or directory", a));
            }
            status = 1;
            continue;
        }
        let g = sh.guest_path(a);
        let base = sh.var("CI_PROJECT_DIR").filter(|d| !d.is_empty()).unwrap_or_default();
        let p = if g == "/" && !base.is_empty() { base } else { format!("{}{}", base.trim_end_matches('/'), g) };
        out.push_str(&p);
        out.push('\n');
    }
    io.print(&out);
    Ok(status)
}

fn mktemp(sh: &mut Shell, args: &[String], io: &Io) -> Status {
    let o = opts_or_return!("mktemp", args, "dqtup:", true, io);
    let _ = fs::create_dir_all(sh.resolve("/tmp"));
    for n in 0..100000u32 {
        let name = format!("/tmp/tmp.{:06}", n);
        let path = sh.resolve(&name);
        if fs::symlink_metadata(&path).is_ok() {
            continue;
        }
        let r = if o.has('d') {
            fs::create_dir(&path)
        } else {
            fs::OpenOptions::new().write(true).create_new(true).open(&path).map(|_| ())
        };
        return match r {
            Ok(()) => {
                io.print(&format!("{}\n", name));
                Ok(0)
            }
            Err(e) => {
                io.error(&format!("mktemp: failed to create file via template '{}': {}", name, message(&e)));
                Ok(1)
            }
        };
    }
    Ok(1)
}

/// shopt -s/-u NAME...: nullglob works; the others are accepted.
fn shopt(sh: &mut Shell, args: &[String], io: &Io) -> Status {
    let set = match args.get(1).map(|s| s.as_str()) {
        Some("-s") => true,
        Some("-u") => false,
        _ => {
            io.print(&format!("nullglob\t{}\n", if sh.nullglob { "on" } else { "off" }));
            return Ok(0);
        }
    };
    for name in &args[2..] {
        match name.as_str() {
            "nullglob" => sh.nullglob = set,
            "globstar" | "extglob" | "dotglob" | "expand_aliases" | "inherit_errexit" | "lastpipe" | "failglob"
            | "nocaseglob" | "pipefail" => {}
            _ => {
                io.error(&format!("sh: shopt: {}: invalid shell option name", name));
                return Ok(1);
            }
        }
    }
    Ok(0)
}

fn dir_stack_line(sh: &Shell) -> String {
    let mut v = vec![sh.pwd()];
    v.extend(sh.dir_stack.iter().rev().cloned());
    v.join(" ") + "\n"
}

fn pushd(sh: &mut Shell, args: &[String], io: &Io) -> Status {
    let dir = match args.get(1) {
        Some(d) => d.clone(),
        None => {
            io.error("sh: pushd: no other directory");
            return Ok(1);
        }
    };
    let old = sh.pwd();
    let s = cd(sh, &["cd".to_string(), dir], io)?;
    if s != 0 {
        return Ok(s);
    }
    sh.dir_stack.push(old);
    io.print(&dir_stack_line(sh));
    Ok(0)
}

fn popd(sh: &mut Shell, _: &[String], io: &Io) -> Status {
    let dir = match sh.dir_stack.pop() {
        Some(d) => d,
        None => {
            io.error("sh: popd: directory stack empty");
            return Ok(1);
        }
    };
    let s = cd(sh, &["cd".to_string(), dir], io)?;
    if s == 0 {
        io.print(&dir_stack_line(sh));
    }
    Ok(s)
}

fn dirs(sh: &mut Shell, _: &[String], io: &Io) -> Status {
    io.print(&dir_stack_line(sh));
    Ok(0)
}

fn pwd(sh: &mut Shell, _: &[String], io: &Io) -> Status {
    io.print(&(sh.pwd() + "\n"));
    Ok(0)
}

fn cd(sh: &mut Shell, args: &[String], io: &Io) -> Status {
    let target = match args.get(1).map(|s| s.as_str()) {
        None => sh.var("HOME").unwrap_or_else(|| "/".into()),
        Some("-") => sh.var("OLDPWD").unwrap_or_else(|| "/".into()),
        Some(t) => t.to_string(),
    };
    let path = sh.guest_path(&target);
    match fs::metadata(sh.resolve(&target)) {
        Ok(m) if m.is_dir() => {
            let old = sh.pwd();
            sh.cwd = path.trim_start_matches('/').to_string();
            let _ = sh.set_var("OLDPWD", old, io);
            let p = sh.pwd();
            let _ = sh.set_var("PWD", p, io);
            Ok(0)
        }
        Ok(_) => {
            io.error(&format!("sh: cd: {}: Not a directory", target));
            Ok(1)
        }
        Err(e) => {
            io.error(&format!("sh: cd: {}: {}", target, message(&e)));
            Ok(1)
        }
    }
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

fn copy_tree(src: &str, dst: &str, depth: usize) -> io::Result<()> {
    if depth > 256 || !crate::stack_ok() {
        return Err(io::Error::new(io::ErrorKind::Other, "directory tree too deep"));
    }
    match fs::create_dir(dst) {
        Ok(()) => {}
        Err(e) if e.kind() == io::ErrorKind::AlreadyExists => {}
        Err(e) => return Err(e),
    }
    let mut entries: Vec<_> = fs::read_dir(src)?.collect::<Result<_, _>>()?;
    entries.sort_by_key(|e| e.file_name());
    for entry in entries {
        let name = entry.file_name().to_string_lossy().into_owned();
        let (s, d) = (format!("{}/{}", src, name), format!("{}/{}", dst, name));
        if entry.file_type()?.is_dir() {
            copy_tree(&s, &d, depth + 1)?;
        } else {
            fs::copy(&s, &d)?;
        }
    }
    Ok(())
}

fn cp(sh: &mut Shell, args: &[String], io: &Io) -> Status {
    let o = opts_or_return!("cp", args, "rRafpvnuT", true, io);
    let recursive = o.has('r') || o.has('R') || o.has('a');
    if o.rest.len() < 2 {
        io.error(if o.rest.is_empty() { "cp: missing file operand".to_string() } else { format!("cp: missing destination file operand after '{}'", o.rest[0]) }.as_str());
        return Ok(1);
    }
    let (srcs, dst) = o.rest.split_at(o.rest.len() - 1);
    let dst = &dst[0];
    if srcs.len() > 1 && !Path::new(&sh.resolve(dst)).is_dir() {
        io.error(&format!("cp: target '{}' is not a directory", dst));
        return Ok(1);
    }
    let mut status = 0;
    for src in srcs {
        let from = sh.resolve(src);
        let is_dir = match fs::metadata(&from) {
            Ok(m) => m.is_dir(),
            Err(e) => {
                io.error(&format!("cp: cannot stat '{}': {}", src, message(&e)));
                status = 1;
                continue;
            }
        };
        let to = destination(sh, src, dst);
        if o.has('n') && Path::new(&to).exists() {
            continue;
        }
        let r = if is_dir {
            if !recursive {
                io.error(&format!("cp: -r not specified; omitting directory '{}'", src));
                status = 1;
                continue;
            }
            if to == from || to.starts_with(&format!("{}/", from.trim_end_matches('/'))) {
                io.error(&format!("cp: cannot copy a directory, '{}', into itself, '{}'", src, dst));
                status = 1;
                continue;
            }
            copy_tree(&from, &to, 0)
        } else {
            fs::copy(&from, &to).map(|_| ())
        };
        match r {
            Ok(()) => {
                if o.has('v') {
                    io.print(&format!("'{}' -> '{}'\n", src, dst));
                }
            }
            Err(e) => {
                io.error(&format!("cp: cannot create regular file '{}': {}", dst, message(&e)));
                status = 1;
            }
        }
    }
    Ok(status)
}

fn mv(sh: &mut Shell, args: &[String], io: &Io) -> Status {
    let o = opts_or_return!("mv", args, "fvnT", true, io);
    if o.rest.len() < 2 {
        io.error(if o.rest.is_empty() { "mv: missing file operand".to_string() } else { format!("mv: missing destination file operand after '{}'", o.rest[0]) }.as_str());
        return Ok(1);
    }
    let (srcs, dst) = o.rest.split_at(o.rest.len() - 1);
    let dst = &dst[0];
    if srcs.len() > 1 && !Path::new(&sh.resolve(dst)).is_dir() {
        io.error(&format!("mv: target '{}' is not a directory", dst));
        return Ok(1);
    }
    let mut status = 0;
    for src in srcs {
        if let Err(e) = fs::symlink_metadata(sh.resolve(src)) {
            io.error(&format!("mv: cannot stat '{}': {}", src, message(&e)));
            status = 1;
            continue;
        }
        if let Err(e) = fs::rename(sh.resolve(src), destination(sh, src, dst)) {
            io.error(&format!("mv: cannot move '{}' to '{}': {}", src, dst, message(&e)));
            status = 1;
        } else if o.has('v') {
            io.print(&format!("renamed '{}' -> '{}'\n", src, dst));
        }
    }
    Ok(status)
}

fn rm(sh: &mut Shell, args: &[String], io: &Io) -> Status {
    let o = opts_or_return!("rm", args, "rRfvid", true, io);
    let recursive = o.has('r') || o.has('R');
    let force = o.has('f');
    if o.rest.is_empty() && !force {
        io.error("rm: missing operand");
        return Ok(1);
    }
    let mut status = 0;
    for p in &o.rest {
        let path = sh.resolve(p);
        if path == format!("{}/", sh.root) || sh.guest_path(p) == "/" {
            io.error(&format!("rm: it is dangerous to operate recursively on '{}'", p));
            status = 1;
            continue;
        }
        let r = match fs::symlink_metadata(&path) {
            Err(e) if force && e.kind() == io::ErrorKind::NotFound => continue,
            Err(e) => Err(e),
            Ok(m) if m.is_dir() => {
                if !recursive && !o.has('d') {
                    io.error(&format!("rm: cannot remove '{}': Is a directory", p));
                    status = 1;
                    continue;
                }
                if recursive {
                    fs::remove_dir_all(&path)
                } else {
                    fs::remove_dir(&path)
                }
            }
            Ok(_) => fs::remove_file(&path),
        };
        match r {
            Ok(()) => {
                if o.has('v') {
                    io.print(&format!("removed '{}'\n", p));
                }
            }
            Err(e) => {
                io.error(&format!("rm: cannot remove '{}': {}", p, message(&e)));
                status = 1;
            }
        }
    }
    Ok(status)
}

fn artifact(sh: &mut Shell, args: &[String], io: &Io) -> Status {
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

/// find PATH... [-name P] [-iname P] [-type f|d] [-maxdepth N] [-mindepth N]
/// [-path P] [-not|!] [-print]: the paths, in directory order (sorted).
/// test and [: the status of an expression (2 for a malformed one).
fn test(sh: &mut Shell, args: &[String], io: &Io) -> Status {
    let name = args[0].as_str();
    let mut ops: Vec<&str> = args[1..].iter().map(|s| s.as_str()).collect();
    if name == "[" {
        if ops.last() != Some(&"]") {
            io.error("sh: [: missing `]'");
            return Ok(2);
        }
        ops.pop();
    }
    match eval_test(sh, &ops) {
        Ok(true) => Ok(0),
        Ok(false) => Ok(1),
        Err(msg) => {
            io.error(&format!("sh: {}: {}", name, msg));
            Ok(2)
        }
    }
}

fn eval_test(sh: &Shell, ops: &[&str]) -> Result<bool, String> {
    // POSIX's rules by the number of arguments, then -a/-o.
    match *ops {
        [] => Ok(false),
        [s] => Ok(!s.is_empty()),
        ["!", a] => Ok(a.is_empty()),
        [op, arg] if op.starts_with('-') => unary_test(sh, op, arg),
        [_, _] => Err(format!("{}: unary operator expected", ops[0])),
        [a, op, b] if is_binary(op) => binary_test(sh, a, op, b),
        ["!", ref rest @ ..] if ops.len() <= 4 => eval_test(sh, rest).map(|b| !b),
        ["(", a, ")"] => Ok(!a.is_empty()),
        _ => {
            // -o binds looser than -a.
            if let Some(i) = ops.iter().rposition(|&o| o == "-o") {
                if i > 0 && i + 1 < ops.len() {
                    return Ok(eval_test(sh, &ops[..i])? || eval_test(sh, &ops[i + 1..])?);
                }
            }
            if let Some(i) = ops.iter().rposition(|&o| o == "-a") {
                if i > 0 && i + 1 < ops.len() {
                    return Ok(eval_test(sh, &ops[..i])? && eval_test(sh, &ops[i + 1..])?);
                }
            }
            if ops.first() == Some(&"(") && ops.last() == Some(&")") {
                return eval_test(sh, &ops[1..ops.len() - 1]);
            }
            if ops.first() == Some(&"!") {
                return eval_test(sh, &ops[1..]).map(|b| !b);
            }
            Err("too many arguments".into())
        }
    }
}

fn is_binary(op: &str) -> bool {
    matches!(
        op,
        "=" | "==" | "!=" | "<" | ">" | "-eq" | "-ne" | "-lt" | "-le" | "-gt" | "-ge" | "-nt" | "-ot" | "-ef" | "-a" | "-o"
    )
}

pub(crate) fn unary_test(sh: &Shell, op: &str, arg: &str) -> Result<bool, String> {
    let meta = || fs::metadata(sh.resolve(arg));
    Ok(match op {
        "-n" => !arg.is_empty(),
        "-z" => arg.is_empty(),
        "-e" | "-a" => meta().is_ok(),
        "-f" => meta().map(|m| m.is_file()).unwrap_or(false),
        "-d" => meta().map(|m| m.is_dir()).unwrap_or(false),
        "-s" => meta().map(|m| m.len() > 0).unwrap_or(false),
        "-r" | "-w" => meta().is_ok(),
        "-x" => meta().map(|m| m.is_dir() || crate::coreutils::mode_of(sh, arg, false) & 0o111 != 0).unwrap_or(false),
        "-L" | "-h" => fs::symlink_metadata(sh.resolve(arg)).map(|m| m.file_type().is_symlink()).unwrap_or(false),
        "-p" | "-S" | "-b" | "-c" | "-t" => false,
        "-v" => match (arg.find('['), arg.ends_with(']')) {
            (Some(b), true) => {
                let (base, ix) = (&arg[..b], &arg[b + 1..arg.len() - 1]);
                match (sh.assoc.get(base), sh.arrays.get(base)) {
                    (Some(m), _) => m.contains_key(ix.trim_matches(|c| c == '"' || c == '\'')),
                    (None, Some(a)) => ix.parse::<i64>().map(|i| if i < 0 { a.len() as i64 + i >= 0 } else { (i as usize) < a.len() }).unwrap_or(false),
                    (None, None) => false,
                }
            }
            _ => sh.var(arg).is_some() || sh.arrays.contains_key(arg) || sh.assoc.contains_key(arg),
        },
        _ => return Err(format!("{}: unary operator expected", op)),
    })
}

pub(crate) fn binary_test(sh: &Shell, a: &str, op: &str, b: &str) -> Result<bool, String> {
    match op {
        "=" | "==" => return Ok(a == b),
        "!=" => return Ok(a != b),
        "<" => return Ok(a < b),
        ">" => return Ok(a > b),
        "-a" => return Ok(!a.is_empty() && !b.is_empty()),
        "-o" => return Ok(!a.is_empty() || !b.is_empty()),
        "-nt" | "-ot" => {
            let t = |p: &str| fs::metadata(sh.resolve(p)).and_then(|m| m.modified()).ok();
            return Ok(match (t(a), t(b)) {
                (Some(x), Some(y)) => if op == "-nt" { x > y } else { x < y },
                (Some(_), None) => op == "-nt",
                (None, Some(_)) => op == "-ot",
                _ => false,
            });
        }
        "-ef" => return Ok(sh.guest_path(a) == sh.guest_path(b)),
        _ => {}
    }
    let int = |s: &str| s.trim().parse::<i64>().map_err(|_| format!("{}: integer expression expected", s));
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
        for bad in ["", "-1", "x", "1e3", "s", "nan", "1..2"] {
            assert_eq!(parse_duration(bad), None, "{}", bad);
        }
    }

    #[test]
    fn tests() {
        let sh = Shell::new();
        assert_eq!(eval_test(&sh, &["a", "=", "a"]), Ok(true));
        assert_eq!(eval_test(&sh, &["!", "-z", ""]), Ok(false));
        assert_eq!(eval_test(&sh, &["3", "-lt", "10"]), Ok(true));
        assert_eq!(eval_test(&sh, &["a", "=", "a", "-a", "b", "=", "c"]), Ok(false));
        assert_eq!(eval_test(&sh, &["a", "=", "a", "-o", "b", "=", "c"]), Ok(true));
        assert!(eval_test(&sh, &["a", "-lt", "1"]).is_err());
    }

    #[test]
    fn paths() {
        assert_eq!(base_name("a/b/c/"), "c");
        assert_eq!(base_name("/"), "/");
        assert_eq!(dir_name("a/b/c"), "a/b");
        assert_eq!(dir_name("c"), ".");
        assert_eq!(dir_name("/c"), "/");
        assert_eq!(split_read("  a  b  c d ", " \t\n", 3), vec!["a", "b", "c d"]);
        assert_eq!(split_read("a:b::c", ":", 4), vec!["a", "b", "", "c"]);
    }
}
