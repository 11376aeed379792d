//! Layout checks of the library crates, run by `cargo test`: modules layered without cycles,
//! files short enough to read, and a code map in ARCHITECTURE.md that names only what exists.

use std::collections::{BTreeMap, BTreeSet};
use std::fs;
use std::path::{Path, PathBuf};

use crate::root;

/// The longest a source file in `crates/` may grow.
const MAX_LINES: usize = 800;

/// Every `.rs` file under `dir`, sorted.
fn rust_files(dir: &Path) -> Vec<PathBuf> {
    let mut files = Vec::new();
    let mut todo = vec![dir.to_path_buf()];
    while let Some(path) = todo.pop() {
        if path.is_dir() {
            for entry in fs::read_dir(&path).expect("readable directory") {
                todo.push(entry.expect("directory entry").path());
            }
        } else if path.extension().is_some_and(|e| e == "rs") {
            files.push(path);
        }
    }
    files.sort();
    files
}

fn crate_dirs() -> Vec<PathBuf> {
    let mut dirs: Vec<PathBuf> = fs::read_dir(root().join("crates"))
        .expect("crates/")
        .map(|e| e.expect("entry").path())
        .filter(|p| p.join("src/lib.rs").exists())
        .collect();
    dirs.sort();
    dirs
}

/// The module path of a file under `src`: `lib.rs` is the root (`""`), `a/mod.rs` and `a.rs`
/// are `a`, `a/b.rs` is `a::b`.
fn module_of(src: &Path, file: &Path) -> String {
    let rel = file.strip_prefix(src).expect("under src");
    let mut parts: Vec<String> = rel
        .iter()
        .map(|p| p.to_string_lossy().trim_end_matches(".rs").to_owned())
        .collect();
    if parts.last().is_some_and(|p| p == "mod" || p == "lib") {
        parts.pop();
    }
    parts.join("::")
}

/// The code of a file without its comments (doc links are not imports).
fn code(text: &str) -> String {
    text.lines()
        .map(|l| match l.find("//") {
            Some(i) => &l[..i],
            None => l,
        })
        .collect::<Vec<_>>()
        .join("\n")
}

/// Every path a file's code names from the crate root: `crate::a::b::C` as written, the
/// groups of `use crate::{a::X, b}` spread out, and `super::` resolved from `module`.
fn named_paths(module: &str, code: &str) -> Vec<Vec<String>> {
    let mut out = Vec::new();
    let parent: Vec<&str> = module.split("::").filter(|s| !s.is_empty()).collect();
    let bytes = code.as_bytes();
    let mut i = 0;
    while i < code.len() {
        let rest = &code[i..];
        let (mut base, skip): (Vec<String>, usize) = if rest.starts_with("crate::") {
            (Vec::new(), "crate::".len())
        } else if rest.starts_with("super::") {
            let mut up = parent.clone();
            let mut n = 0;
            while code[i + n..].starts_with("super::") {
                up.pop();
                n += "super::".len();
            }
            (up.iter().map(|s| (*s).to_owned()).collect(), n)
        } else {
            i += rest.chars().next().map_or(1, char::len_utf8);
            continue;
        };
        let before = if i == 0 { b' ' } else { bytes[i - 1] };
        if before.is_ascii_alphanumeric() || before == b'_' || before == b':' {
            i += skip;
            continue;
        }
        i += skip;
        let rest = &code[i..];
        if let Some(group) = rest.strip_prefix('{') {
            let end = group.find('}').unwrap_or(group.len());
            for item in group[..end].split(',') {
                let item: Vec<String> = item
                    .trim()
                    .split("::")
                    .map(|s| s.trim().to_owned())
                    .filter(|s| !s.is_empty())
                    .collect();
                let mut path = base.clone();
                path.extend(item);
                out.push(path);
            }
            continue;
        }
        let len = rest
            .find(|c: char| !(c.is_ascii_alphanumeric() || c == '_' || c == ':'))
            .unwrap_or(rest.len());
        base.extend(
            rest[..len]
                .split("::")
                .filter(|s| !s.is_empty())
                .map(str::to_owned),
        );
        out.push(base);
        i += len;
    }
    out
}

/// Which module a name re-exported by the crate root comes from (`pub use crate::a::b::X;`).
fn root_exports(lib: &str) -> BTreeMap<String, String> {
    let mut map = BTreeMap::new();
    for path in named_paths("", &code(lib)) {
        if let Some((name, module)) = path.split_last() {
            map.insert(name.clone(), module.join("::"));
        }
    }
    map
}

/// The module a path lands in: its longest prefix that is a module, a root re-export followed.
fn resolve(
    path: &[String],
    modules: &BTreeSet<String>,
    exports: &BTreeMap<String, String>,
) -> String {
    if path.len() == 1 {
        if let Some(module) = exports.get(&path[0]) {
            return module.clone();
        }
    }
    (0..=path.len())
        .rev()
        .map(|n| path[..n].join("::"))
        .find(|m| modules.contains(m))
        .unwrap_or_default()
}

/// The imports between the modules of the crate at `dir`: `a → b` when `a`'s code names
/// something of `b` and `b` is not inside `a` (a module declares and re-exports its children;
/// that is its shape, not an import).
fn imports(dir: &Path) -> BTreeMap<String, BTreeSet<String>> {
    let src = dir.join("src");
    let files = rust_files(&src);
    let modules: BTreeSet<String> = files.iter().map(|f| module_of(&src, f)).collect();
    let exports = root_exports(&fs::read_to_string(src.join("lib.rs")).expect("lib.rs"));
    let mut graph: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
    for file in &files {
        let from = module_of(&src, file);
        let text = fs::read_to_string(file).expect("readable source");
        for path in named_paths(&from, &code(&text)) {
            let to = resolve(&path, &modules, &exports);
            let inside = to == from || to.starts_with(&format!("{from}::")) || from.is_empty();
            if !inside && !to.is_empty() {
                graph.entry(from.clone()).or_default().insert(to);
            }
        }
    }
    graph
}

/// A cycle in `graph`, if there is one, as the modules along it.
fn cycle(graph: &BTreeMap<String, BTreeSet<String>>) -> Option<Vec<String>> {
    fn visit(
        node: &str,
        graph: &BTreeMap<String, BTreeSet<String>>,
        stack: &mut Vec<String>,
        done: &mut BTreeSet<String>,
    ) -> Option<Vec<String>> {
        if let Some(at) = stack.iter().position(|n| n == node) {
            let mut cycle = stack[at..].to_vec();
            cycle.push(node.to_owned());
            return Some(cycle);
        }
        if done.contains(node) {
            return None;
        }
        stack.push(node.to_owned());
        for next in graph.get(node).into_iter().flatten() {
            if let Some(cycle) = visit(next, graph, stack, done) {
                return Some(cycle);
            }
        }
        stack.pop();
        done.insert(node.to_owned());
        None
    }
    let mut done = BTreeSet::new();
    graph
        .keys()
        .find_map(|node| visit(node, graph, &mut Vec::new(), &mut done))
}

#[test]
fn no_module_cycles_in_any_crate() {
    let mut problems = Vec::new();
    for dir in crate_dirs() {
        if let Some(cycle) = cycle(&imports(&dir)) {
            problems.push(format!("{}: {}", dir.display(), cycle.join(" → ")));
        }
    }
    assert!(
        problems.is_empty(),
        "modules that import each other:\n{}",
        problems.join("\n")
    );
}

#[test]
fn the_cycle_check_finds_a_cycle() {
    let a = named_paths("a", "use crate::b::X;\nfn f() { super::c::g(); }");
    assert_eq!(a, vec![vec!["b", "X"], vec!["c", "g"]]);
    let grouped = named_paths("x::y", "use super::{z::Z, W};");
    assert_eq!(grouped, vec![vec!["x", "z", "Z"], vec!["x", "W"]]);
    let mut graph = BTreeMap::new();
    graph.insert("a".to_owned(), BTreeSet::from(["b".to_owned()]));
    graph.insert("b".to_owned(), BTreeSet::from(["c".to_owned()]));
    assert_eq!(cycle(&graph), None);
    graph.insert("c".to_owned(), BTreeSet::from(["a".to_owned()]));
    assert_eq!(cycle(&graph).map(|c| c.len()), Some(4));
}

#[test]
fn no_source_file_in_crates_is_over_800_lines() {
    let mut problems = Vec::new();
    for dir in crate_dirs() {
        for file in rust_files(&dir) {
            let lines = fs::read_to_string(&file).expect("readable").lines().count();
            if lines > MAX_LINES {
                problems.push(format!("{}: {lines} lines", file.display()));
            }
        }
    }
    assert!(
        problems.is_empty(),
        "over {MAX_LINES} lines:\n{}",
        problems.join("\n")
    );
}

/// Every `file.rs` (or `dir/`) and every type ARCHITECTURE.md's code map names under a crate's
/// heading exists in that crate.
#[test]
fn the_code_map_names_only_what_exists() {
    let map = fs::read_to_string(root().join("ARCHITECTURE.md")).expect("ARCHITECTURE.md");
    let mut problems = Vec::new();
    let mut current: Option<PathBuf> = None;
    for line in map.lines() {
        if let Some(name) = line.strip_prefix("### `").and_then(|l| l.strip_suffix('`')) {
            let dir = ["crates", "examples"]
                .iter()
                .map(|d| root().join(d).join(name))
                .find(|d| d.exists());
            current = dir;
            continue;
        }
        if line.starts_with("## ") {
            current = None;
        }
        let Some(dir) = &current else { continue };
        let sources: String = rust_files(&dir.join("src"))
            .iter()
            .map(|f| fs::read_to_string(f).expect("readable"))
            .collect();
        for quoted in line.split('`').skip(1).step_by(2) {
            let word = quoted.trim_end_matches("()");
            if word.ends_with(".rs") || (word.ends_with('/') && !word.contains(' ')) {
                if !dir.join("src").join(word).exists() {
                    problems.push(format!("{}: no src/{word}", dir.display()));
                }
            } else if is_type_name(word) {
                let defined = ["struct ", "enum ", "trait ", "type "]
                    .iter()
                    .any(|kind| sources.contains(&format!("{kind}{word}")));
                if !defined {
                    problems.push(format!("{}: no type {word}", dir.display()));
                }
            }
        }
    }
    assert!(
        problems.is_empty(),
        "ARCHITECTURE.md names what does not exist:\n{}",
        problems.join("\n")
    );
}

/// A bare CamelCase identifier: what the code map writes for a type.
fn is_type_name(word: &str) -> bool {
    let mut chars = word.chars();
    chars.next().is_some_and(|c| c.is_ascii_uppercase())
        && word.chars().all(|c| c.is_ascii_alphanumeric())
        && word.chars().any(|c| c.is_ascii_lowercase())
}
