//! `cargo xtask autobahn`: Autobahn|Testsuite's core case groups against push-ws.
//!
//! The PyPI package `kosoku` runs Autobahn's case files natively. It is installed into a
//! virtualenv under `target/`; the `ws-server` example is started on a free loopback port and
//! kosoku drives its `/echo` endpoint (push-ws's buffers, limits and close codes, echoing).
//! Groups 1–7 and 10: framing, pings/pongs, reserved bits, opcodes, fragmentation, UTF-8
//! handling, the close handshake, limits. Every case must be OK, NON-STRICT (Autobahn's own
//! verdict for failing fast at a later point than the strictest possible) or INFORMATIONAL.

use std::collections::BTreeMap;
use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Command, Stdio};

/// The version the results in push-ws's docs were measured with.
const KOSOKU: &str = "kosoku==0.1.0";
const GROUPS: [&str; 8] = ["1", "2", "3", "4", "5", "6", "7", "10"];

pub(crate) fn main() -> Result<(), String> {
    let root = crate::root();
    let venv = root.join("target/kosoku-venv");
    let kosoku = venv.join("bin/kosoku");
    if !kosoku.exists() {
        let python = which("python3").ok_or(
            "python3 is not installed: install the Debian packages python3 and python3-venv \
             (.ci/run does)",
        )?;
        crate::cmd(&python, &["-m", "venv", &venv.to_string_lossy()], &[]).map_err(|e| {
            format!("{e}\n(creating a virtualenv needs the Debian package python3-venv)")
        })?;
        let pip = venv.join("bin/pip");
        crate::cmd(&pip.to_string_lossy(), &["install", "--quiet", KOSOKU], &[])?;
    }
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".to_owned());
    crate::cmd(&cargo, &["build", "--quiet", "--package", "ws-server"], &[])?;
    let mut server = Command::new(root.join("target/debug/ws-server"))
        .args(["--addr", "127.0.0.1:0"])
        .stdout(Stdio::piped())
        .spawn()
        .map_err(|e| format!("cannot start ws-server: {e}"))?;
    let result = run(&mut server, &kosoku, &root.join("target/autobahn"));
    let _ = server.kill();
    let _ = server.wait();
    let table = result?;
    println!("{table}");
    Ok(())
}

fn run(server: &mut std::process::Child, kosoku: &Path, out: &Path) -> Result<String, String> {
    let mut first = String::new();
    BufReader::new(server.stdout.take().ok_or("no stdout")?)
        .read_line(&mut first)
        .map_err(|e| e.to_string())?;
    let addr = first
        .trim()
        .strip_prefix("listening on http://")
        .ok_or_else(|| format!("ws-server printed {first:?}"))?
        .trim_end_matches('/')
        .to_owned();
    let _ = std::fs::remove_dir_all(out);
    let url = format!("ws://{addr}/echo");
    let out_text = out.to_string_lossy();
    let mut args = vec![url.as_str(), "-p", "4", "-o", &out_text];
    let globs: Vec<String> = GROUPS.iter().map(|g| format!("{g}.*")).collect();
    for g in &globs {
        args.extend(["-i", g.as_str()]);
    }
    // kosoku exits non-zero when a case fails; the verdicts below say which.
    let _ = crate::cmd(&kosoku.to_string_lossy(), &args, &[]);
    summarize(out)
}

/// Reads every case report and returns the per-group table, or an error naming the failures.
fn summarize(out: &Path) -> Result<String, String> {
    let mut groups: BTreeMap<u32, BTreeMap<String, u32>> = BTreeMap::new();
    let mut failures = Vec::new();
    let entries =
        std::fs::read_dir(out).map_err(|e| format!("no reports in {}: {e}", out.display()))?;
    for entry in entries.flatten() {
        let path = entry.path();
        let name = path
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default();
        if !name.contains("_case_") || !name.ends_with(".json") {
            continue;
        }
        let text = std::fs::read_to_string(&path).map_err(|e| e.to_string())?;
        let v: serde_json::Value =
            serde_json::from_str(&text).map_err(|e| format!("{name}: {e}"))?;
        let id = v["id"].as_str().unwrap_or("?").to_owned();
        let behavior = v["behavior"].as_str().unwrap_or("?").to_owned();
        let close = v["behaviorClose"].as_str().unwrap_or("?").to_owned();
        let group = id
            .split('.')
            .next()
            .and_then(|g| g.parse().ok())
            .unwrap_or(0);
        *groups
            .entry(group)
            .or_default()
            .entry(behavior.clone())
            .or_default() += 1;
        let ok = |b: &str| matches!(b, "OK" | "NON-STRICT" | "INFORMATIONAL");
        if !ok(&behavior) || !ok(&close) {
            failures.push(format!("{id}: {behavior} / close {close}"));
        }
    }
    let total: u32 = groups.values().flat_map(|g| g.values()).sum();
    if total == 0 {
        return Err("kosoku ran no case".into());
    }
    let mut table = String::from("| group | cases | verdicts |\n|---|---:|---|\n");
    for (group, verdicts) in &groups {
        let n: u32 = verdicts.values().sum();
        let list: Vec<String> = verdicts.iter().map(|(v, c)| format!("{c} {v}")).collect();
        table += &format!("| {group} | {n} | {} |\n", list.join(", "));
    }
    failures.sort();
    if failures.is_empty() {
        Ok(format!(
            "{table}\nautobahn: {total} cases, every one passed"
        ))
    } else {
        Err(format!(
            "{table}\nautobahn: {} of {total} cases failed:\n{}",
            failures.len(),
            failures.join("\n")
        ))
    }
}

fn which(program: &str) -> Option<String> {
    Command::new(program)
        .arg("--version")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .ok()
        .map(|_| program.to_owned())
}
