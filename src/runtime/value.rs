//! Run-time values and their JSON and text forms.

use std::fmt::Write as _;
use std::sync::Arc;

/// A set of strings: a sorted vector, smaller than a tree for the few
/// elements a contact's set holds.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct StrSet(Vec<Arc<str>>);

impl StrSet {
    pub fn insert(&mut self, s: Arc<str>) {
        if let Err(at) = self.0.binary_search(&s) {
            self.0.insert(at, s);
        }
    }

    pub fn remove(&mut self, s: &str) {
        if let Ok(at) = self.0.binary_search_by(|e| (**e).cmp(s)) {
            self.0.remove(at);
        }
    }

    pub fn contains(&self, s: &str) -> bool {
        self.0.binary_search_by(|e| (**e).cmp(s)).is_ok()
    }

    pub fn len(&self) -> usize {
        self.0.len()
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    pub fn iter(&self) -> impl Iterator<Item = &Arc<str>> {
        self.0.iter()
    }
}

impl FromIterator<Arc<str>> for StrSet {
    fn from_iter<I: IntoIterator<Item = Arc<str>>>(iter: I) -> StrSet {
        let mut v: Vec<Arc<str>> = iter.into_iter().collect();
        v.sort();
        v.dedup();
        StrSet(v)
    }
}

/// Milliseconds since the Unix epoch (datetimes) or a length of time (durations).
pub type Millis = i64;

/// A time that never was: "never entered", "no activity yet".
pub const NEVER: Millis = Millis::MIN;

#[derive(Clone, Debug, PartialEq, Default)]
pub enum Value {
    /// An optional field with no value.
    #[default]
    Unset,
    Bool(bool),
    Int(i64),
    Float(f64),
    Str(Arc<str>),
    Datetime(Millis),
    Duration(Millis),
    Set(Arc<StrSet>),
    List(Arc<Vec<Value>>),
}

impl Value {
    pub fn is_set(&self) -> bool {
        !matches!(self, Value::Unset)
    }

    pub fn as_bool(&self) -> bool {
        matches!(self, Value::Bool(true))
    }

    pub fn as_f64(&self) -> Option<f64> {
        match self {
            Value::Int(i) => Some(*i as f64),
            Value::Float(f) => Some(*f),
            _ => None,
        }
    }

    pub fn str(s: &str) -> Value {
        Value::Str(Arc::from(s))
    }

    /// The value as a field of type `ty` stores it: a list of strings
    /// assigned to a set becomes a set.
    pub fn stored_as(self, ty: &crate::check::Type) -> Value {
        match (self, ty.unwrap_optional()) {
            (Value::List(items), crate::check::Type::Set(_)) => Value::Set(Arc::new(
                items
                    .iter()
                    .filter_map(|v| match v {
                        Value::Str(s) => Some(s.clone()),
                        _ => None,
                    })
                    .collect(),
            )),
            (v, _) => v,
        }
    }

    /// Writes the value as JSON.
    pub fn write_json(&self, out: &mut String) {
        match self {
            Value::Unset => out.push_str("null"),
            Value::Bool(b) => out.push_str(if *b { "true" } else { "false" }),
            Value::Int(i) => {
                let _ = write!(out, "{i}");
            }
            Value::Float(f) => write_json_float(out, *f),
            Value::Str(s) => write_json_str(out, s),
            Value::Datetime(ms) => {
                out.push('"');
                out.push_str(&format_datetime(*ms));
                out.push('"');
            }
            Value::Duration(ms) => write_json_str(out, &format_duration(*ms)),
            Value::Set(items) => {
                out.push('[');
                for (i, s) in items.iter().enumerate() {
                    if i > 0 {
                        out.push(',');
                    }
                    write_json_str(out, s);
                }
                out.push(']');
            }
            Value::List(items) => {
                out.push('[');
                for (i, v) in items.iter().enumerate() {
                    if i > 0 {
                        out.push(',');
                    }
                    v.write_json(out);
                }
                out.push(']');
            }
        }
    }

    /// The value as interpolated into a message.
    pub fn write_text(&self, out: &mut String) {
        match self {
            Value::Unset => {}
            Value::Bool(b) => out.push_str(if *b { "true" } else { "false" }),
            Value::Int(i) => {
                let _ = write!(out, "{i}");
            }
            Value::Float(f) => {
                let _ = write!(out, "{f}");
            }
            Value::Str(s) => out.push_str(s),
            Value::Datetime(ms) => out.push_str(&format_datetime(*ms)),
            Value::Duration(ms) => out.push_str(&format_duration(*ms)),
            Value::Set(items) => {
                out.push('[');
                for (i, s) in items.iter().enumerate() {
                    if i > 0 {
                        out.push_str(", ");
                    }
                    out.push_str(s);
                }
                out.push(']');
            }
            Value::List(items) => {
                out.push('[');
                for (i, v) in items.iter().enumerate() {
                    if i > 0 {
                        out.push_str(", ");
                    }
                    v.write_text(out);
                }
                out.push(']');
            }
        }
    }
}

fn write_json_float(out: &mut String, f: f64) {
    if f.is_finite() {
        let s = format!("{f:?}");
        out.push_str(&s);
    } else {
        out.push_str("null");
    }
}

/// Writes a JSON string literal with escapes.
pub fn write_json_str(out: &mut String, s: &str) {
    out.push('"');
    // Copy runs of plain characters whole; every escaped character is
    // ASCII, so the runs end on character boundaries.
    let mut run = 0;
    for (i, &b) in s.as_bytes().iter().enumerate() {
        let escape = match b {
            b'"' => "\\\"",
            b'\\' => "\\\\",
            b'\n' => "\\n",
            b'\r' => "\\r",
            b'\t' => "\\t",
            0..=0x1f => "",
            _ => continue,
        };
        out.push_str(&s[run..i]);
        if escape.is_empty() {
            let _ = write!(out, "\\u{b:04x}");
        } else {
            out.push_str(escape);
        }
        run = i + 1;
    }
    out.push_str(&s[run..]);
    out.push('"');
}

/// RFC 3339 in UTC, with milliseconds only when there are any.
pub fn format_datetime(ms: Millis) -> String {
    if ms % 1000 == 0 && (0..253_402_300_800_000).contains(&ms) {
        // Whole seconds in years 1970-9999: the civil date without a general formatter
        // (H. Hinnant's algorithm).
        let secs = ms / 1000;
        let (days, rem) = (secs / 86_400, secs % 86_400);
        let z = days + 719_468;
        let era = z / 146_097;
        let doe = z - era * 146_097;
        let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
        let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
        let mp = (5 * doy + 2) / 153;
        let d = doy - (153 * mp + 2) / 5 + 1;
        let m = if mp < 10 { mp + 3 } else { mp - 9 };
        let y = yoe + era * 400 + i64::from(m <= 2);
        return format!(
            "{y:04}-{m:02}-{d:02}T{:02}:{:02}:{:02}Z",
            rem / 3600,
            rem % 3600 / 60,
            rem % 60
        );
    }
    match chrono::DateTime::from_timestamp_millis(ms) {
        Some(dt) => dt.to_rfc3339_opts(chrono::SecondsFormat::AutoSi, true),
        None => ms.to_string(),
    }
}

/// Parses an RFC 3339 datetime to milliseconds.
/// Fractional seconds are kept to the millisecond (finer digits are
/// dropped); a leap second (`23:59:60`) is refused, as the clock has none.
/// `2d`, `1d 12h`, `90m`: a duration in seconds.
pub fn parse_duration(text: &str) -> Option<i64> {
    let mut total: i64 = 0;
    let mut any = false;
    for part in text.split_whitespace() {
        let split = part.find(|c: char| !c.is_ascii_digit())?;
        let (n, unit) = part.split_at(split);
        let scale = match unit {
            "s" => 1,
            "m" => 60,
            "h" => 3600,
            "d" => 86_400,
            "w" => 604_800,
            _ => return None,
        };
        total = total.checked_add(n.parse::<i64>().ok()?.checked_mul(scale)?)?;
        any = true;
    }
    any.then_some(total)
}

pub fn parse_datetime(s: &str) -> Option<Millis> {
    if s.get(17..19) == Some("60") {
        return None;
    }
    fast_utc(s).or_else(|| {
        chrono::DateTime::parse_from_rfc3339(s)
            .ok()
            .map(|d| d.timestamp_millis())
    })
}

/// The common `YYYY-MM-DDTHH:MM:SSZ` form, without a general parser.
fn fast_utc(s: &str) -> Option<Millis> {
    let b = s.as_bytes();
    if b.len() != 20
        || b[4] != b'-'
        || b[7] != b'-'
        || b[10] != b'T'
        || b[13] != b':'
        || b[16] != b':'
        || b[19] != b'Z'
    {
        return None;
    }
    let num = |r: std::ops::Range<usize>| -> Option<i64> {
        b[r].iter().try_fold(0i64, |acc, c| {
            c.is_ascii_digit().then(|| acc * 10 + i64::from(c - b'0'))
        })
    };
    let (y, mo, d) = (num(0..4)?, num(5..7)?, num(8..10)?);
    let (h, mi, sec) = (num(11..13)?, num(14..16)?, num(17..19)?);
    let leap = (y % 4 == 0 && y % 100 != 0) || y % 400 == 0;
    let month_days = [
        31,
        if leap { 29 } else { 28 },
        31,
        30,
        31,
        30,
        31,
        31,
        30,
        31,
        30,
        31,
    ];
    if !(1..=12).contains(&mo)
        || d < 1
        || d > month_days[(mo - 1) as usize]
        || h > 23
        || mi > 59
        || sec > 59
    {
        return None;
    }
    // Days from the civil date (H. Hinnant's algorithm).
    let yy = if mo <= 2 { y - 1 } else { y };
    let era = yy.div_euclid(400);
    let yoe = yy - era * 400;
    let mp = (mo + 9) % 12;
    let doy = (153 * mp + 2) / 5 + d - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    let days = era * 146_097 + doe - 719_468;
    Some(((days * 86_400) + h * 3600 + mi * 60 + sec) * 1000)
}

/// A duration in the language's literal form, such as `1d 12h`.
pub fn format_duration(ms: Millis) -> String {
    if ms % 1000 == 0 {
        let s = crate::pretty::duration(ms.abs() / 1000);
        if ms < 0 {
            format!("-{s}")
        } else {
            s
        }
    } else {
        format!("{ms}ms")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn datetime_formatting_agrees_with_chrono() {
        for ms in [
            0,
            1_772_355_600_000,
            951_782_400_000,
            4_102_444_799_000,
            1_709_251_199_000,
        ] {
            let slow = chrono::DateTime::from_timestamp_millis(ms)
                .map(|d| d.to_rfc3339_opts(chrono::SecondsFormat::AutoSi, true));
            assert_eq!(Some(format_datetime(ms)), slow, "{ms}");
        }
        assert_eq!(format_datetime(1_500), "1970-01-01T00:00:01.500Z");
    }

    #[test]
    fn fast_datetime_agrees_with_chrono() {
        for s in [
            "1970-01-01T00:00:00Z",
            "2026-03-01T09:00:00Z",
            "2024-02-29T23:59:59Z",
            "2000-12-31T12:30:45Z",
            "1969-07-20T20:17:40Z",
        ] {
            let slow = chrono::DateTime::parse_from_rfc3339(s)
                .map(|d| d.timestamp_millis())
                .ok();
            assert_eq!(fast_utc(s), slow, "{s}");
        }
        for bad in [
            "2026-02-30T00:00:00Z",
            "2026-13-01T00:00:00Z",
            "2026-01-01T24:00:00Z",
            "2026-01-01 00:00:00Z",
        ] {
            assert_eq!(fast_utc(bad), None, "{bad}");
        }
    }

    #[test]
    fn json_strings_read_back_as_written() {
        for s in [
            "",
            "plain",
            "quote \" and backslash \\",
            "lines\nand\r\ttabs",
            "\u{1}\u{8}\u{c}\u{1f} controls",
            "unicode: é 日本 🎉 at the end\"",
        ] {
            let mut out = String::new();
            write_json_str(&mut out, s);
            assert_eq!(
                serde_json::from_str::<String>(&out).ok().as_deref(),
                Some(s),
                "{out}"
            );
        }
        let mut out = String::new();
        write_json_str(&mut out, "a\u{1}b");
        assert_eq!(out, "\"a\\u0001b\"");
    }
}
