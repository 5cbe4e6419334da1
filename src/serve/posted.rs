//! A posted event record: a JSON object whose keys keep their order, so
//! the journal line is the record as posted but for `at`.

use crate::runtime::write_json_str;
use serde::de::{Deserializer, MapAccess, Visitor};
use serde_json::value::RawValue;
use std::fmt;

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
