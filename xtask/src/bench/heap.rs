//! The counting allocator: where a server's per-connection memory goes, byte for byte.
//!
//! RSS says how much a connection costs; the heap says what it is made of. Every bench server
//! process runs on [`Counting`], which is off (one relaxed load per call) until the bench
//! starts a server with [`ENV`] set, as the idle part does. Then the process counts its live
//! heap bytes and blocks, by size class, and answers each line it reads on stdin with one
//! [`Snapshot`] line on stdout. The bench takes one snapshot before the clients connect and one
//! after, so the difference divided by the clients is what each connection holds on the heap,
//! and its size classes name the parts (hyper's two 8 KiB buffers, the service future's box,
//! the subscription, …).

use std::alloc::{GlobalAlloc, Layout, System};
use std::sync::atomic::{AtomicBool, AtomicI64, Ordering::Relaxed};

/// The environment variable that turns counting on in a `cargo xtask serve` process.
pub(crate) const ENV: &str = "PUSH_BENCH_HEAP";

/// Size classes: block sizes up to 16 B, 32 B, …, 64 KiB, and larger.
const CLASSES: usize = 14;

static ON: AtomicBool = AtomicBool::new(false);
static BYTES: AtomicI64 = AtomicI64::new(0);
static BLOCKS: [AtomicI64; CLASSES] = [const { AtomicI64::new(0) }; CLASSES];

/// The system allocator, counting live bytes and blocks per size class while on.
pub(crate) struct Counting;

fn class(size: usize) -> usize {
    // 0 for up to 16 bytes, 1 for up to 32, … ; the last class takes everything larger.
    let bits = usize::BITS - size.saturating_sub(1).max(15).leading_zeros();
    (bits as usize - 4).min(CLASSES - 1)
}

/// The upper bound of a size class, for the table (`None`: the open last class).
pub(crate) fn class_limit(class: usize) -> Option<usize> {
    (class + 1 < CLASSES).then(|| 16usize << class)
}

fn count(size: usize, sign: i64) {
    BYTES.fetch_add(sign * size as i64, Relaxed);
    BLOCKS[class(size)].fetch_add(sign, Relaxed);
}

// SAFETY: every call is forwarded unchanged to `System`; counting only reads the layouts.
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        // SAFETY: the caller's contract, passed on.
        let ptr = unsafe { System.alloc(layout) };
        if ON.load(Relaxed) && !ptr.is_null() {
            count(layout.size(), 1);
        }
        ptr
    }

    unsafe fn alloc_zeroed(&self, layout: Layout) -> *mut u8 {
        // SAFETY: the caller's contract, passed on.
        let ptr = unsafe { System.alloc_zeroed(layout) };
        if ON.load(Relaxed) && !ptr.is_null() {
            count(layout.size(), 1);
        }
        ptr
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        if ON.load(Relaxed) {
            count(layout.size(), -1);
        }
        // SAFETY: the caller's contract, passed on.
        unsafe { System.dealloc(ptr, layout) }
    }

    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        // SAFETY: the caller's contract, passed on.
        let new = unsafe { System.realloc(ptr, layout, new_size) };
        if ON.load(Relaxed) && !new.is_null() {
            count(layout.size(), -1);
            count(new_size, 1);
        }
        new
    }
}

/// Live heap at one moment: bytes, and blocks per size class. Blocks allocated before counting
/// was turned on and freed after make the counts dip below zero: only differences mean anything.
#[derive(Debug, Clone, Default, PartialEq)]
pub(crate) struct Snapshot {
    pub(crate) bytes: i64,
    pub(crate) blocks: [i64; CLASSES],
}

impl Snapshot {
    fn now() -> Self {
        Self {
            bytes: BYTES.load(Relaxed),
            blocks: std::array::from_fn(|i| BLOCKS[i].load(Relaxed)),
        }
    }

    fn line(&self) -> String {
        let mut line = format!("heap {}", self.bytes);
        for b in &self.blocks {
            line += &format!(" {b}");
        }
        line
    }

    /// Parses [`line`](Self::line)'s output.
    pub(crate) fn parse(line: &str) -> Option<Self> {
        let mut words = line.trim().strip_prefix("heap ")?.split(' ');
        let bytes = words.next()?.parse().ok()?;
        let mut blocks = [0; CLASSES];
        for b in &mut blocks {
            *b = words.next()?.parse().ok()?;
        }
        Some(Self { bytes, blocks })
    }

    /// What was added since `before`, per connection: bytes, and blocks per class.
    pub(crate) fn per(&self, before: &Self, n: usize) -> PerConnection {
        let n = n.max(1) as f64;
        PerConnection {
            bytes: (self.bytes - before.bytes) as f64 / n,
            blocks: std::array::from_fn(|i| (self.blocks[i] - before.blocks[i]) as f64 / n),
        }
    }
}

/// Heap held per connection, from two snapshots.
#[derive(Debug, Clone, Default)]
pub(crate) struct PerConnection {
    pub(crate) bytes: f64,
    pub(crate) blocks: [f64; CLASSES],
}

impl PerConnection {
    /// Blocks per connection over all classes.
    pub(crate) fn total_blocks(&self) -> f64 {
        self.blocks.iter().sum()
    }

    /// The size classes holding at least a tenth of a block per connection, largest first:
    /// `"2×≤8K 1×≤1K …"`.
    pub(crate) fn breakdown(&self) -> String {
        let mut parts = Vec::new();
        for class in (0..CLASSES).rev() {
            let blocks = self.blocks[class];
            if blocks < 0.1 {
                continue;
            }
            let limit = class_limit(class).map_or_else(
                || ">64K".to_owned(),
                |l| {
                    if l >= 1024 {
                        format!("≤{}K", l / 1024)
                    } else {
                        format!("≤{l}")
                    }
                },
            );
            let blocks = if (blocks - blocks.round()).abs() < 0.05 {
                format!("{blocks:.0}")
            } else {
                format!("{blocks:.1}")
            };
            parts.push(format!("{blocks}×{limit}"));
        }
        parts.join(" ")
    }

    pub(crate) fn json(&self) -> serde_json::Value {
        serde_json::json!({
            "bytes": self.bytes,
            "blocks": self.total_blocks(),
            "blocks_by_class": (0..CLASSES)
                .map(|c| serde_json::json!({
                    "up_to_bytes": class_limit(c),
                    "blocks": self.blocks[c],
                }))
                .collect::<Vec<_>>(),
        })
    }
}

/// In a `cargo xtask serve` process: when [`ENV`] is set, turns counting on and answers each
/// line on stdin with a [`Snapshot`] line on stdout, from a thread of its own; the line `off`
/// turns counting off first (so that the load that follows runs uncounted).
pub(crate) fn serve_if_asked() {
    if std::env::var_os(ENV).is_none() {
        return;
    }
    ON.store(true, Relaxed);
    std::thread::spawn(|| {
        use std::io::{BufRead, Write};
        let stdin = std::io::stdin();
        let mut line = String::new();
        while stdin.lock().read_line(&mut line).is_ok_and(|n| n > 0) {
            if line.trim() == "off" {
                ON.store(false, Relaxed);
            }
            line.clear();
            let mut out = std::io::stdout().lock();
            if writeln!(out, "{}", Snapshot::now().line())
                .and_then(|()| out.flush())
                .is_err()
            {
                return;
            }
        }
    });
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn classes_are_powers_of_two_from_16_bytes() {
        assert_eq!(class(0), 0);
        assert_eq!(class(16), 0);
        assert_eq!(class(17), 1);
        assert_eq!(class(8192), 9);
        assert_eq!(class_limit(9), Some(8192));
        assert_eq!(class(8193), 10);
        assert_eq!(class(64 * 1024), 12);
        assert_eq!(class(1 << 20), CLASSES - 1);
        assert_eq!(class_limit(CLASSES - 1), None);
    }

    #[test]
    fn a_snapshot_line_parses_back() {
        let mut s = Snapshot {
            bytes: 12345,
            ..Snapshot::default()
        };
        s.blocks[3] = -2;
        s.blocks[9] = 7;
        assert_eq!(Snapshot::parse(&s.line()), Some(s.clone()));
        let per = s.per(&Snapshot::default(), 7);
        assert_eq!(per.breakdown(), "1×≤8K");
    }
}
