//! `nurture run --report`: the funnel and experiment report, computed by
//! hand for small programs, its statistics against independent values, the
//! HTML page parsed, and the counts kept across runs with `--state`.

use crate::helpers::{bin, stderr};
use nurture::report;
use serde_json::{json, Value};

/// A funnel with a stage on two branches, a stage nobody reaches, a split,
/// a `convert` (no goal), and a second workflow without stages.
const PROGRAM: &str = r#"contact {
  email: string @channel(email)
  plan: "free" | "paid" = "free"
  tags: set<string>
}
event signup {}
event demo {}

workflow trial {  // nurture:allow(no-goal)
  when signup
  stage "lead"
  if contact.plan == "paid" {
    stage "qualified"
    convert
  } else {
    wait for demo within 1d {
      stage "qualified"
      stage "demo"
      convert
    }
    stage "never"
    stage "after never"
  }
}

workflow plain {  // nurture:allow(no-goal)
  when demo
  tag "demo"
}
"#;

/// Runs `PROGRAM` over `events` with `flags`; the report's JSON.
fn report_of(events: &[Value], flags: &[&str]) -> Value {
    let dir = tempfile::tempdir().expect("tempdir");
    let (prog, ev, out) = (
        dir.path().join("p.flow"),
        dir.path().join("e.jsonl"),
        dir.path().join("r.json"),
    );
    std::fs::write(&prog, PROGRAM).expect("write");
    let lines: String = events.iter().map(|e| format!("{e}\n")).collect();
    std::fs::write(&ev, lines).expect("write");
    let o = bin()
        .arg("run")
        .arg(&prog)
        .arg("--events")
        .arg(&ev)
        .arg("--report")
        .arg(&out)
        .args(flags)
        .output()
        .expect("runs");
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    serde_json::from_str(&std::fs::read_to_string(&out).expect("report")).expect("json")
}

fn created(c: &str, plan: &str) -> Value {
    json!({"at": "2026-01-01T00:00:00Z", "contact": c, "type": "contact_created",
           "attributes": {"email": format!("{c}@x.com"), "plan": plan}})
}

fn event(c: &str, ty: &str, at: &str) -> Value {
    json!({"at": at, "contact": c, "type": ty})
}

/// Five signups: two paid (qualified on the first branch, converted), three
/// free: one sees the demo within the day (qualified on the second branch,
/// demo, converted), two do not (to "never", "after never", completed).
#[test]
fn the_funnel_computed_by_hand() {
    let mut events = vec![
        created("p1", "paid"),
        created("p2", "paid"),
        created("f1", "free"),
        created("f2", "free"),
        created("f3", "free"),
    ];
    for c in ["p1", "p2", "f1", "f2", "f3"] {
        events.push(event(c, "signup", "2026-01-01T01:00:00Z"));
    }
    events.push(event("f1", "demo", "2026-01-01T05:00:00Z"));
    let r = report_of(&events, &["--drain"]);
    let trial = &r["workflows"][0];
    assert_eq!(trial["name"], "trial");
    assert_eq!(trial["entered"], 5);
    assert_eq!(
        trial["outcomes"],
        json!({"completed": 2, "converted": 3, "exited": 0, "failed": 0, "waiting": 0})
    );
    // Steps, each against its parent (the nearest earlier step every path
    // to it passes through): entered 5; lead 5 (5/5 = 1); qualified 3,
    // once per journey on either branch, under lead (3/5 = 0.6); demo 1,
    // under qualified (1/3 = 0.3333); never 2, under lead: the branches
    // part there (2/5 = 0.4); after never 2 under never (2/2 = 1);
    // converted 3, under lead, the one stage every convert and the end pass
    // (3/5 = 0.6). No rate exceeds 100%.
    assert_eq!(
        trial["funnel"],
        json!([
            {"step": "entered", "reached": 5},
            {"step": "lead", "reached": 5, "parent": "entered", "rate": 1.0},
            {"step": "qualified", "reached": 3, "parent": "lead", "rate": 0.6},
            {"step": "demo", "reached": 1, "parent": "qualified", "rate": 0.3333},
            {"step": "never", "reached": 2, "parent": "lead", "rate": 0.4},
            {"step": "after never", "reached": 2, "parent": "never", "rate": 1.0},
            {"step": "converted", "reached": 3, "parent": "lead", "rate": 0.6},
        ])
    );
    // CR = converted / entered = 3/5, the product of the rates along the
    // chain of parents to converted: entered -> lead -> converted.
    assert_eq!(trial["conversion_rate"], 0.6);
    let product: f64 = [1.0, 3.0 / 5.0].iter().product();
    assert!((product - 0.6).abs() < 1e-12);
    // The lowest rate is the demo's.
    assert_eq!(trial["bottleneck"], "demo");
    assert_eq!(trial["splits"], json!([]));
    // A workflow without stages, goal or convert: the funnel is `entered`,
    // there is nothing to convert to (no conversion rate), no bottleneck.
    let plain = &r["workflows"][1];
    assert_eq!(plain["funnel"], json!([{"step": "entered", "reached": 1}]));
    assert_eq!(plain["conversion_rate"], Value::Null);
    assert_eq!(plain["bottleneck"], Value::Null);
}

/// A step after one nobody reached has no rate; with nobody entered the
/// conversion rate is null; rates that are null are never the bottleneck.
#[test]
fn null_rates() {
    // Only paid leads: nobody waits for the demo, so `demo` is reached by
    // none of the qualified (rate 0, and the qualified journey has ended:
    // it had its chance); `never` is reached by none of the leads (0) and
    // `after never` has a parent nobody reached (null).
    let events = vec![
        created("p1", "paid"),
        event("p1", "signup", "2026-01-01T01:00:00Z"),
    ];
    let r = report_of(&events, &[]);
    let f = &r["workflows"][0]["funnel"];
    assert_eq!(
        f[3],
        json!({"step": "demo", "reached": 0, "parent": "qualified", "rate": 0.0})
    );
    assert_eq!(
        f[4],
        json!({"step": "never", "reached": 0, "parent": "lead", "rate": 0.0})
    );
    assert_eq!(
        f[5],
        json!({"step": "after never", "reached": 0, "parent": "never", "rate": null})
    );
    assert_eq!(
        f[6],
        json!({"step": "converted", "reached": 1, "parent": "lead", "rate": 1.0})
    );
    // demo and never tie at 0: the earliest is the bottleneck.
    assert_eq!(r["workflows"][0]["bottleneck"], "demo");
    assert_eq!(r["workflows"][1]["conversion_rate"], Value::Null);
    assert_eq!(r["workflows"][1]["entered"], 0);
}

/// The statistics against values computed independently: for arm A 12 of
/// 98 and arm B 15 of 102 converted (the contract's example), the pooled
/// rate is 27/200 = 0.135, the standard error
/// sqrt(0.135 * 0.865 * (1/98 + 1/102)) = 0.048337, z = (15/102 - 12/98) /
/// 0.048337 = 0.50913, and the two-sided p-value 2 * (1 - Phi(0.50913)) =
/// 0.61066 (R: prop.test(c(12, 15), c(98, 102), correct = FALSE) gives
/// X-squared = 0.2592 = z^2, p-value = 0.6107). The Wilson 95% interval
/// of 12/98 is (0.07145, 0.20193), of 15/102 (0.09119, 0.22855) (R:
/// prop.test(12, 98, correct = FALSE)$conf.int).
#[test]
fn the_p_value_and_intervals_match_independent_values() {
    let p = report::two_proportion_p((98, 12), (102, 15)).expect("a p-value");
    assert!((p - 0.610_66).abs() < 1e-4, "{p}");
    let (lo, hi) = report::wilson(12, 98).expect("an interval");
    assert!(
        (lo - 0.071_45).abs() < 1e-4 && (hi - 0.201_93).abs() < 1e-4,
        "{lo} {hi}"
    );
    let (lo, hi) = report::wilson(15, 102).expect("an interval");
    assert!(
        (lo - 0.091_19).abs() < 1e-4 && (hi - 0.228_55).abs() < 1e-4,
        "{lo} {hi}"
    );
    // A large difference: 10 of 100 against 30 of 100: pooled 0.2, se =
    // sqrt(0.2 * 0.8 * 0.02) = 0.056569, z = 3.5355, p = 0.000407.
    let p = report::two_proportion_p((100, 10), (100, 30)).expect("a p-value");
    assert!((p - 0.000_407).abs() < 1e-5, "{p}");
    // No test when an arm is empty or the pooled rate is 0 or 1.
    assert_eq!(report::two_proportion_p((0, 0), (10, 3)), None);
    assert_eq!(report::two_proportion_p((10, 0), (10, 0)), None);
    assert_eq!(report::two_proportion_p((10, 10), (5, 5)), None);
    assert_eq!(report::wilson(0, 0), None);
}

/// A split's arms in the report: entered and converted per arm, and a
/// p-value for arms after the first, consistent with the counts.
#[test]
fn a_split_reports_its_arms() {
    let program = PROGRAM.replace(
        "  stage \"lead\"\n",
        "  stage \"lead\"\n  split {\n    50% { tag \"a\" }\n    50% { tag \"b\" }\n  }\n",
    );
    let dir = tempfile::tempdir().expect("tempdir");
    let (prog, ev, out) = (
        dir.path().join("p.flow"),
        dir.path().join("e.jsonl"),
        dir.path().join("r.json"),
    );
    std::fs::write(&prog, program).expect("write");
    let mut lines = String::new();
    for i in 0..60 {
        let plan = if i % 3 == 0 { "paid" } else { "free" };
        lines.push_str(&format!("{}\n", created(&format!("c{i}"), plan)));
    }
    for i in 0..60 {
        lines.push_str(&format!(
            "{}\n",
            event(&format!("c{i}"), "signup", "2026-01-01T01:00:00Z")
        ));
    }
    std::fs::write(&ev, lines).expect("write");
    let o = bin()
        .arg("run")
        .arg(&prog)
        .arg("--events")
        .arg(&ev)
        .arg("--report")
        .arg(&out)
        .output()
        .expect("runs");
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    let r: Value =
        serde_json::from_str(&std::fs::read_to_string(&out).expect("read")).expect("json");
    let split = &r["workflows"][0]["splits"][0];
    assert_eq!(split["line"], 12);
    let arms = split["arms"].as_array().expect("arms");
    assert_eq!(arms.len(), 2);
    let n = |a: &Value, k: &str| a[k].as_u64().expect("count");
    // Every journey took one arm; the paid ones (20) converted at once.
    assert_eq!(n(&arms[0], "entered") + n(&arms[1], "entered"), 60);
    assert_eq!(n(&arms[0], "converted") + n(&arms[1], "converted"), 20);
    assert!(arms[0].get("p_value").is_none());
    let want = report::two_proportion_p(
        (n(&arms[0], "entered"), n(&arms[0], "converted")),
        (n(&arms[1], "entered"), n(&arms[1], "converted")),
    )
    .map(|p| (p * 10_000.0).round() / 10_000.0);
    assert_eq!(arms[1]["p_value"].as_f64(), want);
    assert_eq!(arms[0]["share"], 50);
}

/// The HTML page: well-formed, self-contained, one funnel chart per
/// workflow whose text alternative holds the numbers, the bottleneck marked.
#[test]
fn the_html_page() {
    let dir = tempfile::tempdir().expect("tempdir");
    let (prog, ev, out) = (
        dir.path().join("p.flow"),
        dir.path().join("e.jsonl"),
        dir.path().join("r.html"),
    );
    std::fs::write(&prog, PROGRAM).expect("write");
    let events = [
        created("p1", "paid"),
        created("f1", "free"),
        event("p1", "signup", "2026-01-01T01:00:00Z"),
        event("f1", "signup", "2026-01-01T01:00:00Z"),
    ];
    let lines: String = events.iter().map(|e| format!("{e}\n")).collect();
    std::fs::write(&ev, lines).expect("write");
    let o = bin()
        .arg("run")
        .arg(&prog)
        .arg("--events")
        .arg(&ev)
        .arg("--report")
        .arg(&out)
        .arg("--drain")
        .output()
        .expect("runs");
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    let text = std::fs::read_to_string(&out).expect("read");
    let page = scraper::Html::parse_document(&text);
    assert!(page.errors.is_empty(), "{:?}", page.errors);
    let sel = |s: &str| scraper::Selector::parse(s).expect("selector");
    // Nothing fetched from elsewhere.
    assert_eq!(page.select(&sel("script, link, img, iframe")).count(), 0);
    assert!(!text.contains("http://") && !text.contains("https://"));
    let charts: Vec<_> = page.select(&sel("svg[role=img]")).collect();
    assert_eq!(charts.len(), 2, "one funnel chart per workflow");
    let desc: String = charts[0]
        .select(&sel("desc"))
        .next()
        .expect("a text alternative")
        .text()
        .collect();
    assert_eq!(
        desc,
        "A branching funnel. entered: 2; lead: 2 (100.0% of entered); qualified: 1 (50.0% of lead); \
         demo: 0 (0.0% of qualified); never: 1 (50.0% of lead); \
         after never: 1 (100.0% of never); converted: 1 (50.0% of lead). \
         The bottleneck is demo."
    );
    assert_eq!(page.select(&sel("rect.bottleneck")).count(), 1);
    // The branching funnel is drawn as a tree: a line joins each step to
    // its parent where the branches part (lead's three: qualified, never,
    // converted); a parent's only child stays level, and the straight
    // funnel has no line.
    assert_eq!(charts[0].select(&sel("path.branch")).count(), 3);
    assert_eq!(charts[1].select(&sel("path.branch")).count(), 0);
    // The page opens with an overview: a row per workflow, linking to its
    // section, with its conversion rate and bottleneck.
    let overview = page
        .select(&sel("table.overview"))
        .next()
        .expect("an overview table");
    let rows: Vec<Vec<String>> = overview
        .select(&sel("tr"))
        .skip(1)
        .map(|r| {
            r.select(&sel("td"))
                .map(|c| c.text().collect::<String>())
                .collect()
        })
        .collect();
    assert_eq!(
        rows,
        vec![
            vec!["trial", "2", "50.0%", "demo", "-"],
            vec!["plain", "0", "no goal", "-", "-"],
        ]
    );
    let link = overview
        .select(&sel("a"))
        .next()
        .and_then(|a| a.value().attr("href"))
        .expect("a link");
    assert_eq!(page.select(&sel(link)).count(), 1, "{link} names a section");
    let title: String = charts[1]
        .select(&sel("title"))
        .next()
        .expect("title")
        .text()
        .collect();
    assert_eq!(title, "Funnel of plain");
}

/// With `--state`, the counts accumulate across runs: two runs give the
/// report of one.
#[test]
fn the_counts_accumulate_with_state() {
    let dir = tempfile::tempdir().expect("tempdir");
    let db = dir.path().join("s.db");
    let state = db.to_str().unwrap_or("");
    let events = vec![
        created("p1", "paid"),
        created("f1", "free"),
        event("p1", "signup", "2026-01-01T01:00:00Z"),
        event("f1", "signup", "2026-01-01T01:00:00Z"),
        event("f1", "demo", "2026-01-01T02:00:00Z"),
    ];
    let whole = report_of(&events, &["--drain"]);
    let first = report_of(&events[..3], &["--state", state]);
    assert_eq!(first["workflows"][0]["entered"], 1);
    let second = report_of(&events[3..], &["--state", state, "--drain"]);
    assert_eq!(second, whole);
}

/// The report counts the sends suppressed, for want of consent and by a
/// frequency cap.
#[test]
fn the_report_counts_suppressed_sends() {
    let dir = tempfile::tempdir().expect("tempdir");
    let (prog, ev, out) = (
        dir.path().join("p.flow"),
        dir.path().join("e.jsonl"),
        dir.path().join("r.json"),
    );
    std::fs::write(
        &prog,
        r#"contact {
  email: string @channel(email)
  opted_in: bool = false @consent(email)
}

event go {}

limit email to 1 per 1d

workflow w {  // nurture:allow(no-goal, consent, cap-below-path)
  when go
  send email "a"
  send email "b"
}
"#,
    )
    .expect("write");
    let lines = [
        json!({"at": "2026-01-01T00:00:00Z", "contact": "yes", "type": "contact_created", "attributes": {"email": "y@x.com", "opted_in": true}}),
        json!({"at": "2026-01-01T00:00:00Z", "contact": "no", "type": "contact_created", "attributes": {"email": "n@x.com"}}),
        event("yes", "go", "2026-01-01T01:00:00Z"),
        event("no", "go", "2026-01-01T01:00:00Z"),
    ];
    let text: String = lines.iter().map(|e| format!("{e}\n")).collect();
    std::fs::write(&ev, text).expect("write");
    let o = bin()
        .arg("run")
        .arg(&prog)
        .arg("--events")
        .arg(&ev)
        .arg("--report")
        .arg(&out)
        .output()
        .expect("runs");
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    let r: Value =
        serde_json::from_str(&std::fs::read_to_string(&out).expect("read")).expect("json");
    // "yes": a sent, b capped; "no": both withheld for want of consent.
    assert_eq!(
        r["workflows"][0]["suppressed"],
        json!({"consent": 2, "frequency_cap": 1})
    );
}

/// Section 9's last rule: the counts follow a workflow through a program
/// change that keeps its name, whatever else changed with it. Here the
/// workflow gains a stage before its others and its split moves, while a
/// field and an event are added to the program in the same change: every
/// stage and every split arm that kept its name keeps its count.
#[test]
fn the_counts_follow_a_workflow_through_a_program_change() {
    let dir = tempfile::tempdir().expect("tempdir");
    let db = dir.path().join("s.db");
    let v1 = r#"contact {
  email: string @channel(email)
}
event signup {}
event bought {}

workflow w {  // nurture:allow(no-goal)
  when signup
  goal bought
  stage "lead"
  split "subject" {
    50% as "short" {
      stage "short seen"
    }
    50% as "long" {
      stage "long seen"
    }
  }
}
"#;
    let v2 = r#"contact {
  email: string @channel(email)
  first_name: string?
}
event signup {}
event bought {}
event clicked {}

workflow w {  // nurture:allow(no-goal)
  when signup
  goal bought
  stage "new first stage"
  send email "hello"
  stage "lead"
  split "subject" {
    50% as "long" {
      stage "long seen"
    }
    50% as "short" {
      stage "short seen"
    }
  }
}
"#;
    let run = |program: &str, events: &[Value], name: &str| -> Value {
        let (prog, ev, out) = (
            dir.path().join(format!("{name}.flow")),
            dir.path().join(format!("{name}.jsonl")),
            dir.path().join(format!("{name}.json")),
        );
        std::fs::write(&prog, program).expect("write");
        let lines: String = events.iter().map(|e| format!("{e}\n")).collect();
        std::fs::write(&ev, lines).expect("write");
        let o = bin()
            .arg("run")
            .arg(&prog)
            .arg("--events")
            .arg(&ev)
            .arg("--state")
            .arg(&db)
            .arg("--report")
            .arg(&out)
            .output()
            .expect("runs");
        assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
        serde_json::from_str(&std::fs::read_to_string(&out).expect("report")).expect("json")
    };
    let mut first = Vec::new();
    for i in 0..10 {
        let c = format!("c{i}");
        first.push(json!({"at": "2026-01-01T00:00:00Z", "contact": c, "type": "contact_created", "attributes": {"email": format!("{c}@x.com")}}));
    }
    for i in 0..10 {
        first.push(event(&format!("c{i}"), "signup", "2026-01-01T01:00:00Z"));
    }
    let before = run(v1, &first, "one");
    let reached = |r: &Value, step: &str| -> u64 {
        r["workflows"][0]["funnel"]
            .as_array()
            .and_then(|f| f.iter().find(|s| s["step"] == step))
            .and_then(|s| s["reached"].as_u64())
            .unwrap_or(u64::MAX)
    };
    let arm = |r: &Value, label: &str| -> u64 {
        r["workflows"][0]["splits"][0]["arms"]
            .as_array()
            .and_then(|a| a.iter().find(|x| x["label"] == label))
            .and_then(|x| x["entered"].as_u64())
            .unwrap_or(u64::MAX)
    };
    assert_eq!(reached(&before, "lead"), 10);
    let (short, long) = (arm(&before, "short"), arm(&before, "long"));
    assert_eq!(short + long, 10);
    assert_eq!(reached(&before, "short seen"), short);

    // One more signup under the changed program.
    let after = run(
        v2,
        &[
            json!({"at": "2026-01-02T00:00:00Z", "contact": "d", "type": "contact_created", "attributes": {"email": "d@x.com"}}),
            event("d", "signup", "2026-01-02T01:00:00Z"),
        ],
        "two",
    );
    assert_eq!(after["workflows"][0]["entered"], 11);
    assert_eq!(reached(&after, "new first stage"), 1);
    assert_eq!(reached(&after, "lead"), 11);
    assert_eq!(arm(&after, "short") + arm(&after, "long"), 11);
    assert!(arm(&after, "short") >= short && arm(&after, "long") >= long);
    assert_eq!(
        reached(&after, "short seen") + reached(&after, "long seen"),
        11
    );
    assert_eq!(reached(&after, "short seen"), arm(&after, "short"));
}

/// The summary indents a step under its parent only where branches part
/// (a straight run of stages is not a staircase), and names the parent
/// when it is not the row above; more than 64 stages is a check error
/// (the report could not count them).
#[test]
fn the_summary_tree_and_the_stage_limit() {
    let program = |n: usize| {
        let mut p = String::from("contact {\n  email: string @channel(email)\n}\n\nworkflow w {  // nurture:allow(no-goal, consent)\n  when contact_created\n");
        for i in 0..n {
            p.push_str(&format!("  stage \"s{i}\"\n"));
        }
        p.push_str("}\n");
        p
    };
    let one = "{\"at\":\"2026-01-01T00:00:00Z\",\"contact\":\"a\",\"type\":\"contact_created\",\"attributes\":{\"email\":\"a\"}}\n";
    let o = crate::helpers::run_program(&program(64), one, &[]);
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    let err = stderr(&o);
    assert!(
        err.contains("\n    s62             1  100.0%\n    s63             1  100.0%\n"),
        "{err}"
    );
    let o = crate::helpers::run_program(&program(65), one, &[]);
    assert_eq!(o.status.code(), Some(1), "{}", stderr(&o));
    assert!(
        stderr(&o).contains("workflow `w` has more than 64 distinct stages and split arms"),
        "{}",
        stderr(&o)
    );
    // The branching example: a step under its parent where branches part,
    // a rate of a parent other than the row above saying whose it is.
    let mut events = vec![created("p1", "paid"), created("f1", "free")];
    events.push(event("p1", "signup", "2026-01-01T01:00:00Z"));
    events.push(event("f1", "signup", "2026-01-01T01:00:00Z"));
    let lines: String = events.iter().map(|e| format!("{e}\n")).collect();
    let o = crate::helpers::run_program(PROGRAM, &lines, &["--drain"]);
    let err = stderr(&o);
    assert!(
        err.contains(
            "\n    lead                  2  100.0%\n      qualified           1   50.0%\n"
        ),
        "{err}"
    );
    assert!(
        err.contains("\n      never               1   50.0% of lead\n"),
        "{err}"
    );
    assert!(
        err.contains("\n      after never         1  100.0%\n"),
        "{err}"
    );
}
