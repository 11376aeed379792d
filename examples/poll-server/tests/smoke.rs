//! Runs the example as a user would: publish, poll from a cursor, then a 304 once caught up.

use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};

#[tokio::test]
async fn the_example_polls_what_is_published() {
    let mut child = Command::new(env!("CARGO_BIN_EXE_poll-server"))
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
            .output()
            .expect("curl is installed (Debian package curl)");
        assert!(out.status.success());
        let text = String::from_utf8(out.stdout).unwrap();
        text.trim()
            .strip_prefix("{\"id\":\"")
            .and_then(|s| s.strip_suffix("\"}"))
            .unwrap()
            .to_owned()
    };
    let first_id = publish("one");
    publish("two");
    let mut client = push_poll::client::PollClient::new(&format!("{base}poll/demo"))
        .unwrap()
        .since(first_id);
    let batch = client.poll().await.unwrap().expect("200 with events");
    let data: Vec<_> = batch.events.iter().map(|e| e.data.clone()).collect();
    assert_eq!(data, ["two"]);
    // Caught up: the next poll is a 304.
    assert!(client.poll().await.unwrap().is_none());
    assert_eq!(client.counts(), (2, 1));
    child.kill().unwrap();
    child.wait().unwrap();
}
