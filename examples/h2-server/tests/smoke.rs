//! Runs the example as a user would, with a third-party client: `nghttp -nv` (Debian's
//! nghttp2-client) sees 103 Early Hints, the PUSH_PROMISEs and the pushed streams.

use std::process::Command;

use push_tests::{require, Example};

#[test]
fn nghttp_sees_early_hints_push_promises_and_pushed_streams() {
    if !require("nghttp", "nghttp2-client") {
        return;
    }
    check(&Example::start(env!("CARGO_BIN_EXE_h2-server")));
}

/// The same over TLS, negotiated by ALPN, with the certificate generated at start.
#[test]
fn the_same_over_tls_with_alpn_h2() {
    if !require("nghttp", "nghttp2-client") {
        return;
    }
    let example = Example::start_with(env!("CARGO_BIN_EXE_h2-server"), &["--tls"]);
    assert!(example.base.starts_with("https://"), "{}", example.base);
    check(&example);
}

fn check(example: &Example) {
    let out = Command::new("nghttp")
        .args(["-nv", "-t", "20", &format!("{}index.html", example.base)])
        .output()
        .expect("run nghttp");
    assert!(out.status.success(), "{out:?}");
    let log = String::from_utf8_lossy(&out.stdout);
    assert!(log.contains(":status: 103"), "{log}");
    let promises = log.matches("recv PUSH_PROMISE frame").count();
    assert_eq!(promises, 2, "{log}");
    for path in [":path: /styles.css", ":path: /app.js"] {
        assert!(log.contains(path), "{path} promised:\n{log}");
    }
    // Both promised streams (even ids) were answered and ended.
    for id in ["stream_id=2", "stream_id=4"] {
        assert!(
            log.lines().any(|l| l.contains("recv DATA frame")
                && l.contains("flags=0x01")
                && l.contains(id)),
            "{id} pushed to its end:\n{log}"
        );
    }
    // The 103 arrived before the final response of the page's stream.
    let hints = log.find(":status: 103").unwrap();
    let page = log.find(":status: 200").unwrap();
    assert!(hints < page, "{log}");
}
