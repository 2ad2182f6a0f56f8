//! State engine: incremental roots against a from-scratch `HashBuilder` root, Ethereum proofs
//! checked with `alloy_trie::proof::verify_proof`, pruning, restart, and bad input.

use alloy_primitives::B256;
use alloy_trie::{HashBuilder, Nibbles, EMPTY_ROOT_HASH};
use proptest::{
    prelude::*,
    test_runner::{RngSeed, TestCaseError},
};
use rand::{Rng, RngCore, SeedableRng};
use rand_chacha::ChaCha8Rng;
use shardex_shard_node::state::{keys, StateEngine, StateError, MAX_PINNED_VERSIONS};
use std::collections::BTreeMap;

type Changes = BTreeMap<B256, Option<Vec<u8>>>;
type Model = BTreeMap<B256, Vec<u8>>;
/// One version as `(pool index, new value or delete)` pairs.
type RawChanges = Vec<(usize, Option<Vec<u8>>)>;

/// From-scratch reference root over the same leaves (B256 order is nibble order).
fn reference_root(model: &Model) -> B256 {
    let mut builder = HashBuilder::default();
    for (key, value) in model {
        builder.add_leaf(Nibbles::unpack(key), value);
    }
    builder.root()
}

/// A small key space with shared prefixes, so splits, extensions and collapses all happen,
/// plus keys sharing 31 bytes, whose nodes get inlined with short values.
fn key_pool() -> Vec<B256> {
    let mut rng = ChaCha8Rng::seed_from_u64(0x5eed_0001);
    let mut keys = Vec::new();
    for i in 0..20usize {
        let mut key = [0u8; 32];
        rng.fill_bytes(&mut key);
        key[0] = [0x00, 0x01, 0x10, 0xf0][i % 4];
        if i.is_multiple_of(3) {
            key[1] = 0x22;
            key[2] = 0x33;
        }
        keys.push(B256::from(key));
    }
    for last in [0x00, 0x01, 0x10, 0x1f] {
        let mut key = [0x5a; 32];
        key[31] = last;
        keys.push(B256::from(key));
    }
    keys.sort();
    keys.dedup();
    keys
}

/// An engine over a temporary sled db, plus the model of every committed version.
struct Harness {
    db: sled::Db,
    tree: sled::Tree,
    engine: StateEngine,
    /// `(root, leaves)` per version.
    history: Vec<(B256, Model)>,
    prune: bool,
}

impl Harness {
    fn new(retention: u64, prune: bool) -> Self {
        let db = sled::Config::new().temporary(true).open().expect("temporary sled db");
        Self::with_db(db, retention, prune)
    }

    fn with_db(db: sled::Db, retention: u64, prune: bool) -> Self {
        let tree = db.open_tree("shard").expect("tree");
        let engine = StateEngine::open(tree.clone(), retention).expect("open engine");
        Self { db, tree, engine, history: Vec::new(), prune }
    }

    fn model(&self) -> Model {
        self.history.last().map(|(_, m)| m.clone()).unwrap_or_default()
    }

    /// Stages, prunes and applies one version like the node does; checks the root.
    fn commit(&mut self, changes: &Changes) -> Result<B256, StateError> {
        let version = self.history.len() as u64;
        let mut batch = sled::Batch::default();
        let root = self.engine.stage(version, changes, &mut batch)?;
        if self.prune {
            self.engine.stage_prune(version, &mut batch)?;
        }
        self.tree.apply_batch(batch)?;
        let mut model = self.model();
        for (key, value) in changes {
            match value {
                Some(value) => model.insert(*key, value.clone()),
                None => model.remove(key),
            };
        }
        let expected = reference_root(&model);
        assert_eq!(root, expected, "version {version}: incremental root != HashBuilder root");
        if model.is_empty() {
            assert_eq!(root, EMPTY_ROOT_HASH);
        }
        self.history.push((root, model));
        Ok(root)
    }

    /// Proof of `key` at `version`, checked against the recorded model and `verify_proof`.
    fn check_proof(&self, version: u64, key: &B256) -> Result<(), TestCaseError> {
        let (root, model) = &self.history[version as usize];
        let proof = self.engine.proof(version, key).map_err(|e| TestCaseError::fail(e.to_string()))?;
        prop_assert_eq!(proof.root, *root);
        prop_assert_eq!(proof.value.as_ref(), model.get(key), "value of {} at {}", key, version);
        if let Err(err) = proof.verify() {
            return Err(TestCaseError::fail(format!("proof of {key} at {version}: {err}")));
        }
        // A proof must not verify for another value.
        let wrong = Some(proof.value.clone().map_or(vec![1], |mut v| {
            v.push(0);
            v
        }));
        prop_assert!(alloy_trie::proof::verify_proof(*root, Nibbles::unpack(key), wrong, &proof.nodes).is_err());
        Ok(())
    }

    /// Head reads (flat table and iteration) agree with the model.
    fn check_head(&self, pool: &[B256]) -> Result<(), TestCaseError> {
        let model = self.model();
        for key in pool {
            prop_assert_eq!(self.engine.get(key).expect("get"), model.get(key).cloned());
        }
        let leaves: Model = self.engine.iter_leaves().collect::<Result<_, _>>().expect("iter");
        prop_assert_eq!(leaves, model);
        Ok(())
    }

    fn count_prefix(&self, prefix: u8) -> usize {
        self.tree.scan_prefix([prefix]).count()
    }

    /// After `retention + 1` empty versions every older trie is pruned: exactly the live
    /// trie's nodes must remain (as many as a fresh store holding the same leaves), and no
    /// stale-index entry. Catches both leaked and wrongly deleted nodes.
    fn check_no_garbage(&mut self, retention: u64) -> Result<(), TestCaseError> {
        for _ in 0..=retention {
            self.commit(&Changes::new()).map_err(|e| TestCaseError::fail(e.to_string()))?;
        }
        let mut fresh = Harness::new(retention, true);
        let all: Changes = self.model().into_iter().map(|(k, v)| (k, Some(v))).collect();
        fresh.commit(&all).map_err(|e| TestCaseError::fail(e.to_string()))?;
        prop_assert_eq!(self.count_prefix(keys::NODE_PREFIX), fresh.count_prefix(keys::NODE_PREFIX));
        prop_assert_eq!(self.count_prefix(keys::STALE_PREFIX), 0);
        Ok(())
    }
}

fn value_strategy() -> impl Strategy<Value = Vec<u8>> {
    prop_oneof![proptest::collection::vec(any::<u8>(), 1..=2), proptest::collection::vec(any::<u8>(), 1..=48),]
}

/// Versions of `(pool index, new value or delete)`; optionally a final wipe of every key.
fn history_strategy(pool: usize) -> impl Strategy<Value = (Vec<RawChanges>, bool)> {
    let change = (0..pool, proptest::option::weighted(0.6, value_strategy()));
    (proptest::collection::vec(proptest::collection::vec(change, 0..10), 1..20), any::<bool>())
}

proptest! {
    #![proptest_config(ProptestConfig {
        cases: 96,
        failure_persistence: None,
        rng_seed: RngSeed::Fixed(0x5eed_5eed),
        ..ProptestConfig::default()
    })]

    /// Random versions over a small key space, retention 3 with pruning every version.
    #[test]
    fn incremental_roots_and_proofs_match_reference((versions, wipe) in history_strategy(key_pool().len())) {
        const RETENTION: u64 = 3;
        let pool = key_pool();
        let mut harness = Harness::new(RETENTION, true);
        let mut all: Vec<Changes> = versions
            .iter()
            .map(|changes| changes.iter().map(|(i, v)| (pool[*i], v.clone())).collect())
            .collect();
        if wipe {
            all.push(pool.iter().map(|k| (*k, None)).collect());
            all.push([(pool[3], Some(vec![7]))].into_iter().collect());
        }
        for changes in &all {
            harness.commit(changes).map_err(|e| TestCaseError::fail(e.to_string()))?;
            let head = harness.history.len() as u64 - 1;
            harness.check_head(&pool)?;
            for key in &pool {
                harness.check_proof(head, key)?;
            }
            let oldest = head.saturating_sub(RETENTION);
            for version in oldest..head {
                for key in pool.iter().step_by(4) {
                    harness.check_proof(version, key)?;
                }
            }
            if let Some(pruned) = oldest.checked_sub(1) {
                let err = harness.engine.proof(pruned, &pool[0]);
                let expected = |e: &StateError| {
                    matches!(e, StateError::VersionPruned { version, oldest: o } if *version == pruned && *o == oldest)
                };
                prop_assert!(err.as_ref().is_err_and(expected), "proof at pruned version {} gave {:?}", pruned, err);
                let root = harness.engine.root(pruned);
                prop_assert!(matches!(root, Err(StateError::VersionPruned { .. })), "root at pruned: {:?}", root);
            }
        }
        harness.check_no_garbage(RETENTION)?;
    }
}

fn set(pairs: &[(B256, &[u8])]) -> Changes {
    pairs.iter().map(|(k, v)| (*k, Some(v.to_vec()))).collect()
}

#[test]
fn delete_down_to_empty_and_back() {
    let pool = key_pool();
    let mut h = Harness::new(64, true);
    let inserts: Changes = pool.iter().map(|k| (*k, Some(k[5..].to_vec()))).collect();
    h.commit(&inserts).expect("insert all");
    // Delete one at a time: every collapse shape along the way.
    for key in &pool {
        h.commit(&[(*key, None)].into_iter().collect()).expect("delete");
        for other in &pool {
            h.check_proof(h.history.len() as u64 - 1, other).expect("proof");
        }
    }
    let empty = h.history.len() as u64 - 1;
    assert_eq!(h.engine.root(empty).expect("root"), EMPTY_ROOT_HASH);
    let proof = h.engine.proof(empty, &pool[0]).expect("proof");
    assert!(proof.nodes.is_empty() && proof.value.is_none());
    proof.verify().expect("absence in the empty trie");
    assert_eq!(h.engine.iter_leaves().count(), 0);
    // Older non-empty versions still prove, and the trie grows back.
    h.check_proof(1, &pool[2]).expect("old proof");
    h.commit(&set(&[(pool[1], b"back")])).expect("reinsert");
    h.check_proof(h.history.len() as u64 - 1, &pool[1]).expect("proof");
    h.check_no_garbage(64).expect("no garbage");
}

#[test]
fn short_values_are_inlined_like_ethereum() {
    let mut h = Harness::new(8, false);
    let key = |last: u8| {
        let mut k = [0x5a; 32];
        k[31] = last;
        B256::from(k)
    };
    let far = B256::ZERO;
    // Keys differing only in the last nibble: ext(62 nibbles) -> inline branch of inline leaves.
    h.commit(&set(&[(far, &[0x01]), (key(0x00), &[0x05]), (key(0x01), &[0x99])])).expect("v0");
    let proof = h.engine.proof(0, &key(0x01)).expect("proof");
    assert_eq!(proof.nodes.len(), 2, "root branch + extension; the branch and leaves are inline");
    for k in [far, key(0x00), key(0x01), key(0x02), key(0x10)] {
        h.check_proof(0, &k).expect("proof");
    }
    // A second pair one nibble earlier: ext(61) -> hashed branch -> inline branches.
    h.commit(&set(&[(key(0x10), &[0x01]), (key(0x1f), &[0x80])])).expect("v1");
    assert_eq!(h.engine.proof(1, &key(0x10)).expect("proof").nodes.len(), 3);
    for k in [far, key(0x00), key(0x01), key(0x10), key(0x1f), key(0x11), key(0x20)] {
        h.check_proof(1, &k).expect("proof");
    }
    // Collapse the inline branches again.
    h.commit(&[(key(0x00), None), (key(0x1f), None)].into_iter().collect()).expect("v2");
    h.commit(&[(key(0x01), None)].into_iter().collect()).expect("v3");
    for version in 0..4 {
        for k in [far, key(0x00), key(0x01), key(0x10), key(0x1f)] {
            h.check_proof(version, &k).expect("proof");
        }
    }
}

#[test]
fn pruning_keeps_node_records_bounded() {
    const RETENTION: u64 = 8;
    let mut rng = ChaCha8Rng::seed_from_u64(0x5eed_0002);
    let pool: Vec<B256> = (0..64)
        .map(|_| {
            let mut k = [0u8; 32];
            rng.fill_bytes(&mut k);
            B256::from(k)
        })
        .collect();
    let mut h = Harness::new(RETENTION, true);
    h.commit(&pool.iter().map(|k| (*k, Some(vec![1; 32]))).collect()).expect("genesis");
    let mut counts = Vec::new();
    for round in 1..300usize {
        let changes: Changes =
            (0..4).map(|i| (pool[(round * 4 + i) % pool.len()], Some(vec![round as u8; 32]))).collect();
        h.commit(&changes).expect("update");
        counts.push((h.count_prefix(keys::NODE_PREFIX), h.count_prefix(keys::STALE_PREFIX)));
    }
    let (nodes_early, stale_early) = counts[100];
    let (nodes_late, stale_late) = counts[counts.len() - 1];
    assert!(nodes_late <= nodes_early + nodes_early / 10, "node records grow: {nodes_early} -> {nodes_late}");
    assert!(stale_late <= stale_early + stale_early / 10, "stale index grows: {stale_early} -> {stale_late}");
    assert_eq!(h.count_prefix(keys::ROOT_PREFIX) as u64, RETENTION + 1);
    let head = h.history.len() as u64 - 1;
    assert_eq!(h.engine.oldest_version().expect("oldest"), Some(head - RETENTION));
    for key in pool.iter().take(8) {
        h.check_proof(head - RETENTION, key).expect("oldest retained version proves");
    }
    assert!(matches!(h.engine.proof(head - RETENTION - 1, &pool[0]), Err(StateError::VersionPruned { .. })));
}

#[test]
fn a_pinned_version_outlives_the_retention_window_until_its_lease_ends() {
    const RETENTION: u64 = 4;
    let pool: Vec<B256> = (0u8..16).map(|i| B256::from([i.wrapping_mul(37).wrapping_add(1); 32])).collect();
    let round = |h: &mut Harness, n: usize| {
        let changes: Changes = (0..3).map(|i| (pool[(n * 3 + i) % pool.len()], Some(vec![n as u8 + 1; 8]))).collect();
        h.commit(&changes).expect("update");
    };
    let mut h = Harness::new(RETENTION, true);
    h.commit(&pool.iter().map(|k| (*k, Some(vec![9; 8]))).collect()).expect("genesis");
    round(&mut h, 1);
    // Version 1 is being served as a snapshot: it must stay whole however far the head moves meanwhile.
    assert!(h.engine.pin(1, std::time::Duration::from_millis(300)).expect("pin"));
    for n in 2..20 {
        round(&mut h, n);
    }
    assert_eq!(h.engine.oldest_version().expect("oldest"), Some(1));
    let chunk = h.engine.snapshot_nodes(1, None, 10_000).expect("the pinned version exports whole");
    assert!(chunk.len() > pool.len(), "{} nodes", chunk.len());
    for key in &pool {
        h.check_proof(1, key).expect("the pinned version proves");
    }
    assert!(matches!(h.engine.proof(0, &pool[0]), Err(StateError::VersionPruned { .. })), "older than the pin");

    // Once the lease ends the next block prunes it like any other.
    std::thread::sleep(std::time::Duration::from_millis(350));
    round(&mut h, 20);
    let head = h.history.len() as u64 - 1;
    assert_eq!(h.engine.oldest_version().expect("oldest"), Some(head - RETENTION));
    assert!(matches!(h.engine.snapshot_nodes(1, None, 10), Err(StateError::VersionPruned { .. })));
}

#[test]
fn pins_are_for_stored_versions_and_at_most_a_few_at_once() {
    let mut h = Harness::new(64, true);
    for v in 0u8..8 {
        h.commit(&[(B256::from([v + 1; 32]), Some(vec![v; 8]))].into_iter().collect()).expect("commit");
    }
    let lease = std::time::Duration::from_secs(60);
    assert!(!h.engine.pin(99, lease).expect("pin"), "a version never committed is not pinned");
    for v in 0..MAX_PINNED_VERSIONS as u64 {
        assert!(h.engine.pin(v, lease).expect("pin"), "version {v}");
    }
    let next = MAX_PINNED_VERSIONS as u64;
    assert!(!h.engine.pin(next, lease).expect("pin"), "one pin more than allowed");
    assert!(h.engine.pin(0, lease).expect("pin"), "renewing a pin is always allowed");
}

#[test]
fn reopen_resumes_from_the_flushed_head() {
    let dir = tempfile::tempdir().expect("tempdir");
    let pool = key_pool();
    let (root, history) = {
        let db = shardex_service::storage::open_db(dir.path()).expect("open db");
        let mut h = Harness::with_db(db, 4, true);
        for round in 0..12u8 {
            let changes: Changes = pool
                .iter()
                .enumerate()
                .filter(|(i, _)| (*i + round as usize).is_multiple_of(3))
                .map(|(i, k)| {
                    (*k, (!i.is_multiple_of(5) || round.is_multiple_of(2)).then(|| vec![round, i as u8, 0xaa]))
                })
                .collect();
            h.commit(&changes).expect("commit");
        }
        h.db.flush().expect("flush");
        (h.history.last().expect("head").0, h.history)
    };
    let db = shardex_service::storage::open_db(dir.path()).expect("reopen db");
    let mut h = Harness::with_db(db, 4, true);
    h.history = history;
    assert_eq!(h.engine.latest_version().expect("latest"), Some(11));
    assert_eq!(h.engine.root(11).expect("root"), root);
    h.check_head(&pool).expect("head values");
    for version in 7..=11 {
        for key in &pool {
            h.check_proof(version, key).expect("proof after reopen");
        }
    }
    h.commit(&set(&[(pool[0], b"after restart")])).expect("next version");
    h.check_proof(12, &pool[0]).expect("proof");
}

#[test]
fn rejects_bad_versions_and_values() {
    let pool = key_pool();
    let mut h = Harness::new(4, true);
    let mut batch = sled::Batch::default();
    let changes = set(&[(pool[0], b"a")]);
    assert!(matches!(
        h.engine.stage(1, &changes, &mut batch),
        Err(StateError::NonSequentialVersion { expected: 0, got: 1 })
    ));
    let empty = set(&[(pool[0], b"")]);
    assert!(matches!(h.engine.stage(0, &empty, &mut batch), Err(StateError::EmptyValue { .. })));
    assert_eq!(h.engine.latest_version().expect("latest"), None);
    assert!(matches!(h.engine.proof(0, &pool[0]), Err(StateError::VersionNotFound { version: 0, latest: None })));

    let root = h.commit(&changes).expect("v0");
    assert!(matches!(
        h.engine.stage(0, &changes, &mut sled::Batch::default()),
        Err(StateError::NonSequentialVersion { expected: 1, got: 0 })
    ));
    // Same value and deleting an absent key: the root stays, nothing is written but the root record.
    let nodes_before = h.count_prefix(keys::NODE_PREFIX);
    let noop: Changes = [(pool[0], Some(b"a".to_vec())), (pool[1], None)].into_iter().collect();
    assert_eq!(h.commit(&noop).expect("v1"), root);
    assert_eq!(h.count_prefix(keys::NODE_PREFIX), nodes_before);
    assert_eq!(h.count_prefix(keys::STALE_PREFIX), 0);
    assert!(matches!(h.engine.proof(2, &pool[0]), Err(StateError::VersionNotFound { version: 2, .. })));
    assert!(h.engine.stage_prune(5, &mut sled::Batch::default()).is_err());
}

#[test]
fn corrupt_storage_is_an_error_not_a_panic() {
    let pool = key_pool();
    let mut h = Harness::new(4, false);
    h.commit(&pool.iter().map(|k| (*k, Some(vec![3; 40]))).collect()).expect("v0");
    // Garble every node record below the root: proofs and updates must fail cleanly.
    let node_keys: Vec<_> = h.tree.scan_prefix([keys::NODE_PREFIX]).keys().collect::<Result<_, _>>().expect("scan");
    for key in &node_keys {
        if key.len() > 10 {
            h.tree.insert(key, &[0x02, 0xff, 0x00][..]).expect("garble");
        }
    }
    // Corruption on disk is found after a restart (a fresh engine has nothing cached).
    h.engine = StateEngine::open(h.tree.clone(), 4).expect("reopen");
    for key in &pool {
        assert!(matches!(h.engine.proof(0, key), Err(StateError::Corrupt { .. })));
    }
    let mut batch = sled::Batch::default();
    assert!(matches!(h.engine.stage(1, &set(&[(pool[0], b"x")]), &mut batch), Err(StateError::Corrupt { .. })));
    // A bad root record.
    h.tree
        .insert(
            keys::ROOT_PREFIX.to_be_bytes().iter().chain(&0u64.to_be_bytes()).copied().collect::<Vec<_>>(),
            &[1u8; 5][..],
        )
        .expect("garble root");
    assert!(matches!(h.engine.root(0), Err(StateError::Corrupt { .. })));
}

#[test]
fn writes_stay_inside_the_reserved_prefixes() {
    let pool = key_pool();
    let mut h = Harness::new(1, true);
    let node_key = [0x10, 0xde, 0xad];
    h.tree.insert(node_key, &b"node-owned"[..]).expect("node key");
    for round in 0..6u8 {
        let changes: Changes =
            pool.iter().step_by(round as usize + 1).map(|k| (*k, (round % 3 != 2).then(|| vec![round + 1]))).collect();
        h.commit(&changes).expect("commit");
    }
    for key in h.tree.iter().keys() {
        let key = key.expect("key");
        assert!(key[..] == node_key || (0x01..=keys::LAST_RESERVED_PREFIX).contains(&key[0]), "foreign key {key:?}");
    }
    assert_eq!(h.tree.get(node_key).expect("get").as_deref(), Some(&b"node-owned"[..]));
}

#[test]
fn discarded_stage_leaves_no_trace() {
    // A proposal staged but never applied (e.g. a block that lost the round) must not affect
    // the block that is finally applied at the same height.
    let pool = key_pool();
    let mut h = Harness::new(8, true);
    h.commit(&pool.iter().map(|k| (*k, Some(vec![1; 40]))).collect()).expect("v0");
    for attempt in 0..3u8 {
        let lost: Changes = pool.iter().step_by(2).map(|k| (*k, Some(vec![attempt + 2; 40]))).collect();
        let mut batch = sled::Batch::default();
        h.engine.stage(1, &lost, &mut batch).expect("stage lost proposal");
        drop(batch);
    }
    let decided: Changes =
        pool.iter().skip(1).step_by(3).map(|k| (*k, Some(vec![9; 40]))).chain([(pool[0], None)]).collect();
    h.commit(&decided).expect("v1");
    h.commit(&set(&[(pool[2], b"next")])).expect("v2");
    for version in 0..3 {
        for key in &pool {
            h.check_proof(version, key).expect("proof");
        }
    }
}

/// Snapshot sync's ground layer: a version exported as trie nodes in bounded chunks imports into an empty
/// store that then has the same root, values and proofs, and stages the next version to the same root as
/// the source. A chunk with one wrong node (or one out of place) stages nothing and is named; the same
/// chunk from an honest peer completes the import.
#[test]
fn snapshot_chunks_import_verified_and_a_bad_chunk_is_refused() {
    use shardex_shard_node::state::{SnapshotError, SnapshotImport};

    let mut src = Harness::new(64, true);
    let mut rng = ChaCha8Rng::seed_from_u64(0x5a95);
    let mut keys_all = key_pool();
    for _ in 0..3_000 {
        let mut key = [0u8; 32];
        rng.fill_bytes(&mut key);
        keys_all.push(B256::from(key));
    }
    for round in 0..3u8 {
        let changes: Changes = keys_all
            .iter()
            .enumerate()
            .filter(|(i, _)| (i + round as usize).is_multiple_of(2))
            .map(|(i, k)| (*k, Some(if i % 7 == 0 { vec![round + 1] } else { vec![round + 1; 40] })))
            .collect();
        src.commit(&changes).expect("commit");
    }
    let version = src.history.len() as u64 - 1;
    let (root, model) = src.history.last().cloned().expect("a version");

    let dst = Harness::new(64, true);
    let mut import = SnapshotImport::new(version, root);
    let (mut after, mut chunks, mut refused) = (None, 0, 0);
    loop {
        let chunk = src.engine.snapshot_nodes(version, after.as_ref(), 300).expect("export");
        if chunk.is_empty() {
            break;
        }
        if chunks == 2 && refused == 0 {
            // A lying peer: one node's bytes changed, then one node moved out of order.
            let mut forged = chunk.clone();
            let last = forged.last_mut().expect("node");
            let byte = last.rlp.len() - 1;
            last.rlp[byte] ^= 1;
            let mut batch = sled::Batch::default();
            let err = import.apply(&forged, &mut batch).expect_err("forged node");
            assert!(matches!(err, SnapshotError::Mismatch { .. }), "{err}");
            let mut reordered = chunk.clone();
            reordered.swap(0, chunk.len() - 1);
            let err = import.apply(&reordered, &mut batch).expect_err("out of order");
            assert!(matches!(err, SnapshotError::Unexpected { .. }), "{err}");
            dst.tree.apply_batch(batch).expect("apply");
            assert_eq!(dst.count_prefix(keys::NODE_PREFIX), src_nodes_so_far(&import), "a refused chunk staged");
            refused += 1;
        }
        let mut batch = sled::Batch::default();
        after = import.apply(&chunk, &mut batch).expect("honest chunk");
        dst.tree.apply_batch(batch).expect("apply");
        chunks += 1;
    }
    assert!(chunks > 10, "{chunks} chunks");
    assert!(import.is_complete());
    let (_, leaves) = import.progress();
    assert_eq!(leaves as usize, model.len());
    let mut batch = sled::Batch::default();
    import.finish(&mut batch).expect("complete");
    dst.tree.apply_batch(batch).expect("apply");

    let dst_engine = StateEngine::open(dst.tree.clone(), 64).expect("open");
    assert_eq!(
        (dst_engine.latest_version().expect("v"), dst_engine.root(version).expect("root")),
        (Some(version), root)
    );
    for (key, value) in &model {
        assert_eq!(dst_engine.get(key).expect("get").as_ref(), Some(value));
    }
    let proof = dst_engine.proof(version, &keys_all[5]).expect("proof");
    assert_eq!(proof.nodes, src.engine.proof(version, &keys_all[5]).expect("proof").nodes);

    // Both stage the same next version to the same root.
    let next: Changes = keys_all.iter().take(50).map(|k| (*k, None)).collect();
    let (mut a, mut b) = (sled::Batch::default(), sled::Batch::default());
    let ra = src.engine.stage(version + 1, &next, &mut a).expect("stage");
    let rb = dst_engine.stage(version + 1, &next, &mut b).expect("stage");
    assert_eq!(ra, rb);

    // An import cut short says what is missing.
    let partial = SnapshotImport::new(version, root);
    assert!(matches!(partial.finish(&mut sled::Batch::default()), Err(SnapshotError::Incomplete(1))));
}

fn src_nodes_so_far(import: &shardex_shard_node::state::SnapshotImport) -> usize {
    import.progress().0 as usize
}

/// An engine whose wide versions are staged on `threads` threads (the engine takes the size of the rayon pool
/// it is opened in).
fn engine_with_threads(tree: &sled::Tree, retention: u64, threads: usize) -> StateEngine {
    let pool = rayon::ThreadPoolBuilder::new().num_threads(threads).build().expect("thread pool");
    pool.install(|| StateEngine::open(tree.clone(), retention).expect("open engine"))
}

/// Every node record (key and bytes) of a store.
fn node_records(h: &Harness) -> Vec<(sled::IVec, sled::IVec)> {
    h.tree.scan_prefix([keys::NODE_PREFIX]).collect::<Result<_, _>>().expect("scan nodes")
}

/// A random wide block over `model`: updates (some to the same value), inserts (half of them sharing all but
/// the last bytes with a live key, so leaves split deep), deletes of live and absent keys, with values short
/// enough to be inlined now and then.
fn wide_block(rng: &mut ChaCha8Rng, model: &Model, size: usize) -> Changes {
    let live: Vec<B256> = model.keys().copied().collect();
    let value = |rng: &mut ChaCha8Rng| {
        let len = if rng.next_u32().is_multiple_of(8) {
            1 + rng.next_u32() as usize % 2
        } else {
            8 + rng.next_u32() as usize % 56
        };
        let mut value = vec![0u8; len];
        rng.fill_bytes(&mut value);
        value
    };
    let mut changes = Changes::new();
    while changes.len() < size {
        let roll = rng.next_u32() % 100;
        let pick = |rng: &mut ChaCha8Rng| live.get(rng.next_u32() as usize % live.len().max(1)).copied();
        match roll {
            0..=54 => {
                if let Some(key) = pick(rng) {
                    let same = rng.next_u32().is_multiple_of(10);
                    let new = if same { model[&key].clone() } else { value(rng) };
                    changes.insert(key, Some(new));
                }
            }
            55..=64 => {
                if let Some(mut key) = pick(rng) {
                    let tail = 1 + rng.next_u32() as usize % 3;
                    rng.fill_bytes(&mut key.0[32 - tail..]);
                    changes.insert(key, Some(value(rng)));
                }
            }
            65..=79 => {
                let mut key = B256::ZERO;
                rng.fill_bytes(&mut key.0);
                changes.insert(key, Some(value(rng)));
            }
            80..=94 => {
                if let Some(key) = pick(rng) {
                    changes.insert(key, None);
                }
            }
            _ => {
                let mut key = B256::ZERO;
                rng.fill_bytes(&mut key.0);
                changes.insert(key, None);
            }
        }
    }
    changes
}

/// The differential test of the state engine on wide versions (past the threshold where the root's subtries
/// are staged on several threads): on random wide blocks over a few thousand keys, one engine staging on four
/// threads and one on a single thread both reach the from-scratch `HashBuilder` root at every version, write
/// byte-identical node records, and prove what the model holds. Along the way: proposals staged and
/// discarded, both engines reopened (their in-memory tries dropped), a block deleting all but one key (the
/// root collapses), the trie emptied and refilled; at the end every stale node is pruned and nothing else.
#[test]
fn wide_blocks_match_a_from_scratch_root_on_any_number_of_threads() {
    const RETENTION: u64 = 3;
    let mut rng = ChaCha8Rng::seed_from_u64(0x5eed_0d1f);
    let mut wide = Harness::new(RETENTION, true);
    let mut narrow = Harness::new(RETENTION, true);
    wide.engine = engine_with_threads(&wide.tree, RETENTION, 4);
    narrow.engine = engine_with_threads(&narrow.tree, RETENTION, 1);

    let mut blocks: Vec<Changes> = Vec::new();
    let mut model = Model::new();
    let mut plan = |changes: Changes, model: &mut Model| {
        for (key, value) in &changes {
            match value {
                Some(value) => model.insert(*key, value.clone()),
                None => model.remove(key),
            };
        }
        blocks.push(changes);
    };
    let first: Changes = (0..3_000).map(|_| (B256::from(rng.gen::<[u8; 32]>()), Some(vec![7; 40]))).collect();
    plan(first, &mut model);
    for _ in 0..8 {
        let size = 300 + rng.next_u32() as usize % 900;
        plan(wide_block(&mut rng, &model, size), &mut model);
    }
    // All but one key deleted in one wide block: the root collapses.
    let keep = *model.keys().nth(17).expect("a key to keep");
    plan(model.keys().filter(|key| **key != keep).map(|key| (*key, None)).collect(), &mut model);
    plan((0..600).map(|_| (B256::from(rng.gen::<[u8; 32]>()), Some(vec![3; 33]))).collect(), &mut model);
    plan(model.keys().map(|key| (*key, None)).collect(), &mut model);
    plan((0..400).map(|_| (B256::from(rng.gen::<[u8; 32]>()), Some(vec![1]))).collect(), &mut model);
    for _ in 0..3 {
        let size = 256 + rng.next_u32() as usize % 300;
        plan(wide_block(&mut rng, &model, size), &mut model);
    }

    for (version, changes) in blocks.iter().enumerate() {
        if version == 4 {
            for h in [&wide, &narrow] {
                for attempt in 0..2 {
                    let lost = wide_block(&mut ChaCha8Rng::seed_from_u64(attempt), &h.model(), 700);
                    h.engine.stage(version as u64, &lost, &mut sled::Batch::default()).expect("stage lost proposal");
                }
            }
        }
        if version == 6 {
            wide.engine = engine_with_threads(&wide.tree, RETENTION, 4);
            narrow.engine = engine_with_threads(&narrow.tree, RETENTION, 1);
        }
        let root = wide.commit(changes).expect("wide engine commits");
        assert_eq!(narrow.commit(changes).expect("one-thread engine commits"), root, "version {version}");
        assert!(node_records(&wide) == node_records(&narrow), "version {version}: node records differ");
        let head = version as u64;
        let sample: Vec<B256> = changes.keys().step_by(37).chain(wide.model().keys().step_by(53)).copied().collect();
        for key in &sample {
            wide.check_proof(head, key).expect("proof at the head");
            if let Some(older) = head.checked_sub(2) {
                wide.check_proof(older, key).expect("proof two versions back");
            }
        }
        assert!(wide.engine.iter_leaves().map(|leaf| leaf.expect("leaf")).eq(wide.model()), "flat table");
    }
    assert_eq!(wide.model(), model);
    wide.check_no_garbage(RETENTION).expect("wide engine leaves no garbage");
    narrow.check_no_garbage(RETENTION).expect("one-thread engine leaves no garbage");
}
