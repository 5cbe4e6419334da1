//! What marketers expect of their messages (LANGUAGE.md sections 3, 4 and
//! 9): `X ?? Y` for optional values, `transactional` sends, named splits
//! with labelled arms in the report.

use nurture::runtime::Interpreter;
use nurture::source::SourceMap;
use serde_json::{json, Value};
use std::sync::Arc;

/// Runs `program` in process over `events` (JSON Lines), then drains it;
/// the lines emitted, and the report's JSON.
fn run(program: &str, events: &str, trace: bool) -> (Vec<Value>, Value) {
    run_then(program, events, trace, true)
}

/// [`run`], draining or not.
fn run_then(program: &str, events: &str, trace: bool, drain: bool) -> (Vec<Value>, Value) {
    let mut sources = SourceMap::default();
    sources.add("p.flow", program.to_string());
    let a = nurture::pipeline::analyse(&sources);
    let errors: Vec<_> = a
        .diagnostics
        .iter()
        .filter(|d| d.severity == nurture::diagnostic::Severity::Error)
        .map(|d| d.render(&sources, false, 90))
        .collect();
    assert!(errors.is_empty(), "{}", errors.concat());
    let prog = Arc::new(nurture::runtime::compile(&a.program, &a.checked.schema));
    let mut it = Interpreter::new(prog, trace);
    for line in events.lines().filter(|l| !l.trim().is_empty()) {
        it.feed_line(line).expect("a good record");
    }
    if drain {
        it.drain();
    }
    let mut out = String::new();
    it.take_json(&mut out);
    let lines = out
        .lines()
        .map(|l| serde_json::from_str(l).expect("json"))
        .collect();
    let report = nurture::report::build(it.program(), &it.stats(), &sources);
    (lines, nurture::report::to_json(&report))
}

fn templates(lines: &[Value], action: &str) -> Vec<String> {
    lines
        .iter()
        .filter(|l| l["action"] == action)
        .map(|l| l["template"].as_str().unwrap_or("").to_string())
        .collect()
}

const SCHEMA: &str = r#"contact {
  email: string @channel(email)
  first_name: string?
  score: int?
  opted_in: bool = true @consent(email)
}
event signup {}
event download {}
event bought {}
"#;

/// `??`: the optional's value when set, else the fallback, in `with { }`,
/// in a notify text and in a condition; `??` groups to the right and binds
/// tighter than a comparison.
#[test]
fn coalesce_fills_in_unset_values() {
    let program = format!(
        "{SCHEMA}\nworkflow w {{\n  when signup\n  send email \"hi\" with {{ name: contact.first_name ?? \"there\", s: contact.score ?? 0 + 1 }}\n  notify \"team\" \"signup: {{contact.first_name ?? \"anon\"}}\"\n  if contact.score ?? 0 > 3 {{\n    send email \"vip\"\n  }}\n}}\n"
    );
    let events = r#"{"at":"2026-01-01T10:00:00Z","contact":"a","type":"contact_created","attributes":{"email":"a@x","first_name":"Ana"}}
{"at":"2026-01-01T10:00:00Z","contact":"a","type":"signup"}
{"at":"2026-01-01T10:00:00Z","contact":"b","type":"contact_created","attributes":{"email":"b@x","score":5}}
{"at":"2026-01-01T10:00:00Z","contact":"b","type":"signup"}
"#;
    let (lines, _) = run(&program, events, false);
    let sends: Vec<&Value> = lines.iter().filter(|l| l["action"] == "send").collect();
    assert_eq!(sends[0]["data"], json!({"name": "Ana", "s": 1}));
    assert_eq!(sends[1]["data"], json!({"name": "there", "s": 5}));
    assert_eq!(sends[2]["template"], "vip");
    assert_eq!(sends.len(), 3, "{lines:?}");
    let notes: Vec<&str> = lines
        .iter()
        .filter(|l| l["action"] == "notify")
        .map(|l| l["message"].as_str().unwrap_or(""))
        .collect();
    assert_eq!(notes, ["signup: Ana", "signup: anon"]);
}

/// The checker: the fallback must have the optional's type, and the result
/// is not optional (it may go where a value is needed).
#[test]
fn coalesce_is_typed() {
    let (diags, text) = crate::helpers::diagnostics(&format!(
        "{SCHEMA}\nworkflow w {{\n  when signup\n  send email \"hi\" with {{ name: contact.first_name ?? 5 }}\n}}\n"
    ));
    assert_eq!(diags.len(), 1, "{text}");
    assert!(
        text.contains("the right side of `??` must be string, found int"),
        "{text}"
    );
    let (diags, text) = crate::helpers::diagnostics(&format!(
        "{SCHEMA}\nworkflow w {{\n  when signup\n  notify \"t\" \"{{contact.first_name ?? \"x\"}} {{contact.score ?? 0}}\"\n}}\n"
    ));
    assert!(diags.is_empty(), "{text}");
    // Without `??` the same optional is an error.
    let (diags, _) = crate::helpers::diagnostics(&format!(
        "{SCHEMA}\nworkflow w {{\n  when signup\n  notify \"t\" \"{{contact.first_name}}\"\n}}\n"
    ));
    assert_eq!(diags.len(), 1);
}

/// A transactional send is exempt from the cap and from quiet hours and
/// does not count toward the cap; consent still applies.
#[test]
fn transactional_sends_skip_caps_and_quiet_hours_not_consent() {
    let program = format!(
        "{SCHEMA}\nlimit email to 1 per 1d\nquiet hours 21:00 to 08:00\n\nworkflow nurture {{\n  when signup\n  send email \"promo\"\n}}\n\nworkflow download {{\n  when download\n  send email \"your_download\" transactional\n  send email \"promo2\"\n}}\n"
    );
    // a: a promo at 10:00 fills the cap; the download at 12:00 is sent
    // anyway, and the promo after it is capped (the transactional send did
    // not count, the promo did). b: a download at 22:00 (quiet hours) goes
    // out at once; its promo is held to 08:00. c: no consent, nothing.
    let events = r#"{"at":"2026-01-01T09:00:00Z","contact":"a","type":"contact_created","attributes":{"email":"a@x"}}
{"at":"2026-01-01T09:00:00Z","contact":"c","type":"contact_created","attributes":{"email":"c@x","opted_in":false}}
{"at":"2026-01-01T10:00:00Z","contact":"a","type":"signup"}
{"at":"2026-01-01T12:00:00Z","contact":"a","type":"download"}
{"at":"2026-01-01T12:00:00Z","contact":"c","type":"download"}
{"at":"2026-01-01T21:00:00Z","contact":"b","type":"contact_created","attributes":{"email":"b@x"}}
{"at":"2026-01-01T22:00:00Z","contact":"b","type":"download"}
"#;
    let (lines, report) = run(&program, events, true);
    let sent: Vec<(String, String, String)> = lines
        .iter()
        .filter(|l| l["action"] == "send")
        .map(|l| {
            let s = |k: &str| l[k].as_str().unwrap_or("").to_string();
            (s("contact"), s("template"), s("at"))
        })
        .collect();
    let want = |c: &str, t: &str, at: &str| (c.to_string(), t.to_string(), at.to_string());
    assert_eq!(
        sent,
        vec![
            want("a", "promo", "2026-01-01T10:00:00Z"),
            want("a", "your_download", "2026-01-01T12:00:00Z"),
            want("b", "your_download", "2026-01-01T22:00:00Z"),
            want("b", "promo2", "2026-01-02T08:00:00Z"),
        ]
    );
    let suppressed: Vec<(String, String, String)> = lines
        .iter()
        .filter(|l| l["action"] == "suppressed")
        .map(|l| {
            let s = |k: &str| l[k].as_str().unwrap_or("").to_string();
            (s("contact"), s("template"), s("reason"))
        })
        .collect();
    assert_eq!(
        suppressed,
        vec![
            want("a", "promo2", "frequency_cap"),
            want("c", "your_download", "consent"),
            want("c", "promo2", "consent"),
        ]
    );
    assert_eq!(templates(&lines, "send").len(), 4);
    assert_eq!(
        report["workflows"][1]["suppressed"],
        json!({"consent": 2, "frequency_cap": 1})
    );
}

const SPLIT: &str = r#"
workflow subjects {
  when signup
  goal bought
  split "subject_test" {
    50% as "short" {
      send email "s"
    }
    50% as "long" {
      send email "l"
    }
  }
  split {
    50% {
      wait 1d
    }
    50% {
      wait 2d
    }
  }
}
"#;

/// A named split and its labelled arms in the report; an unnamed split's
/// name is null and its arms are A and B. Nobody converted: the verdict says
/// so, not that every journey converted alike.
#[test]
fn named_splits_and_labels_in_the_report() {
    let program = format!("{SCHEMA}{SPLIT}");
    let mut events = String::new();
    for i in 0..20 {
        events.push_str(&format!(
            "{{\"at\":\"2026-01-01T10:00:00Z\",\"contact\":\"c{i}\",\"type\":\"contact_created\",\"attributes\":{{\"email\":\"c{i}@x\"}}}}\n{{\"at\":\"2026-01-01T10:00:00Z\",\"contact\":\"c{i}\",\"type\":\"signup\"}}\n"
        ));
    }
    let (_, report) = run(&program, &events, false);
    let splits = &report["workflows"][0]["splits"];
    assert_eq!(splits[0]["name"], "subject_test");
    assert_eq!(splits[0]["line"], 14);
    let labels = |s: &Value| -> Vec<String> {
        s["arms"]
            .as_array()
            .map(|a| {
                a.iter()
                    .map(|x| x["label"].as_str().unwrap_or("").to_string())
                    .collect()
            })
            .unwrap_or_default()
    };
    assert_eq!(labels(&splits[0]), ["short", "long"]);
    assert_eq!(splits[1]["name"], Value::Null);
    assert_eq!(labels(&splits[1]), ["A", "B"]);
    let entered: u64 = splits[0]["arms"]
        .as_array()
        .map(|a| a.iter().map(|x| x["entered"].as_u64().unwrap_or(0)).sum())
        .unwrap_or(0);
    assert_eq!(entered, 20);
    assert_eq!(splits[0]["arms"][1]["p_value"], Value::Null);

    // The page and the verdict say what happened: nobody converted.
    let r = nurture::report::Arm {
        label: "short".into(),
        share: 50,
        entered: 10,
        converted: 0,
        rate: Some(0.0),
        p_value: None,
        interval: None,
    };
    let other = nurture::report::Arm {
        label: "long".into(),
        ..r.clone()
    };
    assert_eq!(
        nurture::report::verdict(&r, &other),
        "Arm long converts as well as arm short (0.0% against 0.0%); no test: no journey of either arm has converted yet."
    );
}

/// `fmt` writes the name, the labels and `transactional` back, and what it
/// writes parses to the same program.
#[test]
fn fmt_keeps_names_labels_and_transactional() {
    let program = format!(
        "{SCHEMA}{SPLIT}\nworkflow d {{\n  when download\n  send email \"x\" with {{ n: contact.first_name ?? \"you\" }} transactional\n}}\n"
    );
    let text = nurture::fmt::format_source(&program).expect("formats");
    assert_eq!(
        nurture::fmt::format_source(&text).expect("formats again"),
        text,
        "idempotent"
    );
    assert!(
        text.contains("  split \"subject_test\" {\n    50% as \"short\" {"),
        "{text}"
    );
    assert!(text.contains("  split {\n    50% {"), "{text}");
    assert!(
        text.contains("send email \"x\" with { n: contact.first_name ?? \"you\" } transactional"),
        "{text}"
    );
}

/// The end-of-run summary shows each split journeys took, by its name and
/// its arms' labels (`A`, `B` for an unnamed one, known by its line).
#[test]
fn the_summary_shows_splits_by_name_and_label() {
    let program = format!("{SCHEMA}{SPLIT}");
    let mut events = String::new();
    for i in 0..6 {
        events.push_str(&format!(
            "{{\"at\":\"2026-01-01T10:00:00Z\",\"contact\":\"c{i}\",\"type\":\"contact_created\",\"attributes\":{{\"email\":\"c{i}@x\"}}}}\n{{\"at\":\"2026-01-01T10:00:00Z\",\"contact\":\"c{i}\",\"type\":\"signup\"}}\n"
        ));
    }
    let o = crate::helpers::run_program(&program, &events, &["--drain"]);
    assert_eq!(o.status.code(), Some(0));
    let err = crate::helpers::stderr(&o);
    assert!(
        err.contains("  split \"subject_test\" of subjects:\n    short  "),
        "{err}"
    );
    assert!(err.contains("\n    long   "), "{err}");
    assert!(
        err.contains("  split at line 22 of subjects:\n    A  "),
        "{err}"
    );
}

/// The bottleneck is never a step nobody has had the chance to reach: with
/// every journey still waiting before `followed up`, its 0% says nothing
/// yet, and the bottleneck is the lowest rate among the others.
#[test]
fn a_step_nobody_could_reach_yet_is_not_the_bottleneck() {
    let program = format!(
        "{SCHEMA}\nworkflow w {{\n  when signup\n  goal bought\n  stage \"signed up\"\n  if contact.score is set {{\n    stage \"scored\"\n  }}\n  wait 3d\n  stage \"followed up\"\n}}\n"
    );
    let mut events = String::new();
    for i in 0..4 {
        let score = if i == 0 { ",\"score\":1" } else { "" };
        events.push_str(&format!(
            "{{\"at\":\"2026-01-01T10:00:00Z\",\"contact\":\"c{i}\",\"type\":\"contact_created\",\"attributes\":{{\"email\":\"c{i}@x\"{score}}}}}\n{{\"at\":\"2026-01-01T10:00:00Z\",\"contact\":\"c{i}\",\"type\":\"signup\"}}\n"
        ));
    }
    // Waiting: followed up (0 of 4) cannot be judged yet; scored (1 of 4) is
    // the lowest rate journeys have had the chance to reach.
    let (_, report) = run_then(&program, &events, false, false);
    let w = &report["workflows"][0];
    assert_eq!(w["funnel"][3]["step"], "followed up");
    assert_eq!(w["funnel"][3]["rate"], 0.0);
    assert_eq!(w["bottleneck"], "scored");
    // Once one of them converts before the wait ends, converted (1 of 4)
    // ties with scored; the earliest wins. Drained, followed up is 3 of 4.
    let bought = "{\"at\":\"2026-01-02T10:00:00Z\",\"contact\":\"c1\",\"type\":\"bought\"}\n";
    let (_, report) = run_then(&program, &format!("{events}{bought}"), false, true);
    let w = &report["workflows"][0];
    assert_eq!(w["funnel"][3]["reached"], 3);
    assert_eq!(w["bottleneck"], "scored");
}

/// A goal reached before converted's parent stage can make converted's
/// rate exceed 100%: the page says why under the chart.
#[test]
fn the_page_explains_a_converted_rate_over_100_percent() {
    let program = format!(
        "{SCHEMA}\nworkflow w {{\n  when signup\n  goal bought\n  wait 1d\n  stage \"followed up\"\n  wait 1d\n}}\n"
    );
    let mut sources = SourceMap::default();
    sources.add("p.flow", program);
    let a = nurture::pipeline::analyse(&sources);
    let prog = Arc::new(nurture::runtime::compile(&a.program, &a.checked.schema));
    let mut it = Interpreter::new(prog, false);
    for c in ["a", "b"] {
        it.feed_line(&format!("{{\"at\":\"2026-01-01T10:00:00Z\",\"contact\":\"{c}\",\"type\":\"contact_created\",\"attributes\":{{\"email\":\"{c}@x\"}}}}")).expect("fed");
        it.feed_line(&format!(
            "{{\"at\":\"2026-01-01T10:00:00Z\",\"contact\":\"{c}\",\"type\":\"signup\"}}"
        ))
        .expect("fed");
    }
    // b buys before its stage, a after it.
    it.feed_line(r#"{"at":"2026-01-01T12:00:00Z","contact":"b","type":"bought"}"#)
        .expect("fed");
    it.feed_line(r#"{"at":"2026-01-02T12:00:00Z","contact":"a","type":"bought"}"#)
        .expect("fed");
    let report = nurture::report::build(it.program(), &it.stats(), &sources);
    let json = nurture::report::to_json(&report);
    let converted = &json["workflows"][0]["funnel"][2];
    assert_eq!(converted["parent"], "followed up");
    assert_eq!(converted["rate"], 2.0);
    let html = nurture::report::to_html(&report);
    assert!(
        html.contains("More journeys converted than reached <bdi>followed up</bdi>"),
        "{html}"
    );
}
