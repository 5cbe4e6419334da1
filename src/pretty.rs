//! Printing AST pieces back as source text, with the fewest parentheses
//! that keep the meaning.

use crate::ast::{BinaryOp, Expr, ExprKind, HistoryKind, UnaryOp};
use std::fmt::Write;

/// An expression as canonical source text.
pub fn expr(e: &Expr) -> String {
    let mut out = String::new();
    write_expr(&mut out, e, 0);
    out
}

/// A duration in seconds as a literal: whole weeks as `2w`, otherwise days
/// as the largest unit (`30d`, `1d 12h`), as people write them.
pub fn duration(seconds: i64) -> String {
    if seconds == 0 {
        return "0s".to_string();
    }
    if seconds % 604_800 == 0 {
        return format!("{}w", seconds / 604_800);
    }
    let mut rest = seconds;
    let mut parts = Vec::new();
    for (unit, size) in [("d", 86_400), ("h", 3600), ("m", 60), ("s", 1)] {
        if rest >= size {
            parts.push(format!("{}{unit}", rest / size));
            rest %= size;
        }
    }
    parts.join(" ")
}

/// A string literal with quotes and escapes.
pub fn string(s: &str) -> String {
    let mut out = String::from("\"");
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\t' => out.push_str("\\t"),
            c => out.push(c),
        }
    }
    out.push('"');
    out
}

fn precedence(op: BinaryOp) -> u8 {
    match op {
        BinaryOp::Or => 1,
        BinaryOp::And => 2,
        BinaryOp::Eq
        | BinaryOp::Ne
        | BinaryOp::Lt
        | BinaryOp::Le
        | BinaryOp::Gt
        | BinaryOp::Ge
        | BinaryOp::In => 4,
        BinaryOp::Coalesce => 5,
        BinaryOp::Add | BinaryOp::Sub => 6,
        BinaryOp::Mul | BinaryOp::Div => 7,
    }
}

/// Writes `e`, parenthesised when its precedence is below `min`.
fn write_expr(out: &mut String, e: &Expr, min: u8) {
    let (prec, text) = match &e.kind {
        ExprKind::Binary { op, lhs, rhs } => {
            let p = precedence(*op);
            let mut s = String::new();
            // `??` groups to the right, every other operator to the left.
            let (l, r) = if *op == BinaryOp::Coalesce {
                (p + 1, p)
            } else {
                (p, p + 1)
            };
            write_expr(&mut s, lhs, l);
            let _ = write!(s, " {} ", op.as_str());
            write_expr(&mut s, rhs, r);
            (p, s)
        }
        ExprKind::Unary {
            op: UnaryOp::Not,
            operand,
        } => {
            let mut s = String::from("not ");
            write_expr(&mut s, operand, 3);
            (3, s)
        }
        ExprKind::Unary {
            op: UnaryOp::Neg,
            operand,
        } => {
            let mut s = String::from("-");
            write_expr(&mut s, operand, 8);
            (8, s)
        }
        ExprKind::IsSet { operand, negated } => {
            let mut s = String::new();
            write_expr(&mut s, operand, 5);
            s.push_str(if *negated { " is not set" } else { " is set" });
            (4, s)
        }
        // Every other kind is an atom; `atom` names each.
        _ => (9, atom(e)),
    };
    if prec < min {
        let _ = write!(out, "({text})");
    } else {
        out.push_str(&text);
    }
}

fn atom(e: &Expr) -> String {
    match &e.kind {
        ExprKind::Int(n) => n.to_string(),
        ExprKind::Float(f) => {
            let s = format!("{f:?}");
            if s.contains('.') || s.contains('e') {
                s
            } else {
                format!("{s}.0")
            }
        }
        ExprKind::Str(s) => string(s),
        ExprKind::Bool(b) => b.to_string(),
        ExprKind::Duration(d) => duration(*d),
        ExprKind::Datetime(dt) => format!(
            "@{}",
            dt.to_rfc3339_opts(chrono::SecondsFormat::AutoSi, true)
        ),
        ExprKind::List(items) => {
            let parts: Vec<String> = items.iter().map(expr).collect();
            format!("[{}]", parts.join(", "))
        }
        ExprKind::Now => "now".to_string(),
        ExprKind::Path { root, field } => format!("{}.{}", root.as_str(), field.name),
        ExprKind::Call { func, args } => {
            let parts: Vec<String> = args.iter().map(expr).collect();
            format!("{}({})", func.name, parts.join(", "))
        }
        ExprKind::History {
            kind,
            event,
            filter,
            within,
        } => {
            let mut s = match kind {
                HistoryKind::Seen => format!("seen({}", event.name),
                HistoryKind::Count => format!("count({}", event.name),
            };
            if let Some(f) = filter {
                let _ = write!(s, " where {}", expr(f));
            }
            if let Some(w) = within {
                let _ = write!(s, " within {}", duration(w.seconds));
            }
            s.push(')');
            s
        }
        ExprKind::Unary { .. } | ExprKind::Binary { .. } | ExprKind::IsSet { .. } => {
            unreachable!("an operator expression is not an atom")
        }
    }
}
