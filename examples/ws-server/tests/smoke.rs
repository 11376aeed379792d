//! Runs the example as a user would: a WebSocket client receives what is published over HTTP.

use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};
use std::time::Duration;

use push_ws::client::{Client, Received};

#[tokio::test]
async fn the_example_pushes_what_is_published() {
    let mut child = Command::new(env!("CARGO_BIN_EXE_ws-server"))
        .args(["--addr", "127.0.0.1:0"])
        .stdout(Stdio::piped())
        .spawn()
        .expect("start the example");
    let mut first = String::new();
    BufReader::new(child.stdout.take().unwrap())
        .read_line(&mut first)
        .unwrap();
    let base = first
        .trim()
        .strip_prefix("listening on http://")
        .expect("first line names the address")
        .to_owned();
    let mut client = Client::connect(&format!("ws://{base}ws/demo"))
        .await
        .unwrap();
    // The initial subscription's outcome comes first.
    assert!(matches!(
        client.next().await.unwrap(),
        Received::Outcome { .. }
    ));
    let out = Command::new("curl")
        .args(["-sf", "-d", "hello", &format!("http://{base}topics/demo")])
        .output()
        .expect("curl is installed (Debian package curl)");
    assert!(out.status.success());
    let got = tokio::time::timeout(Duration::from_secs(20), client.next())
        .await
        .unwrap()
        .unwrap();
    match got {
        Received::Event { topic, event } => {
            assert_eq!(topic, "demo");
            assert_eq!(event.data, "hello");
        }
        other => panic!("expected the event, got {other:?}"),
    }
    child.kill().unwrap();
    child.wait().unwrap();
}
