//! Shell arithmetic (`$(( ))`, `(( ))`, `let`): 64-bit integers with C's
//! operators, variables by name, assignments. Nesting is bounded.

use crate::Shell;

const MAX_DEPTH: usize = 32;

#[derive(Debug, Clone, PartialEq)]
enum Tok {
    Num(i64),
    Name(String),
    Op(&'static str),
}

const OPS: &[&str] = &[
    "<<=", ">>=", "**", "++", "--", "<<", ">>", "<=", ">=", "==", "!=", "&&", "||", "+=", "-=", "*=", "/=",
    "%=", "&=", "|=", "^=", "+", "-", "*", "/", "%", "<", ">", "=", "!", "~", "&", "|", "^", "?", ":", "(",
    ")", ",",
];

fn lex(s: &str) -> Result<Vec<Tok>, String> {
    let cs: Vec<char> = s.chars().collect();
    let mut i = 0;
    let mut out = Vec::new();
    'outer: while i < cs.len() {
        let c = cs[i];
        if c.is_whitespace() {
            i += 1;
            continue;
        }
        if c.is_ascii_digit() {
            let st = i;
            while i < cs.len() && (cs[i].is_ascii_alphanumeric() || cs[i] == '#') {
                i += 1;
            }
            let t: String = cs[st..i].iter().collect();
            out.push(Tok::Num(number(&t)?));
            continue;
        }
        if c == '_' || c.is_ascii_alphabetic() {
            let st = i;
            while i < cs.len() && (cs[i] == '_' || cs[i].is_ascii_alphanumeric()) {
                i += 1;
            }
            out.push(Tok::Name(cs[st..i].iter().collect()));
            continue;
        }
        for op in OPS {
            if op.chars().enumerate().all(|(k, oc)| cs.get(i + k) == Some(&oc)) {
                out.push(Tok::Op(op));
                i += op.len();
                continue 'outer;
            }
        }
        let rest: String = cs[i..].iter().collect();
        return Err(format!("syntax error: invalid arithmetic operator (error token is \"{}\")", rest));
    }
    Ok(out)
}

fn number(t: &str) -> Result<i64, String> {
    let bad = || format!("{}: value too great for base (error token is \"{}\")", t, t);
    if let Some(h) = t.strip_prefix("0x").or_else(|| t.strip_prefix("0X")) {
        return i64::from_str_radix(h, 16).map_err(|_| bad());
    }
    if let Some((b, v)) = t.split_once('#') {
        let b: u32 = b.parse().map_err(|_| bad())?;
        if !(2..=36).contains(&b) {
            return Err(bad());
        }
        return i64::from_str_radix(v, b).map_err(|_| bad());
    }
    if t.len() > 1 && t.starts_with('0') {
        return i64::from_str_radix(&t[1..], 8).map_err(|_| bad());
    }
    t.parse().map_err(|_| bad())
}

struct P<'a> {
    sh: &'a mut Shell,
    toks: Vec<Tok>,
    i: usize,
    /// >0 inside a branch that is not taken: no assignments, no errors.
    skip: usize,
    depth: usize,
}

/// Evaluates an arithmetic expression.
pub(crate) fn eval(sh: &mut Shell, s: &str) -> Result<i64, String> {
    eval_depth(sh, s, 0)
}

fn eval_depth(sh: &mut Shell, s: &str, depth: usize) -> Result<i64, String> {
    let toks = lex(s)?;
    if toks.is_empty() {
        return Ok(0);
    }
    let mut p = P {
        sh,
        toks,
        i: 0,
        skip: 0,
        depth,
    };
    let v = p.comma()?;
    if p.i < p.toks.len() {
        return Err(format!("syntax error in expression (error token is \"{}\")", p.rest()));
    }
    Ok(v)
}

fn binprec(op: &str) -> Option<u8> {
    Some(match op {
        "||" => 1,
        "&&" => 2,
        "|" => 3,
        "^" => 4,
        "&" => 5,
        "==" | "!=" => 6,
        "<" | "<=" | ">" | ">=" => 7,
        "<<" | ">>" => 8,
        "+" | "-" => 9,
        "*" | "/" | "%" => 10,
        "**" => 11,
        _ => return None,
    })
}

impl<'a> P<'a> {
    fn rest(&self) -> String {
        self.toks[self.i..]
            .iter()
            .map(|t| match t {
                Tok::Num(n) => n.to_string(),
                Tok::Name(n) => n.clone(),
                Tok::Op(o) => o.to_string(),
            })
            .collect::<Vec<_>>()
            .join(" ")
    }

    fn peek_op(&self) -> Option<&'static str> {
        match self.toks.get(self.i) {
            Some(Tok::Op(o)) => Some(o),
            _ => None,
        }
    }

    fn enter(&mut self) -> Result<(), String> {
        self.depth += 1;
        if self.depth > MAX_DEPTH || !crate::stack_ok() {
            return Err("expression nested too deeply".into());
        }
        Ok(())
    }

    fn comma(&mut self) -> Result<i64, String> {
        let mut v = self.assign()?;
        while self.peek_op() == Some(",") {
            self.i += 1;
            v = self.assign()?;
        }
        Ok(v)
    }

    fn get(&mut self, name: &str) -> Result<i64, String> {
        let v = self.sh.var(name).unwrap_or_default();
        let t = v.trim();
        if t.is_empty() {
            return Ok(0);
        }
        if let Ok(n) = t.parse::<i64>() {
            return Ok(n);
        }
        if self.skip > 0 {
            return Ok(0);
        }
        eval_depth(self.sh, t, self.depth + 1)
    }

    fn set(&mut self, name: &str, v: i64) {
        if self.skip == 0 {
            let exported = self.sh.exported(name);
            self.sh.vars.insert(
                name.to_string(),
                crate::Var {
                    value: Some(v.to_string()),
                    exported,
                },
            );
        }
    }

    fn assign(&mut self) -> Result<i64, String> {
        self.enter()?;
        let r = self.assign_inner();
        self.depth -= 1;
        r
    }

    fn assign_inner(&mut self) -> Result<i64, String> {
        if let (Some(Tok::Name(n)), Some(Tok::Op(op))) = (self.toks.get(self.i).cloned(), self.toks.get(self.i + 1).cloned()) {
            if matches!(op, "=" | "+=" | "-=" | "*=" | "/=" | "%=" | "<<=" | ">>=" | "&=" | "|=" | "^=") {
                self.i += 2;
                let rhs = self.assign()?;
                let v = if op == "=" {
                    rhs
                } else {
                    let cur = self.get(&n)?;
                    self.apply(&op[..op.len() - 1], cur, rhs)?
                };
                self.set(&n, v);
                return Ok(v);
            }
        }
        self.ternary()
    }

    fn ternary(&mut self) -> Result<i64, String> {
        let c = self.binary(1)?;
        if self.peek_op() != Some("?") {
            return Ok(c);
        }
        self.i += 1;
        if c == 0 {
            self.skip += 1;
        }
        let a = self.assign()?;
        if c == 0 {
            self.skip -= 1;
        }
        if self.peek_op() != Some(":") {
            return Err("`:' expected for conditional expression".into());
        }
        self.i += 1;
        if c != 0 {
            self.skip += 1;
        }
        let b = self.assign()?;
        if c != 0 {
            self.skip -= 1;
        }
        Ok(if c != 0 { a } else { b })
    }

    fn binary(&mut self, min: u8) -> Result<i64, String> {
        let mut l = self.unary()?;
        while let Some(op) = self.peek_op() {
            let prec = match binprec(op) {
                Some(p) if p >= min => p,
                _ => break,
            };
            self.i += 1;
            let short = (op == "&&" && l == 0) || (op == "||" && l != 0);
            if short {
                self.skip += 1;
            }
            let next = if op == "**" { prec } else { prec + 1 };
            let r = self.binary(next);
            if short {
                self.skip -= 1;
            }
            let r = r?;
            l = match op {
                "&&" => ((l != 0) && (r != 0)) as i64,
                "||" => ((l != 0) || (r != 0)) as i64,
                _ => self.apply(op, l, r)?,
            };
        }
        Ok(l)
    }

    fn apply(&self, op: &str, l: i64, r: i64) -> Result<i64, String> {
        Ok(match op {
            "+" => l.wrapping_add(r),
            "-" => l.wrapping_sub(r),
            "*" => l.wrapping_mul(r),
            "/" | "%" => {
                if r == 0 {
                    if self.skip > 0 {
                        return Ok(0);
                    }
                    return Err("division by 0".into());
                }
                if op == "/" {
                    l.wrapping_div(r)
                } else {
                    l.wrapping_rem(r)
                }
            }
            "**" => {
                if r < 0 {
                    return Err("exponent less than 0".into());
                }
                let mut v: i64 = 1;
                for _ in 0..r.min(64) {
                    v = v.wrapping_mul(l);
                }
                v
            }
            "<<" => l.wrapping_shl(r as u32),
            ">>" => l.wrapping_shr(r as u32),
            "<" => (l < r) as i64,
            "<=" => (l <= r) as i64,
            ">" => (l > r) as i64,
            ">=" => (l >= r) as i64,
            "==" => (l == r) as i64,
            "!=" => (l != r) as i64,
            "&" => l & r,
            "|" => l | r,
            "^" => l ^ r,
            _ => return Err(format!("unknown operator {}", op)),
        })
    }

    fn unary(&mut self) -> Result<i64, String> {
        self.enter()?;
        let r = self.unary_inner();
        self.depth -= 1;
        r
    }

    fn unary_inner(&mut self) -> Result<i64, String> {
        match self.toks.get(self.i).cloned() {
            Some(Tok::Op(op @ ("++" | "--"))) => {
                self.i += 1;
                match self.toks.get(self.i).cloned() {
                    Some(Tok::Name(n)) => {
                        self.i += 1;
                        let v = self.get(&n)? + if op == "++" { 1 } else { -1 };
                        self.set(&n, v);
                        Ok(v)
                    }
                    _ => Err("syntax error: operand expected".into()),
                }
            }
            Some(Tok::Op("-")) => {
                self.i += 1;
                Ok(self.unary()?.wrapping_neg())
            }
            Some(Tok::Op("+")) => {
                self.i += 1;
                self.unary()
            }
            Some(Tok::Op("!")) => {
                self.i += 1;
                Ok((self.unary()? == 0) as i64)
            }
            Some(Tok::Op("~")) => {
                self.i += 1;
                Ok(!self.unary()?)
            }
            _ => self.postfix(),
        }
    }

    fn postfix(&mut self) -> Result<i64, String> {
        match self.toks.get(self.i).cloned() {
            Some(Tok::Num(n)) => {
                self.i += 1;
                Ok(n)
            }
            Some(Tok::Name(n)) => {
                self.i += 1;
                let v = self.get(&n)?;
                if let Some(op @ ("++" | "--")) = self.peek_op() {
                    self.i += 1;
                    self.set(&n, v + if op == "++" { 1 } else { -1 });
                }
                Ok(v)
            }
            Some(Tok::Op("(")) => {
                self.i += 1;
                let v = self.comma()?;
                if self.peek_op() != Some(")") {
                    return Err("missing `)'".into());
                }
                self.i += 1;
                Ok(v)
            }
            _ => {
                let rest = self.rest();
                if rest.is_empty() {
                    Err("syntax error: operand expected".into())
                } else {
                    Err(format!("syntax error: operand expected (error token is \"{}\")", rest))
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn expressions() {
        let mut sh = Shell::new();
        sh.vars.insert("x".into(), crate::Var { value: Some("5".into()), exported: false });
        for (e, want) in [
            ("1 + 2 * 3", 7),
            ("(1 + 2) * 3", 9),
            ("2 ** 10", 1024),
            ("x * 2", 10),
            ("x > 3 && x < 10", 1),
            ("0x1f + 010", 39),
            ("-x + 1", -4),
            ("7 % 3", 1),
            ("1 ? 2 : 3", 2),
            ("0 && 1/0", 0),
            ("y", 0),
            ("x += 2", 7),
            ("x++", 7),
            ("x", 8),
            ("--x", 7),
        ] {
            assert_eq!(eval(&mut sh, e), Ok(want), "{}", e);
        }
        assert!(eval(&mut sh, "1 / 0").unwrap_err().contains("division by 0"));
        assert!(eval(&mut sh, "1 +").is_err());
        assert!(eval(&mut sh, &"(".repeat(500)).unwrap_err().contains("too deeply"));
    }
}
