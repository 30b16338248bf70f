//! Regular expressions for grep, sed and `[[ =~ ]]`: POSIX basic (BRE)
//! and extended (ERE) syntax with GNU's extensions (`\+ \? \|` in BRE,
//! back-references, `\w \W \s \S \b \B \< \>`), compiled to a small
//! program run by a backtracking machine with an explicit stack (no
//! recursion) and a step budget, so no pattern can hang or overflow the
//! stack. Matches are leftmost, greedy (not always POSIX's longest for
//! alternations).

use crate::glob::{class_matches, parse_class, Item};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Syntax {
    Basic,
    Extended,
    /// grep -F: the text itself.
    Fixed,
}

const MAX_PROG: usize = 50_000;
const MAX_NEST: usize = 32;
/// Steps one match attempt may take before it gives up (as no match).
const MAX_STEPS: usize = 2_000_000;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Assert {
    Start,
    End,
    WordB,
    NotWordB,
    WordStart,
    WordEnd,
}

#[derive(Debug, Clone)]
enum Node {
    Char(char),
    Any,
    Class(bool, Vec<Item>),
    Assert(Assert),
    Group(Box<Node>, Option<usize>),
    Concat(Vec<Node>),
    Alt(Vec<Node>),
    Repeat(Box<Node>, u32, Option<u32>),
    Backref(usize),
}

#[derive(Debug, Clone)]
enum Inst {
    Char(char),
    Any,
    Class(usize),
    Split(usize, usize),
    Jmp(usize),
    Save(usize),
    Assert(Assert),
    Backref(usize),
    Mark(usize),
    Progress(usize),
    Match,
}

/// A compiled regular expression.
pub(crate) struct Regex {
    prog: Vec<Inst>,
    classes: Vec<(bool, Vec<Item>)>,
    ncap: usize,
    nmarks: usize,
    icase: bool,
    anchored: bool,
}

struct Parser<'a> {
    cs: &'a [char],
    i: usize,
    syntax: Syntax,
    ncap: usize,
    depth: usize,
}

fn is_word(c: char) -> bool {
    c.is_alphanumeric() || c == '_'
}

/// Escapes text so that an ERE matches it literally.
pub(crate) fn escape(s: &str) -> String {
    let mut out = String::new();
    for c in s.chars() {
        if "\\.[]()*+?{}|^$".contains(c) {
            out.push('\\');
        }
        out.push(c);
    }
    out
}

impl<'a> Parser<'a> {
    fn ere(&self) -> bool {
        self.syntax == Syntax::Extended
    }

    fn alt(&mut self) -> Result<Node, String> {
        self.depth += 1;
        if self.depth > MAX_NEST {
            return Err("regular expression nested too deeply".into());
        }
        let mut alts = vec![self.concat()?];
        loop {
            if self.ere() && self.peek() == Some('|') {
                self.i += 1;
            } else if !self.ere() && self.peek() == Some('\\') && self.peek2() == Some('|') {
                self.i += 2;
            } else {
                break;
            }
            alts.push(self.concat()?);
        }
        self.depth -= 1;
        Ok(if alts.len() == 1 { alts.pop().unwrap() } else { Node::Alt(alts) })
    }

    fn peek(&self) -> Option<char> {
        self.cs.get(self.i).copied()
    }

    fn peek2(&self) -> Option<char> {
        self.cs.get(self.i + 1).copied()
    }

    fn at_group_end(&self) -> bool {
        if self.ere() {
            self.peek() == Some(')') && self.depth > 1
        } else {
            self.peek() == Some('\\') && self.peek2() == Some(')')
        }
    }

    fn at_alt(&self) -> bool {
        if self.ere() {
            self.peek() == Some('|')
        } else {
            self.peek() == Some('\\') && self.peek2() == Some('|')
        }
    }

    fn concat(&mut self) -> Result<Node, String> {
        let mut items: Vec<Node> = Vec::new();
        let start = self.i;
        while self.i < self.cs.len() && !self.at_group_end() && !self.at_alt() {
            let c = self.cs[self.i];
            // Quantifiers.
            let q = if c == '*' && !(items.is_empty() && (!self.ere() || self.i == start)) {
                self.i += 1;
                Some((0, None))
            } else if self.ere() && (c == '+' || c == '?') && !items.is_empty() {
                self.i += 1;
                Some(if c == '+' { (1, None) } else { (0, Some(1)) })
            } else if !self.ere() && c == '\\' && matches!(self.peek2(), Some('+') | Some('?')) && !items.is_empty() {
                let p = self.peek2().unwrap();
                self.i += 2;
                Some(if p == '+' { (1, None) } else { (0, Some(1)) })
            } else if (self.ere() && c == '{' || !self.ere() && c == '\\' && self.peek2() == Some('{')) && !items.is_empty() {
                let save = self.i;
                self.i += if self.ere() { 1 } else { 2 };
                match self.interval() {
                    Some(q) => Some(q),
                    None => {
                        if !self.ere() {
                            return Err("Invalid content of \\{\\}".into());
                        }
                        self.i = save;
                        None
                    }
                }
            } else {
                None
            };
            if let Some((min, max)) = q {
                let last = items.pop().unwrap();
                if let Node::Assert(_) = last {
                    items.push(last);
                    continue;
                }
                if min > 255 || max.map(|m| m > 255 || m < min).unwrap_or(false) {
                    return Err("Invalid content of \\{\\}".into());
                }
                items.push(Node::Repeat(Box::new(last), min, max));
                continue;
            }
            items.push(self.atom(start)?);
        }
        Ok(Node::Concat(items))
    }

    /// m}, m,}, m,n} (ERE) or m\}, ... (BRE), after the opening brace.
    fn interval(&mut self) -> Option<(u32, Option<u32>)> {
        let num = |p: &mut Parser| {
            let s = p.i;
            while matches!(p.peek(), Some(c) if c.is_ascii_digit()) {
                p.i += 1;
            }
            if p.i == s {
                None
            } else {
                p.cs[s..p.i].iter().collect::<String>().parse::<u32>().ok()
            }
        };
        let min = num(self);
        let max = if self.peek() == Some(',') {
            self.i += 1;
            num(self)
        } else {
            Some(min?)
        };
        let min = min.unwrap_or(0);
        if self.ere() {
            if self.peek() != Some('}') {
                return None;
            }
            self.i += 1;
        } else {
            if !(self.peek() == Some('\\') && self.peek2() == Some('}')) {
                return None;
            }
            self.i += 2;
        }
        Some((min, max))
    }

    fn atom(&mut self, start: usize) -> Result<Node, String> {
        let c = self.cs[self.i];
        self.i += 1;
        Ok(match c {
            '.' => Node::Any,
            '^' if self.ere() || self.i - 1 == start => Node::Assert(Assert::Start),
            '$' if self.ere() || self.i == self.cs.len() || self.at_group_end() || self.at_alt() => {
                Node::Assert(Assert::End)
            }
            '[' => match parse_class(self.cs, self.i, false) {
                Some((neg, items, next)) => {
                    self.i = next;
                    Node::Class(neg, items)
                }
                None => return Err("Unmatched [, [^, [:, [., or [=".into()),
            },
            '(' if self.ere() => self.group()?,
            ')' if self.ere() => Node::Char(')'),
            '\\' => {
                let n = match self.peek() {
                    Some(n) => n,
                    None => return Err("Trailing backslash".into()),
                };
                self.i += 1;
                match n {
                    '(' if !self.ere() => self.group()?,
                    '1'..='9' => {
                        let k = n as usize - '0' as usize;
                        if k > self.ncap {
                            return Err("Invalid back reference".into());
                        }
                        Node::Backref(k)
                    }
                    'w' => Node::Class(false, vec![Item::Named("alnum".into()), Item::Char('_')]),
                    'W' => Node::Class(true, vec![Item::Named("alnum".into()), Item::Char('_')]),
                    's' => Node::Class(false, vec![Item::Named("space".into())]),
                    'S' => Node::Class(true, vec![Item::Named("space".into())]),
                    'b' => Node::Assert(Assert::WordB),
                    'B' => Node::Assert(Assert::NotWordB),
                    '<' => Node::Assert(Assert::WordStart),
                    '>' => Node::Assert(Assert::WordEnd),
                    'n' => Node::Char('\n'),
                    't' => Node::Char('\t'),
                    c => Node::Char(c),
                }
            }
            c => Node::Char(c),
        })
    }

    fn group(&mut self) -> Result<Node, String> {
        self.ncap += 1;
        let k = self.ncap;
        let inner = self.alt()?;
        if self.ere() {
            if self.peek() != Some(')') {
                return Err("Unmatched ( or \\(".into());
            }
            self.i += 1;
        } else {
            if !(self.peek() == Some('\\') && self.peek2() == Some(')')) {
                return Err("Unmatched ( or \\(".into());
            }
            self.i += 2;
        }
        Ok(Node::Group(Box::new(inner), Some(k)))
    }
}

fn nullable(n: &Node) -> bool {
    match n {
        Node::Char(_) | Node::Any | Node::Class(..) => false,
        Node::Assert(_) | Node::Backref(_) => true,
        Node::Group(n, _) => nullable(n),
        Node::Concat(v) => v.iter().all(nullable),
        Node::Alt(v) => v.iter().any(nullable),
        Node::Repeat(n, min, _) => *min == 0 || nullable(n),
    }
}

struct Compiler {
    prog: Vec<Inst>,
    classes: Vec<(bool, Vec<Item>)>,
    nmarks: usize,
    icase: bool,
}

impl Compiler {
    fn emit(&mut self, i: Inst) -> Result<usize, String> {
        if self.prog.len() >= MAX_PROG {
            return Err("regular expression too big".into());
        }
        self.prog.push(i);
        Ok(self.prog.len() - 1)
    }

    fn node(&mut self, n: &Node) -> Result<(), String> {
        match n {
            Node::Char(c) => {
                let c = if self.icase { c.to_lowercase().next().unwrap_or(*c) } else { *c };
                self.emit(Inst::Char(c))?;
            }
            Node::Any => {
                self.emit(Inst::Any)?;
            }
            Node::Class(neg, items) => {
                self.classes.push((*neg, items.clone()));
                self.emit(Inst::Class(self.classes.len() - 1))?;
            }
            Node::Assert(a) => {
                self.emit(Inst::Assert(*a))?;
            }
            Node::Backref(k) => {
                self.emit(Inst::Backref(*k))?;
            }
            Node::Group(inner, k) => {
                if let Some(k) = k {
                    self.emit(Inst::Save(2 * k))?;
                }
                self.node(inner)?;
                if let Some(k) = k {
                    self.emit(Inst::Save(2 * k + 1))?;
                }
            }
            Node::Concat(v) => {
                for n in v {
                    self.node(n)?;
                }
            }
            Node::Alt(v) => {
                let mut jumps = Vec::new();
                for (i, n) in v.iter().enumerate() {
                    if i + 1 < v.len() {
                        let split = self.emit(Inst::Split(0, 0))?;
                        self.node(n)?;
                        jumps.push(self.emit(Inst::Jmp(0))?);
                        let next = self.prog.len();
                        self.prog[split] = Inst::Split(split + 1, next);
                    } else {
                        self.node(n)?;
                    }
                }
                let end = self.prog.len();
                for j in jumps {
                    self.prog[j] = Inst::Jmp(end);
                }
            }
            Node::Repeat(inner, min, max) => {
                for _ in 0..*min {
                    self.node(inner)?;
                }
                match max {
                    None => {
                        let null = nullable(inner);
                        let mark = self.nmarks;
                        if null {
                            self.nmarks += 1;
                        }
                        let split = self.emit(Inst::Split(0, 0))?;
                        if null {
                            self.emit(Inst::Mark(mark))?;
                        }
                        self.node(inner)?;
                        if null {
                            self.emit(Inst::Progress(mark))?;
                        }
                        self.emit(Inst::Jmp(split))?;
                        let end = self.prog.len();
                        self.prog[split] = Inst::Split(split + 1, end);
                    }
                    Some(max) => {
                        let mut splits = Vec::new();
                        for _ in *min..*max {
                            splits.push(self.emit(Inst::Split(0, 0))?);
                            self.node(inner)?;
                        }
                        let end = self.prog.len();
                        for s in splits {
                            self.prog[s] = Inst::Split(s + 1, end);
                        }
                    }
                }
            }
        }
        Ok(())
    }
}

enum Frame {
    Thread(usize, usize),
    Cap(usize, Option<usize>),
    Mark(usize, usize),
}

/// The capture groups of a match: (start, end) in chars; 0 is the whole.
pub(crate) type Captures = Vec<Option<(usize, usize)>>;

impl Regex {
    pub(crate) fn new(pat: &str, syntax: Syntax, icase: bool) -> Result<Regex, String> {
        let cs: Vec<char> = pat.chars().collect();
        let node = if syntax == Syntax::Fixed {
            Node::Concat(cs.iter().map(|&c| Node::Char(c)).collect())
        } else {
            let mut p = Parser {
                cs: &cs,
                i: 0,
                syntax,
                ncap: 0,
                depth: 0,
            };
            let n = p.alt()?;
            if p.i < cs.len() {
                return Err(if syntax == Syntax::Extended {
                    "Unmatched ) or \\)".into()
                } else {
                    "Unmatched ) or \\)".into()
                });
            }
            n
        };
        let ncap = count_caps(&node) + 1;
        let anchored = match &node {
            Node::Concat(v) => matches!(v.first(), Some(Node::Assert(Assert::Start))),
            _ => false,
        };
        let mut c = Compiler {
            prog: Vec::new(),
            classes: Vec::new(),
            nmarks: 0,
            icase,
        };
        c.node(&node)?;
        c.emit(Inst::Match)?;
        Ok(Regex {
            prog: c.prog,
            classes: c.classes,
            ncap,
            nmarks: c.nmarks,
            icase,
            anchored,
        })
    }

    /// The first match starting at or after `from`.
    pub(crate) fn find_at(&self, s: &[char], from: usize) -> Option<Captures> {
        let mut steps = 0usize;
        for start in from..=s.len() {
            if self.anchored && start > 0 {
                return None;
            }
            if let Some(c) = self.run(s, start, &mut steps) {
                return Some(c);
            }
            if steps > MAX_STEPS {
                return None;
            }
        }
        None
    }

    /// The number of groups, with the whole match.
    pub(crate) fn ncaps(&self) -> usize {
        self.ncap
    }

    pub(crate) fn is_match(&self, s: &[char]) -> bool {
        self.find_at(s, 0).is_some()
    }

    fn eq(&self, a: char, b: char) -> bool {
        a == b || (self.icase && a.to_lowercase().eq(b.to_lowercase()))
    }

    fn run(&self, s: &[char], start: usize, steps: &mut usize) -> Option<Captures> {
        let mut caps: Vec<Option<usize>> = vec![None; 2 * self.ncap];
        let mut marks = vec![usize::MAX; self.nmarks];
        let mut stack = vec![Frame::Thread(0, start)];
        caps[0] = Some(start);
        while let Some(f) = stack.pop() {
            let (mut pc, mut pos) = match f {
                Frame::Thread(pc, pos) => (pc, pos),
                Frame::Cap(slot, old) => {
                    caps[slot] = old;
                    continue;
                }
                Frame::Mark(slot, old) => {
                    marks[slot] = old;
                    continue;
                }
            };
            loop {
                *steps += 1;
                if *steps > MAX_STEPS {
                    return None;
                }
                match &self.prog[pc] {
                    Inst::Char(c) => {
                        if pos < s.len() && self.eq(s[pos], *c) {
                            pc += 1;
                            pos += 1;
                        } else {
                            break;
                        }
                    }
                    Inst::Any => {
                        if pos < s.len() {
                            pc += 1;
                            pos += 1;
                        } else {
                            break;
                        }
                    }
                    Inst::Class(k) => {
                        let (neg, items) = &self.classes[*k];
                        if pos < s.len() && class_matches(items, s[pos], self.icase) != *neg {
                            pc += 1;
                            pos += 1;
                        } else {
                            break;
                        }
                    }
                    Inst::Split(a, b) => {
                        stack.push(Frame::Thread(*b, pos));
                        pc = *a;
                    }
                    Inst::Jmp(a) => pc = *a,
                    Inst::Save(slot) => {
                        stack.push(Frame::Cap(*slot, caps[*slot]));
                        caps[*slot] = Some(pos);
                        pc += 1;
                    }
                    Inst::Mark(slot) => {
                        stack.push(Frame::Mark(*slot, marks[*slot]));
                        marks[*slot] = pos;
                        pc += 1;
                    }
                    Inst::Progress(slot) => {
                        if marks[*slot] == pos {
                            break;
                        }
                        pc += 1;
                    }
                    Inst::Assert(a) => {
                        let before = pos > 0 && is_word(s[pos - 1]);
                        let after = pos < s.len() && is_word(s[pos]);
                        let ok = match a {
                            Assert::Start => pos == 0,
                            Assert::End => pos == s.len(),
                            Assert::WordB => before != after,
                            Assert::NotWordB => before == after,
                            Assert::WordStart => !before && after,
                            Assert::WordEnd => before && !after,
                        };
                        if !ok {
                            break;
                        }
                        pc += 1;
                    }
                    Inst::Backref(k) => match (caps[2 * k], caps[2 * k + 1]) {
                        (Some(a), Some(b)) if b >= a => {
                            let n = b - a;
                            if pos + n <= s.len() && (0..n).all(|i| self.eq(s[pos + i], s[a + i])) {
                                pos += n;
                                pc += 1;
                            } else {
                                break;
                            }
                        }
                        _ => break,
                    },
                    Inst::Match => {
                        let mut out = Vec::with_capacity(self.ncap);
                        for k in 0..self.ncap {
                            out.push(match (caps[2 * k], caps[2 * k + 1]) {
                                (Some(a), Some(b)) => Some((a, b)),
                                (Some(a), None) if k == 0 => Some((a, pos)),
                                _ => None,
                            });
                        }
                        return Some(out);
                    }
                }
            }
        }
        None
    }
}

fn count_caps(n: &Node) -> usize {
    match n {
        Node::Group(inner, k) => k.unwrap_or(0).max(count_caps(inner)),
        Node::Concat(v) | Node::Alt(v) => v.iter().map(count_caps).max().unwrap_or(0),
        Node::Repeat(inner, ..) => count_caps(inner),
        _ => 0,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn m(p: &str, syn: Syntax, s: &str) -> Option<String> {
        let re = Regex::new(p, syn, false).unwrap();
        let cs: Vec<char> = s.chars().collect();
        re.find_at(&cs, 0).map(|c| {
            let (a, b) = c[0].unwrap();
            cs[a..b].iter().collect()
        })
    }

    #[test]
    fn matching() {
        use Syntax::*;
        assert_eq!(m("a.c", Basic, "xxabcx").as_deref(), Some("abc"));
        assert_eq!(m("^ab*", Basic, "abbbc").as_deref(), Some("abbb"));
        assert_eq!(m("a+", Basic, "aa+").as_deref(), Some("a+"));
        assert_eq!(m("a\\+", Basic, "caa").as_deref(), Some("aa"));
        assert_eq!(m("a+", Extended, "caa").as_deref(), Some("aa"));
        assert_eq!(m("(ab|cd)+$", Extended, "xabcd").as_deref(), Some("abcd"));
        assert_eq!(m("\\(a\\)\\1", Basic, "xaa").as_deref(), Some("aa"));
        assert_eq!(m("[0-9]\\{2,3\\}", Basic, "a12345").as_deref(), Some("123"));
        assert_eq!(m("[[:upper:]]+", Extended, "abCDe").as_deref(), Some("CD"));
        assert_eq!(m("\\bfoo\\b", Extended, "afoo foo").as_deref(), Some("foo"));
        assert_eq!(m("(a*)*b", Extended, "aaab").as_deref(), Some("aaab"));
        assert_eq!(m("x*", Extended, "abc").as_deref(), Some(""));
        assert_eq!(m("^$", Extended, "").as_deref(), Some(""));
        assert_eq!(m("a{2}", Extended, "a{2}aa").as_deref(), Some("aa"));
        assert_eq!(m("v[0-9]+\\.[0-9]+", Extended, "tag v1.22").as_deref(), Some("v1.22"));
        assert_eq!(m("a.c", Fixed, "abc a.c").as_deref(), Some("a.c"));
        assert!(Regex::new("(a", Syntax::Extended, false).is_err());
        assert!(Regex::new("a\\{1", Syntax::Basic, false).is_err());
        // Catastrophic patterns end (as no match) within the step budget.
        let s = "a".repeat(40);
        assert_eq!(m("(a*)*(a*)*(a*)*c", Extended, &s), None);
        let deep = "(".repeat(100) + &")".repeat(100);
        assert!(Regex::new(&deep, Syntax::Extended, false).is_err());
    }
}
