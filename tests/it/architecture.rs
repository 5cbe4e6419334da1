//! The dependency direction of `docs/ARCHITECTURE.md`: no import circle
//! between the crate's modules, at the top level or one level down, and
//! the passes only below the drivers.

use crate::helpers::root;
use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;

/// Every module (`a::b`) with the text of its file.
fn modules() -> BTreeMap<String, String> {
    fn walk(dir: &Path, src: &Path, out: &mut BTreeMap<String, String>) {
        for entry in std::fs::read_dir(dir).expect("src") {
            let path = entry.expect("entry").path();
            if path.is_dir() {
                walk(&path, src, out);
            } else if path.extension().is_some_and(|e| e == "rs") {
                let rel = path
                    .strip_prefix(src)
                    .expect("under src")
                    .with_extension("");
                let name = rel.to_string_lossy().replace('/', "::");
                let text = std::fs::read_to_string(&path).expect("read");
                // Unit tests may reach anywhere.
                let code = text.split("#[cfg(test)]").next().unwrap_or("").to_string();
                out.insert(name, code);
            }
        }
    }
    let mut out = BTreeMap::new();
    let src = root().join("src");
    walk(&src, &src, &mut out);
    out
}

/// The modules `name`'s code names through `crate::` or `super::` paths.
fn uses(name: &str, code: &str, all: &BTreeMap<String, String>) -> BTreeSet<String> {
    let mut out = BTreeSet::new();
    let bytes = code.as_bytes();
    let mut i = 0;
    while i < code.len() {
        let rest = &code[i..];
        let starts = ["crate::", "super::"].iter().any(|p| rest.starts_with(p))
            && (i == 0 || !(bytes[i - 1].is_ascii_alphanumeric() || bytes[i - 1] == b'_'));
        if !starts {
            i += 1;
            continue;
        }
        let end = rest
            .find(|c: char| !(c.is_ascii_alphanumeric() || c == '_' || c == ':'))
            .unwrap_or(rest.len());
        let path: Vec<&str> = rest[..end].split("::").filter(|s| !s.is_empty()).collect();
        let mut base: Vec<&str> = name.split("::").collect();
        let mut parts = path.as_slice();
        if parts.first() == Some(&"crate") {
            base.clear();
            parts = &parts[1..];
        }
        while parts.first() == Some(&"super") {
            base.pop();
            parts = &parts[1..];
        }
        let full: Vec<&str> = base.iter().chain(parts).copied().collect();
        if let Some(target) = (1..=full.len())
            .rev()
            .map(|n| full[..n].join("::"))
            .find(|m| all.contains_key(m))
        {
            out.insert(target);
        }
        i += end;
    }
    out
}

/// The module graph cut at `depth` path segments.
fn graph(depth: usize) -> BTreeMap<String, BTreeSet<String>> {
    let all = modules();
    let cut = |m: &str| m.split("::").take(depth).collect::<Vec<_>>().join("::");
    let mut g: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
    for (name, code) in &all {
        for target in uses(name, code, &all) {
            let inside = target.starts_with(&format!("{name}::"))
                || name.starts_with(&format!("{target}::"));
            let (from, to) = (cut(name), cut(&target));
            if !inside && from != to {
                g.entry(from).or_default().insert(to);
            }
        }
    }
    g
}

/// A cycle through `graph`, if there is one.
fn cycle(g: &BTreeMap<String, BTreeSet<String>>) -> Option<Vec<String>> {
    fn visit(
        n: &str,
        g: &BTreeMap<String, BTreeSet<String>>,
        stack: &mut Vec<String>,
        done: &mut BTreeSet<String>,
    ) -> Option<Vec<String>> {
        if let Some(at) = stack.iter().position(|s| s == n) {
            let mut c = stack[at..].to_vec();
            c.push(n.to_string());
            return Some(c);
        }
        if done.contains(n) {
            return None;
        }
        stack.push(n.to_string());
        for next in g.get(n).into_iter().flatten() {
            if let Some(c) = visit(next, g, stack, done) {
                return Some(c);
            }
        }
        stack.pop();
        done.insert(n.to_string());
        None
    }
    let mut done = BTreeSet::new();
    g.keys()
        .find_map(|n| visit(n, g, &mut Vec::new(), &mut done))
}

#[test]
fn no_import_circle_between_modules() {
    for depth in [1, 2] {
        let g = graph(depth);
        assert!(
            g.contains_key("runtime") || depth == 2,
            "the graph was read"
        );
        if let Some(c) = cycle(&g) {
            panic!("an import circle at depth {depth}: {}", c.join(" -> "));
        }
    }
}

#[test]
fn the_passes_do_not_reach_the_drivers() {
    let g = graph(1);
    for pass in [
        "source",
        "syntax",
        "ast",
        "check",
        "lint",
        "runtime",
        "diagnostic",
    ] {
        let reached = g.get(pass).cloned().unwrap_or_default();
        for driver in ["cli", "repl", "pipeline"] {
            assert!(!reached.contains(driver), "`{pass}` uses `{driver}`");
        }
    }
    for early in ["source", "syntax", "ast"] {
        let reached = g.get(early).cloned().unwrap_or_default();
        for later in ["check", "lint", "runtime"] {
            assert!(!reached.contains(later), "`{early}` uses `{later}`");
        }
    }
}

#[test]
fn the_graph_sees_the_edges_it_should() {
    // A check that the reader works: known edges are found.
    let g = graph(2);
    let has = |a: &str, b: &str| g.get(a).is_some_and(|s| s.contains(b));
    assert!(has("runtime::interpreter", "runtime::engine"));
    assert!(has("cli::run", "runtime::interpreter") || has("cli::run", "runtime"));
    assert!(has("check::flow", "ast::walk") || has("check::flow", "ast"));
}

/// The chain `docs/ARCHITECTURE.md` draws, as layers: a module may use
/// only modules of earlier layers.
fn documented_layers() -> Vec<Vec<String>> {
    let doc = std::fs::read_to_string(root().join("docs/ARCHITECTURE.md")).expect("the map");
    let line = doc
        .lines()
        .find(|l| l.starts_with("source, suggest, vocabulary <- "))
        .expect("the dependency chain in docs/ARCHITECTURE.md");
    line.split(" <- ")
        .map(|layer| {
            layer
                .trim_matches(|c| c == '{' || c == '}')
                .split(',')
                .map(|m| m.trim().to_string())
                .collect()
        })
        .collect()
}

#[test]
fn the_modules_follow_the_documented_chain() {
    let layers = documented_layers();
    let layer = |m: &str| layers.iter().position(|l| l.iter().any(|x| x == m));
    let g = graph(1);
    for (from, tos) in &g {
        let Some(a) = layer(from) else {
            // Entry points and the crate root are not in the chain.
            assert!(
                ["main", "lib"].contains(&from.as_str()),
                "`{from}` is not in the documented chain"
            );
            continue;
        };
        for to in tos {
            let b = layer(to).unwrap_or_else(|| panic!("`{to}` is not in the documented chain"));
            assert!(
                b < a,
                "`{from}` uses `{to}`, which the documented chain puts at or after it"
            );
        }
    }
    assert!(layers.len() >= 6, "the chain was read: {layers:?}");
}

/// Outside the runtime, modules use only its front door: what
/// `src/runtime.rs` exports (the `Interpreter` and the types it hands out)
/// and the state's policy (`runtime::state`); never the engine, the
/// compiler's instruction set, the store or SQLite's rows directly.
#[test]
fn only_the_front_door_is_used_from_outside_the_runtime() {
    let g = graph(2);
    let front = ["runtime", "runtime::state"];
    let mut reached = 0;
    for (from, tos) in &g {
        if from == "runtime" || from.starts_with("runtime::") {
            continue;
        }
        for to in tos.iter().filter(|t| t.starts_with("runtime")) {
            reached += 1;
            assert!(
                front.contains(&to.as_str()),
                "`{from}` uses `{to}`: use what `src/runtime.rs` exports instead"
            );
        }
    }
    assert!(reached >= 5, "the drivers were read ({reached} uses)");
}

/// The language core and the runtime take no async dependency: tokio,
/// axum, hyper, tower and reqwest appear only in the service's layer
/// (`src/serve*`) and the command line.
#[test]
fn only_the_service_layer_is_asynchronous() {
    let mut checked = 0;
    for (name, code) in modules() {
        if name == "serve" || name.starts_with("serve::") || name.starts_with("cli") {
            continue;
        }
        checked += 1;
        for krate in ["tokio", "axum", "hyper", "tower", "reqwest"] {
            assert!(
                !code.contains(&format!("{krate}::")) && !code.contains(&format!("use {krate}")),
                "`{name}` uses `{krate}`: only the service layer is asynchronous"
            );
        }
    }
    assert!(checked > 20, "the modules were read ({checked})");
    let serve = modules();
    assert!(
        serve
            .get("serve::http")
            .is_some_and(|c| c.contains("axum::")),
        "the check sees the service's own use of axum"
    );
}
