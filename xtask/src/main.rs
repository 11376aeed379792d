//! The workspace's automation: `cargo xtask ci` is the whole CI; `cargo xtask bench` prints the
//! benchmark tables. Run `cargo xtask help` for the list.

mod autobahn;
mod bench;
mod bench_churn;
mod bench_h2;
mod bench_http;
mod bench_peers;
mod bench_redis;
mod ci;
mod compare;
mod setup;
#[cfg(test)]
mod tidy;

use std::path::{Path, PathBuf};
use std::process::{Command, ExitCode};

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let result = match args.first().map(String::as_str) {
        Some("ci") => ci::main(&args[1..]),
        Some("setup") => setup::main(&args[1..]),
        Some("bench") => bench::main(&args[1..]),
        Some("autobahn") => autobahn::main(&args[1..]),
        Some("compare") => compare::main(&args[1..]),
        // Internal: a benchmark server process, started by `bench`.
        Some("serve") => bench_http::serve(&args[1..]),
        None | Some("help" | "--help" | "-h") => {
            println!("{HELP}");
            Ok(())
        }
        Some(other) => Err(format!("unknown command {other:?}\n\n{HELP}")),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(message) => {
            eprintln!("xtask: {message}");
            ExitCode::FAILURE
        }
    }
}

const HELP: &str = "\
usage: cargo xtask <command>

commands:
  setup [--check]
                 installs the Debian packages the tests and the bench need (as root, with
                 apt-get), or with --check (or without root) lists what is missing and the one
                 apt-get line that installs it
  ci             setup, then fmt check, clippy -D warnings, cargo package of every crate, doc
                 tests, every test (nextest when installed, the tidy checks among them), docs with
                 and without features with broken intra-doc links denied, autobahn, and
                 bench --quick as a smoke test of the harness
  compare [--clients N] [--rate R] [--seconds S]
                 the showcase binary under one workload per technique: requests, bytes, latency
                 and server CPU per delivered event
  autobahn       Autobahn|Testsuite case groups 1-7 and 10 (kosoku, in a virtualenv under
                 target/) against push-ws's echo endpoint; fails unless every case passes
  bench [--quick] [--only PART] [--servers NAME,NAME] [--no-core] [--clients N] [--ws-clients N]
        [--json PATH]
                 the benchmark, every part in one run, printing markdown tables and writing JSON
                 under target/bench/ (and the fan-out chart). PART is one of: core (push-core
                 against tokio::sync::broadcast), http (the HTTP techniques against Nchan, axum's
                 Sse and the raw-socket ceiling, N clients, default 1,000), ws (push-ws against
                 Nchan and tokio-tungstenite, default 10,000), saturation (flat-out fan-out versus
                 N, with the chart), idle (memory per idle connection), topics (one subscriber per
                 topic), h2 (page loads with push, 103 and plain; pushed events), churn (RSS after
                 50,000 sequential short connections), redis (push-redis against the in-memory
                 hub). --servers keeps only the named servers (an unknown name is refused);
                 --quick is the small run CI uses as a smoke test.
  serve KIND     internal: one benchmark server process (started by bench)";

/// The workspace root.
pub(crate) fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("xtask lives one level below the root")
        .to_path_buf()
}

/// Builds the showcase in release mode and returns its binary's path.
pub(crate) fn release_showcase() -> Result<PathBuf, String> {
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".to_owned());
    cmd(
        &cargo,
        &["build", "--release", "--quiet", "--package", "showcase"],
        &[],
    )?;
    Ok(root().join("target/release/showcase"))
}

/// Runs a command in the workspace root, echoing it, and fails with its status.
pub(crate) fn cmd(program: &str, args: &[&str], envs: &[(&str, &str)]) -> Result<(), String> {
    eprintln!("$ {program} {}", args.join(" "));
    let status = Command::new(program)
        .args(args)
        .envs(envs.iter().copied())
        .current_dir(root())
        .status()
        .map_err(|e| format!("cannot run {program}: {e}"))?;
    if status.success() {
        Ok(())
    } else {
        Err(format!(
            "`{program} {}` failed with {status}",
            args.join(" ")
        ))
    }
}
