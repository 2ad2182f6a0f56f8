//! Following shards: the pure acceptance rule ([`accept`]) and the tokio task per shard ([`task`]).

pub mod accept;
pub mod task;

pub use accept::{accept, anchor, equivocation, head_from_stored, Head, Rejection, ShardSpec};
pub use task::{follow, FollowLimits};
