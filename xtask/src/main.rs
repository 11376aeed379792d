//! The workspace's automation: `cargo xtask ci` is the whole CI; `cargo xtask bench` prints the
//! benchmark tables. Run `cargo xtask help` for the list.

mod autobahn;
mod bench;
mod ci;
mod compare;
#[cfg(test)]
mod layout;
mod msrv;
mod setup;
#[cfg(test)]
mod tidy;

use std::path::{Path, PathBuf};
use std::process::{Command, ExitCode};

use clap::{Parser, Subcommand};

/// Every process of this binary allocates through the bench's counting allocator, which does
/// nothing but forward to the system allocator until a bench server turns it on.
#[global_allocator]
static ALLOCATOR: bench::heap::Counting = bench::heap::Counting;

/// The workspace's automation: `cargo xtask ci` is the whole CI.
#[derive(Debug, Parser)]
#[command(name = "cargo xtask", bin_name = "cargo xtask", about, long_about = None)]
struct Cli {
    #[command(subcommand)]
    command: Cmd,
}

#[derive(Debug, Subcommand)]
enum Cmd {
    /// Everything CI checks: setup, fmt check, clippy -D warnings, the MSRV, cargo package of every crate,
    /// doc tests, every test (nextest when installed; the tidy checks among them), docs with and
    /// without features (broken intra-doc links denied), Autobahn, and bench --quick as a smoke
    /// test of the harness.
    Ci,
    /// Installs the Debian packages the tests and the bench need (as root, with apt-get);
    /// without root, or with --check, lists what is missing and the apt-get line to run.
    Setup {
        /// Only check, install nothing.
        #[arg(long)]
        check: bool,
    },
    /// The benchmark: every part in one run, markdown tables on stdout, JSON and the fan-out
    /// chart under target/bench/.
    Bench(bench::BenchArgs),
    /// The MSRV: one `rust-version` for every published crate, said by the README, and no
    /// dependency in their trees (Cargo.lock, every feature) that needs a newer Rust.
    Msrv,
    /// Autobahn|Testsuite case groups 1-7 and 10 (kosoku, in a virtualenv under target/)
    /// against push-ws's echo endpoint; fails unless every case passes.
    Autobahn,
    /// The showcase binary under one workload per technique: requests, bytes, latency and
    /// server CPU per delivered event.
    Compare(compare::CompareArgs),
    /// Internal: one benchmark server process, started by bench.
    #[command(hide = true)]
    Serve {
        /// Which server.
        #[arg(value_enum)]
        process: bench::Process,
    },
}

fn main() -> ExitCode {
    let raw: Vec<String> = std::env::args().skip(1).collect();
    let cli = Cli::parse();
    let result = match cli.command {
        Cmd::Ci => ci::main(),
        Cmd::Setup { check } => setup::main(check),
        Cmd::Bench(args) => bench::main(args, &raw),
        Cmd::Msrv => {
            let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".to_owned());
            msrv::check(&cargo)
        }
        Cmd::Autobahn => autobahn::main(),
        Cmd::Compare(args) => compare::main(&args),
        Cmd::Serve { process } => bench::serve(process),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(message) => {
            eprintln!("xtask: {message}");
            ExitCode::FAILURE
        }
    }
}

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
