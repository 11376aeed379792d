//! Runs the example as a user would and checks publish-then-receive and resume.

use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};
use std::time::Duration;

#[tokio::test]
async fn the_example_streams_what_is_published() {
    let mut child = Command::new(env!("CARGO_BIN_EXE_sse-server"))
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
        .strip_prefix("listening on ")
        .expect("first line names the address")
        .to_owned();
    let publish = |body: &'static str| {
        let out = Command::new("curl")
            .args(["-sf", "-d", body, &format!("{base}topics/demo")])
            .output();
        let out = out.expect("curl is installed (Debian package curl)");
        assert!(out.status.success());
        String::from_utf8(out.stdout).unwrap()
    };
    let first_id = publish("one");
    let first_id = first_id
        .trim()
        .strip_prefix("{\"id\":\"")
        .and_then(|s| s.strip_suffix("\"}"))
        .unwrap()
        .to_owned();
    publish("two");
    let mut client = push_sse::client::Client::new(format!("{base}sse/demo").parse().unwrap())
        .last_event_id(&first_id);
    let message = tokio::time::timeout(Duration::from_secs(20), client.next())
        .await
        .unwrap()
        .unwrap();
    assert_eq!(message.data, "two");
    child.kill().unwrap();
    child.wait().unwrap();
}
