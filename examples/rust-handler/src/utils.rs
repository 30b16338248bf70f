//! Text utilities with the options CI scripts pass (GNU coreutils'
//! behaviour and messages): echo, printf, wc, head, tail, grep, sed, sort,
//! uniq, cut, tr, diff, seq, date, xargs, tee.

use std::fs;

use crate::builtins::{inputs, message, opts_or_return};
use crate::regex::{Regex, Syntax};
use crate::{Flow, Io, Shell, Status};

/// Output is flushed to the sink in chunks of this size.
const CHUNK: usize = 64 << 10;

fn lines(data: &[u8]) -> Vec<String> {
    let text = String::from_utf8_lossy(data);
    let mut v: Vec<String> = text.split('\n').map(|s| s.to_string()).collect();
    if text.ends_with('\n') || text.is_empty() {
        v.pop();
    }
    v
}

/// Interprets backslash escapes (echo -e, printf's format and %b); false
/// once a \c ends the output.
/// A byte from an escape (\xHH, \NNN): bytes past ASCII stand for
/// themselves, not for a character, so they are kept as private-use
/// chars that [`raw`] turns back into the bytes on output.
fn raw_char(v: u32) -> char {
    if v < 0x80 {
        char::from_u32(v).unwrap_or('?')
    } else {
        char::from_u32(0x10FF00 + v).unwrap_or('?')
    }
}

/// The bytes of text that escapes made: see [`raw_char`].
pub(crate) fn raw(s: &str) -> std::borrow::Cow<'_, [u8]> {
    if !s.chars().any(|c| ('\u{10FF80}'..='\u{10FFFF}').contains(&c)) {
        return std::borrow::Cow::Borrowed(s.as_bytes());
    }
    let mut v = Vec::with_capacity(s.len());
    for c in s.chars() {
        if ('\u{10FF80}'..='\u{10FFFF}').contains(&c) {
            v.push((c as u32 - 0x10FF00) as u8);
        } else {
            let mut b = [0u8; 4];
            v.extend_from_slice(c.encode_utf8(&mut b).as_bytes());
        }
    }
    std::borrow::Cow::Owned(v)
}

/// Text with raw bytes from escapes as a string (invalid UTF-8 replaced).
pub(crate) fn raw_string(s: String) -> String {
    match raw(&s) {
        std::borrow::Cow::Borrowed(_) => s,
        std::borrow::Cow::Owned(v) => String::from_utf8_lossy(&v).into_owned(),
    }
}

/// A word quoted for the shell to read back, as bash's printf %q does.
pub(crate) fn shell_quote(s: &str) -> String {
    if s.is_empty() {
        return "''".into();
    }
    if s.chars().any(|c| c.is_control()) {
        let mut out = String::from("$'");
        for c in s.chars() {
            match c {
                '\x07' => out.push_str("\\a"),
                '\x08' => out.push_str("\\b"),
                '\x1b' => out.push_str("\\E"),
                '\x0c' => out.push_str("\\f"),
                '\n' => out.push_str("\\n"),
                '\r' => out.push_str("\\r"),
                '\t' => out.push_str("\\t"),
                '\x0b' => out.push_str("\\v"),
                '\\' => out.push_str("\\\\"),
                '\'' => out.push_str("\\'"),
                c if c.is_control() && (c as u32) < 0x100 => out.push_str(&format!("\\{:03o}", c as u32)),
                c => out.push(c),
            }
        }
        out.push('\'');
        return out;
    }
    let mut out = String::new();
    for (i, c) in s.chars().enumerate() {
        if " \t\n'\"\\|&;()<>!{}*[?]^$`,".contains(c) || (i == 0 && (c == '~' || c == '#')) {
            out.push('\\');
        }
        out.push(c);
    }
    out
}

pub(crate) fn unescape(s: &str, out: &mut String, octal0: bool) -> bool {
    let cs: Vec<char> = s.chars().collect();
    let mut i = 0;
    while i < cs.len() {
        let c = cs[i];
        i += 1;
        if c != '\\' || i >= cs.len() {
            out.push(c);
            continue;
        }
        let n = cs[i];
        i += 1;
        match n {
            'n' => out.push('\n'),
            't' => out.push('\t'),
            'r' => out.push('\r'),
            'a' => out.push('\x07'),
            'b' => out.push('\x08'),
            'f' => out.push('\x0c'),
            'v' => out.push('\x0b'),
            'e' | 'E' => out.push('\x1b'),
            '\\' => out.push('\\'),
            'c' => return false,
            'x' => {
                let mut v = 0u32;
                let mut k = 0;
                while k < 2 && i < cs.len() && cs[i].is_ascii_hexdigit() {
                    v = v * 16 + cs[i].to_digit(16).unwrap();
                    i += 1;
                    k += 1;
                }
                if k == 0 {
                    out.push_str("\\x");
                } else {
                    out.push(raw_char(v));
                }
            }
            '0'..='7' => {
                let mut v = 0u32;
                let mut k = 0;
                let max = if octal0 && n == '0' { 3 } else { 2 };
                let mut digits = if octal0 && n == '0' { 0 } else { 1 };
                if !(octal0 && n == '0') {
                    v = n.to_digit(8).unwrap();
                }
                while k < max && i < cs.len() && ('0'..='7').contains(&cs[i]) {
                    v = v * 8 + cs[i].to_digit(8).unwrap();
                    i += 1;
                    k += 1;
                    digits += 1;
                }
                let _ = digits;
                out.push(raw_char(v & 0xff));
            }
            _ => {
                out.push('\\');
                out.push(n);
            }
        }
    }
    true
}

pub(crate) fn echo(_: &mut Shell, args: &[String], io: &Io) -> Status {
    let mut rest = &args[1..];
    let mut newline = true;
    let mut escapes = false;
    while let Some(a) = rest.first() {
        if a.len() > 1 && a.starts_with('-') && a[1..].chars().all(|c| "neE".contains(c)) {
            for c in a[1..].chars() {
                match c {
                    'n' => newline = false,
                    'e' => escapes = true,
                    _ => escapes = false,
                }
            }
            rest = &rest[1..];
        } else {
            break;
        }
    }
    let joined = rest.join(" ");
    let mut s = String::new();
    if escapes {
        if !unescape(&joined, &mut s, true) {
            io.write(&raw(&s));
            return Ok(0);
        }
    } else {
        s = joined;
    }
    if newline {
        s.push('\n');
    }
    Ok(if io.write(&raw(&s)) { 0 } else { 1 })
}

/// Formats one printf conversion.
pub(crate) fn conv(spec: &str, conv: char, arg: Option<&str>, io: &Io, status: &mut i32) -> String {
    // spec: flags, width, precision (without '%' and the conversion).
    let mut flags = String::new();
    let mut rest = spec;
    while let Some(c) = rest.chars().next() {
        if "-+ #0".contains(c) {
            flags.push(c);
            rest = &rest[1..];
        } else {
            break;
        }
    }
    let (w, p) = match rest.split_once('.') {
        Some((w, p)) => (w, Some(p.parse::<usize>().unwrap_or(0))),
        None => (rest, None),
    };
    let width = w.parse::<usize>().unwrap_or(0).min(4096);
    let left = flags.contains('-');
    let zero = flags.contains('0') && !left;
    let a = arg.unwrap_or("");
    let pad = |s: String, numeric: bool| -> String {
        let n = s.chars().count();
        if n >= width {
            return s;
        }
        let fill = width - n;
        if left {
            s + &" ".repeat(fill)
        } else if zero && numeric {
            let (sign, digits) = if s.starts_with('-') || s.starts_with('+') { s.split_at(1) } else { ("", s.as_str()) };
            format!("{}{}{}", sign, "0".repeat(fill), digits)
        } else {
            " ".repeat(fill) + &s
        }
    };
    match conv {
        's' => {
            let mut s = a.to_string();
            if let Some(p) = p {
                s = s.chars().take(p).collect();
            }
            pad(s, false)
        }
        'b' => {
            let mut s = String::new();
            unescape(a, &mut s, true);
            pad(s, false)
        }
        'c' => pad(a.chars().next().map(|c| c.to_string()).unwrap_or_default(), false),
        'd' | 'i' | 'u' | 'x' | 'X' | 'o' => {
            let t = a.trim();
            let v: i64 = if t.is_empty() {
                0
            } else if let Some(c) = t.strip_prefix('\'').or_else(|| t.strip_prefix('"')) {
                c.chars().next().map(|c| c as i64).unwrap_or(0)
            } else {
                let parsed = if let Some(h) = t.strip_prefix("0x").or_else(|| t.strip_prefix("0X")) {
                    i64::from_str_radix(h, 16).ok()
                } else if t.len() > 1 && t.starts_with('0') {
                    i64::from_str_radix(&t[1..], 8).ok()
                } else {
                    t.parse::<i64>().ok()
                };
                match parsed {
                    Some(v) => v,
                    None => {
                        io.error(&format!("printf: '{}': invalid number", a));
                        *status = 1;
                        let digits: String = t.chars().take_while(|c| c.is_ascii_digit() || *c == '-').collect();
                        digits.parse().unwrap_or(0)
                    }
                }
            };
            let mut s = match conv {
                'x' => format!("{:x}", v),
                'X' => format!("{:X}", v),
                'o' => format!("{:o}", v),
                _ => v.to_string(),
            };
            if let Some(p) = p {
                let neg = s.starts_with('-');
                let digits = if neg { &s[1..] } else { &s[..] };
                if digits.len() < p {
                    s = format!("{}{}{}", if neg { "-" } else { "" }, "0".repeat(p - digits.len()), digits);
                }
            }
            if flags.contains('+') && v >= 0 && matches!(conv, 'd' | 'i') {
                s.insert(0, '+');
            }
            pad(s, p.is_none())
        }
        'f' | 'e' | 'g' | 'F' | 'E' | 'G' => {
            let v: f64 = a.trim().parse().unwrap_or_else(|_| {
                if !a.trim().is_empty() {
                    io.error(&format!("printf: '{}': invalid number", a));
                    *status = 1;
                }
                0.0
            });
            let s = match conv {
                'e' | 'E' => {
                    // Rust writes 1.5e3; C writes 1.5e+03.
                    let r = format!("{:.*e}", p.unwrap_or(6), v);
                    match r.split_once('e') {
                        Some((m, e)) => {
                            let (sign, digits) = match e.strip_prefix('-') {
                                Some(d) => ('-', d),
                                None => ('+', e),
                            };
                            let e = if conv == 'E' { 'E' } else { 'e' };
                            format!("{}{}{}{:0>2}", m, e, sign, digits)
                        }
                        None => r,
                    }
                }
                'g' | 'G' => {
                    let s = format!("{}", v);
                    s
                }
                _ => format!("{:.*}", p.unwrap_or(6), v),
            };
            let s = if flags.contains('+') && v >= 0.0 { format!("+{}", s) } else { s };
            pad(s, true)
        }
        _ => String::new(),
    }
}

pub(crate) fn printf(sh: &mut Shell, args: &[String], io: &Io) -> Status {
    let mut rest = &args[1..];
    let mut var = None;
    if rest.len() >= 2 && rest[0] == "-v" {
        var = Some(rest[1].clone());
        rest = &rest[2..];
    }
    if rest.first().map(|a| a == "--").unwrap_or(false) {
        rest = &rest[1..];
    }
    let fmt = match rest.first() {
        Some(f) => f.clone(),
        None => {
            io.error("printf: usage: printf [-v var] format [arguments]");
            return Ok(2);
        }
    };
    let fargs = &rest[1..];
    let fcs: Vec<char> = fmt.chars().collect();
    let mut out = String::new();
    let mut status = 0;
    let mut ai = 0;
    loop {
        let mut used = false;
        let mut i = 0;
        while i < fcs.len() {
            let c = fcs[i];
            if c == '\\' {
                let mut k = i + 1;
                // One escape at a time.
                if k < fcs.len() {
                    if ('0'..='7').contains(&fcs[k]) {
                        let mut n = 0;
                        while k < fcs.len() && n < 3 && ('0'..='7').contains(&fcs[k]) {
                            k += 1;
                            n += 1;
                        }
                    } else if fcs[k] == 'x' {
                        k += 1;
                        let mut n = 0;
                        while k < fcs.len() && n < 2 && fcs[k].is_ascii_hexdigit() {
                            k += 1;
                            n += 1;
                        }
                    } else {
                        k += 1;
                    }
                }
                let esc: String = fcs[i..k].iter().collect();
                let esc = if esc.len() > 1 && esc.as_bytes()[1].is_ascii_digit() && esc.as_bytes()[1] != b'0' {
                    format!("\\0{}", &esc[1..])
                } else {
                    esc
                };
                if !unescape(&esc, &mut out, true) {
                    match var {
                        Some(v) => sh.set_var(&v, raw_string(out), io)?,
                        None => {
                            io.write(&raw(&out));
                        }
                    }
                    return Ok(status);
                }
                i = k;
                continue;
            }
            if c != '%' {
                out.push(c);
                i += 1;
                continue;
            }
            if i + 1 < fcs.len() && fcs[i + 1] == '%' {
                out.push('%');
                i += 2;
                continue;
            }
            let mut k = i + 1;
            let mut spec = String::new();
            while k < fcs.len() && "-+ #0123456789.*".contains(fcs[k]) {
                if fcs[k] == '*' {
                    let a = fargs.get(ai).map(|s| s.as_str()).unwrap_or("0");
                    ai += 1;
                    used = true;
                    spec.push_str(a);
                } else {
                    spec.push(fcs[k]);
                }
                k += 1;
            }
            // Length modifiers are ignored.
            while k < fcs.len() && "hlLjzt".contains(fcs[k]) {
                k += 1;
            }
            if k >= fcs.len() {
                io.error(&format!("printf: %{}: invalid conversion specification", spec));
                return Ok(1);
            }
            let cv = fcs[k];
            if cv == 'q' {
                let a = fargs.get(ai).map(|s| s.as_str());
                if a.is_some() {
                    used = true;
                }
                ai += 1;
                out.push_str(&conv(&spec, 's', Some(&shell_quote(a.unwrap_or(""))), io, &mut status));
                i = k + 1;
                continue;
            }
            if !"sbcdiuxXofeEgGF".contains(cv) {
                io.error(&format!("printf: %{}{}: invalid conversion specification", spec, cv));
                return Ok(1);
            }
            let arg = fargs.get(ai).map(|s| s.as_str());
            if arg.is_some() {
                used = true;
            }
            ai += 1;
            out.push_str(&conv(&spec, cv, arg, io, &mut status));
            i = k + 1;
        }
        if !used || ai >= fargs.len() {
            break;
        }
        if out.len() > crate::MAX_VAR {
            break;
        }
    }
    match var {
        Some(v) => {
            sh.set_var(&v, raw_string(out), io)?;
            return Ok(status);
        }
        None => {
            if !io.write(&raw(&out)) {
                return Ok(1);
            }
        }
    }
    Ok(status)
}

/// Parses a line count like head/tail take: N, -N, +N.
fn count_arg(s: &str) -> Option<(bool, bool, u64)> {
    let (neg, plus, digits) = if let Some(d) = s.strip_prefix('-') {
        (true, false, d)
    } else if let Some(d) = s.strip_prefix('+') {
        (false, true, d)
    } else {
        (false, false, s)
    };
    let n = digits.parse::<u64>().ok()?;
    Some((neg, plus, n))
}

/// Rewrites "-5" to "-n 5" for head and tail.
fn numeric_short(args: &[String]) -> Vec<String> {
    let mut out = vec![args[0].clone()];
    for (k, a) in args.iter().enumerate().skip(1) {
        // Not the value of -n or -c (head -n -2).
        let value = matches!(args[k - 1].as_str(), "-n" | "-c") && k > 1;
        if !value && a.len() > 1 && a.starts_with('-') && a[1..].chars().all(|c| c.is_ascii_digit()) {
            out.push("-n".into());
            out.push(a[1..].to_string());
        } else {
            out.push(a.clone());
        }
    }
    out
}

pub(crate) fn head(sh: &mut Shell, args: &[String], io: &Io) -> Status {
    let args = numeric_short(args);
    let o = opts_or_return!("head", &args, "n:c:qv", true, io);
    let mut status = 0;
    // From a pipe, head reads only what it prints: a long writer before
    // it then fails as with SIGPIPE (see Shell::run_pipeline).
    let from_stdin = o.rest.is_empty();
    let ins = if from_stdin { vec![("-".to_string(), io.peek_all())] } else { inputs(sh, "head", &o.rest, io, &mut status) };
    let many = ins.len() > 1;
    for (k, (name, data)) in ins.iter().enumerate() {
        if many {
            io.print(&format!("{}==> {} <==\n", if k > 0 { "\n" } else { "" }, if name == "-" { "standard input" } else { name }));
        }
        if let Some(c) = o.value('c') {
            let (neg, _, n) = match count_arg(c) {
                Some(v) => v,
                None => {
                    io.error(&format!("head: invalid number of bytes: '{}'", c));
                    return Ok(1);
                }
            };
            let n = n as usize;
            let end = if neg { data.len().saturating_sub(n) } else { n.min(data.len()) };
            if from_stdin {
                io.consume(if neg { data.len() } else { end });
            }
            io.write(&data[..end]);
            continue;
        }
        let spec = o.value('n').unwrap_or("10");
        let (neg, _, n) = match count_arg(spec) {
            Some(v) => v,
            None => {
                io.error(&format!("head: invalid number of lines: '{}'", spec));
                return Ok(1);
            }
        };
        // The end of the first `keep` lines.
        let first = |keep: usize| {
            let mut end = 0;
            for _ in 0..keep {
                match data[end..].iter().position(|&b| b == b'\n') {
                    Some(p) => end += p + 1,
                    None => return data.len(),
                }
            }
            end
        };
        let end = if neg {
            let total = data.iter().filter(|&&b| b == b'\n').count()
                + if data.last().map(|&b| b != b'\n').unwrap_or(false) { 1 } else { 0 };
            first(total.saturating_sub(n as usize))
        } else {
            first(n.min(data.len() as u64) as usize)
        };
        if from_stdin {
            io.consume(if neg { data.len() } else { end });
        }
        if !io.write(&data[..end]) {
            return Ok(1);
        }
    }
    Ok(status)
}

pub(crate) fn tail(sh: &mut Shell, args: &[String], io: &Io) -> Status {
    let args = numeric_short(args);
    let o = opts_or_return!("tail", &args, "n:c:qvfF", true, io);
    let mut status = 0;
    let ins = inputs(sh, "tail", &o.rest, io, &mut status);
    let many = ins.len() > 1;
    for (k, (name, data)) in ins.iter().enumerate() {
        if many {
            io.print(&format!("{}==> {} <==\n", if k > 0 { "\n" } else { "" }, if name == "-" { "standard input" } else { name }));
        }
        if let Some(c) = o.value('c') {
            let (_, plus, n) = match count_arg(c) {
                Some(v) => v,
                None => {
                    io.error(&format!("tail: invalid number of bytes: '{}'", c));
                    return Ok(1);
                }
            };
            let n = n as usize;
            let start = if plus { n.saturating_sub(1).min(data.len()) } else { data.len().saturating_sub(n) };
            io.write(&data[start..]);
            continue;
        }
        let spec = o.value('n').unwrap_or("10");
        let (_, plus, n) = match count_arg(spec) {
            Some(v) => v,
            None => {
                io.error(&format!("tail: invalid number of lines: '{}'", spec));
                return Ok(1);
            }
        };
        // Line starts.
        let mut starts = vec![0usize];
        for (i, &b) in data.iter().enumerate() {
            if b == b'\n' && i + 1 < data.len() {
                starts.push(i + 1);
            }
        }
        if data.is_empty() {
            starts.clear();
        }
        let start = if plus {
            let skip = (n as usize).saturating_sub(1);
            starts.get(skip).copied().unwrap_or(data.len())
        } else {
            let total = starts.len();
            if (n as usize) >= total {
                0
            } else {
                starts[total - n as usize]
            }
        };
        if !io.write(&data[start..]) {
            return Ok(1);
        }
    }
    Ok(status)
}

pub(crate) fn wc(sh: &mut Shell, args: &[String], io: &Io) -> Status {
    let o = opts_or_return!("wc", args, "lwcmL", true, io);
    let mut set: Vec<char> = ['l', 'w', 'c', 'L'].iter().copied().filter(|c| o.has(*c) || (*c == 'c' && o.has('m'))).collect();
    if set.is_empty() {
        set = vec!['l', 'w', 'c'];
    }
    let mut status = 0;
    let ins = inputs(sh, "wc", &o.rest, io, &mut status);
    let mut counts_all = Vec::new();
    let mut totals = [0usize; 4];
    for (name, data) in &ins {
        let counts = [
            data.iter().filter(|&&b| b == b'\n').count(),
            String::from_utf8_lossy(data).split_whitespace().count(),
            if o.has('m') { String::from_utf8_lossy(data).chars().count() } else { data.len() },
            // The longest line, tabs to the next multiple of 8.
            String::from_utf8_lossy(data)
                .lines()
                .map(|l| l.chars().fold(0, |w, c| if c == '\t' { w / 8 * 8 + 8 } else { w + 1 }))
                .max()
                .unwrap_or(0),
        ];
        for (k, (t, c)) in totals.iter_mut().zip(counts.iter()).enumerate() {
            if k == 3 {
                *t = (*t).max(*c);
            } else {
                *t += c;
            }
        }
        counts_all.push((name.clone(), counts));
    }
    if ins.len() > 1 {
        counts_all.push(("total".into(), totals));
    }
    // GNU wc: one number alone is not padded; else all share a width.
    let single = set.len() == 1 && o.rest.len() <= 1;
    let width = if single {
        0
    } else if o.rest.is_empty() {
        7
    } else {
        counts_all.iter().flat_map(|(_, c)| c.iter()).map(|n| n.to_string().len()).max().unwrap_or(1).max(1)
    };
    let mut out = String::new();
    for (name, counts) in counts_all {
        let mut cols: Vec<String> = Vec::new();
        for (flag, n) in ['l', 'w', 'c', 'L'].iter().zip(counts.iter()) {
            if set.contains(flag) {
                cols.push(format!("{:>w$}", n, w = width));
            }
        }
        if !o.rest.is_empty() {
            cols.push(name);
        }
        out.push_str(&cols.join(" "));
        out.push('\n');
    }
    io.print(&out);
    Ok(status)
}

/// What grep looks for: the regexes (one per pattern line).
struct Matcher {
    res: Vec<Regex>,
    word: bool,
    line: bool,
}

impl Matcher {
    /// The first match in s at or after from: (start, end).
    fn find(&self, s: &[char], from: usize) -> Option<(usize, usize)> {
        let mut best: Option<(usize, usize)> = None;
        for re in &self.res {
            let mut at = from;
            while at <= s.len() {
                let m = match re.find_at(s, at) {
                    Some(c) => c[0].unwrap(),
                    None => break,
                };
                let ok = if self.line {
                    m.0 == 0 && m.1 == s.len()
                } else if self.word {
                    let wc = |c: char| c.is_alphanumeric() || c == '_';
                    (m.0 == 0 || !wc(s[m.0 - 1])) && (m.1 == s.len() || !wc(s[m.1]))
                } else {
                    true
                };
                if ok {
                    if best.map(|b| m.0 < b.0 || (m.0 == b.0 && m.1 > b.1)).unwrap_or(true) {
                        best = Some(m);
                    }
                    break;
                }
                at = m.0 + 1;
            }
        }
        best
    }
}

pub(crate) fn grep(sh: &mut Shell, args: &[String], io: &Io) -> Status {
    let o = opts_or_return!("grep", args, "vicnqEFGolLrRwxhHse:f:sA:B:C:m:", true, io);
    let mut rest = o.rest.clone();
    let mut pats: Vec<String> = o.values('e').iter().map(|s| s.to_string()).collect();
    for f in o.values('f') {
        match sh.read_path(f) {
            Ok(d) => pats.extend(lines(&d)),
            Err(e) => {
                io.error(&format!("grep: {}: {}", f, message(&e)));
                return Ok(2);
            }
        }
    }
    let mut files_only_long = false;
    for l in &o.long {
        if l.starts_with("include=") || l.starts_with("exclude=") || l == "color=never" || l == "color=auto" {
            continue;
        }
        if l == "files-with-matches" {
            files_only_long = true;
            continue;
        }
        if l == "quiet" || l == "silent" {
            continue;
        }
        io.error(&format!("grep: unrecognized option '--{}'", l));
        return Ok(2);
    }
    if pats.is_empty() {
        if rest.is_empty() {
            io.error("Usage: grep [OPTION]... PATTERNS [FILE]...");
            return Ok(2);
        }
        pats.extend(rest.remove(0).split('\n').map(|s| s.to_string()));
    }
    let syntax = if o.has('F') {
        Syntax::Fixed
    } else if o.has('E') {
        Syntax::Extended
    } else {
        Syntax::Basic
    };
    let icase = o.has('i');
    let mut res = Vec::new();
    for p in &pats {
        match Regex::new(p, syntax, icase) {
            Ok(r) => res.push(r),
            Err(e) => {
                io.error(&format!("grep: {}", e));
                return Ok(2);
            }
        }
    }
    let m = Matcher {
        res,
        word: o.has('w'),
        line: o.has('x'),
    };
    let quiet = o.has('q') || o.long.iter().any(|l| l == "quiet" || l == "silent");
    let invert = o.has('v');
    let recursive = o.has('r') || o.has('R');
    let files_only = o.has('l') || files_only_long;
    let mut status = 0;
    let mut files: Vec<String> = Vec::new();
    if recursive {
        let roots = if rest.is_empty() { vec![".".to_string()] } else { rest.clone() };
        for r in roots {
            walk_files(sh, &r, &mut files, 0);
        }
        if o.rest.is_empty() {
            files = files.into_iter().map(|f| f.strip_prefix("./").map(|s| s.to_string()).unwrap_or(f)).collect();
        }
    } else {
        files = rest.clone();
    }
    let show_names = if o.has('h') { false } else { o.has('H') || files.len() > 1 || recursive };
    let ins = if recursive && files.is_empty() {
        Vec::new()
    } else if files.is_empty() {
        // grep -q stops at the first match: from a pipe it reads no more.
        vec![("(standard input)".to_string(), if quiet { io.peek_all() } else { io.read_all() })]
    } else {
        let mut v = Vec::new();
        for f in &files {
            if f == "-" {
                v.push(("(standard input)".to_string(), io.read_all()));
                continue;
            }
            match sh.read_path(f) {
                Ok(d) if crate::builtins::too_many_lines(&d) => {
                    io.error(&format!("grep: {}: too many lines (commands handle at most {})", f, crate::builtins::MAX_LINES));
                    status = 2;
                }
                Ok(d) => v.push((f.clone(), d)),
                Err(e) => {
                    if !o.has('s') {
                        io.error(&format!("grep: {}: {}", f, message(&e)));
                    }
                    status = 2;
                }
            }
        }
        v
    };
    let max = o.value('m').and_then(|v| v.parse::<usize>().ok());
    let ctx = |c: char| o.value(c).or_else(|| o.value('C')).and_then(|v| v.parse::<usize>().ok()).unwrap_or(0);
    let (before, after) = (ctx('B'), ctx('A'));
    let context = (before > 0 || after > 0) && !(o.has('o') || o.has('c') || o.has('l') || o.has('L') || files_only);
    // The last line printed (of any input) and how many lines of
    // context after a match are still to print.
    let mut printed_any = false;
    let mut any = false;
    let mut out = String::new();
    for (name, data) in ins {
        let mut count = 0;
        let mut offset = 0;
        let all = lines(&data);
        let mut last: Option<usize> = None;
        let mut after_left = 0;
        let context_line = |out: &mut String, ln: usize, line: &str| {
            if show_names {
                out.push_str(&name);
                out.push('-');
            }
            if o.has('n') {
                out.push_str(&(ln + 1).to_string());
                out.push('-');
            }
            out.push_str(line);
            out.push('\n');
        };
        for (ln, line) in all.iter().enumerate() {
            offset += line.len() + 1;
            if max.map(|m| count >= m).unwrap_or(false) {
                break;
            }
            let cs: Vec<char> = line.chars().collect();
            let hit = m.find(&cs, 0).is_some();
            if hit == invert {
                if context && after_left > 0 {
                    after_left -= 1;
                    context_line(&mut out, ln, line);
                    last = Some(ln);
                }
                continue;
            }
            if context && !quiet {
                let from = ln.saturating_sub(before).max(last.map(|l| l + 1).unwrap_or(0));
                if printed_any && last.map(|l| from > l + 1).unwrap_or(true) {
                    out.push_str("--\n");
                }
                for (k, l) in all.iter().enumerate().take(ln).skip(from) {
                    context_line(&mut out, k, l);
                }
                last = Some(ln);
                after_left = after;
                printed_any = true;
            }
            count += 1;
            any = true;
            if quiet {
                if files.is_empty() {
                    io.consume(offset);
                }
                return Ok(0);
            }
            if files_only || o.has('c') || o.has('L') {
                continue;
            }
            let prefix = {
                let mut p = String::new();
                if show_names {
                    p.push_str(&name);
                    p.push(':');
                }
                if o.has('n') {
                    p.push_str(&(ln + 1).to_string());
                    p.push(':');
                }
                p
            };
            if o.has('o') && !invert {
                let mut at = 0;
                while let Some((a, b)) = m.find(&cs, at) {
                    if b > a {
                        out.push_str(&prefix);
                        out.extend(cs[a..b].iter());
                        out.push('\n');
                        at = b;
                    } else {
                        at = a + 1;
                    }
                    if at > cs.len() {
                        break;
                    }
                }
            } else {
                out.push_str(&prefix);
                out.push_str(line);
                out.push('\n');
            }
            if out.len() > CHUNK {
                if !io.print(&out) {
                    return Ok(2);
                }
                out.clear();
            }
        }
        if o.has('c') {
            if show_names {
                out.push_str(&format!("{}:{}\n", name, count));
            } else {
                out.push_str(&format!("{}\n", count));
            }
        }
        if files_only && count > 0 {
            out.push_str(&name);
            out.push('\n');
        }
        if o.has('L') && count == 0 {
            out.push_str(&name);
            out.push('\n');
        }
    }
    io.print(&out);
    if status == 2 && !(any && o.has('s')) {
        return Ok(2);
    }
    Ok(if any { 0 } else { 1 })
}

/// The files under path (sorted, depth-first), for grep -r.
pub(crate) fn walk_files(sh: &Shell, path: &str, out: &mut Vec<String>, depth: usize) {
    if depth > 64 || out.len() > 100_000 || !crate::stack_ok() {
        return;
    }
    match fs::metadata(sh.resolve(path)) {
        Ok(m) if m.is_dir() => {
            let mut names: Vec<String> = match fs::read_dir(sh.resolve(path)) {
                Ok(rd) => rd.flatten().map(|e| e.file_name().to_string_lossy().into_owned()).collect(),
                Err(_) => return,
            };
            names.sort();
            for n in names {
                let p = if path.ends_with('/') { format!("{}{}", path, n) } else { format!("{}/{}", path, n) };
                walk_files(sh, &p, out, depth + 1);
            }
        }
        Ok(_) => out.push(path.to_string()),
        Err(_) => {}
    }
}

// ---- sed ----

#[derive(Clone)]
enum Addr {
    Line(usize),
    Last,
    Re(std::rc::Rc<Regex>),
}

enum SedCmd {
    Subst {
        re: std::rc::Rc<Regex>,
        rep: Vec<RepPart>,
        global: bool,
        nth: usize,
        print: bool,
    },
    Print,
    Delete,
    Quit,
    Append(String),
    Insert(String),
    Change(String),
    Translit(Vec<char>, Vec<char>),
    LineNum,
    Block(Vec<SedItem>),
}

struct SedItem {
    a1: Option<Addr>,
    a2: Option<Addr>,
    negate: bool,
    cmd: SedCmd,
    /// For a range: whether it is active.
    active: std::cell::Cell<bool>,
}

enum RepPart {
    Lit(String),
    Group(usize),
    /// GNU's \U \L \E (from here on) and \u \l (the next char).
    Case(char),
}

struct SedParser<'a> {
    cs: &'a [char],
    i: usize,
    ere: bool,
    depth: usize,
    last_re: Option<std::rc::Rc<Regex>>,
}

impl<'a> SedParser<'a> {
    fn skip_ws(&mut self) {
        while self.i < self.cs.len() && (self.cs[self.i] == ' ' || self.cs[self.i] == '\t') {
            self.i += 1;
        }
    }

    /// Text up to an unescaped delim; escapes other than \delim kept.
    fn delimited(&mut self, delim: char) -> Result<String, String> {
        let mut s = String::new();
        while self.i < self.cs.len() {
            let c = self.cs[self.i];
            self.i += 1;
            if c == '\\' && self.i < self.cs.len() {
                let n = self.cs[self.i];
                self.i += 1;
                if n == delim {
                    s.push(n);
                } else if n == 'n' {
                    s.push_str("\\n");
                } else {
                    s.push('\\');
                    s.push(n);
                }
                continue;
            }
            if c == delim {
                return Ok(s);
            }
            if c == '\n' {
                break;
            }
            s.push(c);
        }
        Err(format!("unterminated `s' command"))
    }

    fn regex(&mut self, src: &str, icase: bool) -> Result<std::rc::Rc<Regex>, String> {
        if src.is_empty() {
            return self.last_re.clone().ok_or_else(|| "no previous regular expression".to_string());
        }
        let re = Regex::new(src, if self.ere { Syntax::Extended } else { Syntax::Basic }, icase)?;
        let re = std::rc::Rc::new(re);
        self.last_re = Some(re.clone());
        Ok(re)
    }

    fn addr(&mut self) -> Result<Option<Addr>, String> {
        self.skip_ws();
        if self.i >= self.cs.len() {
            return Ok(None);
        }
        let c = self.cs[self.i];
        if c.is_ascii_digit() {
            let s = self.i;
            while self.i < self.cs.len() && self.cs[self.i].is_ascii_digit() {
                self.i += 1;
            }
            let n: String = self.cs[s..self.i].iter().collect();
            return Ok(Some(Addr::Line(n.parse().unwrap_or(0))));
        }
        if c == '$' {
            self.i += 1;
            return Ok(Some(Addr::Last));
        }
        if c == '/' || c == '\\' {
            self.i += 1;
            let delim = if c == '\\' {
                let d = self.cs.get(self.i).copied().ok_or("unexpected end")?;
                self.i += 1;
                d
            } else {
                '/'
            };
            let src = self.delimited(delim).map_err(|_| "unterminated address regex".to_string())?;
            let mut icase = false;
            if self.cs.get(self.i) == Some(&'I') {
                icase = true;
                self.i += 1;
            }
            return Ok(Some(Addr::Re(self.regex(&src, icase)?)));
        }
        Ok(None)
    }

    /// The text argument of a, i, c (GNU one-line form too).
    fn text_arg(&mut self) -> String {
        self.skip_ws();
        if self.cs.get(self.i) == Some(&'\\') {
            self.i += 1;
            if self.cs.get(self.i) == Some(&'\n') {
                self.i += 1;
            }
        }
        let mut s = String::new();
        while self.i < self.cs.len() && self.cs[self.i] != '\n' {
            let c = self.cs[self.i];
            if c == '\\' && self.i + 1 < self.cs.len() {
                self.i += 1;
                s.push(self.cs[self.i]);
                self.i += 1;
                continue;
            }
            s.push(c);
            self.i += 1;
        }
        s
    }

    fn script(&mut self, in_block: bool) -> Result<Vec<SedItem>, String> {
        self.depth += 1;
        if self.depth > 16 {
            return Err("blocks nested too deeply".into());
        }
        let mut items = Vec::new();
        loop {
            while self.i < self.cs.len() && matches!(self.cs[self.i], ' ' | '\t' | '\n' | ';') {
                self.i += 1;
            }
            if self.i >= self.cs.len() {
                if in_block {
                    return Err("unmatched `{'".into());
                }
                break;
            }
            if self.cs[self.i] == '}' {
                if !in_block {
                    return Err("unexpected `}'".into());
                }
                self.i += 1;
                break;
            }
            if self.cs[self.i] == '#' {
                while self.i < self.cs.len() && self.cs[self.i] != '\n' {
                    self.i += 1;
                }
                continue;
            }
            let a1 = self.addr()?;
            let mut a2 = None;
            if a1.is_some() && self.cs.get(self.i) == Some(&',') {
                self.i += 1;
                a2 = self.addr()?;
                if a2.is_none() {
                    return Err("unexpected `,'".into());
                }
            }
            self.skip_ws();
            let mut negate = false;
            if self.cs.get(self.i) == Some(&'!') {
                negate = true;
                self.i += 1;
                self.skip_ws();
            }
            let c = match self.cs.get(self.i) {
                Some(c) => *c,
                None => return Err("missing command".into()),
            };
            self.i += 1;
            let cmd = match c {
                'p' => SedCmd::Print,
                'd' => SedCmd::Delete,
                'q' => SedCmd::Quit,
                '=' => SedCmd::LineNum,
                'a' => SedCmd::Append(self.text_arg()),
                'i' => SedCmd::Insert(self.text_arg()),
                'c' => SedCmd::Change(self.text_arg()),
                '{' => SedCmd::Block(self.script(true)?),
                's' => {
                    let delim = self.cs.get(self.i).copied().ok_or("unterminated `s' command")?;
                    self.i += 1;
                    let pat = self.delimited(delim)?;
                    let rep = self.delimited(delim)?;
                    let (mut global, mut nth, mut print, mut icase) = (false, 1, false, false);
                    while let Some(&f) = self.cs.get(self.i) {
                        match f {
                            'g' => global = true,
                            'p' => print = true,
                            'i' | 'I' => icase = true,
                            d if d.is_ascii_digit() => nth = d.to_digit(10).unwrap() as usize,
                            _ => break,
                        }
                        self.i += 1;
                    }
                    let re = self.regex(&pat, icase)?;
                    SedCmd::Subst {
                        re,
                        rep: parse_rep(&rep),
                        global,
                        nth,
                        print,
                    }
                }
                'y' => {
                    let delim = self.cs.get(self.i).copied().ok_or("unterminated `y' command")?;
                    self.i += 1;
                    let a: Vec<char> = self.delimited(delim)?.chars().collect();
                    let b: Vec<char> = self.delimited(delim)?.chars().collect();
                    if a.len() != b.len() {
                        return Err("strings for `y' command are different lengths".into());
                    }
                    SedCmd::Translit(a, b)
                }
                c => return Err(format!("unknown command: `{}'", c)),
            };
            items.push(SedItem {
                a1,
                a2,
                negate,
                cmd,
                active: std::cell::Cell::new(false),
            });
        }
        self.depth -= 1;
        Ok(items)
    }
}

fn parse_rep(s: &str) -> Vec<RepPart> {
    let mut out = Vec::new();
    let mut lit = String::new();
    let cs: Vec<char> = s.chars().collect();
    let mut i = 0;
    while i < cs.len() {
        let c = cs[i];
        i += 1;
        if c == '&' {
            out.push(RepPart::Lit(std::mem::take(&mut lit)));
            out.push(RepPart::Group(0));
        } else if c == '\\' && i < cs.len() {
            let n = cs[i];
            i += 1;
            match n {
                d if d.is_ascii_digit() => {
                    out.push(RepPart::Lit(std::mem::take(&mut lit)));
                    out.push(RepPart::Group(d as usize - '0' as usize));
                }
                'n' => lit.push('\n'),
                't' => lit.push('\t'),
                'U' | 'L' | 'E' | 'u' | 'l' => {
                    out.push(RepPart::Lit(std::mem::take(&mut lit)));
                    out.push(RepPart::Case(n));
                }
                c => lit.push(c),
            }
        } else {
            lit.push(c);
        }
    }
    out.push(RepPart::Lit(lit));
    out
}

struct SedState {
    line_no: usize,
    last: bool,
    quit: bool,
    deleted: bool,
    append: String,
    out: String,
    quiet: bool,
}

fn addr_match(a: &Addr, line: &str, st: &SedState) -> bool {
    match a {
        Addr::Line(n) => st.line_no == *n,
        Addr::Last => st.last,
        Addr::Re(re) => {
            let cs: Vec<char> = line.chars().collect();
            re.is_match(&cs)
        }
    }
}

fn selected(it: &SedItem, line: &str, st: &SedState) -> bool {
    let r = match (&it.a1, &it.a2) {
        (None, _) => true,
        (Some(a), None) => addr_match(a, line, st),
        (Some(a), Some(b)) => {
            if it.active.get() {
                let end = match b {
                    Addr::Line(n) => st.line_no >= *n,
                    _ => addr_match(b, line, st),
                };
                if end {
                    it.active.set(false);
                }
                true
            } else if addr_match(a, line, st) {
                let end_now = match b {
                    Addr::Line(n) => st.line_no >= *n,
                    _ => false,
                };
                if !end_now {
                    it.active.set(true);
                }
                true
            } else {
                false
            }
        }
    };
    r != it.negate
}

/// Runs items on the pattern space; false when the cycle ends (d).
fn sed_exec(items: &[SedItem], line: &mut String, st: &mut SedState) -> bool {
    for it in items {
        if !selected(it, line, st) {
            continue;
        }
        match &it.cmd {
            SedCmd::Print => {
                st.out.push_str(line);
                st.out.push('\n');
            }
            SedCmd::Delete => {
                st.deleted = true;
                return false;
            }
            SedCmd::Quit => {
                st.quit = true;
                return false;
            }
            SedCmd::LineNum => st.out.push_str(&format!("{}\n", st.line_no)),
            SedCmd::Append(t) => {
                st.append.push_str(t);
                st.append.push('\n');
            }
            SedCmd::Insert(t) => {
                st.out.push_str(t);
                st.out.push('\n');
            }
            SedCmd::Change(t) => {
                st.out.push_str(t);
                st.out.push('\n');
                st.deleted = true;
                return false;
            }
            SedCmd::Translit(a, b) => {
                *line = line
                    .chars()
                    .map(|c| match a.iter().position(|&x| x == c) {
                        Some(k) => b[k],
                        None => c,
                    })
                    .collect();
            }
            SedCmd::Block(inner) => {
                if !sed_exec(inner, line, st) {
                    return false;
                }
            }
            SedCmd::Subst {
                re,
                rep,
                global,
                nth,
                print,
            } => {
                let cs: Vec<char> = line.chars().collect();
                let mut out = String::new();
                let mut at = 0;
                let mut last = 0;
                let mut k = 0;
                let mut did = false;
                while at <= cs.len() {
                    let caps = match re.find_at(&cs, at) {
                        Some(c) => c,
                        None => break,
                    };
                    let (a, b) = caps[0].unwrap();
                    k += 1;
                    if k >= *nth {
                        out.extend(cs[last..a].iter());
                        let (mut mode, mut once) = ('E', None);
                        for p in rep {
                            let text: String = match p {
                                RepPart::Lit(s) => s.clone(),
                                RepPart::Group(g) => match caps.get(*g) {
                                    Some(Some((x, y))) => cs[*x..*y].iter().collect(),
                                    _ => String::new(),
                                },
                                RepPart::Case(c @ ('u' | 'l')) => {
                                    once = Some(*c);
                                    continue;
                                }
                                RepPart::Case(c) => {
                                    mode = *c;
                                    once = None;
                                    continue;
                                }
                            };
                            for ch in text.chars() {
                                match once.take().unwrap_or(mode) {
                                    'u' | 'U' => out.extend(ch.to_uppercase()),
                                    'l' | 'L' => out.extend(ch.to_lowercase()),
                                    _ => out.push(ch),
                                }
                            }
                        }
                        last = b;
                        did = true;
                        if !*global {
                            break;
                        }
                    }
                    if b == a {
                        if a < cs.len() && k >= *nth {
                            out.push(cs[a]);
                            last = a + 1;
                        }
                        at = a + 1;
                    } else {
                        at = b;
                    }
                    if out.len() > crate::MAX_VAR {
                        break;
                    }
                }
                if did {
                    if last <= cs.len() {
                        out.extend(cs[last..].iter());
                    }
                    *line = out;
                    if *print {
                        st.out.push_str(line);
                        st.out.push('\n');
                    }
                }
            }
        }
    }
    true
}

pub(crate) fn sed(sh: &mut Shell, args: &[String], io: &Io) -> Status {
    // -i takes an optional suffix glued to it.
    let mut norm = vec![args[0].clone()];
    let mut in_place = false;
    let mut suffix = String::new();
    for a in &args[1..] {
        if a.starts_with("-i") && !a.starts_with("--") {
            in_place = true;
            suffix = a[2..].to_string();
            continue;
        }
        if a == "--in-place" || a.starts_with("--in-place=") {
            in_place = true;
            suffix = a.strip_prefix("--in-place=").unwrap_or("").to_string();
            continue;
        }
        if a.starts_with('-') && !a.starts_with("--") && a.len() > 2 && a[1..].contains('i') && a[1..].chars().all(|c| "nEris".contains(c)) {
            // -ni, -Ei: -i last among the letters.
            in_place = true;
            norm.push(a.replace('i', ""));
            continue;
        }
        if a == "--regexp-extended" {
            norm.push("-E".into());
            continue;
        }
        norm.push(a.clone());
    }
    let o = opts_or_return!("sed", &norm, "nEre:f:su", true, io);
    let mut rest = o.rest.clone();
    let mut script = o.values('e').join("\n");
    for f in o.values('f') {
        match sh.read_path(f) {
            Ok(d) => {
                script.push('\n');
                script.push_str(&String::from_utf8_lossy(&d));
            }
            Err(e) => {
                io.error(&format!("sed: couldn't open file {}: {}", f, message(&e)));
                return Ok(1);
            }
        }
    }
    if o.values('e').is_empty() && o.values('f').is_empty() {
        if rest.is_empty() {
            io.error("Usage: sed [OPTION]... {script-only-if-no-other-script} [input-file]...");
            return Ok(1);
        }
        script = rest.remove(0);
    }
    let cs: Vec<char> = script.chars().collect();
    let mut p = SedParser {
        cs: &cs,
        i: 0,
        ere: o.has('E') || o.has('r'),
        depth: 0,
        last_re: None,
    };
    let items = match p.script(false) {
        Ok(i) => i,
        Err(e) => {
            io.error(&format!("sed: -e expression #1, char {}: {}", p.i, e));
            return Ok(1);
        }
    };
    let quiet = o.has('n');
    let mut status = 0;
    if in_place {
        if rest.is_empty() {
            io.error("sed: no input files");
            return Ok(1);
        }
        for f in &rest {
            let data = match sh.read_path(f) {
                Ok(d) => d,
                Err(e) => {
                    io.error(&format!("sed: can't read {}: {}", f, message(&e)));
                    status = 2;
                    continue;
                }
            };
            for it in &items {
                it.active.set(false);
            }
            let out = sed_run(&items, &[data.clone()], quiet);
            if !suffix.is_empty() {
                // The backup's name: the suffix, or * replaced by the file's name.
                let backup = if suffix.contains('*') {
                    let base = crate::builtins::base_name(f);
                    let named = suffix.replace('*', base);
                    if named.contains('/') {
                        named
                    } else {
                        match f.rfind('/') {
                            Some(i) => format!("{}{}", &f[..=i], named),
                            None => named,
                        }
                    }
                } else {
                    format!("{}{}", f, suffix)
                };
                if let Err(e) = fs::write(sh.resolve(&backup), &data) {
                    io.error(&format!("sed: cannot rename {}: {}", f, message(&e)));
                    status = 4;
                    continue;
                }
            }
            if let Err(e) = fs::write(sh.resolve(f), out.as_bytes()) {
                io.error(&format!("sed: couldn't write {}: {}", f, message(&e)));
                status = 4;
            }
        }
        return Ok(status);
    }
    let ins = inputs(sh, "sed", &rest, io, &mut status);
    let datas: Vec<Vec<u8>> = ins.into_iter().map(|(_, d)| d).collect();
    let out = sed_run(&items, &datas, quiet);
    if status != 0 {
        status = 2;
    }
    io.print(&out);
    Ok(status)
}

fn sed_run(items: &[SedItem], datas: &[Vec<u8>], quiet: bool) -> String {
    let mut all: Vec<(String, bool)> = Vec::new();
    for d in datas {
        let text = String::from_utf8_lossy(d);
        let ends_nl = text.ends_with('\n');
        let ls = lines(d);
        let n = ls.len();
        for (k, l) in ls.into_iter().enumerate() {
            all.push((l, k + 1 < n || ends_nl));
        }
    }
    let mut st = SedState {
        line_no: 0,
        last: false,
        quit: false,
        deleted: false,
        append: String::new(),
        out: String::new(),
        quiet,
    };
    let total = all.len();
    for (k, (mut line, nl)) in all.into_iter().enumerate() {
        st.line_no = k + 1;
        st.last = k + 1 == total;
        st.deleted = false;
        sed_exec(items, &mut line, &mut st);
        if !st.deleted && !st.quiet {
            st.out.push_str(&line);
            if nl {
                st.out.push('\n');
            }
        }
        if !st.append.is_empty() {
            let a = std::mem::take(&mut st.append);
            st.out.push_str(&a);
        }
        if st.quit || st.out.len() > crate::MAX_BUFFERED {
            break;
        }
    }
    st.out
}

// ---- sort, uniq, cut, tr ----

/// The leading number of s as sort -n reads it.
fn num_prefix(s: &str) -> f64 {
    let t = s.trim_start();
    let mut end = 0;
    for (i, c) in t.char_indices() {
        if c.is_ascii_digit() || c == '.' || (i == 0 && c == '-') {
            end = i + c.len_utf8();
        } else {
            break;
        }
    }
    t[..end].parse().unwrap_or(0.0)
}

/// A number as sort -h reads it: 2K, 1.5M, 3G (powers of 1024).
fn human_num(s: &str) -> f64 {
    let t = s.trim_start();
    let n = num_prefix(t);
    let digits = t.chars().take_while(|c| c.is_ascii_digit() || *c == '.' || *c == '-').count();
    let unit = match t[digits..].chars().next() {
        Some('k') | Some('K') => 1,
        Some('M') => 2,
        Some('G') => 3,
        Some('T') => 4,
        Some('P') => 5,
        Some('E') => 6,
        _ => 0,
    };
    n * 1024f64.powi(unit)
}

/// Compares version strings as sort -V does (digit runs as numbers).
fn version_cmp(a: &str, b: &str) -> std::cmp::Ordering {
    let (ac, bc): (Vec<char>, Vec<char>) = (a.chars().collect(), b.chars().collect());
    let (mut i, mut j) = (0, 0);
    while i < ac.len() && j < bc.len() {
        if ac[i].is_ascii_digit() && bc[j].is_ascii_digit() {
            let si = i;
            while i < ac.len() && ac[i].is_ascii_digit() {
                i += 1;
            }
            let sj = j;
            while j < bc.len() && bc[j].is_ascii_digit() {
                j += 1;
            }
            let x: String = ac[si..i].iter().collect();
            let y: String = bc[sj..j].iter().collect();
            let (x, y) = (x.trim_start_matches('0'), y.trim_start_matches('0'));
            let o = x.len().cmp(&y.len()).then(x.cmp(y));
            if o != std::cmp::Ordering::Equal {
                return o;
            }
        } else {
            let o = ac[i].cmp(&bc[j]);
            if o != std::cmp::Ordering::Equal {
                return o;
            }
            i += 1;
            j += 1;
        }
    }
    (ac.len() - i).cmp(&(bc.len() - j))
}

struct Key {
    field: usize,
    end: Option<usize>,
    numeric: bool,
    reverse: bool,
}

fn key_text<'a>(line: &'a str, k: &Key, sep: Option<char>) -> String {
    let fields: Vec<&str> = match sep {
        Some(c) => line.split(c).collect(),
        None => {
            // Blank-separated, each field keeping its leading blanks.
            let mut v = Vec::new();
            let b = line.as_bytes();
            let mut i = 0;
            while i < b.len() {
                let s = i;
                while i < b.len() && (b[i] == b' ' || b[i] == b'\t') {
                    i += 1;
                }
                while i < b.len() && b[i] != b' ' && b[i] != b'\t' {
                    i += 1;
                }
                v.push(&line[s..i]);
            }
            v
        }
    };
    let start = k.field.saturating_sub(1);
    let end = k.end.unwrap_or(fields.len()).min(fields.len());
    if start >= fields.len() || start >= end {
        return String::new();
    }
    let sepstr = sep.map(|c| c.to_string()).unwrap_or_default();
    fields[start..end].join(&sepstr)
}

pub(crate) fn sort(sh: &mut Shell, args: &[String], io: &Io) -> Status {
    let o = opts_or_return!("sort", args, "nrufbdVhk:t:o:sc", true, io);
    let numeric = o.has('n') || o.has('h');
    let human = o.has('h');
    let mut status = 0;
    let ins = inputs(sh, "sort", &o.rest, io, &mut status);
    if status != 0 {
        return Ok(2);
    }
    let mut all: Vec<String> = Vec::new();
    for (_, d) in &ins {
        all.extend(lines(d));
    }
    let sep = o.value('t').and_then(|t| t.chars().next());
    let mut keys = Vec::new();
    for k in o.values('k') {
        let (a, b) = match k.split_once(',') {
            Some((a, b)) => (a, Some(b)),
            None => (k, None),
        };
        let parse = |s: &str| -> (Option<usize>, String) {
            let digits: String = s.chars().take_while(|c| c.is_ascii_digit() || *c == '.').collect();
            let flags: String = s.chars().skip_while(|c| c.is_ascii_digit() || *c == '.').collect();
            (digits.split('.').next().and_then(|d| d.parse().ok()), flags)
        };
        let (f, fl) = parse(a);
        let (e, fl2) = match b {
            Some(b) => parse(b),
            None => (None, String::new()),
        };
        let f = match f {
            Some(f) if f > 0 => f,
            _ => {
                io.error(&format!("sort: invalid number at field start: invalid count at start of '{}'", k));
                return Ok(2);
            }
        };
        let flags = fl + &fl2;
        keys.push(Key {
            field: f,
            end: e,
            numeric: flags.contains('n') || flags.contains('h'),
            reverse: flags.contains('r'),
        });
    }
    let fold = o.has('f');
    let version = o.has('V');
    let cmp_text = |a: &str, b: &str, numeric: bool| -> std::cmp::Ordering {
        if numeric && human {
            human_num(a).partial_cmp(&human_num(b)).unwrap_or(std::cmp::Ordering::Equal)
        } else if numeric {
            num_prefix(a).partial_cmp(&num_prefix(b)).unwrap_or(std::cmp::Ordering::Equal)
        } else if version {
            version_cmp(a, b)
        } else if fold {
            a.to_uppercase().cmp(&b.to_uppercase())
        } else if o.has('b') {
            a.trim_start().cmp(b.trim_start())
        } else {
            a.cmp(b)
        }
    };
    let cmp = |a: &String, b: &String| -> std::cmp::Ordering {
        for k in &keys {
            let (x, y) = (key_text(a, k, sep), key_text(b, k, sep));
            let (x, y) = if sep.is_none() && !k.numeric { (x.trim_start().to_string(), y.trim_start().to_string()) } else { (x, y) };
            let mut ord = cmp_text(&x, &y, k.numeric || numeric);
            if k.reverse {
                ord = ord.reverse();
            }
            if ord != std::cmp::Ordering::Equal {
                return ord;
            }
        }
        if !keys.is_empty() || numeric || version || fold {
            let ord = if keys.is_empty() { cmp_text(a, b, numeric) } else { std::cmp::Ordering::Equal };
            if ord != std::cmp::Ordering::Equal {
                return ord;
            }
            if o.has('u') || o.has('s') {
                return std::cmp::Ordering::Equal;
            }
            return a.cmp(b);
        }
        a.cmp(b)
    };
    if o.has('c') {
        for w in all.windows(2) {
            if cmp(&w[0], &w[1]) == std::cmp::Ordering::Greater {
                io.error(&format!("sort: -:{}: disorder: {}", 2, w[1]));
                return Ok(1);
            }
        }
        return Ok(0);
    }
    let rev = o.has('r');
    all.sort_by(|a, b| {
        let ord = cmp(a, b);
        if rev {
            ord.reverse()
        } else {
            ord
        }
    });
    if o.has('u') {
        all.dedup_by(|a, b| cmp(a, b) == std::cmp::Ordering::Equal);
    }
    let mut out = String::new();
    for l in all {
        out.push_str(&l);
        out.push('\n');
    }
    if let Some(f) = o.value('o') {
        if let Err(e) = fs::write(sh.resolve(f), out.as_bytes()) {
            io.error(&format!("sort: open failed: {}: {}", f, message(&e)));
            return Ok(2);
        }
        return Ok(0);
    }
    io.print(&out);
    Ok(0)
}

pub(crate) fn uniq(sh: &mut Shell, args: &[String], io: &Io) -> Status {
    let o = opts_or_return!("uniq", args, "cdui", true, io);
    let mut status = 0;
    let ins = inputs(sh, "uniq", &o.rest[..o.rest.len().min(1)], io, &mut status);
    if status != 0 {
        return Ok(1);
    }
    let data = ins.into_iter().next().map(|(_, d)| d).unwrap_or_default();
    let mut groups: Vec<(String, usize)> = Vec::new();
    for l in lines(&data) {
        let same = match groups.last() {
            Some((g, _)) => {
                if o.has('i') {
                    g.to_lowercase() == l.to_lowercase()
                } else {
                    *g == l
                }
            }
            None => false,
        };
        if same {
            groups.last_mut().unwrap().1 += 1;
        } else {
            groups.push((l, 1));
        }
    }
    let mut out = String::new();
    for (l, n) in groups {
        if o.has('d') && n < 2 || o.has('u') && n > 1 {
            continue;
        }
        if o.has('c') {
            out.push_str(&format!("{:>7} {}\n", n, l));
        } else {
            out.push_str(&l);
            out.push('\n');
        }
    }
    if let Some(f) = o.rest.get(1) {
        if let Err(e) = fs::write(sh.resolve(f), out.as_bytes()) {
            io.error(&format!("uniq: {}: {}", f, message(&e)));
            return Ok(1);
        }
        return Ok(0);
    }
    io.print(&out);
    Ok(0)
}

/// Parses a cut list like "1,3-5,7-": (from, to) 1-based.
fn cut_list(s: &str) -> Option<Vec<(usize, usize)>> {
    let mut v = Vec::new();
    for part in s.split(',') {
        let (a, b) = match part.split_once('-') {
            Some((a, b)) => (
                if a.is_empty() { 1 } else { a.parse().ok()? },
                if b.is_empty() { usize::MAX } else { b.parse().ok()? },
            ),
            None => {
                let n = part.parse().ok()?;
                (n, n)
            }
        };
        if a == 0 || b < a {
            return None;
        }
        v.push((a, b));
    }
    Some(v)
}

pub(crate) fn cut(sh: &mut Shell, args: &[String], io: &Io) -> Status {
    let mut odelim = None;
    let mut complement = false;
    let mut norm = Vec::new();
    for a in args {
        if let Some(d) = a.strip_prefix("--output-delimiter=") {
            odelim = Some(d.to_string());
        } else if a == "--complement" {
            complement = true;
        } else {
            norm.push(a.clone());
        }
    }
    let o = opts_or_return!("cut", &norm, "d:f:c:b:sn", true, io);
    let (list, chars) = match (o.value('f'), o.value('c').or_else(|| o.value('b'))) {
        (Some(f), _) => (f, false),
        (None, Some(c)) => (c, true),
        _ => {
            io.error("cut: you must specify a list of bytes, characters, or fields");
            return Ok(1);
        }
    };
    let ranges = match cut_list(list) {
        Some(r) => r,
        None => {
            io.error(&format!("cut: invalid field value '{}'", list));
            return Ok(1);
        }
    };
    let delim = match o.value('d') {
        Some(d) if d.chars().count() == 1 => d.chars().next().unwrap(),
        Some(_) => {
            io.error("cut: the delimiter must be a single character");
            return Ok(1);
        }
        None => '\t',
    };
    let inr = |i: usize| ranges.iter().any(|&(a, b)| a <= i && i <= b) != complement;
    let odelim = odelim.unwrap_or_else(|| delim.to_string());
    let mut status = 0;
    let ins = inputs(sh, "cut", &o.rest, io, &mut status);
    let mut out = String::new();
    for (_, d) in ins {
        for l in lines(&d) {
            if chars {
                out.extend(l.chars().enumerate().filter(|(i, _)| inr(i + 1)).map(|(_, c)| c));
            } else {
                if !l.contains(delim) {
                    if !o.has('s') {
                        out.push_str(&l);
                        out.push('\n');
                    }
                    continue;
                }
                let fs: Vec<&str> = l.split(delim).enumerate().filter(|(i, _)| inr(i + 1)).map(|(_, f)| f).collect();
                out.push_str(&fs.join(&odelim));
            }
            out.push('\n');
        }
    }
    io.print(&out);
    Ok(status)
}

/// Expands a tr set: ranges, classes, escapes.
fn tr_set(s: &str) -> Vec<char> {
    let mut raw = String::new();
    unescape(s, &mut raw, true);
    let cs: Vec<char> = raw.chars().collect();
    let mut out = Vec::new();
    let mut i = 0;
    while i < cs.len() {
        if cs[i] == '[' && i + 1 < cs.len() && cs[i + 1] == ':' {
            if let Some(end) = (i + 2..cs.len().saturating_sub(1)).find(|&k| cs[k] == ':' && cs[k + 1] == ']') {
                let name: String = cs[i + 2..end].iter().collect();
                for b in 0u8..=127 {
                    let c = b as char;
                    if crate::glob::in_named(&name, c) {
                        out.push(c);
                    }
                }
                i = end + 2;
                continue;
            }
        }
        if i + 2 < cs.len() && cs[i + 1] == '-' {
            let (a, b) = (cs[i] as u32, cs[i + 2] as u32);
            for c in a..=b {
                if let Some(c) = char::from_u32(c) {
                    out.push(c);
                }
            }
            i += 3;
            continue;
        }
        out.push(cs[i]);
        i += 1;
    }
    out
}

pub(crate) fn tr(_: &mut Shell, args: &[String], io: &Io) -> Status {
    let o = opts_or_return!("tr", args, "dscC", false, io);
    let set1 = match o.rest.get(0) {
        Some(s) => tr_set(s),
        None => {
            io.error("tr: missing operand");
            return Ok(1);
        }
    };
    let set2 = o.rest.get(1).map(|s| tr_set(s));
    let comp = o.has('c') || o.has('C');
    let in1 = |c: char| set1.contains(&c) != comp;
    let data = io.read_all();
    let text = String::from_utf8_lossy(&data);
    let mut out = String::with_capacity(text.len());
    let mut last: Option<char> = None;
    let squeeze_set: Vec<char> = match (&set2, o.has('d')) {
        (Some(s2), _) if o.has('s') => s2.clone(),
        _ => set1.clone(),
    };
    for c in text.chars() {
        let mut c2 = c;
        if o.has('d') {
            if in1(c) {
                continue;
            }
        } else if let Some(s2) = &set2 {
            if in1(c) && !s2.is_empty() {
                c2 = if comp {
                    *s2.last().unwrap()
                } else {
                    let k = set1.iter().position(|&x| x == c).unwrap();
                    *s2.get(k).unwrap_or_else(|| s2.last().unwrap())
                };
            }
        }
        if o.has('s') && last == Some(c2) && (squeeze_set.contains(&c2) != (comp && set2.is_none())) {
            continue;
        }
        last = Some(c2);
        out.push(c2);
    }
    io.print(&out);
    Ok(0)
}

// ---- diff ----

/// diff [-u] [-q] A B: status 0 same, 1 different, 2 trouble; unified
/// output with -u, else the classic "NcM" form.
pub(crate) fn diff(sh: &mut Shell, args: &[String], io: &Io) -> Status {
    let o = opts_or_return!("diff", args, "uqNrbwBU:a", true, io);
    if o.rest.len() != 2 {
        io.error(&format!("diff: missing operand after '{}'", o.rest.first().map(|s| s.as_str()).unwrap_or("diff")));
        return Ok(2);
    }
    let read = |f: &str| -> Result<Vec<u8>, String> {
        if f == "-" {
            return Ok(io.read_all());
        }
        sh.read_path(f).map_err(|e| format!("diff: {}: {}", f, message(&e)))
    };
    let (a, b) = match (read(&o.rest[0]), read(&o.rest[1])) {
        (Ok(a), Ok(b)) => (a, b),
        (Err(e), _) | (_, Err(e)) => {
            io.error(&e);
            return Ok(2);
        }
    };
    if a == b {
        return Ok(0);
    }
    if o.has('q') {
        io.print(&format!("Files {} and {} differ\n", o.rest[0], o.rest[1]));
        return Ok(1);
    }
    let (la, lb) = (lines(&a), lines(&b));
    if la.len() * lb.len() > 25_000_000 {
        io.print(&format!("Files {} and {} differ\n", o.rest[0], o.rest[1]));
        return Ok(1);
    }
    // LCS table.
    let (n, m) = (la.len(), lb.len());
    let mut t = vec![0u32; (n + 1) * (m + 1)];
    for i in (0..n).rev() {
        for j in (0..m).rev() {
            t[i * (m + 1) + j] = if la[i] == lb[j] {
                t[(i + 1) * (m + 1) + j + 1] + 1
            } else {
                t[(i + 1) * (m + 1) + j].max(t[i * (m + 1) + j + 1])
            };
        }
    }
    // Edit script: (' ', '-', '+', a index, b index).
    let mut ops: Vec<(char, usize, usize)> = Vec::new();
    let (mut i, mut j) = (0, 0);
    while i < n || j < m {
        if i < n && j < m && la[i] == lb[j] {
            ops.push((' ', i, j));
            i += 1;
            j += 1;
        } else if i < n && (j == m || t[(i + 1) * (m + 1) + j] >= t[i * (m + 1) + j + 1]) {
            ops.push(('-', i, j));
            i += 1;
        } else {
            ops.push(('+', i, j));
            j += 1;
        }
    }
    let mut out = String::new();
    let unified = o.has('u') || o.has('U');
    let ctx = o.value('U').and_then(|v| v.parse().ok()).unwrap_or(3usize);
    if unified {
        out.push_str(&format!("--- {}\n+++ {}\n", o.rest[0], o.rest[1]));
        // Hunks: changes with ctx lines around.
        let changed: Vec<usize> = ops.iter().enumerate().filter(|(_, op)| op.0 != ' ').map(|(k, _)| k).collect();
        let mut k = 0;
        while k < changed.len() {
            let start = changed[k].saturating_sub(ctx);
            let mut end = changed[k];
            while k < changed.len() && changed[k] <= end + 2 * ctx + 1 {
                end = changed[k];
                k += 1;
            }
            let end = (end + ctx + 1).min(ops.len());
            let hunk = &ops[start..end];
            let a_start = hunk.iter().map(|op| op.1).next().unwrap_or(0);
            let b_start = hunk.iter().map(|op| op.2).next().unwrap_or(0);
            let a_len = hunk.iter().filter(|op| op.0 != '+').count();
            let b_len = hunk.iter().filter(|op| op.0 != '-').count();
            let range = |s: usize, l: usize| {
                if l == 1 {
                    format!("{}", s + 1)
                } else if l == 0 {
                    format!("{},0", s)
                } else {
                    format!("{},{}", s + 1, l)
                }
            };
            out.push_str(&format!("@@ -{} +{} @@\n", range(a_start, a_len), range(b_start, b_len)));
            for op in hunk {
                match op.0 {
                    ' ' => out.push_str(&format!(" {}\n", la[op.1])),
                    '-' => out.push_str(&format!("-{}\n", la[op.1])),
                    _ => out.push_str(&format!("+{}\n", lb[op.2])),
                }
            }
        }
    } else {
        let mut k = 0;
        while k < ops.len() {
            if ops[k].0 == ' ' {
                k += 1;
                continue;
            }
            let s = k;
            while k < ops.len() && ops[k].0 != ' ' {
                k += 1;
            }
            let del: Vec<&(char, usize, usize)> = ops[s..k].iter().filter(|o| o.0 == '-').collect();
            let add: Vec<&(char, usize, usize)> = ops[s..k].iter().filter(|o| o.0 == '+').collect();
            let r = |a: usize, b: usize| if a == b { format!("{}", a) } else { format!("{},{}", a, b) };
            let (ai, bi) = (ops[s].1, ops[s].2);
            let head = if add.is_empty() {
                format!("{}d{}", r(ai + 1, ai + del.len()), bi)
            } else if del.is_empty() {
                format!("{}a{}", ai, r(bi + 1, bi + add.len()))
            } else {
                format!("{}c{}", r(ai + 1, ai + del.len()), r(bi + 1, bi + add.len()))
            };
            out.push_str(&head);
            out.push('\n');
            for d in &del {
                out.push_str(&format!("< {}\n", la[d.1]));
            }
            if !del.is_empty() && !add.is_empty() {
                out.push_str("---\n");
            }
            for a in &add {
                out.push_str(&format!("> {}\n", lb[a.2]));
            }
        }
    }
    io.print(&out);
    Ok(1)
}

pub(crate) fn seq(_: &mut Shell, args: &[String], io: &Io) -> Status {
    let mut sep = "\n".to_string();
    let mut width = false;
    let mut nums = Vec::new();
    let mut i = 1;
    while i < args.len() {
        let a = &args[i];
        if a == "-s" {
            i += 1;
            sep = args.get(i).cloned().unwrap_or_default();
        } else if let Some(s) = a.strip_prefix("-s") {
            sep = s.to_string();
        } else if a == "-w" {
            width = true;
        } else {
            match a.parse::<i64>() {
                Ok(n) => nums.push(n),
                Err(_) => {
                    io.error(&format!("seq: invalid floating point argument: '{}'", a));
                    return Ok(1);
                }
            }
        }
        i += 1;
    }
    let (first, step, last) = match nums[..] {
        [last] => (1, 1, last),
        [first, last] => (first, 1, last),
        [first, step, last] if step != 0 => (first, step, last),
        [_, _, _] => {
            io.error("seq: invalid Zero increment value: '0'");
            return Ok(1);
        }
        _ => {
            io.error("seq: missing operand");
            return Ok(1);
        }
    };
    let w = if width { first.to_string().len().max(last.to_string().len()) } else { 0 };
    let mut out = String::new();
    let mut n = first;
    let mut started = false;
    while (step > 0 && n <= last) || (step < 0 && n >= last) {
        if started {
            out.push_str(&sep);
        }
        started = true;
        out.push_str(&format!("{:0w$}", n, w = w));
        if out.len() >= CHUNK {
            if !io.print(&out) {
                return Ok(1);
            }
            out.clear();
        }
        n = match n.checked_add(step) {
            Some(v) => v,
            None => break,
        };
    }
    if started {
        out.push('\n');
    }
    Ok(if io.print(&out) { 0 } else { 1 })
}

/// Civil date from days since 1970-01-01 (Howard Hinnant's algorithm).
fn civil(days: i64) -> (i64, u32, u32) {
    let z = days + 719468;
    let era = if z >= 0 { z } else { z - 146096 } / 146097;
    let doe = (z - era * 146097) as u64;
    let yoe = (doe - doe / 1460 + doe / 36524 - doe / 146096) / 365;
    let y = yoe as i64 + era * 400;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let m = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    (if m <= 2 { y + 1 } else { y }, m, d)
}

pub(crate) fn format_date(secs: i64, fmt: &str) -> String {
    let days = secs.div_euclid(86400);
    let rem = secs.rem_euclid(86400);
    let (y, mo, d) = civil(days);
    let (h, mi, s) = (rem / 3600, rem % 3600 / 60, rem % 60);
    let wd = (days + 4).rem_euclid(7) as usize;
    const DAYS: [&str; 7] = ["Sun", "Mon", "Tue", "Wed", "Thu", "Fri", "Sat"];
    const MONTHS: [&str; 12] = ["Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"];
    let mut out = String::new();
    let mut cs = fmt.chars();
    while let Some(c) = cs.next() {
        if c != '%' {
            out.push(c);
            continue;
        }
        match cs.next() {
            Some('Y') => out.push_str(&y.to_string()),
            Some('m') => out.push_str(&format!("{:02}", mo)),
            Some('d') => out.push_str(&format!("{:02}", d)),
            Some('H') => out.push_str(&format!("{:02}", h)),
            Some('M') => out.push_str(&format!("{:02}", mi)),
            Some('S') => out.push_str(&format!("{:02}", s)),
            Some('s') => out.push_str(&secs.to_string()),
            Some('F') => out.push_str(&format!("{}-{:02}-{:02}", y, mo, d)),
            Some('T') => out.push_str(&format!("{:02}:{:02}:{:02}", h, mi, s)),
            Some('y') => out.push_str(&format!("{:02}", y % 100)),
            Some('j') => {
                let (y0, _, _) = civil(days);
                let jan1 = days_from_civil(y0, 1, 1);
                out.push_str(&format!("{:03}", days - jan1 + 1))
            }
            Some('a') => out.push_str(DAYS[wd]),
            Some('b') => out.push_str(MONTHS[mo as usize - 1]),
            Some('u') => out.push_str(&(if wd == 0 { 7 } else { wd }).to_string()),
            Some('Z') => out.push_str("UTC"),
            Some('z') => out.push_str("+0000"),
            Some('%') => out.push('%'),
            Some('n') => out.push('\n'),
            Some(o) => {
                out.push('%');
                out.push(o);
            }
            None => out.push('%'),
        }
    }
    out
}

/// date -d's forms: @SECONDS, now, today, yesterday, tomorrow,
/// YYYY-MM-DD[ T]HH:MM[:SS][Z], and "N UNIT[s] [ago]" after any of them
/// (UTC).
fn parse_date(v: &str, now: i64) -> Option<i64> {
    if let Some(s) = v.strip_prefix('@') {
        return s.trim().parse().ok();
    }
    let words: Vec<&str> = v.split_whitespace().collect();
    let mut secs = now;
    let mut i = 0;
    match words.first().copied() {
        None => return Some(now - now.rem_euclid(86400)),
        Some("now") | Some("today") => i = 1,
        Some("yesterday") => {
            secs -= 86400;
            i = 1
        }
        Some("tomorrow") => {
            secs += 86400;
            i = 1
        }
        Some(w) if w.len() >= 10 && w.as_bytes()[4] == b'-' => {
            let (date, time) = match w.split_once('T') {
                Some((d, t)) => (d, Some(t)),
                None => (w, None),
            };
            let mut p = date.split('-').map(|x| x.parse::<i64>().ok());
            let (y, m, d) = (p.next()??, p.next()??, p.next()??);
            if !(1..=12).contains(&m) || !(1..=31).contains(&d) {
                return None;
            }
            secs = days_from_civil(y, m as u32, d as u32) * 86400;
            i = 1;
            let time = time.or_else(|| {
                let t = words.get(1).copied().filter(|t| t.contains(':'));
                if t.is_some() {
                    i = 2;
                }
                t
            });
            match time {
                Some(t) => {
                    let t = t.trim_end_matches('Z');
                    let mut hms = t.split(':').map(|x| x.split('.').next().unwrap_or("").parse::<i64>().ok());
                    let h = hms.next()??;
                    let mi = hms.next().unwrap_or(Some(0))?;
                    let s = hms.next().unwrap_or(Some(0))?;
                    secs += h * 3600 + mi * 60 + s;
                }
                None => {}
            }
        }
        _ => {}
    }
    while i < words.len() {
        let (n, unit) = match words[i].parse::<i64>() {
            Ok(n) => {
                i += 1;
                (n, *words.get(i)?)
            }
            Err(_) => (1, words[i]),
        };
        i += 1;
        let unit = unit.trim_end_matches('s');
        let mul = match unit {
            "sec" | "second" => 1,
            "min" | "minute" => 60,
            "hour" => 3600,
            "day" => 86400,
            "week" => 7 * 86400,
            _ => return None,
        };
        let mut d = n * mul;
        if words.get(i) == Some(&"ago") {
            d = -d;
            i += 1;
        }
        secs += d;
    }
    Some(secs)
}

fn days_from_civil(y: i64, m: u32, d: u32) -> i64 {
    let y = if m <= 2 { y - 1 } else { y };
    let era = if y >= 0 { y } else { y - 399 } / 400;
    let yoe = (y - era * 400) as i64;
    let mp = if m > 2 { m - 3 } else { m + 9 } as i64;
    let doy = (153 * mp + 2) / 5 + d as i64 - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146097 + doe - 719468
}

pub(crate) fn date(_: &mut Shell, args: &[String], io: &Io) -> Status {
    let mut fmt = "%a %b %d %H:%M:%S UTC %Y".to_string();
    let mut secs = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs() as i64)
        .unwrap_or(0);
    let mut i = 1;
    while i < args.len() {
        let a = &args[i];
        if let Some(f) = a.strip_prefix('+') {
            fmt = f.to_string();
        } else if a == "-u" || a == "--utc" {
        } else if a == "-d" || a == "--date" {
            i += 1;
            let v = args.get(i).cloned().unwrap_or_default();
            match parse_date(&v, secs) {
                Some(s) => secs = s,
                None => {
                    io.error(&format!("date: invalid date '{}'", v));
                    return Ok(1);
                }
            }
        } else if let Some(v) = a.strip_prefix("--date=").or_else(|| a.strip_prefix("-d")) {
            match parse_date(v, secs) {
                Some(s) => secs = s,
                None => {
                    io.error(&format!("date: invalid date '{}'", v));
                    return Ok(1);
                }
            }
        } else if a == "-I" || a == "--iso-8601" {
            fmt = "%F".into();
        } else {
            io.error(&format!("date: invalid date '{}'", a));
            return Ok(1);
        }
        i += 1;
    }
    io.print(&(format_date(secs, &fmt) + "\n"));
    Ok(0)
}

pub(crate) fn tee(sh: &mut Shell, args: &[String], io: &Io) -> Status {
    let o = opts_or_return!("tee", args, "ai", true, io);
    let data = io.read_all();
    let mut status = 0;
    for f in &o.rest {
        let mut opts = fs::OpenOptions::new();
        opts.create(true);
        if o.has('a') {
            opts.append(true);
        } else {
            opts.write(true).truncate(true);
        }
        let r = match f.as_str() {
            "/dev/stdout" => io.out.write_all(&data),
            "/dev/stderr" => io.err.write_all(&data),
            "/dev/null" => Ok(()),
            _ => opts.open(sh.resolve(f)).and_then(|mut file| std::io::Write::write_all(&mut file, &data)),
        };
        if let Err(e) = r {
            io.error(&format!("tee: {}: {}", f, message(&e)));
            status = 1;
        }
    }
    if !io.write(&data) {
        return Ok(1);
    }
    Ok(status)
}

/// xargs [-n N] [-I R] [-0] [-d D] [-r] [-t] CMD...: runs the command (a
/// builtin or function) with the input's words as arguments.
pub(crate) fn xargs(sh: &mut Shell, args: &[String], io: &Io) -> Status {
    let o = opts_or_return!("xargs", args, "n:I:0d:rtL:P:", false, io);
    let data = io.read_all();
    let text = String::from_utf8_lossy(&data).into_owned();
    let repl = o.value('I').map(|s| s.to_string());
    let items: Vec<String> = if o.has('0') {
        text.split('\0').filter(|s| !s.is_empty()).map(|s| s.to_string()).collect()
    } else if let Some(d) = o.value('d') {
        let mut d2 = String::new();
        unescape(d, &mut d2, true);
        let dc = d2.chars().next().unwrap_or('\n');
        text.split(dc).filter(|s| !s.is_empty()).map(|s| s.to_string()).collect()
    } else if repl.is_some() || o.has('L') {
        text.lines().map(|l| l.trim().to_string()).filter(|l| !l.is_empty()).collect()
    } else {
        xargs_words(&text)
    };
    let mut cmd: Vec<String> = o.rest.clone();
    if cmd.is_empty() {
        cmd.push("echo".into());
    }
    let per = if repl.is_some() {
        1
    } else {
        o.value('n').or_else(|| o.value('L')).and_then(|n| n.parse::<usize>().ok()).unwrap_or(usize::MAX).max(1)
    };
    if items.is_empty() {
        if o.has('r') || repl.is_some() {
            return Ok(0);
        }
        return run_xargs(sh, &cmd, o.has('t'), io);
    }
    let mut status = 0;
    for chunk in items.chunks(per.min(items.len())) {
        let full: Vec<String> = match &repl {
            Some(r) => cmd.iter().map(|a| a.replace(r.as_str(), &chunk[0])).collect(),
            None => cmd.iter().cloned().chain(chunk.iter().cloned()).collect(),
        };
        let s = run_xargs(sh, &full, o.has('t'), io)?;
        if s == 255 {
            return Ok(124);
        }
        if s != 0 {
            status = if s == 127 { 127 } else { 123 };
        }
    }
    Ok(status)
}

fn run_xargs(sh: &mut Shell, cmd: &[String], trace: bool, io: &Io) -> Status {
    if trace {
        io.error(&cmd.join(" "));
    }
    let mut sub = sh.clone();
    let cio = Io {
        stdin: None,
        out: io.out.clone(),
        err: io.err.clone(),
    };
    match sub.run_args(cmd, &cio) {
        Ok(s) | Err(Flow::Exit(s)) | Err(Flow::Return(s)) => Ok(s),
        Err(_) => Ok(0),
    }
}

/// xargs's word splitting: blanks and newlines, with quotes.
fn xargs_words(text: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut cur = String::new();
    let mut has = false;
    let mut quote: Option<char> = None;
    let mut cs = text.chars();
    while let Some(c) = cs.next() {
        match quote {
            Some(q) if c == q => quote = None,
            Some(_) => cur.push(c),
            None => match c {
                '\'' | '"' => {
                    quote = Some(c);
                    has = true;
                }
                '\\' => {
                    if let Some(n) = cs.next() {
                        cur.push(n);
                        has = true;
                    }
                }
                c if c.is_whitespace() => {
                    if has || !cur.is_empty() {
                        out.push(std::mem::take(&mut cur));
                        has = false;
                    }
                }
                c => cur.push(c),
            },
        }
    }
    if has || !cur.is_empty() {
        out.push(cur);
    }
    out
}

pub(crate) fn rev(sh: &mut Shell, args: &[String], io: &Io) -> Status {
    let mut status = 0;
    let ins = inputs(sh, "rev", &args[1..], io, &mut status);
    let mut out = String::new();
    for (_, d) in ins {
        for l in lines(&d) {
            out.extend(l.chars().rev());
            out.push('\n');
        }
    }
    io.print(&out);
    Ok(status)
}

/// cmp [-s] A B: status 0 same, 1 different.
pub(crate) fn cmp(sh: &mut Shell, args: &[String], io: &Io) -> Status {
    let o = opts_or_return!("cmp", args, "sl", true, io);
    if o.rest.len() < 2 {
        io.error(&format!("cmp: missing operand after '{}'", o.rest.first().map(|s| s.as_str()).unwrap_or("cmp")));
        return Ok(2);
    }
    let read = |f: &str| if f == "-" { Ok(io.read_all()) } else { sh.read_path(f) };
    let (a, b) = match (read(&o.rest[0]), read(&o.rest[1])) {
        (Ok(a), Ok(b)) => (a, b),
        (Err(e), _) => {
            io.error(&format!("cmp: {}: {}", o.rest[0], message(&e)));
            return Ok(2);
        }
        (_, Err(e)) => {
            io.error(&format!("cmp: {}: {}", o.rest[1], message(&e)));
            return Ok(2);
        }
    };
    if a == b {
        return Ok(0);
    }
    if !o.has('s') {
        match a.iter().zip(b.iter()).position(|(x, y)| x != y) {
            Some(i) => {
                let line = a[..i].iter().filter(|&&c| c == b'\n').count() + 1;
                io.print(&format!("{} {} differ: byte {}, line {}\n", o.rest[0], o.rest[1], i + 1, line));
            }
            None => {
                let (short, n) = if a.len() < b.len() { (&o.rest[0], a.len()) } else { (&o.rest[1], b.len()) };
                io.error(&format!("cmp: EOF on {} after byte {}", short, n));
            }
        }
    }
    Ok(1)
}

const B64: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";

/// base64 [-d] [-w N] [FILE].
pub(crate) fn base64(sh: &mut Shell, args: &[String], io: &Io) -> Status {
    let o = opts_or_return!("base64", args, "diw:", true, io);
    let data = if o.rest.is_empty() || o.rest[0] == "-" {
        io.read_all()
    } else {
        match sh.read_path(&o.rest[0]) {
            Ok(d) => d,
            Err(e) => {
                io.error(&format!("base64: {}: {}", o.rest[0], message(&e)));
                return Ok(1);
            }
        }
    };
    if o.has('d') || o.long.iter().any(|l| l == "decode") {
        let mut out = Vec::with_capacity(data.len() / 4 * 3);
        let (mut acc, mut bits) = (0u32, 0);
        for &c in &data {
            let v = match c {
                b'A'..=b'Z' => c - b'A',
                b'a'..=b'z' => c - b'a' + 26,
                b'0'..=b'9' => c - b'0' + 52,
                b'+' | b'-' => 62,
                b'/' | b'_' => 63,
                b'=' | b'\n' | b'\r' | b' ' => continue,
                _ => {
                    if o.has('i') {
                        continue;
                    }
                    io.write(&out);
                    io.error("base64: invalid input");
                    return Ok(1);
                }
            };
            acc = (acc << 6) | v as u32;
            bits += 6;
            if bits >= 8 {
                bits -= 8;
                out.push((acc >> bits) as u8);
                acc &= (1 << bits) - 1;
            }
        }
        io.write(&out);
        return Ok(0);
    }
    let wrap = o.value('w').and_then(|w| w.parse::<usize>().ok()).unwrap_or(76);
    let mut enc = String::with_capacity(data.len() / 3 * 4 + 4);
    for chunk in data.chunks(3) {
        let n = (chunk[0] as u32) << 16 | (*chunk.get(1).unwrap_or(&0) as u32) << 8 | *chunk.get(2).unwrap_or(&0) as u32;
        for k in 0..4 {
            if k <= chunk.len() {
                enc.push(B64[(n >> (18 - 6 * k) & 63) as usize] as char);
            } else {
                enc.push('=');
            }
        }
    }
    let mut out = String::with_capacity(enc.len() + enc.len() / 76 + 1);
    if wrap == 0 {
        out.push_str(&enc);
    } else {
        for (i, c) in enc.chars().enumerate() {
            if i > 0 && i % wrap == 0 {
                out.push('\n');
            }
            out.push(c);
        }
    }
    if !out.is_empty() {
        out.push('\n');
    }
    io.print(&out);
    Ok(0)
}

/// expr: integer arithmetic, comparisons, `:` matching, length, substr.
pub(crate) fn expr(_: &mut Shell, args: &[String], io: &Io) -> Status {
    let a: Vec<&str> = args[1..].iter().map(|s| s.as_str()).collect();
    let mut p = ExprParser { a: &a, i: 0, depth: 0 };
    let v = match p.or() {
        Ok(v) if p.i == a.len() => v,
        Ok(_) => {
            io.error(&format!("expr: syntax error: unexpected argument '{}'", a[p.i]));
            return Ok(2);
        }
        Err(e) => {
            io.error(&format!("expr: {}", e));
            return Ok(2);
        }
    };
    io.print(&format!("{}\n", v));
    Ok(if v.is_empty() || v == "0" { 1 } else { 0 })
}

struct ExprParser<'a> {
    a: &'a [&'a str],
    i: usize,
    depth: usize,
}

impl<'a> ExprParser<'a> {
    fn peek(&self) -> Option<&'a str> {
        self.a.get(self.i).copied()
    }

    fn int(s: &str) -> Result<i64, String> {
        s.parse().map_err(|_| "non-integer argument".to_string())
    }

    fn or(&mut self) -> Result<String, String> {
        self.depth += 1;
        if self.depth > 32 || !crate::stack_ok() {
            return Err("expression nested too deeply".into());
        }
        let mut l = self.and()?;
        while self.peek() == Some("|") {
            self.i += 1;
            let r = self.and()?;
            if l.is_empty() || l == "0" {
                l = if r.is_empty() || r == "0" { "0".into() } else { r };
            }
        }
        self.depth -= 1;
        Ok(l)
    }

    fn and(&mut self) -> Result<String, String> {
        let mut l = self.cmp()?;
        while self.peek() == Some("&") {
            self.i += 1;
            let r = self.cmp()?;
            let null = |s: &str| s.is_empty() || s == "0";
            l = if null(&l) || null(&r) { "0".into() } else { l };
        }
        Ok(l)
    }

    fn cmp(&mut self) -> Result<String, String> {
        let mut l = self.add()?;
        while let Some(op @ ("=" | "!=" | "<" | "<=" | ">" | ">=")) = self.peek() {
            self.i += 1;
            let r = self.add()?;
            let ord = match (l.parse::<i64>(), r.parse::<i64>()) {
                (Ok(x), Ok(y)) => x.cmp(&y),
                _ => l.cmp(&r),
            };
            let b = match op {
                "=" => ord.is_eq(),
                "!=" => !ord.is_eq(),
                "<" => ord.is_lt(),
                "<=" => ord.is_le(),
                ">" => ord.is_gt(),
                _ => ord.is_ge(),
            };
            l = if b { "1".into() } else { "0".into() };
        }
        Ok(l)
    }

    fn add(&mut self) -> Result<String, String> {
        let mut l = self.mul()?;
        while let Some(op @ ("+" | "-")) = self.peek() {
            self.i += 1;
            let r = self.mul()?;
            let (x, y) = (Self::int(&l)?, Self::int(&r)?);
            l = if op == "+" { x.wrapping_add(y) } else { x.wrapping_sub(y) }.to_string();
        }
        Ok(l)
    }

    fn mul(&mut self) -> Result<String, String> {
        let mut l = self.matchop()?;
        while let Some(op @ ("*" | "/" | "%")) = self.peek() {
            self.i += 1;
            let r = self.matchop()?;
            let (x, y) = (Self::int(&l)?, Self::int(&r)?);
            if y == 0 && op != "*" {
                return Err("division by zero".into());
            }
            l = match op {
                "*" => x.wrapping_mul(y),
                "/" => x.wrapping_div(y),
                _ => x.wrapping_rem(y),
            }
            .to_string();
        }
        Ok(l)
    }

    fn matchop(&mut self) -> Result<String, String> {
        let mut l = self.primary()?;
        while self.peek() == Some(":") {
            self.i += 1;
            let r = self.primary()?;
            l = expr_match(&l, &r)?;
        }
        Ok(l)
    }

    fn primary(&mut self) -> Result<String, String> {
        let t = self.peek().ok_or("syntax error: missing argument")?;
        self.i += 1;
        match t {
            "(" => {
                let v = self.or()?;
                if self.peek() != Some(")") {
                    return Err("syntax error: expecting ')'".into());
                }
                self.i += 1;
                Ok(v)
            }
            "length" => {
                let s = self.primary()?;
                Ok(s.chars().count().to_string())
            }
            "match" => {
                let s = self.primary()?;
                let r = self.primary()?;
                expr_match(&s, &r)
            }
            "substr" => {
                let s = self.primary()?;
                let p = Self::int(&self.primary()?)?;
                let n = Self::int(&self.primary()?)?;
                if p < 1 || n < 1 {
                    return Ok(String::new());
                }
                Ok(s.chars().skip(p as usize - 1).take(n as usize).collect())
            }
            "index" => {
                let s = self.primary()?;
                let cs = self.primary()?;
                Ok(s.chars().position(|c| cs.contains(c)).map(|p| p + 1).unwrap_or(0).to_string())
            }
            t => Ok(t.to_string()),
        }
    }
}

/// expr STRING : REGEX: the \1 group, else the length of the match.
fn expr_match(s: &str, re: &str) -> Result<String, String> {
    let r = Regex::new(&format!("^{}", re), Syntax::Basic, false)?;
    let cs: Vec<char> = s.chars().collect();
    Ok(match r.find_at(&cs, 0) {
        Some(c) => match c.get(1) {
            Some(Some((a, b))) => cs[*a..*b].iter().collect(),
            Some(None) => String::new(),
            None => c[0].map(|(a, b)| b - a).unwrap_or(0).to_string(),
        },
        None => {
            if Regex::new(&format!("^{}", re), Syntax::Basic, false)?.ncaps() > 1 {
                String::new()
            } else {
                "0".into()
            }
        }
    })
}

/// envsubst [SHELL-FORMAT]: $VAR and ${VAR} replaced by exported
/// variables (empty if unset); with SHELL-FORMAT, only the variables it
/// names.
pub(crate) fn envsubst(sh: &mut Shell, args: &[String], io: &Io) -> Status {
    let o = opts_or_return!("envsubst", args, "v", true, io);
    if o.has('v') || !o.long.is_empty() {
        io.error("envsubst: only envsubst [SHELL-FORMAT] is supported here");
        return Ok(1);
    }
    let only: Option<Vec<String>> = o.rest.first().map(|f| {
        let mut names = Vec::new();
        let cs: Vec<char> = f.chars().collect();
        let mut i = 0;
        while i < cs.len() {
            if cs[i] == '$' {
                let braced = cs.get(i + 1) == Some(&'{');
                let st = if braced { i + 2 } else { i + 1 };
                let mut k = st;
                while k < cs.len() && (cs[k] == '_' || cs[k].is_ascii_alphanumeric()) {
                    k += 1;
                }
                if k > st {
                    names.push(cs[st..k].iter().collect());
                }
                i = k;
            } else {
                i += 1;
            }
        }
        names
    });
    let text = String::from_utf8_lossy(&io.read_all()).into_owned();
    let cs: Vec<char> = text.chars().collect();
    let mut out = String::with_capacity(text.len());
    let mut i = 0;
    while i < cs.len() {
        if cs[i] == '$' {
            let braced = cs.get(i + 1) == Some(&'{');
            let st = if braced { i + 2 } else { i + 1 };
            let mut k = st;
            if k < cs.len() && (cs[k] == '_' || cs[k].is_ascii_alphabetic()) {
                while k < cs.len() && (cs[k] == '_' || cs[k].is_ascii_alphanumeric()) {
                    k += 1;
                }
            }
            let closed = !braced || cs.get(k) == Some(&'}');
            if k > st && closed {
                let name: String = cs[st..k].iter().collect();
                if only.as_ref().map(|v| v.contains(&name)).unwrap_or(true) {
                    if sh.exported(&name) {
                        out.push_str(&sh.var(&name).unwrap_or_default());
                    }
                    i = if braced { k + 1 } else { k };
                    continue;
                }
            }
        }
        out.push(cs[i]);
        i += 1;
    }
    Ok(if io.print(&out) { 0 } else { 1 })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dates() {
        assert_eq!(format_date(0, "%F %T"), "1970-01-01 00:00:00");
        assert_eq!(format_date(1700000000, "%Y%m%d-%H%M%S %a %b %j"), "20231114-221320 Tue Nov 318");
    }

    #[test]
    fn versions() {
        assert_eq!(version_cmp("1.10", "1.9"), std::cmp::Ordering::Greater);
        assert_eq!(version_cmp("v2", "v10"), std::cmp::Ordering::Less);
        assert_eq!(cut_list("1,3-4,6-"), Some(vec![(1, 1), (3, 4), (6, usize::MAX)]));
        assert_eq!(xargs_words("a 'b c'\n\"d\" e\\ f"), vec!["a", "b c", "d", "e f"]);
    }
}
