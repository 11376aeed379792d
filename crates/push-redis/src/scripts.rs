//! The Lua scripts that write a topic's stream atomically (publish, complete, delete) and read
//! its head, keeping cursors and stream ids one and the same; and the keys of a topic's
//! idempotency keys.

use crate::stream::{DATA, END, TIME};

/// The Lua that finds a stream's epoch: the milliseconds part of its ids. Every entry of a
/// stream written by this crate has the same milliseconds part, so the stream id `E-S` is the
/// cursor of epoch `E` and sequence `S`. A stream that does not exist (or holds nothing and was
/// never written) gets a fresh epoch from the server's clock, so a stream deleted and created
/// again has a new, larger epoch.
const EPOCH_LUA: &str = r"
local function last_id(key)
  local top = redis.call('XREVRANGE', key, '+', '-', 'COUNT', 1)
  if top[1] then return top[1][1] end
  if redis.call('EXISTS', key) == 1 then
    local info = redis.call('XINFO', 'STREAM', key)
    for i = 1, #info, 2 do
      if info[i] == 'last-generated-id' then return info[i + 1] end
    end
  end
  return nil
end
local function fresh_epoch()
  local t = redis.call('TIME')
  return t[1] .. string.format('%03d', math.floor(tonumber(t[2]) / 1000))
end
local function epoch_of(id)
  if not id then return nil end
  local ms = string.match(id, '^(%d+)-')
  if ms == '0' then return nil end
  return ms
end
local function end_of(key)
  local top = redis.call('XREVRANGE', key, '+', '-', 'COUNT', 1)
  if not top[1] then return nil end
  local fields = top[1][2]
  for i = 1, #fields, 2 do
    if fields[i] == 'end' then return fields[i + 1] end
  end
  return nil
end
local function forget_if_deleted(key)
  if end_of(key) == 'deleted' then redis.call('DEL', key) end
end
";

/// The most idempotency keys one publish forgets (past the window, or over the count): a
/// bounded amount of work per script, and `unpack` stays far below Lua's stack limit. A publish
/// adds at most one key, so this drains any backlog.
const FORGET_BATCH: usize = 100;

/// `KEYS[1]` the stream, `KEYS[2]` and `KEYS[3]` the topic's idempotency keys (see
/// [`idempotency_keys`]: a hash of key to entry id, and a sorted set of key by the time it
/// came, in milliseconds of the Redis clock), `ARGV[1]` the `MAXLEN ~` bound, `ARGV[2]` the
/// publish's idempotency key (empty for none), `ARGV[3]` the idempotency window in
/// milliseconds, `ARGV[4]` the most keys remembered, the rest field/value pairs. Returns the
/// new entry's id, or the first one's for a key already seen within the window (even once the
/// topic is complete: the key is read before the end), else `PUSHCOMPLETE` on a complete topic.
///
/// The keys of a topic are bounded by count, as in memory: keys past the window are forgotten
/// (oldest first, a batch per publish, and a key seen past the window counts as new even
/// before), then the oldest beyond `ARGV[4]`. Both structures expire a window after the latest
/// keyed publish, so a topic that stops using keys leaves none behind. Every step is O(log n)
/// in the keys remembered.
pub(crate) fn publish_script() -> redis::Script {
    redis::Script::new(&format!(
        "{EPOCH_LUA}
local key = KEYS[1]
forget_if_deleted(key)
local idem = ARGV[2]
local now
if idem ~= '' then
  local t = redis.call('TIME')
  now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
  local since = now - tonumber(ARGV[3])
  local old = redis.call('ZRANGEBYSCORE', KEYS[3], '-inf', '(' .. since, 'LIMIT', 0, {FORGET_BATCH})
  if old[1] then
    redis.call('HDEL', KEYS[2], unpack(old))
    redis.call('ZREM', KEYS[3], unpack(old))
  end
  local at = redis.call('ZSCORE', KEYS[3], idem)
  if at and tonumber(at) >= since then
    local first = redis.call('HGET', KEYS[2], idem)
    if first then return first end
  end
end
-- After the key: a retry of a publish stored before the topic completed answers its id.
if end_of(key) == 'complete' then return redis.error_reply('PUSHCOMPLETE topic is complete') end
local epoch = epoch_of(last_id(key))
local id
if epoch then id = epoch .. '-*' else id = fresh_epoch() .. '-1' end
local added = redis.call('XADD', key, 'MAXLEN', '~', ARGV[1], id, unpack(ARGV, 5))
if idem ~= '' then
  redis.call('HSET', KEYS[2], idem, added)
  redis.call('ZADD', KEYS[3], now, idem)
  local over = math.min(redis.call('ZCARD', KEYS[3]) - tonumber(ARGV[4]), {FORGET_BATCH})
  if over > 0 then
    local oldest = redis.call('ZRANGE', KEYS[3], 0, over - 1)
    redis.call('HDEL', KEYS[2], unpack(oldest))
    redis.call('ZREMRANGEBYRANK', KEYS[3], 0, over - 1)
  end
  redis.call('PEXPIRE', KEYS[2], ARGV[3])
  redis.call('PEXPIRE', KEYS[3], ARGV[3])
end
return added"
    ))
}

/// `KEYS[1]` the stream, `ARGV[1]` the `MAXLEN ~` bound, `ARGV[2]` the time. Appends the
/// `end complete` entry unless the stream already ends so; returns the end's id.
pub(crate) fn complete_script() -> redis::Script {
    redis::Script::new(&format!(
        "{EPOCH_LUA}
local key = KEYS[1]
forget_if_deleted(key)
if end_of(key) == 'complete' then return last_id(key) end
local epoch = epoch_of(last_id(key))
local id
if epoch then id = epoch .. '-*' else id = fresh_epoch() .. '-1' end
return redis.call('XADD', key, 'MAXLEN', '~', ARGV[1], id, '{END}', 'complete', '{TIME}', ARGV[2])"
    ))
}

/// `KEYS[1]` the stream, `KEYS[2]` and `KEYS[3]` its idempotency keys. Drops its entries and
/// its idempotency keys, and leaves one `end deleted` entry, so that every reader learns of it;
/// the next publish starts a new stream (a new epoch) with no key remembered. Returns 1 if the
/// topic existed (and was not deleted already), else 0.
pub(crate) fn delete_script() -> redis::Script {
    redis::Script::new(&format!(
        "{EPOCH_LUA}
local key = KEYS[1]
redis.call('DEL', KEYS[2], KEYS[3])
local epoch = epoch_of(last_id(key))
if not epoch or end_of(key) == 'deleted' then return 0 end
redis.call('XTRIM', key, 'MAXLEN', '0')
redis.call('XADD', key, epoch .. '-*', '{END}', 'deleted')
return 1"
    ))
}

/// `KEYS[1]` the stream, `ARGV[1]` `1` to create the stream (empty, with a fresh epoch) when it
/// does not exist (or was deleted). Returns the id of the newest entry (`E-0` for an empty
/// stream of epoch `E`) and its `end` field (`complete`, `deleted`, or empty), or nil when the
/// stream does not exist and was not created.
pub(crate) fn head_script() -> redis::Script {
    redis::Script::new(&head_lua())
}

/// The source of [`head_script`], which a replica runs read-only (`EVAL_RO`) when `ARGV[1]` is
/// not `1`.
pub(crate) fn head_lua() -> String {
    format!(
        "{EPOCH_LUA}
local key = KEYS[1]
if ARGV[1] == '1' then forget_if_deleted(key) end
local id = last_id(key)
if epoch_of(id) then return {{id, end_of(key) or ''}} end
if ARGV[1] ~= '1' then return nil end
local epoch = fresh_epoch()
redis.call('XADD', key, 'MAXLEN', '0', epoch .. '-0', '{DATA}', '')
return {{epoch .. '-0', ''}}"
    )
}

/// The two keys remembering a topic's idempotency keys: `{stream}#idem`, a hash of key to the
/// first publish's entry id, and `{stream}#idem-at`, a sorted set of key by the time it came.
/// `#` is not a topic character, so neither ever names a topic's stream; in a cluster both
/// carry the stream's hash tag, so the publish script may use them with the stream.
pub(crate) fn idempotency_keys(stream: &str) -> [String; 2] {
    [format!("{stream}#idem"), format!("{stream}#idem-at")]
}
