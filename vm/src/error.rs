//! Why a tx failed to execute. A failed tx writes nothing.

use shardex_core::{bridge::BridgeError, nonce::NonceError, Reason};

/// The state could not be read; the node must stop rather than guess.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("state read failed: {0}")]
pub struct StorageError(pub String);

/// A tx that cannot execute against the current state.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ExecError {
    /// Nonce reuse or below the window.
    #[error(transparent)]
    Nonce(#[from] NonceError),
    /// The signer may not perform this op.
    #[error("{0}")]
    Unauthorized(String),
    /// An argument is out of range or malformed.
    #[error("{0}")]
    InvalidOp(String),
    /// Not enough free collateral.
    #[error("insufficient free collateral: requested {requested_micros} micro-USD, free {free_micros}")]
    InsufficientCollateral {
        /// Asked for.
        requested_micros: u64,
        /// Available.
        free_micros: i64,
    },
    /// The op would leave the account below its margin requirement.
    #[error("insufficient margin: equity {equity_micros} micro-USD, requirement {required_micros}")]
    InsufficientMargin {
        /// Equity after the op.
        equity_micros: i64,
        /// Requirement after the op.
        required_micros: i64,
    },
    /// The oracle price is missing or older than the market allows.
    #[error("{0}")]
    StalePrice(String),
    /// The market mode forbids the op.
    #[error("{0}")]
    MarketMode(String),
    /// A post-only order would trade.
    #[error("post-only order at {price_micros} would trade immediately")]
    WouldCross {
        /// The order's price.
        price_micros: u64,
    },
    /// The account is not below maintenance margin.
    #[error("account is not liquidatable: equity {equity_micros} micro-USD, maintenance {maintenance_micros}")]
    NotLiquidatable {
        /// Equity at the mark.
        equity_micros: i64,
        /// Maintenance requirement at the mark.
        maintenance_micros: i64,
    },
    /// A bridge op was refused (bad proof, duplicate, wrong lifecycle state, expiry...).
    #[error(transparent)]
    Bridge(#[from] BridgeError),
    /// Checked arithmetic overflowed.
    #[error("arithmetic overflow in {0}")]
    Overflow(&'static str),
    /// The tx would exceed its gas allowance.
    #[error("out of gas: needs {needed}, allowed {allowed}")]
    OutOfGas {
        /// Gas the tx needed.
        needed: u64,
        /// Gas left.
        allowed: u64,
    },
    /// A stored record does not decode: state is corrupt.
    #[error("corrupt record {what}: {detail}")]
    Corrupt {
        /// Which record.
        what: &'static str,
        /// Decoder message.
        detail: String,
    },
    /// The state could not be read.
    #[error(transparent)]
    Storage(#[from] StorageError),
}

impl ExecError {
    /// The machine-readable reason clients see.
    pub fn reason(&self) -> Reason {
        match self {
            Self::Nonce(_) => Reason::NonceUsed,
            Self::Unauthorized(_) => Reason::Unauthorized,
            Self::InvalidOp(_) => Reason::InvalidOp,
            Self::InsufficientCollateral { .. } => Reason::InsufficientCollateral,
            Self::Overflow(_) => Reason::Overflow,
            Self::InsufficientMargin { .. } => Reason::InsufficientMargin,
            Self::StalePrice(_) => Reason::StalePrice,
            Self::MarketMode(_) => Reason::MarketMode,
            Self::WouldCross { .. } => Reason::WouldCross,
            Self::NotLiquidatable { .. } => Reason::NotLiquidatable,
            Self::Bridge(e) => e.reason(),
            Self::OutOfGas { .. } => Reason::GasLimit,
            Self::Corrupt { .. } | Self::Storage(_) => Reason::Unavailable,
        }
    }

    /// True when the failure is the node's (storage), not the tx's.
    pub fn is_fatal(&self) -> bool {
        matches!(self, Self::Corrupt { .. } | Self::Storage(_))
    }
}
