//! Layered views of state: committed head → block (or mempool) changes → one tx's writes.
//! A tx's writes merge into its parent only when it succeeds, so a failed tx changes nothing.

use std::collections::BTreeMap;

use alloy_primitives::B256;

use super::{error::StorageError, totals::TotalsDelta};

/// Pending writes: `None` deletes the key.
pub type Changes = BTreeMap<B256, Option<Vec<u8>>>;

/// Read access to committed state.
pub trait StateReader {
    /// The value at `key`, if any.
    fn read(&self, key: &B256) -> Result<Option<Vec<u8>>, StorageError>;
}

impl StateReader for BTreeMap<B256, Vec<u8>> {
    fn read(&self, key: &B256) -> Result<Option<Vec<u8>>, StorageError> {
        Ok(self.get(key).cloned())
    }
}

/// The view one tx executes in, counting reads and writes for gas.
pub struct TxScope<'a> {
    base: &'a dyn StateReader,
    /// Change layers over `base`, oldest first.
    parents: Vec<&'a Changes>,
    writes: Changes,
    reads: u64,
    proof_nodes: u64,
    signatures: u64,
    /// How the accounts and positions stored so far moved the ledger sums, until `totals::settle`.
    totals: TotalsDelta,
}

impl<'a> TxScope<'a> {
    /// A scope over `base` with `parent` changes applied on top.
    pub fn new(base: &'a dyn StateReader, parent: &'a Changes) -> Self {
        Self::over(base, vec![parent])
    }

    /// A scope over `base` with `layers` applied on top in order (pending blocks, then a block's
    /// begin-block writes, say): a later layer shadows an earlier one.
    pub fn over(base: &'a dyn StateReader, layers: Vec<&'a Changes>) -> Self {
        Self {
            base,
            parents: layers,
            writes: Changes::new(),
            reads: 0,
            proof_nodes: 0,
            signatures: 0,
            totals: TotalsDelta::default(),
        }
    }

    /// The value `key` holds in this tx's writes or, failing that, the newest parent layer holding it
    /// (`Some(None)`: deleted there); None when only committed state can tell.
    fn pending(&self, key: &B256) -> Option<&Option<Vec<u8>>> {
        self.writes.get(key).or_else(|| self.parents.iter().rev().find_map(|layer| layer.get(key)))
    }

    /// Reads through this tx's writes, then the parent layers from the newest, then committed state.
    pub fn read(&mut self, key: &B256) -> Result<Option<Vec<u8>>, StorageError> {
        self.reads += 1;
        match self.pending(key) {
            Some(v) => Ok(v.clone()),
            None => self.base.read(key),
        }
    }

    /// Looks at the value `key` holds now without counting a read: for the bookkeeping of a record about to
    /// be overwritten (its write is charged), not for anything an op decides on.
    pub(crate) fn peek_with<R>(&self, key: &B256, f: impl FnOnce(Option<&[u8]>) -> R) -> Result<R, StorageError> {
        match self.pending(key) {
            Some(v) => Ok(f(v.as_deref())),
            None => Ok(f(self.base.read(key)?.as_deref())),
        }
    }

    /// Buffers a write. An empty value (a record with every field at its default, which protobuf encodes
    /// as zero bytes) deletes the key: the trie holds no empty values, and absence reads as the default.
    pub fn write(&mut self, key: B256, value: Vec<u8>) {
        self.writes.insert(key, (!value.is_empty()).then_some(value));
    }

    /// State reads so far.
    pub fn reads(&self) -> u64 {
        self.reads
    }

    /// Counts `n` MPT proof nodes verified, for gas.
    pub fn charge_proof_nodes(&mut self, n: u64) {
        self.proof_nodes = self.proof_nodes.saturating_add(n);
    }

    /// Counts one signature verified by the op, for gas.
    pub fn charge_signature(&mut self) {
        self.charge_signatures(1);
    }

    /// Counts `n` signatures verified by the op (a commit certificate's), for gas.
    pub fn charge_signatures(&mut self, n: u64) {
        self.signatures = self.signatures.saturating_add(n);
    }

    /// Everything gas charges for, so far.
    pub fn work(&self) -> super::gas::Work {
        super::gas::Work {
            reads: self.reads,
            writes: self.writes(),
            proof_nodes: self.proof_nodes,
            signatures: self.signatures,
        }
    }

    /// Distinct keys written so far.
    pub fn writes(&self) -> u64 {
        self.writes.len() as u64
    }

    /// The change of the ledger sums not yet folded into the totals record.
    pub fn totals_delta(&self) -> TotalsDelta {
        self.totals
    }

    /// Where the record helpers add the change of each account and position they store.
    pub(crate) fn totals_delta_mut(&mut self) -> &mut TotalsDelta {
        &mut self.totals
    }

    /// Takes the pending change of the ledger sums, leaving zero (`totals::settle`).
    pub(crate) fn take_totals_delta(&mut self) -> TotalsDelta {
        std::mem::take(&mut self.totals)
    }

    /// The buffered writes, to merge into the parent on success. The ledger sums must have been settled
    /// (`execute` and `begin_block` do it): merging unsettled writes would let the totals drift.
    pub fn into_writes(self) -> Changes {
        debug_assert!(self.totals.is_zero(), "merging writes whose ledger sums were not settled: {:?}", self.totals);
        self.writes
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_see_own_writes_then_parent_then_base() {
        let k = |b: u8| B256::from([b; 32]);
        let base: BTreeMap<B256, Vec<u8>> = [(k(1), vec![1]), (k(2), vec![2])].into();
        let parent: Changes = [(k(2), Some(vec![22])), (k(3), None)].into();
        let mut s = TxScope::new(&base, &parent);
        assert_eq!(s.read(&k(1)), Ok(Some(vec![1])));
        assert_eq!(s.read(&k(2)), Ok(Some(vec![22])));
        assert_eq!(s.read(&k(3)), Ok(None));
        s.write(k(1), vec![11]);
        assert_eq!(s.read(&k(1)), Ok(Some(vec![11])));
        s.write(k(2), vec![]);
        assert_eq!(s.read(&k(2)), Ok(None));
        assert_eq!((s.reads(), s.writes()), (5, 2));
    }

    #[test]
    fn upper_layer_shadows_lower() {
        let k = |b: u8| B256::from([b; 32]);
        let base: BTreeMap<B256, Vec<u8>> = [(k(1), vec![1])].into();
        let lower: Changes = [(k(1), Some(vec![11])), (k(2), Some(vec![2]))].into();
        let upper: Changes = [(k(2), None), (k(3), Some(vec![3]))].into();
        let mut s = TxScope::over(&base, vec![&lower, &upper]);
        assert_eq!(s.read(&k(1)), Ok(Some(vec![11])));
        assert_eq!(s.read(&k(2)), Ok(None));
        assert_eq!(s.read(&k(3)), Ok(Some(vec![3])));
    }
}
