//! Reading input records (events and contacts) as JSON Lines, validated
//! against the schema.

use super::record::{Input, CONTACT_CREATED, CONTACT_UPDATED};
use super::value::{parse_datetime, Value};
use crate::check::{Schema, Type};
use crate::suggest::{self, echo};
use serde::de::{self, DeserializeSeed, MapAccess, Visitor};
use serde_json::value::RawValue;
use serde_json::Value as Json;
use std::borrow::Cow;
use std::fmt;
use std::sync::Arc;

/// Which payload fields of each event type the program reads. The others
/// are validated as usual but not kept, so reading them allocates nothing.
#[derive(Clone, Debug, Default)]
pub struct Projection {
    /// A bit per field (fields past the 64th are always kept), per event
    /// type; `None` keeps everything.
    read: Option<Vec<u64>>,
}

impl Projection {
    /// Keeps every field.
    pub fn all() -> Projection {
        Projection { read: None }
    }

    /// Keeps only the fields `read` marks, a bit per field per event type.
    pub fn only(read: Vec<u64>) -> Projection {
        Projection { read: Some(read) }
    }

    pub fn keeps(&self, event: usize, slot: usize) -> bool {
        match &self.read {
            None => true,
            Some(read) => slot >= 64 || read.get(event).is_none_or(|m| m & (1 << slot) != 0),
        }
    }

    /// How many leading payload slots are worth keeping for `event` of `fields` fields.
    fn kept_len(&self, event: usize, fields: usize) -> usize {
        match &self.read {
            Some(read) if fields <= 64 => read
                .get(event)
                .map_or(fields, |m| 64 - m.leading_zeros() as usize),
            _ => fields,
        }
    }
}

pub use super::record::Payload;

/// The fields of one input line, before validation.
#[derive(Default)]
struct RawRecord<'a> {
    at: Option<Cow<'a, str>>,
    contact: Option<Cow<'a, str>>,
    id: Option<Cow<'a, str>>,
    ty: Option<Cow<'a, str>>,
    attributes: Option<&'a RawValue>,
    rest: Vec<(Cow<'a, str>, &'a RawValue)>,
}

/// Parses one record into its fields, values left raw.
struct RawSeed;

impl<'de> DeserializeSeed<'de> for RawSeed {
    type Value = RawRecord<'de>;

    fn deserialize<D: de::Deserializer<'de>>(self, d: D) -> Result<Self::Value, D::Error> {
        d.deserialize_map(self)
    }
}

impl<'de> Visitor<'de> for RawSeed {
    type Value = RawRecord<'de>;

    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("a JSON object")
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Self::Value, A::Error> {
        let mut r = RawRecord::default();
        let mut keys: Vec<Cow<'de, str>> = Vec::new();
        while let Some(key) = map.next_key::<Str>()? {
            let key = key.0;
            if keys.contains(&key) {
                return Err(de::Error::custom(duplicate(&key)));
            }
            keys.push(key.clone());
            match &*key {
                "at" => r.at = Some(string_value(&mut map, "at")?),
                "contact" => r.contact = Some(string_value(&mut map, "contact")?),
                "type" => r.ty = Some(string_value(&mut map, "type")?),
                "attributes" => r.attributes = Some(map.next_value()?),
                "id" => {
                    let v: &RawValue = map.next_value()?;
                    match serde_json::from_str::<Str>(v.get()) {
                        Ok(s) => r.id = Some(Cow::Owned(s.0.into_owned())),
                        Err(_) => r.rest.push((key, v)),
                    }
                }
                _ => {
                    let v = map.next_value()?;
                    r.rest.push((key, v));
                }
            }
        }
        Ok(r)
    }
}

/// The string value of `key`; any other value is an error naming the key.
fn string_value<'de, A: MapAccess<'de>>(map: &mut A, key: &str) -> Result<Cow<'de, str>, A::Error> {
    map.next_value::<Str>().map(|s| s.0).map_err(|e| {
        let e = e.to_string();
        let found = e
            .strip_prefix("invalid type: ")
            .and_then(|rest| rest.split(", expected").next())
            .unwrap_or(&e);
        de::Error::custom(format!("`{key}` must be a string, found {found}"))
    })
}

/// A string that borrows from the input when it has no escapes.
struct Str<'a>(Cow<'a, str>);

impl std::ops::Deref for Str<'_> {
    type Target = str;

    fn deref(&self) -> &str {
        &self.0
    }
}

impl<'de> de::Deserialize<'de> for Str<'de> {
    fn deserialize<D: de::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl<'de> Visitor<'de> for V {
            type Value = Str<'de>;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("a string")
            }
            fn visit_borrowed_str<E: de::Error>(self, v: &'de str) -> Result<Self::Value, E> {
                Ok(Str(Cow::Borrowed(v)))
            }
            fn visit_str<E: de::Error>(self, v: &str) -> Result<Self::Value, E> {
                Ok(Str(Cow::Owned(v.to_string())))
            }
        }
        d.deserialize_str(V)
    }
}

fn parse_raw(line: &str) -> Result<RawRecord<'_>, String> {
    let mut de = serde_json::Deserializer::from_str(line);
    let raw = RawSeed.deserialize(&mut de).map_err(json_error)?;
    de.end().map_err(json_error)?;
    Ok(raw)
}

/// A key given twice in one object: which value was meant is unknown.
fn duplicate(key: &str) -> String {
    format!(
        "the key `{}` appears twice in the record; which value is meant is unknown",
        echo(key)
    )
}

fn json_error(e: serde_json::Error) -> String {
    let msg = e.to_string();
    let msg = msg.split(" at line ").next().unwrap_or(&msg).to_string();
    if e.is_data() {
        msg
    } else {
        format!("malformed JSON: {msg} (column {})", e.column())
    }
}

/// Parses and validates one event line, keeping its whole payload.
pub fn parse_event(line: &str, schema: &Schema) -> Result<Input, String> {
    parse_event_kept(line, schema, &Projection::all())
}

/// Parses and validates one event line, keeping the payload fields `keep`
/// names (the others are validated, then dropped).
pub fn parse_event_kept(line: &str, schema: &Schema, keep: &Projection) -> Result<Input, String> {
    let mut input = Input::default();
    parse_event_into(line, schema, keep, &mut input)?;
    Ok(input)
}

/// Parses and validates one event line into `out` (which may hold anything
/// before; on error, it is left unspecified).
pub fn parse_event_into(
    line: &str,
    schema: &Schema,
    keep: &Projection,
    out: &mut Input,
) -> Result<(), String> {
    // The fast path takes the common shape in one pass; anything it does
    // not take, the slow path parses again, to accept it or word the error.
    if let Some(seen) = fast::parse(line, schema, keep, out) {
        if seen.at && seen.contact && seen.ty && !out.contact.is_empty() {
            // The fast path serves events of up to 64 fields: one bit each.
            let given = Given {
                bits: seen.given,
                more: Vec::new(),
            };
            require_fields(&schema.events[out.ty as usize], &given)?;
            if out.ty == CONTACT_CREATED {
                require_all(&out.attrs, schema)?;
            }
            // The payload holds only the slots kept already.
            return Ok(());
        }
    }
    *out = slow_event(line, schema, keep)?;
    Ok(())
}

/// Parses one event line in two steps (fields, then values); slower, but
/// words every error.
fn slow_event(line: &str, schema: &Schema, keep: &Projection) -> Result<Input, String> {
    let raw = parse_raw(line)?;
    let at = raw.at.ok_or("missing field `at`")?;
    let at = parse_datetime(&at)
        .ok_or_else(|| format!("`at` is not an RFC 3339 datetime: `{}`", echo(&at)))?;
    let contact = smol_str::SmolStr::new(raw.contact.ok_or("missing field `contact`")?);
    if contact.is_empty() {
        return Err("`contact` is empty".into());
    }
    let ty_name = raw.ty.ok_or("missing field `type`")?;
    let ty = schema.event(&ty_name).ok_or_else(|| {
        let mut msg = format!("unknown event type `{}`", echo(&ty_name));
        if let Some(c) = suggest::closest(&ty_name, schema.event_names()) {
            msg.push_str(&format!(" (did you mean `{c}`?)"));
        }
        msg
    })?;
    let event = &schema.events[ty];
    // Which fields were given: a bit per field (events declare few fields).
    let mut given = Given::new(event.fields.len());
    let mut payload: Payload = std::iter::repeat_n(Value::Unset, event.fields.len()).collect();
    for (key, value) in raw.rest {
        // The client's event id (a string, taken above); passed over.
        if key == "id" {
            return Err(format!(
                "`id` (the client's event id) must be a string, found {}",
                echo(value.get())
            ));
        }
        let Some((slot, fty)) = event.field(&key) else {
            let mut msg = format!("event `{}` has no field `{}`", event.name, echo(&key));
            if let Some(c) = suggest::closest(&key, event.fields.iter().map(|(n, _)| n.as_str())) {
                msg.push_str(&format!(" (did you mean `{c}`?)"));
            }
            return Err(msg);
        };
        payload[slot] = convert_raw(value, fty)
            .map_err(|e| format!("field `{}` of `{}` {e}", echo(&key), event.name))?;
        given.set(slot);
    }
    require_fields(event, &given)?;
    let kept = keep.kept_len(ty, payload.len());
    payload.truncate(kept);
    let ty = ty as u16;
    let attrs = if ty == CONTACT_CREATED || ty == CONTACT_UPDATED {
        let attrs: Vec<(Cow<str>, &RawValue)> = match raw.attributes {
            Some(raw) => {
                serde_json::from_str::<Pairs>(raw.get())
                    .map_err(|e| {
                        if raw.get().trim_start().starts_with('{') && e.is_data() {
                            json_error(e)
                        } else {
                            "`attributes` must be an object".to_string()
                        }
                    })?
                    .0
            }
            None => Vec::new(),
        };
        attributes(attrs.into_iter(), schema, ty == CONTACT_CREATED)?
    } else if raw.attributes.is_some() {
        return Err(format!(
            "`attributes` is only allowed on `contact_created` and `contact_updated`, not on `{}`",
            event.name
        ));
    } else {
        Vec::new()
    };
    Ok(Input {
        at,
        contact,
        ty,
        payload,
        attrs,
    })
}

/// Checks that every field the event requires was given.
fn require_fields(event: &crate::check::schema::Event, given: &Given) -> Result<(), String> {
    for (slot, (name, fty)) in event.fields.iter().enumerate() {
        if !given.get(slot) && !fty.is_optional() {
            return Err(format!("event `{}` is missing field `{name}`", event.name));
        }
    }
    Ok(())
}

/// A set of field slots: inline bits for the first 64, a vector beyond.
struct Given {
    bits: u64,
    more: Vec<bool>,
}

impl Given {
    fn new(n: usize) -> Given {
        Given {
            bits: 0,
            more: if n > 64 {
                vec![false; n - 64]
            } else {
                Vec::new()
            },
        }
    }

    fn set(&mut self, i: usize) {
        if i < 64 {
            self.bits |= 1 << i;
        } else if let Some(b) = self.more.get_mut(i - 64) {
            *b = true;
        }
    }

    fn get(&self, i: usize) -> bool {
        if i < 64 {
            self.bits & (1 << i) != 0
        } else {
            self.more.get(i - 64).copied().unwrap_or(false)
        }
    }
}

/// Parses one line of a contacts file: `{"id": ..., field: value, ...}`.
pub fn parse_contact(line: &str, schema: &Schema) -> Result<(String, Vec<(u16, Value)>), String> {
    let raw = parse_raw(line)?;
    let id = match raw.id {
        Some(id) => id.into_owned(),
        None => match raw.rest.iter().find(|(k, _)| k == "id") {
            Some((_, v)) => {
                return Err(format!(
                    "`id` (the contact's id) must be a string, found {}",
                    echo(v.get())
                ))
            }
            None => return Err("missing field `id` (a string)".into()),
        },
    };
    if id.is_empty() {
        return Err("`id` is empty".into());
    }
    for (k, v) in [
        ("at", &raw.at),
        ("contact", &raw.contact),
        ("type", &raw.ty),
    ] {
        if v.is_some() {
            return Err(format!(
                "a contact record has no field `{k}`; it holds `id` and the contact's attributes"
            ));
        }
    }
    if raw.attributes.is_some() {
        return Err(
            "a contact record holds its attributes at the top level, not under `attributes`".into(),
        );
    }
    Ok((id, attributes(raw.rest.into_iter(), schema, true)?))
}

/// Validates attribute values; on creation, every required field must be given.
fn attributes<'a>(
    items: impl Iterator<Item = (Cow<'a, str>, &'a RawValue)>,
    schema: &Schema,
    creating: bool,
) -> Result<Vec<(u16, Value)>, String> {
    let mut out = Vec::new();
    for (key, value) in items {
        let Some(slot) = schema.field(&key) else {
            let mut msg = format!("the contact has no field `{}`", echo(&key));
            if let Some(c) = suggest::closest(&key, schema.field_names()) {
                msg.push_str(&format!(" (did you mean `{c}`?)"));
            }
            return Err(msg);
        };
        let field = &schema.fields[slot];
        let v =
            convert_raw(value, &field.ty).map_err(|e| format!("attribute `{}` {e}", echo(&key)))?;
        out.push((slot as u16, v));
    }
    if creating {
        require_all(&out, schema)?;
    }
    Ok(out)
}

/// Checks that a new contact's attributes give every required field.
fn require_all(attrs: &[(u16, Value)], schema: &Schema) -> Result<(), String> {
    let missing = schema
        .fields
        .iter()
        .enumerate()
        .find(|(i, f)| f.is_required() && !attrs.iter().any(|(slot, _)| *slot as usize == *i));
    match missing {
        Some((_, f)) => Err(format!(
            "required attribute `{}` is missing (it has no default and is not optional)",
            f.name
        )),
        None => Ok(()),
    }
}

/// Converts raw JSON to a value of type `ty` without building a JSON tree;
/// on failure the slower [`convert`] words the error.
pub fn convert_raw(raw: &RawValue, ty: &Type) -> Result<Value, String> {
    let mut de = serde_json::Deserializer::from_str(raw.get());
    match Typed(ty, true).deserialize(&mut de) {
        Ok(v) => Ok(v),
        Err(_) => {
            let json: Json = serde_json::from_str(raw.get()).map_err(|e| e.to_string())?;
            convert(&json, ty)
        }
    }
}

/// The key/value pairs of a JSON object, values left raw.
struct Pairs<'a>(Vec<(Cow<'a, str>, &'a RawValue)>);

impl<'de> de::Deserialize<'de> for Pairs<'de> {
    fn deserialize<D: de::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl<'de> Visitor<'de> for V {
            type Value = Pairs<'de>;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("an object")
            }
            fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Self::Value, A::Error> {
                let mut out: Vec<(Cow<'de, str>, &'de RawValue)> = Vec::new();
                while let Some(k) = map.next_key::<Cow<'de, str>>()? {
                    if out.iter().any(|(seen, _)| *seen == k) {
                        return Err(de::Error::custom(duplicate(&k)));
                    }
                    out.push((k, map.next_value()?));
                }
                Ok(Pairs(out))
            }
        }
        d.deserialize_map(V)
    }
}

/// Deserializes straight into a [`Value`] of one type; when the value is
/// not kept (`.1` false), it is only validated and comes out `Unset`.
struct Typed<'t>(&'t Type, bool);

mod fast;

impl<'de> DeserializeSeed<'de> for Typed<'_> {
    type Value = Value;

    fn deserialize<D: de::Deserializer<'de>>(self, d: D) -> Result<Value, D::Error> {
        d.deserialize_any(self)
    }
}

impl<'de> Visitor<'de> for Typed<'_> {
    type Value = Value;

    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        write!(f, "{}", self.0)
    }

    fn visit_unit<E: de::Error>(self) -> Result<Value, E> {
        match self.0 {
            Type::Optional(_) => Ok(Value::Unset),
            _ => Err(E::custom("null")),
        }
    }

    fn visit_bool<E: de::Error>(self, v: bool) -> Result<Value, E> {
        match self.0.unwrap_optional() {
            Type::Bool => Ok(Value::Bool(v)),
            _ => Err(E::custom("bool")),
        }
    }

    fn visit_i64<E: de::Error>(self, v: i64) -> Result<Value, E> {
        match self.0.unwrap_optional() {
            Type::Int => Ok(Value::Int(v)),
            Type::Float => Ok(Value::Float(v as f64)),
            Type::Duration => v
                .checked_mul(1000)
                .map(Value::Duration)
                .ok_or_else(|| E::custom("range")),
            _ => Err(E::custom("int")),
        }
    }

    fn visit_u64<E: de::Error>(self, v: u64) -> Result<Value, E> {
        match i64::try_from(v) {
            Ok(i) => self.visit_i64(i),
            Err(_) => Err(E::custom("range")),
        }
    }

    fn visit_f64<E: de::Error>(self, v: f64) -> Result<Value, E> {
        match self.0.unwrap_optional() {
            Type::Float => Ok(Value::Float(v)),
            _ => Err(E::custom("float")),
        }
    }

    fn visit_str<E: de::Error>(self, v: &str) -> Result<Value, E> {
        match self.0.unwrap_optional() {
            Type::Str if !self.1 => Ok(Value::Unset),
            Type::Str => Ok(Value::str(v)),
            Type::Enum(members) if members.iter().any(|m| m == v) => {
                Ok(if self.1 { Value::str(v) } else { Value::Unset })
            }
            Type::Datetime => parse_datetime(v)
                .map(Value::Datetime)
                .ok_or_else(|| E::custom("datetime")),
            _ => Err(E::custom("string")),
        }
    }

    fn visit_seq<A: de::SeqAccess<'de>>(self, mut seq: A) -> Result<Value, A::Error> {
        match self.0.unwrap_optional() {
            Type::Set(_) => {
                let mut set = super::value::StrSet::default();
                while let Some(s) = seq.next_element::<Str>()? {
                    if self.1 {
                        set.insert(Arc::from(&*s));
                    }
                }
                Ok(if self.1 {
                    Value::Set(Arc::new(set))
                } else {
                    Value::Unset
                })
            }
            Type::List(inner) => {
                let mut items = Vec::new();
                while let Some(v) = seq.next_element_seed(Typed(inner, self.1))? {
                    if self.1 {
                        items.push(v);
                    }
                }
                Ok(if self.1 {
                    Value::List(Arc::new(items))
                } else {
                    Value::Unset
                })
            }
            _ => Err(de::Error::custom("list")),
        }
    }
}

/// Converts a JSON value to a value of type `ty`; the error completes "field `x` ...".
pub fn convert(v: &Json, ty: &Type) -> Result<Value, String> {
    let wrong = || match (ty.unwrap_optional(), v) {
        // A whole number too large for an int, or written as a float.
        (Type::Int, Json::Number(n)) if n.is_u64() || n.is_i64() => {
            format!(
                "is out of range for int (-9223372036854775808 to 9223372036854775807), found {n}"
            )
        }
        (Type::Int, Json::Number(n))
            if n.as_f64()
                .is_some_and(|f| f.fract() == 0.0 && f.is_finite()) =>
        {
            format!("must be int, found {n} (a number written with a fraction or an exponent; write it as a whole number)")
        }
        _ => format!("must be {ty}, found {}", describe(v)),
    };
    Ok(match (ty, v) {
        (Type::Optional(_), Json::Null) => Value::Unset,
        (Type::Optional(inner), v) => return convert(v, inner),
        (Type::Str, Json::String(s)) => Value::str(s),
        (Type::Enum(members), Json::String(s)) => {
            if !members.contains(s) {
                let list: Vec<String> = members.iter().map(|m| format!("\"{m}\"")).collect();
                return Err(format!("must be one of {}, found \"{s}\"", list.join(", ")));
            }
            Value::str(s)
        }
        (Type::Int, Json::Number(n)) => Value::Int(n.as_i64().ok_or_else(wrong)?),
        (Type::Float, Json::Number(n)) => Value::Float(n.as_f64().ok_or_else(wrong)?),
        (Type::Bool, Json::Bool(b)) => Value::Bool(*b),
        (Type::Datetime, Json::String(s)) => Value::Datetime(
            parse_datetime(s)
                .ok_or_else(|| format!("must be an RFC 3339 datetime, found \"{}\"", echo(s)))?,
        ),
        (Type::Duration, Json::Number(n)) => Value::Duration(
            n.as_i64()
                .and_then(|s| s.checked_mul(1000))
                .ok_or_else(wrong)?,
        ),
        (Type::Set(_), Json::Array(items)) => {
            let mut set = super::value::StrSet::default();
            for i in items {
                match i {
                    Json::String(s) => {
                        set.insert(Arc::from(s.as_str()));
                    }
                    other => return Err(format!("must hold strings, found {}", describe(other))),
                }
            }
            Value::Set(Arc::new(set))
        }
        (Type::List(inner), Json::Array(items)) => Value::List(Arc::new(
            items
                .iter()
                .map(|i| convert(i, inner))
                .collect::<Result<Vec<_>, _>>()?,
        )),
        _ => return Err(wrong()),
    })
}

fn describe(v: &Json) -> String {
    match v {
        Json::Null => "null".into(),
        Json::Bool(b) => format!("bool `{b}`"),
        Json::Number(n) if n.is_i64() || n.is_u64() => format!("int `{n}`"),
        Json::Number(n) => format!("float `{n}`"),
        Json::String(s) => format!("string \"{}\"", echo(s)),
        Json::Array(_) => "a list".into(),
        Json::Object(_) => "an object".into(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn program() -> crate::runtime::Compiled {
        let mut sources = crate::source::SourceMap::default();
        sources.add(
            "t.flow",
            "contact { email: string\n tags: set<string> }\n\
             event opened { campaign: string, client: string }\n\
             event visited { url: string, seconds: int }\n\
             workflow w { when opened where event.campaign == \"a\" tag \"x\" }\n",
        );
        let a = crate::pipeline::analyse(&sources);
        assert!(a.diagnostics.is_empty(), "{:?}", a.diagnostics);
        crate::runtime::compile(&a.program, &a.checked.schema)
    }

    #[test]
    fn fields_nothing_reads_are_validated_but_not_kept() {
        let prog = program();
        let parse = |line: &str| parse_event_kept(line, &prog.schema, &prog.projection);
        let opened = parse(
            r#"{"at":"2026-01-01T00:00:00Z","contact":"c","type":"opened","client":"mail","campaign":"a"}"#,
        );
        assert_eq!(
            opened.map(|i| i.payload.to_vec()),
            Ok(vec![Value::str("a")])
        );
        let visited = parse(
            r#"{"at":"2026-01-01T00:00:00Z","contact":"c","type":"visited","url":"/","seconds":3}"#,
        );
        assert_eq!(visited.map(|i| i.payload.len()), Ok(0));
        // Unread fields are still checked.
        let bad = parse(
            r#"{"at":"2026-01-01T00:00:00Z","contact":"c","type":"visited","url":"/","seconds":"3"}"#,
        );
        assert_eq!(
            bad.map(|_| ()),
            Err("field `seconds` of `visited` must be int, found string \"3\"".to_string())
        );
        let missing =
            parse(r#"{"at":"2026-01-01T00:00:00Z","contact":"c","type":"visited","url":"/"}"#);
        assert_eq!(
            missing.map(|_| ()),
            Err("event `visited` is missing field `seconds`".to_string())
        );
        // Without a projection, everything is kept.
        let all = parse_event(
            r#"{"at":"2026-01-01T00:00:00Z","contact":"c","type":"visited","url":"/","seconds":3}"#,
            &prog.schema,
        );
        assert_eq!(
            all.map(|i| i.payload.to_vec()),
            Ok(vec![Value::str("/"), Value::Int(3)])
        );
    }

    use proptest::prelude::*;

    fn same(a: &Input, b: &Input) -> bool {
        a.at == b.at
            && a.contact == b.contact
            && a.ty == b.ty
            && a.payload == b.payload
            && a.attrs == b.attrs
    }

    /// A JSON object of the given members, in order; `raw` members are
    /// written as they are (to make malformed lines too).
    fn object(members: &[(String, String)]) -> String {
        let body: Vec<String> = members.iter().map(|(k, v)| format!("{k}:{v}")).collect();
        format!("{{{}}}", body.join(","))
    }

    fn member() -> impl Strategy<Value = (String, String)> {
        let key = prop::sample::select(vec![
            "\"at\"",
            "\"contact\"",
            "\"type\"",
            "\"id\"",
            "\"attributes\"",
            "\"campaign\"",
            "\"client\"",
            "\"url\"",
            "\"seconds\"",
            "\"email\"",
            "\"nope\"",
            "\"c\\u0061mpaign\"",
        ]);
        let value = prop::sample::select(vec![
            "\"2026-01-01T00:00:00Z\"",
            "\"2026-01-01T00:00:00.5+01:00\"",
            "\"soon\"",
            "\"c1\"",
            "\"\"",
            "\"opened\"",
            "\"visited\"",
            "\"contact_created\"",
            "\"contact_updated\"",
            "\"a\"",
            "\"t\\u00e9\"",
            "3",
            "-1",
            "2.5",
            "1e3",
            "true",
            "null",
            "[]",
            "[\"x\"]",
            "{}",
            "{\"email\":\"e@x\"}",
            "{\"email\":3}",
            "{\"nope\":1}",
            "{\"tags\":[\"v\"]}",
            "{",
        ]);
        (key.prop_map(String::from), value.prop_map(String::from))
    }

    /// A valid line of one of three shapes, then up to three edits: a value
    /// replaced, a member added, two members swapped.
    fn near_valid() -> impl Strategy<Value = Vec<(String, String)>> {
        let base = prop::sample::select(vec![0usize, 1, 2]).prop_map(|shape| {
            let m = |k: &str, v: &str| (format!("\"{k}\""), v.to_string());
            let mut out = vec![m("at", "\"2026-01-01T00:00:00Z\""), m("contact", "\"c1\"")];
            match shape {
                0 => out.extend([
                    m("type", "\"opened\""),
                    m("campaign", "\"a\""),
                    m("client", "\"m\""),
                ]),
                1 => out.extend([
                    m("type", "\"visited\""),
                    m("url", "\"/\""),
                    m("seconds", "3"),
                ]),
                _ => out.extend([
                    m("type", "\"contact_created\""),
                    m("attributes", "{\"email\":\"e@x\",\"tags\":[\"b\",\"a\"]}"),
                ]),
            }
            out
        });
        let edit = (0usize..3, 0usize..8, 0usize..8, member());
        (base, prop::collection::vec(edit, 0..4)).prop_map(|(mut members, edits)| {
            for (kind, i, j, (k, v)) in edits {
                let n = members.len();
                match kind {
                    0 => members[i % n].1 = v,
                    1 => members.insert(i % (n + 1), (k, v)),
                    _ => members.swap(i % n, j % n),
                }
            }
            members
        })
    }

    /// Both paths give the same record or the same error for the line made
    /// of `members`, with and without the program's projection.
    fn agree(members: &[(String, String)]) -> Result<(), TestCaseError> {
        let prog = program();
        let line = object(members);
        for keep in [Projection::all(), prog.projection.clone()] {
            let mut fast = Input::default();
            let got = parse_event_into(&line, &prog.schema, &keep, &mut fast);
            let slow = slow_event(&line, &prog.schema, &keep);
            match (got, slow) {
                (Ok(()), Ok(slow)) => {
                    prop_assert!(same(&fast, &slow), "{line}: {fast:?} vs {slow:?}")
                }
                (Err(a), Err(b)) => prop_assert_eq!(a, b, "{}", line),
                (a, b) => prop_assert!(false, "{line}: {a:?} vs {:?}", b.map(|_| ())),
            }
        }
        Ok(())
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(2000))]

        #[test]
        fn fast_and_slow_paths_agree_near_valid_lines(members in near_valid()) {
            agree(&members)?;
        }

        /// The one-pass fast path and the two-step slow path agree on every
        /// line: the same record, or the same error.
        #[test]
        fn fast_and_slow_paths_agree(members in prop::collection::vec(member(), 0..8)) {
            agree(&members)?;
        }
    }
}
