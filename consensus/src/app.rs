//! The seam between consensus and the shard: the engine drives, the application builds, re-executes and
//! commits blocks. The shard node implements [`BlockApp`]; tests implement it with a toy chain.

use std::time::Instant;

use async_trait::async_trait;
use shardex_core::{block::Certificate, AccountId, B256};

use crate::stream::BlockBody;

/// The last committed block, as consensus needs it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct AppHead {
    /// Its height (0: genesis).
    pub height: u64,
    /// Its hash.
    pub hash: B256,
    /// The validator that proposed it (None for genesis): the sticky leader of the next height.
    pub proposer: Option<AccountId>,
}

/// A failure of the application itself (storage, a bug): consensus stops the node rather than go on.
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct AppError(pub String);

/// How a proposed block fared on re-execution.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Verdict {
    /// The rebuilt header is byte-identical: vote for it.
    Valid,
    /// Anything else, with the reason (logged; the node votes nil).
    Invalid(String),
}

/// What consensus asks of the shard. Implementations run blocking work off the async runtime.
#[async_trait]
pub trait BlockApp: Send + Sync + 'static {
    /// The committed head.
    fn head(&self) -> Result<AppHead, AppError>;

    /// Builds this node's block for `height` (the head's child): seals what it admitted, or an empty block
    /// if nothing arrives before `deadline`. Keeps what [`BlockApp::commit`] needs if it is decided.
    async fn build(&self, height: u64, deadline: Instant) -> Result<BlockBody, AppError>;

    /// Re-executes a block proposed for the head's child (by `proposer`, when consensus knows it) and checks
    /// that the header it rebuilds is byte-identical. Keeps what commit needs if valid.
    async fn validate(&self, proposer: Option<AccountId>, body: &BlockBody) -> Result<Verdict, AppError>;

    /// Re-executes a decided block fetched from a peer while catching up, with the certificate the peer sent
    /// beside it. `Invalid`: the certificate does not verify, or the body is not the one it certifies (the
    /// peer is at fault and another is asked). A certified block that does not replay here is an error, not
    /// a verdict: this node diverged from its validators (non-determinism, or a faulty quorum) and must stop.
    /// Keeps what commit needs if valid.
    async fn validate_certified(&self, body: &BlockBody, certificate: &Certificate) -> Result<Verdict, AppError>;

    /// Commits the decided block with its certificate, durably, before returning; drops or re-admits
    /// whatever else it had pending at that height.
    async fn commit(&self, body: &BlockBody, certificate: Certificate) -> Result<(), AppError>;

    /// A committed block and its certificate, for a peer catching up (None outside what is kept).
    fn decided(&self, height: u64) -> Result<Option<(BlockBody, Certificate)>, AppError>;

    /// The lowest height peers can fetch from this node.
    fn history_min_height(&self) -> u64;

    /// Consensus started `round` of `height`, proposed by `proposer` (for routing submissions to it).
    fn started_round(&self, height: u64, round: u32, proposer: AccountId);
}
