//! Shell patterns (`*`, `?`, `[...]`, `\c`): matching (case, `[[ == ]]`,
//! `${v#pat}`, find -name) and pathname expansion. Matching is iterative
//! (no recursion), linear in the text for each `*`.

use std::fs;

use crate::Shell;

/// How many paths a pattern may expand to.
const MAX_MATCHES: usize = 100_000;

#[derive(Debug, Clone)]
enum Tok {
    Char(char),
    Any,
    Star,
    /// A bracket expression: negated, and its items.
    Class(bool, Vec<Item>),
}

#[derive(Debug, Clone)]
pub(crate) enum Item {
    Char(char),
    Range(char, char),
    Named(String),
}

/// Whether c is in the named class ("alpha", "digit", ...).
pub(crate) fn in_named(name: &str, c: char) -> bool {
    match name {
        "alpha" => c.is_alphabetic(),
        "digit" => c.is_ascii_digit(),
        "alnum" => c.is_alphanumeric(),
        "upper" => c.is_uppercase(),
        "lower" => c.is_lowercase(),
        "space" => c.is_whitespace(),
        "blank" => c == ' ' || c == '\t',
        "punct" => c.is_ascii_punctuation(),
        "xdigit" => c.is_ascii_hexdigit(),
        "cntrl" => c.is_control(),
        "print" => !c.is_control(),
        "graph" => !c.is_control() && c != ' ',
        _ => false,
    }
}

pub(crate) fn class_matches(items: &[Item], c: char, icase: bool) -> bool {
    let test = |c: char| {
        items.iter().any(|it| match it {
            Item::Char(x) => *x == c,
            Item::Range(a, b) => *a <= c && c <= *b,
            Item::Named(n) => in_named(n, c),
        })
    };
    if test(c) {
        return true;
    }
    if icase {
        let l = c.to_lowercase().next().unwrap_or(c);
        let u = c.to_uppercase().next().unwrap_or(c);
        return test(l) || test(u);
    }
    false
}

/// Parses a bracket expression at cs[i] (just after '['); the items, the
/// negation and the index after ']', or None if it is not closed.
pub(crate) fn parse_class(cs: &[char], mut i: usize, escapes: bool) -> Option<(bool, Vec<Item>, usize)> {
    let mut neg = false;
    if i < cs.len() && (cs[i] == '!' || cs[i] == '^') {
        neg = true;
        i += 1;
    }
    let mut items = Vec::new();
    let mut first = true;
    while i < cs.len() {
        let c = cs[i];
        if c == ']' && !first {
            return Some((neg, items, i + 1));
        }
        first = false;
        if c == '[' && i + 1 < cs.len() && cs[i + 1] == ':' {
            if let Some(end) = (i + 2..cs.len().saturating_sub(1)).find(|&k| cs[k] == ':' && cs[k + 1] == ']') {
                items.push(Item::Named(cs[i + 2..end].iter().collect()));
                i = end + 2;
                continue;
            }
        }
        let mut lo = c;
        i += 1;
        if escapes && c == '\\' && i < cs.len() {
            lo = cs[i];
            i += 1;
        }
        if i + 1 < cs.len() && cs[i] == '-' && cs[i + 1] != ']' {
            let mut hi = cs[i + 1];
            i += 2;
            if escapes && hi == '\\' && i < cs.len() {
                hi = cs[i];
                i += 1;
            }
            items.push(Item::Range(lo, hi));
        } else {
            items.push(Item::Char(lo));
        }
    }
    None
}

/// A compiled shell pattern.
pub(crate) struct Pattern {
    toks: Vec<Tok>,
}

impl Pattern {
    pub(crate) fn new(pat: &str) -> Pattern {
        let cs: Vec<char> = pat.chars().collect();
        let mut toks = Vec::new();
        let mut i = 0;
        while i < cs.len() {
            let c = cs[i];
            i += 1;
            match c {
                '\\' if i < cs.len() => {
                    toks.push(Tok::Char(cs[i]));
                    i += 1;
                }
                '*' => {
                    if !matches!(toks.last(), Some(Tok::Star)) {
                        toks.push(Tok::Star)
                    }
                }
                '?' => toks.push(Tok::Any),
                '[' => match parse_class(&cs, i, true) {
                    Some((neg, items, next)) => {
                        toks.push(Tok::Class(neg, items));
                        i = next;
                    }
                    None => toks.push(Tok::Char('[')),
                },
                c => toks.push(Tok::Char(c)),
            }
        }
        Pattern { toks }
    }

    fn one(&self, t: &Tok, c: char) -> bool {
        match t {
            Tok::Char(x) => *x == c,
            Tok::Any => true,
            Tok::Class(neg, items) => class_matches(items, c, false) != *neg,
            Tok::Star => false,
        }
    }

    pub(crate) fn matches_chars(&self, s: &[char]) -> bool {
        let (mut p, mut i) = (0, 0);
        let mut star: Option<(usize, usize)> = None;
        while i < s.len() {
            if p < self.toks.len() {
                if let Tok::Star = self.toks[p] {
                    star = Some((p, i));
                    p += 1;
                    continue;
                }
                if self.one(&self.toks[p], s[i]) {
                    p += 1;
                    i += 1;
                    continue;
                }
            }
            match star {
                Some((sp, si)) => {
                    p = sp + 1;
                    i = si + 1;
                    star = Some((sp, si + 1));
                }
                None => return false,
            }
        }
        while p < self.toks.len() && matches!(self.toks[p], Tok::Star) {
            p += 1;
        }
        p == self.toks.len()
    }

    pub(crate) fn matches(&self, s: &str) -> bool {
        let cs: Vec<char> = s.chars().collect();
        self.matches_chars(&cs)
    }
}

/// Whether s matches the pattern pat.
pub(crate) fn matches(pat: &str, s: &str) -> bool {
    Pattern::new(pat).matches(s)
}

/// Whether unquoted text has glob characters.
pub(crate) fn has_meta(s: &str) -> bool {
    s.contains(|c| c == '*' || c == '?' || c == '[')
}

/// Escapes text so that a pattern matches it literally.
pub(crate) fn escape(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        if matches!(c, '*' | '?' | '[' | ']' | '\\') {
            out.push('\\');
        }
        out.push(c);
    }
    out
}

/// Removes a pattern's escapes.
fn unescape(s: &str) -> String {
    let mut out = String::new();
    let mut cs = s.chars();
    while let Some(c) = cs.next() {
        if c == '\\' {
            if let Some(n) = cs.next() {
                out.push(n);
            }
        } else {
            out.push(c);
        }
    }
    out
}

/// Whether a pattern (with escapes) has unescaped glob characters.
/// Whether a pattern (with escapes) has unescaped glob characters that
/// make it one.
pub(crate) fn is_pattern(pat: &str) -> bool {
    pattern_has_meta(pat)
}

/// A `[` opens a bracket expression only if a `]` closes it (`[`, the test
/// command, and `[abc` are literal, as in bash: no directory is read).
fn pattern_has_meta(s: &str) -> bool {
    let mut cs = s.chars();
    while let Some(c) = cs.next() {
        match c {
            '\\' => {
                cs.next();
            }
            '*' | '?' => return true,
            '[' if closes_bracket(cs.as_str()) => return true,
            _ => {}
        }
    }
    false
}

/// Whether rest (what follows a `[`) has the `]` that closes it: not as
/// its first member (after a `!` or `^`), where `]` is literal.
fn closes_bracket(rest: &str) -> bool {
    let rest = rest.strip_prefix(|c| c == '!' || c == '^').unwrap_or(rest);
    let rest = rest.strip_prefix(']').unwrap_or(rest);
    rest.contains(']')
}

/// Pathname expansion: the sorted paths matching pat (empty if none).
pub(crate) fn expand(sh: &Shell, pat: &str) -> Vec<String> {
    let absolute = pat.starts_with('/');
    let comps: Vec<&str> = pat.split('/').filter(|c| !c.is_empty()).collect();
    let mut cands: Vec<String> = vec![if absolute { "/".to_string() } else { String::new() }];
    for (k, comp) in comps.iter().enumerate() {
        let last = k == comps.len() - 1;
        let mut next = Vec::new();
        if !pattern_has_meta(comp) {
            let lit = unescape(comp);
            for c in cands {
                next.push(join(&c, &lit));
            }
        } else {
            let p = Pattern::new(comp);
            let dots = comp.starts_with('.') || comp.starts_with("\\.");
            for c in &cands {
                let dir = if c.is_empty() { ".".to_string() } else { c.clone() };
                let rd = match fs::read_dir(sh.resolve(&dir)) {
                    Ok(rd) => rd,
                    Err(_) => continue,
                };
                let mut names: Vec<String> = Vec::new();
                for e in rd.flatten() {
                    let name = e.file_name().to_string_lossy().into_owned();
                    if name.starts_with('.') && !dots {
                        continue;
                    }
                    if !last && !e.file_type().map(|t| t.is_dir() || t.is_symlink()).unwrap_or(false) {
                        continue;
                    }
                    if p.matches(&name) {
                        names.push(name);
                    }
                }
                names.sort();
                for n in names {
                    next.push(join(c, &n));
                    if next.len() > MAX_MATCHES {
                        break;
                    }
                }
            }
        }
        cands = next;
        if cands.is_empty() {
            return cands;
        }
    }
    let mut out: Vec<String> = cands
        .into_iter()
        .filter(|c| fs::symlink_metadata(sh.resolve(c)).is_ok())
        .collect();
    if pat.ends_with('/') {
        out = out
            .into_iter()
            .filter(|c| fs::metadata(sh.resolve(c)).map(|m| m.is_dir()).unwrap_or(false))
            .map(|c| c + "/")
            .collect();
    }
    out.sort();
    out
}

fn join(dir: &str, name: &str) -> String {
    if dir.is_empty() {
        name.to_string()
    } else if dir.ends_with('/') {
        format!("{}{}", dir, name)
    } else {
        format!("{}/{}", dir, name)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn patterns() {
        for (p, s, want) in [
            ("*", "", true),
            ("*.txt", "a.txt", true),
            ("*.txt", "a.txt.bak", false),
            ("a?c", "abc", true),
            ("[a-c]x", "bx", true),
            ("[!a-c]x", "bx", false),
            ("[[:digit:]]*", "1abc", true),
            ("\\*", "*", true),
            ("\\*", "a", false),
            ("*a*b*c*", "xxaxxbxxcxx", true),
            ("*a*b*c*", "xxaxxcxxbxx", false),
            ("v[0-9]*.[0-9]*", "v1.22", true),
            ("[", "[", true),
        ] {
            assert_eq!(matches(p, s), want, "{} {}", p, s);
        }
    }
}
