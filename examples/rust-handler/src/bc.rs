//! bc: the arithmetic CI scripts pipe into it (`echo "scale=2; $a/$b" |
//! bc`, `echo "$x > 80" | bc`): exact decimals with bc's scale rules,
//! variables, comparisons and && || !; not bc's functions or statements.

use std::collections::HashMap;

use crate::builtins::{inputs, opts_or_return};
use crate::{Io, Shell, Status};

/// A decimal: m / 10^s.
#[derive(Clone, Copy, Debug)]
struct Num {
    m: i128,
    s: u32,
}

const TOO_BIG: &str = "number too large (bc here holds about 38 digits)";

fn pow10(n: u32) -> Result<i128, String> {
    10i128.checked_pow(n).ok_or_else(|| TOO_BIG.to_string())
}

impl Num {
    fn int(v: i128) -> Num {
        Num { m: v, s: 0 }
    }

    /// m rescaled to s digits (truncating).
    fn at(self, s: u32) -> Result<i128, String> {
        if s >= self.s {
            self.m.checked_mul(pow10(s - self.s)?).ok_or_else(|| TOO_BIG.to_string())
        } else {
            Ok(self.m / pow10(self.s - s)?)
        }
    }

    fn trunc(self, s: u32) -> Result<Num, String> {
        if s >= self.s {
            Ok(self)
        } else {
            Ok(Num { m: self.at(s)?, s })
        }
    }

    fn cmp(self, o: Num) -> Result<std::cmp::Ordering, String> {
        let s = self.s.max(o.s);
        Ok(self.at(s)?.cmp(&o.at(s)?))
    }

    fn show(self) -> String {
        let neg = self.m < 0;
        let digits = self.m.unsigned_abs().to_string();
        let s = self.s as usize;
        let (int, frac) = if digits.len() > s {
            (digits[..digits.len() - s].to_string(), digits[digits.len() - s..].to_string())
        } else {
            (String::new(), format!("{:0>w$}", digits, w = s))
        };
        let int = if int.is_empty() && s == 0 { "0".to_string() } else { int };
        let mut out = String::new();
        if neg && self.m != 0 {
            out.push('-');
        }
        out.push_str(&int);
        if s > 0 {
            out.push('.');
            out.push_str(&frac);
        }
        out
    }
}

struct Bc {
    scale: u32,
    vars: HashMap<String, Num>,
}

struct P<'a> {
    cs: &'a [char],
    i: usize,
}

impl<'a> P<'a> {
    fn ws(&mut self) {
        while self.i < self.cs.len() && matches!(self.cs[self.i], ' ' | '\t') {
            self.i += 1;
        }
    }

    fn eat(&mut self, s: &str) -> bool {
        self.ws();
        let n = s.chars().count();
        if self.cs.len() >= self.i + n && self.cs[self.i..self.i + n].iter().copied().eq(s.chars()) {
            self.i += n;
            true
        } else {
            false
        }
    }

    fn name(&mut self) -> Option<String> {
        self.ws();
        let st = self.i;
        while self.i < self.cs.len() && (self.cs[self.i].is_ascii_lowercase() || self.cs[self.i] == '_' || (self.i > st && self.cs[self.i].is_ascii_digit())) {
            self.i += 1;
        }
        if self.i > st {
            Some(self.cs[st..self.i].iter().collect())
        } else {
            None
        }
    }
}

impl Bc {
    fn or(&mut self, p: &mut P) -> Result<Num, String> {
        let mut v = self.and(p)?;
        while p.eat("||") {
            let r = self.and(p)?;
            v = Num::int((v.m != 0 || r.m != 0) as i128);
        }
        Ok(v)
    }

    fn and(&mut self, p: &mut P) -> Result<Num, String> {
        let mut v = self.not(p)?;
        while p.eat("&&") {
            let r = self.not(p)?;
            v = Num::int((v.m != 0 && r.m != 0) as i128);
        }
        Ok(v)
    }

    fn not(&mut self, p: &mut P) -> Result<Num, String> {
        p.ws();
        if p.cs.get(p.i) == Some(&'!') && p.cs.get(p.i + 1) != Some(&'=') {
            p.i += 1;
            let v = self.not(p)?;
            return Ok(Num::int((v.m == 0) as i128));
        }
        self.rel(p)
    }

    fn rel(&mut self, p: &mut P) -> Result<Num, String> {
        let a = self.add(p)?;
        for op in ["<=", ">=", "==", "!=", "<", ">"] {
            if p.eat(op) {
                let b = self.add(p)?;
                let o = a.cmp(b)?;
                use std::cmp::Ordering::*;
                let r = match op {
                    "<=" => o != Greater,
                    ">=" => o != Less,
                    "==" => o == Equal,
                    "!=" => o != Equal,
                    "<" => o == Less,
                    _ => o == Greater,
                };
                return Ok(Num::int(r as i128));
            }
        }
        Ok(a)
    }

    fn add(&mut self, p: &mut P) -> Result<Num, String> {
        let mut a = self.mul(p)?;
        loop {
            let sub = if p.eat("+") {
                false
            } else if p.eat("-") {
                true
            } else {
                return Ok(a);
            };
            let b = self.mul(p)?;
            let s = a.s.max(b.s);
            let (x, y) = (a.at(s)?, b.at(s)?);
            let m = if sub { x.checked_sub(y) } else { x.checked_add(y) };
            a = Num { m: m.ok_or(TOO_BIG)?, s };
        }
    }

    fn mul(&mut self, p: &mut P) -> Result<Num, String> {
        let mut a = self.pow(p)?;
        loop {
            let op = if p.eat("*") {
                '*'
            } else if p.eat("/") {
                '/'
            } else if p.eat("%") {
                '%'
            } else {
                return Ok(a);
            };
            let b = self.pow(p)?;
            a = match op {
                '*' => {
                    let r = Num { m: a.m.checked_mul(b.m).ok_or(TOO_BIG)?, s: a.s + b.s };
                    r.trunc((a.s + b.s).min(self.scale.max(a.s).max(b.s)))?
                }
                _ => {
                    if b.m == 0 {
                        return Err("divide by zero".into());
                    }
                    let q = self.div(a, b)?;
                    if op == '/' {
                        q
                    } else {
                        // a - (a/b)*b, at the larger scale.
                        let s = (self.scale + b.s).max(a.s);
                        let qb = q.m.checked_mul(b.m).ok_or(TOO_BIG)?;
                        let prod = Num { m: qb, s: q.s + b.s };
                        Num { m: a.at(s)?.checked_sub(prod.at(s)?).ok_or(TOO_BIG)?, s }
                    }
                }
            };
        }
    }

    /// a / b to the current scale, truncated.
    fn div(&self, a: Num, b: Num) -> Result<Num, String> {
        let s = self.scale;
        // a.m * 10^(s + b.s - a.s) / b.m
        let shift = s as i64 + b.s as i64 - a.s as i64;
        let num = if shift >= 0 {
            a.m.checked_mul(pow10(shift as u32)?).ok_or(TOO_BIG)?
        } else {
            a.m / pow10((-shift) as u32)?
        };
        Ok(Num { m: num / b.m, s })
    }

    fn pow(&mut self, p: &mut P) -> Result<Num, String> {
        let a = self.unary(p)?;
        if p.eat("^") {
            let e = self.pow(p)?;
            if e.at(e.s)? != e.at(0)?.checked_mul(pow10(e.s)?).ok_or(TOO_BIG)? {
                return Err("non-zero scale in exponent".into());
            }
            let n = e.at(0)?;
            let mut r = Num::int(1);
            if n.unsigned_abs() > 1000 {
                return Err(TOO_BIG.into());
            }
            for _ in 0..n.unsigned_abs() {
                r = Num { m: r.m.checked_mul(a.m).ok_or(TOO_BIG)?, s: r.s + a.s };
            }
            r = r.trunc(r.s.min(self.scale.max(a.s)))?;
            if n < 0 {
                r = self.div(Num::int(1), r)?;
            }
            return Ok(r);
        }
        Ok(a)
    }

    fn unary(&mut self, p: &mut P) -> Result<Num, String> {
        if p.eat("-") {
            let v = self.unary(p)?;
            return Ok(Num { m: -v.m, s: v.s });
        }
        if p.eat("+") {
            return self.unary(p);
        }
        if p.eat("(") {
            let v = self.or(p)?;
            if !p.eat(")") {
                return Err("syntax error: missing )".into());
            }
            return Ok(v);
        }
        p.ws();
        let st = p.i;
        while p.i < p.cs.len() && (p.cs[p.i].is_ascii_digit() || p.cs[p.i] == '.') {
            p.i += 1;
        }
        if p.i > st {
            let t: String = p.cs[st..p.i].iter().collect();
            let (int, frac) = t.split_once('.').unwrap_or((&t, ""));
            if frac.contains('.') || frac.len() > 36 {
                return Err(format!("bad number {}", t));
            }
            let digits = format!("{}{}", int, frac);
            let m = if digits.is_empty() { 0 } else { digits.parse::<i128>().map_err(|_| TOO_BIG.to_string())? };
            return Ok(Num { m, s: frac.len() as u32 });
        }
        match p.name() {
            Some(n) if n == "scale" => Ok(Num::int(self.scale as i128)),
            Some(n) if p.cs.get(p.i) == Some(&'(') => Err(format!("{}(): functions are not supported here", n)),
            Some(n) => Ok(self.vars.get(&n).copied().unwrap_or(Num::int(0))),
            None => Err(format!("syntax error at '{}'", p.cs[p.i..].iter().collect::<String>().trim())),
        }
    }

    /// One statement: an assignment (quiet) or an expression (printed).
    fn statement(&mut self, text: &str, out: &mut String) -> Result<bool, String> {
        let t = text.trim();
        if t.is_empty() {
            return Ok(true);
        }
        if t == "quit" || t == "halt" {
            return Ok(false);
        }
        for kw in ["if", "while", "for", "define", "print", "read", "return", "auto", "ibase", "obase", "last"] {
            if t.starts_with(kw) && !t[kw.len()..].starts_with(|c: char| c.is_ascii_alphanumeric() || c == '_') {
                return Err(format!("{}: not supported here (bc here computes expressions and assignments)", kw));
            }
        }
        let cs: Vec<char> = t.chars().collect();
        let mut p = P { cs: &cs, i: 0 };
        if let Some(n) = p.name() {
            if p.eat("=") && !p.eat("=") {
                let v = self.or(&mut p)?;
                p.ws();
                if p.i != cs.len() {
                    return Err(format!("syntax error at '{}'", cs[p.i..].iter().collect::<String>()));
                }
                if n == "scale" {
                    self.scale = v.at(0)?.clamp(0, 30) as u32;
                } else {
                    self.vars.insert(n, v);
                }
                return Ok(true);
            }
        }
        p.i = 0;
        let v = self.or(&mut p)?;
        p.ws();
        if p.i != cs.len() {
            return Err(format!("syntax error at '{}'", cs[p.i..].iter().collect::<String>()));
        }
        out.push_str(&v.show());
        out.push('\n');
        Ok(true)
    }
}

/// bc [-l] [-q] [FILE...]: expressions from the files or standard input.
pub(crate) fn bc(sh: &mut Shell, args: &[String], io: &Io) -> Status {
    let o = opts_or_return!("bc", args, "lqsw", true, io);
    let mut status = 0;
    let mut bc = Bc {
        scale: if o.has('l') { 20 } else { 0 },
        vars: HashMap::new(),
    };
    let mut out = String::new();
    'inputs: for (_, data) in inputs(sh, "bc", &o.rest, io, &mut status) {
        let mut text = String::from_utf8_lossy(&data).into_owned();
        // Comments.
        while let Some(a) = text.find("/*") {
            let end = text[a..].find("*/").map(|e| a + e + 2).unwrap_or(text.len());
            text.replace_range(a..end, " ");
        }
        for line in text.lines() {
            let line = line.split('#').next().unwrap_or("");
            for st in line.split(';') {
                match bc.statement(st, &mut out) {
                    Ok(true) => {}
                    Ok(false) => break 'inputs,
                    Err(e) => {
                        io.print(&std::mem::take(&mut out));
                        io.error(&format!("(standard_in) 1: {}", e));
                        status = 1;
                    }
                }
            }
        }
    }
    io.print(&out);
    Ok(status)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn arithmetic() {
        let cases = [
            ("scale=2; 10/3", "3.33"),
            ("5 > 3", "1"),
            ("1.5 + 2.25", "3.75"),
            ("0.1 + 0.2", ".3"),
            ("-1/3", "0"),
            ("scale=3; -1/3", "-.333"),
            ("2^10", "1024"),
            ("1.5^2", "2.2"),
            ("scale=4; 1.5^2", "2.25"),
            ("7 % 3", "1"),
            ("x = 4; x * 2.5", "10.0"),
            ("(1 < 2) && !(3 == 4)", "1"),
            ("scale=2; 85.555 >= 85.5", "1"),
            ("12345678901234567890 * 10", "123456789012345678900"),
        ];
        for (src, want) in cases {
            let mut bc = Bc { scale: 0, vars: HashMap::new() };
            let mut out = String::new();
            for st in src.split(';') {
                bc.statement(st, &mut out).unwrap();
            }
            assert_eq!(out.trim_end(), want, "{}", src);
        }
    }
}
