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

fn has_nextest(cargo: &str) -> bool {
    Command::new(cargo)
        .args(["nextest", "--version"])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|s| s.success())
}
