//! What the coordinator knows of every followed shard: accepted head, connection, reported head and
//! rejections. Followers write it; the epoch ticker and the status RPC read it.

use std::{
    collections::{BTreeMap, VecDeque},
    sync::Mutex,
};

use shardex_core::{coordpb, ShardId};

use crate::follower::{Head, Rejection, ShardSpec};

/// One shard as seen by the coordinator.
#[derive(Debug, Clone)]
pub struct ShardView {
    /// From the shard's genesis.
    pub spec: ShardSpec,
    /// gRPC endpoints of the shard's nodes (its validators), tried in turn.
    pub endpoints: Vec<String>,
    /// The endpoint followed now (index into `endpoints`).
    pub current: usize,
    /// Last accepted header (None until the genesis anchor is fetched).
    pub head: Option<Head>,
    /// Whether a header stream is open.
    pub connected: bool,
    /// The shard's head as it last reported it.
    pub reported_height: u64,
    /// Headers refused so far.
    pub rejected: u64,
    /// Newest rejections, oldest first.
    pub recent: VecDeque<coordpb::Rejection>,
    /// The height of the equivocation that holds the shard, if it is held.
    pub held: Option<u64>,
    /// Equivocations recorded.
    pub equivocations: u64,
}

/// Every followed shard, behind one lock held only for field updates.
#[derive(Debug)]
pub struct Registry {
    shards: Mutex<BTreeMap<ShardId, ShardView>>,
    max_recent: usize,
}

impl Registry {
    /// A registry of `views`, keeping at most `max_recent` rejections per shard.
    pub fn new(views: Vec<ShardView>, max_recent: usize) -> Self {
        let shards = views.into_iter().map(|v| (v.spec.shard, v)).collect();
        Self { shards: Mutex::new(shards), max_recent }
    }

    fn with<R>(&self, f: impl FnOnce(&mut BTreeMap<ShardId, ShardView>) -> R) -> R {
        let mut guard = self.shards.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
        f(&mut guard)
    }

    /// A copy of one shard's view.
    pub fn view(&self, shard: ShardId) -> Option<ShardView> {
        self.with(|s| s.get(&shard).cloned())
    }

    /// Copies of every view, by shard id.
    pub fn views(&self) -> Vec<ShardView> {
        self.with(|s| s.values().cloned().collect())
    }

    /// Moves `shard`'s head (after the header was stored).
    pub fn set_head(&self, shard: ShardId, head: Head) {
        self.with(|s| {
            if let Some(v) = s.get_mut(&shard) {
                debug_assert!(v.head.as_ref().is_none_or(|h| head.height == h.height + 1 || head.height == 0));
                v.reported_height = v.reported_height.max(head.height);
                v.head = Some(head);
            }
        })
    }

    /// Holds `shard` after an equivocation at `height` and counts it.
    pub fn hold(&self, shard: ShardId, height: u64) {
        self.with(|s| {
            if let Some(v) = s.get_mut(&shard) {
                v.held.get_or_insert(height);
                v.equivocations += 1;
            }
        })
    }

    /// The endpoint followed now.
    pub fn endpoint(&self, shard: ShardId) -> Option<String> {
        self.with(|s| s.get(&shard).and_then(|v| v.endpoints.get(v.current).cloned()))
    }

    /// Moves on to `shard`'s next endpoint (after a failure or a stall of the current one); returns it.
    pub fn next_endpoint(&self, shard: ShardId) -> Option<String> {
        self.with(|s| {
            let v = s.get_mut(&shard)?;
            v.current = (v.current + 1) % v.endpoints.len().max(1);
            v.endpoints.get(v.current).cloned()
        })
    }

    /// Records whether a stream to `shard` is open.
    pub fn set_connected(&self, shard: ShardId, connected: bool) {
        self.with(|s| {
            if let Some(v) = s.get_mut(&shard) {
                v.connected = connected;
            }
        })
    }

    /// Records the head the shard reports.
    pub fn set_reported(&self, shard: ShardId, height: u64) {
        self.with(|s| {
            if let Some(v) = s.get_mut(&shard) {
                v.reported_height = height;
            }
        })
    }

    /// Counts a refused header and keeps it among the recent ones.
    pub fn record_rejection(&self, shard: ShardId, height: u64, rejection: &Rejection, time_ms: u64) {
        let max = self.max_recent;
        self.with(|s| {
            if let Some(v) = s.get_mut(&shard) {
                v.rejected += 1;
                v.reported_height = v.reported_height.max(height);
                if max > 0 {
                    while v.recent.len() >= max {
                        v.recent.pop_front();
                    }
                    v.recent.push_back(coordpb::Rejection {
                        height,
                        reason: rejection.kind().to_owned(),
                        message: rejection.to_string(),
                        time_ms,
                    });
                }
            }
        })
    }

    /// The entries the next epoch commits: every shard with an accepted signed header (height ≥ 1).
    pub fn entries(&self) -> BTreeMap<ShardId, coordpb::ShardEntry> {
        self.with(|s| {
            s.iter()
                .filter_map(|(id, v)| {
                    let h = v.head.as_ref().filter(|h| h.height > 0)?;
                    Some((
                        *id,
                        coordpb::ShardEntry {
                            shard_id: id.0,
                            height: h.height,
                            block_hash: h.hash.to_vec(),
                            state_root: h.state_root.to_vec(),
                        },
                    ))
                })
                .collect()
        })
    }
}

/// Milliseconds since the Unix epoch.
pub fn now_ms() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX))
        .unwrap_or(0)
}
