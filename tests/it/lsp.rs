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

/// Applies a WorkspaceEdit's changes to the files on disk.
fn apply(edit: &Value) {
    let changes = edit["changes"].as_object().expect("changes");
    for (uri, edits) in changes {
        let path = uri.strip_prefix("file://").expect("a file URI");
        let mut text = std::fs::read_to_string(path).expect("read");
        let mut edits: Vec<&Value> = edits.as_array().expect("edits").iter().collect();
        // From the end, so earlier offsets stay right.
        edits.sort_by_key(|e| {
            (
                e["range"]["start"]["line"].as_u64(),
                e["range"]["start"]["character"].as_u64(),
            )
        });
        for e in edits.into_iter().rev() {
            let at = |p: &Value| -> usize {
                let line = p["line"].as_u64().expect("line") as usize;
                let col = p["character"].as_u64().expect("character") as usize;
                let start: usize = text.split_inclusive('\n').take(line).map(str::len).sum();
                let line_text = &text[start..];
                let mut units = 0;
                for (i, c) in line_text.char_indices() {
                    if units >= col {
                        return start + i;
                    }
                    units += c.len_utf16();
                }
                text.len()
            };
            let (s, t) = (at(&e["range"]["start"]), at(&e["range"]["end"]));
            text.replace_range(s..t, e["newText"].as_str().expect("text"));
        }
        std::fs::write(path, text).expect("write");
    }
}

fn position_of(text: &str, needle: &str, nth: usize) -> Value {
    let at = text
        .match_indices(needle)
        .nth(nth)
        .map(|(i, _)| i)
        .expect("the needle");
    let line = text[..at].matches('\n').count();
    let col = text[..at]
        .rsplit('\n')
        .next()
        .unwrap_or("")
        .encode_utf16()
        .count();
    json!({"line": line, "character": col})
}

const SCHEMA_FILE: &str = "contact {\n  email: string @channel(email)\n  opted_in: bool @consent(email)\n  score: int = 0\n  tags: set<string>\n}\n\nevent opened { campaign: string }\n";
const FLOW_FILE: &str = "workflow welcome {\n  when opened\n  if contact.opted_in {\n    set contact.score += 1\n    send email \"hello\" with { s: contact.score }\n    notify \"team\" \"total {contact.score}\"\n    wait 2d as cooling\n    tag \"done\"\n  }\n}\n";
const TEST_FILE: &str = "test \"a point per open\" {\n  contact ana { email: \"a@x.io\", opted_in: true, score: 2 }\n  event ana opened { campaign: \"c\" }\n  expect ana: send email \"hello\"\n  expect ana: contact.score == 3\n}\n";

#[test]
fn references_rename_and_semantic_tokens_across_files() {
    let dir = tempfile::tempdir().expect("tempdir");
    let dir = dir.path().canonicalize().expect("canonical");
    let flow = FLOW_FILE.to_string();
    std::fs::write(dir.join("schema.flow"), SCHEMA_FILE).expect("write");
    std::fs::write(dir.join("w.flow"), &flow).expect("write");
    std::fs::write(dir.join("w.test.flow"), TEST_FILE).expect("write");
    let check = |dir: &std::path::Path| {
        let o = bin().arg("check").arg(dir).output().expect("runs");
        (
            o.status.code(),
            String::from_utf8_lossy(&o.stderr).into_owned(),
        )
    };
    assert_eq!(check(&dir).0, Some(0), "{}", check(&dir).1);
    let uri = format!("file://{}", dir.join("w.flow").display());
    let mut s = Session::start();
    let mut notes = Vec::new();
    let init = s.request(
        "initialize",
        json!({"processId": null, "rootUri": null, "capabilities": {}}),
        &mut notes,
    );
    let caps = &init["result"]["capabilities"];
    assert_eq!(caps["referencesProvider"], true);
    assert_eq!(caps["renameProvider"], true);
    s.notify("initialized", json!({}));
    // The field `score`: declared in one file, set, read and interpolated
    // in another, a key and a claim in the test file.
    let r = s.request(
        "textDocument/references",
        json!({"textDocument": {"uri": uri}, "position": position_of(&flow, "score", 0),
               "context": {"includeDeclaration": true}}),
        &mut notes,
    );
    let found: Vec<(String, u64)> = r["result"]
        .as_array()
        .expect("locations")
        .iter()
        .map(|l| {
            let u = l["uri"].as_str().expect("uri");
            (
                u.rsplit('/').next().unwrap_or("").to_string(),
                l["range"]["start"]["line"].as_u64().expect("line"),
            )
        })
        .collect();
    let mut files: Vec<&str> = found.iter().map(|(f, _)| f.as_str()).collect();
    files.sort();
    files.dedup();
    assert_eq!(files, ["schema.flow", "w.flow", "w.test.flow"], "{found:?}");
    assert_eq!(found.len(), 1 + 3 + 2, "{found:?}");
    // Without the declaration.
    let r = s.request(
        "textDocument/references",
        json!({"textDocument": {"uri": uri}, "position": position_of(&flow, "score", 1),
               "context": {"includeDeclaration": false}}),
        &mut notes,
    );
    assert_eq!(r["result"].as_array().expect("locations").len(), 5, "{r}");
    // Rename the field, the template and the workflow: the program checks
    // clean and its test still passes.
    for (needle, nth, new) in [
        ("score", 0, "points"),
        ("hello", 0, "greeting"),
        ("welcome", 0, "onboarding"),
    ] {
        let text = std::fs::read_to_string(dir.join("w.flow")).expect("read");
        let r = s.request(
            "textDocument/rename",
            json!({"textDocument": {"uri": uri}, "position": position_of(&text, needle, nth),
                   "newName": new}),
            &mut notes,
        );
        assert!(r["result"]["changes"].is_object(), "{r}");
        apply(&r["result"]);
    }
    assert_eq!(check(&dir).0, Some(0), "{}", check(&dir).1);
    let all = ["schema.flow", "w.flow", "w.test.flow"]
        .map(|f| std::fs::read_to_string(dir.join(f)).expect("read"))
        .join("\n");
    assert!(!all.contains("score"), "{all}");
    assert!(!all.contains("hello"), "{all}");
    assert!(all.contains("workflow onboarding"), "{all}");
    assert!(all.contains("contact.points"), "{all}");
    assert!(all.contains("{contact.points}"), "{all}");
    assert!(all.contains("points: 2"), "{all}");
    let t = bin().arg("test").arg(&dir).output().expect("runs");
    assert_eq!(
        t.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&t.stdout)
    );
    // A keyword is no name, and a bad name is refused.
    let text = std::fs::read_to_string(dir.join("w.flow")).expect("read");
    let r = s.request(
        "textDocument/rename",
        json!({"textDocument": {"uri": uri}, "position": position_of(&text, "points", 0),
               "newName": "when"}),
        &mut notes,
    );
    assert!(r["error"]["message"].as_str().is_some(), "{r}");
    // Semantic tokens: the first line's `workflow` is a keyword, the
    // workflow's name a function (the legend's order).
    let r = s.request(
        "textDocument/semanticTokens/full",
        json!({"textDocument": {"uri": uri}}),
        &mut notes,
    );
    let data: Vec<u64> = r["result"]["data"]
        .as_array()
        .expect("data")
        .iter()
        .map(|v| v.as_u64().expect("a number"))
        .collect();
    assert!(data.len() >= 20 && data.len().is_multiple_of(5), "{data:?}");
    let legend = caps["semanticTokensProvider"]["legend"]["tokenTypes"]
        .as_array()
        .expect("legend")
        .clone();
    let ty = |i: usize| {
        legend[data[i * 5 + 3] as usize]
            .as_str()
            .unwrap_or("")
            .to_string()
    };
    assert_eq!(&data[0..3], &[0, 0, 8], "`workflow` at 0:0, 8 long");
    assert_eq!(ty(0), "keyword");
    assert_eq!(&data[5..8], &[0, 9, 10], "`onboarding` after it");
    assert_eq!(ty(1), "function");
    // Somewhere a field (`contact.points`) and a wait's name.
    let types: Vec<String> = (0..data.len() / 5).map(ty).collect();
    assert!(types.iter().any(|t| t == "property"), "{types:?}");
    assert!(types.iter().any(|t| t == "label"), "{types:?}");
    assert!(types.iter().any(|t| t == "event"), "{types:?}");
}

#[test]
fn code_actions_fix_a_typo_silence_a_rule_and_check_consent() {
    let dir = tempfile::tempdir().expect("tempdir");
    let dir = dir.path().canonicalize().expect("canonical");
    std::fs::write(dir.join("schema.flow"), SCHEMA_FILE).expect("write");
    let text = "workflow w {\n  when opened\n  set contact.scor = 1\n  send email \"hello\"\n}\n";
    let path = dir.join("w.flow");
    std::fs::write(&path, text).expect("write");
    let uri = format!("file://{}", path.display());
    let mut s = Session::start();
    let mut notes = Vec::new();
    s.request(
        "initialize",
        json!({"processId": null, "rootUri": null, "capabilities": {}}),
        &mut notes,
    );
    s.notify("initialized", json!({}));
    let actions = |s: &mut Session, notes: &mut Vec<Value>, line: u64| -> Vec<Value> {
        let r = s.request(
            "textDocument/codeAction",
            json!({"textDocument": {"uri": uri},
                   "range": {"start": {"line": line, "character": 0}, "end": {"line": line, "character": 40}},
                   "context": {"diagnostics": []}}),
            notes,
        );
        r["result"].as_array().cloned().unwrap_or_default()
    };
    let fix = actions(&mut s, &mut notes, 2);
    let change = fix
        .iter()
        .find(|a| a["title"] == "Change to `score`")
        .unwrap_or_else(|| panic!("{fix:?}"));
    assert_eq!(change["isPreferred"], true);
    apply(&change["edit"]);
    let now = std::fs::read_to_string(&path).expect("read");
    assert!(now.contains("set contact.score = 1"), "{now}");
    // The program checks now; the send has no consent check: the lint's
    // finding offers a consent check and a suppression.
    let lint = |dir: &std::path::Path| {
        let o = bin()
            .args(["lint", "--format", "json"])
            .arg(dir)
            .output()
            .expect("runs");
        String::from_utf8_lossy(&o.stdout).into_owned()
    };
    assert!(
        lint(&dir).contains("nurture::lint::consent"),
        "{}",
        lint(&dir)
    );
    let offered = actions(&mut s, &mut notes, 3);
    let titles: Vec<&str> = offered.iter().filter_map(|a| a["title"].as_str()).collect();
    assert!(
        titles.contains(&"Allow `consent` here (// nurture:allow)"),
        "{titles:?}"
    );
    let check = offered
        .iter()
        .find(|a| {
            a["title"]
                .as_str()
                .is_some_and(|t| t.starts_with("Check consent first"))
        })
        .unwrap_or_else(|| panic!("{titles:?}"));
    apply(&check["edit"]);
    let now = std::fs::read_to_string(&path).expect("read");
    assert!(
        now.contains("if not contact.opted_in {\n    exit\n  }\n  send email"),
        "{now}"
    );
    let after = lint(&dir);
    assert!(!after.contains("nurture::lint::consent"), "{after}");
    let o = bin().arg("check").arg(&dir).output().expect("runs");
    assert_eq!(o.status.code(), Some(0));
}

#[test]
fn hover_shows_built_in_functions_and_channels() {
    let dir = tempfile::tempdir().expect("tempdir");
    let dir = dir.path().canonicalize().expect("canonical");
    std::fs::write(dir.join("schema.flow"), SCHEMA_FILE).expect("write");
    let text = "workflow w {\n  when opened where len(contact.email) > 3 and count(opened within 7d) > 1\n  send email \"hello\"\n}\n";
    let path = dir.join("w.flow");
    std::fs::write(&path, text).expect("write");
    let uri = format!("file://{}", path.display());
    let mut s = Session::start();
    let mut notes = Vec::new();
    s.request(
        "initialize",
        json!({"processId": null, "rootUri": null, "capabilities": {}}),
        &mut notes,
    );
    s.notify("initialized", json!({}));
    for (needle, shows) in [
        ("len", "len(string | set | list) -> int"),
        (
            "count",
            "count(EVENT [where COND] [within DURATION]) -> int",
        ),
        ("email \"", "channel email"),
        ("opened where", "event opened"),
    ] {
        let r = s.request(
            "textDocument/hover",
            json!({"textDocument": {"uri": uri}, "position": position_of(text, needle, 0)}),
            &mut notes,
        );
        let value = r["result"]["contents"]["value"].as_str().unwrap_or("");
        assert!(value.contains(shows), "{needle}: {r}");
    }
}
