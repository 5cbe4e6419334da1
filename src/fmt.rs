//! `nurture fmt`: one canonical layout for a file, keeping its comments.
//!
//! The layout: two-space indents; one item per block separated by a blank
//! line; one field, header or statement per line; single blank lines between
//! fields and between statements kept where the source had any; expressions printed with the
//! fewest parentheses (`pretty.rs`); durations in their shortest form.
//! Comments on a line of their own stay before the line that followed them;
//! comments after code stay at the end of that code's line.

use crate::ast::*;
use crate::diagnostic::Diagnostic;
use crate::pretty;
use crate::source::FileId;

/// Formats one file; syntax errors are returned instead.
pub fn format_source(text: &str) -> Result<String, Vec<Diagnostic>> {
    let file: FileId = 0;
    let (items, diags) = crate::syntax::parse_file(file, text);
    if diags.iter().any(Diagnostic::is_error) {
        return Err(diags);
    }
    Ok(format_items(text, &items))
}

/// Prints `items`, parsed from `text` (whose comments they keep).
fn format_items(text: &str, items: &[Item]) -> String {
    let mut p = Printer::new(text);
    for (i, item) in items.iter().enumerate() {
        if i > 0 {
            // Consecutive event declarations stay grouped unless the source separated them.
            let grouped = matches!((&items[i - 1], item), (Item::Event(_), Item::Event(_)));
            if grouped {
                p.keep_blank(
                    item_span(&items[i - 1]).end as usize,
                    item_span(item).start as usize,
                );
            } else {
                p.blank();
            }
        }
        p.item(item);
    }
    p.flush_comments_before(text.len(), 0);
    p.finish()
}

fn item_span(item: &Item) -> crate::source::Span {
    item.span()
}

struct Comment {
    offset: usize,
    line: usize,
    text: String,
    /// Alone on its line (else it follows code).
    own_line: bool,
    done: bool,
}

struct Printer<'a> {
    src: &'a str,
    /// Output lines with the source line that produced them.
    lines: Vec<(String, Option<usize>)>,
    comments: Vec<Comment>,
}

/// The comments of a text, found outside string literals.
fn comments(src: &str) -> Vec<Comment> {
    let mut out = Vec::new();
    for (line_no, line) in src.split('\n').enumerate() {
        let start = src_offset_of_line(src, line_no);
        if let Some(i) = crate::syntax::scan::comment_start(line) {
            out.push(Comment {
                offset: start + i,
                line: line_no,
                text: line[i..].trim_end().to_string(),
                own_line: line[..i].trim().is_empty(),
                done: false,
            });
        }
    }
    out
}

fn src_offset_of_line(src: &str, line: usize) -> usize {
    if line == 0 {
        return 0;
    }
    src.match_indices('\n')
        .nth(line - 1)
        .map_or(src.len(), |(i, _)| i + 1)
}

impl<'a> Printer<'a> {
    fn new(src: &'a str) -> Printer<'a> {
        Printer {
            src,
            lines: Vec::new(),
            comments: comments(src),
        }
    }

    fn line_of(&self, offset: usize) -> usize {
        self.src[..offset.min(self.src.len())].matches('\n').count()
    }

    /// Writes a line at `indent` for the node starting at `offset`, after the
    /// own-line comments that precede it.
    fn line(&mut self, indent: usize, text: String, offset: usize) {
        self.flush_comments_before(offset, indent);
        let src_line = self.line_of(offset);
        self.lines
            .push((format!("{}{text}", "  ".repeat(indent)), Some(src_line)));
    }

    /// A line that closes a block (`}`), at the position of the block's end.
    fn close(&mut self, indent: usize, text: &str, end: usize) {
        self.flush_comments_before(end.saturating_sub(1), indent + 1);
        let src_line = self.line_of(end.saturating_sub(1));
        self.lines
            .push((format!("{}{text}", "  ".repeat(indent)), Some(src_line)));
    }

    fn blank(&mut self) {
        if self.lines.last().is_some_and(|(l, _)| !l.is_empty()) {
            self.lines.push((String::new(), None));
        }
    }

    /// A blank line when the source had one between `prev_end` and `next_start`.
    fn keep_blank(&mut self, prev_end: usize, next_start: usize) {
        let gap = &self.src[prev_end.min(next_start)..next_start];
        let segments: Vec<&str> = gap.split('\n').collect();
        // The first segment ends the previous line, the last starts the next one.
        if segments.len() > 2
            && segments[1..segments.len() - 1]
                .iter()
                .any(|l| l.trim().is_empty())
        {
            self.blank();
        }
    }

    fn flush_comments_before(&mut self, offset: usize, indent: usize) {
        for i in 0..self.comments.len() {
            let c = &self.comments[i];
            if c.done || c.offset >= offset {
                continue;
            }
            let text = c.text.clone();
            let (own, line) = (c.own_line, c.line);
            self.comments[i].done = true;
            if !own {
                if let Some(slot) = self.lines.iter_mut().rev().find(|(_, l)| *l == Some(line)) {
                    slot.0.push_str("  ");
                    slot.0.push_str(&text);
                    continue;
                }
            }
            self.lines
                .push((format!("{}{text}", "  ".repeat(indent)), None));
            // A blank line after a comment block stays.
            let next_line = self.src.split('\n').nth(line + 1);
            if next_line.is_some_and(|l| l.trim().is_empty()) && line + 1 < self.src.lines().count()
            {
                self.blank();
            }
        }
    }

    fn finish(mut self) -> String {
        // Trailing comments whose code line was printed last.
        self.flush_comments_before(self.src.len() + 1, 0);
        while self.lines.last().is_some_and(|(l, _)| l.is_empty()) {
            self.lines.pop();
        }
        let mut out: String = self.lines.into_iter().map(|(l, _)| l + "\n").collect();
        if out.is_empty() {
            out.push('\n');
        }
        out
    }

    fn item(&mut self, item: &Item) {
        match item {
            Item::Contact(c) => {
                self.line(0, "contact {".into(), c.span.start as usize);
                let mut prev_end: Option<u32> = None;
                for f in &c.fields {
                    // Groups of fields stay apart where the source parted them.
                    if let Some(end) = prev_end {
                        self.keep_blank(end as usize, f.span.start as usize);
                    }
                    self.line(1, field(f), f.span.start as usize);
                    prev_end = Some(f.span.end);
                }
                self.close(0, "}", c.span.end as usize);
            }
            Item::Event(e) => {
                let fields: Vec<String> = e
                    .fields
                    .iter()
                    .map(|f| format!("{}: {}", f.name.name, ty(&f.ty)))
                    .collect();
                let body = if fields.is_empty() {
                    "{}".to_string()
                } else {
                    format!("{{ {} }}", fields.join(", "))
                };
                self.line(
                    0,
                    format!("event {} {body}", e.name.name),
                    e.span.start as usize,
                );
            }
            Item::Workflow(w) => self.workflow(w),
            Item::Test(t) => self.test(t),
            Item::Timezone(z) => self.line(
                0,
                format!("timezone {}", pretty::string(&z.value)),
                z.span.start as usize,
            ),
            Item::Quiet(q) => {
                let clock = |c: &ClockTime| format!("{:02}:{:02}", c.hour, c.minute);
                let mut text = format!("quiet hours {} to {}", clock(&q.start), clock(&q.end));
                if !q.channels.is_empty() {
                    let names: Vec<&str> = q.channels.iter().map(|c| c.name.as_str()).collect();
                    text.push_str(&format!(" for {}", names.join(", ")));
                }
                self.line(0, text, q.span.start as usize);
            }
            Item::Limit(l) => self.line(
                0,
                format!(
                    "limit {} to {} per {}",
                    l.channel.name,
                    l.count,
                    pretty::duration(l.per.seconds)
                ),
                l.span.start as usize,
            ),
        }
    }

    fn test(&mut self, t: &TestBlock) {
        self.line(
            0,
            format!("test {} {{", pretty::string(&t.name.value)),
            t.span.start as usize,
        );
        let mut prev_end: Option<u32> = None;
        for s in &t.steps {
            if let Some(end) = prev_end {
                self.keep_blank(end as usize, s.span.start as usize);
            }
            self.line(1, step(s), s.span.start as usize);
            prev_end = Some(s.span.end);
        }
        self.close(0, "}", t.span.end as usize);
    }

    fn workflow(&mut self, w: &Workflow) {
        self.line(
            0,
            format!("workflow {} {{", w.name.name),
            w.span.start as usize,
        );
        let mut last_header_end = None;
        for (_, text, span) in headers(w) {
            self.line(1, text, span.start as usize);
            last_header_end = Some(span.end);
        }
        if last_header_end.is_some() && !w.body.is_empty() {
            self.blank();
        }
        self.stmts(1, &w.body, None);
        self.close(0, "}", w.span.end as usize);
    }

    fn stmts(&mut self, indent: usize, stmts: &[Stmt], mut prev_end: Option<u32>) {
        for s in stmts {
            if let Some(end) = prev_end {
                self.keep_blank(end as usize, s.span.start as usize);
            }
            self.stmt(indent, s);
            prev_end = Some(s.span.end);
        }
    }

    /// `{` ... `}` of a block whose opening line was just written.
    fn block_body(&mut self, indent: usize, b: &Block) {
        self.stmts(indent + 1, &b.stmts, None);
    }

    fn stmt(&mut self, indent: usize, s: &Stmt) {
        let at = s.span.start as usize;
        let simple = one_line(s);
        if let Some(text) = simple {
            self.line(indent, text, at);
            return;
        }
        match &s.kind {
            StmtKind::WaitFor {
                received, timeout, ..
            } => {
                let head = wait_head(s).unwrap_or_default();
                match (received, timeout) {
                    (None, None) => self.line(indent, head, at),
                    (Some(r), None) => {
                        self.line(indent, format!("{head} {{"), at);
                        self.block_body(indent, r);
                        self.close(indent, "}", r.span.end as usize);
                    }
                    (None, Some(t)) => {
                        self.line(indent, format!("{head} timeout {{"), at);
                        self.block_body(indent, t);
                        self.close(indent, "}", t.span.end as usize);
                    }
                    (Some(r), Some(t)) => {
                        self.line(indent, format!("{head} {{"), at);
                        self.block_body(indent, r);
                        self.close(indent, "} timeout {", t.span.start as usize + 1);
                        self.block_body(indent, t);
                        self.close(indent, "}", t.span.end as usize);
                    }
                }
            }
            StmtKind::If {
                branches,
                otherwise,
            } => {
                for (i, (cond, body)) in branches.iter().enumerate() {
                    if i == 0 {
                        self.line(indent, format!("if {} {{", pretty::expr(cond)), at);
                    } else {
                        self.close(
                            indent,
                            &format!("}} else if {} {{", pretty::expr(cond)),
                            cond.span.start as usize,
                        );
                    }
                    self.block_body(indent, body);
                }
                if let Some(b) = otherwise {
                    self.close(indent, "} else {", b.span.start as usize + 1);
                    self.block_body(indent, b);
                }
                self.close(indent, "}", s.span.end as usize);
            }
            StmtKind::Split { name, arms } => {
                let name = name
                    .as_ref()
                    .map(|n| format!("{} ", pretty::string(&n.value)))
                    .unwrap_or_default();
                self.line(indent, format!("split {name}{{"), at);
                for arm in arms {
                    let label = arm
                        .label
                        .as_ref()
                        .map(|l| format!(" as {}", pretty::string(&l.value)))
                        .unwrap_or_default();
                    self.line(
                        indent + 1,
                        format!("{}%{label} {{", arm.percent),
                        arm.percent_span.start as usize,
                    );
                    self.block_body(indent + 1, &arm.body);
                    self.close(indent + 1, "}", arm.body.span.end as usize);
                }
                self.close(indent, "}", s.span.end as usize);
            }
            kind => unreachable!("{kind:?} is one line, written above"),
        }
    }
}

/// Clears every wait's name in `stmts`, nested ones too.
/// A workflow's header lines as the formatter writes them, in order, each
/// with its kind (`trigger`, `goal`, `exit when`, `reenter`, `on change`)
/// and span.
pub fn headers(w: &Workflow) -> Vec<(&'static str, String, crate::source::Span)> {
    let mut out = Vec::new();
    if let Some(t) = &w.trigger {
        let text = match &t.kind {
            TriggerKind::Event(m) => format!("when {}", event_match(m)),
            TriggerKind::Inactive(d) => {
                format!("when inactive for {}", pretty::duration(d.seconds))
            }
            TriggerKind::Condition(c) => format!("when {}", pretty::expr(c)),
            TriggerKind::At(e) => format!("when at {}", pretty::expr(e)),
            TriggerKind::Every(s) => {
                let every = match &s.every {
                    Every::Day => "day".to_string(),
                    Every::Weekday(d) => d.name().to_string(),
                    Every::Month { day, .. } => format!("month on {day}"),
                    Every::Year(f) => format!("year on contact.{}", f.name),
                };
                let mut text = format!("when every {every} at {:02}:{:02}", s.at.hour, s.at.minute);
                if let Some(f) = &s.filter {
                    text.push_str(&format!(" where {}", pretty::expr(f)));
                }
                text
            }
        };
        out.push(("trigger", text, t.span));
    }
    for (kw, c) in [("goal", &w.goal), ("exit when", &w.exit_when)] {
        if let Some(c) = c {
            let text = match &c.kind {
                CriterionKind::Event(m) => format!("{kw} {}", event_match(m)),
                CriterionKind::Condition(e) => format!("{kw} {}", pretty::expr(e)),
            };
            out.push((kw, text, c.span));
        }
    }
    if let Some(r) = &w.reenter {
        let text = match &r.kind {
            ReenterKind::Never => "reenter never".to_string(),
            ReenterKind::Always => "reenter always".to_string(),
            ReenterKind::After(d) => format!("reenter after {}", pretty::duration(d.seconds)),
        };
        out.push(("reenter", text, r.span));
    }
    if let Some(c) = &w.on_change {
        out.push((
            "on change",
            format!("on change {}", c.kind.as_str()),
            c.span,
        ));
    }
    out
}

/// A statement without a block, as the formatter writes it (`send email
/// "hi"`, `wait 2d as cool`); `None` for a statement with blocks.
pub fn one_line(s: &Stmt) -> Option<String> {
    match &s.kind {
        StmtKind::Send {
            channel,
            template,
            data,
            transactional,
        } => Some(format!(
            "send {} {}{}{}",
            channel.name,
            pretty::string(&template.value),
            with(data),
            if *transactional { " transactional" } else { "" }
        )),
        StmtKind::Tag(e) => Some(format!("tag {}", pretty::expr(e))),
        StmtKind::Untag(e) => Some(format!("untag {}", pretty::expr(e))),
        StmtKind::Set { field, op, value } => {
            let op = match op {
                AssignOp::Assign => "=",
                AssignOp::Add => "+=",
                AssignOp::Sub => "-=",
            };
            Some(format!(
                "set contact.{} {op} {}",
                field.name,
                pretty::expr(value)
            ))
        }
        StmtKind::List { op, name } => Some(match op {
            ListOp::AddToList => format!("add to list {}", pretty::string(&name.value)),
            ListOp::RemoveFromList => {
                format!("remove from list {}", pretty::string(&name.value))
            }
            ListOp::AddToAudience => format!("add to audience {}", pretty::string(&name.value)),
        }),
        StmtKind::Notify { to, message } => Some(format!(
            "notify {} {}",
            pretty::string(&to.value),
            template(message)
        )),
        StmtKind::Webhook { name, data } => Some(format!(
            "webhook {}{}",
            pretty::string(&name.value),
            with(data)
        )),
        StmtKind::Wait(_) => wait_head(s),
        StmtKind::Stage(name) => Some(format!("stage {}", pretty::string(&name.value))),
        StmtKind::Exit => Some("exit".to_string()),
        StmtKind::Convert => Some("convert".to_string()),
        // Statements with blocks, laid out below.
        StmtKind::WaitFor { .. } | StmtKind::If { .. } | StmtKind::Split { .. } => None,
    }
}

/// A statement's first line as the formatter writes it, without its
/// blocks: [`one_line`], a `wait for`'s head, `if COND`, `split "name"`.
pub fn stmt_head(s: &Stmt) -> String {
    if let Some(line) = one_line(s) {
        return line;
    }
    match &s.kind {
        StmtKind::WaitFor { .. } => wait_head(s).unwrap_or_default(),
        StmtKind::If { branches, .. } => branches
            .first()
            .map(|(c, _)| format!("if {}", pretty::expr(c)))
            .unwrap_or_default(),
        StmtKind::Split { name, .. } => match name {
            Some(n) => format!("split {}", pretty::string(&n.value)),
            None => "split".to_string(),
        },
        _ => String::new(),
    }
}

/// A wait statement as one line, without its blocks, as the formatter
/// writes it: `wait 2d as cool`, `wait for opened within 2d as intro where
/// COND`; `None` for any other statement.
pub fn wait_head(s: &Stmt) -> Option<String> {
    match &s.kind {
        StmtKind::Wait(w) => Some(format!("wait {}{}", wait(w), wait_name(s))),
        StmtKind::WaitFor {
            event,
            within,
            filter,
            ..
        } => {
            let mut head = format!(
                "wait for {} within {}{}",
                event.name,
                pretty::duration(within.seconds),
                wait_name(s)
            );
            if let Some(f) = filter {
                head.push_str(&format!(" where {}", pretty::expr(f)));
            }
            Some(head)
        }
        _ => None,
    }
}

fn forget_wait_names(stmts: &mut [Stmt]) {
    for s in stmts {
        s.name = None;
        match &mut s.kind {
            StmtKind::If {
                branches,
                otherwise,
            } => {
                for (_, b) in branches {
                    forget_wait_names(&mut b.stmts);
                }
                if let Some(b) = otherwise {
                    forget_wait_names(&mut b.stmts);
                }
            }
            StmtKind::WaitFor {
                received, timeout, ..
            } => {
                for b in [received, timeout].into_iter().flatten() {
                    forget_wait_names(&mut b.stmts);
                }
            }
            StmtKind::Split { arms, .. } => {
                for a in arms {
                    forget_wait_names(&mut a.body.stmts);
                }
            }
            _ => {}
        }
    }
}

/// ` as NAME` for a named wait, else nothing.
fn wait_name(s: &Stmt) -> String {
    s.name
        .as_ref()
        .map(|n| format!(" as {}", n.name))
        .unwrap_or_default()
}

fn field(f: &FieldDecl) -> String {
    let mut s = format!("{}: {}", f.name.name, ty(&f.ty));
    if let Some(d) = &f.default {
        s.push_str(&format!(" = {}", pretty::expr(d)));
    }
    for a in &f.annotations {
        let args: Vec<&str> = a.args.iter().map(|x| x.name.as_str()).collect();
        if args.is_empty() {
            s.push_str(&format!(" @{}", a.name.name));
        } else {
            s.push_str(&format!(" @{}({})", a.name.name, args.join(", ")));
        }
    }
    s
}

fn ty(t: &TypeExpr) -> String {
    let base = match &t.kind {
        TypeKind::Named(n) => n.name.clone(),
        TypeKind::Set(inner) => format!("set<{}>", ty(inner)),
        TypeKind::List(inner) => format!("list<{}>", ty(inner)),
        TypeKind::Enum(members) => members
            .iter()
            .map(|m| pretty::string(&m.value))
            .collect::<Vec<_>>()
            .join(" | "),
    };
    if t.optional {
        format!("{base}?")
    } else {
        base
    }
}

fn event_match(m: &EventMatch) -> String {
    match &m.filter {
        Some(f) => format!("{} where {}", m.event.name, pretty::expr(f)),
        None => m.event.name.clone(),
    }
}

fn wait(w: &WaitKind) -> String {
    let clock = |c: &ClockTime| format!("{:02}:{:02}", c.hour, c.minute);
    match w {
        WaitKind::For(d) => pretty::duration(d.seconds),
        WaitKind::Expr(e) => pretty::expr(e),
        WaitKind::Clock(c) => format!("until {}", clock(c)),
        WaitKind::Weekday { day, at: None } => format!("until {}", day.name()),
        WaitKind::Weekday { day, at: Some(c) } => format!("until {} at {}", day.name(), clock(c)),
        WaitKind::Until(e) => format!("until {}", pretty::expr(e)),
    }
}

fn step(s: &TestStep) -> String {
    match &s.kind {
        StepKind::At(e) => format!("at {}", pretty::expr(e)),
        StepKind::Advance(d) => format!("advance {}", pretty::duration(d.seconds)),
        StepKind::Contact { id, fields } => format!("contact {} {}", test_id(id), record(fields)),
        StepKind::Update { id, fields } => format!("update {} {}", test_id(id), record(fields)),
        StepKind::Given { id, fields } => format!("given {} {}", test_id(id), record(fields)),
        StepKind::Event { id, event, fields } if fields.is_empty() => {
            format!("event {} {}", test_id(id), event.name)
        }
        StepKind::Event { id, event, fields } => {
            format!("event {} {} {}", test_id(id), event.name, record(fields))
        }
        StepKind::Expect { id, claim } => format!("expect {}: {}", test_id(id), self::claim(claim)),
    }
}

/// A contact id: bare when it is a plain name, quoted otherwise.
fn test_id(id: &Ident) -> String {
    let plain = id
        .name
        .chars()
        .next()
        .is_some_and(|c| c.is_ascii_alphabetic() || c == '_')
        && id
            .name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '_')
        && !crate::vocabulary::KEYWORDS.contains(&id.name.as_str());
    if plain {
        id.name.clone()
    } else {
        pretty::string(&id.name)
    }
}

fn record(fields: &[MapEntry]) -> String {
    if fields.is_empty() {
        return "{}".into();
    }
    let parts: Vec<String> = fields
        .iter()
        .map(|e| format!("{}: {}", e.key.name, pretty::expr(&e.value)))
        .collect();
    format!("{{ {} }}", parts.join(", "))
}

fn claim(c: &Claim) -> String {
    match c {
        Claim::Action { pattern: p, at } => match at {
            Some(at) => format!("{} at {}", pattern_text(p), pretty::expr(at)),
            None => pattern_text(p),
        },
        Claim::No(p) => format!("no {}", pattern_text(p)),
        Claim::NothingElse => "nothing else".into(),
        Claim::In { workflow, negated } => {
            format!("{}in {}", if *negated { "not " } else { "" }, workflow.name)
        }
        Claim::Outcome { workflow, outcome } => format!("{} {}", workflow.name, outcome.name),
        Claim::Holds(e) => pretty::expr(e),
    }
}

/// An action pattern as written.
pub fn pattern_text(p: &ActionPattern) -> String {
    let opt = |s: &Option<StrLit>| {
        s.as_ref()
            .map(|s| format!(" {}", pretty::string(&s.value)))
            .unwrap_or_default()
    };
    match &p.kind {
        PatternKind::Send {
            channel,
            template,
            data,
        } => format!(
            "send{}{}{}",
            channel
                .as_ref()
                .map(|c| format!(" {}", c.name))
                .unwrap_or_default(),
            opt(template),
            with(data)
        ),
        PatternKind::Tag(s) => format!("tag{}", opt(s)),
        PatternKind::Untag(s) => format!("untag{}", opt(s)),
        PatternKind::Set { field, value } => match value {
            Some(v) => format!("set contact.{} = {}", field.name, pretty::expr(v)),
            None => format!("set contact.{}", field.name),
        },
        PatternKind::AddToList(s) => format!("add to list{}", opt(s)),
        PatternKind::RemoveFromList(s) => format!("remove from list{}", opt(s)),
        PatternKind::AddToAudience(s) => format!("add to audience{}", opt(s)),
        PatternKind::Notify { to, message } => format!("notify{}{}", opt(to), opt(message)),
        PatternKind::Webhook { name, data } => format!("webhook{}{}", opt(name), with(data)),
    }
}

fn with(data: &Option<Vec<MapEntry>>) -> String {
    match data {
        None => String::new(),
        Some(entries) if entries.is_empty() => " with {}".to_string(),
        Some(entries) => {
            let parts: Vec<String> = entries
                .iter()
                .map(|e| format!("{}: {}", e.key.name, pretty::expr(&e.value)))
                .collect();
            format!(" with {{ {} }}", parts.join(", "))
        }
    }
}

fn template(t: &Template) -> String {
    let mut s = String::from("\"");
    for part in &t.parts {
        match part {
            TemplatePart::Text(text) => {
                let quoted = pretty::string(text);
                let inner = &quoted[1..quoted.len() - 1];
                s.push_str(&inner.replace('{', "\\{").replace('}', "\\}"));
            }
            TemplatePart::Expr(e) => {
                s.push('{');
                s.push_str(&pretty::expr(e));
                s.push('}');
            }
        }
    }
    s.push('"');
    s
}

/// Each workflow's name and fingerprint: the BLAKE3 hash of its canonical text
/// with comments removed, so that neither layout nor comments count as a
/// change (durable state resumes journeys only in unchanged workflows).
pub fn workflow_fingerprints(
    program: &crate::ast::Program,
    sources: &crate::source::SourceMap,
) -> Vec<(String, String)> {
    program
        .workflows()
        .map(|w| {
            let text = &sources.file(w.span.file).text[w.span.range()];
            (w.name.name.clone(), fingerprint(text))
        })
        .collect()
}

/// The fingerprint of one workflow's source text.
pub fn fingerprint(text: &str) -> String {
    let mut stripped = String::with_capacity(text.len());
    let mut from = 0;
    for l in crate::syntax::scan::scan(text) {
        if let crate::syntax::scan::Lexeme::Comment { start, end } = l {
            stripped.push_str(&text[from..start]);
            from = end;
        }
    }
    stripped.push_str(&text[from..]);
    // Blank lines are layout too (the formatter keeps them between statements).
    let stripped: String = stripped
        .lines()
        .filter(|l| !l.trim().is_empty())
        .map(|l| format!("{l}\n"))
        .collect();
    // A text that does not parse is hashed as is; one that does, in its
    // canonical form without wait names (naming a wait changes nothing a
    // journey does: names can be given while journeys wait) and without
    // its `on change` line.
    let (mut items, diags) = crate::syntax::parse_file(0, &stripped);
    let canonical = if diags.iter().any(Diagnostic::is_error) {
        stripped
    } else {
        for item in &mut items {
            if let Item::Workflow(w) = item {
                forget_wait_names(&mut w.body);
                // What a change does to journeys it cannot move is no change
                // to what a journey does.
                w.on_change = None;
            }
        }
        format_items(&stripped, &items)
    };
    blake3::hash(canonical.as_bytes()).to_hex().to_string()
}
