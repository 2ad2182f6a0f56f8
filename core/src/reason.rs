//! Machine-readable rejection reasons shared by the node, the SDK and the CLI.

use std::{fmt, str::FromStr};

/// Why the node refused a request. The string form travels in the `shardex-reason` gRPC metadata.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Reason {
    /// Bytes that do not decode as the expected message.
    Malformed,
    /// A transaction larger than the node's `max_tx_bytes`.
    TxTooLarge,
    /// The body names another chain.
    WrongChain,
    /// The body names another shard.
    WrongShard,
    /// The signer is not a valid public key or the signature does not verify.
    BadSignature,
    /// The body carries no op, or an argument is out of range.
    InvalidOp,
    /// The op is declared in the wire contract but not enabled on this shard yet.
    OpNotEnabled,
    /// The signer may not perform this op (e.g. deposit not signed by the deposit authority).
    Unauthorized,
    /// The nonce was used (or is below the window).
    NonceUsed,
    /// Not enough free collateral.
    InsufficientCollateral,
    /// Arithmetic overflow; the tx is rejected.
    Overflow,
    /// The mempool is full.
    MempoolFull,
    /// The same tx is already pending or included.
    DuplicateTx,
    /// A batch exceeds `max_batch_txs`.
    BatchTooLarge,
    /// The tx alone exceeds the block gas limit.
    GasLimit,
    /// A requested height or record is unknown or outside the retention window.
    NotFound,
    /// The node is not ready to serve.
    Unavailable,
    /// The order or withdrawal would leave the account below its margin requirement.
    InsufficientMargin,
    /// No fresh oracle price: the market takes no new risk until one arrives.
    StalePrice,
    /// The market's mode forbids this op now.
    MarketMode,
    /// A post-only order would have traded immediately.
    WouldCross,
    /// The account is above its maintenance margin.
    NotLiquidatable,
    /// A cross-shard proof (shard entry under a global root, record under a state root) does not verify.
    InvalidProof,
    /// A proof has more nodes, or larger nodes, than the protocol allows.
    ProofTooLarge,
    /// The epoch named is not an imported epoch inside this shard's window.
    UnknownEpoch,
    /// Already done: the epoch is imported, the message delivered, acknowledged or refunded.
    Duplicate,
    /// The message is not in a state that allows this (unknown, or closed the other way).
    MessageState,
    /// The message's expiry epoch has passed (transfer-out or delivery).
    Expired,
    /// A refund before the destination imported an epoch past the message's expiry.
    NotExpired,
    /// The shard's validators have no reachable proposer right now (a round is changing): retry shortly.
    NoLeader,
    /// A stream subscriber read nothing for too long while its buffer was full; the stream was dropped.
    SlowConsumer,
    /// The signer had too many txs refused since the last block; retry after the next one.
    RateLimited,
}

impl Reason {
    /// Every reason, for exhaustive round-trip tests.
    pub const ALL: [Reason; 32] = [
        Self::Malformed,
        Self::TxTooLarge,
        Self::WrongChain,
        Self::WrongShard,
        Self::BadSignature,
        Self::InvalidOp,
        Self::OpNotEnabled,
        Self::Unauthorized,
        Self::NonceUsed,
        Self::InsufficientCollateral,
        Self::Overflow,
        Self::MempoolFull,
        Self::DuplicateTx,
        Self::BatchTooLarge,
        Self::GasLimit,
        Self::NotFound,
        Self::Unavailable,
        Self::InsufficientMargin,
        Self::StalePrice,
        Self::MarketMode,
        Self::WouldCross,
        Self::NotLiquidatable,
        Self::InvalidProof,
        Self::ProofTooLarge,
        Self::UnknownEpoch,
        Self::Duplicate,
        Self::MessageState,
        Self::Expired,
        Self::NotExpired,
        Self::NoLeader,
        Self::SlowConsumer,
        Self::RateLimited,
    ];

    /// The stable wire name, e.g. `NONCE_USED`.
    pub const fn as_str(self) -> &'static str {
        match self {
            Self::Malformed => "MALFORMED",
            Self::TxTooLarge => "TX_TOO_LARGE",
            Self::WrongChain => "WRONG_CHAIN",
            Self::WrongShard => "WRONG_SHARD",
            Self::BadSignature => "BAD_SIGNATURE",
            Self::InvalidOp => "INVALID_OP",
            Self::OpNotEnabled => "OP_NOT_ENABLED",
            Self::Unauthorized => "UNAUTHORIZED",
            Self::NonceUsed => "NONCE_USED",
            Self::InsufficientCollateral => "INSUFFICIENT_COLLATERAL",
            Self::Overflow => "OVERFLOW",
            Self::MempoolFull => "MEMPOOL_FULL",
            Self::DuplicateTx => "DUPLICATE_TX",
            Self::BatchTooLarge => "BATCH_TOO_LARGE",
            Self::GasLimit => "GAS_LIMIT",
            Self::NotFound => "NOT_FOUND",
            Self::Unavailable => "UNAVAILABLE",
            Self::InsufficientMargin => "INSUFFICIENT_MARGIN",
            Self::StalePrice => "STALE_PRICE",
            Self::MarketMode => "MARKET_MODE",
            Self::WouldCross => "WOULD_CROSS",
            Self::NotLiquidatable => "NOT_LIQUIDATABLE",
            Self::InvalidProof => "INVALID_PROOF",
            Self::ProofTooLarge => "PROOF_TOO_LARGE",
            Self::UnknownEpoch => "UNKNOWN_EPOCH",
            Self::Duplicate => "DUPLICATE",
            Self::MessageState => "MESSAGE_STATE",
            Self::Expired => "EXPIRED",
            Self::NotExpired => "NOT_EXPIRED",
            Self::NoLeader => "NO_LEADER",
            Self::SlowConsumer => "SLOW_CONSUMER",
            Self::RateLimited => "RATE_LIMITED",
        }
    }
}

impl fmt::Display for Reason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// An unknown reason string.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("unknown reason {0:?}")]
pub struct UnknownReason(pub String);

impl FromStr for Reason {
    type Err = UnknownReason;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Self::ALL.into_iter().find(|r| r.as_str() == s).ok_or_else(|| UnknownReason(s.to_owned()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_round_trip_and_are_distinct() {
        let mut seen = std::collections::HashSet::new();
        for r in Reason::ALL {
            assert_eq!(r.as_str().parse::<Reason>(), Ok(r));
            assert!(seen.insert(r.as_str()));
        }
    }
}
