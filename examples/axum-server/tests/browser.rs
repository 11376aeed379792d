//! The axum example's page in headless Chromium: the browser client, served by the app at
//! `/client.js`, follows a topic over each technique the app routes, and gets what curl
//! publishes, in order.

use std::time::Duration;

use push_tests::{DevTools, Example};

const BOUND: Duration = Duration::from_secs(60);

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_page_follows_a_topic_with_every_technique() {
    let example = Example::start(env!("CARGO_BIN_EXE_axum-server"));
    let base = example.base.clone();
    let Some(mut page) = DevTools::open(&base).await else {
        return;
    };
    for (i, technique) in ["ws", "sse", "stream", "longpoll", "poll"]
        .iter()
        .enumerate()
    {
        let topic = format!("t{i}");
        // From the cursor of a first event, so that nothing published later can be missed
        // however long the page takes to connect.
        let since = example.publish(&topic, "zero");
        // Navigate, again if the browser's own first load overtook the navigation.
        let target = format!("/?topic={topic}&transport={technique}&since={since}");
        let deadline = tokio::time::Instant::now() + BOUND;
        let there = format!("location.search.includes('topic={topic}&') && !!window.sub");
        'navigate: loop {
            page.eval(&format!("location.href = {target:?}")).await;
            for _ in 0..20 {
                if page.eval(&there).await == true {
                    break 'navigate;
                }
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
            assert!(
                tokio::time::Instant::now() < deadline,
                "never got to {target}"
            );
        }
        for n in 1..=3 {
            example.publish(&topic, &format!("{technique} {n}"));
        }
        let want: Vec<String> = (1..=3).map(|n| format!("{technique} {n}")).collect();
        let deadline = tokio::time::Instant::now() + BOUND;
        loop {
            let got = page.eval("window.got").await;
            let got: Vec<String> = got
                .as_array()
                .map(|a| {
                    a.iter()
                        .filter_map(|v| v.as_str().map(str::to_owned))
                        .collect()
                })
                .unwrap_or_default();
            if got.len() >= 3 {
                assert_eq!(got, want, "{technique}");
                break;
            }
            if tokio::time::Instant::now() >= deadline {
                let state = page
                    .eval("JSON.stringify({ href: location.href, status: document.getElementById('status').textContent, stats: window.sub && window.sub.stats, cursors: window.sub && window.sub.cursors })")
                    .await;
                panic!("{technique}: got {got:?}; {state}");
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }
}
