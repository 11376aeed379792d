//! Runs the example as a user would and checks publish-then-receive and resume.

use std::time::Duration;

use push_tests::Example;

#[tokio::test]
async fn the_example_streams_what_is_published() {
    let example = Example::start(env!("CARGO_BIN_EXE_sse-server"));
    let first_id = example.publish("demo", "one");
    example.publish("demo", "two");
    let mut client =
        push_sse::client::Client::new(format!("{}sse/demo", example.base).parse().unwrap())
            .last_event_id(&first_id);
    let message = tokio::time::timeout(Duration::from_secs(20), client.next())
        .await
        .unwrap()
        .unwrap();
    assert_eq!(message.data, "two");
}
