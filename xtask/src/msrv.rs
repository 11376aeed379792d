//! The minimum supported Rust version, checked with the one toolchain this machine has.
//!
//! Three checks, each able to fail:
//! - one MSRV: every published crate's `rust-version` is the workspace's, and the README's
//!   "Rust X or newer" says the same;
//! - its dependencies: no crate in a published crate's dependency tree (every feature, the
//!   build's own platform, dev-dependencies left out since users do not build them) declares a
//!   newer `rust-version` in the lock file we test with;
//! - its code: clippy's `incompatible_msrv` (run by `lint` with `-D warnings`) refuses a
//!   standard library item stabilised after the workspace's `rust-version`.

use std::collections::{BTreeMap, HashSet};
use std::process::Command;

/// A Rust version as `(major, minor)`; the patch never decides support here.
type Version = (u32, u32);

fn parse(text: &str) -> Option<Version> {
    let mut parts = text.split('.');
    let major = parts.next()?.parse().ok()?;
    let minor = parts.next().unwrap_or("0").parse().ok()?;
    Some((major, minor))
}

pub(crate) fn check(cargo: &str) -> Result<(), String> {
    let out = Command::new(cargo)
        .args([
            "metadata",
            "--format-version",
            "1",
            "--all-features",
            "--filter-platform",
            host_triple()?.as_str(),
        ])
        .current_dir(crate::root())
        .output()
        .map_err(|e| format!("cannot run cargo metadata: {e}"))?;
    if !out.status.success() {
        return Err(format!(
            "cargo metadata failed: {}",
            String::from_utf8_lossy(&out.stderr)
        ));
    }
    let meta: serde_json::Value = serde_json::from_slice(&out.stdout)
        .map_err(|e| format!("cargo metadata: not JSON: {e}"))?;
    let problems = problems(
        &meta,
        &std::fs::read_to_string(crate::root().join("README.md"))
            .map_err(|e| format!("README.md: {e}"))?,
    )?;
    if problems.is_empty() {
        eprintln!("msrv: every published crate and its dependency tree build on the workspace's rust-version");
        Ok(())
    } else {
        Err(format!("MSRV:\n  {}", problems.join("\n  ")))
    }
}

/// Every way the metadata and the README break the MSRV rules above.
fn problems(meta: &serde_json::Value, readme: &str) -> Result<Vec<String>, String> {
    let packages: BTreeMap<&str, &serde_json::Value> = meta["packages"]
        .as_array()
        .ok_or("cargo metadata: no packages")?
        .iter()
        .filter_map(|p| Some((p["id"].as_str()?, p)))
        .collect();
    let nodes: BTreeMap<&str, &serde_json::Value> = meta["resolve"]["nodes"]
        .as_array()
        .ok_or("cargo metadata: no resolve graph")?
        .iter()
        .filter_map(|n| Some((n["id"].as_str()?, n)))
        .collect();
    let root = crate::root().join("crates");
    let published: Vec<&serde_json::Value> = packages
        .values()
        .copied()
        .filter(|p| {
            p["manifest_path"]
                .as_str()
                .is_some_and(|m| std::path::Path::new(m).starts_with(&root))
        })
        .collect();
    let mut problems = Vec::new();
    let mut msrv: Option<Version> = None;
    for package in &published {
        let name = package["name"].as_str().unwrap_or("?");
        let Some(own) = package["rust_version"].as_str().and_then(parse) else {
            problems.push(format!("{name} declares no rust-version"));
            continue;
        };
        match msrv {
            None => msrv = Some(own),
            Some(m) if m != own => problems.push(format!(
                "{name} declares rust-version {}.{}, another crate {}.{}: one MSRV for all",
                own.0, own.1, m.0, m.1
            )),
            Some(_) => {}
        }
        for (dep, needs) in tree_needs(package["id"].as_str().unwrap_or(""), &packages, &nodes) {
            if needs > own {
                problems.push(format!(
                    "{name} (rust-version {}.{}) depends on {dep}, which needs Rust {}.{} \
                     (pin an older version in Cargo.lock with `cargo update -p NAME --precise V`, \
                     or raise the MSRV)",
                    own.0, own.1, needs.0, needs.1
                ));
            }
        }
    }
    let Some(msrv) = msrv else {
        return Err("no published crate found under crates/".into());
    };
    let said = format!("Rust {}.{} or newer", msrv.0, msrv.1);
    if !readme.contains(&said) {
        problems.push(format!("README.md does not say \"{said}\""));
    }
    Ok(problems)
}

/// Each crate in the normal and build dependency tree of `id` with the Rust it declares.
fn tree_needs(
    id: &str,
    packages: &BTreeMap<&str, &serde_json::Value>,
    nodes: &BTreeMap<&str, &serde_json::Value>,
) -> Vec<(String, Version)> {
    let mut seen = HashSet::new();
    let mut stack = vec![id.to_owned()];
    let mut needs = Vec::new();
    while let Some(next) = stack.pop() {
        let Some(node) = nodes.get(next.as_str()) else {
            continue;
        };
        for dep in node["deps"].as_array().into_iter().flatten() {
            let built = dep["dep_kinds"]
                .as_array()
                .into_iter()
                .flatten()
                .any(|k| k["kind"].is_null() || k["kind"] == "build");
            let Some(dep_id) = dep["pkg"].as_str() else {
                continue;
            };
            if built && seen.insert(dep_id.to_owned()) {
                stack.push(dep_id.to_owned());
                if let Some(p) = packages.get(dep_id) {
                    if let Some(v) = p["rust_version"].as_str().and_then(parse) {
                        let name = format!(
                            "{} {}",
                            p["name"].as_str().unwrap_or("?"),
                            p["version"].as_str().unwrap_or("?")
                        );
                        needs.push((name, v));
                    }
                }
            }
        }
    }
    needs
}

/// The toolchain's own target, from `rustc -vV`.
fn host_triple() -> Result<String, String> {
    let out = Command::new("rustc")
        .arg("-vV")
        .output()
        .map_err(|e| format!("cannot run rustc: {e}"))?;
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .find_map(|l| l.strip_prefix("host: "))
        .map(str::to_owned)
        .ok_or_else(|| "rustc -vV names no host".into())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn meta(crates_rv: &[(&str, &str)], dep_rv: &str) -> serde_json::Value {
        let root = crate::root().join("crates");
        let mut packages = vec![serde_json::json!({
            "id": "dep", "name": "dep", "version": "1.0.0", "rust_version": dep_rv,
            "manifest_path": "/registry/dep/Cargo.toml"
        })];
        let mut nodes = vec![serde_json::json!({"id": "dep", "deps": []})];
        for (name, rv) in crates_rv {
            packages.push(serde_json::json!({
                "id": name, "name": name, "version": "0.2.0", "rust_version": rv,
                "manifest_path": root.join(name).join("Cargo.toml")
            }));
            nodes.push(serde_json::json!({"id": name, "deps": [
                {"pkg": "dep", "dep_kinds": [{"kind": null}]}
            ]}));
        }
        serde_json::json!({"packages": packages, "resolve": {"nodes": nodes}})
    }

    #[test]
    fn one_msrv_its_tree_and_the_readme_agree() {
        let readme = "with a Rust toolchain (Rust 1.88 or newer)";
        let ok = meta(&[("a", "1.88"), ("b", "1.88")], "1.85");
        assert_eq!(problems(&ok, readme).unwrap(), Vec::<String>::new());
        let newer_dep = meta(&[("a", "1.88")], "1.89.0");
        let found = problems(&newer_dep, readme).unwrap();
        assert!(
            found[0].contains("dep 1.0.0, which needs Rust 1.89"),
            "{found:?}"
        );
        let two = meta(&[("a", "1.88"), ("b", "1.85")], "1.85");
        assert!(problems(&two, readme).unwrap()[0].contains("one MSRV"));
        let stale_readme = problems(&ok, "Rust 1.85 or newer").unwrap();
        assert!(
            stale_readme[0].contains("Rust 1.88 or newer"),
            "{stale_readme:?}"
        );
    }
}
