//! The shell's grammar: a command line becomes a list of and-or lists of
//! pipelines of simple commands. Words keep their quoting so that they
//! can be expanded when their command runs (after `$?` has changed).
//!
//! ```text
//! list     := and_or ((';' | '\n') and_or)* [';' | '\n']
//! and_or   := pipeline (('&&' | '||') pipeline)*
//! pipeline := ['!'] command ('|' command)*
//! command  := (word | redirect)+
//! redirect := ['1' | '2'] ('>' | '>>') word | '2>&1' | '>&2'
//! ```
//!
//! Not supported, and reported as syntax errors: command substitution,
//! subshells and groups, background jobs, input redirection, here
//! documents. There is no globbing: `*` is an ordinary character.

/// A piece of a word.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Part {
    /// Text taken literally. `quoted` is true for text from quotes or
    /// escapes: an empty quoted text still makes a field (`""`).
    Text { s: String, quoted: bool },
    /// A parameter expansion; unquoted ones are split into fields.
    Param { param: Param, quoted: bool },
}

/// What a `$` expansion names.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Param {
    /// `$NAME`, `${NAME}`, or `${NAME:-default}` (the default taken
    /// literally) when `default` is set.
    Var {
        name: String,
        default: Option<String>,
    },
    /// `$?`: the exit status of the last command.
    Status,
    /// `$0`..`$9`: a script line has no arguments, so this is `$0` (the
    /// shell's name) or empty.
    Positional(u8),
}

/// A word of a command: parts concatenated, then split into fields.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Word {
    pub parts: Vec<Part>,
}

impl Word {
    fn push_char(&mut self, c: char, quoted: bool) {
        if let Some(Part::Text { s, quoted: q }) = self.parts.last_mut() {
            if *q == quoted {
                s.push(c);
                return;
            }
        }
        self.parts.push(Part::Text {
            s: c.to_string(),
            quoted,
        });
    }

    /// The word's text if it is a plain unquoted literal.
    pub fn literal(&self) -> Option<&str> {
        match self.parts.as_slice() {
            [Part::Text { s, quoted: false }] => Some(s),
            _ => None,
        }
    }

    /// If the word is an assignment `NAME=value` (the name unquoted), the
    /// name and the word holding the value.
    pub fn assignment(&self) -> Option<(String, Word)> {
        let (first, rest) = self.parts.split_first()?;
        let s = match first {
            Part::Text { s, quoted: false } => s,
            _ => return None,
        };
        let (name, value) = s.split_once('=')?;
        if !is_name(name) {
            return None;
        }
        let mut parts = Vec::new();
        if !value.is_empty() {
            parts.push(Part::Text {
                s: value.to_string(),
                quoted: true,
            });
        }
        parts.extend(rest.iter().cloned());
        Some((name.to_string(), Word { parts }))
    }
}

/// Where a redirection sends a file descriptor (1 or 2).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Target {
    /// `> word` (truncate) or `>> word` (append).
    File { word: Word, append: bool },
    /// `>&N`: the same place as file descriptor N.
    Dup(u8),
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Redirect {
    pub fd: u8,
    pub target: Target,
}

/// A simple command: its words and redirections.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Command {
    pub words: Vec<Word>,
    pub redirects: Vec<Redirect>,
}

/// Commands connected by pipes; `!` negates the status.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
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
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AndOr {
    pub first: Pipeline,
    pub rest: Vec<(Connector, Pipeline)>,
}

/// A parsed command line: and-or lists run one after the other.
pub type List = Vec<AndOr>;

#[derive(Debug, Clone, PartialEq, Eq)]
enum Token {
    Word(Word),
    And,
    Or,
    Pipe,
    Sep,
    Newline,
    Bang,
    Redirect(u8, RedirOp),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum RedirOp {
    Truncate,
    Append,
    Dup(u8),
}

/// Whether s is a variable name.
pub fn is_name(s: &str) -> bool {
    let mut cs = s.chars();
    matches!(cs.next(), Some(c) if c == '_' || c.is_ascii_alphabetic())
        && cs.all(|c| c == '_' || c.is_ascii_alphanumeric())
}

struct Lexer {
    cs: Vec<char>,
    i: usize,
}

impl Lexer {
    fn peek(&self) -> Option<char> {
        self.cs.get(self.i).copied()
    }

    fn peek_at(&self, n: usize) -> Option<char> {
        self.cs.get(self.i + n).copied()
    }

    fn tokens(mut self) -> Result<Vec<Token>, String> {
        let mut out = Vec::new();
        loop {
            while matches!(self.peek(), Some(' ') | Some('\t') | Some('\r')) {
                self.i += 1;
            }
            let c = match self.peek() {
                Some(c) => c,
                None => return Ok(out),
            };
            match c {
                '\n' => {
                    self.i += 1;
                    out.push(Token::Newline);
                }
                ';' => {
                    if self.peek_at(1) == Some(';') {
                        return Err("unexpected ';;'".into());
                    }
                    self.i += 1;
                    out.push(Token::Sep);
                }
                '&' => {
                    if self.peek_at(1) != Some('&') {
                        return Err("background jobs ('&') are not supported".into());
                    }
                    self.i += 2;
                    out.push(Token::And);
                }
                '|' => {
                    if self.peek_at(1) == Some('|') {
                        self.i += 2;
                        out.push(Token::Or);
                    } else {
                        self.i += 1;
                        out.push(Token::Pipe);
                    }
                }
                '>' => out.push(self.redirect(1)?),
                '<' => return Err("input redirection ('<') is not supported".into()),
                '(' | ')' => {
                    return Err(format!("subshells and groups ('{}') are not supported", c))
                }
                '{' | '}' if self.word_ends_at(1) => {
                    return Err(format!("subshells and groups ('{}') are not supported", c))
                }
                '#' => {
                    while !matches!(self.peek(), None | Some('\n')) {
                        self.i += 1;
                    }
                }
                '!' if self.word_ends_at(1) => {
                    self.i += 1;
                    out.push(Token::Bang);
                }
                _ => {
                    let w = self.word()?;
                    // "2>file", "1>>file": a file descriptor number.
                    if self.peek() == Some('>') {
                        if let Some(fd @ ("1" | "2")) = w.literal() {
                            let fd = if fd == "1" { 1 } else { 2 };
                            out.push(self.redirect(fd)?);
                            continue;
                        }
                    }
                    out.push(Token::Word(w));
                }
            }
        }
    }

    /// Whether a word would end n characters ahead.
    fn word_ends_at(&self, n: usize) -> bool {
        match self.peek_at(n) {
            None => true,
            Some(c) => is_meta(c),
        }
    }

    /// Lexes '>' or '>>' (at self.i) and an optional '&N'.
    fn redirect(&mut self, fd: u8) -> Result<Token, String> {
        self.i += 1;
        if self.peek() == Some('>') {
            self.i += 1;
            return Ok(Token::Redirect(fd, RedirOp::Append));
        }
        if self.peek() == Some('&') {
            return match (self.peek_at(1), self.word_ends_at(2)) {
                (Some('1'), true) => {
                    self.i += 2;
                    Ok(Token::Redirect(fd, RedirOp::Dup(1)))
                }
                (Some('2'), true) => {
                    self.i += 2;
                    Ok(Token::Redirect(fd, RedirOp::Dup(2)))
                }
                _ => Err("only '>&1' and '>&2' are supported after '>&'".into()),
            };
        }
        Ok(Token::Redirect(fd, RedirOp::Truncate))
    }

    fn word(&mut self) -> Result<Word, String> {
        let mut w = Word::default();
        while let Some(c) = self.peek() {
            if is_meta(c) {
                break;
            }
            self.i += 1;
            match c {
                '\\' => match self.peek() {
                    Some('\n') => self.i += 1, // a line continuation
                    Some(n) => {
                        self.i += 1;
                        w.push_char(n, true);
                    }
                    None => w.push_char('\\', true),
                },
                '\'' => {
                    let start = self.i;
                    while self.peek() != Some('\'') {
                        if self.peek().is_none() {
                            return Err("unterminated single quote".into());
                        }
                        self.i += 1;
                    }
                    let s: String = self.cs[start..self.i].iter().collect();
                    self.i += 1;
                    w.parts.push(Part::Text { s, quoted: true });
                }
                '"' => self.double_quoted(&mut w)?,
                '$' => self.dollar(&mut w, false)?,
                '`' => return Err("command substitution ('`') is not supported".into()),
                _ => w.push_char(c, false),
            }
        }
        Ok(w)
    }

    /// The inside of "...", after the opening quote.
    fn double_quoted(&mut self, w: &mut Word) -> Result<(), String> {
        // An empty "" still makes a field.
        w.parts.push(Part::Text {
            s: String::new(),
            quoted: true,
        });
        loop {
            let c = match self.peek() {
                Some(c) => c,
                None => return Err("unterminated double quote".into()),
            };
            self.i += 1;
            match c {
                '"' => return Ok(()),
                '\\' => match self.peek() {
                    Some(n @ ('$' | '`' | '"' | '\\')) => {
                        self.i += 1;
                        w.push_char(n, true);
                    }
                    Some('\n') => self.i += 1,
                    _ => w.push_char('\\', true),
                },
                '$' => self.dollar(w, true)?,
                '`' => return Err("command substitution ('`') is not supported".into()),
                _ => w.push_char(c, true),
            }
        }
    }

    /// An expansion after '$'.
    fn dollar(&mut self, w: &mut Word, quoted: bool) -> Result<(), String> {
        let param = match self.peek() {
            Some('{') => {
                self.i += 1;
                let start = self.i;
                while self.peek() != Some('}') {
                    if self.peek().is_none() {
                        return Err("missing '}'".into());
                    }
                    self.i += 1;
                }
                let inner: String = self.cs[start..self.i].iter().collect();
                self.i += 1;
                braced(&inner)?
            }
            Some('?') => {
                self.i += 1;
                Param::Status
            }
            Some(c) if c.is_ascii_digit() => {
                self.i += 1;
                Param::Positional(c as u8 - b'0')
            }
            Some(c) if c == '_' || c.is_ascii_alphabetic() => {
                let start = self.i;
                while matches!(self.peek(), Some(c) if c == '_' || c.is_ascii_alphanumeric()) {
                    self.i += 1;
                }
                Param::Var {
                    name: self.cs[start..self.i].iter().collect(),
                    default: None,
                }
            }
            Some('(') => return Err("command substitution ('$(') is not supported".into()),
            _ => {
                w.push_char('$', quoted);
                return Ok(());
            }
        };
        w.parts.push(Part::Param { param, quoted });
        Ok(())
    }
}

/// The inside of ${...}.
fn braced(inner: &str) -> Result<Param, String> {
    if inner == "?" {
        return Ok(Param::Status);
    }
    let (name, default) = match inner.split_once(":-") {
        Some((n, d)) => (n, Some(d.to_string())),
        None => (inner, None),
    };
    if !is_name(name) {
        return Err(format!("${{{}}}: bad substitution", inner));
    }
    Ok(Param::Var {
        name: name.to_string(),
        default,
    })
}

/// Characters that end an unquoted word.
fn is_meta(c: char) -> bool {
    matches!(
        c,
        ' ' | '\t' | '\r' | '\n' | ';' | '&' | '|' | '>' | '<' | '(' | ')'
    )
}

/// Parses a command line.
pub fn parse(line: &str) -> Result<List, String> {
    let tokens = Lexer {
        cs: line.chars().collect(),
        i: 0,
    }
    .tokens()?;
    let mut p = Parser { tokens, i: 0 };
    let mut list = Vec::new();
    loop {
        while matches!(p.peek(), Some(Token::Sep) | Some(Token::Newline)) {
            p.i += 1;
        }
        if p.peek().is_none() {
            return Ok(list);
        }
        list.push(p.and_or()?);
        match p.peek() {
            None | Some(Token::Sep) | Some(Token::Newline) => {}
            Some(t) => return Err(format!("unexpected {}", describe(t))),
        }
    }
}

struct Parser {
    tokens: Vec<Token>,
    i: usize,
}

impl Parser {
    fn peek(&self) -> Option<&Token> {
        self.tokens.get(self.i)
    }

    fn and_or(&mut self) -> Result<AndOr, String> {
        let first = self.pipeline()?;
        let mut rest = Vec::new();
        loop {
            let c = match self.peek() {
                Some(Token::And) => Connector::And,
                Some(Token::Or) => Connector::Or,
                _ => return Ok(AndOr { first, rest }),
            };
            self.i += 1;
            self.skip_newlines();
            rest.push((c, self.pipeline()?));
        }
    }

    /// Skips line breaks, which may follow '&&', '||' and '|'.
    fn skip_newlines(&mut self) {
        while self.peek() == Some(&Token::Newline) {
            self.i += 1;
        }
    }

    fn pipeline(&mut self) -> Result<Pipeline, String> {
        let mut p = Pipeline::default();
        if self.peek() == Some(&Token::Bang) {
            self.i += 1;
            p.negate = true;
        }
        p.commands.push(self.command()?);
        while self.peek() == Some(&Token::Pipe) {
            self.i += 1;
            self.skip_newlines();
            p.commands.push(self.command()?);
        }
        Ok(p)
    }

    fn command(&mut self) -> Result<Command, String> {
        let mut c = Command::default();
        loop {
            match self.peek().cloned() {
                Some(Token::Word(w)) => {
                    self.i += 1;
                    c.words.push(w);
                }
                Some(Token::Redirect(fd, op)) => {
                    self.i += 1;
                    let target = match op {
                        RedirOp::Dup(n) => Target::Dup(n),
                        RedirOp::Truncate | RedirOp::Append => match self.peek().cloned() {
                            Some(Token::Word(word)) => {
                                self.i += 1;
                                Target::File {
                                    word,
                                    append: op == RedirOp::Append,
                                }
                            }
                            Some(t) => {
                                return Err(format!("unexpected {} after '>'", describe(&t)))
                            }
                            None => return Err("missing file name after '>'".into()),
                        },
                    };
                    c.redirects.push(Redirect { fd, target });
                }
                Some(Token::Bang) if !c.words.is_empty() => {
                    // "!" after a command word is an ordinary argument.
                    self.i += 1;
                    c.words.push(Word {
                        parts: vec![Part::Text {
                            s: "!".into(),
                            quoted: false,
                        }],
                    });
                }
                t => {
                    if c.words.is_empty() && c.redirects.is_empty() {
                        return Err(match t {
                            Some(t) => format!("unexpected {}", describe(&t)),
                            None => "unexpected end of line".into(),
                        });
                    }
                    return Ok(c);
                }
            }
        }
    }
}

fn describe(t: &Token) -> &'static str {
    match t {
        Token::Word(_) => "word",
        Token::And => "'&&'",
        Token::Or => "'||'",
        Token::Pipe => "'|'",
        Token::Sep => "';'",
        Token::Newline => "line break",
        Token::Bang => "'!'",
        Token::Redirect(..) => "'>'",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn text(s: &str, quoted: bool) -> Part {
        Part::Text {
            s: s.into(),
            quoted,
        }
    }

    fn var(name: &str, quoted: bool) -> Part {
        Part::Param {
            param: Param::Var {
                name: name.into(),
                default: None,
            },
            quoted,
        }
    }

    fn words(line: &str) -> Vec<Word> {
        let list = parse(line).unwrap();
        assert_eq!(list.len(), 1, "{:?}", list);
        assert!(list[0].rest.is_empty());
        list[0].first.commands[0].words.clone()
    }

    #[test]
    fn quoting() {
        assert_eq!(
            words("echo a  b"),
            vec![
                Word {
                    parts: vec![text("echo", false)]
                },
                Word {
                    parts: vec![text("a", false)]
                },
                Word {
                    parts: vec![text("b", false)]
                }
            ]
        );
        let w = words(r#"x'a b'"c $V ${W}"\ d\$"#);
        assert_eq!(
            w[0].parts,
            vec![
                text("x", false),
                text("a b", true),
                text("c ", true),
                var("V", true),
                text(" ", true),
                var("W", true),
                text(" ", true),
                text("d", false),
                text("$", true),
            ]
        );
        assert_eq!(words(r#"'$HOME'"#)[0].parts, vec![text("$HOME", true)]);
        assert_eq!(words(r#""\"\\\a""#)[0].parts, vec![text("\"\\\\a", true)]);
        assert_eq!(words(r#""""#)[0].parts, vec![text("", true)]);
        assert_eq!(words("a$ b$")[1].parts, vec![text("b$", false)]);
        assert_eq!(
            words("$? ${?} $0")[0].parts,
            vec![Part::Param {
                param: Param::Status,
                quoted: false
            }]
        );
        assert_eq!(
            words("${X:-a b}")[0].parts,
            vec![Part::Param {
                param: Param::Var {
                    name: "X".into(),
                    default: Some("a b".into())
                },
                quoted: false
            }]
        );
        assert_eq!(words("a\\\nb")[0].parts, vec![text("ab", false)]);
        assert_eq!(words("a # comment")[0].parts, vec![text("a", false)]);
        assert_eq!(words("a#b").len(), 1);
    }

    #[test]
    fn lists() {
        let l = parse("true && echo a || echo b; false\necho c ;").unwrap();
        assert_eq!(l.len(), 3);
        assert_eq!(
            l[0].rest.iter().map(|r| r.0).collect::<Vec<_>>(),
            vec![Connector::And, Connector::Or]
        );
        let l = parse("seq 3 | head -n 1 | wc -l").unwrap();
        assert_eq!(l[0].first.commands.len(), 3);
        let l = parse("! false").unwrap();
        assert!(l[0].first.negate);
        assert_eq!(parse("").unwrap().len(), 0);
        assert_eq!(parse("   # only a comment").unwrap().len(), 0);
        assert_eq!(parse("echo a &&\n echo b").unwrap().len(), 1);
        assert_eq!(parse("echo a |\n wc -l").unwrap().len(), 1);
        assert!(parse("echo a && ; echo b").is_err());
    }

    #[test]
    fn redirects() {
        let l = parse("echo hi >out.txt 2>&1 >> log 2> err").unwrap();
        let c = &l[0].first.commands[0];
        assert_eq!(c.words.len(), 2);
        let r: Vec<(u8, Target)> = c
            .redirects
            .iter()
            .map(|r| (r.fd, r.target.clone()))
            .collect();
        assert_eq!(
            r,
            vec![
                (
                    1,
                    Target::File {
                        word: Word {
                            parts: vec![text("out.txt", false)]
                        },
                        append: false
                    }
                ),
                (2, Target::Dup(1)),
                (
                    1,
                    Target::File {
                        word: Word {
                            parts: vec![text("log", false)]
                        },
                        append: true
                    }
                ),
                (
                    2,
                    Target::File {
                        word: Word {
                            parts: vec![text("err", false)]
                        },
                        append: false
                    }
                ),
            ]
        );
        // Only a bare 1 or 2 right before '>' is a descriptor.
        let l = parse("echo 12>x").unwrap();
        assert_eq!(l[0].first.commands[0].words.len(), 2);
        assert_eq!(l[0].first.commands[0].redirects[0].fd, 1);
    }

    #[test]
    fn errors() {
        for (line, want) in [
            ("echo 'a", "unterminated single quote"),
            ("echo \"a", "unterminated double quote"),
            ("echo $(ls)", "command substitution"),
            ("echo `ls`", "command substitution"),
            ("sleep 1 &", "background jobs"),
            ("cat < x", "input redirection"),
            ("(cd x)", "subshells"),
            ("echo >", "missing file name"),
            ("&& echo", "unexpected '&&'"),
            ("echo a ||", "unexpected end of line"),
            ("echo ${A B}", "bad substitution"),
            ("echo ${A", "missing '}'"),
            ("echo >&3", "only '>&1' and '>&2'"),
            ("a | | b", "unexpected '|'"),
        ] {
            let err = parse(line).unwrap_err();
            assert!(err.contains(want), "{:?}: {:?}", line, err);
        }
    }

    #[test]
    fn assignments() {
        let w = &words("A=1")[0];
        assert_eq!(
            w.assignment(),
            Some((
                "A".into(),
                Word {
                    parts: vec![text("1", true)]
                }
            ))
        );
        let w = &words("B=x\"$Y\"")[0];
        let (n, v) = w.assignment().unwrap();
        assert_eq!(n, "B");
        assert_eq!(v.parts[0], text("x", true));
        assert_eq!(words("'A'=1")[0].assignment(), None);
        assert_eq!(words("1A=1")[0].assignment(), None);
        assert_eq!(words("=1")[0].assignment(), None);
    }
}
