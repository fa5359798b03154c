//! The layers of ARCHITECTURE.md, checked on the source: every `crate::…` path and every
//! `super::…` import in `src/` is an edge from the module that writes it to the module it names.
//! A lower layer naming a higher one fails, so does anything outside `sim` and `cli::demo`
//! naming `sim`, so does any circle between the parts of any folder (the top-level modules,
//! the files of `engine`, of `ops::upgrade`, …), and so does a file in `src/` over 900 lines.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

/// Bottom-up rank of each top-level module; a module may only name modules of a lower or
/// equal rank (equal: only without a circle). `sim` stands aside: it may name everything but
/// `cli`, and only `sim` and `cli::demo` may name it.
const LAYERS: &[(&str, u8)] = &[
    ("foundation", 0),
    ("catalog", 1),
    ("ceph", 1),
    ("kube", 1),
    ("maas", 1),
    ("microk8s", 1),
    ("ssh", 1),
    ("config", 2),
    ("render", 3),
    ("engine", 4),
    ("ops", 5),
    ("cli", 6),
    ("sim", 5),
];

fn rank(top: &str) -> Option<u8> {
    LAYERS.iter().find(|(n, _)| *n == top).map(|(_, r)| *r)
}

/// `src/engine/phases/hosts.rs` → `engine::phases::hosts`; `src/sim/mod.rs` → `sim`.
fn module_of(src: &Path, file: &Path) -> String {
    let rel = file.strip_prefix(src).unwrap_or(file).with_extension("");
    let mut parts: Vec<String> = rel.iter().map(|p| p.to_string_lossy().into_owned()).collect();
    if parts.last().is_some_and(|l| l == "mod") {
        parts.pop();
    }
    parts.join("::")
}

fn files(dir: &Path, out: &mut Vec<PathBuf>) {
    for e in std::fs::read_dir(dir).expect("src/ is readable").flatten() {
        let p = e.path();
        if p.is_dir() {
            files(&p, out);
        } else if p.extension().is_some_and(|x| x == "rs") {
            out.push(p);
        }
    }
}

/// The code of a file without its comments (doc comments mention modules in prose).
fn code(text: &str) -> String {
    text.lines()
        .map(|l| match l.find("//") {
            // A `//` inside a string (a URL) is not a comment; good enough for paths.
            Some(i) if !l[..i].contains('"') => &l[..i],
            _ => l,
        })
        .collect::<Vec<_>>()
        .join("\n")
}

/// The module paths a file names: `crate::a::b…` and `super::x` (resolved against `module`).
fn named(module: &str, is_mod_rs: bool, text: &str) -> BTreeSet<String> {
    let mut out = BTreeSet::new();
    let ident = |s: &str| -> Vec<String> {
        let mut v = Vec::new();
        for seg in s.split("::") {
            let seg: String = seg.chars().take_while(|c| c.is_ascii_alphanumeric() || *c == '_').collect();
            if seg.is_empty() || seg.chars().next().is_some_and(|c| c.is_ascii_uppercase()) {
                break;
            }
            v.push(seg);
        }
        v
    };
    for (i, _) in text.match_indices("crate::") {
        let before = text[..i].chars().last();
        if before.is_some_and(|c| c.is_ascii_alphanumeric() || c == '_' || c == '$') {
            continue;
        }
        let path = ident(&text[i + 7..]);
        if !path.is_empty() {
            out.insert(path.join("::"));
        }
    }
    for (i, _) in text.match_indices("super::") {
        let before = text[..i].chars().last();
        if before.is_some_and(|c| c.is_ascii_alphanumeric() || c == '_' || c == ':') {
            continue;
        }
        let mut base: Vec<&str> = module.split("::").collect();
        // `super` of a `mod.rs` module is its parent; of a file module, the folder's module.
        if !is_mod_rs || base.len() > 1 {
            base.pop();
        }
        let rest = ident(&text[i + 7..]);
        if rest.first().is_some_and(|r| r == "super") {
            continue; // tests' `use super::*` in nested modules: same file
        }
        let mut path: Vec<String> = base.iter().map(|s| s.to_string()).collect();
        path.extend(rest);
        if !path.is_empty() {
            out.insert(path.join("::"));
        }
    }
    out
}

/// module → the modules it names, truncated to `depth` segments (files inside a folder).
fn graph(depth: usize) -> BTreeMap<String, BTreeSet<String>> {
    let src = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("src");
    let mut all = Vec::new();
    files(&src, &mut all);
    let known: BTreeSet<String> = all.iter().map(|f| module_of(&src, f)).collect();
    let mut g: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
    for f in &all {
        let m = module_of(&src, f);
        if m == "lib" || m == "main" {
            continue;
        }
        let text = code(&std::fs::read_to_string(f).expect("readable"));
        let is_mod_rs = f.file_name().is_some_and(|n| n == "mod.rs");
        for n in named(&m, is_mod_rs, &text) {
            // The longest known module the path starts with (a path may end in an item).
            let segs: Vec<&str> = n.split("::").collect();
            let target = (1..=segs.len())
                .rev()
                .map(|k| segs[..k].join("::"))
                .find(|p| known.contains(p))
                .unwrap_or_else(|| segs[0].to_owned());
            let cut = |s: &str| s.split("::").take(depth).collect::<Vec<_>>().join("::");
            let (from, to) = (cut(&m), cut(&target));
            if from != to {
                g.entry(from).or_default().insert(to);
            }
        }
        g.entry(m.split("::").take(depth).collect::<Vec<_>>().join("::")).or_default();
    }
    g
}

fn cycles(g: &BTreeMap<String, BTreeSet<String>>, within: impl Fn(&str) -> bool) -> Vec<Vec<String>> {
    // Every simple cycle is reported once, through its smallest node.
    let mut found = Vec::new();
    for start in g.keys().filter(|k| within(k)) {
        let mut stack = vec![(start.clone(), vec![start.clone()])];
        while let Some((node, path)) = stack.pop() {
            for next in g.get(&node).into_iter().flatten().filter(|n| within(n)) {
                if next == start {
                    found.push(path.clone());
                } else if next > start && !path.contains(next) && path.len() < 12 {
                    let mut p = path.clone();
                    p.push(next.clone());
                    stack.push((next.clone(), p));
                }
            }
        }
    }
    found
}

fn top(m: &str) -> &str {
    m.split("::").next().unwrap_or(m)
}

#[test]
fn no_lower_layer_names_a_higher_one() {
    let g = graph(1);
    let mut bad = Vec::new();
    for (from, tos) in &g {
        let Some(rf) = rank(from) else {
            bad.push(format!("{from} is not a layer of ARCHITECTURE.md (add it to LAYERS with its rank)"));
            continue;
        };
        for to in tos {
            match rank(to) {
                None => bad.push(format!("{from} names `{to}`, which is no module of the crate")),
                Some(_) if to == "sim" || from == "sim" => {}
                Some(rt) if rt > rf => bad.push(format!("{from} (layer {rf}) names {to} (layer {rt})")),
                Some(_) => {}
            }
        }
    }
    assert!(bad.is_empty(), "imports that run upward:\n  {}", bad.join("\n  "));
}

#[test]
fn only_the_demo_and_the_simulators_name_sim() {
    let g = graph(3);
    let bad: Vec<String> = g
        .iter()
        .filter(|(from, _)| top(from) != "sim" && from.as_str() != "cli::demo")
        .flat_map(|(from, tos)| tos.iter().filter(|t| top(t) == "sim").map(move |t| format!("{from} → {t}")))
        .collect();
    assert!(bad.is_empty(), "the simulators serve tests, benches and `homelab demo` only:\n  {}", bad.join("\n  "));
    let sim_to_cli: Vec<String> = g
        .iter()
        .filter(|(from, _)| top(from) == "sim")
        .flat_map(|(from, tos)| tos.iter().filter(|t| top(t) == "cli").map(move |t| format!("{from} → {t}")))
        .collect();
    assert!(sim_to_cli.is_empty(), "the simulators must not know the command line:\n  {}", sim_to_cli.join("\n  "));
}

/// Every module with files of its own (a folder), and the crate itself (""), with the
/// circles among its direct parts: each part stands for all below it, and an edge between two
/// parts is any edge between what lies below them. A folder's `mod.rs` is its face and stands
/// outside: its files may name it and it may name them.
fn circles_in_folders(g: &BTreeMap<String, BTreeSet<String>>) -> Vec<String> {
    let mut folders: BTreeSet<String> = BTreeSet::from([String::new()]);
    for m in g.keys().chain(g.values().flatten()) {
        let segs: Vec<&str> = m.split("::").collect();
        for k in 1..segs.len() {
            folders.insert(segs[..k].join("::"));
        }
    }
    let part = |folder: &str, m: &str| -> Option<String> {
        let rest = if folder.is_empty() { m } else { m.strip_prefix(folder)?.strip_prefix("::")? };
        let first = rest.split("::").next().filter(|s| !s.is_empty())?;
        Some(if folder.is_empty() { first.to_owned() } else { format!("{folder}::{first}") })
    };
    let mut out = Vec::new();
    for folder in &folders {
        let mut parts: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
        for (from, tos) in g {
            let Some(a) = part(folder, from) else { continue };
            for to in tos {
                if let Some(b) = part(folder, to).filter(|b| *b != a) {
                    parts.entry(a.clone()).or_default().insert(b);
                }
            }
        }
        for c in cycles(&parts, |_| true) {
            out.push(format!("{} → {}", c.join(" → "), c[0]));
        }
    }
    out
}

#[test]
fn no_circles_between_modules() {
    let all = circles_in_folders(&graph(usize::MAX));
    assert!(
        all.is_empty(),
        "circles (break each by moving what both sides need into a module of its own, or by passing values instead of the context):\n  {}",
        all.join("\n  ")
    );
}

/// The most lines a file in `src/` may have: past it a file holds several jobs, and is split
/// into a folder with a file per job (ARCHITECTURE.md, "Where things go").
const MAX_LINES: usize = 900;

#[test]
fn no_file_in_src_is_over_900_lines() {
    let src = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("src");
    let mut all = Vec::new();
    files(&src, &mut all);
    assert!(all.len() > 50, "the checker found only {} files in src/", all.len());
    let mut long: Vec<String> = all
        .iter()
        .filter_map(|f| {
            let n = std::fs::read_to_string(f).expect("readable").lines().count();
            (n > MAX_LINES).then(|| format!("{} has {n} lines", f.strip_prefix(&src).unwrap_or(f).display()))
        })
        .collect();
    long.sort();
    assert!(long.is_empty(), "files over {MAX_LINES} lines (split each by job):\n  {}", long.join("\n  "));
}

#[test]
fn the_checker_sees_edges() {
    // A checker that reads nothing passes everything: make sure it reads the known edges.
    let g = graph(1);
    assert!(g.get("engine").is_some_and(|t| t.contains("foundation") && t.contains("config")), "{g:?}");
    assert!(g.get("cli").is_some_and(|t| t.contains("engine")), "{g:?}");
    assert!(g.get("sim").is_some_and(|t| t.contains("engine")), "{g:?}");
    let files = graph(2);
    assert!(files.get("sim::lab").is_some_and(|t| t.contains("sim::hosts")), "{files:?}");
    // Edges between the files of a folder deep down are seen too.
    let full = graph(usize::MAX);
    assert!(
        full.get("ops::upgrade::gate").is_some_and(|t| t.contains("ops::upgrade::observed")),
        "{:?}",
        full.get("ops::upgrade::gate")
    );
}

#[test]
fn the_circle_check_finds_a_circle() {
    // A made-up crate: `x::a` ↔ `x::b::inner` is a circle inside folder `x`; `x` (the face)
    // ↔ `x::a` is not; `c` ↔ `d` is one at the top; `e` → `f` alone is none.
    let mut g: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
    let mut edge = |a: &str, b: &str| {
        g.entry(a.into()).or_default().insert(b.into());
    };
    edge("x::a", "x::b::inner");
    edge("x::b::inner", "x::a");
    edge("x", "x::a");
    edge("x::a", "x");
    edge("c", "d");
    edge("d", "c");
    edge("e", "f");
    let found = circles_in_folders(&g);
    assert_eq!(found, vec!["c → d → c".to_owned(), "x::a → x::b → x::a".to_owned()], "{found:?}");
}
