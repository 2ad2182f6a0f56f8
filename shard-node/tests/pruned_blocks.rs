//! A node that prunes its block log (`state.keep_blocks`): it keeps the genesis block and the last N blocks
//! with their tx index and history entries, refuses older blocks, headers and history pages by saying
//! what it holds, forgets pruned txs, and serves state and proofs as before.

mod support;

use shardex_core::{
    pb::{self, tx_body::Op},
    AccountId, Keypair, Reason, B256,
};
use shardex_shard_node::{
    chain::HistoryPos,
    shard::{HistoryQuery, ShardConfig, TxState},
};
use support::inproc::Net;

const KEEP: u64 = 8;

fn account(i: u8) -> AccountId {
    AccountId([0x40 + i; 32])
}

#[test]
fn a_pruned_node_keeps_the_last_blocks_and_says_so_for_older_ones() {
    let (oracle, deposit) = (Keypair::from_seed([2; 32]), Keypair::from_seed([4; 32]));
    let config = ShardConfig { keep_blocks: KEEP, retention_blocks: 4, ..ShardConfig::default() };
    let mut net = Net::with_config(&oracle, &deposit, &[Net::validator()], config, |_| {});
    let mut txs: Vec<(u64, B256)> = Vec::new();
    for i in 0..30u8 {
        let op = Op::Deposit(pb::Deposit { account: account(i).0.to_vec(), amount_micros: 1_000_000 });
        net.run(&deposit, op).expect("deposit");
        let view = net.shard.view();
        let height = view.head().height;
        let block = view.block(height).expect("read").expect("the new block");
        txs.extend(block.txs.iter().map(|t| (height, shardex_core::hash::tx_hash(&t.body))));
    }
    let view = net.shard.view();
    let head = view.head().height;
    let oldest = head + 1 - KEEP;
    assert_eq!(view.oldest_block().expect("oldest"), oldest);
    assert!(view.block(0).expect("read").is_some(), "the genesis block is always kept");
    for h in 1..oldest {
        assert!(view.block(h).expect("read").is_none(), "block {h} was not pruned");
        assert!(view.header(h).expect("read").is_none(), "header {h} was not pruned");
    }
    for h in oldest..=head {
        assert!(view.block(h).expect("read").is_some(), "block {h} is in the window");
    }
    let why = view.missing_block(oldest - 1);
    assert!(why.contains(&format!("holds them from height {oldest} on")) && why.contains("archive"), "{why}");

    // Txs of pruned blocks are forgotten; those in the window are found where they were.
    for (height, hash) in &txs {
        match net.shard.tx_state(hash).expect("tx state") {
            TxState::Included { height: h, .. } => assert!(*height >= oldest && h == *height, "tx at {height}"),
            TxState::Unknown => assert!(*height < oldest, "tx at {height} in the window was forgotten"),
            other => panic!("tx at {height}: {other:?}"),
        }
    }

    // History: a page starting below what is held is refused by name; one inside the window is served.
    let reader = view.history_reader();
    let query = |a: AccountId, height: u64| HistoryQuery {
        account: Some(a),
        from: HistoryPos { height, index: 0 },
        limit: 0,
        prove: true,
    };
    let refused = reader.page(&query(account(0), 1)).expect("page").expect_err("below the window");
    assert_eq!(refused.reason, Reason::NotFound);
    assert!(refused.message.contains(&format!("holds blocks from height {oldest} on")), "{}", refused.message);
    let last = reader.page(&query(account(29), oldest)).expect("page").expect("in the window");
    assert_eq!(last.entries.len(), 1, "the last deposit's receipt");
    let early = reader.page(&query(account(0), oldest)).expect("page").expect("in the window");
    assert!(early.entries.is_empty(), "account 0's receipt was in a pruned block");

    // State is untouched by pruning: every account is there, proven at the head.
    for i in 0..30u8 {
        let read = view.account(&account(i), None, true).expect("read").expect("served");
        assert_eq!(read.record.map(|r| r.collateral_micros), Some(1_000_000), "account {i}");
    }
}

/// With as few blocks kept as state versions retained, the oldest retained state has no block left to carry
/// its proof: a proof there is refused as not found, saying what the node holds, never an internal error.
#[test]
fn a_proof_at_a_retained_height_whose_block_was_pruned_is_not_found() {
    let (oracle, deposit) = (Keypair::from_seed([2; 32]), Keypair::from_seed([4; 32]));
    let config = ShardConfig { keep_blocks: 4, retention_blocks: 4, ..ShardConfig::default() };
    let mut net = Net::with_config(&oracle, &deposit, &[Net::validator()], config, |_| {});
    for i in 0..12u8 {
        let op = Op::Deposit(pb::Deposit { account: account(i).0.to_vec(), amount_micros: 1_000_000 });
        net.run(&deposit, op).expect("deposit");
    }
    let view = net.shard.view();
    let (head, oldest_block) = (view.head().height, view.oldest_block().expect("oldest"));
    let key = shardex_core::state_key::leaf_key(shardex_core::state_key::Namespace::Account, &account(0).0);
    for height in view.oldest_provable_height()..=head {
        match view.prove_key(key, Some(height)).expect("no internal error") {
            Ok(proof) => assert!(height >= oldest_block && proof.height == height, "height {height}"),
            Err(refused) => {
                assert!(height < oldest_block, "height {height} has its block and must be proven");
                assert_eq!(refused.reason, Reason::NotFound);
                assert!(refused.message.contains("holds them from height"), "{}", refused.message);
            }
        }
    }
}
