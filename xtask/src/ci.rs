//! `cargo xtask ci`: everything CI checks, in the order that fails fastest.

use std::process::{Command, Stdio};

use crate::cmd;

pub(crate) fn main() -> Result<(), String> {
    // The system packages first: without them half the tests would fail naming packages.
    crate::setup::main(false)?;
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".to_owned());
    let cargo = cargo.as_str();
    lint(cargo)?;
    crate::msrv::check(cargo)?;
    package(cargo)?;
    test(cargo)?;
    docs(cargo)?;
    crate::autobahn::main()?;
    bench_smoke(cargo)?;
    eprintln!("xtask ci: all checks passed");
    Ok(())
}

fn lint(cargo: &str) -> Result<(), String> {
    cmd(cargo, &["fmt", "--all", "--check"], &[])?;
    cmd(
        cargo,
        &[
            "clippy",
            "--workspace",
            "--all-targets",
            "--all-features",
            "--",
            "-D",
            "warnings",
            // Named, though `-D warnings` covers it: std items newer than `rust-version`.
            "-D",
            "clippy::incompatible_msrv",
        ],
        &[],
    )
}

/// Every published crate must package (and its packaged copy build) on its own.
fn package(cargo: &str) -> Result<(), String> {
    let mut package = vec!["package", "--allow-dirty", "--quiet"];
    let crates = published_crates()?;
    for name in &crates {
        package.extend(["--package", name.as_str()]);
    }
    forget_packaged_copies(&crates);
    // The verification build shares target/debug, where the registry copies of our crates from
    // an earlier run count as fresh (registry crates are taken as immutable): clean them.
    let mut clean = vec!["clean", "--quiet"];
    for name in &crates {
        clean.extend(["--package", name.as_str()]);
    }
    cmd(cargo, &clean, &[])?;
    cmd(cargo, &package, &[])
}

fn test(cargo: &str) -> Result<(), String> {
    // nextest does not run doc tests; they run first so the test summary closes the log.
    cmd(
        cargo,
        &["test", "--workspace", "--all-features", "--doc"],
        &[],
    )?;
    if has_nextest(cargo) {
        cmd(
            cargo,
            &[
                "nextest",
                "run",
                "--workspace",
                "--all-features",
                "--no-fail-fast",
            ],
            &[],
        )?;
    } else {
        eprintln!("cargo-nextest is not installed; running cargo test");
        cmd(
            cargo,
            &[
                "test",
                "--workspace",
                "--all-features",
                "--lib",
                "--bins",
                "--tests",
            ],
            &[],
        )?;
    }
    Ok(())
}

/// Docs as docs.rs builds them (every feature) and as a user without features sees them: no
/// link may be broken in either.
fn docs(cargo: &str) -> Result<(), String> {
    for features in [&["--all-features"][..], &[]] {
        let mut doc = vec!["doc", "--workspace", "--no-deps"];
        doc.extend_from_slice(features);
        cmd(
            cargo,
            &doc,
            &[(
                "RUSTDOCFLAGS",
                "-D rustdoc::broken_intra_doc_links -D warnings",
            )],
        )?;
    }
    Ok(())
}

/// A smoke run of the benchmark harness: every server and peer starts, every workload runs and
/// the tables, JSON and chart are written. It asserts nothing about speed.
fn bench_smoke(cargo: &str) -> Result<(), String> {
    let json = crate::root().join("target/bench/ci-quick.json");
    cmd(
        cargo,
        &[
            "run",
            "--quiet",
            "--release",
            "--package",
            "xtask",
            "--",
            "bench",
            "--quick",
            "--json",
            &json.display().to_string(),
        ],
        &[],
    )?;
    let text = std::fs::read_to_string(&json)
        .map_err(|e| format!("cannot read {}: {e}", json.display()))?;
    let value: serde_json::Value =
        serde_json::from_str(&text).map_err(|e| format!("{}: {e}", json.display()))?;
    check_smoke(&value)
}

/// What the smoke run must show besides finishing: every push row of the fixed-rate fan-out
/// delivered exactly what was published to every client, with no client failing (push never
/// drops an event to keep up), and the idle table has each Rust server's heap per connection
/// from the counting allocator.
fn check_smoke(bench: &serde_json::Value) -> Result<(), String> {
    let rows = |section: &str| {
        bench[section]
            .as_array()
            .cloned()
            .ok_or_else(|| format!("bench JSON: no {section} rows"))
    };
    let mut fan_out = rows("http")?;
    fan_out.extend(rows("websocket")?);
    for row in &fan_out {
        let name = row["server"].as_str().unwrap_or("?");
        if !name.starts_with("push-") {
            continue;
        }
        let (delivered, expected) = (&row["delivered"], &row["expected"]);
        if delivered != expected || row["errors"] != 0 || row["repeated"] != 0 {
            return Err(format!(
                "bench smoke: {name} delivered {delivered} of {expected} with {} client errors \
                 and {} events repeated",
                row["errors"], row["repeated"]
            ));
        }
    }
    for row in rows("idle")? {
        let name = row["server"].as_str().unwrap_or("?");
        let rust = !name.starts_with("nchan-");
        let heap = row["heap_per_conn"]["bytes"].as_f64();
        if rust && !heap.is_some_and(|b| b > 1024.0) {
            return Err(format!(
                "bench smoke: {name} has no heap per connection ({heap:?})"
            ));
        }
    }
    Ok(())
}

/// The directory names under `crates/`, which are the published crates.
fn published_crates() -> Result<Vec<String>, String> {
    let dir = crate::root().join("crates");
    let mut names: Vec<String> = std::fs::read_dir(&dir)
        .map_err(|e| format!("cannot read {}: {e}", dir.display()))?
        .filter_map(|entry| entry.ok())
        .filter(|entry| entry.path().join("Cargo.toml").exists())
        .map(|entry| entry.file_name().to_string_lossy().into_owned())
        .collect();
    names.sort();
    Ok(names)
}

fn has_nextest(cargo: &str) -> bool {
    Command::new(cargo)
        .args(["nextest", "--version"])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|s| s.success())
}

/// `cargo package` verifies each crate against a temporary local registry holding the others, and
/// unpacks those into `$CARGO_HOME/registry/src/-HASH/NAME-VERSION`; a later run with the same
/// version reuses a stale unpacked copy instead of the current sources. Remove our crates'
/// copies (only those: the `-HASH` directories belong to such temporary registries).
fn forget_packaged_copies(crates: &[String]) {
    let home = std::env::var_os("CARGO_HOME")
        .map(std::path::PathBuf::from)
        .or_else(|| std::env::var_os("HOME").map(|h| std::path::Path::new(&h).join(".cargo")));
    let Some(src) = home.map(|h| h.join("registry/src")) else {
        return;
    };
    let Ok(registries) = std::fs::read_dir(&src) else {
        return;
    };
    for registry in registries.flatten() {
        if !registry.file_name().to_string_lossy().starts_with('-') {
            continue;
        }
        let Ok(unpacked) = std::fs::read_dir(registry.path()) else {
            continue;
        };
        for dir in unpacked.flatten() {
            let name = dir.file_name().to_string_lossy().into_owned();
            if crates.iter().any(|c| {
                name.strip_prefix(c.as_str())
                    .and_then(|rest| rest.strip_prefix('-'))
                    .is_some_and(|v| v.starts_with(|ch: char| ch.is_ascii_digit()))
            }) {
                let _ = std::fs::remove_dir_all(dir.path());
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    fn bench(delivered: u64, repeated: u64, heap: Option<f64>) -> serde_json::Value {
        json!({
            "http": [
                {"server": "push-sse", "delivered": delivered, "expected": 1000, "errors": 0,
                 "repeated": 0},
                {"server": "axum-sse", "delivered": 10, "expected": 1000, "errors": 3,
                 "repeated": 4},
            ],
            "websocket": [
                {"server": "push-ws", "delivered": 500, "expected": 500, "errors": 0,
                 "repeated": repeated},
            ],
            "idle": [
                {"server": "push-sse", "heap_per_conn": heap.map(|b| json!({"bytes": b}))},
                {"server": "nchan-sse", "heap_per_conn": null},
            ],
        })
    }

    #[test]
    fn the_smoke_check_wants_every_push_event_once_and_the_heap_figures() {
        assert_eq!(super::check_smoke(&bench(1000, 0, Some(18_000.0))), Ok(()));
        let lost = super::check_smoke(&bench(999, 0, Some(18_000.0))).unwrap_err();
        assert!(lost.contains("push-sse delivered 999 of 1000"), "{lost}");
        let repeated = super::check_smoke(&bench(1000, 2, Some(18_000.0))).unwrap_err();
        assert!(
            repeated.contains(
                "push-ws delivered 500 of 500 with 0 client errors and 2 events repeated"
            ),
            "{repeated}"
        );
        let uncounted = super::check_smoke(&bench(1000, 0, None)).unwrap_err();
        assert!(uncounted.contains("push-sse has no heap"), "{uncounted}");
    }
}
