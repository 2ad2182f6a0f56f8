//! Proposals of the height in progress, kept on disk so that a validator restarted mid-height can answer the
//! engine's replay: the same block for a height it already proposed at (never a second one), and the
//! content of every valid proposal it voted for. Pruned when a height is committed.

use borsh::{BorshDeserialize, BorshSerialize};
use malachitebft_core_types::Round;

use crate::{
    messages::PartInit,
    signing::Signature,
    stream::BlockBody,
    types::{Address, BlockId, Height},
};

/// One proposal seen (or built) at a height.
#[derive(Clone, Debug, PartialEq, Eq, BorshSerialize, BorshDeserialize)]
pub struct StoredProposal {
    /// The stream's `Init` as first published (round of first proposal, pol round, proposer).
    pub init: PartInit,
    /// The proposer's signature from the stream's `Fin`.
    pub signature: Signature,
    /// The block.
    pub body: BlockBody,
    /// True when this node built it.
    pub own: bool,
}

impl StoredProposal {
    /// The block id.
    pub fn id(&self) -> BlockId {
        BlockId::from(self.body.hash())
    }
}

/// A storage failure (fatal to the node).
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// sled failed.
    #[error("consensus store: {0}")]
    Storage(#[from] sled::Error),
    /// Stored bytes do not decode.
    #[error("consensus store corrupt: {0}")]
    Corrupt(String),
}

/// Undecided proposals by (height, block id), in a sled tree of their own.
#[derive(Clone)]
pub struct ProposalStore {
    tree: sled::Tree,
}

fn key(height: Height, id: &BlockId) -> [u8; 40] {
    let mut k = [0u8; 40];
    k[..8].copy_from_slice(&height.0.to_be_bytes());
    k[8..].copy_from_slice(&id.0);
    k
}

impl ProposalStore {
    /// The store over `tree`.
    pub fn new(tree: sled::Tree) -> Self {
        Self { tree }
    }

    /// Keeps `p` at `height`, flushed before returning (a proposal is published only after this).
    pub fn put(&self, height: Height, p: &StoredProposal) -> Result<(), StoreError> {
        let bytes = borsh::to_vec(p).map_err(|e| StoreError::Corrupt(e.to_string()))?;
        self.tree.insert(key(height, &p.id()), bytes)?;
        self.tree.flush()?;
        Ok(())
    }

    /// The proposal of block `id` at `height`.
    pub fn get(&self, height: Height, id: &BlockId) -> Result<Option<StoredProposal>, StoreError> {
        self.tree.get(key(height, id))?.map(|raw| decode(&raw)).transpose()
    }

    /// Every proposal kept at `height`.
    pub fn at(&self, height: Height) -> Result<Vec<StoredProposal>, StoreError> {
        self.tree.scan_prefix(height.0.to_be_bytes()).map(|item| decode(&item?.1)).collect()
    }

    /// The block this node built at `height`, if any.
    pub fn own(&self, height: Height) -> Result<Option<StoredProposal>, StoreError> {
        Ok(self.at(height)?.into_iter().find(|p| p.own))
    }

    /// Forgets every height up to `height`.
    pub fn prune_through(&self, height: Height) -> Result<(), StoreError> {
        let end = height.0.saturating_add(1).to_be_bytes();
        let keys: Vec<sled::IVec> = self.tree.range(..end.as_slice()).keys().collect::<Result<_, _>>()?;
        for k in keys {
            self.tree.remove(k)?;
        }
        Ok(())
    }
}

fn decode(raw: &[u8]) -> Result<StoredProposal, StoreError> {
    borsh::from_slice(raw).map_err(|e| StoreError::Corrupt(e.to_string()))
}

/// The `Init` of a new proposal by `proposer` at (`height`, `round`).
pub fn fresh_init(height: Height, round: Round, proposer: Address) -> PartInit {
    PartInit { height, round, pol_round: Round::Nil, proposer }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn proposal(height: u64, tag: u8, own: bool) -> StoredProposal {
        StoredProposal {
            init: fresh_init(Height(height), Round::new(0), Address([tag; 32])),
            signature: Signature([tag; 64]),
            body: BlockBody { header: vec![tag; 10], txs: vec![vec![tag]] },
            own,
        }
    }

    #[test]
    fn keeps_proposals_by_height_and_prunes_committed_heights() {
        let dir = tempfile::tempdir().expect("tempdir");
        let db = sled::open(dir.path()).expect("db");
        let store = ProposalStore::new(db.open_tree("consensus").expect("tree"));
        let (a, b, c) = (proposal(5, 1, true), proposal(5, 2, false), proposal(6, 3, false));
        for (h, p) in [(5, &a), (5, &b), (6, &c)] {
            store.put(Height(h), p).expect("put");
        }
        assert_eq!(store.at(Height(5)).expect("scan").len(), 2);
        assert_eq!(store.own(Height(5)).expect("own"), Some(a.clone()));
        assert_eq!(store.get(Height(5), &b.id()).expect("get"), Some(b.clone()));
        assert_eq!(store.get(Height(6), &b.id()).expect("get"), None);
        store.prune_through(Height(5)).expect("prune");
        assert!(store.at(Height(5)).expect("scan").is_empty());
        assert_eq!(store.at(Height(6)).expect("scan"), vec![c]);
    }
}
