//! The binary as a person runs it.

use crate::helpers::{bin, root, stderr, stdout, with_schema};

#[test]
fn check_examples_exits_zero() {
    let o = bin()
        .arg("check")
        .arg(root().join("examples"))
        .output()
        .expect("runs");
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    assert!(stderr(&o).contains("no problems"));
}

#[test]
fn five_unrelated_errors_are_reported_exactly() {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("five.flow");
    let body = "workflow five {
  when purchse
  send sms \"hi\"
  if contact.plan == \"gold\" { tag \"x\" }
  set contact.score = \"high\"
  wait 0s
}
";
    std::fs::write(&path, with_schema(body)).expect("write");
    let o = bin()
        .args(["check", "--format", "json"])
        .arg(&path)
        .output()
        .expect("runs");
    assert_eq!(o.status.code(), Some(1));
    let lines: Vec<serde_json::Value> = stdout(&o)
        .lines()
        .map(|l| serde_json::from_str(l).expect("json"))
        .collect();
    let got: Vec<(u64, &str)> = lines
        .iter()
        .map(|v| {
            (
                v["line"].as_u64().unwrap_or(0),
                v["code"].as_str().unwrap_or(""),
            )
        })
        .collect();
    assert_eq!(
        got,
        [
            (20, "nurture::type::unknown-event"),
            (21, "nurture::type::channel-unset"),
            (22, "nurture::type::enum-member"),
            (23, "nurture::type::bad-assign"),
            (24, "nurture::type::non-positive-duration"),
        ]
    );
    for v in &lines {
        for key in ["file", "line", "column", "code", "severity", "message"] {
            assert!(v.get(key).is_some(), "missing {key} in {v}");
        }
        assert_eq!(v["severity"], "error");
    }
}

#[test]
fn check_directory_reads_all_files_as_one_program() {
    let dir = tempfile::tempdir().expect("tempdir");
    std::fs::write(
        dir.path().join("a_schema.flow"),
        r"contact { email: string @channel(email) }
event e {}
",
    )
    .expect("write");
    std::fs::write(
        dir.path().join("b_flow.flow"),
        "workflow w { when e send email \"x\" }\n",
    )
    .expect("write");
    std::fs::write(dir.path().join("c_bad.flow"), "workflow v { when f }\n").expect("write");
    let o = bin().arg("check").arg(dir.path()).output().expect("runs");
    assert_eq!(o.status.code(), Some(1));
    let err = stderr(&o);
    assert!(err.contains("c_bad.flow:1:19"), "{err}");
    assert!(err.contains("unknown event `f`"), "{err}");
}

#[test]
fn check_missing_path_is_a_clear_error() {
    let o = bin()
        .args(["check", "/nonexistent/x.flow"])
        .output()
        .expect("runs");
    assert_eq!(o.status.code(), Some(2));
    assert!(stderr(&o).contains("cannot read `/nonexistent/x.flow`"));
}

#[test]
fn help_explains_commands() {
    let o = bin().arg("--help").output().expect("runs");
    let out = stdout(&o);
    assert!(out.contains("check") && out.contains("run"), "{out}");
    let o = bin().args(["run", "--help"]).output().expect("runs");
    let out = stdout(&o);
    for flag in [
        "--events",
        "--contacts",
        "--until",
        "--drain",
        "--trace",
        "--on-error",
        "--rejects",
    ] {
        assert!(out.contains(flag), "{flag} missing from {out}");
    }
}

/// Every file the README's commands name exists, and its first command
/// runs an example that exists.
#[test]
fn the_readme_names_only_files_that_exist() {
    let readme = std::fs::read_to_string(root().join("README.md")).expect("README");
    let mut named = 0;
    for word in readme.split_whitespace() {
        let word = word.trim_matches(|c: char| "`,():".contains(c));
        if word.starts_with("examples/") || word.starts_with("docs/") {
            assert!(
                root().join(word).exists(),
                "README names `{word}`, which does not exist"
            );
            named += 1;
        }
    }
    assert!(named >= 5, "the README's paths were found ({named})");
    assert!(
        readme.contains("cargo install --path ."),
        "the README says how to install"
    );
}

/// A `.flow` file that starts with a byte-order mark checks as without it;
/// one that is not UTF-8 is refused with the position of the bad byte.
#[test]
fn flow_files_with_a_bom_or_bad_bytes() {
    let dir = tempfile::tempdir().expect("tempdir");
    let bom = dir.path().join("bom.flow");
    std::fs::write(&bom, "\u{feff}contact {\n  n: int = 0\n}\n").expect("write");
    let o = bin().arg("check").arg(&bom).output().expect("runs");
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    let bad = dir.path().join("bad.flow");
    std::fs::write(&bad, b"contact {\n  n: int = 0 // caf\xe9\n}\n").expect("write");
    let o = bin().arg("check").arg(&bad).output().expect("runs");
    assert_eq!(o.status.code(), Some(2), "{}", stderr(&o));
    assert!(
        stderr(&o).contains("invalid byte at line 2, column 20 (byte 30)"),
        "{}",
        stderr(&o)
    );
}

/// A duration too large is one error, not two.
#[test]
fn a_duration_too_large_is_one_error() {
    let (diags, _) = crate::helpers::diagnostics(&with_schema(
        "workflow w {\n  when contact_created\n  wait 999999999w\n}\n",
    ));
    let codes: Vec<&str> = diags.iter().map(|d| d.code.as_str()).collect();
    assert_eq!(codes, ["nurture::syntax::duration-too-large"]);
}

/// `lint --help` shows PATH as required (outside `--list-rules` and `--explain`).
#[test]
fn lint_help_shows_path_as_required() {
    let o = bin().args(["lint", "--help"]).output().expect("runs");
    let help = String::from_utf8_lossy(&o.stdout);
    assert!(
        help.contains("Usage: nurture lint [OPTIONS] PATH\n"),
        "{help}"
    );
    assert!(help.contains("nurture lint --list-rules"), "{help}");
}

/// JSON diagnostics carry where the span ends: `end_line` and
/// `end_column` (of its last character).
#[test]
fn json_diagnostics_carry_their_end() {
    let dir = tempfile::tempdir().expect("tempdir");
    let p = dir.path().join("p.flow");
    std::fs::write(
        &p,
        with_schema(
            "workflow w {\n  when contact_created\n  if contact.scroe > 3 { tag \"x\" }\n}\n",
        ),
    )
    .expect("write");
    let o = bin()
        .args(["check", "--format", "json"])
        .arg(&p)
        .output()
        .expect("runs");
    let out = stdout(&o);
    let v: serde_json::Value =
        serde_json::from_str(out.lines().next().unwrap_or("")).expect("json");
    let d = v;
    assert_eq!(d["line"], d["end_line"], "{out}");
    let (start, end) = (d["column"].as_u64(), d["end_column"].as_u64());
    assert_eq!(
        end.zip(start).map(|(e, s)| e - s),
        Some(4),
        "`scroe` is 5 characters: {out}"
    );
}
