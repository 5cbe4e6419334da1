//! Lowering pest pairs to the AST: one `lower_<rule>` function per grammar
//! rule. Spans are copied into owned [`Span`]s here; nothing of pest leaves
//! this module.

use super::grammar::Rule;
use super::scan::comment_start;
use crate::ast::*;
use crate::diagnostic::Code;
use crate::diagnostic::Diagnostic;
use crate::source::{FileId, Span};
use crate::vocabulary::KEYWORDS;
use pest::iterators::{Pair, Pairs};
use pest::pratt_parser::{Assoc, Op, PrattParser};
use std::sync::OnceLock;

fn pratt() -> &'static PrattParser<Rule> {
    static PRATT: OnceLock<PrattParser<Rule>> = OnceLock::new();
    PRATT.get_or_init(|| {
        PrattParser::new()
            .op(Op::infix(Rule::op_or, Assoc::Left))
            .op(Op::infix(Rule::op_and, Assoc::Left))
            .op(Op::prefix(Rule::op_not))
            .op(Op::infix(Rule::op_eq, Assoc::Left)
                | Op::infix(Rule::op_ne, Assoc::Left)
                | Op::infix(Rule::op_lt, Assoc::Left)
                | Op::infix(Rule::op_le, Assoc::Left)
                | Op::infix(Rule::op_gt, Assoc::Left)
                | Op::infix(Rule::op_ge, Assoc::Left)
                | Op::infix(Rule::op_in, Assoc::Left)
                | Op::postfix(Rule::op_is_set)
                | Op::postfix(Rule::op_is_not_set))
            .op(Op::infix(Rule::op_coalesce, Assoc::Right))
            .op(Op::infix(Rule::op_add, Assoc::Left) | Op::infix(Rule::op_sub, Assoc::Left))
            .op(Op::infix(Rule::op_mul, Assoc::Left) | Op::infix(Rule::op_div, Assoc::Left))
            .op(Op::prefix(Rule::op_neg))
    })
}

/// Lowers pairs of one parsed text that starts at byte `offset` of file `file`.
pub struct Lower {
    file: FileId,
    offset: usize,
    pub diags: Vec<Diagnostic>,
    /// How many `lower_expr` calls are under way (an expression holds others).
    expr_level: usize,
    /// The literal `9223372036854775808` just lowered, and its error: the
    /// error is taken back when a `-` makes it the smallest integer.
    int_min: Option<(Span, usize)>,
}

impl Lower {
    pub fn new(file: FileId, offset: usize) -> Lower {
        Lower {
            file,
            offset,
            diags: Vec::new(),
            expr_level: 0,
            int_min: None,
        }
    }

    /// The pair's span, without the whitespace and comments pest may have
    /// skipped at its end while looking for an optional part.
    fn span(&self, pair: &Pair<Rule>) -> Span {
        let s = pair.as_span();
        let len = trimmed_len(pair.as_str());
        Span::new(
            self.file,
            self.offset + s.start(),
            self.offset + s.start() + len,
        )
    }

    fn ident(&self, pair: Pair<Rule>) -> Ident {
        Ident {
            span: self.span(&pair),
            name: pair.as_str().to_string(),
        }
    }

    /// A declared name: keywords are refused.
    fn name(&mut self, pair: Pair<Rule>, what: &str) -> Ident {
        let id = self.ident(pair);
        if KEYWORDS.contains(&id.name.as_str()) {
            self.diags.push(
                Diagnostic::error(
                    Code::KeywordAsName,
                    id.span,
                    format!("`{}` is a keyword and cannot name {what}", id.name),
                )
                .with_label("keyword")
                .with_help(format!("choose another name, such as `{}_`", id.name)),
            );
        }
        id
    }

    /// item = contact_block | event_decl | workflow
    pub fn lower_item(&mut self, pair: Pair<Rule>) -> Option<Item> {
        match pair.as_rule() {
            Rule::contact_block => Some(Item::Contact(self.lower_contact(pair))),
            Rule::event_decl => Some(Item::Event(self.lower_event(pair))),
            Rule::workflow => Some(Item::Workflow(self.lower_workflow(pair))),
            Rule::test_block => Some(Item::Test(self.lower_test(pair))),
            Rule::timezone_decl => Some(Item::Timezone(self.lower_str(last_inner(pair)))),
            Rule::quiet_decl => {
                let span = self.span(&pair);
                let mut times = Vec::new();
                let mut channels = Vec::new();
                for p in pair.into_inner() {
                    match p.as_rule() {
                        Rule::clock_time => times.push(self.clock(p)),
                        Rule::channel => channels.push(self.ident(p)),
                        _ => {}
                    }
                }
                let mut times = times.into_iter();
                let (Some(start), Some(end)) = (times.next(), times.next()) else {
                    unreachable!("quiet_decl has two clock times")
                };
                Some(Item::Quiet(QuietHours {
                    start,
                    end,
                    channels,
                    span,
                }))
            }
            Rule::limit_decl => {
                let span = self.span(&pair);
                let mut inner = pair.into_inner().filter(|p| {
                    matches!(p.as_rule(), Rule::channel | Rule::int_lit | Rule::duration)
                });
                let channel = self.ident(next(&mut inner));
                let count = next(&mut inner);
                let count_span = self.span(&count);
                let count = count.as_str().parse().unwrap_or(i64::MAX);
                let per = self.lower_duration(next(&mut inner));
                Some(Item::Limit(Limit {
                    channel,
                    count,
                    count_span,
                    per,
                    span,
                }))
            }
            Rule::EOI => None,
            r => unreachable!("an item is a contact block, event, workflow or test, not {r:?}"),
        }
    }

    /// contact_block = { kw_contact ~ "{" ~ field_decl* ~ "}" }
    fn lower_contact(&mut self, pair: Pair<Rule>) -> ContactBlock {
        let span = self.span(&pair);
        let fields = pair
            .into_inner()
            .filter(|p| p.as_rule() == Rule::field_decl)
            .map(|p| self.lower_field(p))
            .collect();
        ContactBlock { fields, span }
    }

    /// field_decl = { name ~ ":" ~ type_expr ~ annotation* ~ field_default? ~ annotation* ~ ","? }
    fn lower_field(&mut self, pair: Pair<Rule>) -> FieldDecl {
        let span = self.span(&pair);
        let mut inner = pair.into_inner();
        let name = self.name(next(&mut inner), "a field");
        let ty = self.lower_type(next(&mut inner));
        let mut default = None;
        let mut annotations = Vec::new();
        for p in inner {
            match p.as_rule() {
                Rule::field_default => default = p.into_inner().next().map(|e| self.lower_expr(e)),
                Rule::annotation => annotations.push(self.lower_annotation(p)),
                r => unreachable!("a field declaration holds no {r:?}"),
            }
        }
        FieldDecl {
            name,
            ty,
            default,
            annotations,
            span,
        }
    }

    /// annotation = { "@" ~ ident ~ "(" ~ ident ~ ("," ~ ident)* ~ ")" }
    fn lower_annotation(&mut self, pair: Pair<Rule>) -> Annotation {
        let span = self.span(&pair);
        let mut inner = pair.into_inner();
        let name = self.ident(next(&mut inner));
        let args = inner.map(|p| self.ident(p)).collect();
        Annotation { name, args, span }
    }

    /// type_expr = { (enum_type | set_type | list_type | prim_type) ~ optional_mark? }
    fn lower_type(&mut self, pair: Pair<Rule>) -> TypeExpr {
        let span = self.span(&pair);
        let mut inner = pair.into_inner();
        let base = next(&mut inner);
        let optional = inner.next().is_some();
        let kind = match base.as_rule() {
            Rule::enum_type => {
                TypeKind::Enum(base.into_inner().map(|p| self.lower_str(p)).collect())
            }
            Rule::set_type => TypeKind::Set(Box::new(self.lower_type(last_inner(base)))),
            Rule::list_type => TypeKind::List(Box::new(self.lower_type(last_inner(base)))),
            Rule::prim_type => TypeKind::Named(self.ident(base)),
            r => unreachable!("a type is an enum, set, list or named type, not {r:?}"),
        };
        TypeExpr {
            kind,
            optional,
            span,
        }
    }

    /// event_decl = { kw_event ~ name ~ "{" ~ payload_field* ~ "}" }
    fn lower_event(&mut self, pair: Pair<Rule>) -> EventDecl {
        let span = self.span(&pair);
        let mut inner = pair.into_inner().skip(1);
        let name = self.name(next(&mut inner), "an event");
        let fields = inner
            .map(|p| {
                let span = self.span(&p);
                let mut f = p.into_inner();
                let name = self.name(next(&mut f), "a payload field");
                let ty = self.lower_type(next(&mut f));
                PayloadField { name, ty, span }
            })
            .collect();
        EventDecl { name, fields, span }
    }

    /// workflow = { kw_workflow ~ name ~ "{" ~ (header | stmt)* ~ "}" }
    fn lower_workflow(&mut self, pair: Pair<Rule>) -> Workflow {
        let span = self.span(&pair);
        let mut inner = pair.into_inner().skip(1);
        let name = self.name(next(&mut inner), "a workflow");
        let mut wf = Workflow {
            name,
            trigger: None,
            goal: None,
            exit_when: None,
            reenter: None,
            on_change: None,
            body: Vec::new(),
            span,
        };
        for p in inner {
            let pspan = self.span(&p);
            let header = match p.as_rule() {
                Rule::trigger => Some(("trigger", "when")),
                Rule::goal => Some(("goal", "goal")),
                Rule::exit_when => Some(("exit criterion", "exit when")),
                Rule::reenter => Some(("reenter policy", "reenter")),
                Rule::on_change => Some(("`on change` line", "on change")),
                // Statements.
                _ => None,
            };
            if let Some((what, kw)) = header {
                if !wf.body.is_empty() {
                    self.diags.push(
                        Diagnostic::error(
                            Code::HeaderAfterStatement,
                            pspan,
                            format!("`{kw}` must come before the workflow's first statement"),
                        )
                        .with_label(format!("{what} here"))
                        .with_help("move `when`, `goal`, `exit when`, `reenter` and `on change` to the top of the workflow"),
                    );
                }
                let already = match p.as_rule() {
                    Rule::trigger => wf.trigger.is_some(),
                    Rule::goal => wf.goal.is_some(),
                    Rule::exit_when => wf.exit_when.is_some(),
                    Rule::reenter => wf.reenter.is_some(),
                    Rule::on_change => wf.on_change.is_some(),
                    r => unreachable!("{r:?} is not a header"),
                };
                if already {
                    self.diags.push(
                        Diagnostic::error(
                            Code::DuplicateHeader,
                            pspan,
                            format!("workflow `{}` has more than one {what}", wf.name.name),
                        )
                        .with_label(format!("second {what}"))
                        .with_help(format!("a workflow has at most one `{kw}`")),
                    );
                    continue;
                }
            }
            match p.as_rule() {
                Rule::trigger => wf.trigger = Some(self.lower_trigger(p)),
                Rule::goal => wf.goal = Some(self.lower_criterion(p, pspan)),
                Rule::exit_when => wf.exit_when = Some(self.lower_criterion(p, pspan)),
                Rule::reenter => wf.reenter = Some(self.lower_reenter(p)),
                Rule::on_change => {
                    let kind = match p.clone().into_inner().last().map(|k| k.as_rule()) {
                        Some(Rule::kw_finish) => OnChangeKind::Finish,
                        _ => OnChangeKind::Exit,
                    };
                    wf.on_change = Some(OnChange { kind, span: pspan });
                }
                _ => wf.body.push(self.lower_stmt(p)),
            }
        }
        if wf.trigger.is_none() {
            self.diags.push(
                Diagnostic::error(
                    Code::MissingTrigger,
                    wf.name.span,
                    format!("workflow `{}` has no trigger", wf.name.name),
                )
                .with_label("this workflow can never start")
                .with_help("add a trigger such as `when contact_created` as its first line"),
            );
        }
        wf
    }

    /// trigger = { kw_when ~ (trigger_inactive | event_match | condition) }
    fn lower_trigger(&mut self, pair: Pair<Rule>) -> Trigger {
        let span = self.span(&pair);
        let p = last_inner(pair);
        let kind = match p.as_rule() {
            Rule::trigger_inactive => TriggerKind::Inactive(self.lower_duration(last_inner(p))),
            Rule::event_match => TriggerKind::Event(self.lower_event_match(p)),
            Rule::condition => TriggerKind::Condition(self.lower_expr(last_inner(p))),
            Rule::trigger_at => TriggerKind::At(self.lower_expr(last_inner(p))),
            Rule::trigger_every => {
                let mut every = Every::Day;
                let mut at = None;
                let mut filter = None;
                for part in p.into_inner() {
                    match part.as_rule() {
                        Rule::weekday => every = Every::Weekday(weekday(part.as_str())),
                        Rule::every_month => {
                            let n = last_inner(part);
                            let span = self.span(&n);
                            every = Every::Month {
                                day: n.as_str().parse().unwrap_or(i64::MAX),
                                span,
                            };
                        }
                        Rule::every_year => {
                            every = Every::Year(self.ident(last_inner(last_inner(part))))
                        }
                        Rule::clock_time => at = Some(self.clock(part)),
                        Rule::where_clause => filter = Some(self.lower_expr(last_inner(part))),
                        _ => {}
                    }
                }
                TriggerKind::Every(Schedule {
                    every,
                    // INVARIANT: the grammar requires `at HH:MM`.
                    at: at.unwrap_or_else(|| unreachable!("a schedule without a time")),
                    filter,
                })
            }
            r => unreachable!("a trigger holds no {r:?}"),
        };
        Trigger { kind, span }
    }

    /// goal = { kw_goal ~ (event_match | condition) }, and likewise `exit when`
    fn lower_criterion(&mut self, pair: Pair<Rule>, span: Span) -> Criterion {
        let p = last_inner(pair);
        let kind = match p.as_rule() {
            Rule::event_match => CriterionKind::Event(self.lower_event_match(p)),
            Rule::condition => CriterionKind::Condition(self.lower_expr(last_inner(p))),
            r => unreachable!("a goal or exit criterion holds no {r:?}"),
        };
        Criterion { kind, span }
    }

    /// event_match = { event_ref ~ where_clause? }
    fn lower_event_match(&mut self, pair: Pair<Rule>) -> EventMatch {
        let mut inner = pair.into_inner();
        let event = self.ident(next(&mut inner));
        let filter = inner.next().map(|w| self.lower_expr(last_inner(w)));
        EventMatch { event, filter }
    }

    /// reenter = { kw_reenter ~ (kw_never | kw_always | reenter_after) }
    fn lower_reenter(&mut self, pair: Pair<Rule>) -> Reenter {
        let span = self.span(&pair);
        let p = last_inner(pair);
        let kind = match p.as_rule() {
            Rule::kw_never => ReenterKind::Never,
            Rule::kw_always => ReenterKind::Always,
            Rule::reenter_after => ReenterKind::After(self.lower_duration(last_inner(p))),
            r => unreachable!("a reenter policy holds no {r:?}"),
        };
        Reenter { kind, span }
    }

    /// block = { "{" ~ stmt* ~ "}" }
    fn lower_block(&mut self, pair: Pair<Rule>) -> Block {
        let span = self.span(&pair);
        let stmts = pair.into_inner().map(|p| self.lower_stmt(p)).collect();
        Block { stmts, span }
    }

    /// stmt = send_stmt | tag_stmt | ... | exit_stmt
    fn lower_stmt(&mut self, pair: Pair<Rule>) -> Stmt {
        let span = self.span(&pair);
        let rule = pair.as_rule();
        let name = pair
            .clone()
            .into_inner()
            .find(|p| p.as_rule() == Rule::wait_name)
            .map(|p| self.ident(last_inner(p)));
        let mut inner = pair.into_inner();
        inner.next(); // the statement's keyword
        let kind = match rule {
            Rule::send_stmt => {
                let channel = self.ident(next(&mut inner));
                let template = self.lower_str(next(&mut inner));
                let mut data = None;
                let mut transactional = false;
                for p in inner {
                    match p.as_rule() {
                        Rule::with_clause => data = Some(self.lower_with(p)),
                        _ => transactional = true,
                    }
                }
                StmtKind::Send {
                    channel,
                    template,
                    data,
                    transactional,
                }
            }
            Rule::tag_stmt => StmtKind::Tag(self.lower_expr(next(&mut inner))),
            Rule::untag_stmt => StmtKind::Untag(self.lower_expr(next(&mut inner))),
            Rule::set_stmt => {
                let field = self.ident(last_inner(next(&mut inner)));
                let op = match next(&mut inner).as_str() {
                    "+=" => AssignOp::Add,
                    "-=" => AssignOp::Sub,
                    "=" => AssignOp::Assign,
                    op => unreachable!("assign_op matched `{op}`"),
                };
                let value = self.lower_expr(next(&mut inner));
                StmtKind::Set { field, op, value }
            }
            Rule::add_stmt => {
                inner.next(); // `to`
                let op = match next(&mut inner).as_rule() {
                    Rule::kw_audience => ListOp::AddToAudience,
                    Rule::kw_list => ListOp::AddToList,
                    r => unreachable!("`add to` takes `list` or `audience`, not {r:?}"),
                };
                let name = self.lower_str(next(&mut inner));
                StmtKind::List { op, name }
            }
            Rule::remove_stmt => {
                let name = self.lower_str(next(&mut inner.skip(2)));
                StmtKind::List {
                    op: ListOp::RemoveFromList,
                    name,
                }
            }
            Rule::notify_stmt => {
                let to = self.lower_str(next(&mut inner));
                let message = self.lower_template(next(&mut inner));
                StmtKind::Notify { to, message }
            }
            Rule::webhook_stmt => {
                let name = self.lower_str(next(&mut inner));
                let data = inner.next().map(|w| self.lower_with(w));
                StmtKind::Webhook { name, data }
            }
            Rule::wait_stmt => {
                let what = next(&mut inner);
                StmtKind::Wait(match what.as_rule() {
                    Rule::duration => WaitKind::For(self.lower_duration(what)),
                    Rule::wait_until => {
                        let target = last_inner(what);
                        match target.as_rule() {
                            Rule::clock_time => WaitKind::Clock(self.clock(target)),
                            Rule::weekday_at => {
                                let mut parts = target.into_inner();
                                let day = weekday(next(&mut parts).as_str());
                                let at = parts.last().map(|t| self.clock(t));
                                WaitKind::Weekday { day, at }
                            }
                            _ => WaitKind::Until(self.lower_expr(target)),
                        }
                    }
                    _ => WaitKind::Expr(self.lower_expr(what)),
                })
            }
            Rule::wait_for_stmt => self.lower_wait_for(inner),
            Rule::if_stmt => self.lower_if(inner),
            Rule::split_stmt => {
                let mut name = None;
                let mut arms = Vec::new();
                for p in inner {
                    if p.as_rule() == Rule::string_lit {
                        name = Some(self.lower_str(p));
                        continue;
                    }
                    let mut a = p.into_inner();
                    let pct = next(&mut a);
                    let percent_span = self.span(&pct);
                    let percent = pct
                        .as_str()
                        .trim_end_matches('%')
                        .parse()
                        .unwrap_or(u32::MAX);
                    let mut part = next(&mut a);
                    let mut label = None;
                    if part.as_rule() == Rule::arm_label {
                        label = Some(self.lower_str(last_inner(part)));
                        part = next(&mut a);
                    }
                    let body = self.lower_block(part);
                    arms.push(SplitArm {
                        percent,
                        percent_span,
                        label,
                        body,
                    });
                }
                StmtKind::Split { name, arms }
            }
            Rule::stage_stmt => StmtKind::Stage(self.lower_str(next(&mut inner))),
            Rule::exit_stmt => StmtKind::Exit,
            Rule::convert_stmt => StmtKind::Convert,
            r => unreachable!("{r:?} is not a statement"),
        };
        Stmt { kind, span, name }
    }

    /// wait_for_stmt = { kw_wait ~ kw_for ~ event_ref ~ within_clause ~ where_clause? ~ block? ~ timeout_clause? }
    fn lower_wait_for(&mut self, mut inner: Pairs<Rule>) -> StmtKind {
        inner.next(); // `for`
        let event = self.ident(next(&mut inner));
        let within = self.lower_duration(last_inner(next(&mut inner)));
        let mut filter = None;
        let mut received = None;
        let mut timeout = None;
        for p in inner {
            match p.as_rule() {
                Rule::where_clause => filter = Some(self.lower_expr(last_inner(p))),
                Rule::block => received = Some(self.lower_block(p)),
                Rule::timeout_clause => timeout = Some(self.lower_block(last_inner(p))),
                // Taken by `lower_stmt`.
                Rule::wait_name => {}
                r => unreachable!("a `wait for` holds no {r:?}"),
            }
        }
        StmtKind::WaitFor {
            event,
            within,
            filter,
            received,
            timeout,
        }
    }

    /// if_stmt = { kw_if ~ expr ~ block ~ else_if* ~ else_clause? }
    fn lower_if(&mut self, mut inner: Pairs<Rule>) -> StmtKind {
        let cond = self.lower_expr(next(&mut inner));
        let block = self.lower_block(next(&mut inner));
        let mut branches = vec![(cond, block)];
        let mut otherwise = None;
        for p in inner {
            if p.as_rule() == Rule::else_if {
                let mut e = p.into_inner().skip(2);
                let cond = self.lower_expr(next(&mut e));
                let block = self.lower_block(next(&mut e));
                branches.push((cond, block));
            } else {
                otherwise = Some(self.lower_block(last_inner(p)));
            }
        }
        StmtKind::If {
            branches,
            otherwise,
        }
    }

    /// with_clause = { kw_with ~ "{" ~ map_entry,* ~ "}" }, and
    /// record = { "{" ~ map_entry,* ~ "}" }
    fn lower_with(&mut self, pair: Pair<Rule>) -> Vec<MapEntry> {
        let skip = usize::from(pair.as_rule() == Rule::with_clause);
        pair.into_inner()
            .skip(skip)
            .map(|e| {
                let mut kv = e.into_inner();
                let key = self.ident(next(&mut kv));
                let value = self.lower_expr(next(&mut kv));
                MapEntry { key, value }
            })
            .collect()
    }

    /// duration = ${ duration_part ~ (" "+ ~ duration_part)* }
    fn lower_duration(&mut self, pair: Pair<Rule>) -> DurationLit {
        let span = self.span(&pair);
        let mut seconds: i64 = 0;
        for part in pair.as_str().split_whitespace() {
            let (digits, unit) = part.split_at(part.len() - 1);
            let scale = match unit {
                "s" => 1,
                "m" => 60,
                "h" => 3600,
                "d" => 86_400,
                "w" => 604_800,
                u => unreachable!("duration_part matched the unit `{u}`"),
            };
            let value = digits
                .parse::<i64>()
                .ok()
                .and_then(|n| n.checked_mul(scale))
                .and_then(|n| n.checked_add(seconds));
            match value {
                Some(v) if v <= MAX_SECONDS => seconds = v,
                _ => {
                    self.diags.push(
                        Diagnostic::error(
                            Code::DurationTooLarge,
                            span,
                            "this duration is too large",
                        )
                        .with_label("out of range")
                        .with_help("durations are limited to about 10,000 years"),
                    );
                    // The largest duration stands in, so no later check
                    // adds "must be longer than zero" to this error.
                    return DurationLit {
                        seconds: MAX_SECONDS,
                        span,
                    };
                }
            }
        }
        DurationLit { seconds, span }
    }

    /// string_lit = ${ "\"" ~ string_inner ~ "\"" }
    fn lower_str(&mut self, pair: Pair<Rule>) -> StrLit {
        let span = self.span(&pair);
        let raw = pair.into_inner().next().map_or("", |p| p.as_str());
        StrLit {
            value: unescape(raw),
            span,
        }
    }

    /// template = ${ "\"" ~ (interp | template_text)* ~ "\"" }
    fn lower_template(&mut self, pair: Pair<Rule>) -> Template {
        let span = self.span(&pair);
        let parts = pair
            .into_inner()
            .map(|p| match p.as_rule() {
                Rule::interp => TemplatePart::Expr(self.lower_expr(last_inner(p))),
                Rule::template_text => TemplatePart::Text(unescape(p.as_str())),
                r => unreachable!("a template holds no {r:?}"),
            })
            .collect();
        Template { parts, span }
    }

    /// An expression, refused when it nests deeper than [`MAX_EXPR_DEPTH`]
    /// (a chain of operators counts a level per operator), so no later pass
    /// recurses deeper than that.
    pub fn lower_expr(&mut self, pair: Pair<Rule>) -> Expr {
        self.expr_level += 1;
        let e = self.lower_expr_tree(pair);
        self.expr_level -= 1;
        if self.expr_level > 0 {
            return e;
        }
        let Some(at) = too_deep(&e) else { return e };
        self.diags.push(
            Diagnostic::error(Code::NestedTooDeeply, at, "this expression is nested too deeply")
                .with_label(format!("more than {MAX_EXPR_DEPTH} levels deep here"))
                .with_help(format!(
                    "an expression may nest at most {MAX_EXPR_DEPTH} levels (each operator of a chain counts one); split it, or compute part of it in a `set`"
                )),
        );
        let span = e.span;
        dismantle(e);
        Expr {
            kind: ExprKind::Bool(false),
            span,
        }
    }

    /// expr = { prefix* ~ primary ~ postfix* ~ (infix ~ prefix* ~ primary ~ postfix*)* }
    fn lower_expr_tree(&mut self, pair: Pair<Rule>) -> Expr {
        let this = std::cell::RefCell::new(self);
        let out = pratt()
            .map_primary(|p| this.borrow_mut().lower_primary(p))
            .map_prefix(|op, rhs| {
                let span = this.borrow().span(&op).to(rhs.span);
                let op = match op.as_rule() {
                    Rule::op_not => UnaryOp::Not,
                    Rule::op_neg => UnaryOp::Neg,
                    r => unreachable!("{r:?} is not a prefix operator"),
                };
                // `-9223372036854775808`: the smallest integer is written so.
                let mut me = this.borrow_mut();
                if let (UnaryOp::Neg, Some((at, i))) = (op, me.int_min) {
                    if at.same_place(rhs.span) && i < me.diags.len() {
                        me.diags.remove(i);
                        me.int_min = None;
                        return Expr {
                            kind: ExprKind::Int(i64::MIN),
                            span,
                        };
                    }
                }
                drop(me);
                Expr {
                    kind: ExprKind::Unary {
                        op,
                        operand: Box::new(rhs),
                    },
                    span,
                }
            })
            .map_postfix(|lhs, op| {
                let span = lhs.span.to(this.borrow().span(&op));
                Expr {
                    kind: ExprKind::IsSet {
                        operand: Box::new(lhs),
                        negated: op.as_rule() == Rule::op_is_not_set,
                    },
                    span,
                }
            })
            .map_infix(|lhs, op, rhs| {
                let span = lhs.span.to(rhs.span);
                Expr {
                    kind: ExprKind::Binary {
                        op: binary_op(op.as_rule()),
                        lhs: Box::new(lhs),
                        rhs: Box::new(rhs),
                    },
                    span,
                }
            })
            .parse(pair.into_inner());
        out
    }

    /// primary = paren | list_lit | datetime_lit | duration | float_lit | int_lit | ...
    fn lower_primary(&mut self, pair: Pair<Rule>) -> Expr {
        let span = self.span(&pair);
        let kind = match pair.as_rule() {
            Rule::paren => return self.lower_expr(last_inner(pair)),
            Rule::list_lit => {
                ExprKind::List(pair.into_inner().map(|e| self.lower_expr(e)).collect())
            }
            Rule::datetime_lit => self.lower_datetime(pair.as_str(), span),
            Rule::duration => ExprKind::Duration(self.lower_duration(pair).seconds),
            Rule::float_lit => ExprKind::Float(pair.as_str().parse().unwrap_or(f64::NAN)),
            Rule::int_lit => match pair.as_str().parse() {
                Ok(n) => ExprKind::Int(n),
                Err(_) => {
                    if pair.as_str().parse::<u64>() == Ok(i64::MIN.unsigned_abs()) {
                        self.int_min = Some((span, self.diags.len()));
                    }
                    self.diags.push(
                        Diagnostic::error(Code::IntTooLarge, span, "this number is too large")
                            .with_label("out of range")
                            .with_help(
                                "integers range from -9223372036854775808 to 9223372036854775807",
                            ),
                    );
                    ExprKind::Int(0)
                }
            },
            Rule::string_lit => ExprKind::Str(self.lower_str(pair).value),
            Rule::bool_lit => ExprKind::Bool(pair.as_str() == "true"),
            Rule::now => ExprKind::Now,
            Rule::history => self.lower_history(pair),
            Rule::call => {
                let mut inner = pair.into_inner();
                let func = self.ident(next(&mut inner));
                let args = inner.map(|e| self.lower_expr(e)).collect();
                ExprKind::Call { func, args }
            }
            Rule::path => {
                let mut inner = pair.into_inner();
                let root = match next(&mut inner).as_str() {
                    "contact" => PathRoot::Contact,
                    "event" => PathRoot::Event,
                    "trigger" => PathRoot::Trigger,
                    r => unreachable!("path_root matched `{r}`"),
                };
                let field = self.ident(next(&mut inner));
                ExprKind::Path { root, field }
            }
            r => unreachable!("{r:?} is not a primary expression"),
        };
        Expr { kind, span }
    }

    /// history = { history_fn ~ "(" ~ event_ref ~ (where_clause | within_clause)* ~ ")" }
    fn lower_history(&mut self, pair: Pair<Rule>) -> ExprKind {
        let mut inner = pair.into_inner();
        let kind = match next(&mut inner).as_str() {
            "seen" => HistoryKind::Seen,
            "count" => HistoryKind::Count,
            f => unreachable!("history_fn matched `{f}`"),
        };
        let event = self.ident(next(&mut inner));
        let mut filter = None;
        let mut within = None;
        for p in inner {
            if p.as_rule() == Rule::where_clause {
                filter = Some(Box::new(self.lower_expr(last_inner(p))));
            } else {
                within = Some(self.lower_duration(last_inner(p)));
            }
        }
        ExprKind::History {
            kind,
            event,
            filter,
            within,
        }
    }

    /// clock_time = @{ HH ":" MM }; out-of-range parts are the checker's.
    fn clock(&mut self, pair: Pair<Rule>) -> ClockTime {
        let span = self.span(&pair);
        let (h, m) = pair.as_str().split_once(':').unwrap_or(("0", "0"));
        ClockTime {
            hour: h.parse().unwrap_or(u32::MAX),
            minute: m.parse().unwrap_or(u32::MAX),
            span,
        }
    }

    /// test_block = { kw_test ~ string_lit ~ "{" ~ test_step* ~ "}" }
    fn lower_test(&mut self, pair: Pair<Rule>) -> TestBlock {
        let span = self.span(&pair);
        let (text, base) = (pair.as_str(), self.offset + pair.as_span().start());
        let between = |from: u32, to: u32| {
            text.get(from as usize - base..to as usize - base)
                .unwrap_or("\n")
        };
        let mut inner = pair.into_inner().skip(1);
        let name = self.lower_str(next(&mut inner));
        let mut steps: Vec<TestStep> = Vec::new();
        for p in inner {
            let step = self.lower_step(p);
            // `expect ID: PATTERN at DATETIME`: an `at` on the line of an
            // action claim is the claim's time, not a step.
            if let (StepKind::At(t), Some(last)) = (&step.kind, steps.last_mut()) {
                let same_line = !between(last.span.end, step.span.start).contains('\n');
                if let StepKind::Expect {
                    claim: Claim::Action { at: at @ None, .. },
                    ..
                } = &mut last.kind
                {
                    if same_line {
                        *at = Some(t.clone());
                        last.span.end = step.span.end;
                        continue;
                    }
                }
            }
            steps.push(step);
        }
        TestBlock { name, steps, span }
    }

    fn lower_step(&mut self, pair: Pair<Rule>) -> TestStep {
        let span = self.span(&pair);
        let rule = pair.as_rule();
        let mut inner = pair.into_inner().skip(1);
        let kind = match rule {
            Rule::step_at => StepKind::At(self.lower_primary(next(&mut inner))),
            Rule::step_advance => StepKind::Advance(self.lower_duration(next(&mut inner))),
            Rule::step_contact | Rule::step_update | Rule::step_given => {
                let id = self.test_id(next(&mut inner));
                let fields = self.lower_with(next(&mut inner));
                match rule {
                    Rule::step_contact => StepKind::Contact { id, fields },
                    Rule::step_update => StepKind::Update { id, fields },
                    _ => StepKind::Given { id, fields },
                }
            }
            Rule::step_event => {
                let id = self.test_id(next(&mut inner));
                let event = self.ident(next(&mut inner));
                let fields = inner.next().map(|r| self.lower_with(r)).unwrap_or_default();
                StepKind::Event { id, event, fields }
            }
            Rule::step_expect => {
                let id = self.test_id(next(&mut inner));
                let claim = self.lower_claim(next(&mut inner));
                StepKind::Expect { id, claim }
            }
            r => unreachable!("a test step, not {r:?}"),
        };
        TestStep { kind, span }
    }

    /// test_id = { string_lit | name }
    fn test_id(&mut self, pair: Pair<Rule>) -> Ident {
        let inner = last_inner(pair);
        match inner.as_rule() {
            Rule::string_lit => {
                let s = self.lower_str(inner);
                Ident {
                    name: s.value,
                    span: s.span,
                }
            }
            _ => self.ident(inner),
        }
    }

    fn lower_claim(&mut self, pair: Pair<Rule>) -> Claim {
        let rule = pair.as_rule();
        let mut inner = pair.into_inner();
        match rule {
            Rule::claim_action => Claim::Action {
                pattern: self.lower_pattern(next(&mut inner)),
                at: None,
            },
            Rule::claim_no => {
                inner.next();
                Claim::No(self.lower_pattern(next(&mut inner)))
            }
            Rule::claim_nothing => Claim::NothingElse,
            Rule::claim_in => {
                inner.next();
                Claim::In {
                    workflow: self.ident(next(&mut inner)),
                    negated: false,
                }
            }
            Rule::claim_not_in => {
                let workflow = self.ident(last_inner_of(inner));
                Claim::In {
                    workflow,
                    negated: true,
                }
            }
            Rule::claim_outcome => {
                let workflow = self.ident(next(&mut inner));
                let outcome = self.ident(next(&mut inner));
                Claim::Outcome { workflow, outcome }
            }
            Rule::claim_expr => Claim::Holds(self.lower_expr(next(&mut inner))),
            r => unreachable!("a claim, not {r:?}"),
        }
    }

    fn lower_pattern(&mut self, pair: Pair<Rule>) -> ActionPattern {
        let span = self.span(&pair);
        let rule = pair.as_rule();
        let parts: Vec<Pair<Rule>> = pair.into_inner().collect();
        let string = |l: &mut Self, rule: Rule| {
            parts
                .iter()
                .find(|p| p.as_rule() == rule)
                .map(|p| l.lower_str(p.clone()))
        };
        let kind = match rule {
            Rule::pat_send => PatternKind::Send {
                channel: parts
                    .iter()
                    .find(|p| p.as_rule() == Rule::channel)
                    .map(|p| self.ident(p.clone())),
                template: string(self, Rule::string_lit),
                data: parts
                    .iter()
                    .find(|p| p.as_rule() == Rule::with_clause)
                    .map(|p| self.lower_with(p.clone())),
            },
            Rule::pat_tag => PatternKind::Tag(string(self, Rule::string_lit)),
            Rule::pat_untag => PatternKind::Untag(string(self, Rule::string_lit)),
            Rule::pat_set => {
                let field = parts
                    .iter()
                    .find(|p| p.as_rule() == Rule::contact_field)
                    .map(|p| self.ident(last_inner(p.clone())));
                let value = parts
                    .iter()
                    .find(|p| p.as_rule() == Rule::expr)
                    .map(|p| self.lower_expr(p.clone()));
                PatternKind::Set {
                    // INVARIANT: the grammar requires `contact.F` after `set`.
                    field: field.unwrap_or_else(|| unreachable!("pat_set without a field")),
                    value,
                }
            }
            Rule::pat_add => {
                let audience = parts.iter().any(|p| p.as_rule() == Rule::kw_audience);
                let name = string(self, Rule::string_lit);
                if audience {
                    PatternKind::AddToAudience(name)
                } else {
                    PatternKind::AddToList(name)
                }
            }
            Rule::pat_remove => PatternKind::RemoveFromList(string(self, Rule::string_lit)),
            Rule::pat_notify => {
                let mut strings = parts.iter().filter(|p| p.as_rule() == Rule::string_lit);
                let to = strings.next().map(|p| self.lower_str(p.clone()));
                let message = strings.next().map(|p| self.lower_str(p.clone()));
                PatternKind::Notify { to, message }
            }
            Rule::pat_webhook => PatternKind::Webhook {
                name: string(self, Rule::string_lit),
                data: parts
                    .iter()
                    .find(|p| p.as_rule() == Rule::with_clause)
                    .map(|p| self.lower_with(p.clone())),
            },
            r => unreachable!("an action pattern, not {r:?}"),
        };
        ActionPattern { kind, span }
    }

    fn lower_datetime(&mut self, text: &str, span: Span) -> ExprKind {
        match chrono::DateTime::parse_from_rfc3339(&text[1..]) {
            Ok(dt) => ExprKind::Datetime(dt.with_timezone(&chrono::Utc)),
            Err(_) => {
                self.diags.push(
                    Diagnostic::error(
                        Code::BadDatetime,
                        span,
                        format!("`{text}` is not a valid datetime"),
                    )
                    .with_label("not RFC 3339")
                    .with_help("write a full date, time and zone, such as `@2026-03-01T09:00:00Z`"),
                );
                ExprKind::Datetime(chrono::DateTime::<chrono::Utc>::UNIX_EPOCH)
            }
        }
    }
}

/// The length of `text` without trailing whitespace and `//` comments.
fn trimmed_len(text: &str) -> usize {
    let mut t = text.trim_end();
    loop {
        let line_start = t.rfind('\n').map_or(0, |i| i + 1);
        match comment_start(&t[line_start..]) {
            Some(i) => t = t[..line_start + i].trim_end(),
            None => return t.len(),
        }
    }
}

/// The largest duration accepted, in seconds (about 10,000 years).
const MAX_SECONDS: i64 = 315_569_520_000;

fn binary_op(rule: Rule) -> BinaryOp {
    match rule {
        Rule::op_coalesce => BinaryOp::Coalesce,
        Rule::op_or => BinaryOp::Or,
        Rule::op_and => BinaryOp::And,
        Rule::op_eq => BinaryOp::Eq,
        Rule::op_ne => BinaryOp::Ne,
        Rule::op_lt => BinaryOp::Lt,
        Rule::op_le => BinaryOp::Le,
        Rule::op_gt => BinaryOp::Gt,
        Rule::op_ge => BinaryOp::Ge,
        Rule::op_in => BinaryOp::In,
        Rule::op_add => BinaryOp::Add,
        Rule::op_sub => BinaryOp::Sub,
        Rule::op_mul => BinaryOp::Mul,
        Rule::op_div => BinaryOp::Div,
        r => unreachable!("{r:?} is not a binary operator"),
    }
}

fn unescape(raw: &str) -> String {
    let mut out = String::with_capacity(raw.len());
    let mut chars = raw.chars();
    while let Some(c) = chars.next() {
        if c == '\\' {
            match chars.next() {
                Some('n') => out.push('\n'),
                Some('t') => out.push('\t'),
                Some(other) => out.push(other),
                None => {}
            }
        } else {
            out.push(c);
        }
    }
    out
}

// The grammar guarantees the shape of every pair lowered here; these helpers
// turn a broken guarantee into a visible placeholder instead of a panic.
/// How deep an expression tree may be.
pub const MAX_EXPR_DEPTH: usize = 200;

/// The span of the first node deeper than [`MAX_EXPR_DEPTH`], found without
/// recursion.
fn too_deep(e: &Expr) -> Option<Span> {
    let mut stack = vec![(e, 1)];
    while let Some((e, depth)) = stack.pop() {
        if depth > MAX_EXPR_DEPTH {
            return Some(e.span);
        }
        stack.extend(e.kind.children().into_iter().map(|c| (c, depth + 1)));
    }
    None
}

/// Drops a tree of any depth without recursion.
fn dismantle(e: Expr) {
    let mut stack = vec![e];
    while let Some(mut e) = stack.pop() {
        for child in e.kind.children_mut() {
            let leaf = Expr {
                kind: ExprKind::Bool(false),
                span: child.span,
            };
            stack.push(std::mem::replace(child, leaf));
        }
    }
}

/// The next child of a rule whose production guarantees one.
#[track_caller]
fn next<'i>(pairs: &mut impl Iterator<Item = Pair<'i, Rule>>) -> Pair<'i, Rule> {
    // INVARIANT: callers take only the children their rule's production
    // requires; the grammar guarantees them.
    match pairs.next() {
        Some(p) => p,
        None => unreachable!("a child the grammar guarantees is missing"),
    }
}

/// The last child of `pair`, whose production guarantees one.
fn weekday(name: &str) -> Weekday {
    Weekday::ALL
        .into_iter()
        .find(|d| d.name() == name)
        .unwrap_or_else(|| unreachable!("the grammar's weekday matched `{name}`"))
}

fn last_inner_of(pairs: Pairs<Rule>) -> Pair<Rule> {
    // INVARIANT: called on rules that end with a child.
    pairs
        .last()
        .unwrap_or_else(|| unreachable!("a rule with children had none"))
}

fn last_inner(pair: Pair<Rule>) -> Pair<Rule> {
    let rule = pair.as_rule();
    match pair.into_inner().last() {
        Some(p) => p,
        None => unreachable!("{rule:?} has no child, though its production requires one"),
    }
}
