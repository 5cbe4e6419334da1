//! Linting: marketing-aware rules over a checked program.
//!
//! Each rule lives in `lint/rules/<name>.rs` with its name, default level and
//! documentation (what it does, why it matters, a bad and a good example);
//! [`RULES`] is the one registry. A finding is silenced by a comment
//! `// nurture:allow(rule)` on its line, or on the workflow's first line or
//! the line above it. Levels can be changed in a `nurture.toml` beside the
//! program:
//!
//! ```toml
//! [lint]
//! no-goal = "allow"
//! consent = "error"
//! ```

mod rules;
pub mod walk;

use crate::ast::Program;
use crate::check::Schema;
use crate::diagnostic::{Code, Diagnostic, Severity};
use crate::source::{SourceMap, Span};
use std::collections::BTreeMap;
use std::fmt::Write as _;

/// How a rule's findings are reported.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Level {
    Allow,
    Warn,
    Error,
}

impl Level {
    pub fn as_str(self) -> &'static str {
        match self {
            Level::Allow => "allow",
            Level::Warn => "warn",
            Level::Error => "error",
        }
    }

    fn parse(s: &str) -> Option<Level> {
        match s {
            "allow" => Some(Level::Allow),
            "warn" | "warning" => Some(Level::Warn),
            "error" | "deny" => Some(Level::Error),
            _ => None,
        }
    }
}

/// What a rule sees.
pub struct Ctx<'a> {
    pub program: &'a Program,
    pub schema: &'a Schema,
    pub sources: &'a SourceMap,
}

impl Ctx<'_> {
    /// Whether a `// nurture:allow(rule)` comment covers `span`: for rules
    /// that group several places in one finding.
    pub fn allowed(&self, span: Span, rule: &str) -> bool {
        let probe = Diagnostic::warning(Code::Lint(""), span, "");
        suppressed(&probe, rule, self.program, self.sources)
    }
}

/// One lint rule and its documentation.
pub struct Rule {
    /// Kebab-case name, used in suppressions and `nurture.toml`.
    pub name: &'static str,
    /// `nurture::lint::` and the name.
    pub code: &'static str,
    pub default: Level,
    /// One line: what the rule flags.
    pub summary: &'static str,
    /// Why it matters.
    pub why: &'static str,
    /// A workflow (over [`EXAMPLE_SCHEMA`]) the rule flags.
    pub bad: &'static str,
    /// The same workflow fixed.
    pub good: &'static str,
    pub check: fn(&Ctx) -> Vec<Diagnostic>,
}

impl Rule {
    pub fn code(&self) -> Code {
        Code::Lint(self.code)
    }

    /// A finding of this rule (its severity is set from the rule's level).
    pub fn finding(&self, span: Span, message: impl Into<String>) -> Diagnostic {
        Diagnostic::warning(self.code(), span, message)
    }
}

pub use rules::RULES;

/// The schema the rules' examples are written against.
pub const EXAMPLE_SCHEMA: &str = r#"contact {
  email: string @channel(email)
  phone: string? @channel(sms)
  opted_in: bool = false @consent(email, sms)
  score: int = 0
  tags: set<string>
  plan: "free" | "paid" = "free"
}

event email_opened { campaign: string }
event purchase { amount: float }
event unsubscribed {}
"#;

pub fn rule(name: &str) -> Option<&'static Rule> {
    RULES.iter().find(|r| r.name == name)
}

/// Rule levels, from the defaults and an optional `nurture.toml`.
#[derive(Clone, Debug, Default)]
pub struct Config {
    levels: BTreeMap<String, Level>,
}

impl Config {
    pub fn level(&self, rule: &Rule) -> Level {
        self.levels.get(rule.name).copied().unwrap_or(rule.default)
    }

    /// Parses the `[lint]` table of a `nurture.toml`.
    pub fn parse(text: &str) -> Result<Config, String> {
        let value: toml::Table = text
            .parse()
            .map_err(|e: toml::de::Error| e.message().to_string())?;
        let mut config = Config::default();
        let Some(lint) = value.get("lint") else {
            return Ok(config);
        };
        let table = lint.as_table().ok_or("`lint` must be a table: `[lint]`")?;
        for (name, level) in table {
            if rule(name).is_none() {
                let help = crate::suggest::help(name, RULES.iter().map(|r| r.name), "rule");
                return Err(format!("unknown rule `{name}` in [lint]; {help}"));
            }
            let level = level.as_str().and_then(Level::parse).ok_or_else(|| {
                format!("the level of `{name}` must be \"allow\", \"warn\" or \"error\"")
            })?;
            config.levels.insert(name.clone(), level);
        }
        Ok(config)
    }
}

/// Runs every rule, applies levels and suppressions; findings in source order.
pub fn lint(
    program: &Program,
    schema: &Schema,
    sources: &SourceMap,
    config: &Config,
) -> Vec<Diagnostic> {
    let ctx = Ctx {
        program,
        schema,
        sources,
    };
    let mut out = Vec::new();
    for rule in RULES {
        let level = config.level(rule);
        if level == Level::Allow {
            continue;
        }
        for mut d in (rule.check)(&ctx) {
            if suppressed(&d, rule.name, program, sources) {
                continue;
            }
            d.severity = if level == Level::Error {
                Severity::Error
            } else {
                Severity::Warning
            };
            // The suppression comment has a line of its own, so it is
            // never wrapped and can be copied whole.
            let why = format!(
                "`nurture lint --explain {}` says why; to silence it, add\n`// nurture:allow({})`",
                rule.name, rule.name
            );
            d.help = Some(match d.help.take() {
                Some(h) => format!("{h}\n{why}"),
                None => why,
            });
            out.push(d);
        }
    }
    crate::diagnostic::sort(&mut out);
    out
}

/// Whether a `// nurture:allow(rule)` comment covers the finding.
fn suppressed(d: &Diagnostic, rule: &str, program: &Program, sources: &SourceMap) -> bool {
    let Some(file) = sources.files.get(d.span.file as usize) else {
        return false;
    };
    // `line` is 0-based here.
    let allows = |line: usize| file.line(line + 1).is_some_and(|l| allows_rule(l, rule));
    let (line, _) = file.line_col(d.span.start as usize);
    if allows(line - 1) {
        return true;
    }
    program.workflows().any(|w| {
        w.span.file == d.span.file
            && w.span.start <= d.span.start
            && d.span.start <= w.span.end
            && {
                let (wl, _) = file.line_col(w.span.start as usize);
                allows(wl - 1) || (wl >= 2 && allows(wl - 2))
            }
    })
}

/// Whether a line has `nurture:allow(...)` naming `rule`.
fn allows_rule(line: &str, rule: &str) -> bool {
    let Some(i) = line.find("nurture:allow(") else {
        return false;
    };
    let rest = &line[i + "nurture:allow(".len()..];
    let inside = rest.split(')').next().unwrap_or("");
    inside.split(',').any(|r| r.trim() == rule)
}

/// `nurture lint --list-rules`.
pub fn list() -> String {
    let mut out = String::new();
    for r in RULES {
        let _ = writeln!(
            out,
            "{:<22} {:<6} {}",
            r.name,
            r.default.as_str(),
            r.summary
        );
    }
    out
}

/// `nurture lint --explain RULE`.
pub fn explain(r: &Rule) -> String {
    format!(
        "{} ({}, default level: {})\n\nWhat it does: {}\n\nWhy it matters: {}\n\nExample:\n\n{}\nUse instead:\n\n{}",
        r.name,
        r.code(),
        r.default.as_str(),
        r.summary,
        r.why,
        indent(r.bad),
        indent(r.good)
    )
}

fn indent(code: &str) -> String {
    code.lines().map(|l| format!("    {l}\n")).collect()
}

/// The text of `docs/lint-rules.md`, generated from the registry.
pub fn docs_markdown() -> String {
    let mut out = String::from(
        "# Lint rules\n\n<!-- Generated from the rule registry (src/lint/rules); a test keeps it in step. -->\n\n\
         `nurture lint PATH` checks the program, then runs these rules. Findings are warnings\n\
         unless a rule's level is `error`; `--deny warnings` makes warnings fail the run (exit 1).\n\
         `--format json` prints one object per finding, as `nurture check` does.\n\n\
         A finding is silenced by a comment `// nurture:allow(rule)` (several: `allow(a, b)`) on its\n\
         line, or on the workflow's first line or the line above it. Levels (`allow`, `warn`,\n\
         `error`) can be set in a `nurture.toml` beside the program (in the directory, or beside\n\
         the file):\n\n```toml\n[lint]\nno-goal = \"allow\"\nconsent = \"error\"\n```\n\n\
         The examples are written against this schema:\n\n```flow\n",
    );
    out.push_str(EXAMPLE_SCHEMA);
    out.push_str("```\n\n| rule | default | flags |\n|---|---|---|\n");
    for r in RULES {
        let _ = writeln!(
            out,
            "| [`{}`](#{}) | {} | {} |",
            r.name,
            r.name,
            r.default.as_str(),
            r.summary
        );
    }
    for r in RULES {
        let _ = write!(
            out,
            "\n## {}\n\nCode `{}`, default level `{}`.\n\n**What it does.** {}\n\n**Why it matters.** {}\n\n**Example**\n\n```flow\n{}```\n\n**Use instead**\n\n```flow\n{}```\n",
            r.name,
            r.code(),
            r.default.as_str(),
            r.summary,
            r.why,
            r.bad,
            r.good
        );
    }
    out
}
