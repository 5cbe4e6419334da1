//! The funnel and experiment report of a run (LANGUAGE.md section 9):
//! computed from the counts the runtime keeps, written as JSON or as one
//! self-contained HTML page, and summarised on the terminal.

use crate::runtime::Compiled;
use crate::runtime::RunStats;
use crate::source::SourceMap;
use serde_json::{json, Value as Json};

/// One workflow's report.
#[derive(Clone, Debug, PartialEq)]
pub struct WorkflowReport {
    pub name: String,
    pub entered: u64,
    pub completed: u64,
    pub converted: u64,
    pub exited: u64,
    pub failed: u64,
    pub waiting: u64,
    /// Sends not emitted: for want of consent, and by a frequency cap.
    pub suppressed_consent: u64,
    pub suppressed_cap: u64,
    /// The workflow's distinct stages (the funnel's steps between
    /// `entered` and `converted`).
    pub stages: usize,
    pub funnel: Vec<Step>,
    /// converted / entered; `None` when nobody entered, or when the
    /// workflow has neither a `goal` nor a `convert`.
    pub conversion_rate: Option<f64>,
    /// The step with the lowest rate (the earliest on a tie), among the
    /// steps journeys have had the chance to reach.
    pub bottleneck: Option<String>,
    pub splits: Vec<Split>,
}

#[derive(Clone, Debug, PartialEq)]
pub struct Step {
    pub step: String,
    pub reached: u64,
    /// The step's parent: its index in the funnel (`None` for `entered`).
    pub parent: Option<usize>,
    /// reached / the parent's reached; `None` for step 0 and when the
    /// parent was reached by nobody.
    pub rate: Option<f64>,
    /// Journeys in flight that reached the parent and not yet this step.
    pub pending: u64,
}

impl Step {
    /// Whether journeys have had the chance to reach the step: some
    /// journey that reached its parent is no longer on its way to it.
    pub fn reachable(&self, funnel: &[Step]) -> bool {
        self.parent
            .is_some_and(|p| funnel[p].reached > self.pending || self.reached > 0)
    }
}

#[derive(Clone, Debug, PartialEq)]
pub struct Split {
    /// `split "name"`, or none.
    pub name: Option<String>,
    /// The `split`'s line in its file.
    pub line: usize,
    pub file: String,
    pub arms: Vec<Arm>,
}

impl Split {
    /// What the report calls the split: its name, else `file:line`.
    pub fn title(&self) -> String {
        match &self.name {
            Some(n) => format!("\"{n}\""),
            None => format!("at {}:{}", self.file, self.line),
        }
    }
}

#[derive(Clone, Debug, PartialEq)]
pub struct Arm {
    /// `as "label"`, else `A`, `B`, ...
    pub label: String,
    pub share: u32,
    pub entered: u64,
    pub converted: u64,
    /// converted / entered; `None` for an arm no journey took.
    pub rate: Option<f64>,
    /// Against the first arm (none for the first arm itself).
    pub p_value: Option<f64>,
    /// The 95% Wilson score interval of the rate.
    pub interval: Option<(f64, f64)>,
}

/// The report of every workflow of `prog`, from the run's counts.
pub fn build(prog: &Compiled, stats: &RunStats, sources: &SourceMap) -> Vec<WorkflowReport> {
    prog.workflows
        .iter()
        .enumerate()
        .map(|(w, wf)| {
            let s = stats.workflows.get(w).copied().unwrap_or_default();
            let counts = stats.funnel.get(w).cloned().unwrap_or_default();
            let pending = stats.pending.get(w).cloned().unwrap_or_default();
            let step_of = |parent: Option<u16>| parent.map_or(0, |p| p as usize + 1);
            let mut funnel = vec![Step {
                step: "entered".into(),
                reached: s.entered,
                parent: None,
                rate: None,
                pending: 0,
            }];
            for (i, name) in wf.funnel.stages.iter().enumerate() {
                funnel.push(Step {
                    step: name.to_string(),
                    reached: counts.stages.get(i).copied().unwrap_or(0),
                    parent: Some(step_of(wf.funnel.parents.get(i).copied().flatten())),
                    rate: None,
                    pending: pending.get(i).copied().unwrap_or(0),
                });
            }
            if wf.funnel.converts {
                funnel.push(Step {
                    step: "converted".into(),
                    reached: s.converted,
                    parent: Some(step_of(wf.funnel.converted_parent)),
                    rate: None,
                    pending: pending.get(wf.funnel.stages.len()).copied().unwrap_or(0),
                });
            }
            for k in 1..funnel.len() {
                let parent = funnel[k].parent.map_or(0, |p| funnel[p].reached);
                funnel[k].rate = ratio(funnel[k].reached, parent);
            }
            let conversion_rate = if wf.funnel.converts {
                ratio(s.converted, s.entered)
            } else {
                None
            };
            let bottleneck = funnel
                .iter()
                .filter(|st| st.reachable(&funnel))
                .filter_map(|st| st.rate.map(|r| (r, &st.step)))
                .fold(None::<(f64, &String)>, |best, (r, step)| match best {
                    Some((b, _)) if b <= r => best,
                    _ => Some((r, step)),
                })
                .map(|(_, step)| step.clone());
            let splits = wf
                .funnel
                .splits
                .iter()
                .map(|sp| {
                    let file = sources.file(sp.span.file);
                    let slots = sp.base as usize..sp.base as usize + sp.shares.len();
                    let arms: Vec<(u64, u64)> = slots
                        .map(|slot| counts.arms.get(slot).copied().unwrap_or((0, 0)))
                        .collect();
                    let first = arms.first().copied().unwrap_or((0, 0));
                    Split {
                        name: sp.name.as_ref().map(|n| n.to_string()),
                        line: file.line_col(sp.span.start as usize).0,
                        file: file.name.clone(),
                        arms: arms
                            .iter()
                            .zip(&sp.shares)
                            .enumerate()
                            .map(|(i, (&(entered, converted), &share))| Arm {
                                label: sp.arm_label(i),
                                share,
                                entered,
                                converted,
                                rate: ratio(converted, entered),
                                p_value: (i > 0)
                                    .then(|| two_proportion_p(first, (entered, converted)))
                                    .flatten(),
                                interval: wilson(converted, entered),
                            })
                            .collect(),
                    }
                })
                .collect();
            WorkflowReport {
                name: wf.name.to_string(),
                entered: s.entered,
                completed: s.completed,
                converted: s.converted,
                exited: s.exited,
                failed: s.failed,
                waiting: stats.waiting.get(w).copied().unwrap_or(0),
                suppressed_consent: s.suppressed.iter().sum(),
                suppressed_cap: s.capped.iter().sum(),
                stages: wf.funnel.stages.len(),
                funnel,
                conversion_rate,
                bottleneck,
                splits,
            }
        })
        .collect()
}

/// `a / b`, `None` when `b` is 0.
fn ratio(a: u64, b: u64) -> Option<f64> {
    (b > 0).then(|| a as f64 / b as f64)
}

/// The two-sided p-value of a two-proportion z-test of `b`'s rate against
/// `a`'s ((entered, converted) each), with the pooled standard error and no
/// continuity correction; `None` when either is empty or the pooled rate is
/// 0 or 1.
pub fn two_proportion_p(a: (u64, u64), b: (u64, u64)) -> Option<f64> {
    let ((n1, x1), (n2, x2)) = (a, b);
    if n1 == 0 || n2 == 0 {
        return None;
    }
    let (n1, x1, n2, x2) = (n1 as f64, x1 as f64, n2 as f64, x2 as f64);
    let pooled = (x1 + x2) / (n1 + n2);
    if pooled <= 0.0 || pooled >= 1.0 {
        return None;
    }
    let se = (pooled * (1.0 - pooled) * (1.0 / n1 + 1.0 / n2)).sqrt();
    let z = (x2 / n2 - x1 / n1) / se;
    // P(|Z| >= |z|) = erfc(|z| / sqrt 2).
    Some(libm::erfc(z.abs() / std::f64::consts::SQRT_2))
}

/// The 95% Wilson score interval of `x` successes in `n`; `None` for 0.
pub fn wilson(x: u64, n: u64) -> Option<(f64, f64)> {
    if n == 0 {
        return None;
    }
    const Z: f64 = 1.959_963_984_540_054;
    let (n, p) = (n as f64, x as f64 / n as f64);
    let z2 = Z * Z;
    let centre = (p + z2 / (2.0 * n)) / (1.0 + z2 / n);
    let half = Z * (p * (1.0 - p) / n + z2 / (4.0 * n * n)).sqrt() / (1.0 + z2 / n);
    Some(((centre - half).max(0.0), (centre + half).min(1.0)))
}

/// A rate as the report writes it: four decimals.
fn round(x: f64) -> f64 {
    (x * 10_000.0).round() / 10_000.0
}

fn opt(x: Option<f64>) -> Json {
    x.map_or(Json::Null, |v| json!(round(v)))
}

/// The report as the contract's JSON.
pub fn to_json(report: &[WorkflowReport]) -> Json {
    let workflows: Vec<Json> = report
        .iter()
        .map(|w| {
            let funnel: Vec<Json> = w
                .funnel
                .iter()
                .map(|s| match s.parent {
                    None => json!({ "step": s.step, "reached": s.reached }),
                    Some(p) => json!({
                        "step": s.step,
                        "reached": s.reached,
                        "parent": w.funnel[p].step,
                        "rate": opt(s.rate),
                    }),
                })
                .collect();
            let splits: Vec<Json> = w
                .splits
                .iter()
                .map(|sp| {
                    let arms: Vec<Json> = sp
                        .arms
                        .iter()
                        .enumerate()
                        .map(|(i, a)| {
                            let mut arm = json!({
                                "label": a.label,
                                "share": a.share,
                                "entered": a.entered,
                                "converted": a.converted,
                                "rate": opt(a.rate),
                            });
                            if i > 0 {
                                arm["p_value"] = opt(a.p_value);
                            }
                            arm
                        })
                        .collect();
                    json!({ "name": sp.name, "line": sp.line, "arms": arms })
                })
                .collect();
            json!({
                "name": w.name,
                "entered": w.entered,
                "outcomes": {
                    "completed": w.completed,
                    "converted": w.converted,
                    "exited": w.exited,
                    "failed": w.failed,
                    "waiting": w.waiting,
                },
                "suppressed": {
                    "consent": w.suppressed_consent,
                    "frequency_cap": w.suppressed_cap,
                },
                "funnel": funnel,
                "conversion_rate": opt(w.conversion_rate),
                "bottleneck": w.bottleneck,
                "splits": splits,
            })
        })
        .collect();
    json!({ "workflows": workflows })
}

/// A rate in percent, one decimal: `65.5%`; `-` for none.
pub fn percent(x: Option<f64>) -> String {
    x.map_or("-".into(), |v| format!("{:.1}%", v * 100.0))
}

/// The funnel of each workflow with stages that journeys entered, for the
/// end-of-run summary: reached and rate (against the step's parent) per
/// step, a step under its parent, the bottleneck marked; then each split
/// journeys took, by name and arm label.
pub fn summary(report: &[WorkflowReport]) -> String {
    let mut out = funnels(report);
    for w in report {
        for sp in &w.splits {
            if sp.arms.iter().all(|a| a.entered == 0) {
                continue;
            }
            let name = match &sp.name {
                Some(n) => format!("\"{}\"", crate::suggest::echo(n)),
                None => format!("at line {}", sp.line),
            };
            out.push_str(&format!(
                "  split {name} of {}:\n",
                crate::suggest::echo(&w.name)
            ));
            let rows: Vec<(String, String)> = sp
                .arms
                .iter()
                .map(|a| {
                    (
                        crate::suggest::echo(&a.label),
                        format!(
                            "{:>8} entered {:>8} converted  {:>6}{}",
                            a.entered,
                            a.converted,
                            percent(a.rate),
                            a.p_value
                                .map(|p| format!("  p = {}", p_text(p)))
                                .unwrap_or_default()
                        ),
                    )
                })
                .collect();
            let width = rows
                .iter()
                .map(|(l, _)| l.chars().count())
                .max()
                .unwrap_or(1);
            for (label, rest) in rows {
                let pad = width - label.chars().count();
                out.push_str(&format!("    {label}{:pad$}  {rest}\n", ""));
            }
        }
    }
    out
}

/// The funnels part of [`summary`].
fn funnels(report: &[WorkflowReport]) -> String {
    let mut out = String::new();
    for w in report.iter().filter(|w| w.stages > 0 && w.entered > 0) {
        let conversion = match w.conversion_rate {
            Some(_) => format!("conversion {}", percent(w.conversion_rate)),
            None => "no goal".into(),
        };
        out.push_str(&format!(
            "  funnel of {} ({conversion}):\n",
            crate::suggest::echo(&w.name)
        ));
        let order = tree_order(&w.funnel);
        let label = |k: usize, depth: usize| {
            format!(
                "{}{}",
                "  ".repeat(depth),
                crate::suggest::echo(&w.funnel[k].step)
            )
        };
        let width = order
            .iter()
            .map(|&(k, d)| label(k, d).chars().count())
            .max()
            .unwrap_or(8);
        let mut above = None;
        for &(k, depth) in &order {
            let s = &w.funnel[k];
            // A rate is against the parent: named when it is not the row
            // just above.
            let of = match s.parent {
                Some(p) if Some(p) != above => {
                    format!(" of {}", crate::suggest::echo(&w.funnel[p].step))
                }
                _ => String::new(),
            };
            above = Some(k);
            let mark = if w.bottleneck.as_deref() == Some(s.step.as_str()) {
                "  <- bottleneck"
            } else {
                ""
            };
            let name = label(k, depth);
            let pad = width - name.chars().count();
            let line = format!(
                "    {name}{:pad$}  {:>8}  {:>6}{of}{mark}",
                "",
                s.reached,
                if s.parent.is_none() {
                    String::new()
                } else {
                    percent(s.rate)
                }
            );
            out.push_str(line.trim_end());
            out.push('\n');
        }
    }
    out
}

/// The funnel's steps in the order of its tree of parents (each step under
/// its parent, children in funnel order), with each one's depth: a step is
/// indented under a parent with several children (where branches part),
/// and stays level with a parent that has it alone (a straight run of
/// stages is not a staircase).
pub fn tree_order(funnel: &[Step]) -> Vec<(usize, usize)> {
    fn visit(funnel: &[Step], k: usize, depth: usize, out: &mut Vec<(usize, usize)>) {
        out.push((k, depth));
        let children: Vec<usize> = (0..funnel.len())
            .filter(|&c| funnel[c].parent == Some(k))
            .collect();
        let step = usize::from(children.len() > 1);
        for c in children {
            visit(funnel, c, depth + step, out);
        }
    }
    let mut out = Vec::new();
    if !funnel.is_empty() {
        visit(funnel, 0, 0, &mut out);
    }
    out
}

/// Whether the funnel branches: some step has a parent other than the
/// step before it.
pub fn branches(funnel: &[Step]) -> bool {
    funnel
        .iter()
        .enumerate()
        .skip(1)
        .any(|(k, s)| s.parent != Some(k - 1))
}

/// Text for HTML: markup escaped, control characters shown as escapes,
/// and the text isolated (`<bdi>`) so right-to-left or override characters
/// cannot reorder the page around it.
fn esc(s: &str) -> String {
    let mut out = String::with_capacity(s.len() + 11);
    out.push_str("<bdi>");
    out.push_str(&attr(s));
    out.push_str("</bdi>");
    out
}

/// Text for an HTML attribute or a `<title>`/`<desc>`: markup escaped,
/// control and bidirectional characters shown as escapes.
fn attr(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in crate::suggest::echo_whole(s).chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            c => out.push(c),
        }
    }
    out
}

/// What a split's arm shows against the first, in plain words.
pub fn verdict(first: &Arm, arm: &Arm) -> String {
    let (name, base) = (&arm.label, &first.label);
    match (first.rate, arm.rate) {
        (Some(a), Some(b)) => {
            let points = (b - a) * 100.0;
            let how = if points.abs() < 0.05 {
                "converts as well as".to_string()
            } else if points > 0.0 {
                format!("converts {:.1} points better than", points)
            } else {
                format!("converts {:.1} points worse than", -points)
            };
            let test = match arm.p_value {
                Some(p) if p < 0.05 => format!("p = {}, significant at the 5% level", p_text(p)),
                Some(p) => format!("p = {}, not significant", p_text(p)),
                None if first.converted + arm.converted == 0 => {
                    "no test: no journey of either arm has converted yet".into()
                }
                None => "no test: every journey of both arms converted".into(),
            };
            format!(
                "Arm {name} {how} arm {base} ({} against {}); {test}.",
                percent(Some(b)),
                percent(Some(a))
            )
        }
        _ => format!("Arm {name} cannot be compared with arm {base} yet: an arm has no journey."),
    }
}

fn p_text(p: f64) -> String {
    if p < 0.001 {
        "< 0.001".into()
    } else {
        format!("{:.3}", p)
            .trim_end_matches('0')
            .trim_end_matches('.')
            .to_string()
    }
}

const STYLE: &str = "
body { font: 16px/1.5 system-ui, sans-serif; color: #1a1a1a; background: #fff; max-width: 62rem; margin: 2rem auto; padding: 0 1rem; }
h1 { font-size: 1.6rem; } h2 { font-size: 1.3rem; margin-top: 2.5rem; border-bottom: 2px solid #1a1a1a; }
table { border-collapse: collapse; margin: .8rem 0; }
th, td { border: 1px solid #767676; padding: .25rem .6rem; text-align: right; }
th:first-child, td:first-child { text-align: left; }
caption { text-align: left; font-weight: 600; padding-bottom: .3rem; }
svg text { font: 13px system-ui, sans-serif; fill: #1a1a1a; }
.bar { fill: #1f5fa8; } .bottleneck { fill: #a8201a; } .branch { stroke: #767676; fill: none; }
.note { color: #3d3d3d; }
@media print { body { margin: 0; max-width: none; } section { break-inside: avoid; } .bar { fill: #444; } .bottleneck { fill: #000; } }
";

/// The experiments of a workflow whose arms differ significantly from the
/// first (p < 0.05), for the overview.
fn significant(w: &WorkflowReport) -> Vec<String> {
    w.splits
        .iter()
        .flat_map(|sp| {
            sp.arms
                .iter()
                .skip(1)
                .filter(|a| a.p_value.is_some_and(|p| p < 0.05))
                .map(move |a| format!("{}: {}", sp.title(), a.label))
        })
        .collect()
}

/// The report as one self-contained page: an overview table, then per
/// workflow its funnel (inline SVG with a text alternative; a tree when
/// the funnel branches), the outcome counts, and per split a table of arms
/// with rates, 95% intervals and p-values, in plain words.
pub fn to_html(report: &[WorkflowReport]) -> String {
    let mut h = String::from("<!DOCTYPE html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n<meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\n<title>Funnel and experiment report</title>\n<style>");
    h.push_str(STYLE);
    h.push_str("</style>\n</head>\n<body>\n<main>\n<h1>Funnel and experiment report</h1>\n<p class=\"note\">Every journey counted by the run. The funnel's steps: entered, each stage, converted. Each step's rate is the share of its parent's journeys that reached it; a step's parent is the nearest earlier step every path to it passes through, so a branching workflow's funnel is a tree. The bottleneck is the step with the lowest rate, among those journeys have had the chance to reach.</p>\n");
    h.push_str("<table class=\"overview\">\n<caption>Overview</caption>\n<tr><th scope=\"col\">workflow</th><th scope=\"col\">entered</th><th scope=\"col\">conversion rate</th><th scope=\"col\">bottleneck</th><th scope=\"col\">significant experiments</th></tr>\n");
    for (n, w) in report.iter().enumerate() {
        let sig = significant(w);
        h.push_str(&format!(
            "<tr><td><a href=\"#w{n}\">{}</a></td><td>{}</td><td>{}</td><td>{}</td><td>{}</td></tr>\n",
            esc(&w.name),
            w.entered,
            if w.funnel.iter().any(|s| s.step == "converted") {
                percent(w.conversion_rate)
            } else {
                "no goal".into()
            },
            w.bottleneck.as_deref().map_or("-".into(), esc),
            if sig.is_empty() {
                "-".into()
            } else {
                sig.iter().map(|s| esc(s)).collect::<Vec<_>>().join(", ")
            }
        ));
    }
    h.push_str("</table>\n");
    for (n, w) in report.iter().enumerate() {
        h.push_str(&format!(
            "<section aria-labelledby=\"w{n}\">\n<h2 id=\"w{n}\">{}</h2>\n",
            esc(&w.name)
        ));
        let converts = w.funnel.iter().any(|s| s.step == "converted");
        h.push_str(&format!(
            "<p>{} entered; {}{}.</p>\n",
            w.entered,
            match w.conversion_rate {
                Some(_) => format!("conversion rate {}", percent(w.conversion_rate)),
                None if !converts =>
                    "no conversion rate: the workflow has neither a goal nor a convert".into(),
                None => "no conversion rate yet: nobody entered".into(),
            },
            w.bottleneck
                .as_ref()
                .map(|b| format!("; bottleneck: {}", esc(b)))
                .unwrap_or_default()
        ));
        h.push_str(&funnel_svg(n, w));
        if let Some(c) = w
            .funnel
            .iter()
            .find(|s| s.step == "converted" && s.rate.is_some_and(|r| r > 1.0))
        {
            let parent = c.parent.map_or("entered", |p| w.funnel[p].step.as_str());
            h.push_str(&format!(
                "<p class=\"note\">More journeys converted than reached {}: the goal was reached by journeys before that stage, so converted's rate exceeds 100%.</p>\n",
                esc(parent)
            ));
        }
        h.push_str(&format!(
            "<table>\n<caption>Outcomes</caption>\n<tr><th scope=\"col\">outcome</th><th scope=\"col\">journeys</th></tr>\n<tr><td>completed</td><td>{}</td></tr>\n<tr><td>converted</td><td>{}</td></tr>\n<tr><td>exited</td><td>{}</td></tr>\n<tr><td>failed</td><td>{}</td></tr>\n<tr><td>waiting</td><td>{}</td></tr>\n</table>\n<table>\n<caption>Sends suppressed</caption>\n<tr><th scope=\"col\">reason</th><th scope=\"col\">sends</th></tr>\n<tr><td>no consent</td><td>{}</td></tr>\n<tr><td>frequency cap</td><td>{}</td></tr>\n</table>\n",
            w.completed, w.converted, w.exited, w.failed, w.waiting, w.suppressed_consent, w.suppressed_cap
        ));
        for sp in &w.splits {
            let base = sp.arms.first().map_or("A".into(), |a| esc(&a.label));
            h.push_str(&format!(
                "<table class=\"split\">\n<caption>Split {} ({}:{})</caption>\n<tr><th scope=\"col\">arm</th><th scope=\"col\">share</th><th scope=\"col\">entered</th><th scope=\"col\">converted</th><th scope=\"col\">rate</th><th scope=\"col\">95% interval</th><th scope=\"col\">p-value against {base}</th></tr>\n",
                sp.name.as_deref().map_or("(unnamed)".into(), esc),
                esc(&sp.file),
                sp.line
            ));
            for (i, a) in sp.arms.iter().enumerate() {
                h.push_str(&format!(
                    "<tr><td>{}</td><td>{}%</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td></tr>\n",
                    esc(&a.label),
                    a.share,
                    a.entered,
                    a.converted,
                    percent(a.rate),
                    a.interval
                        .map(|(lo, hi)| format!("{} to {}", percent(Some(lo)), percent(Some(hi))))
                        .unwrap_or_else(|| "-".into()),
                    if i == 0 {
                        "-".to_string()
                    } else {
                        a.p_value.map_or("-".into(), p_text)
                    }
                ));
            }
            h.push_str("</table>\n");
            if let Some(first) = sp.arms.first() {
                for a in sp.arms.iter().skip(1) {
                    h.push_str(&format!("<p>{}</p>\n", esc(&verdict(first, a))));
                }
            }
        }
        h.push_str("</section>\n");
    }
    h.push_str("</main>\n</body>\n</html>\n");
    h
}

/// A workflow's funnel: a bar per step, as long as its share of `entered`,
/// labelled with its count and rate; each step under its parent, indented
/// and joined to it by a line when the funnel branches; the bottleneck's bar
/// marked in words and colour. The `desc` says the same for those who
/// cannot see it.
fn funnel_svg(n: usize, w: &WorkflowReport) -> String {
    let (row, left, width, indent) = (34.0, 170.0, 400.0, 18.0);
    let order = tree_order(&w.funnel);
    let tree = branches(&w.funnel);
    let height = row * order.len() as f64 + 10.0;
    let base = w.entered.max(1) as f64;
    let parent_name = |s: &Step| s.parent.map_or("", |p| w.funnel[p].step.as_str());
    let steps: Vec<String> = order
        .iter()
        .map(|&(k, _)| {
            let s = &w.funnel[k];
            match (s.parent, s.rate) {
                (None, _) => format!("{}: {}", s.step, s.reached),
                (Some(_), Some(_)) => format!(
                    "{}: {} ({} of {})",
                    s.step,
                    s.reached,
                    percent(s.rate),
                    parent_name(s)
                ),
                (Some(_), None) => format!(
                    "{}: {} (no rate: nobody reached {})",
                    s.step,
                    s.reached,
                    parent_name(s)
                ),
            }
        })
        .collect();
    let desc = format!(
        "{}{}.{}",
        if tree { "A branching funnel. " } else { "" },
        steps.join("; "),
        w.bottleneck
            .as_ref()
            .map(|b| format!(" The bottleneck is {b}."))
            .unwrap_or_default()
    );
    let mut svg = format!(
        "<figure>\n<svg role=\"img\" aria-labelledby=\"t{n} d{n}\" viewBox=\"0 0 800 {height}\" width=\"100%\" class=\"funnel\">\n<title id=\"t{n}\">Funnel of {}</title>\n<desc id=\"d{n}\">{}</desc>\n",
        attr(&w.name),
        attr(&desc)
    );
    let mut row_of = vec![0usize; w.funnel.len()];
    let mut depth_of = vec![0usize; w.funnel.len()];
    for (r, &(k, depth)) in order.iter().enumerate() {
        row_of[k] = r;
        depth_of[k] = depth;
        let s = &w.funnel[k];
        let y = r as f64 * row + 5.0;
        let x = left + depth as f64 * indent;
        let len = (s.reached as f64 / base * (width - depth as f64 * indent)).max(1.0);
        let bottleneck = w.bottleneck.as_deref() == Some(s.step.as_str());
        let label = match (s.parent, s.rate) {
            (Some(_), Some(_)) if tree => {
                format!("{} ({} of {})", s.reached, percent(s.rate), parent_name(s))
            }
            (_, Some(_)) => format!("{} ({})", s.reached, percent(s.rate)),
            _ => s.reached.to_string(),
        };
        // A line joins a step to its parent where the branches part.
        if let (true, Some(p)) = (
            tree && s.parent.is_some_and(|p| depth_of[p] < depth),
            s.parent,
        ) {
            let py = row_of[p] as f64 * row + 5.0 + (row - 10.0);
            let px = x - indent + 6.0;
            svg.push_str(&format!(
                "<path class=\"branch\" d=\"M{px:.1} {py:.1} V{:.1} H{x:.1}\"/>\n",
                y + (row - 10.0) / 2.0
            ));
        }
        svg.push_str(&format!(
            "<text x=\"{tx}\" y=\"{ty}\" text-anchor=\"end\">{}</text>\n<rect class=\"{}\" x=\"{x:.1}\" y=\"{y}\" width=\"{len:.1}\" height=\"{bh}\"/>\n<text x=\"{lx:.1}\" y=\"{ty}\">{}{}</text>\n",
            attr(&s.step),
            if bottleneck { "bar bottleneck" } else { "bar" },
            attr(&label),
            if bottleneck { " - bottleneck" } else { "" },
            tx = left - 8.0,
            ty = y + 17.0,
            bh = row - 10.0,
            lx = x + len + 6.0,
        ));
    }
    svg.push_str(&format!(
        "</svg>\n<figcaption>Funnel of {}: {}.</figcaption>\n</figure>\n",
        esc(&w.name),
        if w.funnel.iter().any(|s| s.step == "converted") {
            format!("conversion rate {}", percent(w.conversion_rate))
        } else {
            "no goal, so no conversion rate".into()
        }
    ));
    svg
}
