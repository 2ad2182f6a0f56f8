//! Standard Ethereum MPT proofs at the head or any retained version.

use super::{
    engine::StateEngine,
    error::{Result, StateError},
    node::{ChildRef, Kind, NodeRef},
    record::DecodedNode,
    store::NodeReader,
};
use alloy_primitives::{Bytes, B256};
use alloy_trie::{
    proof::{verify_proof, ProofVerificationError},
    Nibbles,
};

/// Proof of the value (or absence) of one key in the state root of one version.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct StateProof {
    /// Version the proof is for.
    pub version: u64,
    /// State root of that version.
    pub root: B256,
    /// The (already hashed) state key.
    pub key: B256,
    /// The value at `key`, `None` if absent.
    pub value: Option<Vec<u8>>,
    /// RLP-encoded nodes from the root along the key's path. Nodes shorter than 32 bytes are
    /// embedded in their parent's RLP and not listed, as `alloy_trie::proof::verify_proof`
    /// expects. Empty for the empty trie.
    pub nodes: Vec<Bytes>,
}

impl StateProof {
    /// Checks the proof with `alloy_trie::proof::verify_proof`.
    pub fn verify(&self) -> std::result::Result<(), ProofVerificationError> {
        verify_proof(self.root, Nibbles::unpack(self.key), self.value.clone(), &self.nodes)
    }
}

impl StateEngine {
    /// Proof of `key` at `version` (the head or inside the retention window).
    ///
    /// Errors with [`StateError::VersionPruned`] below the window and
    /// [`StateError::VersionNotFound`] above the head.
    pub fn proof(&self, version: u64, key: &B256) -> Result<StateProof> {
        let reader = self.reader();
        let Some(root) = reader.root_record(version)? else {
            return Err(self.missing_version(version)?);
        };
        let mut nodes = Vec::new();
        let value = match NodeReader::root_ref(&root) {
            None => None,
            Some(root_ref) => self.walk(version, root_ref, &Nibbles::unpack(key), &mut nodes)?,
        };
        Ok(StateProof { version, root: root.hash, key: *key, value, nodes })
    }

    /// Follows `target` from the root, collecting every hash-referenced node; returns the value.
    fn walk(&self, version: u64, root: ChildRef, target: &Nibbles, nodes: &mut Vec<Bytes>) -> Result<Option<Vec<u8>>> {
        let mut path = Nibbles::new();
        let mut current = root;
        loop {
            let DecodedNode { kind, rlp } = self.load_for_proof(version, &current, &path)?;
            // Inline children are part of their parent's RLP already.
            if current.rlp.is_hash() {
                nodes.push(Bytes::from(rlp));
            }
            let rest = target.slice(path.len()..);
            let next = match kind {
                Kind::Leaf { key, value } => return Ok((key == rest).then_some(value)),
                Kind::Extension { key, child } => {
                    if !rest.starts_with(&key) {
                        return Ok(None);
                    }
                    path = path.join(&key);
                    *child
                }
                Kind::Branch { mut children } => {
                    let Some(nibble) = rest.get(0) else {
                        return Err(StateError::corrupt("branch below a full key", path.to_vec()));
                    };
                    let Some(child) = children.get_mut(usize::from(nibble)).and_then(Option::take) else {
                        return Ok(None);
                    };
                    path.push(nibble);
                    child
                }
            };
            current = match next {
                NodeRef::Stored(child) => child,
                NodeRef::Mem(_) | NodeRef::Resident(_) => {
                    return Err(StateError::corrupt("decoded child not a reference", path.to_vec()))
                }
            };
        }
    }

    /// Loads a proof node; a node deleted by a concurrent prune reports the version as pruned.
    fn load_for_proof(&self, version: u64, child: &ChildRef, path: &Nibbles) -> Result<DecodedNode> {
        match self.reader().load(child, path) {
            Ok(node) => Ok(node),
            Err(err) => match self.reader().oldest_version()? {
                Some(oldest) if version < oldest => Err(StateError::VersionPruned { version, oldest }),
                _ => Err(err),
            },
        }
    }
}
