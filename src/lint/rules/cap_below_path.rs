//! `cap-below-path`: a frequency cap lower than the sends one path of a
//! workflow makes on the channel within the cap's window: the later ones
//! are always suppressed.

use crate::ast::{Item, Stmt, StmtKind, WaitKind};
use crate::lint::{Ctx, Level, Rule};
use crate::source::Span;

pub const RULE: Rule = Rule {
    name: "cap-below-path",
    code: "nurture::lint::cap-below-path",
    default: Level::Warn,
    summary: "a `limit` lower than the sends one path makes within its window",
    why: "A frequency cap suppresses the sends past it. When one journey alone sends more on a channel within the cap's window than the cap allows, its later messages are never sent, for any contact: the workflow or the cap is wrong. Space the sends with waits at least as long as the window, or raise the cap.",
    bad: "limit email to 1 per 1d\n\nworkflow w {\n  when email_opened where contact.opted_in\n  goal purchase\n  send email \"a\"\n  wait 1h as w1\n  if contact.opted_in {\n    send email \"b\"\n  }\n}\n",
    good: "limit email to 1 per 1d\n\nworkflow w {\n  when email_opened where contact.opted_in\n  goal purchase\n  send email \"a\"\n  wait 1d as w1\n  if contact.opted_in {\n    send email \"b\"\n  }\n}\n",
    check,
};

/// Paths explored per workflow before giving up (no finding past it).
const MAX_PATHS: usize = 4096;

fn check(ctx: &Ctx) -> Vec<crate::diagnostic::Diagnostic> {
    let mut out = Vec::new();
    for item in &ctx.program.items {
        let Item::Limit(limit) = item else { continue };
        let window = limit.per.seconds;
        for w in ctx.program.workflows() {
            // Each path: the sends on the channel, with their time from
            // the start (None after a wait of unknown length).
            let mut paths: Vec<Vec<(Option<i64>, Span)>> = Vec::new();
            walk(
                &w.body,
                &limit.channel.name,
                Some(0),
                Vec::new(),
                &mut paths,
            );
            let worst = paths
                .iter()
                .filter_map(|p| most_in_window(p, window))
                .max_by_key(|(n, _)| *n);
            if let Some((n, span)) = worst.filter(|(n, _)| *n > limit.count) {
                out.push(
                    RULE.finding(
                        span,
                        format!(
                            "workflow `{}` sends {n} {} messages within {} on one path; the limit allows {}",
                            w.name.name,
                            limit.channel.name,
                            crate::pretty::duration(window),
                            limit.count
                        ),
                    )
                    .with_label("suppressed by the limit on every journey that gets here")
                    .with_related(limit.span, "the limit")
                    .with_help("space the sends with waits as long as the window, or raise the limit"),
                );
            }
        }
    }
    out
}

/// The most sends within a window on one path, and the last of them.
fn most_in_window(sends: &[(Option<i64>, Span)], window: i64) -> Option<(i64, Span)> {
    let mut best: Option<(i64, Span)> = None;
    for (i, (t, span)) in sends.iter().enumerate() {
        let Some(t) = t else { continue };
        let n = sends[..=i]
            .iter()
            .filter(|(s, _)| s.is_some_and(|s| t - s < window))
            .count() as i64;
        if best.is_none_or(|(b, _)| n > b) {
            best = Some((n, *span));
        }
    }
    best
}

/// Enumerates the paths through `list`, collecting the sends on `channel`
/// with their time (seconds from the start; `None` once a wait of unknown
/// length was passed).
fn walk(
    list: &[Stmt],
    channel: &str,
    mut time: Option<i64>,
    mut sends: Vec<(Option<i64>, Span)>,
    paths: &mut Vec<Vec<(Option<i64>, Span)>>,
) {
    for (i, s) in list.iter().enumerate() {
        if paths.len() >= MAX_PATHS {
            return;
        }
        let rest = &list[i + 1..];
        match &s.kind {
            // A transactional send does not count toward a cap.
            StmtKind::Send {
                channel: c,
                transactional: false,
                ..
            } if c.name == channel => sends.push((time, s.span)),
            StmtKind::Wait(WaitKind::For(d)) => time = time.map(|t| t + d.seconds),
            StmtKind::Wait(_) => time = None,
            StmtKind::Exit | StmtKind::Convert => break,
            StmtKind::WaitFor {
                within,
                received,
                timeout,
                ..
            } => {
                // Received at once, or after the whole time limit.
                let got = received
                    .as_ref()
                    .map(|b| b.stmts.clone())
                    .unwrap_or_default();
                let late = timeout
                    .as_ref()
                    .map(|b| b.stmts.clone())
                    .unwrap_or_default();
                for (block, at) in [(got, time), (late, time.map(|t| t + within.seconds))] {
                    let mut next = block;
                    next.extend_from_slice(rest);
                    walk(&next, channel, at, sends.clone(), paths);
                }
                return;
            }
            StmtKind::If {
                branches,
                otherwise,
            } => {
                let mut arms: Vec<Vec<Stmt>> =
                    branches.iter().map(|(_, b)| b.stmts.clone()).collect();
                arms.push(
                    otherwise
                        .as_ref()
                        .map(|b| b.stmts.clone())
                        .unwrap_or_default(),
                );
                for mut arm in arms {
                    arm.extend_from_slice(rest);
                    walk(&arm, channel, time, sends.clone(), paths);
                }
                return;
            }
            StmtKind::Split { arms, .. } => {
                for arm in arms {
                    let mut next = arm.body.stmts.clone();
                    next.extend_from_slice(rest);
                    walk(&next, channel, time, sends.clone(), paths);
                }
                return;
            }
            _ => {}
        }
    }
    paths.push(sends);
}
