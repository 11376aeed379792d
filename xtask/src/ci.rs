//! `cargo xtask ci`: everything CI checks, in the order that fails fastest.

use std::process::{Command, Stdio};

use crate::cmd;

pub(crate) fn main(args: &[String]) -> Result<(), String> {
    if let Some(arg) = args.first() {
        return Err(format!("ci takes no arguments, got {arg:?}"));
    }
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".to_owned());
    let cargo = cargo.as_str();
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
        ],
        &[],
    )?;
    // Every published crate must package (and its packaged copy build) on its own.
    let mut package = vec!["package", "--allow-dirty", "--quiet"];
    let crates = published_crates()?;
    for name in &crates {
        package.extend(["--package", name.as_str()]);
    }
    cmd(cargo, &package, &[])?;
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
    cmd(
        cargo,
        &["doc", "--workspace", "--all-features", "--no-deps"],
        &[(
            "RUSTDOCFLAGS",
            "-D rustdoc::broken_intra_doc_links -D warnings",
        )],
    )?;
    eprintln!("xtask ci: all checks passed");
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
