//! The workspace's structure, checked from its sources: arrows between modules and crates go one way.
//!
//! Each crate's module tree is followed from `lib.rs` and, separately, from a binary's `main.rs`,
//! through `mod NAME;` declarations (and `#[path = "..."]`). An arrow A -> B joins two sibling
//! modules when code in A's subtree names something in B's subtree.
//!
//! Resolved: `use crate::..`, `use super::..` (any depth), `use self::..`, a `use` starting with a
//! child module's name, grouped `use` trees over several lines, inline paths (`crate::a::f(..)`,
//! `super::b::T`), and a name a module re-exports with `pub use` (followed to the module that
//! defines it, so `use super::Alias` from `registry::compare` is the arrow `compare -> alias`).
//! Not resolved: glob re-exports (`pub use a::*`), a module brought in by `use` and then used as a
//! path prefix (`use crate::a; a::f()` counts once, at the `use`), macros, and external crates.
//! Test code does not count: `#[cfg(test)]` items, modules named `tests`, comments and strings.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

/// control-plane's top-level modules, bottom layer first: a module may name only modules of
/// strictly lower layers. docs/ARCHITECTURE.md states the same order.
const CONTROL_PLANE_LAYERS: Layers = &[
    ("leaves", &["rng", "progress", "text", "digest"]),
    ("storage", &["store"]),
    ("reading data", &["data"]),
    ("configuration", &["config"]),
    ("computations", &["profile", "train", "onnx", "mlflow"]),
    ("model import", &["import"]),
    ("datasets", &["dataset"]),
    ("model registry", &["registry"]),
    ("pipeline", &["pipeline"]),
    ("HTTP server", &["server"]),
    ("command line", &["commands"]),
];

/// A layer table: (layer name, its modules), bottom layer first.
type Layers = &'static [(&'static str, &'static [&'static str])];

/// The crates' folders, and the layer table of those that have one.
const CRATES: &[(&str, Option<Layers>)] = &[
    ("control-plane", Some(CONTROL_PLANE_LAYERS)),
    ("model-wasm", None),
    ("edge-runtime", None),
    ("gbdt", None),
    ("web/sdk", None),
];

/// The workspace crates each crate may name in `[dependencies]` and `[build-dependencies]`;
/// dev-dependencies may name any crate.
const CRATE_DEPS: &[(&str, &[&str])] = &[
    ("model-wasm", &[]),
    ("gbdt", &[]),
    ("edge-runtime", &["model-wasm"]),
    ("wasmline-sdk", &["model-wasm"]),
    ("control-plane", &["edge-runtime", "gbdt", "model-wasm"]),
    ("tests", &["edge-runtime", "model-wasm"]),
];

fn workspace() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("..")
}

/// A token and its line: an identifier, `::`, a whole string literal, or one punctuation character.
type Token<'a> = (&'a str, usize);

/// Where code names another module, for messages: the statement and the path it names.
#[derive(Clone, Debug)]
struct Evidence {
    file: String,
    line: usize,
    text: String,
    name: String,
}

/// A path a module names; a `use` tree gives one per leaf (`use a::{b, c}` gives two).
#[derive(Debug)]
struct Ref {
    path: Vec<String>,
    is_use: bool,
    /// The name a `pub use` (or `pub(crate) use`) exports.
    exports: Option<String>,
    at: Evidence,
}

/// A crate's module tree: module path (`registry::alias`; `` for the root) -> what it names.
type Tree = BTreeMap<String, Vec<Ref>>;

fn is_ident(t: &str) -> bool {
    t.bytes().all(|c| c.is_ascii_alphanumeric() || c == b'_' || c >= 0x80)
}

/// The end of a raw string literal (`r"..."`, `r#"..."#`) starting at `b[i]`, if one does.
fn raw_string_end(b: &[u8], i: usize) -> Option<usize> {
    let hashes = b[i + 1..].iter().take_while(|&&c| c == b'#').count();
    (b.get(i + 1 + hashes) == Some(&b'"')).then_some(())?;
    let close = [b"\"".as_slice(), &vec![b'#'; hashes]].concat();
    let body = i + 2 + hashes;
    let end = (body..b.len()).find(|&k| b[k..].starts_with(&close)).unwrap_or(b.len());
    Some((end + close.len()).min(b.len()))
}

/// The tokens of Rust source, without comments (line, block, doc) and char literals.
fn lex(src: &str) -> Vec<Token<'_>> {
    let b = src.as_bytes();
    let at = |k: usize| b.get(k).copied().unwrap_or(0);
    let ident = |c: u8| c.is_ascii_alphanumeric() || c == b'_' || c >= 0x80;
    let (mut out, mut i, mut line) = (Vec::new(), 0, 1);
    while i < b.len() {
        let start = i;
        let char_len = match at(i + 1) {
            c if c >= 0xF0 => 4,
            c if c >= 0xE0 => 3,
            c if c >= 0xC0 => 2,
            _ => 1,
        };
        if b[i..].starts_with(b"//") {
            i = (i..b.len()).find(|&k| b[k] == b'\n').unwrap_or(b.len());
        } else if b[i..].starts_with(b"/*") {
            let mut depth = 0;
            while i < b.len() {
                if b[i..].starts_with(b"/*") {
                    (depth, i) = (depth + 1, i + 2);
                } else if b[i..].starts_with(b"*/") {
                    (depth, i) = (depth - 1, i + 2);
                    if depth == 0 {
                        break;
                    }
                } else {
                    i += 1;
                }
            }
        } else if b[i] == b'r'
            && (i == 0 || !ident(b[i - 1]))
            && let Some(end) = raw_string_end(b, i)
        {
            i = end;
        } else if b[i] == b'"' {
            i += 1;
            while i < b.len() && b[i] != b'"' {
                i += if b[i] == b'\\' { 2 } else { 1 };
            }
            i = (i + 1).min(b.len());
        } else if b[i] == b'\'' && at(i + 1) == b'\\' {
            i = (i + 3..b.len()).find(|&k| b[k] == b'\'').map_or(b.len(), |k| k + 1);
        } else if b[i] == b'\'' && at(i + 1 + char_len) == b'\'' {
            i += 2 + char_len;
        } else if ident(b[i]) {
            i = (i..b.len()).find(|&k| !ident(b[k])).unwrap_or(b.len());
        } else {
            i += if b[i..].starts_with(b"::") { 2 } else { 1 };
        }
        let text = &src[start..i];
        let comment = text.starts_with("//") || text.starts_with("/*");
        let char_literal = text.starts_with('\'') && text.len() > 1;
        if !(comment || char_literal || text.trim().is_empty()) {
            out.push((text, line));
        }
        line += text.matches('\n').count();
    }
    out
}

/// The tokens without test code: each `#[cfg(test)]` item (to its `;` or its closing `}`), and
/// the whole file after `#![cfg(test)]`.
fn without_test_code(toks: Vec<Token<'_>>) -> Vec<Token<'_>> {
    const CFG_TEST: [&str; 7] = ["#", "[", "cfg", "(", "test", ")", "]"];
    let is = |k: usize, p: &[&str]| {
        toks.get(k..k + p.len())
            .is_some_and(|s| s.iter().zip(p).all(|(t, p)| t.0 == *p))
    };
    let (mut out, mut i) = (Vec::new(), 0);
    while i < toks.len() {
        if is(i, &["#", "!"]) && is(i + 2, &CFG_TEST[1..]) {
            break;
        } else if !is(i, &CFG_TEST) {
            out.push(toks[i]);
            i += 1;
            continue;
        }
        let mut depth = 0;
        i += CFG_TEST.len();
        while let Some(&(t, _)) = toks.get(i) {
            match t {
                "(" | "[" | "{" => depth += 1,
                ")" | "]" | "}" if depth == 0 => break, // the enclosing block ends: keep it
                ")" | "]" | "}" => depth -= 1,
                _ => {}
            }
            i += 1;
            if depth == 0 && matches!(t, ";" | "}") {
                break;
            }
        }
    }
    out
}

/// One `use` tree from `toks[*i]`, pushing each leaf path and the name it brings in.
fn use_tree(toks: &[Token<'_>], i: &mut usize, prefix: &[String], out: &mut Vec<(Vec<String>, String)>) {
    let mut path = prefix.to_vec();
    let next_is = |i: usize, s: &str| toks.get(i).is_some_and(|t| t.0 == s);
    while let Some(&(t, _)) = toks.get(*i) {
        *i += 1;
        match t {
            "::" => {}
            "*" => return out.push((path, "*".into())),
            "{" => {
                while toks.get(*i).is_some_and(|t| t.0 != "}") {
                    let before = *i;
                    use_tree(toks, i, &path, out);
                    if next_is(*i, ",") || *i == before {
                        *i += 1;
                    }
                }
                *i += 1;
                return;
            }
            t if is_ident(t) => {
                path.push(t.to_owned());
                if next_is(*i, "::") {
                    continue;
                }
                let mut name = t.to_owned();
                if next_is(*i, "as") {
                    name = toks.get(*i + 1).map_or(name, |t| t.0.to_owned());
                    *i += 2;
                }
                if t == "self" {
                    path.pop();
                    name = path.last().cloned().unwrap_or_default();
                }
                return out.push((path, name));
            }
            _ => return,
        }
    }
}

/// What a file's code names: each `use` leaf, and each inline path starting with `crate::`,
/// `super::` or `self::`. `lines` are the file's, for messages.
fn references(toks: &[Token<'_>], file: &str, lines: &[&str]) -> Vec<Ref> {
    let text = |line: usize| lines.get(line - 1).map_or("", |l| l.trim()).to_owned();
    let at = |line: usize, path: &[String]| Evidence {
        file: file.to_owned(),
        line,
        text: text(line),
        name: path.last().cloned().unwrap_or_default(),
    };
    let (mut refs, mut i) = (Vec::new(), 0);
    while let Some(&(t, line)) = toks.get(i) {
        if t == "use" {
            let before: Vec<&str> = toks[i.saturating_sub(5)..i].iter().map(|t| t.0).collect();
            let public = before.last() == Some(&"pub") || (before.last() == Some(&")") && before.contains(&"pub"));
            let end = toks[i..].iter().position(|t| t.0 == ";").map_or(toks.len(), |p| p + i);
            let mut leaves = Vec::new();
            i += 1;
            use_tree(&toks[..end], &mut i, &[], &mut leaves);
            for (path, name) in leaves {
                let (at, exports) = (at(line, &path), public.then_some(name));
                refs.push(Ref {
                    path,
                    is_use: true,
                    exports,
                    at,
                });
            }
            i = end + 1;
        } else if matches!(t, "crate" | "super" | "self") && toks.get(i + 1).is_some_and(|t| t.0 == "::") {
            let mut path = vec![t.to_owned()];
            while toks.get(i + 1).is_some_and(|t| t.0 == "::") && toks.get(i + 2).is_some_and(|t| is_ident(t.0)) {
                path.push(toks[i + 2].0.to_owned());
                i += 2;
            }
            refs.push(Ref {
                at: at(line, &path),
                path,
                is_use: false,
                exports: None,
            });
            i += 1;
        } else {
            i += 1;
        }
    }
    refs
}

fn key(path: &[String]) -> String {
    path.join("::")
}

/// The module tree reachable from `root_file` by `mod NAME;`, read through `read`; file names in
/// messages are relative to `base`. Modules named `tests` are test code and left out.
fn module_tree(read: &dyn Fn(&Path) -> Option<String>, base: &Path, root_file: &Path) -> Tree {
    let mut tree = Tree::new();
    let mut queue = vec![(Vec::<String>::new(), root_file.to_path_buf())];
    while let Some((path, file)) = queue.pop() {
        let Some(src) = read(&file) else { continue };
        let toks = without_test_code(lex(&src));
        let dir = file.parent().unwrap_or(Path::new("")).to_path_buf();
        let stem = file.file_stem().and_then(|s| s.to_str()).unwrap_or_default();
        let child_dir = if path.is_empty() || stem == "mod" {
            dir.clone()
        } else {
            dir.join(stem)
        };
        let mut path_attr = None;
        for (k, &(t, _)) in toks.iter().enumerate() {
            let next = |n: usize| toks.get(k + n).map_or("", |t| t.0);
            if t == "path" && k > 0 && toks[k - 1].0 == "[" && next(1) == "=" {
                path_attr = Some(next(2).trim_matches('"'));
            } else if matches!(t, ";" | "{" | "}") {
                path_attr = None;
            } else if t == "mod" && is_ident(next(1)) && next(2) == ";" && next(1) != "tests" {
                let name = next(1);
                let child = match path_attr.take() {
                    Some(p) => dir.join(p),
                    None if read(&child_dir.join(format!("{name}.rs"))).is_some() => {
                        child_dir.join(format!("{name}.rs"))
                    }
                    None => child_dir.join(name).join("mod.rs"),
                };
                queue.push(([path.as_slice(), &[name.to_owned()]].concat(), child));
            }
        }
        let shown = file.strip_prefix(base).unwrap_or(&file).display().to_string();
        tree.insert(key(&path), references(&toks, &shown, &src.lines().collect::<Vec<_>>()));
    }
    tree
}

/// The module a path names, seen from module `from`: the deepest module the path walks through,
/// or the module a re-exported name comes from. `None` for paths outside the crate.
fn resolve(tree: &Tree, from: &[String], path: &[String], is_use: bool, depth: usize) -> Option<Vec<String>> {
    let child = |m: &[String], name: &str| tree.contains_key(&key(&[m, &[name.to_owned()]].concat()));
    let mut at = match path.first()?.as_str() {
        "crate" => Vec::new(),
        "super" | "self" => from.to_vec(),
        first if is_use && child(from, first) => from.to_vec(),
        _ => return None,
    };
    for seg in &path[usize::from(path[0] == "crate" || path[0] == "self")..] {
        if seg == "super" {
            at.pop();
        } else if child(&at, seg) {
            at.push(seg.clone());
        } else {
            let export = tree[&key(&at)]
                .iter()
                .find(|r| r.exports.as_deref() == Some(seg.as_str()));
            if let Some(r) = export.filter(|_| depth < 4) {
                return Some(resolve(tree, &at, &r.path, true, depth + 1).unwrap_or(at));
            }
            break;
        }
    }
    Some(at)
}

/// Arrows between siblings: parent module -> (from child, to child) -> where.
type Arrows = BTreeMap<String, BTreeMap<(String, String), Vec<Evidence>>>;

fn sibling_arrows(tree: &Tree) -> Arrows {
    let mut arrows = Arrows::new();
    for (name, refs) in tree {
        let from: Vec<String> = name.split("::").filter(|s| !s.is_empty()).map(String::from).collect();
        for r in refs {
            let Some(to) = resolve(tree, &from, &r.path, r.is_use, 0) else {
                continue;
            };
            let common = from.iter().zip(&to).take_while(|(a, b)| a == b).count();
            if common == from.len() || common == to.len() {
                continue; // to an ancestor, itself or a descendant: not between siblings
            }
            let pair = (from[common].clone(), to[common].clone());
            arrows
                .entry(key(&from[..common]))
                .or_default()
                .entry(pair)
                .or_default()
                .push(r.at.clone());
        }
    }
    arrows
}

/// The circles among siblings: each group of two or more modules that all reach each other.
fn circles(edges: &BTreeMap<(String, String), Vec<Evidence>>) -> Vec<Vec<String>> {
    let reach = |from: &String| {
        let (mut seen, mut todo) = (BTreeSet::new(), vec![from.clone()]);
        while let Some(v) = todo.pop() {
            for (_, b) in edges.keys().filter(|(a, _)| *a == v) {
                if seen.insert(b.clone()) {
                    todo.push(b.clone());
                }
            }
        }
        seen
    };
    let mut out: Vec<Vec<String>> = Vec::new();
    for (v, _) in edges.keys() {
        let group: Vec<String> = reach(v).into_iter().filter(|w| reach(w).contains(v)).collect();
        if group.len() > 1 && !out.contains(&group) {
            out.push(group);
        }
    }
    out
}

fn describe(out: &mut String, from: &str, to: &str, evidence: &[Evidence]) {
    out.push_str(&format!("    {from} -> {to}:\n"));
    let mut lines: Vec<(&Evidence, Vec<&str>)> = Vec::new();
    for e in evidence {
        match lines.iter_mut().find(|(l, _)| (&l.file, l.line) == (&e.file, e.line)) {
            Some((_, names)) => names.push(&e.name),
            None => lines.push((e, vec![&e.name])),
        }
    }
    for (e, names) in lines.iter().take(4) {
        // A grouped or multi-line `use`: which of its names point here.
        let names = if e.text.contains('{') || !e.text.ends_with(';') {
            format!("   [{}]", names.join(", "))
        } else {
            String::new()
        };
        out.push_str(&format!("      {}:{}: {}{names}\n", e.file, e.line, e.text));
    }
    if lines.len() > 4 {
        out.push_str(&format!("      (and {} more)\n", lines.len() - 4));
    }
}

/// Each crate's module trees, labelled `dir (lib)` and `dir (bin)`, with the crate's layers.
fn crate_trees() -> Vec<(String, Option<Layers>, Tree)> {
    let root = workspace();
    let read = |p: &Path| std::fs::read_to_string(p).ok();
    let mut trees = Vec::new();
    for &(dir, layers) in CRATES {
        for (kind, file) in [("lib", "lib.rs"), ("bin", "main.rs")] {
            let path = root.join(dir).join("src").join(file);
            if path.exists() {
                let layers = layers.filter(|_| kind == "lib");
                trees.push((format!("{dir} ({kind})"), layers, module_tree(&read, &root, &path)));
            }
        }
    }
    trees
}

#[test]
fn no_import_circles_between_sibling_modules() {
    let mut report = String::new();
    for (name, _, tree) in crate_trees() {
        for (parent, edges) in sibling_arrows(&tree) {
            for group in circles(&edges) {
                let inside: Vec<_> = edges
                    .iter()
                    .filter(|((a, b), _)| group.contains(a) && group.contains(b))
                    .collect();
                let both: Vec<String> = inside
                    .iter()
                    .filter(|((a, b), _)| a < b && edges.contains_key(&(b.clone(), a.clone())))
                    .map(|((a, b), _)| format!("{a} <-> {b}"))
                    .collect();
                let parent = if parent.is_empty() { "crate" } else { &parent };
                report.push_str(&format!(
                    "{name}, in `{parent}`: a circle through {}\n",
                    group.join(", ")
                ));
                if !both.is_empty() {
                    report.push_str(&format!("  both ways: {}\n", both.join(", ")));
                }
                for ((a, b), evidence) in inside {
                    describe(&mut report, a, b, evidence);
                }
            }
        }
    }
    assert!(
        report.is_empty(),
        "import circles between sibling modules (A -> B: code in A names B):\n{report}"
    );
}

#[test]
fn top_level_modules_follow_the_layers() {
    let mut report = String::new();
    for (name, layers, tree) in crate_trees() {
        let Some(layers) = layers else { continue };
        let layer_of = |m: &str| layers.iter().position(|(_, ms)| ms.contains(&m));
        for m in tree
            .keys()
            .filter(|k| !k.is_empty() && !k.contains("::") && layer_of(k).is_none())
        {
            report.push_str(&format!(
                "{name}: module `{m}` has no layer: add it to LAYERS and docs/ARCHITECTURE.md\n"
            ));
        }
        for ((a, b), evidence) in sibling_arrows(&tree).remove("").unwrap_or_default() {
            let (Some(la), Some(lb)) = (layer_of(&a), layer_of(&b)) else {
                continue;
            };
            if lb >= la {
                report.push_str(&format!(
                    "{name}: `{a}` ({}) may not name `{b}` ({}):\n",
                    layers[la].0, layers[lb].0
                ));
                describe(&mut report, &a, &b, &evidence);
            }
        }
    }
    assert!(
        report.is_empty(),
        "arrows against the layers (a module names only lower layers):\n{report}"
    );
}

/// The workspace crates a manifest's `[dependencies]`, `[build-dependencies]` and
/// `[target.'..'.dependencies]` name, read line by line: `name = ..`, `name.workspace = true`,
/// `[dependencies.name]`, and renames (`package = "name"`).
fn normal_dependencies(manifest: &str, members: &[String]) -> Vec<String> {
    let is_deps = |s: &str| matches!(s, "dependencies" | "build-dependencies");
    let (mut found, mut in_deps) = (Vec::new(), false);
    for line in manifest.lines().map(str::trim).filter(|l| !l.starts_with('#')) {
        if let Some(section) = line.strip_prefix('[') {
            let parts: Vec<&str> = section.trim_end_matches(']').split('.').collect();
            in_deps = is_deps(parts[parts.len() - 1]);
            if parts.len() >= 2 && is_deps(parts[parts.len() - 2]) {
                found.push(parts[parts.len() - 1].to_owned());
            }
        } else if let Some((lhs, rhs)) = line.split_once('=').filter(|_| in_deps) {
            let name = lhs.trim().split('.').next().unwrap_or_default().trim_matches('"');
            let renamed = rhs.split_once("package").and_then(|(_, p)| p.split('"').nth(1));
            found.push(renamed.unwrap_or(name).to_owned());
        }
    }
    found.retain(|d| members.contains(d));
    found
}

#[test]
fn crates_depend_only_downwards() {
    let root = workspace();
    let read = |dir: &str| std::fs::read_to_string(root.join(dir).join("Cargo.toml")).expect("a manifest");
    // The workspace's `members = ["a", "b", ..]`, which may span several lines.
    let workspace_manifest = read(".");
    let list = workspace_manifest
        .split("members")
        .nth(1)
        .and_then(|s| s.split_once('[')?.1.split_once(']'));
    let dirs = list.map_or("", |(list, _)| list).split('"').skip(1).step_by(2);
    let manifests: Vec<(&str, String)> = dirs.map(|d| (d, read(d))).collect();
    let package = |text: &str| {
        let section = text.split("[package]").nth(1)?;
        section
            .lines()
            .find_map(|l| l.trim().strip_prefix("name")?.split('"').nth(1).map(String::from))
    };
    let members: Vec<String> = manifests.iter().filter_map(|(_, t)| package(t)).collect();
    let mut report = String::new();
    for (dir, text) in &manifests {
        let Some(name) = package(text) else { continue };
        let Some(&(_, allowed)) = CRATE_DEPS.iter().find(|(c, _)| *c == name) else {
            report.push_str(&format!(
                "{dir}/Cargo.toml: crate `{name}` is not in CRATE_DEPS: add it\n"
            ));
            continue;
        };
        for dep in normal_dependencies(text, &members)
            .iter()
            .filter(|d| !allowed.contains(&d.as_str()))
        {
            report.push_str(&format!(
                "{dir}/Cargo.toml: `{name}` depends on `{dep}` (allowed: {allowed:?})\n"
            ));
        }
    }
    assert!(
        report.is_empty(),
        "dependencies between crates against the documented direction:\n{report}"
    );
}

// The scanner's own tests, on sources held in memory.

fn arrows_of(files: &[(&str, &str)]) -> Vec<String> {
    let read = |p: &Path| {
        files
            .iter()
            .find(|(f, _)| Path::new(f) == p)
            .map(|(_, s)| s.to_string())
    };
    let arrows = sibling_arrows(&module_tree(&read, Path::new(""), Path::new("src/lib.rs")));
    arrows
        .iter()
        .flat_map(|(p, e)| e.keys().map(move |(a, b)| format!("{p}: {a} -> {b}")))
        .collect()
}

fn paths_named(src: &str) -> Vec<String> {
    references(&without_test_code(lex(src)), "f.rs", &[])
        .iter()
        .map(|r| r.path.join("::"))
        .collect()
}

#[test]
fn scanner_reads_a_grouped_multi_line_use() {
    let paths = paths_named("use crate::{\n    a::X,\n    b::{self, Y, z::Z as W},\n};\nfn f() {}");
    assert_eq!(paths, ["crate::a::X", "crate::b", "crate::b::Y", "crate::b::z::Z"]);
    let exported = references(&lex("pub(crate) use x::{Y as Z};"), "f.rs", &[]);
    assert_eq!(exported[0].exports.as_deref(), Some("Z"));
}

#[test]
fn scanner_resolves_super_super_and_re_exports() {
    let files = [
        ("src/lib.rs", "mod a;\nmod b;\n"),
        (
            "src/a/mod.rs",
            "mod deep;\nmod alias;\nmod compare;\npub use alias::Alias;\n",
        ),
        ("src/a/deep.rs", "fn f() { super::super::b::g(); }\n"),
        ("src/a/alias.rs", "use super::Error;\npub struct Alias;\n"),
        ("src/a/compare.rs", "use super::Alias;\n"),
        ("src/b.rs", "pub fn g() {}\n"),
    ];
    assert_eq!(arrows_of(&files), [": a -> b", "a: compare -> alias"]);
}

#[test]
fn scanner_ignores_comments_and_strings() {
    let src = "/// wasmline::x\n//! crate::y\n/* crate::z /* nested */ crate::w */\nlet s = \"crate::v\";\n\
               let r = r#\"crate::u\"#; let c = '\"'; let l: &'a str = crate::t;\n";
    assert_eq!(paths_named(src), ["crate::t"]);
    assert_eq!(
        lex(src).last().map(|t| t.1),
        Some(5),
        "lines are counted through comments"
    );
}

#[test]
fn manifests_are_read_line_by_line() {
    let members = ["model-wasm", "edge-runtime", "tests", "control-plane"].map(String::from);
    let manifest = "[package]\nname = \"x\"\n[dependencies]\nmodel-wasm = { workspace = true }\nserde = \"1\"\n\
                    edge-runtime.workspace = true\nt = { package = \"tests\", path = \"../tests\" }\n\
                    [dev-dependencies]\ncontrol-plane = { path = \"..\" }\n\
                    [target.'cfg(unix)'.build-dependencies.control-plane]\npath = \"..\"\n";
    assert_eq!(normal_dependencies(manifest, &members), members);
}

#[test]
fn scanner_skips_cfg_test_code() {
    let a = "#[cfg(test)]\nmod tests {\n    use crate::b::X;\n    fn f() { let _ = [0u8; 2]; }\n}\n\
             #[cfg(test)]\nuse crate::b::Y;\npub fn g() {}\n";
    let b = "#[cfg(test)]\n#[path = \"b_tests.rs\"]\nmod tests;\nmod tests;\nfn h() { crate::a::g() }\n";
    let files = [
        ("src/lib.rs", "mod a;\nmod b;\n"),
        ("src/a.rs", a),
        ("src/b.rs", b),
        ("src/b/tests.rs", "use crate::a::Z;\n"),
    ];
    assert_eq!(arrows_of(&files), [": b -> a"]);
}
