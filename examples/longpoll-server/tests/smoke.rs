//! Runs the example as a user would: a held request is answered by a publish.

use std::time::Duration;

use push_tests::Example;

#[tokio::test]
async fn the_example_answers_a_held_request_on_publish() {
    let example = Example::start(env!("CARGO_BIN_EXE_longpoll-server"));
    let mut client =
        push_longpoll::client::LongPollClient::new(&format!("{}longpoll/demo", example.base))
            .unwrap()
            .timeout(Duration::from_secs(20));
    let held = tokio::spawn(async move { client.next_batch().await });
    // Publish until the held request answers (the first publishes may land before the hold).
    let mut batch = None;
    for _ in 0..100 {
        example.publish("demo", "hello");
        if held.is_finished() {
            batch = Some(held.await.unwrap().unwrap());
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let batch = batch.expect("the held request was answered");
    assert!(!batch.events.is_empty());
    assert!(batch.events.iter().all(|e| e.data == "hello"));
}
