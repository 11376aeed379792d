//! Tidy checks, run by `cargo test` like any other test: the conventions a reviewer would
//! otherwise have to remember.

use std::fs;
use std::path::{Path, PathBuf};
use std::process::Command;

use crate::root;

fn dirs(under: &str) -> Vec<PathBuf> {
    let mut dirs: Vec<PathBuf> = fs::read_dir(root().join(under))
        .unwrap_or_else(|e| panic!("cannot read {under}: {e}"))
        .map(|entry| entry.expect("directory entry").path())
        .filter(|p| p.join("Cargo.toml").exists())
        .collect();
    dirs.sort();
    dirs
}

fn name(dir: &Path) -> String {
    dir.file_name()
        .expect("named directory")
        .to_string_lossy()
        .into_owned()
}

fn read(path: &Path) -> String {
    fs::read_to_string(path).unwrap_or_else(|e| panic!("cannot read {}: {e}", path.display()))
}

#[test]
fn every_crate_has_a_readme_a_crate_doc_and_package_metadata() {
    let mut problems = Vec::new();
    for dir in dirs("crates") {
        let crate_name = name(&dir);
        let readme = dir.join("README.md");
        if !readme.exists() || read(&readme).trim().is_empty() {
            problems.push(format!("{crate_name}: README.md is missing or empty"));
        }
        let lib = dir.join("src/lib.rs");
        if !lib.exists() || !read(&lib).trim_start().starts_with("//!") {
            problems.push(format!(
                "{crate_name}: src/lib.rs must open with a crate doc (//!)"
            ));
        }
        let manifest = read(&dir.join("Cargo.toml"));
        for key in ["description", "readme", "keywords", "categories"] {
            if !manifest.lines().any(|l| l.starts_with(&format!("{key} ="))) {
                problems.push(format!("{crate_name}: Cargo.toml lacks `{key}`"));
            }
        }
        for key in ["license.workspace = true", "[lints]\nworkspace = true"] {
            if !manifest.contains(key) {
                problems.push(format!("{crate_name}: Cargo.toml lacks `{key}`"));
            }
        }
    }
    assert!(problems.is_empty(), "\n{}", problems.join("\n"));
}

#[test]
fn every_crate_is_in_the_architecture_code_map() {
    let architecture = read(&root().join("ARCHITECTURE.md"));
    let missing: Vec<String> = dirs("crates")
        .iter()
        .map(|d| name(d))
        .filter(|n| !architecture.contains(&format!("### `{n}`")))
        .collect();
    assert!(
        missing.is_empty(),
        "ARCHITECTURE.md has no `### `NAME`` heading for {missing:?}"
    );
}

#[test]
fn every_example_is_listed_in_the_readme() {
    let readme = read(&root().join("README.md"));
    let missing: Vec<String> = dirs("examples")
        .iter()
        .map(|d| name(d))
        .filter(|n| !readme.contains(&format!("`{n}`")))
        .collect();
    assert!(
        missing.is_empty(),
        "README.md does not list the examples {missing:?}"
    );
}

/// The crates every other crate may depend on: the model, and the shared HTTP side.
const SHARED: [&str; 2] = ["push-core", "push-http"];

#[test]
fn technique_crates_depend_only_on_the_shared_crates_and_core_on_no_http_crate() {
    let mut problems = Vec::new();
    for dir in dirs("crates") {
        let crate_name = name(&dir);
        let manifest = read(&dir.join("Cargo.toml"));
        let deps = manifest
            .split("\n[")
            .filter(|section| section.starts_with("dependencies]"))
            .collect::<String>();
        for line in deps.lines().skip(1) {
            let dep = line.split(['=', '.', ' ']).next().unwrap_or("").trim();
            if dep.starts_with("push-") && !SHARED.contains(&dep) {
                problems.push(format!(
                    "{crate_name} depends on {dep}: crates depend only on push-core and push-http, \
                     never on each other"
                ));
            }
            if crate_name == "push-http" && dep == "push-http" {
                problems.push("push-http depends on itself".to_owned());
            }
            if crate_name == "push-core"
                && (dep.starts_with("push-")
                    || [
                        "hyper",
                        "http",
                        "http-body",
                        "h2",
                        "tungstenite",
                        "tokio-tungstenite",
                    ]
                    .contains(&dep))
            {
                problems.push(format!(
                    "push-core depends on {dep}: it must stay the model alone, free of HTTP crates"
                ));
            }
        }
    }
    assert!(problems.is_empty(), "\n{}", problems.join("\n"));
}

/// The crates that each turn push-core into one technique.
const TECHNIQUES: [(&str, &str); 6] = [
    ("push-poll", "Poller"),
    ("push-longpoll", "LongPoll"),
    ("push-sse", "Sse"),
    ("push-ws", "Ws"),
    ("push-stream", "Streamer"),
    ("push-h2", "Events"),
];

#[test]
fn every_technique_crate_has_the_same_shape() {
    let mut problems = Vec::new();
    for (crate_name, endpoint) in TECHNIQUES {
        let dir = root().join("crates").join(crate_name);
        for file in ["src/lib.rs", "src/endpoint.rs", "src/client.rs"] {
            if !dir.join(file).exists() {
                problems.push(format!("{crate_name}: no {file}"));
            }
        }
        let manifest = read(&dir.join("Cargo.toml"));
        if !manifest.lines().any(|l| l.starts_with("client = [")) {
            problems.push(format!("{crate_name}: no `client` feature"));
        }
        let lib = read(&dir.join("src/lib.rs"));
        if !lib.contains("#[cfg(feature = \"client\")]\n#[cfg_attr(docsrs, doc(cfg(feature = \"client\")))]\npub mod client;") {
            problems.push(format!("{crate_name}: `pub mod client` behind the `client` feature"));
        }
        let endpoint_rs = read(&dir.join("src/endpoint.rs"));
        // One naming scheme: the endpoint, `{Technique}Config` (push-h2: `H2Config`), a body
        // type, the `open()` gauge and a `respond` that takes the request by value.
        let body = format!("pub type {}Body", endpoint.trim_end_matches("er"));
        let checks = [
            (format!("pub struct {endpoint}"), "the endpoint type"),
            ("pub fn respond<B>(".to_owned(), "respond<B>"),
            (
                "req: Request<B>,".to_owned(),
                "respond taking the request by value",
            ),
            ("+ Send + 'static".to_owned(), "a Send + 'static future"),
        ];
        for (needle, what) in checks {
            if !endpoint_rs.contains(&needle) {
                problems.push(format!(
                    "{crate_name}: src/endpoint.rs lacks {what} (`{needle}`)"
                ));
            }
        }
        if !endpoint_rs.contains(&body)
            && !endpoint_rs.contains(&format!("pub struct {endpoint}Body"))
        {
            let ws = crate_name == "push-ws" && endpoint_rs.contains("pub type WsBody");
            if !ws {
                problems.push(format!("{crate_name}: no body type (`{body}`)"));
            }
        }
        // A poll is answered at once: it has nothing open to count. The others write the
        // gauge with push-http's `endpoint_methods!` (or by hand).
        let has_gauge = crate_name != "push-poll";
        let macro_gauge = endpoint_rs
            .split("endpoint_methods!(")
            .nth(1)
            .and_then(|rest| rest.split(')').next())
            .is_some_and(|list| list.contains("open"));
        let gauge = macro_gauge || endpoint_rs.contains("pub fn open(&self) -> usize");
        if has_gauge && !gauge {
            problems.push(format!("{crate_name}: no `open()` gauge"));
        }
    }
    assert!(problems.is_empty(), "\n{}", problems.join("\n"));
}

/// The xtask's functions stay short enough to read at once.
#[test]
fn xtask_functions_stay_under_80_lines() {
    let mut problems = Vec::new();
    let mut files = vec![root().join("xtask/src")];
    while let Some(path) = files.pop() {
        if path.is_dir() {
            for entry in fs::read_dir(&path).expect("read xtask/src") {
                files.push(entry.expect("entry").path());
            }
            continue;
        }
        if path.extension().is_none_or(|e| e != "rs") {
            continue;
        }
        let text = read(&path);
        let lines: Vec<&str> = text.lines().collect();
        let mut i = 0;
        while i < lines.len() {
            let line = lines[i];
            let body = line.trim_start();
            let is_fn = ["fn ", "pub(crate) fn ", "async fn ", "pub(crate) async fn "]
                .iter()
                .any(|p| body.starts_with(p));
            if !is_fn {
                i += 1;
                continue;
            }
            let indent = &line[..line.len() - body.len()];
            let end = format!("{indent}}}");
            let close = (i + 1..lines.len()).find(|&j| lines[j] == end);
            if let Some(j) = close {
                if j - i + 1 > 80 {
                    problems.push(format!(
                        "{}:{}: a function of {} lines",
                        path.display(),
                        i + 1,
                        j - i + 1
                    ));
                }
                i = j;
            }
            i += 1;
        }
    }
    assert!(problems.is_empty(), "\n{}", problems.join("\n"));
}

#[test]
fn no_trailing_whitespace_or_tabs_in_tracked_text() {
    let output = Command::new("git")
        .args(["ls-files", "-z"])
        .current_dir(root())
        .output()
        .expect("git is installed");
    assert!(output.status.success(), "git ls-files failed");
    let mut problems = Vec::new();
    for file in output.stdout.split(|&b| b == 0).filter(|f| !f.is_empty()) {
        let file = String::from_utf8_lossy(file).into_owned();
        let text_like = [
            ".rs", ".toml", ".md", ".html", ".js", ".css", ".conf", ".sh",
        ]
        .iter()
        .any(|ext| file.ends_with(ext))
            || file == ".ci/run";
        if !text_like {
            continue;
        }
        let Ok(text) = fs::read_to_string(root().join(&file)) else {
            continue;
        };
        for (i, line) in text.lines().enumerate() {
            if line.ends_with([' ', '\t']) {
                problems.push(format!("{file}:{}: trailing whitespace", i + 1));
            }
        }
    }
    assert!(problems.is_empty(), "\n{}", problems.join("\n"));
}

/// The README's "downloads about N crates" for the showcase stays within a tenth of what
/// `cargo tree` lists (third-party packages the showcase's release build compiles).
#[test]
fn the_readme_counts_the_showcase_crates_it_downloads() {
    let readme = read(&root().join("README.md"));
    let said: usize = readme
        .split("downloads about ")
        .nth(1)
        .and_then(|rest| rest.split_whitespace().next())
        .and_then(|n| n.replace(',', "").parse().ok())
        .expect("README.md says \"downloads about N crates\"");
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".to_owned());
    let out = Command::new(cargo)
        .args([
            "tree",
            "-p",
            "showcase",
            "-e",
            "normal,build",
            "--prefix",
            "none",
        ])
        .args(["--format", "{p}"])
        .current_dir(root())
        .output()
        .expect("cargo tree runs");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let text = String::from_utf8_lossy(&out.stdout);
    let mut third_party: Vec<&str> = text
        .lines()
        .map(|l| l.trim_end_matches(" (*)").trim())
        .filter(|l| !l.is_empty() && !l.contains("(/") && !l.contains("(proc-macro) (/"))
        .collect();
    third_party.sort_unstable();
    third_party.dedup();
    let real = third_party.len();
    assert!(
        said.abs_diff(real) * 10 <= real,
        "README.md says the showcase downloads about {said} crates; cargo tree lists {real}"
    );
}
