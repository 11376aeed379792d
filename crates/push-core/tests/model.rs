//! Property test: random interleavings of publishes, subscribes, resumes, reads and retention
//! trims, checked against a simple model of the documented semantics. Every subscriber must
//! receive exactly the events after its cursor, in order, none lost or repeated, or an explicit
//! gap or reset whose count is right.

use std::collections::HashMap;
use std::task::{Context, Poll, Waker};

use proptest::prelude::*;
use push_core::{
    Backend, Cursor, Delivery, HubConfig, MemoryHub, NewEvent, Outcome, Retention, StartFrom,
    Subscription, Topic, EVENT_OVERHEAD,
};

const TOPICS: usize = 2;

#[derive(Debug, Clone)]
enum From {
    Newest,
    Oldest,
    /// After the cursor of the n-th event ever published to the topic (modulo), or the "before
    /// the first event" cursor when none was published.
    Known(usize),
    OtherEpoch(u64),
    Garbage,
}

#[derive(Debug, Clone)]
enum Op {
    Publish { topic: usize, size: usize },
    Subscribe { topic: usize, from: From },
    Batch { sub: usize, limit: usize },
    Recv { sub: usize, max: usize },
    Drop { sub: usize },
}

fn op() -> impl Strategy<Value = Op> {
    let from = prop_oneof![
        Just(From::Newest),
        Just(From::Oldest),
        (0usize..64).prop_map(From::Known),
        (1u64..1000).prop_map(From::OtherEpoch),
        Just(From::Garbage),
    ];
    prop_oneof![
        5 => (0..TOPICS, 0usize..200).prop_map(|(topic, size)| Op::Publish { topic, size }),
        2 => (0..TOPICS, from).prop_map(|(topic, from)| Op::Subscribe { topic, from }),
        3 => (0usize..16, 1usize..6).prop_map(|(sub, limit)| Op::Batch { sub, limit }),
        3 => (0usize..16, 1usize..6).prop_map(|(sub, max)| Op::Recv { sub, max }),
        1 => (0usize..16).prop_map(|sub| Op::Drop { sub }),
    ]
}

/// The model of one topic: every event ever published, and the first retained sequence.
#[derive(Default)]
struct ModelTopic {
    /// `(payload, retained size)` by sequence - 1.
    published: Vec<(Vec<u8>, usize)>,
    first: u64,
    epoch: Option<push_core::Epoch>,
}

impl ModelTopic {
    fn next(&self) -> u64 {
        self.published.len() as u64 + 1
    }

    fn first(&self) -> u64 {
        self.first.max(1)
    }

    /// Applies the documented retention: oldest first, by count, then by bytes keeping the newest.
    fn trim(&mut self, r: &Retention) {
        let mut first = self.first();
        let next = self.next();
        while (next - first) as usize > r.max_events {
            first += 1;
        }
        let bytes = |first: u64| -> usize {
            (first..next)
                .map(|s| self.published[(s - 1) as usize].1)
                .sum()
        };
        while bytes(first) > r.max_bytes && next - first > 1 {
            first += 1;
        }
        self.first = first;
    }
}

struct ModelSub {
    topic: usize,
    sub: Subscription,
    /// The next sequence this subscriber must see.
    next: u64,
}

fn run(ops: Vec<Op>, retention: Retention) -> Result<(), TestCaseError> {
    let hub = MemoryHub::new(HubConfig::default().retention(retention));
    let names: Vec<Topic> = (0..TOPICS)
        .map(|i| Topic::new(&format!("t{i}")).unwrap())
        .collect();
    let mut model: HashMap<usize, ModelTopic> = HashMap::new();
    let mut subs: Vec<ModelSub> = Vec::new();
    let mut cx = Context::from_waker(Waker::noop());

    for op in ops {
        match op {
            Op::Publish { topic, size } => {
                let payload: Vec<u8> = (0..size).map(|i| (i % 251) as u8).collect();
                let event = hub
                    .publish_now(&names[topic], NewEvent::new(payload.clone()))
                    .unwrap();
                let m = model.entry(topic).or_default();
                m.epoch.get_or_insert(event.id().epoch());
                prop_assert_eq!(Some(event.id().epoch()), m.epoch);
                prop_assert_eq!(event.id().seq(), m.next());
                m.published.push((payload, EVENT_OVERHEAD + size));
                m.trim(&retention);
            }
            Op::Subscribe { topic, from } => {
                let m = model.entry(topic).or_default();
                let (start, expected_next, expected_outcome) = match (&from, m.epoch) {
                    (From::Newest, _) => (StartFrom::Newest, m.next(), Outcome::Resumed),
                    (From::Oldest, _) => (StartFrom::Oldest, m.first(), Outcome::Resumed),
                    (From::Known(n), Some(epoch)) => {
                        let seq = if m.published.is_empty() {
                            0
                        } else {
                            (*n as u64) % m.next()
                        };
                        let want = seq + 1;
                        let (next, outcome) = if want >= m.first() {
                            (want, Outcome::Resumed)
                        } else {
                            (
                                m.first(),
                                Outcome::Gap {
                                    missed: m.first() - want,
                                },
                            )
                        };
                        (StartFrom::After(Cursor::new(epoch, seq)), next, outcome)
                    }
                    (From::Known(_), None) | (From::Garbage, _) => (
                        StartFrom::from_client(Some("not a cursor"), StartFrom::Newest),
                        m.first(),
                        Outcome::Reset,
                    ),
                    (From::OtherEpoch(e), epoch) => {
                        let e = push_core::Epoch::new(*e).unwrap();
                        prop_assume!(Some(e) != epoch);
                        (
                            StartFrom::After(Cursor::new(e, 1)),
                            m.first(),
                            Outcome::Reset,
                        )
                    }
                };
                let sub = hub.subscribe_now(&names[topic], start).unwrap();
                m.epoch.get_or_insert(sub.cursor().epoch());
                prop_assert_eq!(sub.outcome(), expected_outcome, "from {:?}", from);
                prop_assert_eq!(sub.cursor().seq(), expected_next - 1);
                if subs.len() < 16 {
                    subs.push(ModelSub {
                        topic,
                        sub,
                        next: expected_next,
                    });
                }
            }
            Op::Batch { sub, limit } => {
                let Some(s) = subs.get_mut(sub) else { continue };
                let m = &model[&s.topic];
                let first_batch_outcome = s.sub.outcome();
                let batch = s.sub.try_batch(limit).unwrap();
                let missed = m.first().saturating_sub(s.next);
                s.next = s.next.max(m.first());
                let end = (s.next + limit as u64).min(m.next());
                let expected: Vec<u64> = (s.next..end).collect();
                let got: Vec<u64> = batch.events.iter().map(|e| e.id().seq()).collect();
                prop_assert_eq!(&got, &expected);
                for e in &batch.events {
                    prop_assert_eq!(
                        &e.data()[..],
                        &m.published[(e.id().seq() - 1) as usize].0[..]
                    );
                }
                // The outcome is the start outcome on the first batch, plus any gap met now.
                let outcome = batch.outcome;
                let plain = Outcome::Resumed.and_missed(missed);
                prop_assert!(
                    outcome == plain || outcome == first_batch_outcome.and_missed(missed),
                    "outcome {:?}, missed {}",
                    outcome,
                    missed
                );
                s.next = end;
                prop_assert_eq!(batch.next.seq(), end - 1);
            }
            Op::Recv { sub, max } => {
                let Some(s) = subs.get_mut(sub) else { continue };
                let m = &model[&s.topic];
                for _ in 0..max {
                    match s.sub.poll_recv(&mut cx) {
                        Poll::Ready(Some(Delivery::Gap { missed })) => {
                            prop_assert!(s.next < m.first(), "gap while nothing was trimmed");
                            prop_assert_eq!(missed, m.first() - s.next);
                            s.next = m.first();
                        }
                        Poll::Ready(Some(Delivery::Event(e))) => {
                            prop_assert!(
                                s.next >= m.first(),
                                "event delivered past a trim without a gap"
                            );
                            prop_assert_eq!(e.id().seq(), s.next);
                            prop_assert_eq!(
                                &e.data()[..],
                                &m.published[(s.next - 1) as usize].0[..]
                            );
                            s.next += 1;
                        }
                        Poll::Ready(Some(other)) => prop_assert!(false, "unexpected {:?}", other),
                        Poll::Ready(None) => prop_assert!(false, "hub closed unexpectedly"),
                        Poll::Pending => {
                            prop_assert_eq!(s.next, m.next(), "pending while events are available");
                            break;
                        }
                    }
                }
            }
            Op::Drop { sub } => {
                if sub < subs.len() {
                    subs.swap_remove(sub);
                }
            }
        }
        let stats = hub.stats();
        prop_assert_eq!(stats.subscribers, subs.len());
        let retained: u64 = model.values().map(|m| m.next() - m.first()).sum();
        prop_assert_eq!(stats.retained_events as u64, retained);
    }
    Ok(())
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(256))]

    #[test]
    fn subscribers_match_the_model_under_count_retention(
        ops in prop::collection::vec(op(), 1..200),
        max_events in 1usize..12,
    ) {
        run(ops, Retention::default().max_events(max_events))?;
    }

    #[test]
    fn subscribers_match_the_model_under_byte_retention(
        ops in prop::collection::vec(op(), 1..200),
        budget in 0usize..1200,
    ) {
        run(ops, Retention::default().max_bytes(EVENT_OVERHEAD + budget))?;
    }
}
