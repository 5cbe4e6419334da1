//! Evaluating compiled expressions.

use super::program::CExpr;
use super::store::{Event, History};
use super::value::{Millis, Value};
use crate::ast::BinaryOp;
use crate::source::Span;
use crate::vocabulary::Builtin;
use std::sync::Arc;

/// What an expression can see.
pub struct Ctx<'a> {
    pub attrs: &'a [Value],
    pub event: Option<&'a Event>,
    pub trigger: Option<&'a Event>,
    pub now: Millis,
    pub history: &'a History,
}

/// A run-time fault, such as a division by zero.
#[derive(Clone, Debug, PartialEq)]
pub struct Fault {
    pub message: String,
    pub span: Span,
}

fn fault(message: impl Into<String>, span: Span) -> Fault {
    Fault {
        message: message.into(),
        span,
    }
}

pub fn eval(e: &CExpr, cx: &Ctx) -> Result<Value, Fault> {
    Ok(match e {
        CExpr::Const(v) => v.clone(),
        CExpr::Contact(slot) => cx.attrs.get(*slot as usize).cloned().unwrap_or_default(),
        CExpr::Event(slot) => payload(cx.event, *slot),
        CExpr::Trigger(slot) => payload(cx.trigger, *slot),
        CExpr::Now => Value::Datetime(cx.now),
        CExpr::Not(x) => Value::Bool(!eval(x, cx)?.as_bool()),
        CExpr::Neg(x, span) => match eval(x, cx)? {
            Value::Int(i) => Value::Int(
                i.checked_neg()
                    .ok_or_else(|| fault("integer overflow", *span))?,
            ),
            Value::Float(f) => Value::Float(-f),
            Value::Duration(d) => {
                Value::Duration(d.checked_neg().ok_or_else(|| fault("overflow", *span))?)
            }
            other => other,
        },
        CExpr::And(a, b) => Value::Bool(eval(a, cx)?.as_bool() && eval(b, cx)?.as_bool()),
        CExpr::Or(a, b) => Value::Bool(eval(a, cx)?.as_bool() || eval(b, cx)?.as_bool()),
        CExpr::Bin(BinaryOp::Coalesce, a, b, _) => match eval(a, cx)? {
            Value::Unset => eval(b, cx)?,
            v => v,
        },
        CExpr::Bin(op, a, b, span) => binary(*op, eval(a, cx)?, eval(b, cx)?, *span)?,
        CExpr::IsSet(x, negated) => Value::Bool(eval(x, cx)?.is_set() != *negated),
        CExpr::Call(f, args) => call(*f, args, cx)?,
        CExpr::History {
            count,
            tally: Some(i),
            within,
            ..
        } => {
            let since = within.map_or(Millis::MIN, |w| cx.now.saturating_sub(w));
            let n = cx.history.tallied(*i, since);
            if *count {
                Value::Int(i64::try_from(n).unwrap_or(i64::MAX))
            } else {
                Value::Bool(n > 0)
            }
        }
        CExpr::History {
            count,
            event,
            filter,
            within,
            tally: None,
        } => history(*count, *event, filter.as_deref(), *within, cx)?,
        CExpr::List(items) => Value::List(Arc::new(
            items
                .iter()
                .map(|i| eval(i, cx))
                .collect::<Result<Vec<_>, _>>()?,
        )),
    })
}

fn payload(ev: Option<&Event>, slot: u16) -> Value {
    ev.and_then(|e| e.payload.get(slot as usize))
        .cloned()
        .unwrap_or_default()
}

fn history(
    count: bool,
    ty: u16,
    filter: Option<&CExpr>,
    within: Option<Millis>,
    cx: &Ctx,
) -> Result<Value, Fault> {
    let since = within.map_or(Millis::MIN, |w| cx.now.saturating_sub(w));
    let mut n: i64 = 0;
    // Newest first, so the scan stops at the window's start.
    for ev in cx.history.iter().rev() {
        if ev.at < since {
            break;
        }
        if ev.ty != ty || ev.at > cx.now {
            continue;
        }
        let ok = match filter {
            Some(f) => {
                let inner = Ctx {
                    event: Some(ev),
                    ..*cx
                };
                eval(f, &inner)?.as_bool()
            }
            None => true,
        };
        if ok {
            n += 1;
            if !count {
                return Ok(Value::Bool(true));
            }
        }
    }
    Ok(if count {
        Value::Int(n)
    } else {
        Value::Bool(false)
    })
}

fn call(f: Builtin, args: &[CExpr], cx: &Ctx) -> Result<Value, Fault> {
    let mut vals = Vec::with_capacity(args.len());
    for a in args {
        vals.push(eval(a, cx)?);
    }
    let s = |i: usize| match vals.get(i) {
        Some(Value::Str(s)) => s.clone(),
        _ => Arc::from(""),
    };
    Ok(match f {
        Builtin::Len => Value::Int(match vals.first() {
            Some(Value::Str(s)) => s.chars().count() as i64,
            Some(Value::Set(items)) => items.len() as i64,
            Some(Value::List(items)) => items.len() as i64,
            _ => 0,
        }),
        Builtin::Lower => Value::Str(Arc::from(s(0).to_lowercase())),
        Builtin::Upper => Value::Str(Arc::from(s(0).to_uppercase())),
        Builtin::Contains => Value::Bool(s(0).contains(&*s(1))),
        Builtin::StartsWith => Value::Bool(s(0).starts_with(&*s(1))),
        Builtin::Days => match vals.first() {
            Some(Value::Duration(d)) => Value::Float(*d as f64 / 86_400_000.0),
            _ => Value::Float(0.0),
        },
    })
}

/// Equality across the run-time representations (ints equal floats of the same value).
pub fn equal(a: &Value, b: &Value) -> bool {
    match (a, b) {
        (Value::Int(x), Value::Float(y)) | (Value::Float(y), Value::Int(x)) => (*x as f64) == *y,
        (Value::List(items), Value::Set(set)) | (Value::Set(set), Value::List(items)) => {
            items.len() == set.len()
                && items
                    .iter()
                    .all(|v| matches!(v, Value::Str(s) if set.contains(s)))
        }
        _ => a == b,
    }
}

fn order(a: &Value, b: &Value) -> Option<std::cmp::Ordering> {
    match (a, b) {
        (Value::Int(x), Value::Int(y)) => Some(x.cmp(y)),
        (Value::Str(x), Value::Str(y)) => Some(x.cmp(y)),
        (Value::Datetime(x), Value::Datetime(y)) | (Value::Duration(x), Value::Duration(y)) => {
            Some(x.cmp(y))
        }
        _ => a.as_f64()?.partial_cmp(&b.as_f64()?),
    }
}

fn binary(op: BinaryOp, a: Value, b: Value, span: Span) -> Result<Value, Fault> {
    use std::cmp::Ordering::*;
    Ok(match op {
        BinaryOp::Eq => Value::Bool(equal(&a, &b)),
        BinaryOp::Ne => Value::Bool(!equal(&a, &b)),
        BinaryOp::Lt => Value::Bool(order(&a, &b) == Some(Less)),
        BinaryOp::Le => Value::Bool(matches!(order(&a, &b), Some(Less | Equal))),
        BinaryOp::Gt => Value::Bool(order(&a, &b) == Some(Greater)),
        BinaryOp::Ge => Value::Bool(matches!(order(&a, &b), Some(Greater | Equal))),
        BinaryOp::In => Value::Bool(match &b {
            Value::Set(items) => matches!(&a, Value::Str(s) if items.contains(s)),
            Value::List(items) => items.iter().any(|i| equal(&a, i)),
            _ => false,
        }),
        BinaryOp::Coalesce => match a {
            Value::Unset => b,
            a => a,
        },
        _ => arithmetic(op, a, b, span)?,
    })
}

/// `+ - * /` on numbers, datetimes, durations and strings.
/// The datetimes a value may hold: the years `--until` and input accept.
pub const DATETIMES: std::ops::RangeInclusive<Millis> = -62_167_219_200_000..=253_402_300_799_999;

pub fn arithmetic(op: BinaryOp, a: Value, b: Value, span: Span) -> Result<Value, Fault> {
    let v = arithmetic_unchecked(op, a, b, span)?;
    match v {
        Value::Float(f) if !f.is_finite() => {
            Err(fault("overflow: the result is not a finite number", span))
        }
        Value::Datetime(t) if !DATETIMES.contains(&t) => Err(fault(
            "overflow: the date is out of range (years 0000 to 9999)",
            span,
        )),
        v => Ok(v),
    }
}

/// A duration of `ms` milliseconds (computed in floating point), rounded.
fn duration_of(ms: f64, span: Span) -> Result<Value, Fault> {
    let ms = ms.round();
    if ms.is_finite() && ms.abs() < 9.2e18 {
        Ok(Value::Duration(ms as i64))
    } else {
        Err(fault("overflow: the result is out of range", span))
    }
}

fn arithmetic_unchecked(op: BinaryOp, a: Value, b: Value, span: Span) -> Result<Value, Fault> {
    use Value::*;
    let overflow = || fault("overflow: the result is out of range", span);
    Ok(match (op, a, b) {
        (BinaryOp::Add, Int(x), Int(y)) => Int(x.checked_add(y).ok_or_else(overflow)?),
        (BinaryOp::Sub, Int(x), Int(y)) => Int(x.checked_sub(y).ok_or_else(overflow)?),
        (BinaryOp::Mul, Int(x), Int(y)) => Int(x.checked_mul(y).ok_or_else(overflow)?),
        (BinaryOp::Div, Int(_), Int(0)) => return Err(fault("division by zero", span)),
        (BinaryOp::Div, Int(x), Int(y)) => Int(x.checked_div(y).ok_or_else(overflow)?),
        (BinaryOp::Add, Str(x), Str(y)) => Str(Arc::from(format!("{x}{y}"))),
        (BinaryOp::Add, Datetime(t), Duration(d)) | (BinaryOp::Add, Duration(d), Datetime(t)) => {
            Datetime(t.checked_add(d).ok_or_else(overflow)?)
        }
        (BinaryOp::Sub, Datetime(t), Duration(d)) => {
            Datetime(t.checked_sub(d).ok_or_else(overflow)?)
        }
        (BinaryOp::Sub, Datetime(x), Datetime(y)) => {
            Duration(x.checked_sub(y).ok_or_else(overflow)?)
        }
        (BinaryOp::Add, Duration(x), Duration(y)) => {
            Duration(x.checked_add(y).ok_or_else(overflow)?)
        }
        (BinaryOp::Sub, Duration(x), Duration(y)) => {
            Duration(x.checked_sub(y).ok_or_else(overflow)?)
        }
        (BinaryOp::Mul, Duration(d), n) | (BinaryOp::Mul, n, Duration(d)) => {
            duration_of(d as f64 * n.as_f64().unwrap_or(0.0), span)?
        }
        (BinaryOp::Div, Duration(d), n) => {
            let n = n.as_f64().unwrap_or(0.0);
            if n == 0.0 {
                return Err(fault("division by zero", span));
            }
            duration_of(d as f64 / n, span)?
        }
        (op, x, y) => {
            let (x, y) = (x.as_f64().unwrap_or(0.0), y.as_f64().unwrap_or(0.0));
            match op {
                BinaryOp::Add => Float(x + y),
                BinaryOp::Sub => Float(x - y),
                BinaryOp::Mul => Float(x * y),
                _ if y == 0.0 => return Err(fault("division by zero", span)),
                _ => Float(x / y),
            }
        }
    })
}
