//! `nurture fmt`: fixed points, idempotence, parse equality, comments kept.

use crate::helpers::{bin, root, stderr, stdout};
use nurture::fmt::format_source;
use proptest::prelude::*;

fn parse(text: &str) -> nurture::ast::Program {
    let mut s = nurture::source::SourceMap::default();
    s.add("t.flow", text);
    let (p, diags) = nurture::syntax::parse_program(&s);
    assert!(diags.is_empty(), "{diags:#?}\n{text}");
    p
}

fn examples() -> Vec<(String, String)> {
    let mut out = Vec::new();
    for e in std::fs::read_dir(root().join("examples")).expect("examples") {
        let p = e.expect("entry").path();
        if p.extension().is_some_and(|x| x == "flow") {
            out.push((
                p.display().to_string(),
                std::fs::read_to_string(&p).expect("read"),
            ));
        }
    }
    out.sort();
    out
}

/// The promises of the formatter for one text.
fn check_text(text: &str) {
    let once = format_source(text).expect("formats");
    let twice = format_source(&once).expect("formats again");
    assert_eq!(once, twice, "not idempotent:\n{once}");
    assert_eq!(parse(text), parse(&once), "meaning changed:\n{once}");
}

#[test]
fn every_example_is_a_fixed_point() {
    for (name, text) in examples() {
        let formatted = format_source(&text).expect("formats");
        assert_eq!(
            formatted, text,
            "{name} is not formatted; run `nurture fmt examples`"
        );
    }
}

#[test]
fn examples_are_idempotent_and_keep_their_meaning() {
    for (_, text) in examples() {
        check_text(&text);
        // And from a scrambled layout: everything on as few lines as possible.
        let squashed: String = text
            .lines()
            .filter(|l| !l.trim_start().starts_with("//"))
            .map(|l| l.split("//").next().unwrap_or("").trim())
            .collect::<Vec<_>>()
            .join(" ");
        check_text(&squashed);
    }
}

#[test]
fn comments_stay_where_they_were() {
    let src = r#"// header

contact { // the schema
  // the address
  email: string   @channel(email)   // trailing
  score: int=0
}
event e {a:int}
// before the workflow
workflow w {
  when e   // why
  // first step
  send email "x"


  wait 2d // pause
  if contact.score>1 {
    // inside
    tag "a"
    // at the end of the block
  } else {
    exit
  }
  // before the brace
}
// at the end
"#;
    let out = format_source(src).expect("formats");
    insta::assert_snapshot!("fmt_comments", out);
    for c in [
        "// header",
        "// the schema",
        "// the address",
        "// trailing",
        "// before the workflow",
        "// why",
        "// first step",
        "// pause",
        "// inside",
        "// at the end of the block",
        "// before the brace",
        "// at the end",
    ] {
        let n = out.lines().filter(|l| l.trim_end().ends_with(c)).count();
        assert_eq!(n, 1, "{c} in\n{out}");
    }
    check_text(src);
}

#[test]
fn fmt_check_names_the_files_that_would_change() {
    let dir = tempfile::tempdir().expect("tempdir");
    let ugly = dir.path().join("ugly.flow");
    let fine = dir.path().join("fine.flow");
    std::fs::write(&ugly, "contact {email:string}\n").expect("write");
    std::fs::write(&fine, "event e {}\n").expect("write");
    let o = bin()
        .args(["fmt", "--check"])
        .arg(dir.path())
        .output()
        .expect("runs");
    assert_eq!(o.status.code(), Some(1), "{}", stderr(&o));
    assert_eq!(stdout(&o).trim(), ugly.display().to_string());
    assert_eq!(
        std::fs::read_to_string(&ugly).expect("read"),
        "contact {email:string}\n",
        "--check wrote"
    );
    let o = bin().arg("fmt").arg(dir.path()).output().expect("runs");
    assert_eq!(o.status.code(), Some(0));
    assert_eq!(
        std::fs::read_to_string(&ugly).expect("read"),
        r"contact {
  email: string
}
"
    );
    let o = bin()
        .args(["fmt", "--check"])
        .arg(dir.path())
        .output()
        .expect("runs");
    assert_eq!(o.status.code(), Some(0));
}

#[test]
fn fmt_refuses_files_with_syntax_errors() {
    let dir = tempfile::tempdir().expect("tempdir");
    let bad = dir.path().join("bad.flow");
    std::fs::write(&bad, "workflow w {\n").expect("write");
    let o = bin().arg("fmt").arg(&bad).output().expect("runs");
    assert_eq!(o.status.code(), Some(1));
    assert!(stderr(&o).contains("was not formatted"));
    assert_eq!(
        std::fs::read_to_string(&bad).expect("read"),
        "workflow w {\n"
    );
}

// ------------------------------------------------------------------ generated programs

fn expr() -> impl Strategy<Value = String> {
    let leaf = prop_oneof![
        (0i64..1000).prop_map(|n| n.to_string()),
        (0u32..1000).prop_map(|n| format!("{}.{}", n / 10, n % 10)),
        prop::sample::select(vec![
            "contact.score",
            "contact.email",
            "trigger.x",
            "now",
            "true",
            "\"a b\"",
            "\"q\\\"t\"",
            "2d 3h",
            "@2026-03-01T09:00:00Z",
            "[1, 2]",
            "[]"
        ])
        .prop_map(str::to_string),
        prop::sample::select(vec![
            "seen(e)",
            "count(e where event.a > 1 within 3d)",
            "len(contact.email)",
            "lower(\"X\")"
        ])
        .prop_map(str::to_string),
    ];
    leaf.prop_recursive(4, 24, 2, |inner| {
        prop_oneof![
            (
                inner.clone(),
                prop::sample::select(vec![
                    "or", "and", "==", "!=", "<", "<=", ">", ">=", "in", "+", "-", "*", "/"
                ]),
                inner.clone()
            )
                .prop_map(|(a, op, b)| format!("{a} {op} {b}")),
            inner.clone().prop_map(|a| format!("({a})")),
            inner.clone().prop_map(|a| format!("not {a}")),
            inner.clone().prop_map(|a| format!("-{a}")),
            inner.prop_map(|a| format!("({a}) is not set")),
        ]
    })
}

fn stmts(depth: u32) -> BoxedStrategy<Vec<String>> {
    let simple = prop_oneof![
        expr().prop_map(|e| format!("tag {e}")),
        expr().prop_map(|e| format!("set contact.score += {e}")),
        expr().prop_map(|e| format!("send email \"t\" with {{ a: {e}, b: 1 }}")),
        expr().prop_map(|e| format!("notify \"ops\" \"x {{{e}}} \\{{y\\}}\"")),
        Just("wait 1d 12h".to_string()),
        Just("webhook \"w\"".to_string()),
        Just("add to audience \"a\"".to_string()),
        Just("stage \"s\" // a comment\n".to_string()),
        Just("exit".to_string()),
    ];
    if depth == 0 {
        return prop::collection::vec(simple, 0..4).boxed();
    }
    let nested = prop_oneof![
        (expr(), stmts(depth - 1), stmts(depth - 1)).prop_map(|(c, a, b)| format!(
            "if {c} {{ {} }} else {{ {} }}",
            a.join("\n"),
            b.join("\n")
        )),
        (expr(), stmts(depth - 1), stmts(depth - 1)).prop_map(|(c, a, b)| format!(
            r"wait for e within 2d where {c} {{
{}
}} timeout {{ {} }}",
            a.join("\n"),
            b.join("\n")
        )),
        (stmts(depth - 1), stmts(depth - 1)).prop_map(|(a, b)| format!(
            "split {{ 30% {{ {} }} 70% {{ {} }} }}",
            a.join(" "),
            b.join(" ")
        )),
    ];
    prop::collection::vec(prop_oneof![3 => simple, 1 => nested], 0..5).boxed()
}

fn program() -> impl Strategy<Value = String> {
    (expr(), stmts(2), any::<bool>()).prop_map(|(cond, body, blank)| {
        let sep = if blank { "\n\n" } else { "\n" };
        format!(
            r"// generated
contact {{ email: string @channel(email)
 score: int = 0 }}
event e {{ a: int }}
workflow w {{
  when {cond}
  goal e where event.a > 0
  reenter after 30d
{}
}}
",
            body.join(sep)
        )
    })
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(200))]

    #[test]
    fn generated_programs_format_idempotently_and_keep_their_meaning(src in program()) {
        check_text(&src);
    }
}

/// A workflow's fingerprint ignores layout and comments, and changes with
/// any statement.
#[test]
fn workflow_fingerprints_ignore_layout_and_comments() {
    use nurture::fmt::fingerprint;
    let a = "workflow w {\n  when purchase\n  send email \"x\"\n  wait 1d\n}";
    let b = "workflow w { // the same\n    when purchase   send email \"x\"\n\n  // a note\n  wait 1d }";
    let c = "workflow w {\n  when purchase\n  send email \"y\"\n  wait 1d\n}";
    assert_eq!(fingerprint(a), fingerprint(b));
    assert_ne!(fingerprint(a), fingerprint(c));
    assert_eq!(fingerprint(a).len(), 64);
    let sources =
        nurture::source::load_sources(&crate::helpers::root().join("examples")).expect("examples");
    let a = nurture::pipeline::analyse(&sources);
    let prints = nurture::fmt::workflow_fingerprints(&a.program, &sources);
    assert_eq!(prints.len(), 14);
    assert!(prints.iter().any(|(n, _)| n == "lead_nurturing"));
}

/// The calendar syntax and test blocks format to one layout and keep their
/// meaning.
#[test]
fn calendar_syntax_and_tests_format() {
    let text = r#"timezone   "Europe/Madrid"
contact { email: string @channel(email)  zone: string? @timezone
  opted_in: bool = false @consent(email)  due: datetime?  delay: duration = 90m }
event ping {}
quiet hours 21:00 to 8:00 for email
limit email to 2 per 24h
workflow w { when every monday at 9:05 where contact.opted_in
  wait until 09:00
  wait until friday
  wait until sunday at 18:30
  wait until contact.due
  wait contact.delay
  convert }
workflow d { when at contact.due - 3d
  send email "x" }
test "t" { at @2026-03-02T09:00:00Z
  contact ana { email: "a@x.com", opted_in: true, delay: 3h }
  expect ana: send email "x" at @2026-03-02T09:00:00Z
  expect ana: w converted }
"#;
    check_text(text);
    let once = format_source(text).expect("formats");
    for line in [
        "timezone \"Europe/Madrid\"",
        "  zone: string? @timezone",
        "quiet hours 21:00 to 08:00 for email",
        "limit email to 2 per 1d",
        "  when every monday at 09:05 where contact.opted_in",
        "  wait until sunday at 18:30",
        "  wait contact.delay",
        "  when at contact.due - 3d",
        "  expect ana: send email \"x\" at @2026-03-02T09:00:00Z",
    ] {
        assert!(once.lines().any(|l| l == line), "no `{line}` in:\n{once}");
    }
}

/// One blank line is kept where the source had blank lines between fields
/// or statements (as rustfmt does); more become one; none stays none.
#[test]
fn blank_lines_between_fields_and_statements_are_kept_once() {
    let src = "contact {\n  email: string @channel(email)\n\n\n  score: int = 0\n  opted_in: bool = true @consent(email)\n}\n\nworkflow w {\n  when contact_created\n\n  send email \"a\"\n\n\n  send email \"b\"\n  tag \"c\"\n}\n";
    let want = "contact {\n  email: string @channel(email)\n\n  score: int = 0\n  opted_in: bool = true @consent(email)\n}\n\nworkflow w {\n  when contact_created\n\n  send email \"a\"\n\n  send email \"b\"\n  tag \"c\"\n}\n";
    let got = format_source(src).expect("formats");
    assert_eq!(got, want);
    assert_eq!(format_source(&got).expect("formats"), got, "idempotent");
}
