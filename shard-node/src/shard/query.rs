//! Read-only queries: accounts and market at the head or a retained height, with MPT proofs, blocks,
//! and tx status.

use alloy_primitives::B256;
use prost::Message;
use shardex_core::{pb, state_key, AccountId, Reason};

use super::{HeadView, Reject, Shard, ShardError};
use crate::state::StateError;

/// Where a tx is in its life.
#[derive(Debug, Clone, PartialEq)]
pub enum TxState {
    /// Never seen (or forgotten).
    Unknown,
    /// In the mempool.
    Pending,
    /// In a committed block.
    Included {
        /// Height.
        height: u64,
        /// Position.
        index: u32,
        /// Its receipt.
        receipt: Option<pb::Receipt>,
    },
    /// Refused, with reason and message.
    Rejected(String, String),
}

/// An account record at a height, with its proof when asked.
#[derive(Debug, Clone, PartialEq)]
pub struct AccountView {
    /// The record, None when absent.
    pub record: Option<pb::AccountRecord>,
    /// Height answered at.
    pub height: u64,
    /// State root at that height.
    pub state_root: B256,
    /// Proof and signed header, when asked.
    pub proof: Option<(pb::StateProof, pb::FinalizedHeader)>,
}

/// The market record, the ledger totals and the pools at one height.
#[derive(Debug, Clone, PartialEq)]
pub struct MarketView {
    /// Market record.
    pub market: pb::MarketRecord,
    /// Ledger totals: on-ramp and bridge flows, Σ collateral, Σ entry notional.
    pub totals: pb::LedgerTotalsRecord,
    /// Height.
    pub height: u64,
    /// State root.
    pub state_root: B256,
    /// Proofs of every record below but the oracle's, and the signed header, when asked.
    pub proofs: Option<MarketProofs>,
    /// Latest oracle price.
    pub oracle: Option<pb::OracleRecord>,
    /// Insurance fund.
    pub insurance: pb::InsuranceFundRecord,
    /// Fee pool.
    pub fee_pool: pb::FeePoolRecord,
    /// Funding index and pool.
    pub funding: pb::FundingIndexRecord,
}

/// The proofs of a [`MarketView`], all against its state root, and the header carrying that root.
#[derive(Debug, Clone, PartialEq)]
pub struct MarketProofs {
    /// Market record.
    pub market: pb::StateProof,
    /// Ledger totals.
    pub totals: pb::StateProof,
    /// Insurance fund.
    pub insurance: pb::StateProof,
    /// Fee pool.
    pub fee_pool: pb::StateProof,
    /// Funding index.
    pub funding: pb::StateProof,
    /// The finalized header of that height.
    pub header: pb::FinalizedHeader,
}

/// One key read at a height, with its proof when asked.
pub(super) struct KeyRead {
    pub(super) value: Option<Vec<u8>>,
    pub(super) height: u64,
    pub(super) state_root: B256,
    pub(super) proof: Option<(pb::StateProof, pb::FinalizedHeader)>,
}

/// Decodes an optional stored record.
pub(super) fn decode_opt<M: Message + Default>(what: &str, value: Option<Vec<u8>>) -> Result<Option<M>, ShardError> {
    value.map(|v| M::decode(v.as_slice())).transpose().map_err(|e| corrupt(what, e))
}

fn corrupt(what: &str, e: prost::DecodeError) -> ShardError {
    ShardError::Inconsistent(format!("stored {what} record does not decode: {e}"))
}

impl HeadView {
    /// Reads `key` at `height` (None = head): value, and the proof when `prove`.
    pub(super) fn read_at(
        &self,
        key: B256,
        height: Option<u64>,
        prove: bool,
    ) -> Result<Result<KeyRead, Reject>, ShardError> {
        let height = height.unwrap_or(self.head.height);
        if height > self.head.height {
            return Ok(Err(Reject::new(
                Reason::NotFound,
                format!("height {height} is above the head {}", self.head.height),
            )));
        }
        if !prove && height == self.head.height {
            return Ok(Ok(KeyRead {
                value: self.engine.get(&key)?,
                height,
                state_root: self.head.state_root,
                proof: None,
            }));
        }
        let proof = match self.engine.proof(height, &key) {
            Ok(p) => p,
            Err(e @ (StateError::VersionPruned { .. } | StateError::VersionNotFound { .. })) => {
                return Ok(Err(Reject::new(Reason::NotFound, e.to_string())))
            }
            Err(e) => return Err(e.into()),
        };
        let Some(header) = self.chain.header(height)? else {
            // The state is retained but its block is gone (pruned since this view was taken, or a block log
            // kept no longer than the state): nothing can carry the proof's header.
            if height < self.oldest_block()? {
                return Ok(Err(Reject::new(Reason::NotFound, self.missing_block(height))));
            }
            return Err(ShardError::Inconsistent(format!("no block at retained height {height}")));
        };
        let pb_proof = pb::StateProof {
            height,
            state_root: proof.root.to_vec(),
            key: key.to_vec(),
            nodes: proof.nodes.iter().map(|n| n.to_vec()).collect(),
            value: proof.value.clone().unwrap_or_default(),
        };
        Ok(Ok(KeyRead {
            value: proof.value,
            height,
            state_root: proof.root,
            proof: prove.then_some((pb_proof, header)),
        }))
    }

    /// The account record of `account` at `height` (None = head).
    pub fn account(
        &self,
        account: &AccountId,
        height: Option<u64>,
        prove: bool,
    ) -> Result<Result<AccountView, Reject>, ShardError> {
        let KeyRead { value, height, state_root, proof } =
            match self.read_at(state_key::account_key(account), height, prove)? {
                Ok(r) => r,
                Err(reject) => return Ok(Err(reject)),
            };
        let record =
            value.map(|v| pb::AccountRecord::decode(v.as_slice())).transpose().map_err(|e| corrupt("account", e))?;
        Ok(Ok(AccountView { record, height, state_root, proof }))
    }

    /// The market record, totals and pools at the head.
    pub fn market(&self, prove: bool) -> Result<MarketView, ShardError> {
        self.market_at(None, prove)?.map_err(|e| ShardError::Inconsistent(format!("head read refused: {e}")))
    }

    /// The market record, totals and pools at `height` (None = head), every one read at that height (so
    /// proven against one state root when `prove`).
    pub fn market_at(&self, height: Option<u64>, prove: bool) -> Result<Result<MarketView, Reject>, ShardError> {
        let read = |key: B256| self.read_at(key, height, prove);
        let m = match read(state_key::market_key())? {
            Ok(r) => r,
            Err(reject) => return Ok(Err(reject)),
        };
        // The height is retained (the first read succeeded) and the shard cannot move under `&self`.
        let next = |key: B256| {
            read(key)?.map_err(|e| ShardError::Inconsistent(format!("read at height {} refused: {e}", m.height)))
        };
        let (t, i, f, fu) = (
            next(state_key::ledger_totals_key())?,
            next(state_key::insurance_key())?,
            next(state_key::fee_pool_key())?,
            next(state_key::funding_key())?,
        );
        let oracle = self
            .read_at(state_key::oracle_key(), Some(m.height), false)?
            .map_err(|e| ShardError::Inconsistent(format!("oracle read at height {} refused: {e}", m.height)))?;
        let (height, state_root) = (m.height, m.state_root);
        let proofs = match (m.proof, t.proof, i.proof, f.proof, fu.proof) {
            (
                Some((market, header)),
                Some((totals, _)),
                Some((insurance, _)),
                Some((fee_pool, _)),
                Some((funding, _)),
            ) => Some(MarketProofs { market, totals, insurance, fee_pool, funding, header }),
            _ => None,
        };
        Ok(Ok(MarketView {
            market: decode_opt("market", m.value)?
                .ok_or_else(|| ShardError::Inconsistent(format!("no market record at height {height}")))?,
            totals: decode_opt("totals", t.value)?.unwrap_or_default(),
            height,
            state_root,
            proofs,
            oracle: decode_opt("oracle", oracle.value)?,
            insurance: decode_opt("insurance", i.value)?.unwrap_or_default(),
            fee_pool: decode_opt("fee pool", f.value)?.unwrap_or_default(),
            funding: decode_opt("funding", fu.value)?.unwrap_or_default(),
        }))
    }

    /// A proof of any key at `height` (None = head).
    pub fn prove_key(&self, key: B256, height: Option<u64>) -> Result<Result<pb::StateProof, Reject>, ShardError> {
        Ok(self.read_at(key, height, true)?.map(|r| r.proof.map(|(p, _)| p).unwrap_or_default()))
    }

    /// The committed block at `height`; None above this view's head (a block being written is not final
    /// until its flush returns and the head moves).
    pub fn block(&self, height: u64) -> Result<Option<pb::Block>, ShardError> {
        if height > self.head.height {
            return Ok(None);
        }
        Ok(self.chain.block(height)?)
    }

    /// The finalized header at `height`, without decoding its block; None above this view's head.
    pub fn header(&self, height: u64) -> Result<Option<pb::FinalizedHeader>, ShardError> {
        if height > self.head.height {
            return Ok(None);
        }
        Ok(self.chain.header(height)?)
    }

    /// The oldest height whose state is still provable.
    pub fn oldest_provable_height(&self) -> u64 {
        self.head.height.saturating_sub(self.retention_blocks)
    }
}

impl Shard {
    /// Where `hash` is in its life.
    pub fn tx_state(&self, hash: &B256) -> Result<TxState, ShardError> {
        if let Some(loc) = self.chain.tx_location(hash)? {
            let receipt = self.chain.block(loc.height)?.and_then(|b| b.receipts.get(loc.index as usize).cloned());
            return Ok(TxState::Included { height: loc.height, index: loc.index, receipt });
        }
        if self.mempool.contains(hash) {
            return Ok(TxState::Pending);
        }
        Ok(match self.rejected.get(hash) {
            Some((reason, message)) => TxState::Rejected(reason.clone(), message.clone()),
            None => TxState::Unknown,
        })
    }
}
