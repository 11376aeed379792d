//! Runs the example as a user would and checks publish-then-receive and resume.

use std::process::Command;

use push_tests::Example;

#[test]
fn the_example_streams_what_is_published() {
    let example = Example::start(env!("CARGO_BIN_EXE_stream-server"));
    let first_id = example.publish("demo", "one");
    example.publish("demo", "two");
    let out = Command::new("curl")
        .args([
            "-sN",
            "--max-time",
            "3",
            &format!("{}stream/demo?since={first_id}", example.base),
        ])
        .output()
        .expect("curl is installed (Debian package curl)");
    // curl ends on --max-time with the stream still open; what it printed is what counts.
    let text = String::from_utf8(out.stdout).unwrap();
    let mut lines = text.lines();
    assert_eq!(
        lines.next(),
        Some(&*format!(
            "{{\"outcome\":\"resumed\",\"cursor\":\"{first_id}\"}}"
        ))
    );
    assert!(
        lines.next().unwrap().ends_with("\"data\":\"two\"}"),
        "{text}"
    );
}
