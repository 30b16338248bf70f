//! A subset of awk for the one-liners CI scripts use: `BEGIN`/`END`,
//! patterns (expressions, `/re/`), `print` (with `>`/`>>` to a file),
//! `printf`, `if`/`else`, `while`, `for (;;)`, `for (k in a)`, `next`,
//! `exit`, `delete`; fields (`$0`, `$N`, assignable), `NR`, `NF`, `FNR`,
//! `FS`, `OFS`, `ORS`, `FILENAME`; associative arrays, `in`; numbers and
//! strings with awk's comparisons; `length substr index split sub gsub
//! match toupper tolower sprintf int`, range patterns. No getline.
//! Parsing and evaluation are bounded in depth; loops by a step budget.

use std::collections::{BTreeMap, HashMap};
use std::fs;

use crate::regex::{Regex, Syntax};
use crate::{Flow, Io, Shell, Status};

const MAX_DEPTH: usize = 48;
const MAX_STEPS: u64 = 50_000_000;

#[derive(Debug, Clone, PartialEq)]
enum Tok {
    Num(f64),
    Str(String),
    Re(String),
    Name(String),
    Func(String),
    Op(&'static str),
    Newline,
    Eof,
}

const OPS: &[&str] = &[
    "&&", "||", "==", "!=", "<=", ">=", "!~", "++", "--", "+=", "-=", "*=", "/=", "%=", "^=", ">>", "{", "}", "(",
    ")", "[", "]", ";", ",", "+", "-", "*", "/", "%", "^", "!", "<", ">", "~", "?", ":", "=", "$",
];

const FUNCS: &[&str] = &[
    "length", "substr", "index", "split", "sub", "gsub", "match", "toupper", "tolower", "sprintf", "int",
];

fn lex(src: &str) -> Result<Vec<Tok>, String> {
    let cs: Vec<char> = src.chars().collect();
    let mut out: Vec<Tok> = Vec::new();
    let mut i = 0;
    'outer: while i < cs.len() {
        let c = cs[i];
        if c == ' ' || c == '\t' || c == '\r' {
            i += 1;
            continue;
        }
        if c == '\\' && cs.get(i + 1) == Some(&'\n') {
            i += 2;
            continue;
        }
        if c == '#' {
            while i < cs.len() && cs[i] != '\n' {
                i += 1;
            }
            continue;
        }
        if c == '\n' {
            out.push(Tok::Newline);
            i += 1;
            continue;
        }
        if c.is_ascii_digit() || (c == '.' && cs.get(i + 1).map(|d| d.is_ascii_digit()).unwrap_or(false)) {
            let s = i;
            while i < cs.len() && (cs[i].is_ascii_alphanumeric() || cs[i] == '.') {
                if (cs[i] == 'e' || cs[i] == 'E') && matches!(cs.get(i + 1), Some('+') | Some('-')) {
                    i += 1;
                }
                i += 1;
            }
            let t: String = cs[s..i].iter().collect();
            let v = if let Some(h) = t.strip_prefix("0x") {
                i64::from_str_radix(h, 16).map(|v| v as f64).ok()
            } else {
                t.parse::<f64>().ok()
            };
            out.push(Tok::Num(v.ok_or(format!("invalid number {}", t))?));
            continue;
        }
        if c == '_' || c.is_ascii_alphabetic() {
            let s = i;
            while i < cs.len() && (cs[i] == '_' || cs[i].is_ascii_alphanumeric()) {
                i += 1;
            }
            let w: String = cs[s..i].iter().collect();
            if FUNCS.contains(&w.as_str()) {
                out.push(Tok::Func(w));
            } else {
                out.push(Tok::Name(w));
            }
            continue;
        }
        if c == '"' {
            i += 1;
            let mut s = String::new();
            while i < cs.len() && cs[i] != '"' {
                if cs[i] == '\\' && i + 1 < cs.len() {
                    i += 1;
                    match cs[i] {
                        'n' => s.push('\n'),
                        't' => s.push('\t'),
                        'r' => s.push('\r'),
                        '\\' => s.push('\\'),
                        '"' => s.push('"'),
                        '/' => s.push('/'),
                        c => {
                            s.push('\\');
                            s.push(c);
                        }
                    }
                } else {
                    s.push(cs[i]);
                }
                i += 1;
            }
            if i >= cs.len() {
                return Err("unterminated string".into());
            }
            i += 1;
            out.push(Tok::Str(s));
            continue;
        }
        if c == '/' {
            // A regex where an operand cannot end: not after a value.
            let after_value = matches!(
                out.last(),
                Some(Tok::Num(_)) | Some(Tok::Str(_)) | Some(Tok::Name(_)) | Some(Tok::Op(")")) | Some(Tok::Op("]"))
                    | Some(Tok::Op("$")) | Some(Tok::Op("++")) | Some(Tok::Op("--"))
            );
            if !after_value {
                i += 1;
                let mut s = String::new();
                let mut in_class = false;
                while i < cs.len() && (cs[i] != '/' || in_class) {
                    if cs[i] == '\\' && i + 1 < cs.len() {
                        if cs[i + 1] != '/' {
                            s.push('\\');
                        }
                        s.push(cs[i + 1]);
                        i += 2;
                        continue;
                    }
                    if cs[i] == '[' {
                        in_class = true;
                    } else if cs[i] == ']' {
                        in_class = false;
                    }
                    s.push(cs[i]);
                    i += 1;
                }
                if i >= cs.len() {
                    return Err("unterminated regular expression".into());
                }
                i += 1;
                out.push(Tok::Re(s));
                continue;
            }
        }
        for op in OPS {
            if op.chars().enumerate().all(|(k, oc)| cs.get(i + k) == Some(&oc)) {
                out.push(Tok::Op(op));
                i += op.len();
                continue 'outer;
            }
        }
        return Err(format!("syntax error at source text `{}'", c));
    }
    out.push(Tok::Eof);
    Ok(out)
}

#[derive(Debug, Clone)]
enum Expr {
    Num(f64),
    Str(String),
    Re(usize),
    Var(String),
    Field(Box<Expr>),
    Index(String, Vec<Expr>),
    In(Vec<Expr>, String),
    Assign(Box<Expr>, Option<&'static str>, Box<Expr>),
    Incr(Box<Expr>, bool, f64),
    Unary(&'static str, Box<Expr>),
    Bin(&'static str, Box<Expr>, Box<Expr>),
    Match(bool, Box<Expr>, Box<Expr>),
    Concat(Box<Expr>, Box<Expr>),
    Cond(Box<Expr>, Box<Expr>, Box<Expr>),
    Call(String, Vec<Expr>),
}

#[derive(Debug, Clone)]
enum Stmt {
    Print(Vec<Expr>, Option<(bool, Expr)>),
    Printf(Vec<Expr>, Option<(bool, Expr)>),
    Expr(Expr),
    If(Expr, Box<Stmt>, Option<Box<Stmt>>),
    While(Expr, Box<Stmt>),
    For(Option<Box<Stmt>>, Option<Expr>, Option<Box<Stmt>>, Box<Stmt>),
    ForIn(String, String, Box<Stmt>),
    Block(Vec<Stmt>),
    Next,
    Exit(Option<Expr>),
    Delete(String, Option<Vec<Expr>>),
}

enum Pattern {
    Begin,
    End,
    All,
    Expr(Expr),
    /// `A, B`: from a record matching A through one matching B; the
    /// bool says whether a range is open.
    Range(Expr, Expr, std::cell::Cell<bool>),
}

struct Parser {
    toks: Vec<Tok>,
    i: usize,
    depth: usize,
    regexes: Vec<String>,
    /// > 0 inside parentheses: `>` compares there, else it redirects print.
    no_redirect: usize,
    /// > 0 where `in` is not an operator (the head of for (k in a)).
    no_in: usize,
}

impl Parser {
    fn peek(&self) -> &Tok {
        &self.toks[self.i]
    }

    fn next(&mut self) -> Tok {
        let t = self.toks[self.i].clone();
        if self.i + 1 < self.toks.len() {
            self.i += 1;
        }
        t
    }

    fn is_op(&self, o: &str) -> bool {
        matches!(self.peek(), Tok::Op(x) if *x == o)
    }

    fn expect(&mut self, o: &str) -> Result<(), String> {
        if self.is_op(o) {
            self.next();
            Ok(())
        } else {
            Err(format!("syntax error: expected `{}' near {:?}", o, self.peek()))
        }
    }

    fn nl(&mut self) {
        while *self.peek() == Tok::Newline {
            self.next();
        }
    }

    fn enter(&mut self) -> Result<(), String> {
        self.depth += 1;
        if self.depth > MAX_DEPTH || !crate::stack_ok() {
            return Err("program nested too deeply".into());
        }
        Ok(())
    }

    fn program(&mut self) -> Result<Vec<(Pattern, Option<Stmt>)>, String> {
        let mut items = Vec::new();
        loop {
            while matches!(self.peek(), Tok::Newline | Tok::Op(";")) {
                self.next();
            }
            if *self.peek() == Tok::Eof {
                return Ok(items);
            }
            let pat = match self.peek().clone() {
                Tok::Name(n) if n == "BEGIN" => {
                    self.next();
                    Pattern::Begin
                }
                Tok::Name(n) if n == "END" => {
                    self.next();
                    Pattern::End
                }
                Tok::Op("{") => Pattern::All,
                _ => {
                    let e = self.expr()?;
                    if self.is_op(",") {
                        self.next();
                        while *self.peek() == Tok::Newline {
                            self.next();
                        }
                        Pattern::Range(e, self.expr()?, std::cell::Cell::new(false))
                    } else {
                        Pattern::Expr(e)
                    }
                }
            };
            let action = if self.is_op("{") { Some(self.block()?) } else { None };
            if action.is_none() && matches!(pat, Pattern::Begin | Pattern::End) {
                return Err("BEGIN and END need an action".into());
            }
            items.push((pat, action));
        }
    }

    fn block(&mut self) -> Result<Stmt, String> {
        self.enter()?;
        self.expect("{")?;
        let mut v = Vec::new();
        loop {
            while matches!(self.peek(), Tok::Newline | Tok::Op(";")) {
                self.next();
            }
            if self.is_op("}") {
                self.next();
                break;
            }
            if *self.peek() == Tok::Eof {
                return Err("syntax error: missing `}'".into());
            }
            v.push(self.stmt()?);
        }
        self.depth -= 1;
        Ok(Stmt::Block(v))
    }

    fn simple_or_block(&mut self) -> Result<Stmt, String> {
        self.nl();
        if self.is_op("{") {
            self.block()
        } else {
            self.stmt()
        }
    }

    fn end_stmt(&mut self) {
        if matches!(self.peek(), Tok::Newline | Tok::Op(";")) {
            self.next();
        }
    }

    fn stmt(&mut self) -> Result<Stmt, String> {
        self.enter()?;
        let s = self.stmt_inner();
        self.depth -= 1;
        s
    }

    fn stmt_inner(&mut self) -> Result<Stmt, String> {
        if self.is_op("{") {
            return self.block();
        }
        let name = match self.peek() {
            Tok::Name(n) => n.clone(),
            _ => String::new(),
        };
        match name.as_str() {
            "print" | "printf" => {
                self.next();
                self.no_redirect = 0;
                let mut args = Vec::new();
                let paren = self.is_op("(");
                if !matches!(self.peek(), Tok::Newline | Tok::Op(";") | Tok::Op("}") | Tok::Op(">") | Tok::Op(">>") | Tok::Eof) {
                    args.push(self.expr()?);
                    while self.is_op(",") {
                        self.next();
                        self.nl();
                        args.push(self.expr()?);
                    }
                }
                // print (a, b): the parenthesised list.
                if paren && args.len() == 1 {
                    if let Expr::Call(ref n, ref a) = args[0] {
                        if n == "(list)" {
                            args = a.clone();
                        }
                    }
                }
                let redirect = if self.is_op(">") || self.is_op(">>") {
                    let append = self.is_op(">>");
                    self.next();
                    Some((append, self.concat_expr()?))
                } else {
                    None
                };
                self.end_stmt();
                Ok(if name == "print" { Stmt::Print(args, redirect) } else { Stmt::Printf(args, redirect) })
            }
            "if" => {
                self.next();
                self.expect("(")?;
                let c = self.expr()?;
                self.expect(")")?;
                let then = self.simple_or_block()?;
                let save = self.i;
                while matches!(self.peek(), Tok::Newline | Tok::Op(";")) {
                    self.next();
                }
                let els = if matches!(self.peek(), Tok::Name(n) if n == "else") {
                    self.next();
                    Some(Box::new(self.simple_or_block()?))
                } else {
                    self.i = save;
                    None
                };
                Ok(Stmt::If(c, Box::new(then), els))
            }
            "while" => {
                self.next();
                self.expect("(")?;
                let c = self.expr()?;
                self.expect(")")?;
                Ok(Stmt::While(c, Box::new(self.simple_or_block()?)))
            }
            "for" => {
                self.next();
                self.expect("(")?;
                // for (k in a)
                if let (Tok::Name(k), Tok::Name(inw), Tok::Name(a), Tok::Op(")")) = (
                    self.toks[self.i].clone(),
                    self.toks.get(self.i + 1).cloned().unwrap_or(Tok::Eof),
                    self.toks.get(self.i + 2).cloned().unwrap_or(Tok::Eof),
                    self.toks.get(self.i + 3).cloned().unwrap_or(Tok::Eof),
                ) {
                    if inw == "in" {
                        self.i += 4;
                        return Ok(Stmt::ForIn(k, a, Box::new(self.simple_or_block()?)));
                    }
                }
                let init = if self.is_op(";") { None } else { Some(Box::new(Stmt::Expr(self.expr()?))) };
                self.expect(";")?;
                self.nl();
                let cond = if self.is_op(";") { None } else { Some(self.expr()?) };
                self.expect(";")?;
                self.nl();
                let incr = if self.is_op(")") { None } else { Some(Box::new(Stmt::Expr(self.expr()?))) };
                self.expect(")")?;
                Ok(Stmt::For(init, cond, incr, Box::new(self.simple_or_block()?)))
            }
            "next" => {
                self.next();
                self.end_stmt();
                Ok(Stmt::Next)
            }
            "exit" => {
                self.next();
                let e = if matches!(self.peek(), Tok::Newline | Tok::Op(";") | Tok::Op("}") | Tok::Eof) {
                    None
                } else {
                    Some(self.expr()?)
                };
                self.end_stmt();
                Ok(Stmt::Exit(e))
            }
            "delete" => {
                self.next();
                let a = match self.next() {
                    Tok::Name(a) => a,
                    t => return Err(format!("syntax error near {:?}", t)),
                };
                let idx = if self.is_op("[") {
                    self.next();
                    let mut v = vec![self.expr()?];
                    while self.is_op(",") {
                        self.next();
                        v.push(self.expr()?);
                    }
                    self.expect("]")?;
                    Some(v)
                } else {
                    None
                };
                self.end_stmt();
                Ok(Stmt::Delete(a, idx))
            }
            _ => {
                let e = self.expr()?;
                self.end_stmt();
                Ok(Stmt::Expr(e))
            }
        }
    }

    fn expr(&mut self) -> Result<Expr, String> {
        self.enter()?;
        let r = self.ternary();
        self.depth -= 1;
        r
    }

    fn ternary(&mut self) -> Result<Expr, String> {
        let c = self.or()?;
        if self.is_op("?") {
            self.next();
            self.nl();
            let a = self.expr()?;
            self.nl();
            self.expect(":")?;
            self.nl();
            let b = self.expr()?;
            return Ok(Expr::Cond(Box::new(c), Box::new(a), Box::new(b)));
        }
        if let Some(op) = ["=", "+=", "-=", "*=", "/=", "%=", "^="].iter().find(|o| self.is_op(o)) {
            if matches!(c, Expr::Var(_) | Expr::Field(_) | Expr::Index(..)) {
                self.next();
                self.nl();
                let rhs = self.expr()?;
                let bin = match *op {
                    "=" => None,
                    "+=" => Some("+"),
                    "-=" => Some("-"),
                    "*=" => Some("*"),
                    "/=" => Some("/"),
                    "%=" => Some("%"),
                    _ => Some("^"),
                };
                return Ok(Expr::Assign(Box::new(c), bin, Box::new(rhs)));
            }
        }
        Ok(c)
    }

    fn or(&mut self) -> Result<Expr, String> {
        let mut l = self.and()?;
        while self.is_op("||") {
            self.next();
            self.nl();
            l = Expr::Bin("||", Box::new(l), Box::new(self.and()?));
        }
        Ok(l)
    }

    fn and(&mut self) -> Result<Expr, String> {
        let mut l = self.in_()?;
        while self.is_op("&&") {
            self.next();
            self.nl();
            l = Expr::Bin("&&", Box::new(l), Box::new(self.in_()?));
        }
        Ok(l)
    }

    fn in_(&mut self) -> Result<Expr, String> {
        let mut l = self.matching()?;
        while self.no_in == 0 && matches!(self.peek(), Tok::Name(n) if n == "in") {
            self.next();
            let a = match self.next() {
                Tok::Name(a) => a,
                t => return Err(format!("syntax error near {:?}", t)),
            };
            l = Expr::In(vec![l], a);
        }
        Ok(l)
    }

    fn matching(&mut self) -> Result<Expr, String> {
        let mut l = self.comparison()?;
        while self.is_op("~") || self.is_op("!~") {
            let neg = self.is_op("!~");
            self.next();
            l = Expr::Match(neg, Box::new(l), Box::new(self.comparison()?));
        }
        Ok(l)
    }

    fn comparison(&mut self) -> Result<Expr, String> {
        let l = self.concat_expr()?;
        for op in ["<", "<=", "==", "!=", ">=", ">"] {
            if self.is_op(op) && !(op == ">" && self.no_redirect == 0 && self.in_print()) {
                self.next();
                let r = self.concat_expr()?;
                let op: &'static str = match op {
                    "<" => "<",
                    "<=" => "<=",
                    "==" => "==",
                    "!=" => "!=",
                    ">=" => ">=",
                    _ => ">",
                };
                return Ok(Expr::Bin(op, Box::new(l), Box::new(r)));
            }
        }
        Ok(l)
    }

    /// Whether the statement being parsed is a print (where a bare `>`
    /// redirects).
    fn in_print(&self) -> bool {
        let mut k = self.i;
        while k > 0 {
            k -= 1;
            match &self.toks[k] {
                Tok::Name(n) if n == "print" || n == "printf" => return true,
                Tok::Newline | Tok::Op(";") | Tok::Op("{") | Tok::Op("}") => return false,
                _ => {}
            }
        }
        false
    }

    fn starts_operand(&self) -> bool {
        match self.peek() {
            Tok::Num(_) | Tok::Str(_) | Tok::Func(_) | Tok::Re(_) => true,
            Tok::Name(n) => n != "in" && n != "getline",
            Tok::Op(o) => matches!(*o, "$" | "(" | "!" | "++" | "--" | "-" | "+"),
            _ => false,
        }
    }

    fn concat_expr(&mut self) -> Result<Expr, String> {
        let mut l = self.additive()?;
        while self.starts_operand() && !self.is_op("-") && !self.is_op("+") && !self.is_op("!") {
            let r = self.additive()?;
            l = Expr::Concat(Box::new(l), Box::new(r));
        }
        Ok(l)
    }

    fn additive(&mut self) -> Result<Expr, String> {
        let mut l = self.mult()?;
        while self.is_op("+") || self.is_op("-") {
            let op = if self.is_op("+") { "+" } else { "-" };
            self.next();
            l = Expr::Bin(op, Box::new(l), Box::new(self.mult()?));
        }
        Ok(l)
    }

    fn mult(&mut self) -> Result<Expr, String> {
        let mut l = self.unary()?;
        while self.is_op("*") || self.is_op("/") || self.is_op("%") {
            let op = if self.is_op("*") {
                "*"
            } else if self.is_op("/") {
                "/"
            } else {
                "%"
            };
            self.next();
            l = Expr::Bin(op, Box::new(l), Box::new(self.unary()?));
        }
        Ok(l)
    }

    fn unary(&mut self) -> Result<Expr, String> {
        self.enter()?;
        let r = if self.is_op("!") {
            self.next();
            self.unary().map(|e| Expr::Unary("!", Box::new(e)))
        } else if self.is_op("-") {
            self.next();
            self.unary().map(|e| Expr::Unary("-", Box::new(e)))
        } else if self.is_op("+") {
            self.next();
            self.unary().map(|e| Expr::Unary("+", Box::new(e)))
        } else {
            self.power()
        };
        self.depth -= 1;
        r
    }

    fn power(&mut self) -> Result<Expr, String> {
        let b = self.postfix()?;
        if self.is_op("^") {
            self.next();
            let e = self.unary()?;
            return Ok(Expr::Bin("^", Box::new(b), Box::new(e)));
        }
        Ok(b)
    }

    fn postfix(&mut self) -> Result<Expr, String> {
        if self.is_op("++") || self.is_op("--") {
            let d = if self.is_op("++") { 1.0 } else { -1.0 };
            self.next();
            let e = self.postfix()?;
            return Ok(Expr::Incr(Box::new(e), true, d));
        }
        let e = self.primary()?;
        if matches!(e, Expr::Var(_) | Expr::Field(_) | Expr::Index(..)) && (self.is_op("++") || self.is_op("--")) {
            let d = if self.is_op("++") { 1.0 } else { -1.0 };
            self.next();
            return Ok(Expr::Incr(Box::new(e), false, d));
        }
        Ok(e)
    }

    fn primary(&mut self) -> Result<Expr, String> {
        self.enter()?;
        let r = self.primary_inner();
        self.depth -= 1;
        r
    }

    fn primary_inner(&mut self) -> Result<Expr, String> {
        match self.next() {
            Tok::Num(n) => Ok(Expr::Num(n)),
            Tok::Str(s) => Ok(Expr::Str(s)),
            Tok::Re(r) => {
                self.regexes.push(r);
                Ok(Expr::Re(self.regexes.len() - 1))
            }
            Tok::Op("$") => {
                let e = if self.is_op("++") || self.is_op("--") || self.is_op("-") {
                    self.unary()?
                } else {
                    self.primary()?
                };
                Ok(Expr::Field(Box::new(e)))
            }
            Tok::Op("(") => {
                self.no_redirect += 1;
                self.no_in += 0;
                let first = self.expr()?;
                let mut list = vec![first];
                while self.is_op(",") {
                    self.next();
                    list.push(self.expr()?);
                }
                self.expect(")")?;
                self.no_redirect -= 1;
                if list.len() > 1 {
                    // (a, b) in arr, or print (a, b)
                    if matches!(self.peek(), Tok::Name(n) if n == "in") {
                        self.next();
                        let a = match self.next() {
                            Tok::Name(a) => a,
                            t => return Err(format!("syntax error near {:?}", t)),
                        };
                        return Ok(Expr::In(list, a));
                    }
                    return Ok(Expr::Call("(list)".into(), list));
                }
                Ok(list.pop().unwrap())
            }
            Tok::Func(f) => {
                let mut args = Vec::new();
                if self.is_op("(") {
                    self.next();
                    self.no_redirect += 1;
                    if !self.is_op(")") {
                        args.push(self.expr()?);
                        while self.is_op(",") {
                            self.next();
                            args.push(self.expr()?);
                        }
                    }
                    self.expect(")")?;
                    self.no_redirect -= 1;
                } else if f != "length" {
                    return Err(format!("syntax error: {} needs arguments", f));
                }
                Ok(Expr::Call(f, args))
            }
            Tok::Name(n) if n == "getline" => Err("getline is not supported here".into()),
            Tok::Name(n) => {
                if self.is_op("[") {
                    self.next();
                    let mut idx = vec![self.expr()?];
                    while self.is_op(",") {
                        self.next();
                        idx.push(self.expr()?);
                    }
                    self.expect("]")?;
                    return Ok(Expr::Index(n, idx));
                }
                Ok(Expr::Var(n))
            }
            t => Err(format!("syntax error near {:?}", t)),
        }
    }
}

/// A value: awk's numbers, strings, and strings from input that compare
/// as numbers when they look like numbers.
#[derive(Debug, Clone)]
enum Val {
    Num(f64),
    Str(String),
    StrNum(String),
}

/// The leading number of s (as strtod).
fn to_num(s: &str) -> f64 {
    let t = s.trim_start();
    let b = t.as_bytes();
    let mut i = 0;
    if i < b.len() && (b[i] == b'+' || b[i] == b'-') {
        i += 1;
    }
    let ds = i;
    while i < b.len() && b[i].is_ascii_digit() {
        i += 1;
    }
    if i < b.len() && b[i] == b'.' {
        i += 1;
        while i < b.len() && b[i].is_ascii_digit() {
            i += 1;
        }
    }
    if i == ds {
        return 0.0;
    }
    if i < b.len() && (b[i] == b'e' || b[i] == b'E') {
        let mut k = i + 1;
        if k < b.len() && (b[k] == b'+' || b[k] == b'-') {
            k += 1;
        }
        if k < b.len() && b[k].is_ascii_digit() {
            while k < b.len() && b[k].is_ascii_digit() {
                k += 1;
            }
            i = k;
        }
    }
    t[..i].parse().unwrap_or(0.0)
}

fn looks_numeric(s: &str) -> bool {
    let t = s.trim();
    !t.is_empty() && t.parse::<f64>().is_ok() && !t.eq_ignore_ascii_case("nan") && !t.to_ascii_lowercase().contains("inf")
}

/// %.6g, as awk prints numbers that are not integers.
fn fmt_num(v: f64) -> String {
    if v == v.trunc() && v.abs() < 1e16 {
        return format!("{}", v as i64);
    }
    fmt_g(v, 6)
}

pub(crate) fn fmt_g(v: f64, prec: usize) -> String {
    if v == 0.0 {
        return "0".into();
    }
    if !v.is_finite() {
        return if v.is_nan() { "nan".into() } else if v > 0.0 { "inf".into() } else { "-inf".into() };
    }
    let prec = prec.max(1);
    let exp = v.abs().log10().floor() as i32;
    let trim = |s: String| -> String {
        if s.contains('.') {
            s.trim_end_matches('0').trim_end_matches('.').to_string()
        } else {
            s
        }
    };
    if exp < -4 || exp >= prec as i32 {
        let s = format!("{:.*e}", prec - 1, v);
        let (m, e) = s.split_once('e').unwrap_or((&s, "0"));
        let e: i32 = e.parse().unwrap_or(0);
        format!("{}e{}{:02}", trim(m.to_string()), if e < 0 { '-' } else { '+' }, e.abs())
    } else {
        trim(format!("{:.*}", (prec as i32 - 1 - exp).max(0) as usize, v))
    }
}

impl Val {
    fn num(&self) -> f64 {
        match self {
            Val::Num(n) => *n,
            Val::Str(s) | Val::StrNum(s) => to_num(s),
        }
    }

    fn str(&self) -> String {
        match self {
            Val::Num(n) => fmt_num(*n),
            Val::Str(s) | Val::StrNum(s) => s.clone(),
        }
    }

    fn truthy(&self) -> bool {
        match self {
            Val::Num(n) => *n != 0.0,
            Val::Str(s) => !s.is_empty(),
            Val::StrNum(s) => {
                if looks_numeric(s) {
                    to_num(s) != 0.0
                } else {
                    !s.is_empty()
                }
            }
        }
    }

    fn numeric(&self) -> bool {
        match self {
            Val::Num(_) => true,
            Val::Str(_) => false,
            Val::StrNum(s) => looks_numeric(s),
        }
    }
}

enum Jump {
    Next,
    Exit(i32),
}

struct Awk<'a> {
    vars: HashMap<String, Val>,
    arrays: HashMap<String, BTreeMap<String, Val>>,
    fields: Vec<String>,
    record: String,
    nf: usize,
    regexes: Vec<Regex>,
    cache: HashMap<String, std::rc::Rc<Regex>>,
    out: String,
    files: Vec<(String, String, bool)>,
    steps: u64,
    depth: usize,
    io: &'a Io,
}

type R<T> = Result<T, Result<Jump, String>>;

fn err<T>(msg: String) -> R<T> {
    Err(Err(msg))
}

impl<'a> Awk<'a> {
    fn var(&self, n: &str) -> Val {
        match n {
            "NF" => Val::Num(self.nf as f64),
            _ => self.vars.get(n).cloned().unwrap_or(Val::Str(String::new())),
        }
    }

    fn fs(&self) -> String {
        self.var("FS").str()
    }

    fn set_record(&mut self, rec: String) -> Result<(), String> {
        self.record = rec;
        self.split_record()
    }

    fn split_record(&mut self) -> Result<(), String> {
        let fs = self.fs();
        self.fields = split_fields(&self.record, &fs, &mut self.cache)?;
        self.nf = self.fields.len();
        Ok(())
    }

    fn rebuild(&mut self) {
        self.fields.resize(self.nf, String::new());
        let ofs = self.var("OFS").str();
        self.record = self.fields.join(&ofs);
    }

    fn field(&self, i: usize) -> Val {
        if i == 0 {
            Val::StrNum(self.record.clone())
        } else {
            Val::StrNum(self.fields.get(i - 1).cloned().unwrap_or_default())
        }
    }

    fn regex(&mut self, src: &str) -> Result<std::rc::Rc<Regex>, String> {
        if let Some(r) = self.cache.get(src) {
            return Ok(r.clone());
        }
        let r = std::rc::Rc::new(Regex::new(src, Syntax::Extended, false)?);
        if self.cache.len() > 256 {
            self.cache.clear();
        }
        self.cache.insert(src.to_string(), r.clone());
        Ok(r)
    }

    /// The regex an expression stands for in ~, sub, split...
    fn regex_of(&mut self, e: &Expr) -> R<std::rc::Rc<Regex>> {
        if let Expr::Re(k) = e {
            let src = self.regex_src(*k);
            return self.regex(&src).map_err(Err);
        }
        let s = self.eval(e)?.str();
        self.regex(&s).map_err(Err)
    }

    fn regex_src(&self, k: usize) -> String {
        // Compiled ones are in self.regexes; keep the source in the cache key.
        REGEX_SRC.with(|r| r.borrow().get(k).cloned().unwrap_or_default())
    }

    fn key(&mut self, idx: &[Expr]) -> R<String> {
        let mut parts = Vec::new();
        for e in idx {
            parts.push(self.eval(e)?.str());
        }
        let subsep = self.vars.get("SUBSEP").map(|v| v.str()).unwrap_or_else(|| "\u{1c}".into());
        Ok(parts.join(&subsep))
    }

    fn assign(&mut self, target: &Expr, v: Val) -> R<()> {
        match target {
            Expr::Var(n) => {
                if n == "NF" {
                    self.nf = v.num().max(0.0) as usize;
                    self.rebuild();
                } else {
                    self.vars.insert(n.clone(), v);
                }
            }
            Expr::Field(e) => {
                let i = self.eval(e)?.num();
                if i < 0.0 {
                    return err("trying to access out of range field".into());
                }
                let i = i as usize;
                if i > 100_000 {
                    return err("field index too large".into());
                }
                if i == 0 {
                    self.set_record(v.str()).map_err(Err)?;
                } else {
                    if i > self.fields.len() {
                        self.fields.resize(i, String::new());
                    }
                    self.fields[i - 1] = v.str();
                    self.nf = self.nf.max(i);
                    self.rebuild();
                }
            }
            Expr::Index(a, idx) => {
                let k = self.key(idx)?;
                self.arrays.entry(a.clone()).or_default().insert(k, v);
            }
            _ => return err("assignment to a non-variable".into()),
        }
        Ok(())
    }

    fn eval(&mut self, e: &Expr) -> R<Val> {
        self.steps += 1;
        if self.steps > MAX_STEPS {
            return err("too many steps (the program runs at most 50 million)".into());
        }
        self.depth += 1;
        if self.depth > MAX_DEPTH * 4 || !crate::stack_ok() {
            return err("expression nested too deeply".into());
        }
        let r = self.eval_inner(e);
        self.depth -= 1;
        r
    }

    fn eval_inner(&mut self, e: &Expr) -> R<Val> {
        Ok(match e {
            Expr::Num(n) => Val::Num(*n),
            Expr::Str(s) => Val::Str(s.clone()),
            Expr::Re(k) => {
                let rec: Vec<char> = self.record.chars().collect();
                Val::Num(self.regexes[*k].is_match(&rec) as i32 as f64)
            }
            Expr::Var(n) => self.var(n),
            Expr::Field(i) => {
                let i = self.eval(i)?.num();
                if i < 0.0 {
                    return err("trying to access out of range field".into());
                }
                self.field(i as usize)
            }
            Expr::Index(a, idx) => {
                let k = self.key(idx)?;
                let arr = self.arrays.entry(a.clone()).or_default();
                arr.entry(k).or_insert(Val::Str(String::new())).clone()
            }
            Expr::In(idx, a) => {
                let k = self.key(idx)?;
                Val::Num(self.arrays.get(a).map(|m| m.contains_key(&k)).unwrap_or(false) as i32 as f64)
            }
            Expr::Assign(t, op, rhs) => {
                let r = self.eval(rhs)?;
                let v = match op {
                    None => match r {
                        Val::Num(n) => Val::Num(n),
                        other => other,
                    },
                    Some(op) => {
                        let cur = self.eval(t)?.num();
                        Val::Num(arith(op, cur, r.num()).map_err(Err)?)
                    }
                };
                self.assign(t, v.clone())?;
                v
            }
            Expr::Incr(t, pre, d) => {
                let cur = self.eval(t)?.num();
                self.assign(t, Val::Num(cur + d))?;
                Val::Num(if *pre { cur + d } else { cur })
            }
            Expr::Unary(op, x) => {
                let v = self.eval(x)?;
                match *op {
                    "!" => Val::Num(!v.truthy() as i32 as f64),
                    "-" => Val::Num(-v.num()),
                    _ => Val::Num(v.num()),
                }
            }
            Expr::Bin("&&", a, b) => Val::Num((self.eval(a)?.truthy() && self.eval(b)?.truthy()) as i32 as f64),
            Expr::Bin("||", a, b) => Val::Num((self.eval(a)?.truthy() || self.eval(b)?.truthy()) as i32 as f64),
            Expr::Bin(op, a, b) => {
                let (x, y) = (self.eval(a)?, self.eval(b)?);
                match *op {
                    "<" | "<=" | ">" | ">=" | "==" | "!=" => {
                        let ord = if x.numeric() && y.numeric() {
                            x.num().partial_cmp(&y.num()).unwrap_or(std::cmp::Ordering::Equal)
                        } else {
                            x.str().cmp(&y.str())
                        };
                        let b = match *op {
                            "<" => ord.is_lt(),
                            "<=" => ord.is_le(),
                            ">" => ord.is_gt(),
                            ">=" => ord.is_ge(),
                            "==" => ord.is_eq(),
                            _ => !ord.is_eq(),
                        };
                        Val::Num(b as i32 as f64)
                    }
                    _ => Val::Num(arith(op, x.num(), y.num()).map_err(Err)?),
                }
            }
            Expr::Match(neg, s, re) => {
                let s = self.eval(s)?.str();
                let r = self.regex_of(re)?;
                let cs: Vec<char> = s.chars().collect();
                Val::Num((r.is_match(&cs) != *neg) as i32 as f64)
            }
            Expr::Concat(a, b) => {
                let s = self.eval(a)?.str() + &self.eval(b)?.str();
                if s.len() > crate::MAX_VAR {
                    return err("string too long".into());
                }
                Val::Str(s)
            }
            Expr::Cond(c, a, b) => {
                if self.eval(c)?.truthy() {
                    self.eval(a)?
                } else {
                    self.eval(b)?
                }
            }
            Expr::Call(f, args) => self.call(f, args)?,
        })
    }

    fn call(&mut self, f: &str, args: &[Expr]) -> R<Val> {
        let arg = |me: &mut Self, k: usize| -> R<Val> {
            match args.get(k) {
                Some(e) => me.eval(e),
                None => Ok(Val::Str(String::new())),
            }
        };
        Ok(match f {
            "length" => {
                if let Some(Expr::Var(n)) = args.first() {
                    if let Some(a) = self.arrays.get(n) {
                        return Ok(Val::Num(a.len() as f64));
                    }
                }
                let s = if args.is_empty() { self.record.clone() } else { arg(self, 0)?.str() };
                Val::Num(s.chars().count() as f64)
            }
            "substr" => {
                let s: Vec<char> = arg(self, 0)?.str().chars().collect();
                let m = arg(self, 1)?.num().round();
                let n = if args.len() > 2 { arg(self, 2)?.num().round() } else { f64::INFINITY };
                let start = m.max(1.0);
                let end = (m + n).min(s.len() as f64 + 1.0);
                if end <= start {
                    Val::Str(String::new())
                } else {
                    Val::Str(s[start as usize - 1..end as usize - 1].iter().collect())
                }
            }
            "index" => {
                let s = arg(self, 0)?.str();
                let t = arg(self, 1)?.str();
                Val::Num(match s.find(&t) {
                    Some(b) => s[..b].chars().count() as f64 + 1.0,
                    None => 0.0,
                })
            }
            "split" => {
                let s = arg(self, 0)?.str();
                let a = match args.get(1) {
                    Some(Expr::Var(a)) => a.clone(),
                    _ => return err("split: the second argument must be an array".into()),
                };
                let parts = match args.get(2) {
                    Some(Expr::Re(k)) => {
                        let src = self.regex_src(*k);
                        let re = self.regex(&src).map_err(Err)?;
                        split_regex(&s, &re)
                    }
                    Some(e) => {
                        let fs = self.eval(e)?.str();
                        split_fields(&s, &fs, &mut self.cache).map_err(Err)?
                    }
                    None => {
                        let fs = self.fs();
                        split_fields(&s, &fs, &mut self.cache).map_err(Err)?
                    }
                };
                let n = parts.len();
                let m = self.arrays.entry(a).or_default();
                m.clear();
                for (i, p) in parts.into_iter().enumerate() {
                    m.insert((i + 1).to_string(), Val::StrNum(p));
                }
                Val::Num(n as f64)
            }
            "sub" | "gsub" => {
                let re = match args.first() {
                    Some(e) => self.regex_of(e)?,
                    None => return err(format!("{}: missing arguments", f)),
                };
                let rep = arg(self, 1)?.str();
                let target = args.get(2).cloned().unwrap_or(Expr::Field(Box::new(Expr::Num(0.0))));
                let s: Vec<char> = self.eval(&target)?.str().chars().collect();
                let mut out = String::new();
                let (mut at, mut last, mut n) = (0, 0, 0);
                while at <= s.len() {
                    let m = match re.find_at(&s, at) {
                        Some(c) => c[0].unwrap(),
                        None => break,
                    };
                    out.extend(s[last..m.0].iter());
                    let mut rc = rep.chars().peekable();
                    while let Some(c) = rc.next() {
                        if c == '\\' && matches!(rc.peek(), Some('&') | Some('\\')) {
                            out.push(rc.next().unwrap());
                        } else if c == '&' {
                            out.extend(s[m.0..m.1].iter());
                        } else {
                            out.push(c);
                        }
                    }
                    n += 1;
                    last = m.1;
                    if m.1 == m.0 {
                        if m.0 < s.len() {
                            out.push(s[m.0]);
                        }
                        last = m.0 + 1;
                        at = m.0 + 1;
                    } else {
                        at = m.1;
                    }
                    if f == "sub" || out.len() > crate::MAX_VAR {
                        break;
                    }
                }
                if n > 0 {
                    if last < s.len() {
                        out.extend(s[last..].iter());
                    }
                    self.assign(&target, Val::Str(out))?;
                }
                Val::Num(n as f64)
            }
            "match" => {
                let s: Vec<char> = arg(self, 0)?.str().chars().collect();
                let re = match args.get(1) {
                    Some(e) => self.regex_of(e)?,
                    None => return err("match: missing arguments".into()),
                };
                let (start, len) = match re.find_at(&s, 0) {
                    Some(c) => {
                        let (a, b) = c[0].unwrap();
                        (a as f64 + 1.0, (b - a) as f64)
                    }
                    None => (0.0, -1.0),
                };
                self.vars.insert("RSTART".into(), Val::Num(start));
                self.vars.insert("RLENGTH".into(), Val::Num(len));
                Val::Num(start)
            }
            "toupper" => Val::Str(arg(self, 0)?.str().to_uppercase()),
            "tolower" => Val::Str(arg(self, 0)?.str().to_lowercase()),
            "int" => Val::Num(arg(self, 0)?.num().trunc()),
            "sprintf" => {
                let mut vals = Vec::new();
                for e in args {
                    vals.push(self.eval(e)?);
                }
                Val::Str(self.format(&vals))
            }
            "(list)" => {
                let mut parts = Vec::new();
                for e in args {
                    parts.push(self.eval(e)?.str());
                }
                Val::Str(parts.join(&self.var("SUBSEP").str()))
            }
            _ => return err(format!("function {} never defined", f)),
        })
    }

    /// printf's formatting, with awk's values.
    fn format(&mut self, vals: &[Val]) -> String {
        let fmt = match vals.first() {
            Some(f) => f.str(),
            None => return String::new(),
        };
        let cs: Vec<char> = fmt.chars().collect();
        let mut out = String::new();
        let mut k = 1;
        let mut i = 0;
        while i < cs.len() {
            if cs[i] != '%' {
                out.push(cs[i]);
                i += 1;
                continue;
            }
            if cs.get(i + 1) == Some(&'%') {
                out.push('%');
                i += 2;
                continue;
            }
            let mut j = i + 1;
            let mut spec = String::new();
            while j < cs.len() && "-+ #0123456789.*".contains(cs[j]) {
                if cs[j] == '*' {
                    spec.push_str(&vals.get(k).map(|v| fmt_num(v.num())).unwrap_or_default());
                    k += 1;
                } else {
                    spec.push(cs[j]);
                }
                j += 1;
            }
            let conv = match cs.get(j) {
                Some(c) => *c,
                None => {
                    out.push_str(&cs[i..].iter().collect::<String>());
                    break;
                }
            };
            let v = vals.get(k).cloned();
            k += 1;
            let arg = match (conv, &v) {
                ('d' | 'i' | 'x' | 'X' | 'o' | 'u', Some(v)) => format!("{}", v.num().trunc() as i64),
                ('c', Some(Val::Num(n))) => char::from_u32(*n as u32).map(|c| c.to_string()).unwrap_or_default(),
                ('f' | 'e' | 'g' | 'E' | 'G' | 'F', Some(v)) => format!("{}", v.num()),
                (_, Some(v)) => v.str(),
                (_, None) => String::new(),
            };
            let mut status = 0;
            if conv == 'g' || conv == 'G' {
                let p = spec.split_once('.').and_then(|(_, p)| p.parse().ok()).unwrap_or(6);
                let s = fmt_g(v.map(|v| v.num()).unwrap_or(0.0), p);
                let w = spec.split('.').next().unwrap_or("").trim_start_matches(|c| "-+ #0".contains(c)).parse::<usize>().unwrap_or(0);
                let s = if s.len() < w {
                    if spec.starts_with('-') { format!("{:<w$}", s, w = w) } else { format!("{:>w$}", s, w = w) }
                } else {
                    s
                };
                out.push_str(&s);
            } else {
                out.push_str(&crate::utils::conv(&spec, conv, Some(&arg), self.io, &mut status));
            }
            i = j + 1;
        }
        out
    }

    fn emit(&mut self, text: &str, redirect: &Option<(bool, Expr)>) -> R<()> {
        match redirect {
            None => {
                self.out.push_str(text);
                if self.out.len() > 64 << 10 {
                    let o = std::mem::take(&mut self.out);
                    if !self.io.print(&o) {
                        return err("write error".into());
                    }
                }
            }
            Some((append, e)) => {
                let name = self.eval(e)?.str();
                match self.files.iter_mut().find(|(n, _, _)| *n == name) {
                    Some(f) => f.1.push_str(text),
                    None => self.files.push((name, text.to_string(), *append)),
                }
            }
        }
        Ok(())
    }

    fn exec(&mut self, s: &Stmt) -> R<()> {
        self.steps += 1;
        if self.steps > MAX_STEPS {
            return err("too many steps (the program runs at most 50 million)".into());
        }
        match s {
            Stmt::Print(args, redirect) => {
                let text = if args.is_empty() {
                    self.record.clone()
                } else {
                    let ofs = self.var("OFS").str();
                    let mut parts = Vec::new();
                    for a in args {
                        parts.push(self.eval(a)?.str());
                    }
                    parts.join(&ofs)
                };
                let ors = self.var("ORS").str();
                self.emit(&(text + &ors), redirect)?;
            }
            Stmt::Printf(args, redirect) => {
                let mut vals = Vec::new();
                for a in args {
                    vals.push(self.eval(a)?);
                }
                let text = self.format(&vals);
                self.emit(&text, redirect)?;
            }
            Stmt::Expr(e) => {
                self.eval(e)?;
            }
            Stmt::If(c, a, b) => {
                if self.eval(c)?.truthy() {
                    self.exec(a)?;
                } else if let Some(b) = b {
                    self.exec(b)?;
                }
            }
            Stmt::While(c, body) => {
                while self.eval(c)?.truthy() {
                    self.exec(body)?;
                }
            }
            Stmt::For(init, cond, incr, body) => {
                if let Some(i) = init {
                    self.exec(i)?;
                }
                loop {
                    if let Some(c) = cond {
                        if !self.eval(c)?.truthy() {
                            break;
                        }
                    }
                    self.exec(body)?;
                    if let Some(i) = incr {
                        self.exec(i)?;
                    }
                }
            }
            Stmt::ForIn(k, a, body) => {
                let keys: Vec<String> = self.arrays.get(a).map(|m| m.keys().cloned().collect()).unwrap_or_default();
                let mut keys = keys;
                // Numeric keys in numeric order.
                if keys.iter().all(|k| k.parse::<f64>().is_ok()) {
                    keys.sort_by(|x, y| to_num(x).partial_cmp(&to_num(y)).unwrap_or(std::cmp::Ordering::Equal));
                }
                for key in keys {
                    self.vars.insert(k.clone(), Val::StrNum(key));
                    self.exec(body)?;
                }
            }
            Stmt::Block(v) => {
                for s in v {
                    self.exec(s)?;
                }
            }
            Stmt::Next => return Err(Ok(Jump::Next)),
            Stmt::Exit(e) => {
                let code = match e {
                    Some(e) => self.eval(e)?.num() as i32,
                    None => 0,
                };
                return Err(Ok(Jump::Exit(code)));
            }
            Stmt::Delete(a, idx) => match idx {
                Some(idx) => {
                    let k = self.key(idx)?;
                    if let Some(m) = self.arrays.get_mut(a) {
                        m.remove(&k);
                    }
                }
                None => {
                    self.arrays.remove(a);
                }
            },
        }
        Ok(())
    }
}

thread_local! {
    static REGEX_SRC: std::cell::RefCell<Vec<String>> = std::cell::RefCell::new(Vec::new());
}

fn arith(op: &str, x: f64, y: f64) -> Result<f64, String> {
    Ok(match op {
        "+" => x + y,
        "-" => x - y,
        "*" => x * y,
        "/" => {
            if y == 0.0 {
                return Err("division by zero".into());
            }
            x / y
        }
        "%" => {
            if y == 0.0 {
                return Err("division by zero in %".into());
            }
            x % y
        }
        _ => x.powf(y),
    })
}

fn split_regex(s: &str, re: &Regex) -> Vec<String> {
    let cs: Vec<char> = s.chars().collect();
    let mut out = Vec::new();
    if cs.is_empty() {
        return out;
    }
    let (mut at, mut last) = (0, 0);
    while at < cs.len() {
        match re.find_at(&cs, at) {
            Some(c) => {
                let (a, b) = c[0].unwrap();
                if b == a {
                    at = a + 1;
                    continue;
                }
                out.push(cs[last..a].iter().collect());
                last = b;
                at = b;
            }
            None => break,
        }
    }
    out.push(cs[last..].iter().collect());
    out
}

fn split_fields(s: &str, fs: &str, cache: &mut HashMap<String, std::rc::Rc<Regex>>) -> Result<Vec<String>, String> {
    if fs == " " {
        return Ok(s.split(|c| c == ' ' || c == '\t' || c == '\n').filter(|f| !f.is_empty()).map(|f| f.to_string()).collect());
    }
    if s.is_empty() {
        return Ok(Vec::new());
    }
    // A single character other than a blank separates literally.
    if fs.chars().count() == 1 {
        let c = fs.chars().next().unwrap();
        return Ok(s.split(c).map(|f| f.to_string()).collect());
    }
    let re = match cache.get(fs) {
        Some(r) => r.clone(),
        None => {
            let r = std::rc::Rc::new(Regex::new(fs, Syntax::Extended, false)?);
            cache.insert(fs.to_string(), r.clone());
            r
        }
    };
    Ok(split_regex(s, &re))
}

/// awk [-F FS] [-v VAR=VALUE]... 'PROGRAM' [FILE | VAR=VALUE]...
pub(crate) fn awk(sh: &mut Shell, args: &[String], io: &Io) -> Status {
    let mut fs = " ".to_string();
    let mut assigns = Vec::new();
    let mut i = 1;
    let mut program = None;
    while i < args.len() {
        let a = &args[i];
        if a == "-F" {
            i += 1;
            fs = args.get(i).cloned().unwrap_or_default();
        } else if let Some(f) = a.strip_prefix("-F") {
            fs = f.to_string();
        } else if a == "-v" {
            i += 1;
            assigns.push(args.get(i).cloned().unwrap_or_default());
        } else if let Some(v) = a.strip_prefix("-v") {
            assigns.push(v.to_string());
        } else if a == "--" {
            i += 1;
            break;
        } else if a.starts_with('-') && a.len() > 1 {
            io.error(&format!("awk: unknown option {}", a));
            return Ok(2);
        } else {
            break;
        }
        i += 1;
    }
    if program.is_none() {
        match args.get(i) {
            Some(p) => {
                program = Some(p.clone());
                i += 1;
            }
            None => {
                io.error("usage: awk [-F fs][-v var=value][prog | -f progfile][file ...]");
                return Ok(2);
            }
        }
    }
    let program = program.unwrap_or_default();
    let fs = if fs == "t" { "\t".to_string() } else { unescape_awk(&fs) };
    let toks = match lex(&program) {
        Ok(t) => t,
        Err(e) => {
            io.error(&format!("awk: {}", e));
            return Ok(2);
        }
    };
    let mut p = Parser {
        toks,
        i: 0,
        depth: 0,
        regexes: Vec::new(),
        no_redirect: 0,
        no_in: 0,
    };
    let items = match p.program() {
        Ok(v) => v,
        Err(e) => {
            io.error(&format!("awk: {}", e));
            return Ok(2);
        }
    };
    let mut regexes = Vec::new();
    for r in &p.regexes {
        match Regex::new(r, Syntax::Extended, false) {
            Ok(re) => regexes.push(re),
            Err(e) => {
                io.error(&format!("awk: /{}/: {}", r, e));
                return Ok(2);
            }
        }
    }
    REGEX_SRC.with(|s| *s.borrow_mut() = p.regexes.clone());
    let mut a = Awk {
        vars: HashMap::new(),
        arrays: HashMap::new(),
        fields: Vec::new(),
        record: String::new(),
        nf: 0,
        regexes,
        cache: HashMap::new(),
        out: String::new(),
        files: Vec::new(),
        steps: 0,
        depth: 0,
        io,
    };
    a.vars.insert("FS".into(), Val::Str(fs));
    a.vars.insert("OFS".into(), Val::Str(" ".into()));
    a.vars.insert("ORS".into(), Val::Str("\n".into()));
    a.vars.insert("SUBSEP".into(), Val::Str("\u{1c}".into()));
    a.vars.insert("NR".into(), Val::Num(0.0));
    for v in &assigns {
        if let Some((n, val)) = v.split_once('=') {
            a.vars.insert(n.to_string(), Val::StrNum(unescape_awk(val)));
        }
    }
    let files: Vec<String> = args[i..].to_vec();
    let mut code = 0;
    let mut exiting = false;
    let report = |e: String| {
        io.error(&format!("awk: {}", e));
    };
    // BEGIN
    for (pat, act) in &items {
        if let (Pattern::Begin, Some(s)) = (pat, act) {
            match a.exec(s) {
                Ok(()) | Err(Ok(Jump::Next)) => {}
                Err(Ok(Jump::Exit(c))) => {
                    code = c;
                    exiting = true;
                    break;
                }
                Err(Err(e)) => {
                    report(e);
                    return Ok(2);
                }
            }
        }
    }
    let has_main = items.iter().any(|(p, _)| !matches!(p, Pattern::Begin));
    if !exiting && has_main {
        let mut inputs: Vec<(String, Vec<u8>)> = Vec::new();
        let names: Vec<String> = files.iter().filter(|f| !(f.contains('=') && crate::parse::is_name(f.split('=').next().unwrap_or("")))).cloned().collect();
        if names.is_empty() {
            inputs.push(("".into(), io.read_all()));
        } else {
            for f in &names {
                if f == "-" {
                    inputs.push(("".into(), io.read_all()));
                    continue;
                }
                match sh.read_path(f) {
                    Ok(d) => inputs.push((f.clone(), d)),
                    Err(e) => {
                        io.error(&format!("awk: cannot open \"{}\" ({})", f, crate::builtins::message(&e)));
                        code = 2;
                    }
                }
            }
        }
        let mut nr = 0usize;
        'files: for (name, data) in inputs {
            if crate::builtins::too_many_lines(&data) {
                io.error(&format!("awk: {}: too many lines (commands handle at most {})", name, crate::builtins::MAX_LINES));
                code = 2;
                continue;
            }
            a.vars.insert("FILENAME".into(), Val::Str(name));
            let text = String::from_utf8_lossy(&data).into_owned();
            let mut recs: Vec<&str> = text.split('\n').collect();
            if text.ends_with('\n') || text.is_empty() {
                recs.pop();
            }
            for (fnr, rec) in recs.into_iter().enumerate() {
                nr += 1;
                a.vars.insert("NR".into(), Val::Num(nr as f64));
                a.vars.insert("FNR".into(), Val::Num(fnr as f64 + 1.0));
                if let Err(e) = a.set_record(rec.to_string()) {
                    report(e);
                    return Ok(2);
                }
                for (pat, act) in &items {
                    let hit = match pat {
                        Pattern::Begin | Pattern::End => continue,
                        Pattern::All => true,
                        Pattern::Expr(e) => match a.eval(e) {
                            Ok(v) => v.truthy(),
                            Err(Err(e)) => {
                                report(e);
                                return Ok(2);
                            }
                            Err(Ok(_)) => false,
                        },
                        Pattern::Range(from, to, open) => {
                            let mut test = |e: &Expr| match a.eval(e) {
                                Ok(v) => Ok(v.truthy()),
                                Err(Err(e)) => Err(e),
                                Err(Ok(_)) => Ok(false),
                            };
                            let r = if open.get() {
                                test(to).map(|end| {
                                    open.set(!end);
                                    true
                                })
                            } else {
                                test(from).and_then(|start| {
                                    if start {
                                        open.set(!test(to)?);
                                    }
                                    Ok(start)
                                })
                            };
                            match r {
                                Ok(hit) => hit,
                                Err(e) => {
                                    report(e);
                                    return Ok(2);
                                }
                            }
                        }
                    };
                    if !hit {
                        continue;
                    }
                    let r = match act {
                        Some(s) => a.exec(s),
                        None => {
                            let line = a.record.clone() + &a.var("ORS").str();
                            a.emit(&line, &None)
                        }
                    };
                    match r {
                        Ok(()) => {}
                        Err(Ok(Jump::Next)) => break,
                        Err(Ok(Jump::Exit(c))) => {
                            code = c;
                            exiting = true;
                            break 'files;
                        }
                        Err(Err(e)) => {
                            report(e);
                            return Ok(2);
                        }
                    }
                }
            }
        }
    }
    let _ = exiting;
    for (pat, act) in &items {
        if let (Pattern::End, Some(s)) = (pat, act) {
            match a.exec(s) {
                Ok(()) | Err(Ok(Jump::Next)) => {}
                Err(Ok(Jump::Exit(c))) => {
                    code = c;
                    break;
                }
                Err(Err(e)) => {
                    report(e);
                    return Ok(2);
                }
            }
        }
    }
    let out = std::mem::take(&mut a.out);
    io.print(&out);
    for (name, text, append) in std::mem::take(&mut a.files) {
        let r = if name == "/dev/stderr" {
            let _ = io.err.write_all(text.as_bytes());
            Ok(())
        } else if append {
            fs::OpenOptions::new()
                .create(true)
                .append(true)
                .open(sh.resolve(&name))
                .and_then(|mut f| std::io::Write::write_all(&mut f, text.as_bytes()))
        } else {
            fs::write(sh.resolve(&name), text.as_bytes())
        };
        if let Err(e) = r {
            io.error(&format!("awk: can't redirect to {} ({})", name, crate::builtins::message(&e)));
            code = 2;
        }
    }
    let _ = Flow::Exit(0);
    Ok(code)
}

fn unescape_awk(s: &str) -> String {
    let mut out = String::new();
    let mut cs = s.chars();
    while let Some(c) = cs.next() {
        if c == '\\' {
            match cs.next() {
                Some('t') => out.push('\t'),
                Some('n') => out.push('\n'),
                Some('\\') => out.push('\\'),
                Some(o) => {
                    out.push('\\');
                    out.push(o);
                }
                None => out.push('\\'),
            }
        } else {
            out.push(c);
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn numbers() {
        assert_eq!(fmt_num(3.0), "3");
        assert_eq!(fmt_num(0.5), "0.5");
        assert_eq!(fmt_num(1.0 / 3.0), "0.333333");
        assert_eq!(fmt_num(123456789.5), "1.23457e+08");
        assert_eq!(to_num(" 12abc"), 12.0);
        assert_eq!(to_num("1e3x"), 1000.0);
        assert_eq!(to_num("x"), 0.0);
    }

    #[test]
    fn parses() {
        for p in [
            "{print $1}",
            "NR==2",
            "/x/ {n++} END {print n+0}",
            "BEGIN{FS=\":\"} {a[$1]+=$2} END{for(k in a) print k, a[k]}",
            "{ if ($1 > 2) print; else print \"small\" }",
            "{ printf \"%s-%d\\n\", $1, $2 }",
            "{ sub(/a/, \"b\"); gsub(\"x\", \"y\", $2); print }",
            "length($0) > 3",
            "{ print $NF; print $(NF-1) }",
            "{ print > \"out.txt\" }",
        ] {
            let toks = lex(p).unwrap();
            let mut parser = Parser { toks, i: 0, depth: 0, regexes: Vec::new(), no_redirect: 0, no_in: 0 };
            parser.program().unwrap_or_else(|e| panic!("{}: {}", p, e));
        }
    }
}
