//! Staging a wide version on several threads.
//!
//! Below a root branch, the sixteen subtries are independent: a key's change touches only the subtrie of its
//! first nibble. A wide version therefore updates and commits (encodes, hashes) each subtrie on one of a few
//! threads (nibble `n` in group `n % threads`, on rayon's pool), and then only the root is re-encoded. Each
//! subtrie's result depends only on its own changes, so the root, the node records and the stale index are the
//! same as staging the keys one by one on one thread. The one case that is not independent (the root keeping
//! fewer than two children, so that it collapses) is handed back to the caller, which stages the version on
//! one thread.

use super::{
    commit::{child_path, empty_slots, Committer, NodeWrite},
    error::Result,
    node::{Kind, MemNode, NodeRef},
    resident::Resident,
    store::NodeReader,
    update::Updater,
};
use alloy_primitives::B256;
use alloy_trie::Nibbles;
use rayon::prelude::*;
use std::{collections::BTreeMap, sync::Arc};

/// One key's change, as staged.
pub(crate) type Change<'c> = (&'c B256, &'c Option<Vec<u8>>);

/// A staged version's trie: its in-memory root and everything to write.
pub(crate) struct Staged<'c> {
    /// The new root, `None` when the trie is empty.
    pub(crate) root: Option<Arc<Resident>>,
    /// Node records to write.
    pub(crate) writes: Vec<NodeWrite>,
    /// `(version, path)` of every stored node this version replaces.
    pub(crate) stale: Vec<(u64, Nibbles)>,
    /// The changes that changed something (for the flat table).
    pub(crate) changed: Vec<Change<'c>>,
    /// Nodes read from storage.
    pub(crate) loaded: usize,
}

/// Stages `changes` on the trie at `root` on one thread.
pub(crate) fn stage_serial<'c>(
    reader: NodeReader<'_>,
    version: u64,
    mut root: Option<NodeRef>,
    changes: &'c BTreeMap<B256, Option<Vec<u8>>>,
) -> Result<Staged<'c>> {
    let mut updater = Updater::new(reader);
    let mut changed = Vec::with_capacity(changes.len());
    for (key, change) in changes {
        let (new_root, did_change) = updater.apply(root.take(), key, change.as_deref())?;
        root = new_root;
        if did_change {
            changed.push((key, change));
        }
    }
    let mut committer = Committer::new(version);
    let root = root.map(|root| committer.commit(root, Nibbles::new()));
    Ok(Staged { root, writes: committer.writes, stale: updater.stale, changed, loaded: updater.loaded })
}

/// One subtrie of the root for a thread: its nibble, its slot and its changes.
type Subtrie<'c> = (u8, Option<NodeRef>, Vec<Change<'c>>);

/// What one thread did to its subtries.
struct Part<'c> {
    /// Each subtrie's nibble and new node.
    children: Vec<(u8, Option<Arc<Resident>>)>,
    writes: Vec<NodeWrite>,
    stale: Vec<(u64, Nibbles)>,
    changed: Vec<Change<'c>>,
    loaded: usize,
}

/// Stages `changes` on the trie at `root` with the root's subtries spread over `threads` threads. `None` when
/// the root is not a branch that keeps at least two children: the caller stages the version on one thread.
pub(crate) fn stage_wide<'c>(
    reader: NodeReader<'_>,
    version: u64,
    root: NodeRef,
    changes: &'c BTreeMap<B256, Option<Vec<u8>>>,
    threads: usize,
) -> Result<Option<Staged<'c>>> {
    let mut updater = Updater::new(reader);
    let MemNode { kind, origin } = updater.resolve(root, &Nibbles::new())?;
    let Kind::Branch { children } = kind else { return Ok(None) };

    // Per thread: its subtries, each with its slot and its changes (keys are sorted, so are the groups).
    let threads = threads.max(1);
    let mut work: Vec<Vec<Subtrie<'c>>> = (0..threads).map(|_| Vec::new()).collect();
    for (nibble, slot) in (0u8..).zip(*children) {
        if let Some(group) = work.get_mut(usize::from(nibble) % threads) {
            group.push((nibble, slot, Vec::new()));
        }
    }
    for change in changes {
        let nibble = change.0[0] >> 4;
        let group = work.get_mut(usize::from(nibble) % threads);
        if let Some((_, _, group_changes)) = group.and_then(|group| group.get_mut(usize::from(nibble) / threads)) {
            group_changes.push(change);
        }
    }

    // On the process-wide pool, whose threads outlive the version (fresh threads per version would each
    // start with an empty allocator cache).
    let parts =
        work.into_par_iter().map(|subtries| stage_part(reader, version, subtries)).collect::<Result<Vec<_>>>()?;

    let mut slots = empty_slots();
    let mut committer = Committer::new(version);
    let mut changed = Vec::new();
    for part in parts {
        for (nibble, child) in part.children {
            if let Some(slot) = slots.get_mut(usize::from(nibble)) {
                *slot = child;
            }
        }
        committer.writes.extend(part.writes);
        updater.stale.extend(part.stale);
        updater.loaded += part.loaded;
        changed.extend(part.changed);
    }
    if slots.iter().filter(|slot| slot.is_some()).count() < 2 {
        return Ok(None);
    }
    // The stale entries and changed keys come grouped by thread rather than in key order; both are read as
    // sets (pruning, the flat table). Only the root's own record is left to write.
    let origin = if changed.is_empty() {
        origin
    } else {
        updater.mark_stale(origin, Nibbles::new());
        None
    };
    let root = committer.branch(&Nibbles::new(), slots, origin);
    Ok(Some(Staged {
        root: Some(root),
        writes: committer.writes,
        stale: updater.stale,
        changed,
        loaded: updater.loaded,
    }))
}

/// Updates and commits one thread's subtries.
fn stage_part<'c>(reader: NodeReader<'_>, version: u64, subtries: Vec<Subtrie<'c>>) -> Result<Part<'c>> {
    let mut updater = Updater::new(reader);
    let mut committer = Committer::new(version);
    let mut part = Part { children: Vec::new(), writes: Vec::new(), stale: Vec::new(), changed: Vec::new(), loaded: 0 };
    for (nibble, mut slot, changes) in subtries {
        let path = child_path(Nibbles::new(), nibble);
        for change @ (key, value) in changes {
            let rest = Nibbles::unpack(key).slice(1..);
            let (new_slot, did_change) = updater.apply_at(slot.take(), path, rest, value.as_deref())?;
            slot = new_slot;
            if did_change {
                part.changed.push(change);
            }
        }
        part.children.push((nibble, slot.map(|node| committer.commit(node, path))));
    }
    part.writes = committer.writes;
    part.stale = updater.stale;
    part.loaded = updater.loaded;
    Ok(part)
}
