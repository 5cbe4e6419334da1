//! `nurture lsp` as an editor uses it: a process spoken to in JSON-RPC
//! over its standard input and output.

use crate::helpers::bin;
use serde_json::{json, Value};
use std::io::{BufRead, BufReader, Read, Write};
use std::process::{Child, ChildStdin, ChildStdout, Stdio};

struct Session {
    child: Child,
    input: ChildStdin,
    output: BufReader<ChildStdout>,
    next: i64,
}

impl Session {
    fn start() -> Session {
        let mut child = bin()
            .arg("lsp")
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .expect("starts");
        // Bounded in time: a server that hangs is killed, and the test fails.
        let pid = child.id().to_string();
        std::thread::spawn(move || {
            std::thread::sleep(std::time::Duration::from_secs(60));
            let _ = std::process::Command::new("kill").arg(&pid).status();
        });
        let input = child.stdin.take().expect("stdin");
        let output = BufReader::new(child.stdout.take().expect("stdout"));
        Session {
            child,
            input,
            output,
            next: 1,
        }
    }

    fn send(&mut self, msg: &Value) {
        let body = msg.to_string();
        write!(self.input, "Content-Length: {}\r\n\r\n{body}", body.len()).expect("sent");
        self.input.flush().expect("flushed");
    }

    fn receive(&mut self) -> Value {
        let mut length = 0;
        loop {
            let mut line = String::new();
            self.output.read_line(&mut line).expect("a header");
            let line = line.trim_end();
            if line.is_empty() {
                break;
            }
            if let Some(n) = line.strip_prefix("Content-Length: ") {
                length = n.parse().expect("a length");
            }
        }
        let mut body = vec![0; length];
        self.output.read_exact(&mut body).expect("a body");
        serde_json::from_slice(&body).expect("JSON")
    }

    /// Sends a request and returns its response, keeping the notifications
    /// that came before it.
    fn request(&mut self, method: &str, params: Value, notes: &mut Vec<Value>) -> Value {
        let id = self.next;
        self.next += 1;
        self.send(&json!({"jsonrpc": "2.0", "id": id, "method": method, "params": params}));
        loop {
            let msg = self.receive();
            if msg["id"] == id {
                return msg;
            }
            notes.push(msg);
        }
    }

    fn notify(&mut self, method: &str, params: Value) {
        self.send(&json!({"jsonrpc": "2.0", "method": method, "params": params}));
    }

    /// The next diagnostics published for `uri`.
    fn diagnostics_for(&mut self, uri: &str) -> Vec<Value> {
        loop {
            let msg = self.receive();
            if msg["method"] == "textDocument/publishDiagnostics" && msg["params"]["uri"] == uri {
                return msg["params"]["diagnostics"]
                    .as_array()
                    .cloned()
                    .unwrap_or_default();
            }
        }
    }
}

#[test]
fn diagnostics_formatting_and_symbols_over_json_rpc() {
    let dir = tempfile::tempdir().expect("tempdir");
    let dir = dir.path().canonicalize().expect("canonical");
    std::fs::write(
        dir.join("schema.flow"),
        "contact {\n  email: string @channel(email)\n  score: int = 0\n}\n\nevent opened {}\n",
    )
    .expect("write");
    let path = dir.join("w.flow");
    let uri = format!("file://{}", path.display());
    let mut s = Session::start();
    let mut notes = Vec::new();
    let init = s.request(
        "initialize",
        json!({"processId": null, "rootUri": null, "capabilities": {}}),
        &mut notes,
    );
    assert_eq!(
        init["result"]["capabilities"]["documentFormattingProvider"],
        true
    );
    s.notify("initialized", json!({}));

    // A misspelt field, after non-ASCII text on its line: the range is the
    // field's, in UTF-16 code units (the emoji counts two); the
    // did-you-mean is in the message; the other file of the folder is part
    // of the program.
    let line = "  if \"é😀\" == \"a\" and contact.scroe == 1 {";
    let text = format!(
        "workflow w {{  // nurture:allow(no-goal, consent)\n  when opened\n{line}\n    tag \"x\"\n  }}\n}}\n"
    );
    let text = text.replace("    tag \"x\"\n", "    exit\n");
    s.notify(
        "textDocument/didOpen",
        json!({"textDocument": {"uri": uri, "languageId": "flow", "version": 1, "text": text}}),
    );
    let diags = s.diagnostics_for(&uri);
    assert_eq!(diags.len(), 1, "{diags:?}");
    assert_eq!(diags[0]["code"], "nurture::type::unknown-field");
    let before = &line[..line.find("scroe").unwrap_or(0)];
    let start = before.encode_utf16().count();
    assert_eq!(
        start,
        before.chars().count() + 1,
        "the emoji is two UTF-16 units"
    );
    assert_eq!(
        diags[0]["range"]["start"],
        json!({"line": 2, "character": start})
    );
    assert_eq!(
        diags[0]["range"]["end"],
        json!({"line": 2, "character": start + 5})
    );
    assert!(
        diags[0]["message"].as_str().unwrap_or("").contains("score"),
        "{diags:?}"
    );

    // As the user types the fix, the diagnostics clear.
    let fixed = text.replace("scroe", "score");
    s.notify(
        "textDocument/didChange",
        json!({"textDocument": {"uri": uri, "version": 2}, "contentChanges": [{"text": fixed}]}),
    );
    assert_eq!(s.diagnostics_for(&uri), Vec::<Value>::new());

    // Formatting equals `nurture fmt`.
    let messy = fixed.replace("  when opened", "when   opened") + "\n\n";
    s.notify(
        "textDocument/didChange",
        json!({"textDocument": {"uri": uri, "version": 3}, "contentChanges": [{"text": messy}]}),
    );
    let _ = s.diagnostics_for(&uri);
    let formatted = s.request(
        "textDocument/formatting",
        json!({"textDocument": {"uri": uri}, "options": {"tabSize": 2, "insertSpaces": true}}),
        &mut notes,
    );
    let edits = formatted["result"].as_array().cloned().unwrap_or_default();
    assert_eq!(edits.len(), 1, "{formatted}");
    let want = nurture::fmt::format_source(&messy).expect("formats");
    assert_eq!(edits[0]["newText"], want);

    // The document's symbols: the workflow.
    let symbols = s.request(
        "textDocument/documentSymbol",
        json!({"textDocument": {"uri": uri}}),
        &mut notes,
    );
    assert_eq!(symbols["result"][0]["name"], "w", "{symbols}");

    // Go to definition and hover on `contact.score`: the field in the
    // folder's other file; an event name: its declaration.
    let at = json!({"line": 2, "character": start + 2});
    let def = s.request(
        "textDocument/definition",
        json!({"textDocument": {"uri": uri}, "position": at}),
        &mut notes,
    );
    let schema_uri = format!("file://{}", dir.join("schema.flow").display());
    assert_eq!(def["result"]["uri"], schema_uri, "{def}");
    assert_eq!(
        def["result"]["range"]["start"],
        json!({"line": 2, "character": 2})
    );
    let hover = s.request(
        "textDocument/hover",
        json!({"textDocument": {"uri": uri}, "position": at}),
        &mut notes,
    );
    assert!(
        hover["result"]["contents"]["value"]
            .as_str()
            .unwrap_or("")
            .contains("score: int = 0"),
        "{hover}"
    );
    let def = s.request(
        "textDocument/definition",
        json!({"textDocument": {"uri": uri}, "position": {"line": 1, "character": 8}}),
        &mut notes,
    );
    assert_eq!(def["result"]["uri"], schema_uri, "{def}");
    assert_eq!(
        def["result"]["range"]["start"],
        json!({"line": 5, "character": 6})
    );

    // Completion after `contact.`: the contact's fields; elsewhere the
    // keywords and the program's events among the rest.
    let labels = |v: &Value| -> Vec<String> {
        v["result"]
            .as_array()
            .map(|a| {
                a.iter()
                    .map(|i| i["label"].as_str().unwrap_or("").to_string())
                    .collect()
            })
            .unwrap_or_default()
    };
    let after_dot = s.request(
        "textDocument/completion",
        json!({"textDocument": {"uri": uri}, "position": {"line": 2, "character": start}}),
        &mut notes,
    );
    assert_eq!(labels(&after_dot), ["email", "score"], "{after_dot}");
    let anywhere = s.request(
        "textDocument/completion",
        json!({"textDocument": {"uri": uri}, "position": {"line": 1, "character": 0}}),
        &mut notes,
    );
    let all = labels(&anywhere);
    for want in ["wait", "transactional", "opened", "email", "w"] {
        assert!(all.iter().any(|l| l == want), "{want} in {all:?}");
    }

    let down = s.request("shutdown", Value::Null, &mut notes);
    assert!(down.get("error").is_none(), "{down}");
    s.notify("exit", Value::Null);
    let status = s.child.wait().expect("ends");
    assert_eq!(status.code(), Some(0));
}
