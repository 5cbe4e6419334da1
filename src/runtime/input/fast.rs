//! The fast path for event lines: one pass of the JSON straight into an
//! [`Input`] the caller owns (a slot of the batch being filled), with no
//! intermediate record and no allocation but the values kept.
//!
//! It serves the common shape (`type` before the payload and attributes,
//! every key known, every value of its declared type) and gives up on
//! anything else: the slow path then parses the line again and words the
//! error, so both paths accept exactly the same lines.

use super::{Projection, Str, Typed};
use crate::check::Schema;
use crate::runtime::record::{Input, CONTACT_CREATED, CONTACT_UPDATED};
use crate::runtime::value::{parse_datetime, Value};
use serde::de::{self, DeserializeSeed, MapAccess, Visitor};
use std::fmt;

/// Which of `at`, `contact` and `type` a line gave, and which payload fields.
#[derive(Default)]
pub(super) struct Seen {
    pub at: bool,
    pub contact: bool,
    pub ty: bool,
    /// A bit per payload field.
    pub given: u64,
}

/// Parses `line` into `out`; `None` when the line needs the slow path.
pub(super) fn parse(
    line: &str,
    schema: &Schema,
    keep: &Projection,
    out: &mut Input,
) -> Option<Seen> {
    out.attrs.clear();
    let mut de = serde_json::Deserializer::from_str(line);
    let seen = Fast { schema, keep, out }.deserialize(&mut de).ok()?;
    de.end().ok()?;
    Some(seen)
}

struct Fast<'s> {
    schema: &'s Schema,
    keep: &'s Projection,
    out: &'s mut Input,
}

impl<'de> DeserializeSeed<'de> for Fast<'_> {
    type Value = Seen;

    fn deserialize<D: de::Deserializer<'de>>(self, d: D) -> Result<Seen, D::Error> {
        d.deserialize_map(self)
    }
}

/// Gives up on the line (the slow path words why).
fn give_up<E: de::Error>() -> E {
    E::custom("slow path")
}

impl<'de> Visitor<'de> for Fast<'_> {
    type Value = Seen;

    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("a JSON object")
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Seen, A::Error> {
        let Fast { schema, keep, out } = self;
        let mut seen = Seen::default();
        let (mut attributes, mut id) = (false, false);
        while let Some(key) = map.next_key::<Str>()? {
            match &*key {
                // A key given twice: the slow path words the error.
                "at" | "contact"
                    if seen.at && &*key == "at" || seen.contact && &*key == "contact" =>
                {
                    return Err(give_up());
                }
                "at" => {
                    let at = map.next_value::<Str>()?;
                    out.at = parse_datetime(&at).ok_or_else(give_up)?;
                    seen.at = true;
                }
                "contact" => {
                    out.contact = smol_str::SmolStr::new(map.next_value::<Str>()?.0);
                    seen.contact = true;
                }
                "type" if !seen.ty => {
                    let name = map.next_value::<Str>()?;
                    let ev = schema.event(&name).ok_or_else(give_up)?;
                    let fields = schema.events[ev].fields.len();
                    if fields > 64 {
                        return Err(give_up());
                    }
                    out.ty = ev as u16;
                    // Slots only for the fields kept (the others are checked, then dropped).
                    out.payload.clear();
                    for _ in 0..keep.kept_len(ev, fields) {
                        out.payload.push(Value::Unset);
                    }
                    seen.ty = true;
                }
                "attributes" | "id"
                    if attributes && &*key == "attributes" || id && &*key == "id" =>
                {
                    return Err(give_up());
                }
                "attributes" => {
                    attributes = true;
                    if !(seen.ty && matches!(out.ty, CONTACT_CREATED | CONTACT_UPDATED)) {
                        return Err(give_up());
                    }
                    out.attrs.clear();
                    map.next_value_seed(Attrs {
                        schema,
                        out: &mut out.attrs,
                    })?;
                }
                // Events may carry the client's id (a string); `nurture run`
                // passes it over. Another value: the slow path words it.
                "id" => {
                    id = true;
                    map.next_value::<Str>().map_err(|_| give_up())?;
                }
                name => {
                    if !seen.ty {
                        return Err(give_up());
                    }
                    let ev = usize::from(out.ty);
                    let (slot, ty) = schema.events[ev].field(name).ok_or_else(give_up)?;
                    if seen.given & (1 << slot) != 0 {
                        return Err(give_up());
                    }
                    let value = map.next_value_seed(Typed(ty, keep.keeps(ev, slot)))?;
                    if let Some(kept) = out.payload.get_mut(slot) {
                        *kept = value;
                    }
                    seen.given |= 1 << slot;
                }
            }
        }
        Ok(seen)
    }
}

/// A contact's attributes, typed, appended to `out`.
struct Attrs<'s> {
    schema: &'s Schema,
    out: &'s mut Vec<(u16, Value)>,
}

impl<'de> DeserializeSeed<'de> for Attrs<'_> {
    type Value = ();

    fn deserialize<D: de::Deserializer<'de>>(self, d: D) -> Result<(), D::Error> {
        d.deserialize_map(self)
    }
}

impl<'de> Visitor<'de> for Attrs<'_> {
    type Value = ();

    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("an object")
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<(), A::Error> {
        let start = self.out.len();
        while let Some(key) = map.next_key::<Str>()? {
            let slot = self.schema.field(&key).ok_or_else(give_up)?;
            if self.out[start..].iter().any(|(s, _)| *s as usize == slot) {
                return Err(give_up());
            }
            let v = map.next_value_seed(Typed(&self.schema.fields[slot].ty, true))?;
            self.out.push((slot as u16, v));
        }
        Ok(())
    }
}
