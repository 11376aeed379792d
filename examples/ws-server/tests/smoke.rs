//! Runs the example as a user would: a WebSocket client receives what is published over HTTP.

use std::time::Duration;

use push_tests::Example;
use push_ws::client::{Client, Received};

#[tokio::test]
async fn the_example_pushes_what_is_published() {
    let example = Example::start(env!("CARGO_BIN_EXE_ws-server"));
    let ws_base = example.base.replacen("http://", "ws://", 1);
    let mut client = Client::connect(&format!("{ws_base}ws/demo")).await.unwrap();
    // The initial subscription's outcome comes first.
    assert!(matches!(
        client.next().await.unwrap(),
        Received::Outcome { .. }
    ));
    example.publish("demo", "hello");
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
}
