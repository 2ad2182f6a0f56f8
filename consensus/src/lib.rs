//! shardex sequencer sets: each shard's validators agree on one block log with Malachite (Tendermint BFT)
//! through its app-channel API.
//!
//! The engine's view of a shard ([`types`], [`messages`], [`context`]), signing under shardex's ed25519 rule
//! (ZIP-215, small-order keys refused) and vote layouts ([`signing`]), the wire and WAL format ([`codec`]),
//! blocks streamed as proposal parts ([`stream`]), proposals kept across a restart ([`store`]), the seam the
//! shard implements ([`app`]), the loop that answers the engine ([`host`]) and starting it all ([`engine`]).

pub mod app;
pub mod codec;
pub mod context;
pub mod engine;
pub mod host;
pub mod messages;
pub mod signing;
pub mod store;
pub mod stream;
pub mod types;

pub use app::{AppError, AppHead, BlockApp, Verdict};
pub use context::ShardCtx;
pub use engine::{start, EngineSettings, Role, Running, StartError};
pub use stream::{BlockBody, CertifiedBody, StreamLimits};
