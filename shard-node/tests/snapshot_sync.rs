//! A shard started from a snapshot of another at height H (a certified block and its state, chunk by chunk)
//! has the source's head, root and proven records, and then follows the source's next blocks by
//! re-executing them to byte-equal headers. A source that sends a wrong node is passed over for the next
//! one; an interrupted sync is refused at the next open; a synced store is not replayable from genesis.

mod support;

use alloy_trie::Nibbles;
use shardex_core::{
    pb::{self, tx_body::Op},
    AccountId, Keypair,
};
use shardex_shard_node::{
    shard::{
        audit,
        sync::{discard_interrupted, store_state, sync_from_snapshot, SnapshotSource, StoreState},
        HeadView, Shard, ShardConfig,
    },
    state::SnapshotNode,
};
use support::inproc::Net;

const USD: u64 = 1_000_000;

/// Serves chunks of one head view; a liar flips a byte of the first node of every chunk.
struct Peer {
    view: HeadView,
    liar: bool,
    served: usize,
}

impl SnapshotSource for Peer {
    fn name(&self) -> String {
        if self.liar { "liar" } else { "honest" }.into()
    }

    fn chunk(&mut self, after: Option<&Nibbles>, max: usize) -> Result<Vec<SnapshotNode>, String> {
        let mut chunk = self.view.snapshot_chunk(after, max).map_err(|e| e.to_string())?;
        if let (true, Some(first)) = (self.liar, chunk.first_mut()) {
            first.rlp[0] ^= 0x40;
        }
        self.served += 1;
        Ok(chunk)
    }
}

#[test]
fn a_shard_synced_from_a_snapshot_matches_its_source_and_follows_it() {
    let (oracle, deposit) = (Keypair::from_seed([2; 32]), Keypair::from_seed([4; 32]));
    let mut src = Net::new(&oracle, &deposit, |_| {});
    let accounts: Vec<AccountId> = (0..300u32)
        .map(|i| {
            let mut id = [0x33; 32];
            id[..4].copy_from_slice(&i.to_be_bytes());
            AccountId(id)
        })
        .collect();
    for (i, a) in accounts.iter().enumerate() {
        let op = Op::Deposit(pb::Deposit { account: a.0.to_vec(), amount_micros: (i as u64 + 1) * USD });
        src.submit(&deposit, op).expect("deposit");
        if i % 50 == 49 {
            src.block();
        }
    }
    src.block();
    let view = src.shard.view();
    let height = view.head().height;
    let block = view.block(height).expect("read").expect("head block");
    let genesis = src.shard.genesis().clone();

    let dir = tempfile::tempdir().expect("tempdir");
    let db = shardex_service::storage::open_db(dir.path()).expect("db");
    // A block whose body is not its header's, or whose header lacks its certificate, is refused before
    // anything is written (the sync below still finds the store empty).
    let mut padded = block.clone();
    padded.receipts.pop();
    let mut unsigned = block.clone();
    if let Some(fh) = unsigned.header.as_mut() {
        fh.signatures.clear();
    }
    for (bad, why) in [(padded, "receipts_root"), (unsigned, "not certified")] {
        let mut honest = Peer { view: view.clone(), liar: false, served: 0 };
        let err = sync_from_snapshot(&db, &genesis, &ShardConfig::default(), bad, &mut [&mut honest], 32)
            .expect_err("refused");
        assert!(err.to_string().contains(why), "{err}");
        assert_eq!(honest.served, 0, "no chunk was asked for a refused block");
    }

    let (mut liar, mut honest) =
        (Peer { view: view.clone(), liar: true, served: 0 }, Peer { view: view.clone(), liar: false, served: 0 });
    let report = sync_from_snapshot(
        &db,
        &genesis,
        &ShardConfig::default(),
        block.clone(),
        &mut [&mut liar as &mut dyn SnapshotSource, &mut honest],
        32,
    )
    .expect("sync");
    assert_eq!(report.height, height);
    assert!(report.chunks > 10, "{report:?}");
    assert!(!report.refused.is_empty() && report.refused.iter().all(|(who, _)| who == "liar"), "{report:?}");
    assert!(report.leaves >= accounts.len() as u64);

    let mut synced = Shard::open(db.clone(), genesis.clone(), Net::validator(), ShardConfig::default()).expect("open");
    assert_eq!(synced.head(), src.shard.head());
    let (a, b) = (synced.view(), src.shard.view());
    for who in accounts.iter().step_by(37) {
        let mine = a.account(who, None, true).expect("read").expect("head");
        let theirs = b.account(who, None, true).expect("read").expect("head");
        assert_eq!((mine.record, mine.proof), (theirs.record, theirs.proof));
    }
    assert!(a.block(height - 1).expect("read").is_none(), "blocks below the snapshot are not held");
    assert_eq!((a.snapshot_base(), b.snapshot_base()), (Some(height), None));
    assert!(a.missing_block(height - 1).contains("began from a snapshot"), "{}", a.missing_block(height - 1));
    assert_eq!(b.missing_block(height + 9), format!("no block at height {}", height + 9));

    // The source goes on; the synced shard re-executes each new block to the same header.
    for i in 0..3u64 {
        let op = Op::Deposit(pb::Deposit { account: accounts[0].0.to_vec(), amount_micros: (i + 1) * USD });
        src.run(&deposit, op).expect("deposit");
        let next = src.shard.view().block(height + 1 + i).expect("read").expect("block");
        synced.apply_certified(&next).expect("follows");
        assert_eq!(synced.head(), src.shard.head());
    }
    drop(synced);

    // This store began at a snapshot: it cannot be replayed from genesis, and says so.
    let err = audit::replay_check(
        db.clone(),
        genesis.clone(),
        Net::validator(),
        ShardConfig::default(),
        &dir.path().join("x"),
        |_, _| {},
    )
    .expect_err("not replayable");
    assert!(err.to_string().contains("began from a snapshot"), "{err}");

    // A sync cut short (every source lies) leaves a store that refuses to open as if it were fresh.
    let dir2 = tempfile::tempdir().expect("tempdir");
    let db2 = shardex_service::storage::open_db(dir2.path()).expect("db");
    let mut only_liar = Peer { view, liar: true, served: 0 };
    let err = sync_from_snapshot(&db2, &genesis, &ShardConfig::default(), block, &mut [&mut only_liar], 64)
        .expect_err("no honest source");
    assert!(err.to_string().contains("every source failed"), "{err}");
    let err =
        Shard::open(db2.clone(), genesis.clone(), Net::validator(), ShardConfig::default()).err().expect("refused");
    assert!(err.to_string().contains("interrupted"), "{err}");
    // `--sync snapshot` discards such a store (and only such a store) to start over.
    assert_eq!(store_state(&db2).expect("state"), StoreState::Interrupted(height));
    assert_eq!(discard_interrupted(&db2).expect("discarded"), height);
    assert_eq!(store_state(&db2).expect("state"), StoreState::Empty);
    assert!(discard_interrupted(&db2).is_err(), "an empty store is not discarded");
    assert_eq!(store_state(&db).expect("state"), StoreState::Holds);
    assert!(discard_interrupted(&db).is_err(), "a synced store is never discarded");
}
