//! Where the program's names stand: every place a contact field, an event,
//! a workflow, a template or a named wait is declared or used, in every
//! file of the program (workflows, test blocks, and the interpolations of
//! strings), and what each word of a file is for semantic tokens. The
//! declared names come from the AST; the places from one scan of each
//! file's text that knows the language's comments, strings, interpolations
//! and datetimes.

use crate::ast::{Item, Program, Stmt, StmtKind};
use crate::source::{FileId, SourceMap};
use std::collections::BTreeSet;

/// What a name names.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Kind {
    Field,
    Event,
    Workflow,
    Template,
    /// A named wait; names are per workflow (its index in the program).
    Wait(usize),
}

/// One place a name stands.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Occ {
    pub file: FileId,
    /// Byte offsets of the name itself (a template's text without quotes).
    pub start: usize,
    pub end: usize,
    pub kind: Kind,
    pub name: String,
    /// The declaration (a template has none).
    pub decl: bool,
}

/// A word's role, for semantic tokens.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Role {
    Keyword,
    Comment,
    Str,
    Number,
    Name(Kind),
    /// A word the scan cannot place (a payload field, a function, a
    /// contact's name in a test).
    Plain,
}

/// A word of a file and its role.
#[derive(Clone, Copy, Debug)]
pub struct Token {
    pub start: usize,
    pub end: usize,
    pub role: Role,
}

/// The names the program declares.
struct Declared {
    fields: BTreeSet<String>,
    events: BTreeSet<String>,
    workflows: Vec<(String, FileId, usize, usize)>,
    waits: Vec<BTreeSet<String>>,
}

fn declared(program: &Program) -> Declared {
    let mut d = Declared {
        fields: BTreeSet::new(),
        events: BTreeSet::new(),
        workflows: Vec::new(),
        waits: Vec::new(),
    };
    for item in &program.items {
        match item {
            Item::Contact(c) => d
                .fields
                .extend(c.fields.iter().map(|f| f.name.name.clone())),
            Item::Event(e) => {
                d.events.insert(e.name.name.clone());
            }
            Item::Workflow(w) => {
                d.workflows.push((
                    w.name.name.clone(),
                    w.span.file,
                    w.span.start as usize,
                    w.span.end as usize,
                ));
                let mut names = BTreeSet::new();
                wait_names(&w.body, &mut names);
                d.waits.push(names);
            }
            _ => {}
        }
    }
    d
}

fn wait_names(stmts: &[Stmt], out: &mut BTreeSet<String>) {
    for s in stmts {
        if let Some(n) = &s.name {
            out.insert(n.name.clone());
        }
        match &s.kind {
            StmtKind::WaitFor {
                received, timeout, ..
            } => {
                for b in received.iter().chain(timeout.iter()) {
                    wait_names(&b.stmts, out);
                }
            }
            StmtKind::If {
                branches,
                otherwise,
            } => {
                for (_, b) in branches {
                    wait_names(&b.stmts, out);
                }
                if let Some(b) = otherwise {
                    wait_names(&b.stmts, out);
                }
            }
            StmtKind::Split { arms, .. } => {
                for a in arms {
                    wait_names(&a.body.stmts, out);
                }
            }
            _ => {}
        }
    }
}

/// Every place a name stands, in every file of the program.
pub fn index(sources: &SourceMap, program: &Program) -> Vec<Occ> {
    let d = declared(program);
    let mut out = Vec::new();
    for (id, f) in sources.files.iter().enumerate() {
        scan(&f.text, id as FileId, &d, &mut out, &mut Vec::new());
    }
    out
}

/// The words of one file of the program and their roles.
pub fn tokens(sources: &SourceMap, program: &Program, file: FileId) -> Vec<Token> {
    let d = declared(program);
    let mut occs = Vec::new();
    let mut toks = Vec::new();
    scan(&sources.file(file).text, file, &d, &mut occs, &mut toks);
    toks.sort_by_key(|t| t.start);
    toks
}

/// The occurrence at byte `offset` of `file`, if a name stands there.
pub fn at(occs: &[Occ], file: FileId, offset: usize) -> Option<&Occ> {
    occs.iter()
        .find(|o| o.file == file && o.start <= offset && offset <= o.end)
}

fn is_start(b: u8) -> bool {
    b.is_ascii_alphabetic() || b == b'_'
}

fn is_word(b: u8) -> bool {
    b.is_ascii_alphanumeric() || b == b'_'
}

/// What an open brace opened.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Brace {
    /// `contact { ... }`: field declarations.
    ContactBlock,
    /// `contact ana { ... }` in a test: attribute keys are fields.
    ContactRecord,
    Other,
}

/// Scans `text`: its names into `occs`, every word's role into `toks`.
fn scan(text: &str, file: FileId, d: &Declared, occs: &mut Vec<Occ>, toks: &mut Vec<Token>) {
    let b = text.as_bytes();
    let mut i = 0;
    // The last two words (or punctuation) before here, outside strings.
    let mut prev: [String; 2] = [String::new(), String::new()];
    let mut braces: Vec<Brace> = Vec::new();
    let workflow_at = |pos: usize| {
        d.workflows
            .iter()
            .position(|(_, f, s, e)| *f == file && *s <= pos && pos < *e)
    };
    let push = |prev: &mut [String; 2], w: &str| {
        prev[0] = std::mem::take(&mut prev[1]);
        prev[1] = w.to_string();
    };
    while i < b.len() {
        let c = b[i];
        if c == b'/' && b.get(i + 1) == Some(&b'/') {
            let end = text[i..].find('\n').map_or(b.len(), |n| i + n);
            toks.push(Token {
                start: i,
                end,
                role: Role::Comment,
            });
            i = end;
        } else if c == b'"' {
            let start = i;
            i += 1;
            let mut parts = Vec::new();
            while i < b.len() && b[i] != b'"' {
                if b[i] == b'\\' {
                    i += 2;
                } else if b[i] == b'{' {
                    // An interpolation: names inside it.
                    let close = text[i..].find('}').map_or(b.len(), |n| i + n);
                    parts.push((i + 1, close));
                    i = close;
                } else {
                    i += 1;
                }
            }
            let end = (i + 1).min(b.len());
            toks.push(Token {
                start,
                end,
                role: Role::Str,
            });
            if prev[0] == "send" && !prev[1].is_empty() && is_start(prev[1].as_bytes()[0]) {
                occs.push(Occ {
                    file,
                    start: start + 1,
                    end: end.saturating_sub(1).max(start + 1),
                    kind: Kind::Template,
                    name: text[start + 1..end.saturating_sub(1).max(start + 1)].to_string(),
                    decl: false,
                });
            }
            for (s, e) in parts {
                let mut inner = Vec::new();
                scan_words(&text[..e.min(b.len())], s, file, d, occs, &mut inner);
            }
            push(&mut prev, "\"");
            i = end;
        } else if c == b'@' {
            // A datetime literal.
            let end = text[i..]
                .find(|ch: char| ch.is_whitespace() || ch == ')' || ch == ',' || ch == '}')
                .map_or(b.len(), |n| i + n);
            toks.push(Token {
                start: i,
                end,
                role: Role::Number,
            });
            push(&mut prev, "@");
            i = end;
        } else if c.is_ascii_digit() {
            let mut end = i;
            while end < b.len() && (is_word(b[end]) || b[end] == b'.' || b[end] == b'%') {
                end += 1;
            }
            toks.push(Token {
                start: i,
                end,
                role: Role::Number,
            });
            push(&mut prev, "0");
            i = end;
        } else if is_start(c) {
            let start = i;
            while i < b.len() && is_word(b[i]) {
                i += 1;
            }
            let w = &text[start..i];
            let after_dot = start > 0 && b[start - 1] == b'.';
            let next = text[i..].trim_start().as_bytes().first().copied();
            let role = classify(
                w,
                start,
                i,
                file,
                d,
                &prev,
                after_dot,
                next,
                braces.last().copied(),
                workflow_at(start),
                occs,
            );
            toks.push(Token {
                start,
                end: i,
                role,
            });
            push(&mut prev, w);
        } else {
            if c == b'{' {
                let kind = if prev[1] == "contact" {
                    Brace::ContactBlock
                } else if prev[0] == "contact" {
                    Brace::ContactRecord
                } else {
                    Brace::Other
                };
                braces.push(kind);
            } else if c == b'}' {
                braces.pop();
            }
            if !c.is_ascii_whitespace() {
                push(&mut prev, &text[i..i + 1]);
                if c == b'.' {
                    // `contact.x`: the word before the dot stays in view.
                    prev[1] = format!("{}.", prev[0]);
                }
            }
            i += 1;
        }
    }
}

/// Scans the words of an interpolation (`{contact.email}`).
fn scan_words(
    text: &str,
    from: usize,
    file: FileId,
    d: &Declared,
    occs: &mut Vec<Occ>,
    toks: &mut Vec<Token>,
) {
    let b = text.as_bytes();
    let mut i = from;
    let mut prev: [String; 2] = [String::new(), String::new()];
    while i < b.len() {
        if is_start(b[i]) {
            let start = i;
            while i < b.len() && is_word(b[i]) {
                i += 1;
            }
            let w = &text[start..i];
            let after_dot = start > 0 && b[start - 1] == b'.';
            let next = text[i..].trim_start().as_bytes().first().copied();
            let role = classify(
                w, start, i, file, d, &prev, after_dot, next, None, None, occs,
            );
            toks.push(Token {
                start,
                end: i,
                role,
            });
            prev[0] = std::mem::take(&mut prev[1]);
            prev[1] = if b.get(i) == Some(&b'.') {
                format!("{w}.")
            } else {
                w.to_string()
            };
        } else {
            i += 1;
        }
    }
}

#[allow(clippy::too_many_arguments)]
fn classify(
    w: &str,
    start: usize,
    end: usize,
    file: FileId,
    d: &Declared,
    prev: &[String; 2],
    after_dot: bool,
    next: Option<u8>,
    brace: Option<Brace>,
    workflow: Option<usize>,
    occs: &mut Vec<Occ>,
) -> Role {
    let mut add = |kind: Kind, decl: bool| {
        occs.push(Occ {
            file,
            start,
            end,
            kind,
            name: w.to_string(),
            decl,
        });
        Role::Name(kind)
    };
    if after_dot {
        let owner = prev[1].trim_end_matches('.');
        return if (owner == "contact" || owner.ends_with("contact")) && d.fields.contains(w) {
            add(Kind::Field, false)
        } else {
            Role::Plain
        };
    }
    if prev[1] == "as" {
        if let Some(wf) = workflow.filter(|wf| d.waits.get(*wf).is_some_and(|n| n.contains(w))) {
            return add(Kind::Wait(wf), true);
        }
    }
    if prev[1] == "workflow" && d.workflows.iter().any(|(n, ..)| n == w) {
        return add(Kind::Workflow, true);
    }
    if prev[1] == "event" && d.events.contains(w) && next == Some(b'{') {
        return add(Kind::Event, true);
    }
    if next == Some(b':') && d.fields.contains(w) {
        match brace {
            Some(Brace::ContactBlock) => return add(Kind::Field, true),
            Some(Brace::ContactRecord) => return add(Kind::Field, false),
            _ => {}
        }
    }
    if crate::vocabulary::KEYWORDS.contains(&w) {
        return Role::Keyword;
    }
    if d.events.contains(w) && next != Some(b':') {
        return add(Kind::Event, false);
    }
    if d.workflows.iter().any(|(n, ..)| n == w) && next != Some(b':') {
        return add(Kind::Workflow, false);
    }
    Role::Plain
}
