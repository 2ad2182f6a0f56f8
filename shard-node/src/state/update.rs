//! Applying inserts, updates and deletes to the partially loaded in-memory trie.
//!
//! Every operation keeps the trie canonical (no one-child branches, no extension over an
//! extension or leaf). A loaded node that is changed, moved or removed is recorded as stale at
//! the position it was loaded from; nodes that are unchanged or merely stay in place keep their
//! stored version. Setting an equal value or deleting an absent key changes nothing.

use super::{
    error::{Result, StateError},
    node::{empty_children, ChildRef, Kind, MemNode, NodeRef},
    record::encode_leaf,
    resident::{Resident, Shape},
    store::NodeReader,
};
use alloy_primitives::B256;
use alloy_trie::{nodes::RlpNode, Nibbles};
use std::sync::Arc;

/// Mutates the trie of one staged version.
pub(crate) struct Updater<'a> {
    reader: NodeReader<'a>,
    /// `(version, path)` of every stored node replaced by this version.
    pub(crate) stale: Vec<(u64, Nibbles)>,
    /// Number of nodes loaded from storage (for tracing).
    pub(crate) loaded: usize,
}

/// Outcome of a delete below some node.
enum Deleted {
    /// The key was absent; the subtree is handed back unchanged.
    Absent(NodeRef),
    /// The key was removed; the new subtree (`None` when it became empty).
    Removed(Option<NodeRef>),
}

impl<'a> Updater<'a> {
    /// An updater reading nodes through `reader`.
    pub(crate) fn new(reader: NodeReader<'a>) -> Self {
        Self { reader, stale: Vec::new(), loaded: 0 }
    }

    /// Sets (`Some`) or deletes (`None`) `key` in the trie rooted at `root`. Returns the new root
    /// and whether anything changed.
    pub(crate) fn apply(
        &mut self,
        root: Option<NodeRef>,
        key: &B256,
        change: Option<&[u8]>,
    ) -> Result<(Option<NodeRef>, bool)> {
        self.apply_at(root, Nibbles::new(), Nibbles::unpack(key), change)
    }

    /// [`Self::apply`] on the subtrie at `path` (its slot `node`), for the key whose nibbles below `path`
    /// are `rest`.
    pub(crate) fn apply_at(
        &mut self,
        node: Option<NodeRef>,
        path: Nibbles,
        rest: Nibbles,
        change: Option<&[u8]>,
    ) -> Result<(Option<NodeRef>, bool)> {
        match (change, node) {
            (Some(value), node) => {
                let (node, changed) = self.insert_at(node, path, rest, value)?;
                Ok((Some(node), changed))
            }
            (None, None) => Ok((None, false)),
            (None, Some(node)) => match self.delete_at(node, path, rest)? {
                Deleted::Absent(node) => Ok((Some(node), false)),
                Deleted::Removed(node) => Ok((node, true)),
            },
        }
    }

    /// `node` as an in-memory node: loaded from storage unless it is in memory in full already.
    pub(crate) fn resolve(&mut self, node: NodeRef, path: &Nibbles) -> Result<MemNode> {
        let child = match node {
            NodeRef::Mem(node) => return Ok(*node),
            NodeRef::Resident(node) => match node.expand() {
                Some(kind) => return Ok(MemNode { kind, origin: Some(node.reference.clone()) }),
                None => node.reference.clone(),
            },
            NodeRef::Stored(child) => child,
        };
        self.loaded += 1;
        self.reader.load_mem(child, path)
    }

    /// Records that the stored copy of a node at `path` is replaced.
    pub(crate) fn mark_stale(&mut self, origin: Option<ChildRef>, path: Nibbles) {
        if let Some(origin) = origin {
            self.stale.push((origin.version, path));
        }
    }

    fn insert_at(
        &mut self,
        slot: Option<NodeRef>,
        path: Nibbles,
        rest: Nibbles,
        value: &[u8],
    ) -> Result<(NodeRef, bool)> {
        let Some(node) = slot else {
            return Ok((NodeRef::leaf(rest, value.to_vec()), true));
        };
        let node = match node {
            // The common update: the key's own leaf, in memory without its value. The new leaf's reference
            // equals the old one exactly when the value is unchanged.
            NodeRef::Resident(leaf) if matches!(&leaf.shape, Shape::Leaf { key } if *key == rest) => {
                if RlpNode::from_rlp(encode_leaf(&rest, value).rlp()) == leaf.reference.rlp {
                    return Ok((NodeRef::Resident(leaf), false));
                }
                self.mark_stale(Some(leaf.reference.clone()), path);
                return Ok((NodeRef::leaf(rest, value.to_vec()), true));
            }
            node => node,
        };
        let MemNode { kind, origin } = self.resolve(node, &path)?;
        match kind {
            Kind::Leaf { key, value: old } if key == rest => {
                if old == value {
                    return Ok((keep(Kind::Leaf { key, value: old }, origin), false));
                }
                self.mark_stale(origin, path);
                Ok((NodeRef::leaf(key, value.to_vec()), true))
            }
            Kind::Leaf { key, value: old } => {
                if key.len() != rest.len() {
                    return Err(corrupt_path("leaf key length differs from the path", &path));
                }
                self.mark_stale(origin, path);
                // Distinct keys of equal length: they diverge at `common < len`. The old leaf
                // moves below a new branch (it was marked stale at its old position above).
                let common = key.common_prefix_length(&rest);
                let mut children = empty_children();
                let old = NodeRef::leaf(key.slice(common + 1..), old);
                set_child(&mut children, nibble(&key, common)?, old);
                let new = NodeRef::leaf(rest.slice(common + 1..), value.to_vec());
                set_child(&mut children, nibble(&rest, common)?, new);
                let branch = NodeRef::branch(children);
                Ok((NodeRef::extension_or_child(rest.slice(..common), branch), true))
            }
            Kind::Extension { key, child } if rest.starts_with(&key) => {
                let child_path = path.join(&key);
                let (child, changed) = self.insert_at(Some(*child), child_path, rest.slice(key.len()..), value)?;
                if !changed {
                    return Ok((keep(Kind::Extension { key, child: Box::new(child) }, origin), false));
                }
                self.mark_stale(origin, path);
                Ok((NodeRef::extension(key, child), true))
            }
            Kind::Extension { key, child } => {
                let common = key.common_prefix_length(&rest);
                if common >= rest.len() {
                    return Err(corrupt_path("extension reaches past the key", &path));
                }
                self.mark_stale(origin, path);
                // Split: the old child keeps its position `path ‖ key`, below a shorter extension
                // (or directly under the new branch when only one nibble of the key remains).
                let mut children = empty_children();
                let old = NodeRef::extension_or_child(key.slice(common + 1..), *child);
                set_child(&mut children, nibble(&key, common)?, old);
                let new = NodeRef::leaf(rest.slice(common + 1..), value.to_vec());
                set_child(&mut children, nibble(&rest, common)?, new);
                let branch = NodeRef::branch(children);
                Ok((NodeRef::extension_or_child(key.slice(..common), branch), true))
            }
            Kind::Branch { mut children } => {
                let index = nibble(&rest, 0)?;
                let slot = children.get_mut(usize::from(index)).and_then(Option::take);
                let (child, changed) = self.insert_at(slot, child_path(path, index), rest.slice(1..), value)?;
                set_child(&mut children, index, child);
                if !changed {
                    return Ok((keep(Kind::Branch { children }, origin), false));
                }
                self.mark_stale(origin, path);
                Ok((NodeRef::branch(children), true))
            }
        }
    }

    fn delete_at(&mut self, node: NodeRef, path: Nibbles, rest: Nibbles) -> Result<Deleted> {
        let node = match node {
            NodeRef::Resident(leaf) if matches!(leaf.shape, Shape::Leaf { .. }) => {
                return Ok(self.delete_resident_leaf(leaf, path, &rest));
            }
            node => node,
        };
        let MemNode { kind, origin } = self.resolve(node, &path)?;
        match kind {
            Kind::Leaf { key, .. } if key == rest => {
                self.mark_stale(origin, path);
                Ok(Deleted::Removed(None))
            }
            Kind::Extension { key, child } if rest.starts_with(&key) => {
                let child_path = path.join(&key);
                match self.delete_at(*child, child_path, rest.slice(key.len()..))? {
                    Deleted::Absent(child) => {
                        let kind = Kind::Extension { key, child: Box::new(child) };
                        Ok(Deleted::Absent(keep(kind, origin)))
                    }
                    Deleted::Removed(None) => Err(corrupt_path("extension over a branch with one child", &path)),
                    Deleted::Removed(Some(child)) => {
                        self.mark_stale(origin, path);
                        Ok(Deleted::Removed(Some(self.prepend(key, child, child_path)?)))
                    }
                }
            }
            Kind::Branch { mut children } => {
                let index = nibble(&rest, 0)?;
                let Some(child) = children.get_mut(usize::from(index)).and_then(Option::take) else {
                    return Ok(Deleted::Absent(keep(Kind::Branch { children }, origin)));
                };
                let removed = match self.delete_at(child, child_path(path, index), rest.slice(1..))? {
                    Deleted::Absent(child) => {
                        set_child(&mut children, index, child);
                        return Ok(Deleted::Absent(keep(Kind::Branch { children }, origin)));
                    }
                    Deleted::Removed(child) => child,
                };
                self.mark_stale(origin, path);
                if let Some(child) = removed {
                    set_child(&mut children, index, child);
                }
                self.after_removal(children, path).map(|node| Deleted::Removed(Some(node)))
            }
            // A leaf with another key, or an extension the key leaves: the key is absent.
            kind => Ok(Deleted::Absent(keep(kind, origin))),
        }
    }

    /// Deletes `rest` at an in-memory leaf: no read is needed to remove it or to find that it is another key.
    fn delete_resident_leaf(&mut self, leaf: Arc<Resident>, path: Nibbles, rest: &Nibbles) -> Deleted {
        if matches!(&leaf.shape, Shape::Leaf { key } if key == rest) {
            self.mark_stale(Some(leaf.reference.clone()), path);
            Deleted::Removed(None)
        } else {
            Deleted::Absent(NodeRef::Resident(leaf))
        }
    }

    /// A branch that lost a child stays a branch, or collapses into its only remaining child.
    fn after_removal(&mut self, mut children: Box<[Option<NodeRef>; 16]>, path: Nibbles) -> Result<NodeRef> {
        let (first, second) = {
            let mut occupied = (0u8..16).filter(|&i| children.get(usize::from(i)).is_some_and(Option::is_some));
            (occupied.next(), occupied.next())
        };
        match (first, second) {
            (Some(_), Some(_)) => Ok(NodeRef::branch(children)),
            (Some(only), None) => {
                let child = children
                    .get_mut(usize::from(only))
                    .and_then(Option::take)
                    .ok_or_else(|| corrupt_path("vanished child", &path))?;
                let prefix = Nibbles::from_nibbles_unchecked([only]);
                self.prepend(prefix, child, child_path(path, only))
            }
            _ => Err(corrupt_path("branch with fewer than two children", &path)),
        }
    }

    /// Puts `prefix` in front of `child` (currently at `child_path`), for the parent position
    /// `child_path - prefix`. A leaf or extension child moves up and absorbs the prefix; a branch
    /// child stays where it is, below a new extension.
    fn prepend(&mut self, prefix: Nibbles, child: NodeRef, child_path: Nibbles) -> Result<NodeRef> {
        let MemNode { kind, origin } = self.resolve(child, &child_path)?;
        match kind {
            Kind::Branch { children } => Ok(NodeRef::extension(prefix, keep(Kind::Branch { children }, origin))),
            Kind::Leaf { key, value } => {
                self.mark_stale(origin, child_path);
                Ok(NodeRef::leaf(prefix.join(&key), value))
            }
            Kind::Extension { key, child } => {
                self.mark_stale(origin, child_path);
                Ok(NodeRef::extension(prefix.join(&key), *child))
            }
        }
    }
}

/// A node put back as it was (still clean if it was loaded and unchanged).
fn keep(kind: Kind, origin: Option<ChildRef>) -> NodeRef {
    NodeRef::Mem(Box::new(MemNode { kind, origin }))
}

fn child_path(mut path: Nibbles, nibble: u8) -> Nibbles {
    path.push(nibble);
    path
}

/// The nibble at `index` of `nibbles`.
fn nibble(nibbles: &Nibbles, index: usize) -> Result<u8> {
    nibbles.get(index).ok_or_else(|| corrupt_path("path shorter than its node", nibbles))
}

fn set_child(children: &mut [Option<NodeRef>; 16], index: u8, child: NodeRef) {
    if let Some(slot) = children.get_mut(usize::from(index)) {
        *slot = Some(child);
    }
}

fn corrupt_path(what: &'static str, path: &Nibbles) -> StateError {
    StateError::corrupt(what, path.to_vec())
}
