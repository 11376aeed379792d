//! Publishes a few events through push-core's in-memory hub and reads them three ways: a live
//! subscriber, a client resuming from a cursor, and a poller reading batches.

use std::time::Duration;

use push_core::{Delivery, Hub, NewEvent, Outcome, StartFrom, Topic};

#[tokio::main]
async fn main() -> Result<(), push_core::Error> {
    let hub = Hub::memory();
    let topic = Topic::new("demo").expect("valid topic name");

    // A live subscriber in its own task prints every event as it arrives.
    let mut live = hub.subscribe(&topic, StartFrom::Newest).await?;
    let printer = tokio::spawn(async move {
        let mut seen = 0;
        while let Some(delivery) = live.recv().await {
            match delivery {
                Delivery::Event(event) => {
                    println!(
                        "live     {} {}",
                        event.id(),
                        String::from_utf8_lossy(event.data())
                    );
                    seen += 1;
                }
                Delivery::Gap { missed } => println!("live     gap: missed {missed}"),
                Delivery::Complete => println!("live     complete"),
            }
            if seen == 5 {
                break;
            }
        }
    });

    let mut cursors = Vec::new();
    for i in 1..=5 {
        let event = hub
            .publish(&topic, NewEvent::new(format!("tick {i}")))
            .await?;
        cursors.push(event.id());
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    printer.await.expect("printer task");

    // A client that saw the second event reconnects and gets exactly the three that followed.
    let mut resumed = hub.subscribe(&topic, StartFrom::After(cursors[1])).await?;
    assert_eq!(resumed.outcome(), Outcome::Resumed);
    let batch = resumed.try_batch(100).expect("hub is open");
    for event in &batch.events {
        println!(
            "resumed  {} {}",
            event.id(),
            String::from_utf8_lossy(event.data())
        );
    }
    println!(
        "resume outcome {:?}, next cursor {}",
        batch.outcome, batch.next
    );

    // A cursor from another epoch (a restarted server, say) is reported as a reset.
    let stale = StartFrom::from_client(Some("1234-9"), StartFrom::Newest);
    let batch = hub.read(&topic, stale, 2).await?;
    println!(
        "stale cursor -> {:?}, replaying {} events",
        batch.outcome,
        batch.events.len()
    );

    hub.close();
    Ok(())
}
