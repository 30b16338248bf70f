//! More coreutils with GNU's output and messages: cat's options, the
//! checksum commands (md5sum, sha1sum, sha256sum, sha512sum), nl, yes,
//! nproc, stat, du, od, ln, tac, paste, fold, comm, join, split, install
//! and uname.

use std::fs;
use std::time::UNIX_EPOCH;

use crate::builtins::{inputs, message, opts_or_return};
use crate::digest;
use crate::{Io, Shell, Sink, Status};

/// cat [-AbeEnstTuv] FILE...
pub(crate) fn cat(sh: &mut Shell, args: &[String], io: &Io) -> Status {
    let o = opts_or_return!("cat", args, "AbeEnstTuv", true, io);
    for l in &o.long {
        let c = match l.as_str() {
            "show-all" => 'A',
            "number-nonblank" => 'b',
            "show-ends" => 'E',
            "number" => 'n',
            "squeeze-blank" => 's',
            "show-tabs" => 'T',
            "show-nonprinting" => 'v',
            _ => {
                io.error(&format!("cat: unrecognized option '--{}'", l));
                return Ok(1);
            }
        };
        let _ = c;
    }
    let has = |c: char, long: &str| o.has(c) || o.long.iter().any(|l| l == long);
    let all = has('A', "show-all");
    let nonprint = all || o.has('e') || o.has('t') || has('v', "show-nonprinting");
    let ends = all || o.has('e') || has('E', "show-ends");
    let tabs = all || o.has('t') || has('T', "show-tabs");
    let nonblank = has('b', "number-nonblank");
    let number = nonblank || has('n', "number");
    let squeeze = has('s', "squeeze-blank");
    let mut status = 0;
    let ins = inputs(sh, "cat", &o.rest, io, &mut status);
    if !(nonprint || ends || tabs || number || squeeze) {
        for (_, data) in ins {
            if !io.write(&data) {
                return Ok(1);
            }
        }
        return Ok(status);
    }
    let mut n = 0u64;
    let mut blanks = 0;
    let mut out = Vec::new();
    for (_, data) in ins {
        for line in data.split_inclusive(|&b| b == b'\n') {
            let (body, nl) = match line.split_last() {
                Some((b'\n', body)) => (body, true),
                _ => (line, false),
            };
            if body.is_empty() && nl {
                blanks += 1;
                if squeeze && blanks > 1 {
                    continue;
                }
            } else {
                blanks = 0;
            }
            if number && !(nonblank && body.is_empty()) {
                n += 1;
                out.extend_from_slice(format!("{:>6}\t", n).as_bytes());
            }
            for &b in body {
                match b {
                    b'\t' if tabs => out.extend_from_slice(b"^I"),
                    b'\t' => out.push(b),
                    _ if !nonprint => out.push(b),
                    _ => {
                        let mut c = b;
                        if c >= 128 {
                            out.extend_from_slice(b"M-");
                            c -= 128;
                        }
                        if c < 32 {
                            out.push(b'^');
                            out.push(c + 64);
                        } else if c == 127 {
                            out.extend_from_slice(b"^?");
                        } else {
                            out.push(c);
                        }
                    }
                }
            }
            if nl {
                if ends {
                    out.push(b'$');
                }
                out.push(b'\n');
            }
            if out.len() >= 64 << 10 {
                if !io.write(&out) {
                    return Ok(1);
                }
                out.clear();
            }
        }
    }
    if !io.write(&out) {
        return Ok(1);
    }
    Ok(status)
}

/// md5sum, sha1sum, sha256sum, sha512sum: FILE... or -c FILE.
pub(crate) fn checksum(sh: &mut Shell, args: &[String], io: &Io) -> Status {
    let name = args[0].as_str();
    let f: fn(&[u8]) -> Vec<u8> = match name {
        "md5sum" => digest::md5,
        "sha1sum" => digest::sha1,
        "sha512sum" => digest::sha512,
        _ => digest::sha256,
    };
    let hexlen = f(b"").len() * 2;
    let o = opts_or_return!(name, args, "cbtwz", true, io);
    let long = |l: &str| o.long.iter().any(|x| x == l);
    for l in &o.long {
        if !matches!(l.as_str(), "check" | "quiet" | "status" | "ignore-missing" | "strict" | "warn" | "binary" | "text" | "tag") {
            io.error(&format!("{}: unrecognized option '--{}'", name, l));
            return Ok(1);
        }
    }
    if long("tag") {
        io.error(&format!("{}: --tag is not supported here", name));
        return Ok(1);
    }
    let mut status = 0;
    if !(o.has('c') || long("check")) {
        let ins = inputs(sh, name, &o.rest, io, &mut status);
        let mut out = String::new();
        for (file, d) in ins {
            out.push_str(&format!("{}  {}\n", digest::hex(&f(&d)), file));
        }
        io.print(&out);
        return Ok(status);
    }
    let (quiet, silent, ignore_missing) = (long("quiet"), long("status"), long("ignore-missing"));
    let ins = inputs(sh, name, &o.rest, io, &mut status);
    let (mut bad, mut unreadable, mut malformed) = (0, 0, 0);
    let mut out = String::new();
    for (list, d) in ins {
        let mut checked = 0;
        for l in String::from_utf8_lossy(&d).lines() {
            let parsed = l.split_once("  ").or_else(|| l.split_once(" *")).filter(|(sum, file)| {
                sum.len() == hexlen && sum.bytes().all(|b| b.is_ascii_hexdigit()) && !file.is_empty()
            });
            let (sum, file) = match parsed {
                Some(v) => v,
                None => {
                    malformed += 1;
                    continue;
                }
            };
            match sh.read_path(file) {
                Ok(data) => {
                    checked += 1;
                    if digest::hex(&f(&data)) == sum.to_ascii_lowercase() {
                        if !quiet {
                            out.push_str(&format!("{}: OK\n", file));
                        }
                    } else {
                        out.push_str(&format!("{}: FAILED\n", file));
                        bad += 1;
                    }
                }
                Err(_) if ignore_missing => {}
                Err(e) => {
                    checked += 1;
                    io.print(&std::mem::take(&mut out));
                    io.error(&format!("{}: {}: {}", name, file, message(&e)));
                    out.push_str(&format!("{}: FAILED open or read\n", file));
                    unreadable += 1;
                }
            }
        }
        if checked == 0 && (malformed > 0 || !ignore_missing) {
            let shown = if list == "-" { "standard input" } else { list.as_str() };
            if !silent {
                io.print(&std::mem::take(&mut out));
            }
            io.error(&format!("{}: {}: no properly formatted checksum lines found", name, shown));
            status = 1;
        }
    }
    if !silent {
        io.print(&out);
    }
    let plural = |n: i32, one: &str, many: &str| format!("{} {}", n, if n == 1 { one } else { many });
    if !silent {
        if malformed > 0 && status == 0 {
            io.error(&format!("{}: WARNING: {} improperly formatted", name, plural(malformed, "line is", "lines are")));
        }
        if unreadable > 0 {
            io.error(&format!("{}: WARNING: {} could not be read", name, plural(unreadable, "listed file", "listed files")));
        }
        if bad > 0 {
            io.error(&format!("{}: WARNING: {} did NOT match", name, plural(bad, "computed checksum", "computed checksums")));
        }
    }
    if bad > 0 || unreadable > 0 || (malformed > 0 && long("strict")) {
        status = 1;
    }
    Ok(status)
}

/// nl [-b a|t|n] [-n ln|rn|rz] [-w N] [-s SEP] [-v N] [-i N] [FILE...]
pub(crate) fn nl(sh: &mut Shell, args: &[String], io: &Io) -> Status {
    let o = opts_or_return!("nl", args, "b:n:w:s:v:i:", true, io);
    let style = o.value('b').unwrap_or("t");
    if !matches!(style, "a" | "t" | "n") {
        io.error(&format!("nl: invalid body numbering style: '{}'", style));
        return Ok(1);
    }
    let format = o.value('n').unwrap_or("rn");
    if !matches!(format, "ln" | "rn" | "rz") {
        io.error(&format!("nl: invalid line numbering format: '{}'", format));
        return Ok(1);
    }
    let num = |c: char, default: i64, what: &str| -> Result<i64, String> {
        match o.value(c) {
            None => Ok(default),
            Some(v) => v.parse::<i64>().map_err(|_| format!("nl: invalid {}: '{}'", what, v)),
        }
    };
    let (width, start, incr) = match (num('w', 6, "line number field width"), num('v', 1, "starting line number"), num('i', 1, "line number increment")) {
        (Ok(w), Ok(v), Ok(i)) if (1..=1000).contains(&w) => (w as usize, v, i),
        (Err(e), _, _) | (_, Err(e), _) | (_, _, Err(e)) => {
            io.error(&e);
            return Ok(1);
        }
        (Ok(w), _, _) => {
            io.error(&format!("nl: invalid line number field width: '{}'", w));
            return Ok(1);
        }
    };
    let sep = o.value('s').unwrap_or("\t");
    let mut status = 0;
    let ins = inputs(sh, "nl", &o.rest, io, &mut status);
    let mut n = start;
    let mut out = Vec::new();
    for (_, data) in ins {
        for line in data.split_inclusive(|&b| b == b'\n') {
            let blank = line == b"\n";
            let numbered = match style {
                "a" => true,
                "t" => !blank,
                _ => false,
            };
            if numbered {
                let s = match format {
                    "ln" => format!("{:<w$}{}", n, sep, w = width),
                    "rz" if n < 0 => format!("-{:0>w$}{}", -n, sep, w = width.saturating_sub(1)),
                    "rz" => format!("{:0>w$}{}", n, sep, w = width),
                    _ => format!("{:>w$}{}", n, sep, w = width),
                };
                out.extend_from_slice(s.as_bytes());
                n += incr;
            } else {
                out.extend_from_slice(" ".repeat(width + sep.len()).as_bytes());
            }
            out.extend_from_slice(line);
            if !line.ends_with(b"\n") {
                out.push(b'\n');
            }
        }
    }
    if !io.write(&out) {
        return Ok(1);
    }
    Ok(status)
}

/// yes [WORD...]: into a pipe, as much as a reader can want before it
/// stops (then, as in bash, the pipe's SIGPIPE status: see
/// Shell::run_pipeline); elsewhere it would never end, so it refuses.
pub(crate) fn yes(_: &mut Shell, args: &[String], io: &Io) -> Status {
    if !matches!(io.out, Sink::Buf(_)) {
        io.error("yes: standard output is not a pipe: it would write forever (yes writes at most 1 MiB, into a pipe)");
        return Ok(1);
    }
    let mut line = if args.len() > 1 { args[1..].join(" ") } else { "y".to_string() };
    line.push('\n');
    let chunk = line.repeat((64 << 10) / line.len() + 1);
    let mut written = 0;
    while written < 1 << 20 {
        if !io.print(&chunk) {
            return Ok(1);
        }
        written += chunk.len();
    }
    Ok(0)
}

/// nproc: the module is single-threaded: 1.
pub(crate) fn nproc(_: &mut Shell, args: &[String], io: &Io) -> Status {
    let _ = opts_or_return!("nproc", args, "", false, io);
    io.print("1\n");
    Ok(0)
}

/// The mode bits shown for a file: what chmod set, else 644 (755 for a
/// dir): the sandbox itself has no permissions.
pub(crate) fn mode_of(sh: &Shell, path: &str, is_dir: bool) -> u32 {
    match sh.modes.get(&sh.guest_path(path)) {
        Some(&m) => m,
        None if is_dir => 0o755,
        None => 0o644,
    }
}

fn mode_string(mode: u32, kind: char) -> String {
    let mut s = String::new();
    s.push(kind);
    for shift in [6, 3, 0] {
        let bits = (mode >> shift) & 7;
        s.push(if bits & 4 != 0 { 'r' } else { '-' });
        s.push(if bits & 2 != 0 { 'w' } else { '-' });
        s.push(if bits & 1 != 0 { 'x' } else { '-' });
    }
    s
}

/// stat -c FORMAT / --format=FORMAT / --printf=FORMAT FILE...
pub(crate) fn stat(sh: &mut Shell, args: &[String], io: &Io) -> Status {
    let mut norm = vec![args[0].clone()];
    let mut printf = None;
    for a in &args[1..] {
        if let Some(f) = a.strip_prefix("--format=") {
            norm.push("-c".into());
            norm.push(f.into());
        } else if let Some(f) = a.strip_prefix("--printf=") {
            printf = Some(f.to_string());
        } else if a == "--dereference" {
            norm.push("-L".into());
        } else {
            norm.push(a.clone());
        }
    }
    let o = opts_or_return!("stat", &norm, "c:Lt", true, io);
    if let Some(l) = o.long.first() {
        io.error(&format!("stat: unrecognized option '--{}'", l));
        return Ok(1);
    }
    let (fmt, newline) = match (printf, o.value('c')) {
        (Some(p), _) => {
            let mut s = String::new();
            crate::utils::unescape(&p, &mut s, false);
            (s, false)
        }
        (None, Some(c)) => (c.to_string(), true),
        (None, None) => {
            io.error("stat: only -c FORMAT, --format and --printf are supported here (no default output)");
            return Ok(1);
        }
    };
    if o.rest.is_empty() {
        io.error("stat: missing operand");
        return Ok(1);
    }
    let mut status = 0;
    let mut out = String::new();
    for f in &o.rest {
        let p = sh.resolve(f);
        let m = if o.has('L') { fs::metadata(&p) } else { fs::symlink_metadata(&p) };
        let m = match m {
            Ok(m) => m,
            Err(e) => {
                io.print(&std::mem::take(&mut out));
                io.error(&format!("stat: cannot statx '{}': {}", f, message(&e)));
                status = 1;
                continue;
            }
        };
        let secs = |t: std::io::Result<std::time::SystemTime>| {
            t.ok().and_then(|t| t.duration_since(UNIX_EPOCH).ok()).map(|d| (d.as_secs() as i64, d.subsec_nanos())).unwrap_or((0, 0))
        };
        let (mtime, mnanos) = secs(m.modified());
        let (atime, anano) = secs(m.accessed());
        let is_dir = m.is_dir();
        let is_link = m.file_type().is_symlink();
        let size = if is_dir { 4096 } else { m.len() };
        let mode = mode_of(sh, f, is_dir);
        let kind = if is_dir { 'd' } else if is_link { 'l' } else { '-' };
        let cs: Vec<char> = fmt.chars().collect();
        let mut i = 0;
        while i < cs.len() {
            let c = cs[i];
            i += 1;
            if c != '%' || i >= cs.len() {
                out.push(c);
                continue;
            }
            let d = cs[i];
            i += 1;
            let human = |s: i64, ns: u32| format!("{}.{:09} +0000", crate::utils::format_date(s, "%F %T"), ns);
            match d {
                '%' => out.push('%'),
                'n' => out.push_str(f),
                'N' => out.push_str(&format!("'{}'", f)),
                's' => out.push_str(&size.to_string()),
                'Y' | 'Z' | 'W' => out.push_str(&mtime.to_string()),
                'X' => out.push_str(&atime.to_string()),
                'y' | 'z' | 'w' => out.push_str(&human(mtime, mnanos)),
                'x' => out.push_str(&human(atime, anano)),
                'a' => out.push_str(&format!("{:o}", mode)),
                'A' => out.push_str(&mode_string(mode, kind)),
                'f' => out.push_str(&format!("{:x}", mode | if is_dir { 0o40000 } else if is_link { 0o120000 } else { 0o100000 })),
                'F' => out.push_str(if is_dir {
                    "directory"
                } else if is_link {
                    "symbolic link"
                } else if size == 0 {
                    "regular empty file"
                } else {
                    "regular file"
                }),
                'U' | 'G' => out.push_str("root"),
                'u' | 'g' => out.push('0'),
                'h' => out.push_str(if is_dir { "2" } else { "1" }),
                'b' => out.push_str(&((size + 4095) / 4096 * 8).to_string()),
                'B' => out.push_str("512"),
                'o' => out.push_str("4096"),
                _ => {
                    io.print(&std::mem::take(&mut out));
                    io.error(&format!("stat: %{}: not supported here (supported: %a %A %b %B %f %F %g %G %h %n %N %o %s %u %U %x %X %y %Y %z %Z %%)", d));
                    return Ok(1);
                }
            }
        }
        if newline {
            out.push('\n');
        }
    }
    io.print(&out);
    Ok(status)
}

/// Sizes as du -h shows them: powers of 1024, one decimal under 10,
/// rounded up.
fn human(bytes: u64) -> String {
    if bytes < 1024 {
        return bytes.to_string();
    }
    let units = ['K', 'M', 'G', 'T', 'P', 'E'];
    let mut v = bytes as f64 / 1024.0;
    let mut u = 0;
    loop {
        if v < 10.0 {
            let r = (v * 10.0).ceil() / 10.0;
            if r < 10.0 {
                return format!("{:.1}{}", r, units[u]);
            }
            return format!("10{}", units[u]);
        }
        let r = v.ceil();
        if r < 1024.0 || u + 1 == units.len() {
            return format!("{}{}", r as u64, units[u]);
        }
        v /= 1024.0;
        u += 1;
    }
}

/// du [-s] [-a] [-c] [-h|-k|-m|-b] [-d N] [PATH...]: disk usage as
/// ext4 counts it (4 KiB blocks; a dir takes one), in paths' sorted order.
pub(crate) fn du(sh: &mut Shell, args: &[String], io: &Io) -> Status {
    let mut norm = vec![args[0].clone()];
    for a in &args[1..] {
        if let Some(d) = a.strip_prefix("--max-depth=") {
            norm.push("-d".into());
            norm.push(d.into());
        } else {
            norm.push(match a.as_str() {
                "--summarize" => "-s".into(),
                "--human-readable" => "-h".into(),
                "--all" => "-a".into(),
                "--total" => "-c".into(),
                "--bytes" => "-b".into(),
                _ => a.clone(),
            });
        }
    }
    let o = opts_or_return!("du", &norm, "sahkmbcd:xL", true, io);
    let apparent = o.has('b') || o.long.iter().any(|l| l == "apparent-size");
    if let Some(l) = o.long.iter().find(|l| *l != "apparent-size") {
        io.error(&format!("du: unrecognized option '--{}'", l));
        return Ok(1);
    }
    let max_depth = match o.value('d') {
        Some(d) => match d.parse::<usize>() {
            Ok(n) => n,
            Err(_) => {
                io.error(&format!("du: invalid maximum depth '{}'", d));
                return Ok(1);
            }
        },
        None if o.has('s') => 0,
        None => usize::MAX,
    };
    let show = |bytes: u64| -> String {
        if o.has('h') {
            human(bytes)
        } else if o.has('b') {
            bytes.to_string()
        } else if o.has('m') {
            ((bytes + (1 << 20) - 1) >> 20).to_string()
        } else {
            ((bytes + 1023) / 1024).to_string()
        }
    };
    let usage = |len: u64, is_dir: bool| -> u64 {
        match (apparent, is_dir) {
            (_, true) => 4096,
            (true, false) => len,
            (false, false) => (len + 4095) / 4096 * 4096,
        }
    };
    let roots = if o.rest.is_empty() { vec![".".to_string()] } else { o.rest.clone() };
    let mut status = 0;
    let mut out = String::new();
    let mut total = 0u64;
    for root in &roots {
        // Post-order over an explicit stack: (path, depth, entered, size so far).
        let meta = match fs::symlink_metadata(sh.resolve(root)) {
            Ok(m) => m,
            Err(e) => {
                io.error(&format!("du: cannot access '{}': {}", root, message(&e)));
                status = 1;
                continue;
            }
        };
        if !meta.is_dir() {
            let n = usage(meta.len(), false);
            total += n;
            out.push_str(&format!("{}\t{}\n", show(n), root));
            continue;
        }
        // Each frame: path, depth, the entries left, the size so far.
        let mut stack: Vec<(String, usize, Vec<(String, bool, u64)>, u64)> = Vec::new();
        let list = |p: &str| -> Vec<(String, bool, u64)> {
            let mut v: Vec<(String, bool, u64)> = fs::read_dir(sh.resolve(p))
                .map(|rd| {
                    rd.flatten()
                        .map(|e| {
                            let m = e.metadata().ok();
                            let d = m.as_ref().map(|m| m.is_dir()).unwrap_or(false);
                            let len = m.map(|m| m.len()).unwrap_or(0);
                            (e.file_name().to_string_lossy().into_owned(), d, len)
                        })
                        .collect()
                })
                .unwrap_or_default();
            v.sort();
            v.reverse();
            v
        };
        stack.push((root.clone(), 0, list(root), 4096));
        let mut count = 0usize;
        while let Some(top) = stack.last_mut() {
            count += 1;
            if count > 1_000_000 {
                io.error("du: too many files");
                return Ok(1);
            }
            match top.2.pop() {
                Some((name, is_dir, len)) => {
                    let path = if top.0.ends_with('/') { format!("{}{}", top.0, name) } else { format!("{}/{}", top.0, name) };
                    let depth = top.1 + 1;
                    if is_dir {
                        let entries = list(&path);
                        stack.push((path, depth, entries, 4096));
                    } else {
                        let n = usage(len, false);
                        top.3 += n;
                        if o.has('a') && depth <= max_depth {
                            out.push_str(&format!("{}\t{}\n", show(n), path));
                        }
                    }
                }
                None => {
                    let (path, depth, _, size) = stack.pop().unwrap_or_default();
                    if depth <= max_depth {
                        out.push_str(&format!("{}\t{}\n", show(size), path));
                    }
                    match stack.last_mut() {
                        Some(parent) => parent.3 += size,
                        None => total += size,
                    }
                }
            }
        }
    }
    if o.has('c') {
        out.push_str(&format!("{}\ttotal\n", show(total)));
    }
    io.print(&out);
    Ok(status)
}

/// od [-A d|o|x|n] [-t TYPE] [-c] [-x] [-b] [-d] [-o] [-v] [-w N] [-j N] [-N N] [FILE...]
pub(crate) fn od(sh: &mut Shell, args: &[String], io: &Io) -> Status {
    let o = opts_or_return!("od", args, "A:t:cxbdovw:j:N:s", true, io);
    let mut types: Vec<String> = Vec::new();
    for (f, v) in &o.flags {
        match f {
            't' => types.push(v.clone()),
            'c' => types.push("c".into()),
            'x' => types.push("x2".into()),
            'b' => types.push("o1".into()),
            'd' => types.push("u2".into()),
            'o' => types.push("o2".into()),
            's' => types.push("d2".into()),
            _ => {}
        }
    }
    if types.is_empty() {
        types.push("o2".into());
    }
    if types.len() > 1 {
        io.error("od: only one output type is supported here");
        return Ok(1);
    }
    let t = types[0].trim_end_matches('z');
    let first = t.chars().next().map(|c| c.len_utf8()).unwrap_or(0);
    let (kind, size) = match t.split_at(first) {
        ("c", "") | ("a", "") => (t.chars().next().unwrap_or('c'), 1usize),
        (k @ ("x" | "o" | "d" | "u"), n) => {
            let n = match n {
                "" | "I" => 4,
                "C" => 1,
                "S" => 2,
                "L" => 8,
                _ => n.parse::<usize>().unwrap_or(0),
            };
            if !matches!(n, 1 | 2 | 4 | 8) {
                io.error(&format!("od: invalid type string '{}'", types[0]));
                return Ok(1);
            }
            (k.chars().next().unwrap_or('x'), n)
        }
        _ => {
            io.error(&format!("od: invalid type string '{}' (supported here: a c d o u x with sizes 1 2 4 8)", types[0]));
            return Ok(1);
        }
    };
    let radix = o.value('A').unwrap_or("o");
    if !matches!(radix, "d" | "o" | "x" | "n") {
        io.error(&format!("od: invalid output address radix '{}'; it must be one character from [doxn]", radix));
        return Ok(1);
    }
    let parse_n = |v: Option<&str>| v.map(|s| s.parse::<usize>().map_err(|_| s.to_string())).transpose();
    let (skip, limit, width) = match (parse_n(o.value('j')), parse_n(o.value('N')), parse_n(o.value('w'))) {
        (Ok(j), Ok(n), Ok(w)) => (j.unwrap_or(0), n, w.unwrap_or(16)),
        (Err(s), _, _) | (_, Err(s), _) | (_, _, Err(s)) => {
            io.error(&format!("od: invalid number '{}'", s));
            return Ok(1);
        }
    };
    if width == 0 || width % size != 0 || width > 1 << 10 {
        io.error(&format!("od: invalid -w argument '{}'", width));
        return Ok(1);
    }
    let mut status = 0;
    let mut data = Vec::new();
    for (_, d) in inputs(sh, "od", &o.rest, io, &mut status) {
        data.extend_from_slice(&d);
    }
    let data = &data[skip.min(data.len())..];
    let data = &data[..limit.unwrap_or(data.len()).min(data.len())];
    let field = match (kind, size) {
        ('c', _) | ('a', _) => 4,
        ('x', n) => 2 * n + 1,
        ('o', 1) => 4,
        ('o', 2) => 7,
        ('o', 4) => 12,
        ('o', _) => 23,
        ('u', 1) => 4,
        ('u', 2) => 6,
        ('u', 4) => 11,
        ('u', _) => 21,
        (_, 1) => 5,
        (_, 2) => 7,
        (_, 4) => 12,
        (_, _) => 21,
    };
    let addr = |n: usize| match radix {
        "d" => format!("{:07}", n),
        "x" => format!("{:06x}", n),
        "n" => String::new(),
        _ => format!("{:07o}", n),
    };
    const NAMES: [&str; 33] = [
        "nul", "soh", "stx", "etx", "eot", "enq", "ack", "bel", "bs", "ht", "nl", "vt", "ff", "cr", "so", "si", "dle", "dc1",
        "dc2", "dc3", "dc4", "nak", "syn", "etb", "can", "em", "sub", "esc", "fs", "gs", "rs", "us", "sp",
    ];
    let mut out = String::new();
    let mut prev: Option<&[u8]> = None;
    let mut starred = false;
    for (k, line) in data.chunks(width).enumerate() {
        if !o.has('v') && line.len() == width && prev == Some(line) {
            if !starred {
                out.push_str("*\n");
                starred = true;
            }
            continue;
        }
        prev = Some(line);
        starred = false;
        out.push_str(&addr(k * width));
        let mut padded = line.to_vec();
        while padded.len() % size != 0 {
            padded.push(0);
        }
        for v in padded.chunks(size) {
            let s = match kind {
                'c' => match v[0] {
                    0 => "\\0".to_string(),
                    7 => "\\a".to_string(),
                    8 => "\\b".to_string(),
                    9 => "\\t".to_string(),
                    10 => "\\n".to_string(),
                    11 => "\\v".to_string(),
                    12 => "\\f".to_string(),
                    13 => "\\r".to_string(),
                    b @ 32..=126 => (b as char).to_string(),
                    b => format!("{:03o}", b),
                },
                'a' => match v[0] & 127 {
                    127 => "del".to_string(),
                    b @ 0..=32 => NAMES[b as usize].to_string(),
                    b => (b as char).to_string(),
                },
                _ => {
                    let mut b = [0u8; 8];
                    b[..size].copy_from_slice(v);
                    let u = u64::from_le_bytes(b);
                    let shift = 64 - 8 * size as u32;
                    match kind {
                        'x' => format!("{:0w$x}", u, w = 2 * size),
                        'o' => format!("{:0w$o}", u, w = field - 1),
                        'u' => u.to_string(),
                        _ => (((u << shift) as i64) >> shift).to_string(),
                    }
                }
            };
            out.push_str(&format!("{:>w$}", s, w = field));
        }
        out.push('\n');
        if out.len() >= 64 << 10 {
            if !io.print(&out) {
                return Ok(1);
            }
            out.clear();
        }
    }
    if radix != "n" {
        out.push_str(&addr(data.len()));
        out.push('\n');
    }
    io.print(&out);
    Ok(status)
}

extern "C" {
    /// libc's symlink (wasi-libc's resolves the sandbox's preopened dir);
    /// std's is unstable on WASI.
    fn symlink(target: *const std::os::raw::c_char, link: *const std::os::raw::c_char) -> std::os::raw::c_int;
}

fn make_symlink(target: &str, link: &str) -> std::io::Result<()> {
    let t = std::ffi::CString::new(target).map_err(|_| std::io::Error::new(std::io::ErrorKind::InvalidInput, "invalid name"))?;
    let l = std::ffi::CString::new(link).map_err(|_| std::io::Error::new(std::io::ErrorKind::InvalidInput, "invalid name"))?;
    // SAFETY: both are NUL-terminated strings that outlive the call.
    if unsafe { symlink(t.as_ptr(), l.as_ptr()) } == 0 {
        Ok(())
    } else {
        Err(std::io::Error::last_os_error())
    }
}

/// ln [-s] [-f] [-n] [-v] [-T] TARGET [LINK] or TARGET... DIR.
pub(crate) fn ln(sh: &mut Shell, args: &[String], io: &Io) -> Status {
    let o = opts_or_return!("ln", args, "sfnvTr", true, io);
    if let Some(l) = o.long.iter().find(|l| !matches!(l.as_str(), "symbolic" | "force" | "no-dereference" | "verbose")) {
        io.error(&format!("ln: unrecognized option '--{}'", l));
        return Ok(1);
    }
    let long = |l: &str| o.long.iter().any(|x| x == l);
    let symbolic = o.has('s') || long("symbolic");
    let force = o.has('f') || long("force");
    if o.has('r') {
        io.error("ln: -r is not supported here");
        return Ok(1);
    }
    let (targets, dest): (&[String], String) = match o.rest.len() {
        0 => {
            io.error("ln: missing file operand");
            return Ok(1);
        }
        1 => (&o.rest[..], ".".to_string()),
        n => (&o.rest[..n - 1], o.rest[n - 1].clone()),
    };
    let dest_is_dir = !o.has('T') && {
        let nodir = o.has('n') || long("no-dereference");
        let m = if nodir { fs::symlink_metadata(sh.resolve(&dest)) } else { fs::metadata(sh.resolve(&dest)) };
        m.map(|m| m.is_dir()).unwrap_or(false)
    };
    if targets.len() > 1 && !dest_is_dir {
        io.error(&format!("ln: target '{}' is not a directory", dest));
        return Ok(1);
    }
    let mut status = 0;
    for t in targets {
        let link = if dest_is_dir || o.rest.len() == 1 {
            format!("{}/{}", dest.trim_end_matches('/'), crate::builtins::base_name(t))
        } else {
            dest.clone()
        };
        let shown = if o.rest.len() == 1 { crate::builtins::base_name(t).to_string() } else { link.clone() };
        if fs::symlink_metadata(sh.resolve(&link)).is_ok() {
            if !force {
                io.error(&format!("ln: failed to create {}link '{}': File exists", if symbolic { "symbolic " } else { "hard " }, shown));
                status = 1;
                continue;
            }
            let _ = fs::remove_file(sh.resolve(&link));
        }
        let r = if symbolic {
            // The target as given: relative to the link's dir.
            make_symlink(t, &sh.resolve(&link))
        } else {
            fs::hard_link(sh.resolve(t), sh.resolve(&link))
        };
        match r {
            Ok(()) => {
                if o.has('v') || long("verbose") {
                    io.print(&format!("'{}' -> '{}'\n", shown, t));
                }
            }
            Err(e) => {
                let what = if symbolic { "symbolic link" } else { "hard link" };
                io.error(&format!("ln: failed to create {} '{}': {}", what, shown, message(&e)));
                status = 1;
            }
        }
    }
    Ok(status)
}

/// The lines of data, without their newlines (a last line without one
/// counts).
fn text_lines(data: &[u8]) -> Vec<String> {
    let text = String::from_utf8_lossy(data);
    let mut v: Vec<String> = text.split('\n').map(|s| s.to_string()).collect();
    if text.ends_with('\n') || text.is_empty() {
        v.pop();
    }
    v
}

/// tac [FILE...]: lines in reverse order.
pub(crate) fn tac(sh: &mut Shell, args: &[String], io: &Io) -> Status {
    let o = opts_or_return!("tac", args, "", true, io);
    let mut status = 0;
    let mut out = Vec::new();
    for (_, data) in inputs(sh, "tac", &o.rest, io, &mut status) {
        let mut parts: Vec<&[u8]> = data.split_inclusive(|&b| b == b'\n').collect();
        parts.reverse();
        for p in parts {
            out.extend_from_slice(p);
        }
    }
    if !io.write(&out) {
        return Ok(1);
    }
    Ok(status)
}

/// paste [-d LIST] [-s] FILE...
pub(crate) fn paste(sh: &mut Shell, args: &[String], io: &Io) -> Status {
    let o = opts_or_return!("paste", args, "d:sz", true, io);
    let mut delims: Vec<char> = Vec::new();
    let mut d = String::new();
    crate::utils::unescape(o.value('d').unwrap_or("\t"), &mut d, false);
    if o.value('d') == Some("\\0") {
        d = String::new();
    }
    delims.extend(d.chars());
    let files = if o.rest.is_empty() { vec!["-".to_string()] } else { o.rest.clone() };
    let mut status = 0;
    let mut cols: Vec<Vec<String>> = Vec::new();
    let mut stdin_used = false;
    for f in &files {
        if f == "-" {
            // Each - takes the next line of standard input in turn; one -
            // is by far the common case: it takes them all.
            if stdin_used {
                cols.push(Vec::new());
                continue;
            }
            stdin_used = true;
        }
        let ins = inputs(sh, "paste", std::slice::from_ref(f), io, &mut status);
        if let Some((_, data)) = ins.into_iter().next() {
            cols.push(text_lines(&data));
        } else {
            return Ok(1);
        }
    }
    let delim = |k: usize| delims.get(k % delims.len().max(1)).map(|c| c.to_string()).unwrap_or_default();
    let mut out = String::new();
    if o.has('s') {
        for c in &cols {
            for (k, l) in c.iter().enumerate() {
                if k > 0 {
                    out.push_str(&delim(k - 1));
                }
                out.push_str(l);
            }
            out.push('\n');
        }
    } else {
        let n = cols.iter().map(|c| c.len()).max().unwrap_or(0);
        for i in 0..n {
            for (k, c) in cols.iter().enumerate() {
                if k > 0 {
                    out.push_str(&delim(k - 1));
                }
                out.push_str(c.get(i).map(|s| s.as_str()).unwrap_or(""));
            }
            out.push('\n');
        }
    }
    io.print(&out);
    Ok(status)
}

/// fold [-w N] [-s] [-b] [FILE...]
pub(crate) fn fold(sh: &mut Shell, args: &[String], io: &Io) -> Status {
    let args: Vec<String> = args
        .iter()
        .enumerate()
        .map(|(k, a)| if k > 0 && a.len() > 1 && a.starts_with('-') && a[1..].chars().all(|c| c.is_ascii_digit()) { format!("-w{}", &a[1..]) } else { a.clone() })
        .collect();
    let o = opts_or_return!("fold", &args, "w:sb", true, io);
    let width = match o.value('w').unwrap_or("80").parse::<usize>() {
        Ok(w) if w > 0 => w,
        _ => {
            io.error(&format!("fold: invalid number of columns: '{}'", o.value('w').unwrap_or("")));
            return Ok(1);
        }
    };
    let mut status = 0;
    let mut out = String::new();
    for (_, data) in inputs(sh, "fold", &o.rest, io, &mut status) {
        let text = String::from_utf8_lossy(&data).into_owned();
        for piece in text.split_inclusive('\n') {
            let (line, nl) = match piece.strip_suffix('\n') {
                Some(l) => (l, true),
                None => (piece, false),
            };
            let mut cs: Vec<char> = line.chars().collect();
            while cs.len() > width {
                let mut cut = width;
                if o.has('s') {
                    if let Some(sp) = cs[..width].iter().rposition(|c| *c == ' ') {
                        cut = sp + 1;
                    }
                }
                out.extend(cs[..cut].iter());
                out.push('\n');
                cs.drain(..cut);
            }
            out.extend(cs.iter());
            if nl {
                out.push('\n');
            }
        }
    }
    io.print(&out);
    Ok(status)
}

/// comm [-123] FILE1 FILE2: lines only in 1, only in 2, in both (sorted
/// inputs).
pub(crate) fn comm(sh: &mut Shell, args: &[String], io: &Io) -> Status {
    let o = opts_or_return!("comm", args, "123", true, io);
    if o.rest.len() != 2 {
        io.error(if o.rest.len() < 2 { "comm: missing operand" } else { "comm: extra operand" });
        return Ok(1);
    }
    let mut status = 0;
    let ins = inputs(sh, "comm", &o.rest, io, &mut status);
    if ins.len() != 2 {
        return Ok(1);
    }
    let (a, b) = (text_lines(&ins[0].1), text_lines(&ins[1].1));
    let show = [!o.has('1'), !o.has('2'), !o.has('3')];
    let mut out = String::new();
    let mut put = |col: usize, l: &str| {
        if !show[col] {
            return;
        }
        let tabs = show[..col].iter().filter(|s| **s).count();
        out.push_str(&"\t".repeat(tabs));
        out.push_str(l);
        out.push('\n');
    };
    let (mut i, mut j) = (0, 0);
    while i < a.len() || j < b.len() {
        if j >= b.len() || (i < a.len() && a[i] < b[j]) {
            put(0, &a[i]);
            i += 1;
        } else if i >= a.len() || b[j] < a[i] {
            put(1, &b[j]);
            j += 1;
        } else {
            put(2, &a[i]);
            i += 1;
            j += 1;
        }
    }
    io.print(&out);
    Ok(status)
}

/// join [-t C] [-1 F] [-2 F] FILE1 FILE2: lines with equal join fields
/// (sorted inputs), the field then the rest of each.
pub(crate) fn join(sh: &mut Shell, args: &[String], io: &Io) -> Status {
    let o = opts_or_return!("join", args, "t:1:2:j:a:v:o:ie", true, io);
    if o.has('a') || o.has('v') || o.has('o') || o.has('e') {
        io.error("join: -a, -v, -o and -e are not supported here");
        return Ok(1);
    }
    if o.rest.len() != 2 {
        io.error("join: missing operand");
        return Ok(1);
    }
    let field = |c: char| o.value(c).or_else(|| o.value('j')).and_then(|v| v.parse::<usize>().ok()).unwrap_or(1).max(1) - 1;
    let (f1, f2) = (field('1'), field('2'));
    let sep = o.value('t').and_then(|t| t.chars().next());
    let split = |l: &str| -> Vec<String> {
        match sep {
            Some(c) => l.split(c).map(|s| s.to_string()).collect(),
            None => l.split_whitespace().map(|s| s.to_string()).collect(),
        }
    };
    let mut status = 0;
    let ins = inputs(sh, "join", &o.rest, io, &mut status);
    if ins.len() != 2 {
        return Ok(1);
    }
    let a: Vec<Vec<String>> = text_lines(&ins[0].1).iter().map(|l| split(l)).collect();
    let b: Vec<Vec<String>> = text_lines(&ins[1].1).iter().map(|l| split(l)).collect();
    let key = |r: &Vec<String>, f: usize| {
        let k = r.get(f).cloned().unwrap_or_default();
        if o.has('i') {
            k.to_lowercase()
        } else {
            k
        }
    };
    let osep = sep.map(|c| c.to_string()).unwrap_or_else(|| " ".into());
    let mut out = String::new();
    let (mut i, mut j) = (0, 0);
    while i < a.len() && j < b.len() {
        let (ka, kb) = (key(&a[i], f1), key(&b[j], f2));
        if ka < kb {
            i += 1;
        } else if kb < ka {
            j += 1;
        } else {
            // Every pair of the runs with this key.
            let j0 = j;
            while i < a.len() && key(&a[i], f1) == ka {
                j = j0;
                while j < b.len() && key(&b[j], f2) == ka {
                    let mut fields = vec![a[i].get(f1).cloned().unwrap_or_default()];
                    fields.extend(a[i].iter().enumerate().filter(|(k, _)| *k != f1).map(|(_, v)| v.clone()));
                    fields.extend(b[j].iter().enumerate().filter(|(k, _)| *k != f2).map(|(_, v)| v.clone()));
                    out.push_str(&fields.join(&osep));
                    out.push('\n');
                    j += 1;
                }
                i += 1;
            }
        }
    }
    io.print(&out);
    Ok(status)
}

/// split [-l N] [-b N[KMG]] [-d] [-a N] [--additional-suffix=S] [FILE [PREFIX]]
pub(crate) fn split(sh: &mut Shell, args: &[String], io: &Io) -> Status {
    let mut suffix = String::new();
    let mut norm = Vec::new();
    for a in args {
        match a.strip_prefix("--additional-suffix=") {
            Some(s) => suffix = s.to_string(),
            None => norm.push(a.clone()),
        }
    }
    let o = opts_or_return!("split", &norm, "l:b:da:n:x", true, io);
    if o.has('n') {
        io.error("split: -n is not supported here (use -l or -b)");
        return Ok(1);
    }
    if let Some(l) = o.long.first() {
        io.error(&format!("split: unrecognized option '--{}'", l));
        return Ok(1);
    }
    let bytes = match o.value('b') {
        Some(b) => {
            let (num, mul) = match b.chars().last() {
                Some('K') | Some('k') => (&b[..b.len() - 1], 1024),
                Some('M') => (&b[..b.len() - 1], 1 << 20),
                Some('G') => (&b[..b.len() - 1], 1 << 30),
                _ => (b, 1),
            };
            match num.parse::<usize>() {
                Ok(n) if n > 0 => Some(n * mul),
                _ => {
                    io.error(&format!("split: invalid number of bytes: '{}'", b));
                    return Ok(1);
                }
            }
        }
        None => None,
    };
    let lines = match o.value('l').unwrap_or("1000").parse::<usize>() {
        Ok(n) if n > 0 => n,
        _ => {
            io.error(&format!("split: invalid number of lines: '{}'", o.value('l').unwrap_or("")));
            return Ok(1);
        }
    };
    let width = o.value('a').and_then(|v| v.parse::<u32>().ok()).unwrap_or(2).clamp(1, 8);
    let input = o.rest.first().cloned().unwrap_or_else(|| "-".into());
    let prefix = o.rest.get(1).cloned().unwrap_or_else(|| "x".into());
    let mut status = 0;
    let data = match inputs(sh, "split", &[input], io, &mut status).into_iter().next() {
        Some((_, d)) => d,
        None => return Ok(1),
    };
    let chunks: Vec<&[u8]> = match bytes {
        Some(n) => data.chunks(n).collect(),
        None => {
            let mut v = Vec::new();
            let mut start = 0;
            let mut count = 0;
            for (k, b) in data.iter().enumerate() {
                if *b == b'\n' {
                    count += 1;
                    if count == lines {
                        v.push(&data[start..=k]);
                        start = k + 1;
                        count = 0;
                    }
                }
            }
            if start < data.len() {
                v.push(&data[start..]);
            }
            v
        }
    };
    let radix: u64 = if o.has('d') || o.has('x') { if o.has('x') { 16 } else { 10 } } else { 26 };
    if chunks.len() as u64 > radix.pow(width) {
        io.error("split: output file suffixes exhausted");
        return Ok(1);
    }
    for (k, c) in chunks.iter().enumerate() {
        let mut n = k as u64;
        let mut suf = vec!['a'; width as usize];
        for slot in suf.iter_mut().rev() {
            let d = (n % radix) as u32;
            *slot = if radix == 26 { (b'a' + d as u8) as char } else { std::char::from_digit(d, radix as u32).unwrap_or('0') };
            n /= radix;
        }
        let name = format!("{}{}{}", prefix, suf.iter().collect::<String>(), suffix);
        if let Err(e) = fs::write(sh.resolve(&name), c) {
            io.error(&format!("split: {}: {}", name, message(&e)));
            return Ok(1);
        }
    }
    Ok(status)
}

/// install [-d] [-D] [-m MODE] [-v] SRC... DEST: copies with a mode.
pub(crate) fn install(sh: &mut Shell, args: &[String], io: &Io) -> Status {
    let o = opts_or_return!("install", args, "dDm:vo:g:cCpsT", true, io);
    let mode = match o.value('m') {
        Some(m) => match u32::from_str_radix(m, 8) {
            Ok(v) => Some(v),
            Err(_) => {
                io.error(&format!("install: invalid mode '{}' (octal modes only here)", m));
                return Ok(1);
            }
        },
        None => None,
    };
    let record = |sh: &mut Shell, p: &str, dflt: u32| {
        let g = sh.guest_path(p);
        sh.modes.insert(g, mode.unwrap_or(dflt));
    };
    if o.has('d') {
        for d in &o.rest {
            if let Err(e) = fs::create_dir_all(sh.resolve(d)) {
                io.error(&format!("install: cannot create directory '{}': {}", d, message(&e)));
                return Ok(1);
            }
            record(sh, d, 0o755);
        }
        return Ok(0);
    }
    if o.rest.len() < 2 {
        io.error("install: missing destination file operand");
        return Ok(1);
    }
    let (srcs, dst) = o.rest.split_at(o.rest.len() - 1);
    let dst = &dst[0];
    if o.has('D') {
        let parent = if srcs.len() > 1 { dst.as_str() } else { dst.rsplit_once('/').map(|(p, _)| p).unwrap_or(".") };
        let _ = fs::create_dir_all(sh.resolve(parent));
    }
    let dst_dir = fs::metadata(sh.resolve(dst)).map(|m| m.is_dir()).unwrap_or(false);
    if srcs.len() > 1 && !dst_dir {
        io.error(&format!("install: target '{}' is not a directory", dst));
        return Ok(1);
    }
    let mut status = 0;
    for s in srcs {
        let target = if dst_dir { format!("{}/{}", dst.trim_end_matches('/'), crate::builtins::base_name(s)) } else { dst.clone() };
        let r = sh.read_path(s).and_then(|d| fs::write(sh.resolve(&target), d));
        match r {
            Ok(()) => {
                record(sh, &target, 0o755);
                if o.has('v') {
                    io.print(&format!("'{}' -> '{}'\n", s, target));
                }
            }
            Err(e) => {
                io.error(&format!("install: cannot install '{}': {}", s, message(&e)));
                status = 1;
            }
        }
    }
    Ok(status)
}

/// uname [-asnrmo]: the sandbox's: Linux-like names, as CI scripts test
/// them, with "wasm32" as the machine.
pub(crate) fn uname(_: &mut Shell, args: &[String], io: &Io) -> Status {
    let o = opts_or_return!("uname", args, "asnrvmpio", true, io);
    let all = o.has('a');
    let fields = [
        ('s', "Linux"),
        ('n', "wasmrunner"),
        ('r', "wasi"),
        ('v', "wasmrunner"),
        ('m', "wasm32"),
        ('o', "GNU/Linux"),
    ];
    let mut out: Vec<&str> = fields.iter().filter(|(c, _)| all || o.has(*c)).map(|(_, v)| *v).collect();
    if out.is_empty() {
        out.push("Linux");
    }
    io.print(&(out.join(" ") + "\n"));
    Ok(0)
}

/// column -t [-s SEPS] [-o SEP] [FILE...]: a table, each column as wide
/// as its widest cell (empty lines dropped), as util-linux's.
pub(crate) fn column(sh: &mut Shell, args: &[String], io: &Io) -> Status {
    let o = opts_or_return!("column", args, "ts:o:nN:R:", true, io);
    if !o.has('t') {
        io.error("column: only column -t is supported here (filling a terminal's width is not)");
        return Ok(1);
    }
    let seps: Option<Vec<char>> = o.value('s').map(|s| s.chars().collect());
    let osep = o.value('o').unwrap_or("  ");
    let mut status = 0;
    let mut rows: Vec<Vec<String>> = Vec::new();
    for (_, data) in inputs(sh, "column", &o.rest, io, &mut status) {
        for l in text_lines(&data) {
            let cells: Vec<String> = match &seps {
                Some(s) => l.split(|c| s.contains(&c)).map(|x| x.to_string()).collect(),
                None => l.split_whitespace().map(|x| x.to_string()).collect(),
            };
            if l.trim().is_empty() {
                continue;
            }
            rows.push(cells);
        }
    }
    let ncols = rows.iter().map(|r| r.len()).max().unwrap_or(0);
    let mut widths = vec![0usize; ncols];
    for r in &rows {
        for (k, c) in r.iter().enumerate() {
            widths[k] = widths[k].max(c.chars().count());
        }
    }
    let mut out = String::new();
    for r in &rows {
        for k in 0..ncols {
            let cell = r.get(k).map(|s| s.as_str()).unwrap_or("");
            if k + 1 == ncols {
                out.push_str(cell);
            } else {
                out.push_str(cell);
                out.push_str(&" ".repeat(widths[k] - cell.chars().count()));
                out.push_str(osep);
            }
        }
        out.push('\n');
    }
    io.print(&out);
    Ok(status)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn human_sizes() {
        for (n, want) in [(0, "0"), (1023, "1023"), (1024, "1.0K"), (4096, "4.0K"), (10 * 1024 - 1, "10K"), (12288, "12K"), (1536 * 1024, "1.5M"), (1 << 30, "1.0G")] {
            assert_eq!(human(n), want, "{}", n);
        }
    }
}
