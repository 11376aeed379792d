//! Redis Cluster: the hash-tag groups topics fall into, and the node a group's reader reads.
//!
//! One `XREAD` may only name keys of one hash slot, so a reader cannot follow streams spread
//! over the slots. Each topic's stream therefore carries the hash tag of one of `n` groups
//! (`push:{g3-17}chat`), chosen by where the topic name's own slot falls, and each group's
//! tag is picked so that its slot lies in the group's `1/n` of the slot space: the groups
//! spread over the masters as the slots do, and one reader per group follows all its topics
//! on one connection to the node that serves the slot.
//!
//! What a client may be handed is what survives a failover: readers read a replica of the
//! slot's master (the master when it has none), head reads go to that replica too, and with
//! [`RedisConfig::wait_replicas`](crate::RedisConfig::wait_replicas) a publish is
//! acknowledged once a replica has it. So the replica promoted when a master dies holds every
//! event any client saw, and the next publish follows them without reusing a cursor.

use push_core::Topic;
use redis::cluster_routing::{MultipleNodeRoutingInfo, RoutingInfo};
use redis::{ConnectionAddr, ConnectionInfo, RedisError, Value};

/// The number of hash slots of a Redis Cluster.
const SLOTS: usize = 16384;

/// A cluster as a hub uses it.
pub(crate) struct Cluster {
    /// How to reach a node (the first seed's settings; the address changes).
    pub(crate) seed: ConnectionInfo,
    /// Each group's hash tag.
    pub(crate) tags: Vec<String>,
}

/// The hash slot of `key` as Redis Cluster computes it (CRC16-XMODEM of the key, or of its
/// `{hash tag}` when it has one; topic names have no braces, and tags are whole keys here).
pub(crate) fn slot(key: &[u8]) -> usize {
    usize::from(crc16::State::<crc16::XMODEM>::calculate(key)) % SLOTS
}

/// The slot of a stream key: of its `{hash tag}` when it has one.
pub(crate) fn key_slot(key: &str) -> usize {
    let tag = key
        .split_once('{')
        .and_then(|(_, rest)| rest.split_once('}'))
        .map(|(tag, _)| tag)
        .filter(|tag| !tag.is_empty());
    slot(tag.unwrap_or(key).as_bytes())
}

/// The group of `topic` among `n`: where its name's slot falls in `n` equal parts of the slot
/// space. The same on every process with the same `n`, whatever the build.
pub(crate) fn group(topic: &Topic, n: usize) -> usize {
    slot(topic.as_str().as_bytes()) * n.max(1) / SLOTS
}

/// A hash tag per group whose slot lies in the group's part of the slot space.
pub(crate) fn tags(n: usize) -> Vec<String> {
    let n = n.clamp(1, SLOTS);
    (0..n)
        .map(|i| {
            let (low, high) = (i * SLOTS / n, (i + 1) * SLOTS / n);
            (0u32..1_000_000)
                .map(|k| format!("g{i}-{k}"))
                .find(|tag| (low..high).contains(&slot(tag.as_bytes())))
                .unwrap_or_else(|| format!("g{i}"))
        })
        .collect()
}

impl Cluster {
    /// The slot of group `i`.
    pub(crate) fn group_slot(&self, i: usize) -> usize {
        self.tags.get(i).map_or(0, |tag| slot(tag.as_bytes()))
    }

    /// The node a reader of `slot` reads now: a replica of the slot's master, or the master
    /// when it has none; as a client. Every node is asked (`CLUSTER SLOTS`) and the answer most
    /// of them give wins: a node restarted after a failover names itself master of its old
    /// slots until it learns otherwise, and reading its writes of that moment would hand out
    /// events the cluster then drops.
    pub(crate) async fn node(
        &self,
        commands: &mut redis::cluster_async::ClusterConnection,
        slot: usize,
    ) -> Result<(redis::Client, (String, u16)), RedisError> {
        let replies = commands
            .route_command(
                redis::cmd("CLUSTER").arg("SLOTS").clone(),
                RoutingInfo::MultiNode((MultipleNodeRoutingInfo::AllNodes, None)),
            )
            .await?;
        let (host, port) = most_named(&replies, slot).ok_or_else(|| {
            RedisError::from((
                redis::ErrorKind::Client,
                "no node serves the slot",
                slot.to_string(),
            ))
        })?;
        let host = if host.is_empty() {
            match self.seed.addr() {
                ConnectionAddr::Tcp(h, _) | ConnectionAddr::TcpTls { host: h, .. } => h.clone(),
                _ => "127.0.0.1".to_owned(),
            }
        } else {
            host
        };
        let info = self
            .seed
            .clone()
            .set_addr(ConnectionAddr::Tcp(host.clone(), port));
        Ok((redis::Client::open(info)?, (host, port)))
    }
}

/// Whether a node whose `ROLE` answered `role` may be read: a replica, or a master without
/// replicas (whose writes no failover can take back, as none can happen).
pub(crate) fn safe_to_read(role: &Value) -> bool {
    let Value::Array(parts) = role else {
        return false;
    };
    let name = match parts.first() {
        Some(Value::BulkString(b)) => b.as_slice(),
        Some(Value::SimpleString(s)) => s.as_bytes(),
        _ => return false,
    };
    match name {
        b"slave" | b"replica" => true,
        b"master" => matches!(parts.get(2), Some(Value::Array(replicas)) if replicas.is_empty()),
        _ => false,
    }
}

/// The reader address for `slot` most nodes name, from every node's `CLUSTER SLOTS` reply (a
/// map from node to reply; a single reply counts as one node's).
fn most_named(replies: &Value, slot: usize) -> Option<(String, u16)> {
    let answers: Vec<(String, u16)> = match replies {
        Value::Map(pairs) => pairs
            .iter()
            .filter_map(|(_, reply)| reader_of(reply, slot))
            .collect(),
        reply => reader_of(reply, slot).into_iter().collect(),
    };
    let count = |a: &(String, u16)| answers.iter().filter(|b| *b == a).count();
    answers.iter().max_by_key(|a| count(a)).cloned()
}

/// The address to read `slot` at in a `CLUSTER SLOTS` reply (`[[start, end, [host, port, id,
/// …], replicas…], …]`): its first replica, else its master.
fn reader_of(reply: &Value, slot: usize) -> Option<(String, u16)> {
    let Value::Array(ranges) = reply else {
        return None;
    };
    ranges.iter().find_map(|range| {
        let Value::Array(parts) = range else {
            return None;
        };
        let int = |v: &Value| match v {
            Value::Int(n) => usize::try_from(*n).ok(),
            _ => None,
        };
        let (start, end) = (int(parts.first()?)?, int(parts.get(1)?)?);
        if !(start..=end).contains(&slot) {
            return None;
        }
        let Value::Array(node) = parts.get(3).or_else(|| parts.get(2))? else {
            return None;
        };
        let host = match node.first()? {
            Value::BulkString(b) => String::from_utf8_lossy(b).into_owned(),
            Value::SimpleString(s) => s.clone(),
            _ => return None,
        };
        let port = u16::try_from(int(node.get(1)?)?).ok()?;
        Some((host, port))
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A `CLUSTER SLOTS` reply: slots 0-16383 served by `master`, with `replica` if given.
    fn slots_reply(master: u16, replica: Option<u16>) -> Value {
        let node = |port: u16| {
            Value::Array(vec![
                Value::BulkString(b"127.0.0.1".to_vec()),
                Value::Int(port.into()),
            ])
        };
        let mut range = vec![Value::Int(0), Value::Int(16383), node(master)];
        range.extend(replica.map(node));
        Value::Array(vec![Value::Array(range)])
    }

    #[test]
    fn the_reader_is_the_node_most_nodes_name() {
        let host = |port| Some(("127.0.0.1".to_owned(), port));
        // A restarted old master still names itself (no replica); the others name the new
        // master's replica, or the new master while it has none.
        let replies = Value::Map(vec![
            (Value::Int(1), slots_reply(7000, None)),
            (Value::Int(2), slots_reply(7003, Some(7004))),
            (Value::Int(3), slots_reply(7003, Some(7004))),
        ]);
        assert_eq!(most_named(&replies, 42), host(7004));
        assert_eq!(most_named(&slots_reply(7003, None), 42), host(7003));
        assert_eq!(most_named(&Value::Map(Vec::new()), 42), None);
    }

    #[test]
    fn slots_match_redis() {
        // Values from the Redis Cluster specification's examples and `CLUSTER KEYSLOT`.
        assert_eq!(slot(b"123456789"), 0x31C3 % SLOTS);
        assert_eq!(slot(b"foo"), 12182);
        assert_eq!(slot(b"bar"), 5061);
    }

    #[test]
    fn tags_spread_over_the_slot_space() {
        let tags = tags(16);
        assert_eq!(tags.len(), 16);
        for (i, tag) in tags.iter().enumerate() {
            let s = slot(tag.as_bytes());
            assert!(
                s >= i * SLOTS / 16 && s < (i + 1) * SLOTS / 16,
                "{tag}: {s}"
            );
        }
        assert_eq!(key_slot("push:{g3-1}chat"), slot(b"g3-1"));
        assert_eq!(key_slot("push:chat"), slot(b"push:chat"));
        let topic = Topic::new("chat").unwrap();
        assert!(group(&topic, 16) < 16);
        assert_eq!(group(&topic, 1), 0);
    }
}
