//! Redis Cluster: the hash-tag groups topics fall into, and the node a group's reader reads.
//!
//! One `XREAD` may only name keys of one hash slot, so a reader cannot follow streams spread
//! over the slots. Each topic's stream therefore carries the hash tag of one of `n` groups
//! (`push:{g3-17}chat`), chosen by where the topic name's own slot falls, and each group's
//! tag is picked so that its slot lies in the group's `1/n` of the slot space: the groups
//! spread over the masters as the slots do, and one reader per group follows all its topics
//! on one connection to the node that serves the slot.

use push_core::Topic;
use redis::cluster_routing::{RoutingInfo, SingleNodeRoutingInfo};
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

    /// The master serving `slot` now, asked of any node (`CLUSTER SLOTS`), as a client.
    pub(crate) async fn node(
        &self,
        commands: &mut redis::cluster_async::ClusterConnection,
        slot: usize,
    ) -> Result<(redis::Client, (String, u16)), RedisError> {
        let reply = commands
            .route_command(
                redis::cmd("CLUSTER").arg("SLOTS").clone(),
                RoutingInfo::SingleNode(SingleNodeRoutingInfo::Random),
            )
            .await?;
        let (host, port) = master_of(&reply, slot).ok_or_else(|| {
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

/// The master's address for `slot` in a `CLUSTER SLOTS` reply: `[[start, end, [host, port,
/// id, …], replicas…], …]`.
fn master_of(reply: &Value, slot: usize) -> Option<(String, u16)> {
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
        let Value::Array(master) = parts.get(2)? else {
            return None;
        };
        let host = match master.first()? {
            Value::BulkString(b) => String::from_utf8_lossy(b).into_owned(),
            Value::SimpleString(s) => s.clone(),
            _ => return None,
        };
        let port = u16::try_from(int(master.get(1)?)?).ok()?;
        Some((host, port))
    })
}

#[cfg(test)]
mod tests {
    use super::*;

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
        let topic = Topic::new("chat").unwrap();
        assert!(group(&topic, 16) < 16);
        assert_eq!(group(&topic, 1), 0);
    }
}
