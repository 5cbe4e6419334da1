//! A posted event record: a JSON object whose keys keep their order, so
//! the journal line is the record as posted but for `at`.

use crate::runtime::{format_datetime, parse_datetime, write_json_str, Millis};
use serde::de::{Deserializer, MapAccess, Visitor};
use serde_json::value::RawValue;
use std::fmt;

/// A posted `at` further ahead of the wall clock is refused.
const AHEAD: Millis = 5 * 60 * 1000;

/// One record of a request body, keys in the order posted.
#[derive(Debug)]
pub struct Posted {
    pub entries: Vec<(String, Box<RawValue>)>,
}

impl<'de> serde::Deserialize<'de> for Posted {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Posted, D::Error> {
        struct Entries;
        impl<'de> Visitor<'de> for Entries {
            type Value = Posted;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("a JSON object")
            }
            fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Posted, A::Error> {
                let mut entries = Vec::new();
                while let Some((k, v)) = map.next_entry::<String, Box<RawValue>>()? {
                    entries.push((k, v));
                }
                Ok(Posted { entries })
            }
        }
        d.deserialize_map(Entries)
    }
}

impl Posted {
    /// Parses one record: an object, or why not.
    pub fn parse(text: &str) -> Result<Posted, String> {
        serde_json::from_str(text).map_err(|e| {
            let msg = e.to_string();
            let msg = msg.split(" at line").next().unwrap_or(&msg).to_string();
            format!("malformed JSON: {msg} (column {})", e.column())
        })
    }

    /// The raw text of a key's value.
    pub fn get(&self, key: &str) -> Option<&str> {
        self.entries
            .iter()
            .find(|(k, _)| k == key)
            .map(|(_, v)| v.get())
    }

    /// The posted `at`, when it is a string.
    pub fn at(&self) -> Option<Result<String, ()>> {
        self.get("at")
            .map(|raw| serde_json::from_str::<String>(raw).map_err(|_| ()))
    }

    /// The time the record is run at (LANGUAGE.md section 11). With the
    /// wall clock (`virtual_floor` none): the server's clock `wall`, never
    /// before `last`; a given `at` only refuses a client clock more than
    /// five minutes ahead. With a virtual clock: the given `at`, required,
    /// not before the floor given. A refusal names the field `at`.
    pub fn stamp(
        &self,
        wall: Millis,
        last: Millis,
        virtual_floor: Option<Option<Millis>>,
    ) -> Result<Millis, String> {
        let given = match self.at() {
            None => None,
            Some(Ok(text)) => Some(parse_datetime(&text).ok_or_else(|| {
                format!(
                    "`at` is not an RFC 3339 datetime: `{}`",
                    crate::suggest::echo(&text)
                )
            })?),
            Some(Err(())) => return Err("`at` must be a string".into()),
        };
        match virtual_floor {
            Some(floor) => {
                let t = given.ok_or("`at` is required with --clock virtual")?;
                match floor.filter(|f| t < *f) {
                    Some(f) => Err(format!(
                        "time goes backwards: {} is before the clock at {}",
                        format_datetime(t),
                        format_datetime(f)
                    )),
                    None => Ok(t),
                }
            }
            None => match given.filter(|t| *t > wall + AHEAD) {
                Some(t) => Err(format!(
                    "{} is more than 5 minutes ahead of the server's clock ({})",
                    format_datetime(t),
                    format_datetime(wall)
                )),
                None => Ok(wall.max(last)),
            },
        }
    }

    /// The record as a line with `at` set to `stamp` (in its place, or
    /// first when it had none).
    pub fn line_with_at(&self, stamp: &str) -> String {
        let mut out = String::from("{");
        let had = self.entries.iter().any(|(k, _)| k == "at");
        let mut first = true;
        if !had {
            out.push_str("\"at\":");
            write_json_str(&mut out, stamp);
            first = false;
        }
        for (k, v) in &self.entries {
            if !first {
                out.push(',');
            }
            first = false;
            write_json_str(&mut out, k);
            out.push(':');
            if k == "at" {
                write_json_str(&mut out, stamp);
            } else {
                out.push_str(v.get());
            }
        }
        out.push('}');
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_line_keeps_the_order_and_sets_at() {
        let p = Posted::parse(r#"{"type":"x","at":"2026-01-01T00:00:00Z","contact":"a"}"#)
            .expect("parses");
        assert_eq!(
            p.line_with_at("2026-02-02T00:00:00Z"),
            r#"{"type":"x","at":"2026-02-02T00:00:00Z","contact":"a"}"#
        );
        let p = Posted::parse(r#"{"type":"x", "contact":"a", "n": [1, 2]}"#).expect("parses");
        assert_eq!(
            p.line_with_at("2026-02-02T00:00:00Z"),
            r#"{"at":"2026-02-02T00:00:00Z","type":"x","contact":"a","n":[1, 2]}"#
        );
        assert!(Posted::parse("[1]").is_err());
        assert!(Posted::parse("{").is_err());
    }
}
