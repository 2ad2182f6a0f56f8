//! Leaf keys of shard state: `keccak256(namespace byte || id)` (DESIGN.md §3).

use alloy_primitives::{keccak256, B256};

use crate::ids::AccountId;

/// The namespaces of shard state; the byte is part of the protocol.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[repr(u8)]
pub enum Namespace {
    /// Market params, authority keys and mode (`MarketRecord`).
    Market = 0x01,
    /// Latest oracle price (`OracleRecord`).
    Oracle = 0x02,
    /// Collateral and nonces per account (`AccountRecord`).
    Account = 0x03,
    /// Position per account (`PositionRecord`).
    Position = 0x04,
    /// Open order by id (`OrderRecord`).
    Order = 0x05,
    /// Insurance fund (`InsuranceFundRecord`).
    InsuranceFund = 0x06,
    /// Trading fee pool (`FeePoolRecord`).
    FeePool = 0x07,
    /// Cumulative funding index (`FundingIndexRecord`).
    FundingIndex = 0x08,
    /// Outbox message by (dst shard, seq) (`OutboxMessage`).
    Outbox = 0x09,
    /// Inbox receipt by (src shard, seq) (`InboxReceipt`).
    InboxReceipt = 0x0a,
    /// Imported global commitments: the latest (id empty) and each retained epoch (`ImportedCommitmentRecord`).
    ImportedCommitment = 0x0b,
    /// On-ramp totals: deposited and withdrawn (`LedgerTotalsRecord`).
    LedgerTotals = 0x0c,
    /// One price level of the book by (side, price) (`BookLevelRecord`).
    BookLevel = 0x0d,
    /// Active prices of one book side (`BookSideRecord`).
    BookSide = 0x0e,
    /// Open orders of an account (`AccountOrdersRecord`).
    AccountOrders = 0x0f,
    /// Client order id → order id (`ClientOrderRecord`).
    ClientOrder = 0x10,
    /// Market counters (`MarketCountersRecord`).
    MarketCounters = 0x11,
    /// Lots liquidated in the current block (`LiquidationCapRecord`).
    LiquidationCap = 0x12,
    /// Accounts with a position, by side and first account byte (`PositionIndexRecord`).
    PositionIndex = 0x13,
    /// Number of positions per side (`PositionCountRecord`).
    PositionCount = 0x14,
    /// Escrow and lifecycle of an outgoing message by (dst shard, seq) (`BridgeEscrowRecord`).
    BridgeEscrow = 0x15,
    /// Last seq sent per destination shard (`BridgeSeqRecord`).
    BridgeSeq = 0x16,
    /// Genesis validator set of a bridge peer, by shard (`BridgePeerRecord`), written at genesis.
    BridgePeer = 0x17,
    /// Settled bridge messages to prune, by the height that prunes them (`BridgeSettledRecord`).
    BridgeSettled = 0x18,
    /// The live expiries of an options market (`OptionChainRecord`).
    OptionChain = 0x19,
    /// One expiry of an options market: its series and volatility (`ExpiryRecord`), by expiry.
    Expiry = 0x1a,
    /// One option series (`SeriesRecord`), by (expiry, strike, kind).
    Series = 0x1b,
    /// An account's position in one option series (`OptionPositionRecord`), by (account, series).
    OptionPosition = 0x1c,
    /// The series an account holds positions in (`AccountSeriesRecord`), by account.
    AccountSeries = 0x1d,
}

impl Namespace {
    /// Every namespace, in byte order.
    pub const ALL: [Namespace; 29] = [
        Self::Market,
        Self::Oracle,
        Self::Account,
        Self::Position,
        Self::Order,
        Self::InsuranceFund,
        Self::FeePool,
        Self::FundingIndex,
        Self::Outbox,
        Self::InboxReceipt,
        Self::ImportedCommitment,
        Self::LedgerTotals,
        Self::BookLevel,
        Self::BookSide,
        Self::AccountOrders,
        Self::ClientOrder,
        Self::MarketCounters,
        Self::LiquidationCap,
        Self::PositionIndex,
        Self::PositionCount,
        Self::BridgeEscrow,
        Self::BridgeSeq,
        Self::BridgePeer,
        Self::BridgeSettled,
        Self::OptionChain,
        Self::Expiry,
        Self::Series,
        Self::OptionPosition,
        Self::AccountSeries,
    ];

    /// The namespace of a byte, if it is one.
    pub fn from_byte(byte: u8) -> Option<Self> {
        Self::ALL.into_iter().find(|n| *n as u8 == byte)
    }
}

/// Largest id whose key is memoized; longer ids are hashed every time.
const MEMO_MAX_ID: usize = 64;
/// Keys memoized per thread before the memo starts over (bounds its memory to a few MiB).
const MEMO_CAPACITY: usize = 1 << 16;

std::thread_local! {
    /// `namespace || id` → leaf key. The VM derives the same few keys many times per tx (account, position,
    /// book records); keccak256 dominated its profile. A pure function's memo cannot change a result.
    static MEMO: std::cell::RefCell<std::collections::HashMap<Box<[u8]>, B256>> =
        std::cell::RefCell::new(std::collections::HashMap::new());
}

/// The leaf key of `id` in `namespace`.
pub fn leaf_key(namespace: Namespace, id: &[u8]) -> B256 {
    if id.len() > MEMO_MAX_ID {
        let mut pre = Vec::with_capacity(1 + id.len());
        pre.push(namespace as u8);
        pre.extend_from_slice(id);
        return keccak256(pre);
    }
    let mut buf = [0u8; 1 + MEMO_MAX_ID];
    buf[0] = namespace as u8;
    buf[1..=id.len()].copy_from_slice(id);
    let pre = &buf[..=id.len()];
    MEMO.with(|memo| {
        let mut memo = memo.borrow_mut();
        if let Some(key) = memo.get(pre) {
            return *key;
        }
        if memo.len() >= MEMO_CAPACITY {
            memo.clear();
        }
        let key = keccak256(pre);
        memo.insert(pre.into(), key);
        key
    })
}

/// The leaf key of an account's collateral record.
pub fn account_key(account: &AccountId) -> B256 {
    leaf_key(Namespace::Account, &account.0)
}

/// The leaf key of an account's position record.
pub fn position_key(account: &AccountId) -> B256 {
    leaf_key(Namespace::Position, &account.0)
}

/// The leaf key of the fee pool.
pub fn fee_pool_key() -> B256 {
    leaf_key(Namespace::FeePool, &[])
}

/// The leaf key of the insurance fund.
pub fn insurance_key() -> B256 {
    leaf_key(Namespace::InsuranceFund, &[])
}

/// The leaf key of the funding index.
pub fn funding_key() -> B256 {
    leaf_key(Namespace::FundingIndex, &[])
}

/// The leaf key of the market record.
pub fn market_key() -> B256 {
    leaf_key(Namespace::Market, &[])
}

/// The leaf key of the oracle record.
pub fn oracle_key() -> B256 {
    leaf_key(Namespace::Oracle, &[])
}

/// The leaf key of the on-ramp totals.
pub fn ledger_totals_key() -> B256 {
    leaf_key(Namespace::LedgerTotals, &[])
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn namespace_bytes_are_distinct_and_round_trip() {
        for (i, n) in Namespace::ALL.iter().enumerate() {
            assert_eq!(*n as u8, i as u8 + 1, "namespaces are dense from 0x01");
            assert_eq!(Namespace::from_byte(*n as u8), Some(*n));
        }
        assert_eq!(Namespace::from_byte(0), None);
        assert_eq!(Namespace::from_byte(0x1e), None);
    }

    #[test]
    fn memoized_keys_equal_fresh_hashes() {
        for id in [&[][..], &[1u8; 32][..], &[7u8; 64][..], &[9u8; 65][..]] {
            let fresh = keccak256([[Namespace::Order as u8].as_slice(), id].concat());
            assert_eq!(leaf_key(Namespace::Order, id), fresh);
            assert_eq!(leaf_key(Namespace::Order, id), fresh, "second (memoized) lookup");
        }
        assert_ne!(leaf_key(Namespace::Order, &[1]), leaf_key(Namespace::Position, &[1]));
    }

    #[test]
    fn golden_keys() {
        // keccak256(0x03 || 32 zero bytes): pinned so a namespace change fails loudly.
        assert_eq!(account_key(&AccountId([0; 32])), keccak256([[3u8].as_slice(), &[0u8; 32]].concat()));
        assert_ne!(market_key(), ledger_totals_key());
    }
}
