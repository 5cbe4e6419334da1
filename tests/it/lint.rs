//! `nurture lint`: every rule's positive and negative cases (suppression
//! included), the documented examples, the generated docs, and the CLI.

use crate::helpers::{bin, root, stderr, stdout, with_schema};
use nurture::lint::{self, Config, EXAMPLE_SCHEMA, RULES};
use nurture::source::SourceMap;

/// Lint findings (codes and rendered text) for `text`, with `config`.
fn lint_text(text: &str, config: &Config) -> (Vec<String>, String) {
    let mut sources = SourceMap::default();
    sources.add("test.flow", text);
    let a = nurture::pipeline::analyse(&sources);
    let errors: Vec<_> = a.diagnostics.iter().filter(|d| d.is_error()).collect();
    assert!(
        errors.is_empty(),
        "the test program has errors: {errors:#?}\n{text}"
    );
    let diags = lint::lint(&a.program, &a.checked.schema, &sources, config);
    let rendered = diags
        .iter()
        .map(|d| d.render(&sources, false, 90))
        .collect();
    (
        diags
            .iter()
            .map(|d| d.code.trim_start_matches("nurture::lint::").to_string())
            .collect(),
        rendered,
    )
}

/// Findings of one rule only, and their rendering.
fn only(rule: &str, body: &str) -> (Vec<String>, String) {
    let text = with_schema(body);
    let mut sources = SourceMap::default();
    sources.add("test.flow", text.as_str());
    let a = nurture::pipeline::analyse(&sources);
    assert!(
        !a.diagnostics.iter().any(|d| d.is_error()),
        "{:#?}",
        a.diagnostics
    );
    let code = format!("nurture::lint::{rule}");
    let diags: Vec<_> = lint::lint(&a.program, &a.checked.schema, &sources, &Config::default())
        .into_iter()
        .filter(|d| d.code == code)
        .collect();
    let rendered = diags
        .iter()
        .map(|d| d.render(&sources, false, 90))
        .collect();
    (diags.iter().map(|d| d.code.to_string()).collect(), rendered)
}

macro_rules! rule_case {
    ($name:ident, $rule:expr, $count:expr, $body:expr) => {
        #[test]
        fn $name() {
            let (codes, rendered) = only($rule, $body);
            assert_eq!(codes.len(), $count, "{rendered}");
            if $count > 0 {
                insta::assert_snapshot!(stringify!($name), format!("{}\n---\n{rendered}", $body));
            }
        }
    };
}

// consent
rule_case!(
    consent_missing,
    "consent",
    1,
    r#"workflow w {
  when purchase
  send email "x"
}
"#
);
rule_case!(
    consent_in_entry_filter,
    "consent",
    0,
    r#"workflow w {
  when purchase where contact.opted_in
  send email "x"
}
"#
);
rule_case!(
    consent_in_enclosing_if,
    "consent",
    0,
    r#"workflow w {
  when purchase
  if contact.opted_in and contact.phone is set {
    send sms "x"
  }
}
"#
);
rule_case!(
    consent_in_wrong_branch,
    "consent",
    1,
    r#"workflow w {
  when purchase
  if contact.opted_in {
    tag "ok"
  } else {
    send email "x"
  }
}
"#
);
rule_case!(
    consent_after_early_exit,
    "consent",
    0,
    r#"workflow w {
  when purchase
  if not contact.opted_in {
    exit
  }
  send email "x"
}
"#
);
rule_case!(
    consent_check_ends_at_a_wait,
    "consent",
    1,
    r#"workflow w {
  when purchase where contact.opted_in
  wait 1d
  send email "late"
}
"#
);
rule_case!(
    consent_check_ends_in_a_wait_for_block,
    "consent",
    2,
    r#"workflow w {
  when purchase where contact.opted_in
  wait for email_opened within 2d {
    send email "opened"
  } timeout {
    send email "not_opened"
  }
}
"#
);
rule_case!(
    consent_checked_again_after_the_wait,
    "consent",
    0,
    r#"workflow w {
  when purchase where contact.opted_in
  send email "now"
  wait 1d
  if not contact.opted_in {
    exit
  }
  send email "late"
}
"#
);
rule_case!(
    consent_suppressed_on_line,
    "consent",
    0,
    r#"workflow w {
  when purchase
  send email "receipt"  // nurture:allow(consent)
}
"#
);
rule_case!(
    consent_suppressed_on_workflow,
    "consent",
    0,
    r#"// nurture:allow(consent, burst)
workflow w {
  when purchase
  send email "receipt"
}
"#
);

// burst
rule_case!(
    burst_two_sends,
    "burst",
    1,
    r#"workflow w {
  when purchase where contact.opted_in
  send email "a"
  send email "b"
}
"#
);
rule_case!(
    burst_through_a_branch,
    "burst",
    1,
    r#"workflow w {
  when purchase where contact.opted_in
  if contact.score > 1 {
    send email "a"
  }
  send email "b"
}
"#
);
rule_case!(
    burst_with_wait,
    "burst",
    0,
    r#"workflow w {
  when purchase where contact.opted_in
  send email "a"
  wait 1d
  send email "b"
}
"#
);
rule_case!(
    burst_other_channel,
    "burst",
    0,
    r#"workflow w {
  when purchase where contact.opted_in and contact.phone is set
  send email "a"
  send sms "b"
}
"#
);
rule_case!(
    burst_exclusive_branches,
    "burst",
    0,
    r#"workflow w {
  when purchase where contact.opted_in
  if contact.score > 1 {
    send email "a"
  } else {
    send email "b"
  }
}
"#
);
rule_case!(
    burst_suppressed,
    "burst",
    0,
    r#"workflow w {
  when purchase where contact.opted_in
  send email "a"
  send email "b"  // nurture:allow(burst)
}
"#
);

/// A thank-you sent at once on every purchase; the cases add a second
/// workflow on the same event.
const THANKS: &str =
    "workflow a {\n  when purchase where contact.opted_in\n  send email \"thanks\"\n}\n\n";

rule_case!(
    burst_across_workflows,
    "burst",
    1,
    &[
        THANKS,
        "workflow b {\n  when purchase where contact.opted_in\n  send email \"survey\"\n}\n"
    ]
    .concat()
);
rule_case!(
    no_burst_across_exclusive_workflows,
    "burst",
    0,
    r#"workflow a {
  when purchase where contact.opted_in and contact.plan == "paid"
  send email "thanks"
}

workflow b {
  when purchase where contact.opted_in and contact.plan == "free"
  send email "upgrade"
}
"#
);
rule_case!(
    no_burst_when_one_waits_first,
    "burst",
    0,
    &[
        THANKS,
        r#"workflow b {
  when purchase where contact.opted_in
  wait 1d
  if contact.opted_in {
    send email "survey"
  }
}
"#
    ]
    .concat()
);

// unreachable
rule_case!(
    unreachable_after_exit,
    "unreachable",
    1,
    r#"workflow w {
  when purchase
  exit
  tag "never"
}
"#
);
rule_case!(
    unreachable_after_exiting_if,
    "unreachable",
    1,
    r#"workflow w {
  when purchase
  if contact.score > 1 {
    exit
  } else {
    exit
  }
  tag "never"
}
"#
);
rule_case!(
    unreachable_branch_from_entry_filter,
    "unreachable",
    1,
    r#"workflow w {
  when purchase where contact.plan == "paid"
  if contact.plan != "paid" {
    tag "never"
  }
}
"#
);
rule_case!(
    unreachable_nested_condition,
    "unreachable",
    1,
    r#"workflow w {
  when purchase
  if contact.score > 5 {
    if not (contact.score > 5) {
      tag "never"
    }
  }
}
"#
);
rule_case!(
    unreachable_after_wait_is_reachable,
    "unreachable",
    0,
    r#"workflow w {
  when purchase where contact.plan == "paid"
  wait 1d
  if contact.plan != "paid" {
    tag "downgraded"
  }
}
"#
);
rule_case!(
    unreachable_send_after_exit_is_no_type_error,
    "unreachable",
    1,
    r#"workflow w {
  when purchase
  exit
  send sms "never"
}
"#
);
rule_case!(
    unreachable_zero_split_arm,
    "unreachable",
    1,
    r#"workflow w {
  when purchase
  split {
    100% { tag "a" }
    0% { tag "b" }
  }
}
"#
);
rule_case!(
    unreachable_wait_for_the_goal,
    "unreachable",
    1,
    r#"workflow w {
  when email_opened
  goal purchase
  wait for purchase within 7d {
    stage "bought"
  }
}
"#
);
rule_case!(
    reachable_wait_for_a_filtered_goal,
    "unreachable",
    0,
    r#"workflow w {
  when email_opened
  goal purchase where event.amount > 100.0
  wait for purchase within 7d {
    stage "bought"
  }
}
"#
);
rule_case!(
    unreachable_suppressed,
    "unreachable",
    0,
    r#"workflow w {  // nurture:allow(unreachable)
  when purchase
  exit
  tag "never"
}
"#
);

// redundant-condition
rule_case!(
    redundant_from_entry_filter,
    "redundant-condition",
    1,
    r#"workflow w {
  when purchase where contact.opted_in
  if contact.opted_in {
    tag "x"
  }
}
"#
);
rule_case!(
    redundant_conjunct,
    "redundant-condition",
    1,
    r#"workflow w {
  when purchase
  if contact.phone is set {
    if contact.phone is set and contact.score > 1 {
      tag "x"
    }
  }
}
"#
);
rule_case!(
    redundant_not_after_wait,
    "redundant-condition",
    0,
    r#"workflow w {
  when purchase where contact.opted_in
  wait 1d
  if contact.opted_in {
    tag "x"
  }
}
"#
);
rule_case!(
    redundant_trigger_payload_survives_wait,
    "redundant-condition",
    1,
    r#"workflow w {
  when purchase where event.amount > 10.0
  wait 1d
  if trigger.amount > 10.0 {
    tag "x"
  }
}
"#
);
rule_case!(
    redundant_suppressed,
    "redundant-condition",
    0,
    r#"workflow w {
  when purchase where contact.opted_in
  if contact.opted_in {  // nurture:allow(redundant-condition)
    tag "x"
  }
}
"#
);

// no-goal
rule_case!(
    no_goal_missing,
    "no-goal",
    1,
    r#"workflow w {
  when purchase
  tag "x"
}
"#
);
rule_case!(
    no_goal_present,
    "no-goal",
    0,
    r#"workflow w {
  when email_opened
  goal purchase
  tag "x"
}
"#
);
rule_case!(
    no_goal_suppressed,
    "no-goal",
    0,
    r#"// nurture:allow(no-goal)
workflow w {
  when purchase
  tag "x"
}
"#
);

// unbounded-history
rule_case!(
    unbounded_seen,
    "unbounded-history",
    2,
    r#"workflow w {
  when page_visited where not seen(purchase)
  if count(email_opened where event.campaign == "a") > 2 {
    tag "x"
  }
}
"#
);
rule_case!(
    bounded_history,
    "unbounded-history",
    0,
    r#"workflow w {
  when page_visited where not seen(purchase within 30d)
  tag "x"
}
"#
);
rule_case!(
    unbounded_suppressed,
    "unbounded-history",
    0,
    r#"workflow w {
  when page_visited where not seen(purchase)  // nurture:allow(unbounded-history)
  tag "x"
}
"#
);

// trigger-cycle

/// Sets the plan when the score is high: the cases add a second workflow.
const SCORE_UP: &str = r#"workflow up {
  when contact.score > 10
  set contact.plan = "paid"
}
"#;

/// Lowers the score when the plan is paid: a cycle with `SCORE_UP`.
const SCORE_DOWN: &str = r#"
workflow down {
  when contact.plan == "paid"
  set contact.score -= 20
}
"#;

rule_case!(
    cycle_of_two,
    "trigger-cycle",
    1,
    &[SCORE_UP, SCORE_DOWN].concat()
);
rule_case!(
    cycle_through_tags,
    "trigger-cycle",
    1,
    r#"workflow a {
  when "x" in contact.tags
  untag "x"
  tag "y"
}

workflow b {
  when "y" in contact.tags
  tag "x"
}
"#
);
rule_case!(
    no_cycle,
    "trigger-cycle",
    0,
    &[
        SCORE_UP,
        r#"
workflow down {
  when contact.plan == "paid"
  tag "paying"
}
"#
    ]
    .concat()
);
rule_case!(
    cycle_suppressed,
    "trigger-cycle",
    0,
    &["// nurture:allow(trigger-cycle)\n", SCORE_UP, SCORE_DOWN].concat()
);

/// Moves a free plan to a trial: the cases add what follows a trial.
const FREE_TO_TRIAL: &str = r#"workflow becomes_lead {
  when contact.plan == "free"
  set contact.plan = "trial"
}
"#;

rule_case!(
    no_cycle_when_values_cannot_match,
    "trigger-cycle",
    0,
    &[
        FREE_TO_TRIAL,
        "\nworkflow lead_nurture {\n  when contact.plan == \"trial\"\n  set contact.plan = \"paid\"\n}\n"
    ]
    .concat()
);
rule_case!(
    cycle_when_a_value_sets_the_other_off,
    "trigger-cycle",
    1,
    &[
        FREE_TO_TRIAL,
        "\nworkflow back {\n  when contact.plan == \"trial\"\n  set contact.plan = \"free\"\n}\n"
    ]
    .concat()
);

/// Two conditions that cannot both hold: `a` runs while the plan is free
/// (it does not change the plan, and does not wait), and `b` needs it paid,
/// so `a`'s tag cannot start `b`.
const FREE_VIP: &str = r#"workflow a {
  when contact.plan == "free" and contact.score > 10
  tag "vip"
}

workflow b {
  when "vip" in contact.tags and contact.plan == "paid"
  set contact.score += 5
}
"#;

rule_case!(
    no_cycle_when_the_conditions_cannot_both_hold,
    "trigger-cycle",
    0,
    FREE_VIP
);
// With a wait in each, the plans can change before the `tag` and the `set`.
rule_case!(
    a_cycle_when_waits_let_the_plan_change,
    "trigger-cycle",
    1,
    &FREE_VIP
        .replace("  tag \"vip\"", "  wait 1d\n  tag \"vip\"")
        .replace("  set contact.score", "  wait 1d\n  set contact.score")
);

// dead-end-wait
rule_case!(
    dead_end_at_the_end,
    "dead-end-wait",
    1,
    r#"workflow w {
  when purchase
  wait for email_opened within 2d {
    tag "opened"
  }
}
"#
);
rule_case!(
    dead_end_nested_tail,
    "dead-end-wait",
    1,
    r"workflow w {
  when purchase
  if contact.score > 1 {
    wait for email_opened within 2d
  }
}
"
);
rule_case!(
    wait_with_timeout,
    "dead-end-wait",
    0,
    r#"workflow w {
  when purchase
  wait for email_opened within 2d {
    tag "opened"
  } timeout {
    tag "silent"
  }
}
"#
);
rule_case!(
    wait_with_follow_up,
    "dead-end-wait",
    0,
    r#"workflow w {
  when purchase
  wait for email_opened within 2d
  tag "after"
}
"#
);
rule_case!(
    dead_end_suppressed,
    "dead-end-wait",
    0,
    r"workflow w {
  when purchase
  wait for email_opened within 2d  // nurture:allow(dead-end-wait)
}
"
);

// unused-declarations
#[test]
fn unused_declarations() {
    let src = r#"contact {
  email: string @channel(email)
  phone: string? @channel(sms)
  score: int = 0
  nickname: string?  // nurture:allow(unused-declarations)
  legacy_id: int = 0
}
event used {}
event forgotten {}
workflow w {
  when used
  goal used
  set contact.score += 1
  send email "x"  // nurture:allow(consent)
}
"#;
    let (codes, rendered) = lint_text(src, &Config::default());
    let unused: Vec<&String> = codes
        .iter()
        .filter(|c| *c == "unused-declarations")
        .collect();
    // `phone` (sms never sent) and `legacy_id` in one finding for their
    // contact block, `forgotten`; `nickname` is allowed.
    assert_eq!(unused.len(), 2, "{rendered}");
    for name in [
        "the fields `phone` and `legacy_id` are never read or written",
        "event `forgotten`",
    ] {
        assert!(rendered.contains(name), "{name} in {rendered}");
    }
    assert!(!rendered.contains("`nickname`"));
    insta::assert_snapshot!("unused_declarations", rendered);
}

/// Each documented example: the bad one fires its rule, the good one nothing.
/// The examples use a slice of a shared schema, so the schema's unused
/// declarations (and a missing goal, where the example is not about goals)
/// are left out.
#[test]
fn documented_examples_fire_exactly_their_rule() {
    for rule in RULES {
        let noise = |c: &String| c != rule.name && (c == "unused-declarations" || c == "no-goal");
        let (bad, rendered) = lint_text(
            &format!("{EXAMPLE_SCHEMA}\n{}", rule.bad),
            &Config::default(),
        );
        let bad: Vec<String> = bad.into_iter().filter(|c| !noise(c)).collect();
        assert!(
            !bad.is_empty() && bad.iter().all(|c| c == rule.name),
            "{}: bad example gives {bad:?}\n{rendered}",
            rule.name
        );
        let (good, rendered) = lint_text(
            &format!("{EXAMPLE_SCHEMA}\n{}", rule.good),
            &Config::default(),
        );
        let good: Vec<String> = good.into_iter().filter(|c| !noise(c)).collect();
        assert!(
            good.is_empty(),
            "{}: good example gives {good:?}\n{rendered}",
            rule.name
        );
    }
}

#[test]
fn docs_are_generated_from_the_registry() {
    let path = root().join("docs").join("lint-rules.md");
    let generated = lint::docs_markdown();
    if std::env::var_os("NURTURE_BLESS").is_some() {
        std::fs::write(&path, &generated).expect("bless");
    }
    let on_disk = std::fs::read_to_string(&path).unwrap_or_default();
    assert!(
        on_disk == generated,
        "docs/lint-rules.md is out of date: run `NURTURE_BLESS=1 cargo test docs_are_generated`"
    );
}

#[test]
fn levels_from_config() {
    let body = with_schema(
        r#"workflow w {
  when purchase
  send email "x"
}
"#,
    );
    let config = Config::parse(
        r#"[lint]
consent = "error"
no-goal = "allow"
"#,
    )
    .expect("config");
    let mut sources = SourceMap::default();
    sources.add("t.flow", body.as_str());
    let a = nurture::pipeline::analyse(&sources);
    let diags = lint::lint(&a.program, &a.checked.schema, &sources, &config);
    let consent = diags
        .iter()
        .find(|d| d.code == "nurture::lint::consent")
        .expect("consent finding");
    assert!(consent.is_error());
    assert!(!diags.iter().any(|d| d.code == "nurture::lint::no-goal"));
    for (toml, expected) in [
        ("[lint]\nconsnt = \"warn\"\n", "did you mean `consent`?"),
        (
            "[lint]\nconsent = \"loud\"\n",
            "\"allow\", \"warn\" or \"error\"",
        ),
    ] {
        let err = Config::parse(toml).err().unwrap_or_default();
        assert!(err.contains(expected), "{err}");
    }
}

// ------------------------------------------------------------------ the CLI

#[test]
fn lint_examples_is_clean() {
    let o = bin()
        .args(["lint", "--deny", "warnings"])
        .arg(root().join("examples"))
        .output()
        .expect("runs");
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
}

#[test]
fn lint_exit_codes_json_and_config_file() {
    let dir = tempfile::tempdir().expect("tempdir");
    std::fs::write(
        dir.path().join("p.flow"),
        with_schema(
            r#"workflow w {
  when purchase
  goal unsubscribed
  send email "x"
}
"#,
        ),
    )
    .expect("write");
    let run = |args: &[&str]| {
        bin()
            .arg("lint")
            .arg(dir.path())
            .args(args)
            .output()
            .expect("runs")
    };
    let o = run(&[]);
    assert_eq!(
        o.status.code(),
        Some(0),
        "warnings alone pass: {}",
        stderr(&o)
    );
    let o = run(&["--deny", "warnings"]);
    assert_eq!(o.status.code(), Some(1));
    let o = run(&["--format", "json"]);
    let lines: Vec<serde_json::Value> = stdout(&o)
        .lines()
        .map(|l| serde_json::from_str(l).expect("json"))
        .collect();
    let consent = lines
        .iter()
        .find(|v| v["code"] == "nurture::lint::consent")
        .expect("consent");
    assert_eq!(consent["severity"], "warning");
    assert_eq!(consent["line"], 22);
    std::fs::write(
        dir.path().join("nurture.toml"),
        r#"[lint]
consent = "error"
"#,
    )
    .expect("write");
    let o = run(&[]);
    assert_eq!(
        o.status.code(),
        Some(1),
        "an error-level rule fails the run"
    );
    std::fs::write(
        dir.path().join("nurture.toml"),
        r#"[lint]
consent = "allow"
unused-declarations = "allow"
"#,
    )
    .expect("write");
    let o = run(&["--deny", "warnings"]);
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    std::fs::write(
        dir.path().join("nurture.toml"),
        r#"[lint]
burts = "allow"
"#,
    )
    .expect("write");
    let o = run(&[]);
    assert_eq!(o.status.code(), Some(2));
    assert!(
        stderr(&o).contains("unknown rule `burts`"),
        "{}",
        stderr(&o)
    );
}

#[test]
fn lint_reports_type_errors_first() {
    let dir = tempfile::tempdir().expect("tempdir");
    let p = dir.path().join("p.flow");
    std::fs::write(
        &p,
        with_schema(
            r"workflow w {
  when purchse
}
",
        ),
    )
    .expect("write");
    let o = bin().arg("lint").arg(&p).output().expect("runs");
    assert_eq!(o.status.code(), Some(1));
    assert!(stderr(&o).contains("unknown event `purchse`"));
    assert!(stderr(&o).contains("fix them to run the lint rules"));
}

#[test]
fn list_rules_and_explain() {
    let o = bin().args(["lint", "--list-rules"]).output().expect("runs");
    let out = stdout(&o);
    for r in RULES {
        assert!(out.contains(r.name), "{} missing from {out}", r.name);
    }
    let o = bin()
        .args(["lint", "--explain", "consent"])
        .output()
        .expect("runs");
    let out = stdout(&o);
    assert!(
        out.contains("Why it matters")
            && out.contains("Use instead")
            && out.contains("send email \"upsell\""),
        "{out}"
    );
    let o = bin()
        .args(["lint", "--explain", "consnt"])
        .output()
        .expect("runs");
    assert_eq!(o.status.code(), Some(2));
    assert!(stderr(&o).contains("did you mean `consent`?"));
}

/// Each rule's code is `nurture::lint::` and its name, as the docs say.
#[test]
fn every_rule_code_is_its_name_under_nurture_lint() {
    for r in nurture::lint::RULES {
        assert_eq!(r.code, format!("nurture::lint::{}", r.name));
    }
}

/// The lint rules found in `body` (a workflow) over the example schema.
fn lint_body(body: &str) -> (Vec<String>, String) {
    lint_text(&format!("{EXAMPLE_SCHEMA}\n{body}"), &Config::default())
}

/// Facts are kept by what they read, not by their text: a payload field
/// named `known` (its name contains "now") keeps its facts across a wait,
/// as one named `flag` does.
#[test]
fn trigger_facts_survive_a_wait_whatever_the_field_is_called() {
    for field in ["known", "flag", "nowhere"] {
        let (codes, rendered) = lint_body(&format!(
            r#"event ping {{ {field}: bool }}

workflow w {{
  when ping where event.{field}
  wait 1d
  if not trigger.{field} {{
    tag "never"
  }}
}}
"#
        ));
        assert!(
            codes.iter().any(|c| c == "unreachable"),
            "`{field}`: expected the branch to be reported unreachable, got {codes:?}\n{rendered}"
        );
    }
}

/// Facts about the contact still end at a wait, whatever they are called.
#[test]
fn contact_facts_end_at_a_wait() {
    let (codes, rendered) = lint_body(
        r#"workflow w {
  when purchase where contact.opted_in
  wait 1d
  if not contact.opted_in {
    tag "opted out meanwhile"
  }
}
"#,
    );
    assert!(!codes.iter().any(|c| c == "unreachable"), "{rendered}");
}

/// `convert` ends the journey: what follows it is unreachable, and a
/// workflow with a `convert` has a way to convert (no `no-goal`).
#[test]
fn convert_ends_the_journey_for_the_lints() {
    let body = r#"workflow w {
  when purchase
  stage "bought"
  convert
  tag "never"
}
"#;
    let (codes, text) = only("unreachable", body);
    assert_eq!(codes, ["nurture::lint::unreachable"], "{text}");
    assert!(
        text.contains("unreachable statements after `convert`"),
        "{text}"
    );
    let (codes, _) = only("no-goal", body);
    assert!(codes.is_empty(), "{codes:?}");
    let formatted = nurture::fmt::format_source(&with_schema(body)).expect("formats");
    assert!(formatted.contains("\n  convert\n"), "{formatted}");
}

// unfiltered-schedule
rule_case!(
    unfiltered_schedule_beside_others,
    "unfiltered-schedule",
    1,
    r#"workflow a {
  when purchase
  goal purchase
  tag "a"
}

workflow digest {
  when every monday at 09:00
  goal purchase
  tag "weekly"
}
"#
);
rule_case!(
    unfiltered_schedule_alone_or_filtered,
    "unfiltered-schedule",
    0,
    r#"workflow digest {
  when every day at 09:00 where contact.opted_in
  goal purchase
  tag "daily"
}

workflow alone {
  when every month on 1 at 09:00 where contact.score > 10
  goal purchase
  tag "monthly"
}
"#
);

// cap-below-path
rule_case!(
    cap_below_path_on_a_timeout_path,
    "cap-below-path",
    1,
    r#"limit email to 2 per 1w

workflow w {
  when purchase where contact.opted_in
  goal purchase
  send email "a"
  wait for email_opened within 2d {
    tag "opened"
  } timeout {
    if contact.opted_in {
      send email "b"
    }
  }
  wait 1d
  if contact.opted_in {
    send email "c"
  }
}
"#
);
rule_case!(
    cap_below_path_spaced_or_unknown_waits,
    "cap-below-path",
    0,
    r#"limit email to 1 per 1d

workflow spaced {
  when purchase where contact.opted_in
  goal purchase
  send email "a"
  wait 2d
  if contact.opted_in {
    send email "b"
  }
  wait until monday
  if contact.opted_in {
    send email "c"
  }
}

workflow one_each {
  when email_opened where contact.opted_in
  goal purchase
  split {
    50% { send email "x" }
    50% { send email "y" }
  }
}
"#
);

// unnamed-wait
rule_case!(
    unnamed_long_wait,
    "unnamed-wait",
    2,
    r#"workflow w {  // nurture:allow(no-goal)
  when purchase
  wait 1h
  tag "a"
  wait for email_opened within 2d {
    tag "b"
  }
}
"#
);
rule_case!(
    named_waits_are_fine,
    "unnamed-wait",
    0,
    r#"workflow w {  // nurture:allow(no-goal)
  when purchase
  wait 1h as first
  tag "a"
  wait for email_opened within 2d as opened {
    tag "b"
  }
}
"#
);
rule_case!(
    short_waits_only_need_no_names,
    "unnamed-wait",
    0,
    r#"workflow w {  // nurture:allow(no-goal)
  when purchase
  wait 1h
  tag "a"
  wait until 09:00
  tag "b"
}
"#
);
