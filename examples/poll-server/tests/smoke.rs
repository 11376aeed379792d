//! Runs the example as a user would: publish, poll from a cursor, then a 304 once caught up.

use push_tests::Example;

#[tokio::test]
async fn the_example_polls_what_is_published() {
    let example = Example::start(env!("CARGO_BIN_EXE_poll-server"));
    let first_id = example.publish("demo", "one");
    example.publish("demo", "two");
    let mut client = push_poll::client::PollClient::new(&format!("{}poll/demo", example.base))
        .unwrap()
        .since(first_id);
    let batch = client.poll().await.unwrap().expect("200 with events");
    let data: Vec<_> = batch.events.iter().map(|e| e.data.clone()).collect();
    assert_eq!(data, ["two"]);
    // Caught up: the next poll is a 304.
    assert!(client.poll().await.unwrap().is_none());
    assert_eq!(client.counts(), (2, 1));
}
