//! Runs the example as a user would: a held request is answered by a publish.

use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};
use std::time::Duration;

#[tokio::test]
async fn the_example_answers_a_held_request_on_publish() {
    let mut child = Command::new(env!("CARGO_BIN_EXE_longpoll-server"))
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
    let mut client = push_longpoll::client::LongPollClient::new(&format!("{base}longpoll/demo"))
        .unwrap()
        .timeout(Duration::from_secs(20));
    let held = tokio::spawn(async move { client.next_batch().await });
    // Publish until the held request answers (the first publishes may land before the hold).
    let mut batch = None;
    for _ in 0..100 {
        let out = Command::new("curl")
            .args(["-sf", "-d", "hello", &format!("{base}topics/demo")])
            .output()
            .expect("curl is installed (Debian package curl)");
        assert!(out.status.success());
        if held.is_finished() {
            batch = Some(held.await.unwrap().unwrap());
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let batch = batch.expect("the held request was answered");
    assert!(!batch.events.is_empty());
    assert!(batch.events.iter().all(|e| e.data == "hello"));
    child.kill().unwrap();
    child.wait().unwrap();
}
