//! Action and trace records as JSON Lines, written into a buffer the caller drains.

use super::value::{format_datetime, write_json_str, Millis, Value};

/// The kinds of action, for the summary's counts.
pub const ACTION_KINDS: &[&str] = &[
    "send",
    "tag",
    "untag",
    "set",
    "add_to_list",
    "remove_from_list",
    "add_to_audience",
    "notify",
    "webhook",
];

#[derive(Debug, Default)]
pub struct Output {
    /// JSON Lines not yet written out.
    pub buf: String,
    pub trace: bool,
    /// Count of each action kind, as in [`ACTION_KINDS`].
    pub counts: [u64; 9],
    time_cache: (Millis, String),
}

impl Output {
    pub fn new(trace: bool) -> Output {
        Output {
            trace,
            time_cache: (Millis::MIN, String::new()),
            ..Output::default()
        }
    }

    /// Starts a record: `{"at":..,"contact":..,"workflow":..,"action":..`.
    /// The caller adds fields with [`Output::field_str`] etc. and calls [`Output::end`].
    pub fn begin(&mut self, at: Millis, contact: &str, workflow: &str, action: &str) {
        if self.time_cache.0 != at {
            self.time_cache = (at, format_datetime(at));
        }
        self.buf.push_str("{\"at\":\"");
        self.buf.push_str(&self.time_cache.1);
        self.buf.push_str("\",\"contact\":");
        write_json_str(&mut self.buf, contact);
        self.buf.push_str(",\"workflow\":");
        write_json_str(&mut self.buf, workflow);
        self.buf.push_str(",\"action\":\"");
        self.buf.push_str(action);
        self.buf.push('"');
        if let Some(i) = ACTION_KINDS.iter().position(|k| *k == action) {
            self.counts[i] += 1;
        }
    }

    pub fn field_str(&mut self, key: &str, value: &str) {
        self.key(key);
        write_json_str(&mut self.buf, value);
    }

    pub fn field_value(&mut self, key: &str, value: &Value) {
        self.key(key);
        value.write_json(&mut self.buf);
    }

    /// Starts an object-valued field; finish with [`Output::close_object`].
    pub fn open_object(&mut self, key: &str) {
        self.key(key);
        self.buf.push('{');
    }

    pub fn object_entry(&mut self, first: bool, key: &str, value: &Value) {
        if !first {
            self.buf.push(',');
        }
        write_json_str(&mut self.buf, key);
        self.buf.push(':');
        value.write_json(&mut self.buf);
    }

    pub fn close_object(&mut self) {
        self.buf.push('}');
    }

    pub fn end(&mut self) {
        self.buf.push_str("}\n");
    }

    fn key(&mut self, key: &str) {
        self.buf.push_str(",\"");
        self.buf.push_str(key);
        self.buf.push_str("\":");
    }
}
