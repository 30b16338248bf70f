//! The shell's grammar: POSIX shell commands (with a few bash extensions
//! CI scripts use: `[[ ]]`, `(( ))`, `function`, `<<<`, `&>`), parsed into
//! a tree whose words keep their quoting, so that they are expanded when
//! their command runs.
//!
//! ```text
//! list      := and_or ((';' | '&' | '\n') and_or)*
//! and_or    := pipeline (('&&' | '||') '\n'* pipeline)*
//! pipeline  := ['!'] command ('|' '\n'* command)*
//! command   := simple | compound redirect* | NAME '(' ')' compound
//! compound  := '{' list '}' | '(' list ')' | if | for | while | until
//!            | case | '[[' cond ']]' | '((' arith '))'
//! ```
//!
//! Nesting (of commands, substitutions and expressions) is bounded by
//! [`MAX_DEPTH`]: deeper input is a syntax error, never a stack overflow
//! of the module's 64 KiB stack.

use std::rc::Rc;

/// How deep constructs may nest in the parser (and, in lib.rs, calls and
/// substitutions in the evaluator).
pub const MAX_DEPTH: usize = 40;

/// A piece of a word.
#[derive(Debug, Clone, PartialEq)]
pub enum Part {
    /// Unquoted text: split by nothing, but its `*`, `?`, `[` glob.
    Lit(String),
    /// Text from quotes or escapes: taken literally.
    Quoted(String),
    /// `~` at the start of a word: $HOME.
    Tilde,
    /// A parameter expansion; the bool says whether it is double-quoted.
    Param(Box<ParamExp>, bool),
    /// `$(...)` or `` `...` ``.
    Command(Rc<List>, bool),
    /// `$((...))`: the expression, expanded as in double quotes first.
    Arith(Word, bool),
    /// `<(...)`: a name for the command's output.
    ProcSubst(Rc<List>),
    /// `(a b c)` after `NAME=` in an argument of declare or local.
    ArrayLit(Vec<Word>),
}

/// A word: parts concatenated, then split into fields and globbed.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Word {
    pub parts: Vec<Part>,
}

impl Word {
    fn push_lit(&mut self, c: char) {
        if let Some(Part::Lit(s)) = self.parts.last_mut() {
            s.push(c);
            return;
        }
        self.parts.push(Part::Lit(c.to_string()));
    }

    fn push_quoted(&mut self, c: char) {
        if let Some(Part::Quoted(s)) = self.parts.last_mut() {
            s.push(c);
            return;
        }
        self.parts.push(Part::Quoted(c.to_string()));
    }
}

/// What a `${...}` does with its parameter.
#[derive(Debug, Clone, PartialEq)]
pub enum ParamOp {
    Plain,
    /// `${#NAME}`.
    Len,
    /// `${NAME-w}` `${NAME=w}` `${NAME?w}` `${NAME+w}`, with ':' also
    /// for an empty value.
    Test { op: char, colon: bool, word: Word },
    /// `${NAME#p}` `${NAME##p}` (prefix) `${NAME%p}` `${NAME%%p}` (suffix).
    Trim { suffix: bool, longest: bool, pat: Word },
    /// `${NAME/p/r}` `${NAME//p/r}` `${NAME/#p/r}` `${NAME/%p/r}`.
    Replace { all: bool, anchor: Option<char>, pat: Word, rep: Word },
    /// `${NAME:off}` `${NAME:off:len}`.
    Substr { off: Word, len: Option<Word> },
    /// `${NAME^^}` `${NAME,,}` `${NAME^}` `${NAME,}`.
    Case { upper: bool, all: bool },
}

#[derive(Debug, Clone, PartialEq)]
pub struct ParamExp {
    /// A variable name, a digit string, or one of `? # @ * $ ! - 0`.
    pub name: String,
    pub op: ParamOp,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RedirOp {
    /// `<`
    In,
    /// `>` (and `>|`)
    Out,
    /// `>>`
    Append,
    /// `>&N`, `<&N` (the target a digit string or `-`)
    Dup,
    /// `&>` (both outputs)
    OutErr,
    /// `&>>`
    AppendErr,
    /// `<<`, `<<-`, `<<<`: the target is the text itself.
    Here,
}

#[derive(Debug, Clone, PartialEq)]
pub struct Redirect {
    pub fd: u32,
    pub op: RedirOp,
    pub target: Word,
}

#[derive(Debug, Clone, PartialEq)]
pub struct Assign {
    pub name: String,
    pub append: bool,
    pub value: Word,
    /// `NAME[INDEX]=value`: the index.
    pub index: Option<Word>,
    /// `NAME=(a b c)`: the elements.
    pub array: Option<Vec<Word>>,
}

#[derive(Debug, Clone, PartialEq)]
pub enum Command {
    Simple {
        assigns: Vec<Assign>,
        words: Vec<Word>,
        redirects: Vec<Redirect>,
    },
    Compound(Box<Compound>, Vec<Redirect>),
    Function(String, Rc<Command>),
}

/// A `[[ ]]` expression.
#[derive(Debug, Clone, PartialEq)]
pub enum Cond {
    And(Box<Cond>, Box<Cond>),
    Or(Box<Cond>, Box<Cond>),
    Not(Box<Cond>),
    Unary(String, Word),
    Binary(Word, String, Word),
    Word(Word),
}

#[derive(Debug, Clone, PartialEq)]
pub enum Compound {
    Brace(List),
    Subshell(List),
    If {
        branches: Vec<(List, List)>,
        otherwise: Option<List>,
    },
    For {
        var: String,
        words: Option<Vec<Word>>,
        body: List,
    },
    While {
        until: bool,
        cond: List,
        body: List,
    },
    Case {
        word: Word,
        arms: Vec<(Vec<Word>, List)>,
    },
    Cond(Cond),
    Arith(Word),
    /// `for (( init; cond; step ))`.
    ArithFor {
        init: Word,
        cond: Word,
        step: Word,
        body: List,
    },
}

/// Commands connected by pipes; `!` negates the status.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Pipeline {
    pub negate: bool,
    pub commands: Vec<Command>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Connector {
    And,
    Or,
}

/// Pipelines connected by `&&` and `||`.
#[derive(Debug, Clone, PartialEq)]
pub struct AndOr {
    pub first: Pipeline,
    pub rest: Vec<(Connector, Pipeline)>,
    /// Ended by `&`: it runs to its end first (there are no background
    /// jobs), but like a background job its status is 0 and a failure
    /// does not stop the shell.
    pub background: bool,
}

/// And-or lists run one after the other.
pub type List = Vec<AndOr>;

#[derive(Debug, Clone, PartialEq)]
enum Tok {
    /// A word and its source text.
    Word(Word, String),
    Op(&'static str),
    /// A file descriptor number right before a redirection.
    IoNum(u32),
    Newline,
    Eof,
}

/// Whether s is a variable name.
pub fn is_name(s: &str) -> bool {
    let mut cs = s.chars();
    matches!(cs.next(), Some(c) if c == '_' || c.is_ascii_alphabetic())
        && cs.all(|c| c == '_' || c.is_ascii_alphanumeric())
}

/// Characters that end an unquoted word.
fn is_meta(c: char) -> bool {
    matches!(
        c,
        ' ' | '\t' | '\r' | '\n' | ';' | '&' | '|' | '>' | '<' | '(' | ')'
    )
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum Mode {
    /// A command word: ends at a metacharacter.
    Normal,
    /// The operand of `${NAME op word}`: ends at the '}'.
    Brace,
    /// A `=~` operand in `[[ ]]`: ends at a blank; parens are text.
    Regex,
    /// Inside "...": ends at '"'.
    DQuote,
    /// A here-document body or an arithmetic expression: all of it.
    Text,
}

const OPS: &[&str] = &[
    "&>>", "<<-", "<<<", "&&", "||", ";;", ">>", "<<", ">&", "<&", ">|", "&>", "<>", "((", ";",
    "&", "|", "<", ">", "(", ")",
];

struct Parser {
    cs: Vec<char>,
    i: usize,
    depth: usize,
    peeked: Option<(Tok, usize)>,
    /// A here-document's body: when the lexer reaches the newline at
    /// .0, it goes on at .1.
    skip: Option<(usize, usize)>,
}

/// Parses a script.
pub fn parse(src: &str) -> Result<List, String> {
    parse_at(src, 0)
}

fn parse_at(src: &str, depth: usize) -> Result<List, String> {
    let mut p = Parser {
        cs: src.chars().collect(),
        i: 0,
        depth,
        peeked: None,
        skip: None,
    };
    let l = p.list(&[])?;
    match p.peek()? {
        Tok::Eof => Ok(l),
        t => Err(format!("syntax error near unexpected token `{}'", describe(&t))),
    }
}

fn describe(t: &Tok) -> String {
    match t {
        Tok::Word(_, raw) => raw.clone(),
        Tok::Op(o) => o.to_string(),
        Tok::IoNum(n) => n.to_string(),
        Tok::Newline => "newline".into(),
        Tok::Eof => "end of file".into(),
    }
}

impl Parser {
    fn enter(&mut self) -> Result<(), String> {
        self.depth += 1;
        if self.depth > MAX_DEPTH || !crate::stack_ok() {
            return Err("nesting too deep".into());
        }
        Ok(())
    }

    fn at(&self, n: usize) -> Option<char> {
        self.cs.get(self.i + n).copied()
    }

    fn starts_with(&self, s: &str) -> bool {
        s.chars().enumerate().all(|(k, c)| self.at(k) == Some(c))
    }

    fn peek(&mut self) -> Result<Tok, String> {
        if let Some((t, _)) = &self.peeked {
            return Ok(t.clone());
        }
        let t = self.lex()?;
        self.peeked = Some((t.clone(), self.i));
        Ok(t)
    }

    fn next(&mut self) -> Result<Tok, String> {
        let t = self.peek()?;
        self.peeked = None;
        Ok(t)
    }

    fn peek_word(&mut self, w: &str) -> Result<bool, String> {
        Ok(matches!(self.peek()?, Tok::Word(_, ref raw) if raw == w))
    }

    fn expect_word(&mut self, w: &str) -> Result<(), String> {
        match self.next()? {
            Tok::Word(_, ref raw) if raw == w => Ok(()),
            t => Err(format!(
                "syntax error near unexpected token `{}' (expected `{}')",
                describe(&t),
                w
            )),
        }
    }

    fn expect_op(&mut self, o: &str) -> Result<(), String> {
        match self.next()? {
            Tok::Op(x) if x == o => Ok(()),
            t => Err(format!(
                "syntax error near unexpected token `{}' (expected `{}')",
                describe(&t),
                o
            )),
        }
    }

    fn skip_blanks(&mut self) {
        loop {
            match self.at(0) {
                Some(' ') | Some('\t') | Some('\r') => self.i += 1,
                Some('\\') if self.at(1) == Some('\n') => self.i += 2,
                _ => return,
            }
        }
    }

    fn lex(&mut self) -> Result<Tok, String> {
        self.skip_blanks();
        let c = match self.at(0) {
            None => return Ok(Tok::Eof),
            Some(c) => c,
        };
        if c == '#' {
            while !matches!(self.at(0), None | Some('\n')) {
                self.i += 1;
            }
            return self.lex();
        }
        if c == '\n' {
            match self.skip {
                Some((at, to)) if at == self.i => {
                    self.i = to;
                    self.skip = None;
                }
                _ => self.i += 1,
            }
            return Ok(Tok::Newline);
        }
        if self.starts_with("<(") {
            // <(list): process substitution, a word of its own.
            let start = self.i;
            self.i += 2;
            self.enter()?;
            let saved = self.peeked.take();
            let list = self.list(&[])?;
            self.expect_op(")")?;
            self.peeked = saved;
            self.depth -= 1;
            let raw: String = self.cs[start..self.i].iter().collect();
            return Ok(Tok::Word(
                Word {
                    parts: vec![Part::ProcSubst(Rc::new(list))],
                },
                raw,
            ));
        }
        for op in OPS {
            if self.starts_with(op) {
                self.i += op.chars().count();
                return Ok(Tok::Op(op));
            }
        }
        if c.is_ascii_digit() {
            let mut k = 0;
            while matches!(self.at(k), Some(d) if d.is_ascii_digit()) {
                k += 1;
            }
            if matches!(self.at(k), Some('<') | Some('>')) && k < 4 {
                let n: String = self.cs[self.i..self.i + k].iter().collect();
                self.i += k;
                return Ok(Tok::IoNum(n.parse().unwrap_or(0)));
            }
        }
        let start = self.i;
        let w = self.word(Mode::Normal)?;
        let raw: String = self.cs[start..self.i].iter().collect();
        Ok(Tok::Word(w, raw))
    }

    /// Lexes a word from self.i in mode.
    fn word(&mut self, mode: Mode) -> Result<Word, String> {
        self.enter()?;
        let mut w = Word::default();
        let start = self.i;
        let mut parens = 0usize;
        loop {
            let c = match self.at(0) {
                Some(c) => c,
                None => match mode {
                    Mode::Brace => return Err("missing `}'".into()),
                    Mode::DQuote => return Err("unexpected EOF while looking for matching `\"'".into()),
                    _ => break,
                },
            };
            match mode {
                Mode::Normal if is_meta(c) => break,
                Mode::Regex if parens == 0 && matches!(c, ' ' | '\t' | '\n') => break,
                Mode::Brace if c == '}' => break,
                Mode::DQuote if c == '"' => break,
                _ => {}
            }
            if mode == Mode::Regex {
                if c == '(' {
                    parens += 1;
                } else if c == ')' {
                    parens = parens.saturating_sub(1);
                }
            }
            let quoted_ctx = matches!(mode, Mode::DQuote | Mode::Text);
            self.i += 1;
            match c {
                '\\' => {
                    let n = self.at(0);
                    match n {
                        Some('\n') => self.i += 1,
                        Some(n) if !quoted_ctx || matches!(n, '$' | '`' | '"' | '\\') => {
                            if mode == Mode::Text && n == '"' {
                                w.push_quoted('\\');
                            }
                            self.i += 1;
                            w.push_quoted(n);
                        }
                        _ => w.push_quoted('\\'),
                    }
                }
                '\'' if !quoted_ctx => {
                    let s = self.i;
                    while self.at(0) != Some('\'') {
                        if self.at(0).is_none() {
                            return Err("unexpected EOF while looking for matching `''".into());
                        }
                        self.i += 1;
                    }
                    let text: String = self.cs[s..self.i].iter().collect();
                    self.i += 1;
                    w.parts.push(Part::Quoted(text));
                }
                '"' if !quoted_ctx => {
                    w.parts.push(Part::Quoted(String::new()));
                    let inner = self.word(Mode::DQuote)?;
                    self.i += 1; // the closing quote
                    w.parts.extend(inner.parts);
                }
                '$' => self.dollar(&mut w, quoted_ctx)?,
                '`' => {
                    let s = self.i;
                    let mut body = String::new();
                    loop {
                        match self.at(0) {
                            None => {
                                return Err(
                                    "unexpected EOF while looking for matching ``'".into()
                                )
                            }
                            Some('`') => break,
                            Some('\\') if matches!(self.at(1), Some('$') | Some('`') | Some('\\')) => {
                                body.push(self.at(1).unwrap());
                                self.i += 2;
                            }
                            Some(ch) => {
                                body.push(ch);
                                self.i += 1;
                            }
                        }
                    }
                    let _ = s;
                    self.i += 1;
                    let list = parse_at(&body, self.depth)?;
                    w.parts.push(Part::Command(Rc::new(list), quoted_ctx));
                }
                // `~` alone or before `/`, at the start of a word or after
                // the `=` of a word that looks like an assignment (bash
                // expands `echo a=~` too): the word may end right after it
                // (`cd ~ && ...`, `$(echo ~)`, `dir=~`).
                '~' if mode == Mode::Normal
                    && (self.i - 1 == start || assignment_value_start(&w.parts))
                    && matches!(self.at(0), None | Some('/' | ' ' | '\t' | '\n' | ';' | '&' | '|' | ')' | '<' | '>')) =>
                {
                    w.parts.push(Part::Tilde);
                }
                _ => {
                    if quoted_ctx {
                        w.push_quoted(c)
                    } else {
                        w.push_lit(c)
                    }
                }
            }
        }
        self.depth -= 1;
        Ok(w)
    }

    /// An expansion after '$'.
    fn dollar(&mut self, w: &mut Word, quoted: bool) -> Result<(), String> {
        let c = self.at(0);
        match c {
            Some('(') if self.at(1) == Some('(') => {
                // $(( expr )): the text up to the matching "))".
                self.i += 2;
                let s = self.i;
                let mut depth = 0usize;
                loop {
                    match self.at(0) {
                        None => return Err("unexpected EOF while looking for matching `))'".into()),
                        Some('(') => depth += 1,
                        Some(')') if depth == 0 && self.at(1) == Some(')') => break,
                        Some(')') => depth = depth.saturating_sub(1),
                        _ => {}
                    }
                    self.i += 1;
                }
                let text: String = self.cs[s..self.i].iter().collect();
                self.i += 2;
                let expr = sub_word(&text, self.depth)?;
                w.parts.push(Part::Arith(expr, quoted));
            }
            Some('(') => {
                self.i += 1;
                self.enter()?;
                let saved = self.peeked.take();
                let list = self.list(&[])?;
                self.expect_op(")")?;
                self.peeked = saved;
                self.depth -= 1;
                w.parts.push(Part::Command(Rc::new(list), quoted));
            }
            Some('\'') if !quoted => {
                // $'...': ANSI-C quoting.
                self.i += 1;
                let mut bytes = Vec::new();
                loop {
                    match self.at(0) {
                        None => return Err("unexpected EOF while looking for matching `''".into()),
                        Some('\'') => break,
                        Some('\\') => {
                            self.i += 1;
                            self.ansi_escape(&mut bytes);
                        }
                        Some(ch) => {
                            let mut b = [0u8; 4];
                            bytes.extend_from_slice(ch.encode_utf8(&mut b).as_bytes());
                            self.i += 1;
                        }
                    }
                }
                self.i += 1;
                w.parts.push(Part::Quoted(String::from_utf8_lossy(&bytes).into_owned()));
            }
            Some('{') => {
                self.i += 1;
                let p = self.braced()?;
                w.parts.push(Part::Param(Box::new(p), quoted));
            }
            Some(ch) if ch == '_' || ch.is_ascii_alphabetic() => {
                let s = self.i;
                while matches!(self.at(0), Some(c) if c == '_' || c.is_ascii_alphanumeric()) {
                    self.i += 1;
                }
                let name: String = self.cs[s..self.i].iter().collect();
                w.parts.push(Part::Param(
                    Box::new(ParamExp {
                        name,
                        op: ParamOp::Plain,
                    }),
                    quoted,
                ));
            }
            Some(ch) if ch.is_ascii_digit() || "?#@*$!-".contains(ch) => {
                self.i += 1;
                w.parts.push(Part::Param(
                    Box::new(ParamExp {
                        name: ch.to_string(),
                        op: ParamOp::Plain,
                    }),
                    quoted,
                ));
            }
            _ => {
                if quoted {
                    w.push_quoted('$')
                } else {
                    w.push_lit('$')
                }
            }
        }
        Ok(())
    }

    /// One escape of $'...', after its backslash, as bytes.
    fn ansi_escape(&mut self, out: &mut Vec<u8>) {
        let c = match self.at(0) {
            Some(c) => c,
            None => {
                out.push(b'\\');
                return;
            }
        };
        self.i += 1;
        let digits = |p: &mut Parser, radix: u32, max: usize| -> Option<u32> {
            let mut v = 0u32;
            let mut n = 0;
            while n < max {
                match p.at(0).and_then(|d| d.to_digit(radix)) {
                    Some(d) => {
                        v = v * radix + d;
                        p.i += 1;
                        n += 1;
                    }
                    None => break,
                }
            }
            if n == 0 {
                None
            } else {
                Some(v)
            }
        };
        let byte = match c {
            'n' => b'\n',
            't' => b'\t',
            'r' => b'\r',
            'a' => 7,
            'b' => 8,
            'e' | 'E' => 0x1b,
            'f' => 0x0c,
            'v' => 0x0b,
            '\\' | '\'' | '"' | '?' => c as u8,
            'c' => match self.at(0) {
                Some(x) if x.is_ascii() => {
                    self.i += 1;
                    (x.to_ascii_uppercase() as u8) ^ 0x40
                }
                _ => {
                    out.extend_from_slice(b"\\c");
                    return;
                }
            },
            'x' => match digits(self, 16, 2) {
                Some(v) => v as u8,
                None => {
                    out.extend_from_slice(b"\\x");
                    return;
                }
            },
            'u' | 'U' => match digits(self, 16, if c == 'u' { 4 } else { 8 }) {
                Some(v) => {
                    let ch = char::from_u32(v).unwrap_or('\u{fffd}');
                    let mut b = [0u8; 4];
                    out.extend_from_slice(ch.encode_utf8(&mut b).as_bytes());
                    return;
                }
                None => {
                    out.push(b'\\');
                    out.push(c as u8);
                    return;
                }
            },
            '0'..='7' => {
                self.i -= 1;
                digits(self, 8, 3).unwrap_or(0) as u8
            }
            other => {
                out.push(b'\\');
                let mut b = [0u8; 4];
                out.extend_from_slice(other.encode_utf8(&mut b).as_bytes());
                return;
            }
        };
        out.push(byte);
    }

    /// The inside of ${...}, after the '{'.
    fn braced(&mut self) -> Result<ParamExp, String> {
        let bad = |p: &Parser| {
            let end = (p.i..p.cs.len()).find(|&k| p.cs[k] == '}').unwrap_or(p.cs.len());
            let s: String = p.cs[p.i..end].iter().collect();
            Err(format!("${{{}}}: bad substitution", s))
        };
        let mut len = false;
        if self.at(0) == Some('#') && !matches!(self.at(1), Some('}') | None) {
            len = true;
            self.i += 1;
        }
        // ${!NAME} (indirect), ${!NAME[@]} (keys), ${!PREFIX*}: the name
        // with its '!' (see Shell::expand_bang).
        let bang = !len && self.at(0) == Some('!') && matches!(self.at(1), Some(c) if c == '_' || c.is_ascii_alphabetic());
        let s = self.i;
        if bang {
            self.i += 1;
        }
        match self.at(0) {
            Some(c) if c == '_' || c.is_ascii_alphabetic() => {
                while matches!(self.at(0), Some(c) if c == '_' || c.is_ascii_alphanumeric()) {
                    self.i += 1;
                }
                // NAME[INDEX]: an array element (or all, with @ or *).
                if self.at(0) == Some('[') {
                    let mut k = 1;
                    while !matches!(self.at(k), Some(']') | Some('}') | None) {
                        k += 1;
                    }
                    if k > 1 && self.at(k) == Some(']') {
                        self.i += k + 1;
                    }
                }
            }
            Some(c) if c.is_ascii_digit() => {
                while matches!(self.at(0), Some(c) if c.is_ascii_digit()) {
                    self.i += 1;
                }
            }
            Some(c) if "?#@*$!-".contains(c) => self.i += 1,
            _ => return bad(self),
        }
        if bang && matches!(self.at(0), Some('*') | Some('@')) && self.at(1) == Some('}') {
            self.i += 1;
        }
        let name: String = self.cs[s..self.i].iter().collect();
        if len {
            if self.at(0) != Some('}') {
                return bad(self);
            }
            self.i += 1;
            return Ok(ParamExp {
                name,
                op: ParamOp::Len,
            });
        }
        let c = match self.at(0) {
            Some(c) => c,
            None => return Err("missing `}'".into()),
        };
        self.i += 1;
        let op = match c {
            '}' => {
                return Ok(ParamExp {
                    name,
                    op: ParamOp::Plain,
                })
            }
            ':' if matches!(self.at(0), Some('-') | Some('=') | Some('?') | Some('+')) => {
                let op = self.at(0).unwrap();
                self.i += 1;
                ParamOp::Test {
                    op,
                    colon: true,
                    word: self.word(Mode::Brace)?,
                }
            }
            ':' => {
                let off = self.until_colon()?;
                let len = if self.at(0) == Some(':') {
                    self.i += 1;
                    Some(self.word(Mode::Brace)?)
                } else {
                    None
                };
                ParamOp::Substr { off, len }
            }
            '-' | '=' | '?' | '+' => ParamOp::Test {
                op: c,
                colon: false,
                word: self.word(Mode::Brace)?,
            },
            '#' | '%' => {
                let longest = self.at(0) == Some(c);
                if longest {
                    self.i += 1;
                }
                ParamOp::Trim {
                    suffix: c == '%',
                    longest,
                    pat: self.word(Mode::Brace)?,
                }
            }
            '/' => {
                let mut all = false;
                let mut anchor = None;
                match self.at(0) {
                    Some('/') => {
                        all = true;
                        self.i += 1
                    }
                    Some(a @ ('#' | '%')) => {
                        anchor = Some(a);
                        self.i += 1
                    }
                    _ => {}
                }
                let pat = self.until_slash()?;
                let rep = if self.at(0) == Some('/') {
                    self.i += 1;
                    self.word(Mode::Brace)?
                } else {
                    Word::default()
                };
                ParamOp::Replace {
                    all,
                    anchor,
                    pat,
                    rep,
                }
            }
            '^' | ',' => {
                let all = self.at(0) == Some(c);
                if all {
                    self.i += 1;
                }
                ParamOp::Case {
                    upper: c == '^',
                    all,
                }
            }
            _ => {
                self.i -= 1;
                return bad(self);
            }
        };
        if self.at(0) != Some('}') {
            return bad(self);
        }
        self.i += 1;
        Ok(ParamExp { name, op })
    }

    /// A Brace word that also ends at an unquoted '/' (a replacement's
    /// pattern).
    fn until_slash(&mut self) -> Result<Word, String> {
        self.until_char('/')
    }

    fn until_colon(&mut self) -> Result<Word, String> {
        self.until_char(':')
    }

    /// Reads a brace operand up to an unquoted stop char or '}' by
    /// cutting the text there and lexing it as a Brace word.
    fn until_char(&mut self, stop: char) -> Result<Word, String> {
        let s = self.i;
        let mut k = self.i;
        let mut depth = 0;
        while k < self.cs.len() {
            let c = self.cs[k];
            if c == '\\' {
                k += 2;
                continue;
            }
            if c == '{' {
                depth += 1;
            }
            if c == '}' {
                if depth == 0 {
                    break;
                }
                depth -= 1;
            }
            if c == stop && depth == 0 {
                break;
            }
            k += 1;
        }
        let mut text: String = self.cs[s..k.min(self.cs.len())].iter().collect();
        self.i = k.min(self.cs.len());
        text.push('}');
        let mut p = Parser {
            cs: text.chars().collect(),
            i: 0,
            depth: self.depth,
            peeked: None,
            skip: None,
        };
        let w = p.word(Mode::Brace)?;
        Ok(w)
    }

    /// list: and-or lists up to EOF, ')', ';;' or one of the words
    /// `stops` in command position.
    fn list(&mut self, stops: &[&str]) -> Result<List, String> {
        self.enter()?;
        let mut l = Vec::new();
        loop {
            loop {
                match self.peek()? {
                    Tok::Newline | Tok::Op(";") | Tok::Op("&") => {
                        self.next()?;
                    }
                    _ => break,
                }
            }
            match self.peek()? {
                Tok::Eof | Tok::Op(")") | Tok::Op(";;") => break,
                Tok::Word(_, ref raw) if stops.contains(&raw.as_str()) => break,
                _ => {}
            }
            l.push(self.and_or()?);
            if self.peek()? == Tok::Op("&") {
                if let Some(last) = l.last_mut() {
                    last.background = true;
                }
            }
            match self.peek()? {
                Tok::Newline | Tok::Op(";") | Tok::Op("&") => {}
                _ => break,
            }
        }
        self.depth -= 1;
        Ok(l)
    }

    fn skip_newlines(&mut self) -> Result<(), String> {
        while self.peek()? == Tok::Newline {
            self.next()?;
        }
        Ok(())
    }

    fn and_or(&mut self) -> Result<AndOr, String> {
        let first = self.pipeline()?;
        let mut rest = Vec::new();
        loop {
            let c = match self.peek()? {
                Tok::Op("&&") => Connector::And,
                Tok::Op("||") => Connector::Or,
                _ => {
                    return Ok(AndOr {
                        first,
                        rest,
                        background: false,
                    })
                }
            };
            self.next()?;
            self.skip_newlines()?;
            rest.push((c, self.pipeline()?));
        }
    }

    fn pipeline(&mut self) -> Result<Pipeline, String> {
        let mut p = Pipeline::default();
        while self.peek_word("!")? {
            self.next()?;
            p.negate = !p.negate;
        }
        p.commands.push(self.command()?);
        while self.peek()? == Tok::Op("|") {
            self.next()?;
            self.skip_newlines()?;
            p.commands.push(self.command()?);
        }
        Ok(p)
    }

    fn command(&mut self) -> Result<Command, String> {
        self.enter()?;
        let c = self.command_inner();
        self.depth -= 1;
        c
    }

    fn command_inner(&mut self) -> Result<Command, String> {
        let t = self.peek()?;
        let compound = match &t {
            Tok::Op("(") => {
                self.next()?;
                let l = self.list(&[])?;
                self.expect_op(")")?;
                Compound::Subshell(l)
            }
            Tok::Op("((") => {
                self.next()?;
                let s = self.i;
                let mut depth = 0usize;
                loop {
                    match self.at(0) {
                        None => return Err("unexpected EOF while looking for matching `))'".into()),
                        Some('(') => depth += 1,
                        Some(')') if depth == 0 && self.at(1) == Some(')') => break,
                        Some(')') => depth = depth.saturating_sub(1),
                        _ => {}
                    }
                    self.i += 1;
                }
                let text: String = self.cs[s..self.i].iter().collect();
                self.i += 2;
                Compound::Arith(sub_word(&text, self.depth)?)
            }
            Tok::Word(_, raw) => match raw.as_str() {
                "{" => {
                    self.next()?;
                    let l = self.list(&["}"])?;
                    self.expect_word("}")?;
                    Compound::Brace(l)
                }
                "if" => self.if_()?,
                "while" | "until" => {
                    self.next()?;
                    let cond = self.list(&["do"])?;
                    self.expect_word("do")?;
                    let body = self.list(&["done"])?;
                    self.expect_word("done")?;
                    Compound::While {
                        until: raw == "until",
                        cond,
                        body,
                    }
                }
                "for" => self.for_()?,
                "case" => self.case()?,
                "[[" => {
                    self.next()?;
                    let c = self.cond_or()?;
                    self.expect_word("]]")?;
                    Compound::Cond(c)
                }
                "function" => {
                    self.next()?;
                    let name = match self.next()? {
                        Tok::Word(_, n) => n,
                        t => return Err(format!("syntax error near unexpected token `{}'", describe(&t))),
                    };
                    if self.peek()? == Tok::Op("(") {
                        self.next()?;
                        self.expect_op(")")?;
                    }
                    return self.function_body(name);
                }
                "then" | "else" | "elif" | "fi" | "do" | "done" | "esac" | "}" | "in" | "]]" => {
                    return Err(format!("syntax error near unexpected token `{}'", raw))
                }
                _ => return self.simple(),
            },
            Tok::IoNum(_) | Tok::Op("<") | Tok::Op(">") | Tok::Op(">>") | Tok::Op("<<")
            | Tok::Op("<<-") | Tok::Op("<<<") | Tok::Op(">&") | Tok::Op("<&") | Tok::Op(">|")
            | Tok::Op("&>") | Tok::Op("&>>") | Tok::Op("<>") => return self.simple(),
            t => return Err(format!("syntax error near unexpected token `{}'", describe(t))),
        };
        let mut redirects = Vec::new();
        while let Some(r) = self.redirect()? {
            redirects.push(r);
        }
        Ok(Command::Compound(Box::new(compound), redirects))
    }

    fn function_body(&mut self, name: String) -> Result<Command, String> {
        self.skip_newlines()?;
        let body = self.command()?;
        if !matches!(body, Command::Compound(..)) {
            return Err(format!("syntax error: the body of function `{}' must be a compound command", name));
        }
        Ok(Command::Function(name, Rc::new(body)))
    }

    fn if_(&mut self) -> Result<Compound, String> {
        self.next()?; // if
        let mut branches = Vec::new();
        let mut otherwise = None;
        loop {
            let cond = self.list(&["then"])?;
            self.expect_word("then")?;
            let body = self.list(&["elif", "else", "fi"])?;
            branches.push((cond, body));
            match self.next()? {
                Tok::Word(_, ref raw) if raw == "elif" => continue,
                Tok::Word(_, ref raw) if raw == "else" => {
                    otherwise = Some(self.list(&["fi"])?);
                    self.expect_word("fi")?;
                    break;
                }
                Tok::Word(_, ref raw) if raw == "fi" => break,
                t => return Err(format!("syntax error near unexpected token `{}' (expected `fi')", describe(&t))),
            }
        }
        Ok(Compound::If {
            branches,
            otherwise,
        })
    }

    fn for_(&mut self) -> Result<Compound, String> {
        self.next()?; // for
        if self.peek()? == Tok::Op("((") {
            // for (( init; cond; step )): arithmetic.
            self.next()?;
            let s = self.i;
            let mut depth = 0usize;
            loop {
                match self.at(0) {
                    None => return Err("unexpected EOF while looking for matching `))'".into()),
                    Some('(') => depth += 1,
                    Some(')') if depth == 0 && self.at(1) == Some(')') => break,
                    Some(')') => depth = depth.saturating_sub(1),
                    _ => {}
                }
                self.i += 1;
            }
            let text: String = self.cs[s..self.i].iter().collect();
            self.i += 2;
            let parts: Vec<&str> = text.split(';').collect();
            if parts.len() != 3 {
                return Err(format!("syntax error: arithmetic expression required in `for (({}))'", text));
            }
            let mut exprs = Vec::new();
            for p in parts {
                exprs.push(sub_word(p, self.depth)?);
            }
            match self.peek()? {
                Tok::Op(";") | Tok::Newline => {
                    self.next()?;
                }
                _ => {}
            }
            self.skip_newlines()?;
            let body = if self.peek_word("{")? {
                self.next()?;
                let b = self.list(&["}"])?;
                self.expect_word("}")?;
                b
            } else {
                self.expect_word("do")?;
                let b = self.list(&["done"])?;
                self.expect_word("done")?;
                b
            };
            let step = exprs.pop().unwrap();
            let cond = exprs.pop().unwrap();
            let init = exprs.pop().unwrap();
            return Ok(Compound::ArithFor { init, cond, step, body });
        }
        let var = match self.next()? {
            Tok::Word(_, raw) if is_name(&raw) => raw,
            t => return Err(format!("`{}': not a valid identifier", describe(&t))),
        };
        self.skip_newlines()?;
        let mut words = None;
        if self.peek_word("in")? {
            self.next()?;
            let mut ws = Vec::new();
            loop {
                match self.peek()? {
                    Tok::Word(w, _) => {
                        self.next()?;
                        ws.push(w);
                    }
                    _ => break,
                }
            }
            words = Some(ws);
        }
        match self.peek()? {
            Tok::Op(";") | Tok::Newline => {
                self.next()?;
            }
            _ => {}
        }
        self.skip_newlines()?;
        self.expect_word("do")?;
        let body = self.list(&["done"])?;
        self.expect_word("done")?;
        Ok(Compound::For { var, words, body })
    }

    fn case(&mut self) -> Result<Compound, String> {
        self.next()?; // case
        let word = match self.next()? {
            Tok::Word(w, _) => w,
            t => return Err(format!("syntax error near unexpected token `{}'", describe(&t))),
        };
        self.skip_newlines()?;
        self.expect_word("in")?;
        let mut arms = Vec::new();
        loop {
            self.skip_newlines()?;
            if self.peek_word("esac")? {
                self.next()?;
                break;
            }
            if self.peek()? == Tok::Op("(") {
                self.next()?;
            }
            let mut pats = Vec::new();
            loop {
                match self.next()? {
                    Tok::Word(w, _) => pats.push(w),
                    t => return Err(format!("syntax error near unexpected token `{}' in case pattern", describe(&t))),
                }
                match self.next()? {
                    Tok::Op("|") => continue,
                    Tok::Op(")") => break,
                    t => return Err(format!("syntax error near unexpected token `{}' in case pattern", describe(&t))),
                }
            }
            let body = self.list(&["esac"])?;
            arms.push((pats, body));
            match self.peek()? {
                Tok::Op(";;") => {
                    self.next()?;
                }
                Tok::Word(_, ref raw) if raw == "esac" => {}
                t => return Err(format!("syntax error near unexpected token `{}' in case", describe(&t))),
            }
        }
        Ok(Compound::Case { word, arms })
    }

    fn cond_or(&mut self) -> Result<Cond, String> {
        self.enter()?;
        let mut l = self.cond_and()?;
        while self.peek()? == Tok::Op("||") {
            self.next()?;
            self.skip_newlines()?;
            l = Cond::Or(Box::new(l), Box::new(self.cond_and()?));
        }
        self.depth -= 1;
        Ok(l)
    }

    fn cond_and(&mut self) -> Result<Cond, String> {
        let mut l = self.cond_not()?;
        while self.peek()? == Tok::Op("&&") {
            self.next()?;
            self.skip_newlines()?;
            l = Cond::And(Box::new(l), Box::new(self.cond_not()?));
        }
        Ok(l)
    }

    fn cond_not(&mut self) -> Result<Cond, String> {
        self.skip_newlines()?;
        if self.peek_word("!")? {
            self.next()?;
            self.enter()?;
            let c = self.cond_not()?;
            self.depth -= 1;
            return Ok(Cond::Not(Box::new(c)));
        }
        if self.peek()? == Tok::Op("(") {
            self.next()?;
            let c = self.cond_or()?;
            self.expect_op(")")?;
            return Ok(c);
        }
        let (w, raw) = match self.next()? {
            Tok::Word(w, raw) => (w, raw),
            t => return Err(format!("syntax error in conditional expression near `{}'", describe(&t))),
        };
        if raw.len() == 2 && raw.starts_with('-') && raw != "]]" {
            if let Tok::Word(arg, araw) = self.peek()? {
                if araw != "]]" {
                    self.next()?;
                    return Ok(Cond::Unary(raw, arg));
                }
            }
        }
        // A binary operator?
        let op = match self.peek()? {
            Tok::Word(_, ref r)
                if matches!(
                    r.as_str(),
                    "==" | "=" | "!=" | "=~" | "-eq" | "-ne" | "-lt" | "-le" | "-gt" | "-ge" | "-nt" | "-ot"
                ) =>
            {
                r.clone()
            }
            Tok::Op("<") => "<".into(),
            Tok::Op(">") => ">".into(),
            _ => return Ok(Cond::Word(w)),
        };
        self.next()?;
        let rhs = if op == "=~" {
            self.skip_blanks();
            self.word(Mode::Regex)?
        } else {
            match self.next()? {
                Tok::Word(r, _) => r,
                t => return Err(format!("syntax error in conditional expression near `{}'", describe(&t))),
            }
        };
        Ok(Cond::Binary(w, op, rhs))
    }

    /// A redirection, if one comes next.
    fn redirect(&mut self) -> Result<Option<Redirect>, String> {
        let mut fd = None;
        if let Tok::IoNum(n) = self.peek()? {
            self.next()?;
            fd = Some(n);
        }
        let op = match self.peek()? {
            Tok::Op(o @ ("<" | ">" | ">>" | ">|" | "<<" | "<<-" | "<<<" | ">&" | "<&" | "&>" | "&>>" | "<>")) => o,
            t => {
                if fd.is_some() {
                    return Err(format!("syntax error near unexpected token `{}'", describe(&t)));
                }
                return Ok(None);
            }
        };
        self.next()?;
        if op == "<<" || op == "<<-" {
            return Ok(Some(self.heredoc(fd.unwrap_or(0), op == "<<-")?));
        }
        let (target, raw) = match self.next()? {
            Tok::Word(w, raw) => (w, raw),
            t => return Err(format!("syntax error near unexpected token `{}'", describe(&t))),
        };
        let (fd, op) = match op {
            "<" | "<>" => (fd.unwrap_or(0), RedirOp::In),
            ">" | ">|" => (fd.unwrap_or(1), RedirOp::Out),
            ">>" => (fd.unwrap_or(1), RedirOp::Append),
            "<<<" => (fd.unwrap_or(0), RedirOp::Here),
            ">&" if raw.chars().all(|c| c.is_ascii_digit()) || raw == "-" => (fd.unwrap_or(1), RedirOp::Dup),
            ">&" => (fd.unwrap_or(1), RedirOp::OutErr),
            "<&" => (fd.unwrap_or(0), RedirOp::Dup),
            "&>" => (1, RedirOp::OutErr),
            _ => (1, RedirOp::AppendErr),
        };
        let target = if op == RedirOp::Here {
            // <<< word: the word and a newline.
            let mut t = target;
            t.parts.push(Part::Quoted("\n".into()));
            t
        } else {
            target
        };
        Ok(Some(Redirect { fd, op, target }))
    }

    /// A here-document: its body is read from the line after the current
    /// one (after earlier here-documents of the line).
    fn heredoc(&mut self, fd: u32, strip: bool) -> Result<Redirect, String> {
        let raw = match self.next()? {
            Tok::Word(_, raw) => raw,
            t => return Err(format!("syntax error near unexpected token `{}'", describe(&t))),
        };
        let quoted = raw.contains('\'') || raw.contains('"') || raw.contains('\\');
        let delim: String = raw.chars().filter(|c| !matches!(c, '\'' | '"' | '\\')).collect();
        let (nl, start) = match self.skip {
            Some((nl, end)) => (nl, end),
            None => {
                let mut k = self.i;
                while k < self.cs.len() && self.cs[k] != '\n' {
                    k += 1;
                }
                (k, (k + 1).min(self.cs.len()))
            }
        };
        let mut body = String::new();
        let mut k = start;
        let mut end = self.cs.len();
        while k < self.cs.len() {
            let mut e = k;
            while e < self.cs.len() && self.cs[e] != '\n' {
                e += 1;
            }
            let mut line: String = self.cs[k..e].iter().collect();
            if strip {
                line = line.trim_start_matches('\t').to_string();
            }
            let next = (e + 1).min(self.cs.len());
            if line == delim {
                end = next;
                break;
            }
            body.push_str(&line);
            if e < self.cs.len() {
                body.push('\n');
            }
            k = next;
        }
        if k >= self.cs.len() {
            end = self.cs.len();
        }
        self.skip = Some((nl, end));
        let target = if quoted {
            Word {
                parts: vec![Part::Quoted(body)],
            }
        } else {
            let mut w = sub_word(&body, self.depth)?;
            if w.parts.is_empty() {
                w.parts.push(Part::Quoted(String::new()));
            }
            w
        };
        Ok(Redirect {
            fd,
            op: RedirOp::Here,
            target,
        })
    }

    fn simple(&mut self) -> Result<Command, String> {
        let mut assigns = Vec::new();
        let mut words: Vec<Word> = Vec::new();
        let mut redirects = Vec::new();
        loop {
            if let Some(r) = self.redirect()? {
                redirects.push(r);
                continue;
            }
            match self.peek()? {
                Tok::Word(w, raw) => {
                    let decl = matches!(words.first().map(|w| w.parts.as_slice()), Some([Part::Lit(d)]) if matches!(d.as_str(), "local" | "declare" | "typeset" | "export" | "readonly"));
                    if words.is_empty() || decl {
                        if let Some(mut a) = assignment(&w, &raw) {
                            self.next()?;
                            if raw.ends_with('=') && a.index.is_none() && self.peek()? == Tok::Op("(") {
                                // NAME=(a b c): an array.
                                self.next()?;
                                let mut elems = Vec::new();
                                loop {
                                    match self.next()? {
                                        Tok::Word(e, _) => elems.push(e),
                                        Tok::Newline => {}
                                        Tok::Op(")") => break,
                                        t => return Err(format!("syntax error near unexpected token `{}'", describe(&t))),
                                    }
                                }
                                if decl {
                                    let mut w = w.clone();
                                    w.parts.push(Part::ArrayLit(elems));
                                    words.push(w);
                                    continue;
                                }
                                a.array = Some(elems);
                            }
                            if decl {
                                words.push(w);
                                continue;
                            }
                            assigns.push(a);
                            continue;
                        }
                    }
                    self.next()?;
                    if words.is_empty() && assigns.is_empty() && redirects.is_empty() && self.peek()? == Tok::Op("(") {
                        // NAME() compound: a function.
                        self.next()?;
                        self.expect_op(")")?;
                        if !is_fname(&raw) {
                            return Err(format!("`{}': not a valid identifier", raw));
                        }
                        return self.function_body(raw);
                    }
                    words.push(w);
                }
                _ => break,
            }
        }
        if words.is_empty() && assigns.is_empty() && redirects.is_empty() {
            let t = self.peek()?;
            return Err(format!("syntax error near unexpected token `{}'", describe(&t)));
        }
        Ok(Command::Simple {
            assigns,
            words,
            redirects,
        })
    }
}

fn is_fname(s: &str) -> bool {
    !s.is_empty() && s.chars().all(|c| c == '_' || c == '-' || c == '.' || c == ':' || c.is_ascii_alphanumeric())
}

/// Parses text as a word whose `$`, `` ` `` and `\` work as in double
/// quotes (here-document bodies, arithmetic).
fn sub_word(text: &str, depth: usize) -> Result<Word, String> {
    let mut p = Parser {
        cs: text.chars().collect(),
        i: 0,
        depth,
        peeked: None,
        skip: None,
    };
    p.word(Mode::Text)
}

/// If the word is an assignment NAME=value or NAME+=value (the name
/// unquoted), the assignment.
fn assignment(w: &Word, raw: &str) -> Option<Assign> {
    let eq = raw.find('=')?;
    let lhs = &raw[..eq];
    let (lhs, append) = match lhs.strip_suffix('+') {
        Some(n) => (n, true),
        None => (lhs, false),
    };
    let (name, indexed) = match lhs.find('[') {
        Some(b) if lhs.ends_with(']') => (&lhs[..b], true),
        _ => (lhs, false),
    };
    if !is_name(name) {
        return None;
    }
    let first = match w.parts.first() {
        Some(Part::Lit(s)) => s,
        _ => return None,
    };
    if !indexed {
        let cut = first.find('=')? + 1;
        let mut parts = Vec::new();
        if cut < first.len() {
            parts.push(Part::Lit(first[cut..].to_string()));
        }
        parts.extend(w.parts[1..].iter().cloned());
        return Some(Assign {
            name: name.to_string(),
            append,
            value: Word { parts },
            index: None,
            array: None,
        });
    }
    // NAME[INDEX]=value: the index parts run up to the Lit with "]=".
    let mut index = Word::default();
    let mut value = Word::default();
    let mut in_value = false;
    for (k, p) in w.parts.iter().enumerate() {
        if in_value {
            value.parts.push(p.clone());
            continue;
        }
        let text = match p {
            Part::Lit(t) => t.as_str(),
            _ => {
                index.parts.push(p.clone());
                continue;
            }
        };
        let text = if k == 0 { &text[name.len() + 1..] } else { text };
        let close = if append { "]+=" } else { "]=" };
        match text.find(close) {
            Some(c) => {
                if c > 0 {
                    index.parts.push(Part::Lit(text[..c].to_string()));
                }
                let rest = &text[c + close.len()..];
                if !rest.is_empty() {
                    value.parts.push(Part::Lit(rest.to_string()));
                }
                in_value = true;
            }
            None => index.parts.push(Part::Lit(text.to_string())),
        }
    }
    if !in_value {
        return None;
    }
    Some(Assign {
        name: name.to_string(),
        append,
        value,
        index: Some(index),
        array: None,
    })
}

/// Parses text as a word expanded as in double quotes (an array index).
pub fn parse_text(text: &str) -> Result<Word, String> {
    sub_word(text, 0)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn simple(src: &str) -> (Vec<Assign>, Vec<Word>, Vec<Redirect>) {
        let l = parse(src).unwrap();
        match &l[0].first.commands[0] {
            Command::Simple {
                assigns,
                words,
                redirects,
            } => (assigns.clone(), words.clone(), redirects.clone()),
            c => panic!("{:?}", c),
        }
    }

    #[test]
    fn words_and_quotes() {
        let (_, w, _) = simple(r#"echo a'b c'"d $X" \$"#);
        assert_eq!(w.len(), 3);
        assert_eq!(
            w[1].parts,
            vec![
                Part::Lit("a".into()),
                Part::Quoted("b c".into()),
                Part::Quoted("".into()),
                Part::Quoted("d ".into()),
                Part::Param(
                    Box::new(ParamExp {
                        name: "X".into(),
                        op: ParamOp::Plain
                    }),
                    true
                )
            ]
        );
        assert_eq!(w[2].parts, vec![Part::Quoted("$".into())]);
        let (a, w, _) = simple("A=1 B+=x cmd C=2");
        assert_eq!(a.len(), 2);
        assert!(a[1].append);
        assert_eq!(w.len(), 2);
    }

    #[test]
    fn compound() {
        let src = "if a; then b; elif c\nthen d; else e; fi\nfor x in 1 2; do echo $x; done\nwhile false; do :; done\ncase $x in a|b) echo 1;; *) echo 2;; esac\nf() { echo hi; }\n( cd x ) > out\n[[ -n $x && $y == a* ]]\n((i++))";
        let l = parse(src).unwrap();
        assert_eq!(l.len(), 8);
    }

    #[test]
    fn heredoc() {
        let l = parse("cat <<EOF > x\nhello $N\nEOF\necho after\ncat <<-'E'\n\t$lit\n\tE\n").unwrap();
        assert_eq!(l.len(), 3);
        match &l[0].first.commands[0] {
            Command::Simple { redirects, .. } => {
                assert_eq!(redirects[0].op, RedirOp::Here);
                assert_eq!(redirects[1].op, RedirOp::Out);
            }
            c => panic!("{:?}", c),
        }
        match &l[2].first.commands[0] {
            Command::Simple { redirects, .. } => {
                assert_eq!(redirects[0].target.parts, vec![Part::Quoted("$lit\n".into())]);
            }
            c => panic!("{:?}", c),
        }
    }

    #[test]
    fn errors() {
        for src in ["if true; then", "echo 'a", "echo \"a", "( echo", "echo $(ls", "case x in", "fi", "echo ${x", "a && ", "for 1 in x; do :; done"] {
            assert!(parse(src).is_err(), "{}", src);
        }
        let deep = "( ".repeat(1000) + &")".repeat(1000);
        assert!(parse(&deep).unwrap_err().contains("nesting too deep"));
        let deep = "$(".repeat(1000);
        assert!(parse(&deep).unwrap_err().contains("nesting too deep"));
        let deep = "${x:-".repeat(1000);
        assert!(parse(&deep).unwrap_err().contains("nesting too deep"));
    }
}

/// Whether the parts of a word so far are `NAME=` (or `NAME+=`): what
/// follows is an assignment's value.
fn assignment_value_start(parts: &[Part]) -> bool {
    match parts {
        [Part::Lit(l)] => l.ends_with('=') && is_name(l[..l.len() - 1].trim_end_matches('+')),
        _ => false,
    }
}
