//! push-mcp against a plain in-memory `EventStore`: the messages one server stores
//! (`EventStore::store_event`) and replays (`replay_events_after` from a stream's first id)
//! through push-mcp on the in-memory hub, and through a `HashMap<stream, Vec<message>>` behind a
//! mutex written here (rmcp's own in-memory store lives in its tests and is not public).
//!
//! Each stream is what rmcp writes for a tool call with progress: a priming event
//! (`ServerSseMessage::retry`, as rmcp stores it), progress notifications, and the call's
//! response, which ends push-mcp's stream. Every stream is written by its own task, then
//! replayed once by its own task, both stores called through `dyn EventStore`. Every replay is
//! checked against what was stored (ids, messages, order) outside the timed part; a mismatch
//! fails the part.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use futures_util::{stream, StreamExt};
use push_core::{Hub, HubConfig, MemoryHub, Retention};
use push_mcp::McpStore;
use rmcp::model::ServerJsonRpcMessage;
use rmcp::transport::streamable_http_server::session::{
    EventStore, EventStoreError, EventStream, ServerSseMessage,
};
use serde_json::json;

use super::report::fmt_num;

/// rmcp's default `sse_retry`, the retry hint of the priming event it stores first.
const PRIMING_RETRY: Duration = Duration::from_secs(3);

/// The sizes of one run.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Workload {
    pub(crate) streams: usize,
    /// JSON-RPC messages per stream after its priming event: progress notifications, then the
    /// response.
    pub(crate) messages: usize,
    pub(crate) runs: usize,
}

impl Workload {
    pub(crate) fn new(quick: bool) -> Self {
        if quick {
            Self {
                streams: 4,
                messages: 25,
                runs: 1,
            }
        } else {
            Self {
                streams: 100,
                messages: 1_000,
                runs: 5,
            }
        }
    }

    /// `store_event` calls per run: each stream's priming event and its messages.
    fn stored(self) -> usize {
        self.streams * (self.messages + 1)
    }

    /// Messages per run that the replays from each stream's first id must return.
    fn replayed(self) -> usize {
        self.streams * self.messages
    }
}

/// One store's runs.
#[derive(Debug, Default)]
pub(crate) struct Side {
    store_per_sec: Vec<f64>,
    replay_per_sec: Vec<f64>,
    /// Messages the replays returned, over all runs.
    replayed: usize,
}

/// Both stores' runs and the workload.
#[derive(Debug)]
pub(crate) struct Report {
    workload: Workload,
    /// Bytes of one progress notification as JSON.
    message_bytes: usize,
    push: Side,
    baseline: Side,
}

fn median(values: &[f64]) -> f64 {
    let mut values = values.to_vec();
    values.sort_by(f64::total_cmp);
    values[values.len() / 2]
}

/// The runs, interleaved (push-mcp, baseline, push-mcp, …) so that machine noise hits both.
pub(crate) async fn measure(workload: Workload) -> Result<Report, String> {
    let messages = Arc::new(stream_messages(workload.messages)?);
    let message_bytes = serde_json::to_vec(&*messages[1].message.clone().expect("a message"))
        .map_err(|e| e.to_string())?
        .len();
    let mut push = Side::default();
    let mut baseline = Side::default();
    for run in 1..=workload.runs {
        // Retention holds every event of a stream, priming included.
        let hub = Hub::new(MemoryHub::new(
            HubConfig::default().retention(Retention::default().max_events(workload.messages + 1)),
        ));
        let store: Arc<dyn EventStore> = Arc::new(McpStore::new(hub));
        one_run("push-mcp", store, workload, &messages, &mut push).await?;
        let store: Arc<dyn EventStore> = Arc::new(MapStore::default());
        one_run("baseline", store, workload, &messages, &mut baseline).await?;
        if workload.runs > 1 {
            eprintln!(
                "mcp run {run}/{}: store {} vs {} msgs/s, replay {} vs {} msgs/s",
                workload.runs,
                fmt_num(push.store_per_sec[run - 1]),
                fmt_num(baseline.store_per_sec[run - 1]),
                fmt_num(push.replay_per_sec[run - 1]),
                fmt_num(baseline.replay_per_sec[run - 1]),
            );
        }
    }
    Ok(Report {
        workload,
        message_bytes,
        push,
        baseline,
    })
}

/// Stores every stream (a task each), then replays each once from its first id (a task each),
/// then checks the replays against what was stored.
async fn one_run(
    name: &str,
    store: Arc<dyn EventStore>,
    workload: Workload,
    messages: &Arc<Vec<ServerSseMessage>>,
    side: &mut Side,
) -> Result<(), String> {
    let streams: Vec<String> = (0..workload.streams)
        .map(|i| format!("0e5c7a3f-9b1d-4c2e-8f6a-{i:012x}"))
        .collect();
    let start = Instant::now();
    let writers: Vec<_> = streams
        .iter()
        .map(|stream| {
            let (store, stream, messages) = (store.clone(), stream.clone(), messages.clone());
            tokio::spawn(async move {
                let mut ids = Vec::with_capacity(messages.len());
                for message in messages.iter() {
                    ids.push(
                        store
                            .store_event(&stream, message)
                            .await
                            .map_err(|e| format!("store_event: {e}"))?,
                    );
                }
                Ok::<_, String>(ids)
            })
        })
        .collect();
    let mut ids = Vec::with_capacity(writers.len());
    for writer in writers {
        ids.push(writer.await.map_err(|e| e.to_string())??);
    }
    side.store_per_sec
        .push(workload.stored() as f64 / start.elapsed().as_secs_f64());

    let start = Instant::now();
    let readers: Vec<_> = ids
        .iter()
        .map(|ids| {
            let (store, first) = (store.clone(), ids[0].clone());
            tokio::spawn(async move {
                let mut replay = store
                    .replay_events_after(&first)
                    .await
                    .map_err(|e| format!("replay_events_after({first}): {e}"))?;
                let mut got = Vec::new();
                while let Some(message) = replay.next().await {
                    got.push(message);
                }
                Ok::<_, String>(got)
            })
        })
        .collect();
    let mut replays = Vec::with_capacity(readers.len());
    for reader in readers {
        replays.push(reader.await.map_err(|e| e.to_string())??);
    }
    let replayed: usize = replays.iter().map(Vec::len).sum();
    side.replay_per_sec
        .push(replayed as f64 / start.elapsed().as_secs_f64());
    side.replayed += replayed;

    if replayed != workload.replayed() {
        return Err(format!(
            "mcp: {name} replayed {replayed} messages, {} stored after the first ids",
            workload.replayed()
        ));
    }
    for (stream, (ids, got)) in streams.iter().zip(ids.iter().zip(&replays)) {
        check_replay(&messages[1..], &ids[1..], got)
            .map_err(|e| format!("mcp: {name}, stream {stream}: {e}"))?;
    }
    Ok(())
}

/// The replay returns exactly the stored messages after the first, in order, with their ids.
fn check_replay(
    stored: &[ServerSseMessage],
    ids: &[String],
    got: &[ServerSseMessage],
) -> Result<(), String> {
    if got.len() != stored.len() {
        return Err(format!(
            "replayed {} messages, {} stored",
            got.len(),
            stored.len()
        ));
    }
    let json = |m: &ServerSseMessage| m.message.as_deref().map(serde_json::to_string);
    for (i, ((want, id), got)) in stored.iter().zip(ids).zip(got).enumerate() {
        if got.event_id.as_ref() != Some(id) {
            return Err(format!(
                "message {i} has id {:?}, stored as {id}",
                got.event_id
            ));
        }
        let (want, got) = (json(want), json(got));
        match (want, got) {
            (Some(Ok(want)), Some(Ok(got))) if want == got => {}
            (want, got) => return Err(format!("message {i} is {got:?}, {want:?} was stored")),
        }
    }
    Ok(())
}

/// One stream as rmcp stores it: the priming event, progress notifications, the response.
fn stream_messages(messages: usize) -> Result<Vec<ServerSseMessage>, String> {
    let total = messages - 1;
    let mut out = vec![ServerSseMessage::retry(PRIMING_RETRY)];
    for i in 1..=total {
        out.push(jsonrpc(json!({
            "jsonrpc": "2.0",
            "method": "notifications/progress",
            "params": {
                "progressToken": "call-7f3c2a10",
                "progress": i,
                "total": total,
                "message": format!("indexed {i} of {total} files"),
            },
        }))?);
    }
    out.push(jsonrpc(json!({
        "jsonrpc": "2.0",
        "id": 7,
        "result": {
            "content": [{"type": "text", "text": format!("indexed {total} files")}],
            "isError": false,
        },
    }))?);
    Ok(out)
}

fn jsonrpc(value: serde_json::Value) -> Result<ServerSseMessage, String> {
    let message: ServerJsonRpcMessage =
        serde_json::from_value(value).map_err(|e| format!("not a server message: {e}"))?;
    Ok(ServerSseMessage::from_message(message))
}

/// The baseline: each stream's messages in a `Vec`, in a `HashMap` behind one mutex; the id is
/// `{stream}/{index}`.
#[derive(Debug, Default)]
struct MapStore {
    streams: Mutex<HashMap<String, Vec<ServerSseMessage>>>,
}

#[async_trait::async_trait]
impl EventStore for MapStore {
    async fn store_event(
        &self,
        stream_id: &str,
        event: &ServerSseMessage,
    ) -> Result<String, EventStoreError> {
        let mut streams = self.streams.lock().map_err(|e| e.to_string())?;
        if !streams.contains_key(stream_id) {
            streams.insert(stream_id.to_owned(), Vec::new());
        }
        let events = streams.get_mut(stream_id).expect("inserted");
        let id = format!("{stream_id}/{}", events.len());
        let mut event = event.clone();
        event.event_id = Some(id.clone());
        events.push(event);
        Ok(id)
    }

    async fn replay_events_after(
        &self,
        last_event_id: &str,
    ) -> Result<EventStream, EventStoreError> {
        let (stream_id, index) = last_event_id.rsplit_once('/').ok_or("no `/` in the id")?;
        let index: usize = index.parse()?;
        let streams = self.streams.lock().map_err(|e| e.to_string())?;
        let events = streams.get(stream_id).ok_or("unknown stream")?;
        let after = events.get(index + 1..).unwrap_or_default().to_vec();
        Ok(Box::pin(stream::iter(after)))
    }
}

impl Report {
    pub(crate) fn markdown(&self) -> String {
        let w = self.workload;
        let runs = if w.runs > 1 {
            format!("median of {} interleaved runs", w.runs)
        } else {
            "1 run".to_owned()
        };
        let mut out = format!(
            "## push-mcp (in-memory hub) vs a HashMap EventStore ({runs})\n\n\
             The baseline is a `HashMap<stream, Vec<message>>` behind a mutex, written in the \
             bench: rmcp has no public in-memory EventStore. {} streams, each a priming event, \
             {} progress notifications ({} bytes of JSON each) and the response, a task per \
             stream; every replay is checked against what was stored.\n\n\
             | workload | unit | push-mcp | HashMap | push-mcp / HashMap |\n\
             |---|---|---:|---:|---:|\n",
            w.streams,
            w.messages - 1,
            self.message_bytes,
        );
        let rows = [
            (
                format!("`store_event`, {} streams × {}", w.streams, w.messages + 1),
                "events/s",
                median(&self.push.store_per_sec),
                median(&self.baseline.store_per_sec),
            ),
            (
                format!(
                    "`replay_events_after` the first id, {} streams × {}",
                    w.streams, w.messages
                ),
                "messages/s",
                median(&self.push.replay_per_sec),
                median(&self.baseline.replay_per_sec),
            ),
        ];
        for (workload, unit, push, baseline) in rows {
            out += &format!(
                "| {workload} | {unit} | {} | {} | {:.2}x |\n",
                fmt_num(push),
                fmt_num(baseline),
                push / baseline
            );
        }
        let expected = w.replayed() * w.runs;
        out += &format!(
            "| replayed / stored after the first ids, all runs | messages | {} / {expected} | {} / {expected} | |\n",
            self.push.replayed, self.baseline.replayed
        );
        out
    }

    pub(crate) fn json(&self) -> serde_json::Value {
        let side = |s: &Side| {
            json!({
                "store_per_sec": median(&s.store_per_sec),
                "replay_per_sec": median(&s.replay_per_sec),
                "store_per_sec_runs": s.store_per_sec,
                "replay_per_sec_runs": s.replay_per_sec,
                "replayed": s.replayed,
            })
        };
        let w = self.workload;
        json!({
            "baseline": "HashMap<stream, Vec<message>> behind a mutex",
            "streams": w.streams,
            "messages_per_stream": w.messages,
            "runs": w.runs,
            "message_bytes": self.message_bytes,
            "expected_replayed": w.replayed() * w.runs,
            "push_mcp": side(&self.push),
            "hashmap": side(&self.baseline),
        })
    }
}
