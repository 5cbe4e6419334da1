//! Changing a program while journeys are in flight (LANGUAGE.md section
//! 13): every case the section names, through `nurture run --state`, each
//! also cut into several runs of one state; and `nurture diff`.

use crate::helpers::{bin, root, stderr, stdout};
use std::path::{Path, PathBuf};

const SCHEMA: &str = r#"contact {
  email: string @channel(email)
}

event signup {}
event opened { campaign: string }
"#;

/// Two contacts sign up on March 1st (a at 10:00, b at 12:00); `later`
/// are events after the change.
const BEFORE: &[&str] = &[
    r#"{"at":"2026-03-01T09:00:00Z","contact":"a","type":"contact_created","attributes":{"email":"a@x.io"}}"#,
    r#"{"at":"2026-03-01T10:00:00Z","contact":"a","type":"signup"}"#,
    r#"{"at":"2026-03-01T12:00:00Z","contact":"b","type":"contact_created","attributes":{"email":"b@x.io"}}"#,
    r#"{"at":"2026-03-01T12:00:00Z","contact":"b","type":"signup"}"#,
];

struct Case {
    dir: tempfile::TempDir,
}

impl Case {
    fn new() -> Case {
        Case {
            dir: tempfile::tempdir().expect("tempdir"),
        }
    }

    fn path(&self, name: &str) -> PathBuf {
        self.dir.path().join(name)
    }

    fn program(&self, name: &str, workflows: &str) -> PathBuf {
        let p = self.path(name);
        std::fs::write(&p, format!("{SCHEMA}\n{workflows}")).expect("write");
        p
    }

    fn events(&self, name: &str, lines: &[&str]) -> PathBuf {
        let p = self.path(name);
        let text: String = lines.iter().map(|l| format!("{l}\n")).collect();
        std::fs::write(&p, text).expect("write");
        p
    }

    /// `nurture run PROGRAM --state DB --trace [--events E] [ARGS]`:
    /// exit code, stdout, stderr.
    fn run(
        &self,
        program: &Path,
        db: &str,
        events: Option<&Path>,
        args: &[&str],
    ) -> (Option<i32>, String, String) {
        let mut c = bin();
        c.arg("run")
            .arg(program)
            .arg("--state")
            .arg(self.path(db))
            .arg("--trace");
        if let Some(e) = events {
            c.arg("--events").arg(e);
        }
        let o = c.args(args).output().expect("runs");
        (o.status.code(), stdout(&o), stderr(&o))
    }

    /// The change taken up by one run to `until`, and the same cut into a
    /// run taking up the change (no events), one with the events `later`
    /// and one to `until`: both give the same records. Returns the first.
    fn changed(&self, v1: &Path, v2: &Path, later: &[&str], until: &str) -> String {
        let before = self.events("before.jsonl", BEFORE);
        let (c, _, err) = self.run(v1, "s.db", Some(&before), &[]);
        assert_eq!(c, Some(0), "{err}");
        std::fs::copy(self.path("s.db"), self.path("cut.db")).expect("copy");
        let all: Vec<&str> = BEFORE.iter().chain(later).copied().collect();
        let events = self.events("all.jsonl", &all);
        let (c, whole, err) = self.run(v2, "s.db", Some(&events), &["--until", until]);
        assert_eq!(c, Some(0), "{err}");
        // Cut: the change alone, then the later events, then the clock.
        let (c, first, err) = self.run(v2, "cut.db", None, &[]);
        assert_eq!(c, Some(0), "{err}");
        let (c, second, err) = self.run(v2, "cut.db", Some(&events), &[]);
        assert_eq!(c, Some(0), "{err}");
        let (c, third, err) = self.run(v2, "cut.db", None, &["--until", until]);
        assert_eq!(c, Some(0), "{err}");
        assert_eq!(
            format!("{first}{second}{third}"),
            whole,
            "the change cut into runs gives the same records"
        );
        whole
    }
}

fn lines_of<'a>(out: &'a str, contact: &str) -> Vec<&'a str> {
    let key = format!("\"contact\":\"{contact}\"");
    out.lines().filter(|l| l.contains(&key)).collect()
}

const TIMED_V1: &str = r#"workflow onboarding {
  when signup
  wait 2d as cooling_off
  send email "welcome_v1"
}
"#;

/// A journey at a named wait moves to the same-named wait of the new
/// version keeping its deadline, and goes on in the new version.
#[test]
fn a_journey_at_a_named_wait_moves_keeping_its_deadline() {
    let case = Case::new();
    let v1 = case.program("v1.flow", TIMED_V1);
    let v2 = case.program(
        "v2.flow",
        r#"workflow onboarding {
  when signup
  send email "hello"
  wait 5d as cooling_off
  send email "welcome_v2"
}
"#,
    );
    let out = case.changed(&v1, &v2, &[], "2026-03-10T00:00:00Z");
    let a = lines_of(&out, "a");
    assert!(
        a.contains(&r#"{"at":"2026-03-03T10:00:00Z","contact":"a","workflow":"onboarding","action":"send","channel":"email","template":"welcome_v2"}"#),
        "a resumes at its old deadline (2 days, not 5) in the new version: {out}"
    );
    assert!(!out.contains("welcome_v1"), "{out}");
    assert!(
        !out.contains("\"hello\""),
        "a moved journey does not run what is before its wait: {out}"
    );
}

/// A `wait for` whose filter changed is judged by the new filter; a timed
/// wait that became a `wait for` of the same name can now be received.
#[test]
fn a_moved_wait_for_is_judged_by_the_new_filter() {
    let case = Case::new();
    let v1 = case.program(
        "v1.flow",
        r#"workflow onboarding {
  when signup
  wait for opened within 3d as first_open where event.campaign == "spring" {
    send email "thanks"
  } timeout {
    send email "nudge"
  }
}

workflow upsell {
  when signup
  wait 3d as pause
  send email "upgrade"
}
"#,
    );
    let v2 = case.program(
        "v2.flow",
        r#"workflow onboarding {
  when signup
  wait for opened within 3d as first_open where event.campaign == "summer" {
    send email "thanks"
  } timeout {
    send email "nudge"
  }
}

workflow upsell {
  when signup
  wait for opened within 3d as pause {
    send email "upgrade_now"
  } timeout {
    send email "upgrade"
  }
}
"#,
    );
    let later = [
        r#"{"at":"2026-03-02T08:00:00Z","contact":"a","type":"opened","campaign":"spring"}"#,
        r#"{"at":"2026-03-02T09:00:00Z","contact":"b","type":"opened","campaign":"summer"}"#,
    ];
    let out = case.changed(&v1, &v2, &later, "2026-03-10T00:00:00Z");
    let a = lines_of(&out, "a").join("\n");
    let b = lines_of(&out, "b").join("\n");
    // a's "spring" open no longer matches the first wait: it times out.
    assert!(a.contains(r#""template":"nudge""#), "{a}");
    assert!(!a.contains(r#""template":"thanks""#), "{a}");
    // b's "summer" open matches the new filter.
    assert!(b.contains(r#"{"at":"2026-03-02T09:00:00Z","contact":"b","workflow":"onboarding","action":"send","channel":"email","template":"thanks"}"#), "{b}");
    // The timer that became a `wait for`: received by the next open.
    assert!(a.contains(r#"{"at":"2026-03-02T08:00:00Z","contact":"a","workflow":"upsell","action":"send","channel":"email","template":"upgrade_now"}"#), "{a}");
}

/// `on change exit`: journeys at a wait that cannot move end when the new
/// program is taken up, at the state's clock, in the order they entered.
#[test]
fn on_change_exit_ends_the_journeys_that_cannot_move() {
    let case = Case::new();
    let v1 = case.program(
        "v1.flow",
        "workflow onboarding {\n  when signup\n  wait 2d\n  send email \"welcome_v1\"\n}\n",
    );
    let v2 = case.program(
        "v2.flow",
        "workflow onboarding {\n  when signup\n  on change exit\n  wait 1d\n  send email \"welcome_v2\"\n}\n",
    );
    let later = [
        r#"{"at":"2026-03-02T00:00:00Z","contact":"c","type":"contact_created","attributes":{"email":"c@x.io"}}"#,
        r#"{"at":"2026-03-02T00:00:00Z","contact":"c","type":"signup"}"#,
    ];
    let out = case.changed(&v1, &v2, &later, "2026-03-10T00:00:00Z");
    let first: Vec<&str> = out.lines().take(2).collect();
    assert_eq!(
        first,
        [
            r#"{"at":"2026-03-01T12:00:00Z","contact":"a","workflow":"onboarding","action":"end","outcome":"exited","reason":"program_change"}"#,
            r#"{"at":"2026-03-01T12:00:00Z","contact":"b","workflow":"onboarding","action":"end","outcome":"exited","reason":"program_change"}"#,
        ],
        "{out}"
    );
    assert!(!out.contains("welcome_v1"), "{out}");
    // A new entry runs the new version.
    assert!(out.contains(r#"{"at":"2026-03-03T00:00:00Z","contact":"c","workflow":"onboarding","action":"send","channel":"email","template":"welcome_v2"}"#), "{out}");
    // The summary counts them as exited (entered 3, converted 0, exited 2).
    let (c, _, err) = case.run(&v2, "s.db", None, &[]);
    assert_eq!(c, Some(0), "{err}");
    let row: Vec<&str> = err
        .lines()
        .find(|l| l.trim_start().starts_with("onboarding"))
        .expect("a summary row")
        .split_whitespace()
        .collect();
    assert_eq!(row[1..4], ["3", "0", "2"], "{err}");
}

/// Without an `on change` line the change is refused, naming each wait by
/// the old version's `file:line`, its statement and its journey count;
/// the state is left as it was.
#[test]
fn a_change_that_strands_journeys_is_refused_naming_the_waits() {
    let case = Case::new();
    let v1 = case.program(
        "v1.flow",
        "workflow onboarding {\n  when signup\n  wait 2d\n  send email \"welcome_v1\"\n}\n",
    );
    let v2 = case.program(
        "v2.flow",
        "workflow onboarding {\n  when signup\n  wait 3d\n  send email \"welcome_v2\"\n}\n",
    );
    let before = case.events("before.jsonl", BEFORE);
    let (c, _, err) = case.run(&v1, "s.db", Some(&before), &[]);
    assert_eq!(c, Some(0), "{err}");
    let (c, out, err) = case.run(&v2, "s.db", None, &["--until", "2026-03-10T00:00:00Z"]);
    assert_eq!(c, Some(1), "{err}");
    assert_eq!(out, "", "nothing ran");
    assert!(
        err.contains("workflow `onboarding` changed and has no `on change` line: 2 journeys at `wait 2d` (v1.flow:10) cannot move"),
        "{err}"
    );
    // The old program goes on from the state untouched.
    let (c, out, err) = case.run(&v1, "s.db", None, &["--until", "2026-03-10T00:00:00Z"]);
    assert_eq!(c, Some(0), "{err}");
    assert_eq!(out.matches("welcome_v1").count(), 2, "{out}");
}

/// `on change finish` is refused by this release with words that say so
/// and what to do instead.
#[test]
fn on_change_finish_is_refused_with_what_to_do() {
    let case = Case::new();
    let v1 = case.program(
        "v1.flow",
        "workflow onboarding {\n  when signup\n  wait 2d\n  send email \"a\"\n}\n",
    );
    let v2 = case.program(
        "v2.flow",
        "workflow onboarding {\n  when signup\n  on change finish\n  wait 3d\n  send email \"b\"\n}\n",
    );
    let before = case.events("before.jsonl", BEFORE);
    let (c, _, err) = case.run(&v1, "s.db", Some(&before), &[]);
    assert_eq!(c, Some(0), "{err}");
    let (c, _, err) = case.run(&v2, "s.db", None, &[]);
    assert_eq!(c, Some(1), "{err}");
    assert!(
        err.contains("`on change finish`, which this release cannot do yet"),
        "{err}"
    );
    assert!(
        err.contains("use `on change exit` or name the wait"),
        "{err}"
    );
}

/// Comments and layout change nothing: the run goes on as if the program
/// had not been touched.
#[test]
fn comments_and_layout_are_no_change() {
    let case = Case::new();
    let v1 = case.program(
        "v1.flow",
        "workflow onboarding {\n  when signup\n  wait 2d\n  send email \"a\"\n}\n",
    );
    let v2 = case.program(
        "v2.flow",
        "// the onboarding\nworkflow onboarding {\n  when   signup\n\n  // pause\n  wait 2d   // two days\n  send email \"a\"\n}\n",
    );
    let out = case.changed(&v1, &v2, &[], "2026-03-10T00:00:00Z");
    // The uninterrupted run of the old program.
    let all = case.events("plain.jsonl", BEFORE);
    let o = bin()
        .arg("run")
        .arg(&v1)
        .arg("--events")
        .arg(&all)
        .args(["--trace", "--until", "2026-03-10T00:00:00Z"])
        .output()
        .expect("runs");
    let whole = stdout(&o);
    assert!(
        whole.ends_with(&out),
        "the continued run is the tail of the whole one:\n{whole}\n---\n{out}"
    );
    assert_eq!(out.matches("\"template\":\"a\"").count(), 2, "{out}");
}

/// An unnamed wait given a name (the workflow changed elsewhere too)
/// keeps its journeys.
#[test]
fn naming_an_unnamed_wait_keeps_its_journeys() {
    let case = Case::new();
    let v1 = case.program(
        "v1.flow",
        "workflow onboarding {\n  when signup\n  wait 2d\n  send email \"a\"\n}\n",
    );
    let v2 = case.program(
        "v2.flow",
        "workflow onboarding {\n  when signup\n  wait 2d as pause\n  send email \"b\"\n}\n",
    );
    let out = case.changed(&v1, &v2, &[], "2026-03-10T00:00:00Z");
    assert!(out.contains(r#"{"at":"2026-03-03T10:00:00Z","contact":"a","workflow":"onboarding","action":"send","channel":"email","template":"b"}"#), "{out}");
}

/// A workflow added starts with no journeys and enters from then on; the
/// others' journeys are untouched.
#[test]
fn a_workflow_added_enters_from_the_change_on() {
    let case = Case::new();
    let v1 = case.program("v1.flow", TIMED_V1);
    let v2 = case.program(
        "v2.flow",
        &format!("{TIMED_V1}\nworkflow survey {{\n  when opened\n  send email \"survey\"\n}}\n"),
    );
    let later = [r#"{"at":"2026-03-02T00:00:00Z","contact":"b","type":"opened","campaign":"x"}"#];
    let out = case.changed(&v1, &v2, &later, "2026-03-10T00:00:00Z");
    assert!(out.contains(r#"{"at":"2026-03-02T00:00:00Z","contact":"b","workflow":"survey","action":"send","channel":"email","template":"survey"}"#), "{out}");
    assert_eq!(out.matches("welcome_v1").count(), 2, "{out}");
}

/// A workflow removed counts as changed with all its waits gone: the old
/// version's `on change` line decides (refused without one).
#[test]
fn a_workflow_removed_follows_its_old_on_change_line() {
    let case = Case::new();
    let both = format!(
        "{TIMED_V1}\nworkflow upsell {{\n  when signup\n  wait 5d\n  send email \"upgrade\"\n}}\n"
    );
    let v1 = case.program("v1.flow", &both);
    let v2 = case.program("v2.flow", TIMED_V1);
    let before = case.events("before.jsonl", BEFORE);
    let (c, _, err) = case.run(&v1, "s.db", Some(&before), &[]);
    assert_eq!(c, Some(0), "{err}");
    let (c, _, err) = case.run(&v2, "s.db", None, &[]);
    assert_eq!(c, Some(1), "{err}");
    assert!(
        err.contains("workflow `upsell` was removed or renamed and has no `on change` line: 2 journeys at `wait 5d`"),
        "{err}"
    );

    // With `on change exit` in the version removed.
    let case = Case::new();
    let v1 = case.program(
        "v1.flow",
        &both.replace(
            "workflow upsell {\n  when signup\n",
            "workflow upsell {\n  when signup\n  on change exit\n",
        ),
    );
    let v2 = case.program("v2.flow", TIMED_V1);
    let out = case.changed(&v1, &v2, &[], "2026-03-10T00:00:00Z");
    assert_eq!(
        out.matches(
            r#""workflow":"upsell","action":"end","outcome":"exited","reason":"program_change""#
        )
        .count(),
        2,
        "{out}"
    );
    assert!(!out.contains("upgrade"), "{out}");
    assert_eq!(
        out.matches("welcome_v1").count(),
        2,
        "the kept workflow goes on: {out}"
    );
}

/// `nurture diff` over the examples edited as a team would: a template
/// renamed, a wait lengthened and named, a workflow added, one removed;
/// human and JSON, without and with a state.
#[test]
fn diff_of_edited_examples() {
    let dir = tempfile::tempdir().expect("tempdir");
    let old = dir.path().join("old");
    let new = dir.path().join("new");
    for d in [&old, &new] {
        std::fs::create_dir(d).expect("dir");
        for f in [
            "00_schema.flow",
            "welcome.flow",
            "cart_abandonment.flow",
            "feedback.flow",
        ] {
            std::fs::copy(root().join("examples").join(f), d.join(f)).expect("copy");
        }
    }
    let edit = |f: &str, from: &str, to: &str| {
        let p = new.join(f);
        let text = std::fs::read_to_string(&p).expect("read");
        assert!(text.contains(from), "{f} holds `{from}`");
        std::fs::write(&p, text.replacen(from, to, 1)).expect("write");
    };
    let cart = std::fs::read_to_string(old.join("cart_abandonment.flow")).expect("read");
    // A realistic week of edits.
    edit(
        "welcome.flow",
        "wait 2d as before_tips",
        "wait 3d as before_tips",
    );
    let first_send = cart
        .lines()
        .find(|l| l.trim_start().starts_with("send "))
        .expect("cart sends")
        .trim()
        .to_string();
    edit(
        "cart_abandonment.flow",
        &first_send,
        &first_send.replacen('"', "\"v2_", 1),
    );
    edit(
        "cart_abandonment.flow",
        "wait 1d as before_discount",
        "wait 1d",
    );
    std::fs::remove_file(new.join("feedback.flow")).expect("rm");
    std::fs::write(
        new.join("winback.flow"),
        "workflow winback {\n  when inactive for 60d\n  on change exit\n  send email \"we_miss_you\"\n}\n",
    )
    .expect("write");
    let diff = |args: &[&str]| {
        let o = bin()
            .arg("diff")
            .arg(&old)
            .arg(&new)
            .args(args)
            .output()
            .expect("runs");
        (o.status.code(), stdout(&o), stderr(&o))
    };
    let (c, human, err) = diff(&[]);
    assert!(matches!(c, Some(0) | Some(1)), "{err}");
    insta::assert_snapshot!("diff_examples_human", human);
    let (c2, json, err) = diff(&["--format", "json"]);
    assert_eq!(c, c2, "{err}");
    let v: serde_json::Value = serde_json::from_str(&json).expect("one JSON object");
    assert_eq!(v["accepted"].as_bool(), Some(c == Some(0)));
    insta::assert_snapshot!(
        "diff_examples_json",
        serde_json::to_string_pretty(&v).expect("json")
    );
}

/// `nurture diff --state`: the journeys at each wait and their fate, the
/// exit code following the verdict; a state of another program is exit 2.
#[test]
fn diff_with_a_state_counts_the_journeys() {
    let case = Case::new();
    let v1 = case.program(
        "v1.flow",
        "workflow onboarding {\n  when signup\n  wait 2d as cool\n  send email \"a\"\n}\n\nworkflow upsell {\n  when signup\n  wait 5d\n  send email \"upgrade\"\n}\n",
    );
    let before = case.events("before.jsonl", BEFORE);
    let (c, _, err) = case.run(&v1, "s.db", Some(&before), &[]);
    assert_eq!(c, Some(0), "{err}");
    let v2 = case.program(
        "v2.flow",
        "workflow onboarding {\n  when signup\n  wait 3d as cool\n  send email \"b\"\n}\n\nworkflow upsell {\n  when signup\n  wait 4d\n  send email \"upgrade\"\n}\n",
    );
    let v3 = case.program(
        "v3.flow",
        "workflow onboarding {\n  when signup\n  wait 3d as cool\n  send email \"b\"\n}\n\nworkflow upsell {\n  when signup\n  on change exit\n  wait 4d\n  send email \"upgrade\"\n}\n",
    );
    let diff = |new: &Path, state: &Path| {
        let o = bin()
            .arg("diff")
            .arg(&v1)
            .arg(new)
            .arg("--state")
            .arg(state)
            .args(["--format", "json"])
            .output()
            .expect("runs");
        (o.status.code(), stdout(&o), stderr(&o))
    };
    let db = case.path("s.db");
    let (c, out, err) = diff(&v2, &db);
    assert_eq!(c, Some(1), "refused: {out}{err}");
    let v: serde_json::Value = serde_json::from_str(&out).expect("json");
    assert_eq!(v["accepted"], false);
    assert_eq!(
        v["workflows"][0]["in_flight"],
        serde_json::json!([{"wait":"cool","line":10,"journeys":2,"fate":"moved","to":"cool"}])
    );
    assert_eq!(
        v["workflows"][1]["in_flight"],
        serde_json::json!([{"wait":null,"line":16,"journeys":2,"fate":"refused","to":null}])
    );
    let (c, out, err) = diff(&v3, &db);
    assert_eq!(c, Some(0), "accepted: {out}{err}");
    let v: serde_json::Value = serde_json::from_str(&out).expect("json");
    assert_eq!(v["workflows"][1]["in_flight"][0]["fate"], "exited");
    // What diff said is what the run does.
    let (c, out, err) = case.run(&v3, "s.db", None, &[]);
    assert_eq!(c, Some(0), "{err}");
    assert_eq!(
        out.matches("\"reason\":\"program_change\"").count(),
        2,
        "{out}"
    );
    // The state is now v3's: diffing from v1 is an error naming it.
    let (c, _, err) = diff(&v3, &db);
    assert_eq!(c, Some(2), "{err}");
    assert!(
        err.contains("was not written by OLD: workflow `onboarding` differs"),
        "{err}"
    );
}

/// The crash test with a program change between its parts: the examples
/// run over the first half of a generated workload, then a changed program
/// (a named wait lengthened, a workflow whose renamed wait's journeys
/// `on change exit` ends) over all of it to the end; killed with SIGKILL at
/// random moments in both parts and started again with the same command
/// until each exits 0, it leaves the output (with `--trace`, so the
/// `end` records of the change count) and the state of the uninterrupted
/// runs.
#[test]
fn a_program_change_survives_kills() {
    let dir = tempfile::tempdir().expect("tempdir");
    let (v1, v2) = (dir.path().join("v1"), dir.path().join("v2"));
    for d in [&v1, &v2] {
        std::fs::create_dir(d).expect("dir");
        for e in std::fs::read_dir(root().join("examples")).expect("examples") {
            let p = e.expect("entry").path();
            let name = p.file_name().and_then(|n| n.to_str()).unwrap_or("");
            if name.ends_with(".flow") && !name.ends_with(".test.flow") {
                std::fs::copy(&p, d.join(name)).expect("copy");
            }
        }
    }
    let edit = |f: &str, from: &str, to: &str| {
        let p = v2.join(f);
        let text = std::fs::read_to_string(&p).expect("read");
        assert!(text.contains(from), "{f} holds `{from}`");
        std::fs::write(&p, text.replacen(from, to, 1)).expect("write");
    };
    edit(
        "welcome.flow",
        "wait 2d as before_tips",
        "wait 3d as before_tips",
    );
    edit(
        "cart_abandonment.flow",
        "wait 1d as before_discount",
        "wait 2d as before_the_discount",
    );
    edit(
        "cart_abandonment.flow",
        "  when cart_abandoned",
        "  on change exit\n  when cart_abandoned",
    );

    let mut bytes = Vec::new();
    crate::snapshot::workload::generate(&mut bytes, 3_000, 30_000, 11).expect("generated");
    let text = String::from_utf8(bytes).expect("utf-8");
    let half: String = text
        .lines()
        .take(15_000)
        .map(|l| format!("{l}\n"))
        .collect();
    let (first, all) = (dir.path().join("first.jsonl"), dir.path().join("all.jsonl"));
    std::fs::write(&first, half).expect("write");
    std::fs::write(&all, &text).expect("write");

    let command = |program: &Path, events: &Path, db: &Path, out: &Path, drain: bool| {
        let mut c = bin();
        c.arg("run")
            .arg(program)
            .arg("--events")
            .arg(events)
            .arg("--state")
            .arg(db)
            .arg("--out")
            .arg(out)
            .arg("--trace")
            .env("NURTURE_CHECKPOINT_EVENTS", "2000")
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null());
        if drain {
            c.arg("--drain");
        }
        c
    };
    let parts = [(&v1, &first, false), (&v2, &all, true)];
    let (ref_db, ref_out) = (dir.path().join("ref.db"), dir.path().join("ref.out"));
    for (program, events, drain) in parts {
        let status = command(program, events, &ref_db, &ref_out, drain)
            .status()
            .expect("runs");
        assert_eq!(status.code(), Some(0));
    }
    let reference = std::fs::read(&ref_out).expect("read");
    let ended = String::from_utf8_lossy(&reference)
        .matches("\"reason\":\"program_change\"")
        .count();
    assert!(ended > 0, "the change ended some journeys");

    let (db, out) = (dir.path().join("crash.db"), dir.path().join("crash.out"));
    let mut seed: u64 = 0x9e37_79b9_7f4a_7c15;
    let mut kills = [0; 2];
    for (i, (program, events, drain)) in parts.into_iter().enumerate() {
        if i == 1 {
            // Dead at the worst moment: the change taken up and recorded,
            // nothing run yet.
            let status = command(program, events, &db, &out, drain)
                .env("NURTURE_ABORT_AFTER_TAKE_UP", "1")
                .status()
                .expect("runs");
            assert_ne!(status.code(), Some(0), "it died");
        }
        loop {
            seed = seed.wrapping_mul(6_364_136_223_846_793_005).wrapping_add(1);
            // Early kills are likelier: the change is taken up at the start.
            let ms = match kills[i] {
                0..=2 => (seed >> 33) % 60,
                _ => (seed >> 33) % 900,
            };
            let mut child = command(program, events, &db, &out, drain)
                .spawn()
                .expect("spawns");
            std::thread::sleep(std::time::Duration::from_millis(ms));
            if child.try_wait().expect("status").is_some() || kills[i] >= 6 {
                let status = child.wait().expect("reaped");
                assert_eq!(status.code(), Some(0), "part {i} ends well");
                break;
            }
            child.kill().expect("SIGKILL");
            child.wait().expect("reaped");
            kills[i] += 1;
        }
    }
    assert!(
        kills[1] >= 3,
        "kills landed in the changed program's run: {kills:?}"
    );
    let got = std::fs::read(&out).expect("read");
    assert!(
        got == reference,
        "the outputs differ ({} and {} bytes)",
        reference.len(),
        got.len()
    );
    let inspect = |db: &Path| {
        let o = bin()
            .args(["inspect", "--format", "json", "--state"])
            .arg(db)
            .output()
            .expect("runs");
        stdout(&o)
    };
    assert_eq!(inspect(&ref_db), inspect(&db));
}
