//! `cargo xtask setup`: the system packages the tests and the bench need, installed once, in
//! one place. `cargo xtask ci` calls it first and `.ci/run` calls `cargo xtask ci`, so the list
//! lives here only.

use std::process::{Command, Stdio};

/// The Debian packages, and what needs each.
pub(crate) const PACKAGES: &[(&str, &str)] = &[
    ("chromium", "browser tests and the showcase page test"),
    ("curl", "HTTP/1.1 client in the end-to-end tests"),
    (
        "nghttp2-client",
        "nghttp and h2load: HTTP/2 and server push",
    ),
    ("redis-server", "push-redis tests and bench"),
    ("redis-tools", "redis-cli, for the Redis tests"),
    ("nginx", "Nchan, the benchmark peer"),
    ("libnginx-mod-nchan", "Nchan, the benchmark peer"),
    ("python3", "Autobahn|Testsuite (kosoku)"),
    ("python3-venv", "Autobahn|Testsuite's virtualenv"),
    ("python3-pip", "Autobahn|Testsuite's virtualenv"),
];

pub(crate) fn main(check_only: bool) -> Result<(), String> {
    let missing = missing();
    if missing.is_empty() {
        eprintln!("xtask setup: every system package is installed");
        return Ok(());
    }
    let line = format!(
        "apt-get install -y --no-install-recommends {}",
        missing.join(" ")
    );
    if check_only || !can_install() {
        let mut message = String::from("missing system packages:\n");
        for name in &missing {
            let why = PACKAGES
                .iter()
                .find(|(p, _)| p == name)
                .map_or("", |(_, why)| why);
            message += &format!("  {name:<20} {why}\n");
        }
        message += &format!("install them as root with:\n  apt-get update && {line}");
        return Err(message);
    }
    eprintln!("xtask setup: installing {}", missing.join(" "));
    crate::cmd("apt-get", &["update", "-qq"], &[])?;
    let mut install = vec!["install", "-y", "-qq", "--no-install-recommends"];
    install.extend(missing.iter().map(String::as_str));
    crate::cmd(
        "apt-get",
        &install,
        &[("DEBIAN_FRONTEND", "noninteractive")],
    )?;
    let still = self::missing();
    if still.is_empty() {
        Ok(())
    } else {
        Err(format!("apt-get did not install {}", still.join(" ")))
    }
}

/// The packages dpkg does not report as installed.
fn missing() -> Vec<String> {
    PACKAGES
        .iter()
        .map(|(name, _)| *name)
        .filter(|name| {
            let installed = Command::new("dpkg-query")
                .args(["-W", "-f=${Status}", name])
                .stderr(Stdio::null())
                .output()
                .is_ok_and(|o| String::from_utf8_lossy(&o.stdout).contains("install ok installed"));
            !installed
        })
        .map(str::to_owned)
        .collect()
}

/// Whether this process may run apt-get: root on a system that has it.
fn can_install() -> bool {
    let root = Command::new("id")
        .arg("-u")
        .output()
        .is_ok_and(|o| String::from_utf8_lossy(&o.stdout).trim() == "0");
    let apt = Command::new("apt-get")
        .arg("--version")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|s| s.success());
    root && apt
}
