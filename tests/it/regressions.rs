//! Inputs that once broke nurture (`tests/regressions/`): each gives a
//! clear diagnostic or a clean result through every command, never a panic
//! or a stack overflow.

use crate::helpers::{bin, root, stderr};
use std::path::PathBuf;

fn inputs() -> Vec<PathBuf> {
    let mut files: Vec<PathBuf> = std::fs::read_dir(root().join("tests").join("regressions"))
        .expect("tests/regressions")
        .map(|e| e.expect("entry").path())
        .filter(|p| p.extension().is_some_and(|x| x == "flow"))
        .collect();
    files.sort();
    files
}

/// The code every command must report for a file (None: no error).
fn expected(file: &str) -> Option<&'static str> {
    if file.starts_with("stack-overflow") {
        Some("nurture::syntax::nested-too-deeply")
    } else if file.starts_with("panic-miette") {
        Some("nurture::syntax::unexpected-token")
    } else {
        None
    }
}

#[test]
fn every_regression_input_is_handled_by_every_command() {
    let files = inputs();
    assert!(files.len() >= 8, "the inputs are there: {files:?}");
    let empty = tempfile::NamedTempFile::new().expect("temp");
    for f in &files {
        let name = f.file_name().and_then(|n| n.to_str()).unwrap_or("");
        let events = empty.path().to_str().unwrap_or("");
        for args in [
            vec!["check"],
            vec!["lint"],
            vec!["fmt", "--check"],
            vec!["run", "--events", events],
        ] {
            let o = bin()
                .args(&args[..1])
                .arg(f)
                .args(&args[1..])
                .output()
                .expect("runs");
            let err = stderr(&o);
            let code = o.status.code();
            assert!(
                matches!(code, Some(0..=2)),
                "{name} {args:?}: exit {code:?} (a crash)\n{err}"
            );
            assert!(!err.contains("panicked"), "{name} {args:?}: {err}");
            let out = format!("{}{err}", String::from_utf8_lossy(&o.stdout));
            match expected(name) {
                Some(c) => assert!(out.contains(c), "{name} {args:?}: expected {c}\n{out}"),
                None => assert!(
                    args[0] == "fmt" || code == Some(0),
                    "{name} {args:?}: exit {code:?}\n{out}"
                ),
            }
        }
    }
}

/// The limits are documented numbers, and the error points at the place
/// where the limit is passed, in the REPL's expressions too.
#[test]
fn nesting_errors_point_at_the_limit() {
    let deep = format!("{}1{}", "(".repeat(150), ")".repeat(150));
    let Err(d) = nurture::syntax::parse_expr(0, &deep) else {
        panic!("accepted 150 nested parentheses");
    };
    assert_eq!(d.code, "nurture::syntax::nested-too-deeply");
    assert_eq!(d.span.start as usize, nurture::syntax::MAX_NESTING);
    let chain = format!("1{}", " + 1".repeat(300));
    let Err(d) = nurture::syntax::parse_expr(0, &chain) else {
        panic!("accepted a chain of 300 additions");
    };
    assert_eq!(d.code, "nurture::syntax::nested-too-deeply");
    let fine = format!("1{}", " + 1".repeat(150));
    assert!(nurture::syntax::parse_expr(0, &fine).is_ok());
    let nots = format!("{}true", "not ".repeat(100_000));
    assert!(nurture::syntax::parse_expr(0, &nots).is_err());
}
