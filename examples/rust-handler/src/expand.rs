//! Word expansion: parameters (with their `${...}` operators), command
//! substitution, arithmetic, `~`, field splitting at $IFS, pathname
//! expansion (globbing) and quote removal; and `[[ ]]` expressions.

use std::cell::RefCell;
use std::rc::Rc;

use crate::parse::{Cond, ParamExp, ParamOp, Part, Word};
use crate::{arith, builtins, glob, regex, Buf, Flow, Io, Shell, Sink};

/// A field being built: its text, the same as a glob pattern (quoted
/// characters escaped), and whether an unquoted glob character is in it.
#[derive(Default, Clone)]
struct Field {
    s: String,
    pat: String,
    glob: bool,
}

#[derive(Default)]
struct Fields {
    done: Vec<Field>,
    cur: Field,
    /// Whether cur is a field even if empty (quotes make one).
    has: bool,
    /// A blank of $IFS ended the last field: the next text starts one.
    pending: bool,
}

impl Fields {
    fn quoted(&mut self, t: &str) {
        self.flush_pending();
        self.cur.s.push_str(t);
        self.cur.pat.push_str(&glob::escape(t));
        self.has = true;
    }

    fn unquoted(&mut self, t: &str) {
        if t.is_empty() {
            return;
        }
        self.flush_pending();
        self.cur.s.push_str(t);
        self.cur.pat.push_str(t);
        if glob::has_meta(t) {
            self.cur.glob = true;
        }
        self.has = true;
    }

    fn flush_pending(&mut self) {
        if self.pending {
            self.pending = false;
            self.end();
        }
    }

    fn end(&mut self) {
        self.done.push(std::mem::take(&mut self.cur));
        self.has = false;
    }

    /// Adds an unquoted expansion's value, split at the IFS characters.
    fn split(&mut self, v: &str, ifs: &str) {
        if ifs.is_empty() {
            self.unquoted(v);
            return;
        }
        let mut piece = String::new();
        for c in v.chars() {
            if ifs.contains(c) {
                if !piece.is_empty() {
                    self.unquoted(&piece);
                    piece.clear();
                }
                if c == ' ' || c == '\t' || c == '\n' {
                    if self.has {
                        self.pending = true;
                    }
                } else {
                    self.pending = false;
                    self.end();
                }
            } else {
                piece.push(c);
            }
        }
        if !piece.is_empty() {
            self.unquoted(&piece);
        }
    }

    fn finish(mut self) -> Vec<Field> {
        if self.has && !self.pending {
            self.done.push(self.cur);
        } else if self.has {
            self.done.push(self.cur);
        }
        self.done
    }
}

impl Shell {
    fn ifs(&self) -> String {
        self.var("IFS").unwrap_or_else(|| " \t\n".to_string())
    }

    /// Expands a word into fields: split, globbed, unquoted.
    pub(crate) fn expand(&mut self, w: &Word, io: &Io) -> Result<Vec<String>, Flow> {
        if let Some(words) = brace_expand(w) {
            let mut out = Vec::new();
            for w in &words {
                out.extend(self.expand_one(w, io)?);
            }
            return Ok(out);
        }
        self.expand_one(w, io)
    }

    fn expand_one(&mut self, w: &Word, io: &Io) -> Result<Vec<String>, Flow> {
        let mut f = Fields::default();
        self.expand_parts(&w.parts, &mut f, false, io)?;
        let mut out = Vec::new();
        for field in f.finish() {
            // A pattern only if a glob character is one there (`[` alone,
            // the test command, is not): else no directory is read, and
            // nullglob does not drop the word.
            if field.glob && glob::is_pattern(&field.pat) {
                let matches = glob::expand(self, &field.pat);
                if !matches.is_empty() || self.nullglob {
                    out.extend(matches);
                    continue;
                }
            }
            out.push(field.s);
        }
        Ok(out)
    }

    /// Expands a word into one string, without splitting or globbing.
    pub(crate) fn expand_string(&mut self, w: &Word, io: &Io) -> Result<String, Flow> {
        let mut f = Fields::default();
        self.expand_parts(&w.parts, &mut f, true, io)?;
        let fields = f.finish();
        Ok(fields
            .into_iter()
            .map(|f| f.s)
            .collect::<Vec<_>>()
            .join(" "))
    }

    /// Expands a word into a glob pattern: quoted characters escaped.
    pub(crate) fn expand_pattern(&mut self, w: &Word, io: &Io) -> Result<String, Flow> {
        let mut pat = String::new();
        for p in &w.parts {
            match p {
                Part::Lit(s) => pat.push_str(s),
                Part::Quoted(s) => pat.push_str(&glob::escape(s)),
                Part::Param(_, false) | Part::Command(_, false) | Part::Arith(_, false) => {
                    let mut f = Fields::default();
                    self.expand_parts(std::slice::from_ref(p), &mut f, true, io)?;
                    for fl in f.finish() {
                        pat.push_str(&fl.s);
                    }
                }
                _ => {
                    let mut f = Fields::default();
                    self.expand_parts(std::slice::from_ref(p), &mut f, true, io)?;
                    for fl in f.finish() {
                        pat.push_str(&glob::escape(&fl.s));
                    }
                }
            }
        }
        Ok(pat)
    }

    /// Expands a word into an extended regular expression for `=~`:
    /// quoted characters match themselves.
    fn expand_regex(&mut self, w: &Word, io: &Io) -> Result<String, Flow> {
        let mut re = String::new();
        for p in &w.parts {
            match p {
                Part::Lit(s) => re.push_str(s),
                Part::Quoted(s) => re.push_str(&regex::escape(s)),
                _ => {
                    let quoted = matches!(
                        p,
                        Part::Param(_, true) | Part::Command(_, true) | Part::Arith(_, true)
                    );
                    let mut f = Fields::default();
                    self.expand_parts(std::slice::from_ref(p), &mut f, true, io)?;
                    for fl in f.finish() {
                        if quoted {
                            re.push_str(&regex::escape(&fl.s));
                        } else {
                            re.push_str(&fl.s);
                        }
                    }
                }
            }
        }
        Ok(re)
    }

    /// Adds the expansions of parts to f; `all_quoted` treats them as
    /// double-quoted (no splitting, no globbing).
    fn expand_parts(&mut self, parts: &[Part], f: &mut Fields, all_quoted: bool, io: &Io) -> Result<(), Flow> {
        for p in parts {
            match p {
                Part::Lit(s) => {
                    if all_quoted {
                        f.quoted(s)
                    } else {
                        f.unquoted(s)
                    }
                }
                Part::Quoted(s) => f.quoted(s),
                Part::Tilde => {
                    let home = self.var("HOME").unwrap_or_else(|| "/".into());
                    f.quoted(&home);
                }
                Part::Param(pe, quoted) => self.expand_param(pe, *quoted || all_quoted, f, io)?,
                Part::Command(list, quoted) => {
                    let out = self.command_output(list, io)?;
                    self.add_value(&out, *quoted || all_quoted, f);
                }
                Part::ArrayLit(_) => {}
                Part::ProcSubst(list) => {
                    let out = self.capture(list, io)?;
                    let name = format!("/dev/fd/{}", 63 + self.proc_files.len());
                    if self.proc_files.iter().map(|(_, d)| d.len()).sum::<usize>() + out.len() > crate::MAX_BUFFERED {
                        io.error("sh: process substitution: buffer limit exceeded");
                        return Err(Flow::Exit(1));
                    }
                    self.proc_files.push((name.clone(), Rc::new(out)));
                    f.quoted(&name);
                }
                Part::Arith(w, quoted) => {
                    let text = self.expand_string(w, io)?;
                    let v = match arith::eval(self, &text) {
                        Ok(v) => v,
                        Err(msg) => {
                            io.error(&format!("sh: {}: {}", text.trim(), msg));
                            return Err(Flow::Exit(1));
                        }
                    };
                    self.add_value(&v.to_string(), *quoted || all_quoted, f);
                }
            }
        }
        Ok(())
    }

    fn add_value(&self, v: &str, quoted: bool, f: &mut Fields) {
        if quoted {
            f.quoted(v);
        } else {
            let ifs = self.ifs();
            f.split(v, &ifs);
        }
    }

    /// Runs a command substitution: its output without trailing newlines.
    pub(crate) fn command_output(&mut self, list: &crate::parse::List, io: &Io) -> Result<String, Flow> {
        // $(< file): the file.
        if let [ao] = list.as_slice() {
            if let (true, [crate::parse::Command::Simple { assigns, words, redirects }]) =
                (ao.rest.is_empty() && !ao.first.negate, ao.first.commands.as_slice())
            {
                if assigns.is_empty() && words.is_empty() && redirects.len() == 1 && redirects[0].op == crate::parse::RedirOp::In {
                    let name = self.expand_string(&redirects[0].target, io)?;
                    return match self.read_path(&name) {
                        Ok(d) => {
                            self.subst_status = 0;
                            let mut s = String::from_utf8_lossy(&d).into_owned();
                            while s.ends_with('\n') {
                                s.pop();
                            }
                            Ok(s)
                        }
                        Err(e) => {
                            io.error(&format!("sh: {}: {}", name, builtins::message(&e)));
                            self.subst_status = 1;
                            self.status = 1;
                            Ok(String::new())
                        }
                    };
                }
            }
        }
        let out = self.capture(list, io)?;
        let mut s = String::from_utf8_lossy(&out).into_owned();
        while s.ends_with('\n') {
            s.pop();
        }
        Ok(s)
    }

    /// Runs a list in a subshell and returns its output.
    fn capture(&mut self, list: &crate::parse::List, io: &Io) -> Result<Vec<u8>, Flow> {
        self.enter_subst(io)?;
        let buf = Rc::new(RefCell::new(Buf::default()));
        let cio = Io {
            stdin: io.stdin.clone(),
            out: Sink::Buf(buf.clone()),
            err: io.err.clone(),
        };
        let mut sub = self.clone();
        sub.loops = 0;
        // As bash (without inherit_errexit): set -e is off inside $(...).
        sub.errexit = false;
        sub.trace_level += 1;
        let status = match sub.run_list(list, &cio) {
            Ok(s) => s,
            Err(Flow::Exit(s)) | Err(Flow::Return(s)) => s,
            Err(_) => 0,
        };
        self.depth -= 1;
        if status == crate::STATUS_CANCELED && wasmrunner::is_canceled() {
            return Err(Flow::Exit(status));
        }
        self.subst_status = status;
        self.status = status;
        let out = buf.borrow_mut().take();
        Ok(out)
    }

    fn enter_subst(&mut self, io: &Io) -> Result<(), Flow> {
        if self.depth >= crate::MAX_CALL_DEPTH || !crate::stack_ok() {
            io.error(&format!(
                "sh: nesting too deep (more than {} nested calls and substitutions)",
                crate::MAX_CALL_DEPTH
            ));
            return Err(Flow::Exit(2));
        }
        self.depth += 1;
        Ok(())
    }

    /// The value of a parameter; None if unset.
    fn param_value(&self, name: &str) -> Option<String> {
        match name {
            "?" => Some(self.status.to_string()),
            "#" => Some(self.args.len().to_string()),
            "@" | "*" => {
                if self.args.is_empty() {
                    None
                } else {
                    let sep = self.ifs().chars().next().map(|c| c.to_string()).unwrap_or_default();
                    Some(self.args.join(if name == "*" { &sep } else { " " }))
                }
            }
            "$" => Some("1".into()),
            "!" => None,
            "-" => {
                let mut s = String::new();
                if self.errexit {
                    s.push('e');
                }
                if self.nounset {
                    s.push('u');
                }
                if self.xtrace {
                    s.push('x');
                }
                Some(s)
            }
            "0" => Some("sh".into()),
            n if n.chars().all(|c| c.is_ascii_digit()) => {
                let i: usize = n.parse().ok()?;
                self.args.get(i - 1).cloned()
            }
            "RANDOM" if !self.vars.contains_key("RANDOM") => Some(random().to_string()),
            "SECONDS" if !self.vars.contains_key("SECONDS") => Some(now_secs().saturating_sub(self.started).to_string()),
            "EPOCHSECONDS" if !self.vars.contains_key("EPOCHSECONDS") => Some(now_secs().to_string()),
            // $PWD follows cd unless the script set it.
            "PWD" if !self.vars.contains_key("PWD") => Some(self.pwd()),
            n => match self.arrays.get(n) {
                Some(a) => a.first().cloned(),
                None => match self.assoc.get(n) {
                    Some(m) => m.get("0").cloned(),
                    None => self.var(n),
                },
            },
        }
    }

    /// The items of an array (a scalar is an array of one), or None.
    fn array_items(&self, name: &str) -> Option<Vec<String>> {
        if let Some(m) = self.assoc.get(name) {
            return Some(m.values().cloned().collect());
        }
        match self.arrays.get(name) {
            Some(a) => Some(a.clone()),
            None => self.var(name).map(|v| vec![v]),
        }
    }

    /// Adds items as "$@" adds the arguments.
    fn add_list(&self, items: &[String], quoted: bool, star: bool, f: &mut Fields) {
        if quoted && star {
            let sep = self.ifs().chars().next().map(|c| c.to_string()).unwrap_or_default();
            f.quoted(&items.join(&sep));
        } else if quoted {
            for (i, a) in items.iter().enumerate() {
                if i > 0 {
                    f.end();
                }
                f.quoted(a);
            }
        } else {
            let ifs = self.ifs();
            for (i, a) in items.iter().enumerate() {
                if i > 0 && f.has {
                    f.pending = true;
                }
                f.split(a, &ifs);
            }
        }
    }

    /// ${!NAME[@]} (an array's indices or keys), ${!PREFIX*} (the names
    /// of variables), ${!NAME} (the variable NAME names).
    fn expand_bang(&mut self, pe: &ParamExp, quoted: bool, f: &mut Fields, io: &Io) -> Result<(), Flow> {
        let name = &pe.name[1..];
        if let Some(base) = name.strip_suffix("[@]").or_else(|| name.strip_suffix("[*]")) {
            let keys: Vec<String> = match (self.assoc.get(base), self.arrays.get(base)) {
                (Some(m), _) => m.keys().cloned().collect(),
                (None, Some(a)) => (0..a.len()).map(|i| i.to_string()).collect(),
                (None, None) => self.var(base).map(|_| vec!["0".to_string()]).unwrap_or_default(),
            };
            if pe.op != ParamOp::Plain {
                io.error(&format!("sh: ${{{}}}: bad substitution (only the plain form is supported)", pe.name));
                return Err(Flow::Exit(1));
            }
            self.add_list(&keys, quoted, name.ends_with("[*]"), f);
            return Ok(());
        }
        if let Some(prefix) = name.strip_suffix('*').or_else(|| name.strip_suffix('@')) {
            let mut names: Vec<String> = crate::builtins::all_vars(self, false)
                .into_iter()
                .map(|(n, _)| n)
                .chain(self.arrays.keys().cloned())
                .chain(self.assoc.keys().cloned())
                .filter(|n| n.starts_with(prefix))
                .collect();
            names.sort();
            names.dedup();
            self.add_list(&names, quoted, name.ends_with('*'), f);
            return Ok(());
        }
        let target = match self.param_value(name) {
            Some(t) => t,
            None => {
                if self.nounset {
                    io.error(&format!("sh: {}: unbound variable", name));
                    return Err(Flow::Exit(1));
                }
                String::new()
            }
        };
        let valid = crate::parse::is_name(target.split('[').next().unwrap_or(""))
            || target.chars().all(|c| c.is_ascii_digit()) && !target.is_empty();
        if !valid {
            io.error(&format!("sh: {}: invalid indirect expansion", target));
            return Err(Flow::Exit(1));
        }
        let inner = ParamExp {
            name: target,
            op: pe.op.clone(),
        };
        self.expand_param(&inner, quoted, f, io)
    }

    fn expand_param(&mut self, pe: &ParamExp, quoted: bool, f: &mut Fields, io: &Io) -> Result<(), Flow> {
        if pe.name.len() > 1 && pe.name.starts_with('!') {
            return self.expand_bang(pe, quoted, f, io);
        }
        if let (Some(b), true) = (pe.name.find('['), pe.name.ends_with(']')) {
            let base = &pe.name[..b];
            let ix = &pe.name[b + 1..pe.name.len() - 1];
            if ix == "@" || ix == "*" {
                let items = self.array_items(base).unwrap_or_default();
                match &pe.op {
                    ParamOp::Plain => {
                        self.add_list(&items, quoted, ix == "*", f);
                        return Ok(());
                    }
                    ParamOp::Len => {
                        self.add_value(&items.len().to_string(), quoted, f);
                        return Ok(());
                    }
                    ParamOp::Trim { .. } | ParamOp::Replace { .. } | ParamOp::Case { .. } => {
                        // Each element on its own.
                        let mut out = Vec::with_capacity(items.len());
                        for it in items {
                            let mut one = Fields::default();
                            self.expand_param_value(pe, Some(it), true, &mut one, io)?;
                            out.push(one.finish().into_iter().map(|x| x.s).collect::<Vec<_>>().join(""));
                        }
                        self.add_list(&out, quoted, ix == "*", f);
                        return Ok(());
                    }
                    ParamOp::Substr { off, len } => {
                        // ${a[@]:OFF:LEN}: a slice of the items.
                        let off_s = self.expand_string(off, io)?;
                        let mut o = self.arith_or_exit(&off_s, io)?;
                        let n = items.len() as i64;
                        if o < 0 {
                            o += n;
                        }
                        let o = o.clamp(0, n) as usize;
                        let end = match len {
                            None => items.len(),
                            Some(l) => {
                                let ls = self.expand_string(l, io)?;
                                let l = self.arith_or_exit(&ls, io)?;
                                if l < 0 {
                                    io.error(&format!("sh: {}: substring expression < 0", ls));
                                    return Err(Flow::Exit(1));
                                }
                                (o as i64 + l).min(n) as usize
                            }
                        };
                        self.add_list(&items[o..end.max(o)], quoted, ix == "*", f);
                        return Ok(());
                    }
                    _ => {
                        let joined = items.join(" ");
                        return self.expand_param_value(pe, Some(joined), quoted, f, io);
                    }
                }
            }
            let text = if ix.contains('$') || ix.contains('`') {
                match crate::parse::parse_text(ix) {
                    Ok(w) => self.expand_string(&w, io)?,
                    Err(e) => {
                        io.error(&format!("sh: {}: {}", pe.name, e));
                        return Err(Flow::Exit(1));
                    }
                }
            } else {
                ix.to_string()
            };
            if self.assoc.contains_key(base) {
                // A quoted key: the text inside the quotes.
                let q = ix.len() >= 2 && (ix.starts_with('"') && ix.ends_with('"') || ix.starts_with('\'') && ix.ends_with('\''));
                let key = if q && ix.starts_with('"') {
                    match crate::parse::parse_text(&ix[1..ix.len() - 1]) {
                        Ok(w) => self.expand_string(&w, io)?,
                        Err(_) => ix[1..ix.len() - 1].to_string(),
                    }
                } else if q {
                    ix[1..ix.len() - 1].to_string()
                } else {
                    text
                };
                let value = self.assoc.get(base).and_then(|m| m.get(&key).cloned());
                return self.expand_param_value(pe, value, quoted, f, io);
            }
            let i = self.arith_or_exit(&text, io)?;
            let items = self.array_items(base).unwrap_or_default();
            let i = if i < 0 { items.len() as i64 + i } else { i };
            let value = if i >= 0 { items.get(i as usize).cloned() } else { None };
            return self.expand_param_value(pe, value, quoted, f, io);
        }
        let value = self.param_value(&pe.name);
        self.expand_param_value(pe, value, quoted, f, io)
    }

    fn expand_param_value(
        &mut self,
        pe: &ParamExp,
        value: Option<String>,
        quoted: bool,
        f: &mut Fields,
        io: &Io,
    ) -> Result<(), Flow> {
        let name = pe.name.as_str();
        // "$@": one field per argument.
        if (name == "@" || (name == "*" && !quoted)) && pe.op == ParamOp::Plain {
            let args = self.args.clone();
            if quoted {
                for (i, a) in args.iter().enumerate() {
                    if i > 0 {
                        f.end();
                    }
                    f.quoted(a);
                }
            } else {
                let ifs = self.ifs();
                for (i, a) in args.iter().enumerate() {
                    if i > 0 && f.has {
                        f.pending = true;
                    }
                    f.split(a, &ifs);
                }
            }
            return Ok(());
        }
        // ${@:off:len}: a slice of the arguments ($0 first).
        if let (ParamOp::Substr { off, len }, true) = (&pe.op, name == "@" || name == "*") {
            let mut all = vec!["sh".to_string()];
            all.extend(self.args.iter().cloned());
            let off_s = self.expand_string(off, io)?;
            let mut o = self.arith_or_exit(&off_s, io)?;
            let n = all.len() as i64;
            if o < 0 {
                o = (n + o).max(0);
            }
            let o = o.min(n) as usize;
            let end = match len {
                None => all.len(),
                Some(l) => {
                    let ls = self.expand_string(l, io)?;
                    (o as i64 + self.arith_or_exit(&ls, io)?.max(0)).min(n) as usize
                }
            };
            let items = &all[o..end.max(o)];
            if quoted && name == "@" {
                for (i, a) in items.iter().enumerate() {
                    if i > 0 {
                        f.end();
                    }
                    f.quoted(a);
                }
            } else {
                let v = items.join(" ");
                self.add_value(&v, quoted, f);
            }
            return Ok(());
        }
        let unbound = |sh: &Shell| {
            if sh.nounset && !matches!(name, "@" | "*") {
                io.error(&format!("sh: {}: unbound variable", name));
                return Err(Flow::Exit(1));
            }
            Ok(())
        };
        let v = match &pe.op {
            ParamOp::Plain => {
                if value.is_none() {
                    unbound(self)?;
                }
                value.unwrap_or_default()
            }
            ParamOp::Len => {
                if value.is_none() {
                    unbound(self)?;
                }
                let n = if name == "@" || name == "*" {
                    self.args.len()
                } else {
                    value.unwrap_or_default().chars().count()
                };
                n.to_string()
            }
            ParamOp::Test { op, colon, word } => {
                let set = match &value {
                    None => false,
                    Some(v) => !(*colon && v.is_empty()),
                };
                match op {
                    '-' => {
                        if set {
                            value.unwrap_or_default()
                        } else {
                            return self.expand_parts(&word.parts, f, quoted, io);
                        }
                    }
                    '+' => {
                        if set {
                            return self.expand_parts(&word.parts, f, quoted, io);
                        }
                        String::new()
                    }
                    '=' => {
                        if set {
                            value.unwrap_or_default()
                        } else {
                            let v = self.expand_string(word, io)?;
                            if !crate::parse::is_name(name) {
                                io.error(&format!("sh: ${}: cannot assign in this way", name));
                                return Err(Flow::Exit(1));
                            }
                            self.set_var(name, v.clone(), io)?;
                            v
                        }
                    }
                    _ => {
                        if set {
                            value.unwrap_or_default()
                        } else {
                            let msg = self.expand_string(word, io)?;
                            let msg = if msg.is_empty() {
                                "parameter null or not set".to_string()
                            } else {
                                msg
                            };
                            io.error(&format!("sh: {}: {}", name, msg));
                            return Err(Flow::Exit(1));
                        }
                    }
                }
            }
            ParamOp::Trim { suffix, longest, pat } => {
                if value.is_none() {
                    unbound(self)?;
                }
                let v = value.unwrap_or_default();
                let pat = self.expand_pattern(pat, io)?;
                trim(&v, &pat, *suffix, *longest)
            }
            ParamOp::Replace { all, anchor, pat, rep } => {
                if value.is_none() {
                    unbound(self)?;
                }
                let v = value.unwrap_or_default();
                let pat = self.expand_pattern(pat, io)?;
                let rep = self.expand_string(rep, io)?;
                replace(&v, &pat, &rep, *all, *anchor)
            }
            ParamOp::Substr { off, len } => {
                if value.is_none() {
                    unbound(self)?;
                }
                let v: Vec<char> = value.unwrap_or_default().chars().collect();
                let n = v.len() as i64;
                let off_s = self.expand_string(off, io)?;
                let mut o = self.arith_or_exit(&off_s, io)?;
                if o < 0 {
                    o = (n + o).max(0);
                }
                let o = o.min(n);
                let end = match len {
                    None => n,
                    Some(l) => {
                        let ls = self.expand_string(l, io)?;
                        let l = self.arith_or_exit(&ls, io)?;
                        if l < 0 {
                            (n + l).max(o)
                        } else {
                            (o + l).min(n)
                        }
                    }
                };
                v[o as usize..end.max(o) as usize].iter().collect()
            }
            ParamOp::Case { upper, all } => {
                if value.is_none() {
                    unbound(self)?;
                }
                let v = value.unwrap_or_default();
                let conv = |c: char| {
                    if *upper {
                        c.to_uppercase().collect::<String>()
                    } else {
                        c.to_lowercase().collect::<String>()
                    }
                };
                if *all {
                    v.chars().map(conv).collect()
                } else {
                    let mut cs = v.chars();
                    match cs.next() {
                        Some(c) => conv(c) + cs.as_str(),
                        None => String::new(),
                    }
                }
            }
        };
        self.add_value(&v, quoted, f);
        Ok(())
    }

    fn arith_or_exit(&mut self, text: &str, io: &Io) -> Result<i64, Flow> {
        match arith::eval(self, text) {
            Ok(v) => Ok(v),
            Err(msg) => {
                io.error(&format!("sh: {}: {}", text.trim(), msg));
                Err(Flow::Exit(1))
            }
        }
    }

    /// A `[[ ]]` expression as `set -x` shows it: its words expanded.
    pub(crate) fn trace_cond(&mut self, c: &Cond, io: &Io) -> Result<String, Flow> {
        Ok(match c {
            Cond::And(a, b) => format!("{} && {}", self.trace_cond(a, io)?, self.trace_cond(b, io)?),
            Cond::Or(a, b) => format!("{} || {}", self.trace_cond(a, io)?, self.trace_cond(b, io)?),
            Cond::Not(a) => format!("! {}", self.trace_cond(a, io)?),
            Cond::Word(w) => self.expand_string(w, io)?,
            Cond::Unary(op, w) => format!("{} {}", op, self.expand_string(w, io)?),
            Cond::Binary(l, op, r) => {
                let lhs = self.expand_string(l, io)?;
                let rhs = self.expand_string(r, io)?;
                format!("{} {} {}", lhs, op, rhs)
            }
        })
    }

    /// Evaluates a `[[ ]]` expression: Ok(Err(message)) for a bad one.
    pub(crate) fn eval_cond(&mut self, c: &Cond, io: &Io) -> Result<Result<bool, String>, Flow> {
        Ok(match c {
            Cond::And(a, b) => match self.eval_cond(a, io)? {
                Ok(true) => self.eval_cond(b, io)?,
                r => r,
            },
            Cond::Or(a, b) => match self.eval_cond(a, io)? {
                Ok(false) => self.eval_cond(b, io)?,
                r => r,
            },
            Cond::Not(a) => self.eval_cond(a, io)?.map(|b| !b),
            Cond::Word(w) => Ok(!self.expand_string(w, io)?.is_empty()),
            Cond::Unary(op, w) => {
                let arg = self.expand_string(w, io)?;
                builtins::unary_test(self, op, &arg)
            }
            Cond::Binary(l, op, r) => {
                let lhs = self.expand_string(l, io)?;
                match op.as_str() {
                    "==" | "=" | "!=" => {
                        let pat = self.expand_pattern(r, io)?;
                        let m = glob::matches(&pat, &lhs);
                        Ok(if op == "!=" { !m } else { m })
                    }
                    "=~" => {
                        let re = self.expand_regex(r, io)?;
                        match regex::Regex::new(&re, regex::Syntax::Extended, false) {
                            Err(e) => return Ok(Err(format!("{}: {}", re, e))),
                            Ok(re) => {
                                let chars: Vec<char> = lhs.chars().collect();
                                match re.find_at(&chars, 0) {
                                    Some(caps) => {
                                        let groups: Vec<String> = caps
                                            .iter()
                                            .map(|c| c.map(|(s, e)| chars[s..e].iter().collect::<String>()).unwrap_or_default())
                                            .collect();
                                        self.vars.remove("BASH_REMATCH");
                                        self.arrays.insert("BASH_REMATCH".into(), groups);
                                        Ok(true)
                                    }
                                    None => Ok(false),
                                }
                            }
                        }
                    }
                    "<" | ">" => {
                        let rhs = self.expand_string(r, io)?;
                        Ok(if op == "<" { lhs < rhs } else { lhs > rhs })
                    }
                    _ => {
                        let rhs = self.expand_string(r, io)?;
                        if op == "-nt" || op == "-ot" {
                            return Ok(builtins::binary_test(self, &lhs, op, &rhs));
                        }
                        let a = self.arith_or_exit(&lhs, io)?;
                        let b = self.arith_or_exit(&rhs, io)?;
                        Ok(match op.as_str() {
                            "-eq" => a == b,
                            "-ne" => a != b,
                            "-lt" => a < b,
                            "-le" => a <= b,
                            "-gt" => a > b,
                            _ => a >= b,
                        })
                    }
                }
            }
        })
    }
}

/// How many words a brace expansion may make.
const MAX_BRACE_WORDS: usize = 10_000;

/// Brace expansion (`a{b,c}d`, `{1..5}`, `{a..e}`) of a word's unquoted
/// text: the words, or None if it has none.
fn brace_expand(w: &Word) -> Option<Vec<Word>> {
    let mut out = Vec::new();
    let mut todo = vec![w.clone()];
    let mut any = false;
    while let Some(w) = todo.pop() {
        match brace_once(&w) {
            Some(alts) if out.len() + todo.len() + alts.len() <= MAX_BRACE_WORDS => {
                any = true;
                todo.extend(alts.into_iter().rev());
            }
            _ => out.push(w),
        }
    }
    if any {
        Some(out)
    } else {
        None
    }
}

/// Expands the first brace expression of a word's literal parts.
fn brace_once(w: &Word) -> Option<Vec<Word>> {
    for (k, p) in w.parts.iter().enumerate() {
        let s = match p {
            Part::Lit(s) => s,
            _ => continue,
        };
        let cs: Vec<char> = s.chars().collect();
        for open in 0..cs.len() {
            if cs[open] != '{' || (open > 0 && cs[open - 1] == '$') {
                continue;
            }
            let mut depth = 0;
            let mut close = None;
            let mut commas = Vec::new();
            for (j, &c) in cs.iter().enumerate().skip(open) {
                match c {
                    '{' => depth += 1,
                    '}' => {
                        depth -= 1;
                        if depth == 0 {
                            close = Some(j);
                            break;
                        }
                    }
                    ',' if depth == 1 => commas.push(j),
                    _ => {}
                }
            }
            let close = match close {
                Some(c) => c,
                None => continue,
            };
            let inner: String = cs[open + 1..close].iter().collect();
            let alts: Vec<String> = if !commas.is_empty() {
                let mut v = Vec::new();
                let mut start = open + 1;
                for &c in commas.iter().chain(std::iter::once(&close)) {
                    v.push(cs[start..c].iter().collect());
                    start = c + 1;
                }
                v
            } else if let Some(seq) = sequence(&inner) {
                seq
            } else {
                continue;
            };
            let pre: String = cs[..open].iter().collect();
            let post: String = cs[close + 1..].iter().collect();
            let words = alts
                .into_iter()
                .map(|a| {
                    let mut parts = w.parts[..k].to_vec();
                    parts.push(Part::Lit(format!("{}{}{}", pre, a, post)));
                    parts.extend(w.parts[k + 1..].iter().cloned());
                    Word { parts }
                })
                .collect();
            return Some(words);
        }
    }
    None
}

/// `1..5`, `1..10..2`, `a..e`: the items.
fn sequence(s: &str) -> Option<Vec<String>> {
    let parts: Vec<&str> = s.split("..").collect();
    if parts.len() < 2 || parts.len() > 3 {
        return None;
    }
    let step = match parts.get(2) {
        Some(st) => st.parse::<i64>().ok()?.abs().max(1),
        None => 1,
    };
    if let (Ok(a), Ok(b)) = (parts[0].parse::<i64>(), parts[1].parse::<i64>()) {
        if (b - a).abs() / step > MAX_BRACE_WORDS as i64 {
            return None;
        }
        let width = if (parts[0].starts_with('0') && parts[0].len() > 1) || (parts[1].starts_with('0') && parts[1].len() > 1) {
            parts[0].len().max(parts[1].len())
        } else {
            0
        };
        let mut v = Vec::new();
        let mut n = a;
        loop {
            v.push(format!("{:0w$}", n, w = width));
            if n == b {
                break;
            }
            n += if b > a { step } else { -step };
            if (b > a && n > b) || (b < a && n < b) {
                break;
            }
        }
        return Some(v);
    }
    let (a, b) = (parts[0].chars().collect::<Vec<_>>(), parts[1].chars().collect::<Vec<_>>());
    if a.len() == 1 && b.len() == 1 && a[0].is_ascii_alphabetic() && b[0].is_ascii_alphabetic() {
        let (x, y) = (a[0] as u8, b[0] as u8);
        let v: Vec<String> = if x <= y {
            (x..=y).step_by(step as usize).map(|c| (c as char).to_string()).collect()
        } else {
            (y..=x).rev().step_by(step as usize).map(|c| (c as char).to_string()).collect()
        };
        return Some(v);
    }
    None
}

/// ${v#pat} and friends.
pub(crate) fn trim(v: &str, pat: &str, suffix: bool, longest: bool) -> String {
    let cs: Vec<char> = v.chars().collect();
    let n = cs.len();
    let sub = |a: usize, b: usize| cs[a..b].iter().collect::<String>();
    let p = glob::Pattern::new(pat);
    if !suffix {
        let range: Box<dyn Iterator<Item = usize>> = if longest { Box::new((0..=n).rev()) } else { Box::new(0..=n) };
        for i in range {
            if p.matches_chars(&cs[..i]) {
                return sub(i, n);
            }
        }
    } else {
        let range: Box<dyn Iterator<Item = usize>> = if longest { Box::new(0..=n) } else { Box::new((0..=n).rev()) };
        for i in range {
            if p.matches_chars(&cs[i..]) {
                return sub(0, i);
            }
        }
    }
    v.to_string()
}

/// ${v/pat/rep} and friends: the longest match at each place.
pub(crate) fn replace(v: &str, pat: &str, rep: &str, all: bool, anchor: Option<char>) -> String {
    let cs: Vec<char> = v.chars().collect();
    let n = cs.len();
    let p = glob::Pattern::new(pat);
    if pat.is_empty() {
        // ${v/#/p} and ${v/%/s} add a prefix or a suffix.
        return match anchor {
            Some('#') => format!("{}{}", rep, v),
            Some('%') => format!("{}{}", v, rep),
            _ => v.to_string(),
        };
    }
    let mut out = String::new();
    let mut i = 0;
    let mut replaced = false;
    while i <= n {
        if (anchor == Some('#') && i > 0) || (replaced && !all) {
            break;
        }
        let mut found = None;
        if anchor == Some('%') {
            if p.matches_chars(&cs[i..]) {
                found = Some(n);
            }
        } else {
            for j in (i..=n).rev() {
                if p.matches_chars(&cs[i..j]) {
                    found = Some(j);
                    break;
                }
            }
        }
        match found {
            Some(j) => {
                out.push_str(rep);
                replaced = true;
                if j == i {
                    if i < n {
                        out.push(cs[i]);
                    }
                    i += 1;
                } else {
                    i = j;
                }
            }
            None => {
                if i < n {
                    out.push(cs[i]);
                }
                i += 1;
            }
        }
    }
    while i < n {
        out.push(cs[i]);
        i += 1;
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn trims() {
        assert_eq!(trim("a/b/c.tar.gz", "*/", false, false), "b/c.tar.gz");
        assert_eq!(trim("a/b/c.tar.gz", "*/", false, true), "c.tar.gz");
        assert_eq!(trim("a/b/c.tar.gz", ".*", true, false), "a/b/c.tar");
        assert_eq!(trim("a/b/c.tar.gz", ".*", true, true), "a/b/c");
        assert_eq!(trim("abc", "x", true, true), "abc");
    }

    #[test]
    fn braces() {
        let words = |s: &str| -> Vec<String> {
            match brace_expand(&Word { parts: vec![Part::Lit(s.into())] }) {
                None => vec![s.to_string()],
                Some(ws) => ws
                    .into_iter()
                    .map(|w| match &w.parts[0] {
                        Part::Lit(x) => x.clone(),
                        _ => String::new(),
                    })
                    .collect(),
            }
        };
        assert_eq!(words("a{b,c}d"), vec!["abd", "acd"]);
        assert_eq!(words("{1..3}"), vec!["1", "2", "3"]);
        assert_eq!(words("{3..1}"), vec!["3", "2", "1"]);
        assert_eq!(words("{01..03}"), vec!["01", "02", "03"]);
        assert_eq!(words("{a..c}"), vec!["a", "b", "c"]);
        assert_eq!(words("x{a,b}{1,2}"), vec!["xa1", "xa2", "xb1", "xb2"]);
        assert_eq!(words("{a,{b,c}}"), vec!["a", "b", "c"]);
        assert_eq!(words("{}"), vec!["{}"]);
        assert_eq!(words("{a}"), vec!["{a}"]);
        assert_eq!(words("{1..100000000}"), vec!["{1..100000000}"]);
    }

    #[test]
    fn replaces() {
        assert_eq!(replace("a-b-c", "-", "_", false, None), "a_b-c");
        assert_eq!(replace("a-b-c", "-", "_", true, None), "a_b_c");
        assert_eq!(replace("v1.2.3", "v", "", false, Some('#')), "1.2.3");
        assert_eq!(replace("x.txt", ".txt", ".md", false, Some('%')), "x.md");
        assert_eq!(replace("aaa", "a*", "b", true, None), "b");
    }
}

pub(crate) fn now_secs() -> u64 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map(|d| d.as_secs()).unwrap_or(0)
}

thread_local! {
    static SEED: std::cell::Cell<u64> = std::cell::Cell::new(0);
}

/// $RANDOM: 0..32767 from a generator seeded with the clock.
fn random() -> u64 {
    SEED.with(|s| {
        let mut x = s.get();
        if x == 0 {
            x = std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map(|d| d.as_nanos() as u64)
                .unwrap_or(1)
                | 1;
        }
        // xorshift64*
        x ^= x >> 12;
        x ^= x << 25;
        x ^= x >> 27;
        s.set(x);
        (x.wrapping_mul(0x2545F4914F6CDD1D) >> 33) % 32768
    })
}
