//! Reads of the engine's records from the shared sled tree.

use super::{
    cache::NodeCache,
    error::{Result, StateError},
    keys,
    node::{ChildRef, MemNode},
    record::{decode_node, matches_reference, DecodedNode, RootRecord},
};
use alloy_trie::{nodes::RlpNode, Nibbles};

/// Read access to trie nodes and root records.
#[derive(Clone, Copy)]
pub(crate) struct NodeReader<'a> {
    tree: &'a sled::Tree,
    cache: &'a NodeCache,
}

impl<'a> NodeReader<'a> {
    /// Reads from `tree`, through `cache` for the upper levels.
    pub(crate) fn new(tree: &'a sled::Tree, cache: &'a NodeCache) -> Self {
        Self { tree, cache }
    }

    /// Loads the node at `(child.version, path)` and checks it is the node `child.rlp` refers to.
    pub(crate) fn load(&self, child: &ChildRef, path: &Nibbles) -> Result<DecodedNode> {
        let key = keys::node_key(child.version, path);
        if let Some(record) = self.cache.get(child, path) {
            // The cache only answers for the exact reference, which it verified when filled.
            return decode_node(&record, path, &key);
        }
        let record = self.tree.get(&key)?.ok_or_else(|| StateError::corrupt("missing trie node", &key))?;
        let node = decode_node(&record, path, &key)?;
        if !matches_reference(&node.rlp, &child.rlp) {
            return Err(StateError::corrupt("trie node does not match its parent's hash", &key));
        }
        self.cache.put(path, child.version, &child.rlp, &record);
        Ok(node)
    }

    /// Loads a node into memory as an unmodified node.
    pub(crate) fn load_mem(&self, child: ChildRef, path: &Nibbles) -> Result<MemNode> {
        let node = self.load(&child, path)?;
        Ok(MemNode { kind: node.kind, origin: Some(child) })
    }

    /// The root node's reference of a version, if the trie is not empty.
    pub(crate) fn root_ref(root: &RootRecord) -> Option<ChildRef> {
        root.node_version.map(|version| ChildRef { version, rlp: RlpNode::word_rlp(&root.hash) })
    }

    /// The root record of `version`, if stored.
    pub(crate) fn root_record(&self, version: u64) -> Result<Option<RootRecord>> {
        let key = keys::root_key(version);
        self.tree.get(key)?.map(|raw| RootRecord::decode(&raw, &key)).transpose()
    }

    /// `(version, record)` of the latest stored root.
    pub(crate) fn latest_root(&self) -> Result<Option<(u64, RootRecord)>> {
        self.root_at_end(true)
    }

    /// Oldest version whose root is still stored.
    pub(crate) fn oldest_version(&self) -> Result<Option<u64>> {
        Ok(self.root_at_end(false)?.map(|(version, _)| version))
    }

    fn root_at_end(&self, last: bool) -> Result<Option<(u64, RootRecord)>> {
        let mut range = self.tree.range(keys::root_key(0)..=keys::root_key(u64::MAX));
        let entry = if last { range.next_back() } else { range.next() };
        let Some(entry) = entry else { return Ok(None) };
        let (key, value) = entry?;
        let version = keys::decode_root_key(&key).ok_or_else(|| StateError::corrupt("bad root key", &key))?;
        Ok(Some((version, RootRecord::decode(&value, &key)?)))
    }
}
