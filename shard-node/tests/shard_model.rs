//! The shard against a reference ledger (a `BTreeMap` model): seeded random deposits, withdrawals,
//! replays and overdrafts, blocks at random points, then a reopen. After every block the node's balances
//! equal the model's, conservation holds (Σ collateral = deposited − withdrawn, and the ledger totals' Σ
//! collateral equals it), every rejection is the one the model predicts, and a rejected tx changes nothing.
//! Seeds run with the head cache off, tiny and at its default size. Replay a failure with SHARDEX_TEST_SEED.

mod support;

use std::collections::BTreeMap;

use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use shardex_core::{
    genesis::{Authorities, Genesis},
    pb::{self, tx_body::Op},
    tx::{decode_and_verify, sign_tx, TxDomain, DEFAULT_MAX_TX_BYTES},
    AccountId, ChainId, Keypair, Reason, ShardId,
};
use shardex_shard_node::{
    runtime::produce_one,
    sequencer::SoloSequencer,
    shard::{Shard, ShardConfig, DEFAULT_HEAD_CACHE_ENTRIES},
};

const NONCE_WINDOW: usize = 4;

struct Model {
    balances: BTreeMap<AccountId, i64>,
    nonces: BTreeMap<AccountId, Vec<u64>>,
    deposited: u64,
    withdrawn: u64,
}

impl Model {
    /// What the ledger says about `nonce` for `who`: None if usable.
    fn nonce_reject(&self, who: &AccountId, nonce: u64) -> Option<Reason> {
        let used = self.nonces.get(who).map(Vec::as_slice).unwrap_or(&[]);
        let too_low = used.len() >= NONCE_WINDOW && used.first().is_some_and(|&s| nonce < s);
        (used.contains(&nonce) || too_low).then_some(Reason::NonceUsed)
    }

    fn use_nonce(&mut self, who: AccountId, nonce: u64) {
        let used = self.nonces.entry(who).or_default();
        used.push(nonce);
        used.sort_unstable();
        while used.len() > NONCE_WINDOW {
            used.remove(0);
        }
    }
}

fn genesis(node: &Keypair, deposit: &Keypair) -> Genesis {
    let authorities = Authorities { deposit: deposit.account(), oracle: AccountId([2; 32]), admin: AccountId([3; 32]) };
    let mut g = Genesis::example(authorities, node.account());
    (g.chain_id, g.shard_id, g.market.nonce_window) = (ChainId(5), ShardId(2), NONCE_WINDOW as u32);
    g
}

fn run_seed(seed: u64) {
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    let dir = tempfile::tempdir().expect("tempdir");
    let node = Keypair::from_seed([1; 32]);
    let deposit = Keypair::from_seed([2; 32]);
    let g = genesis(&node, &deposit);
    let domain = TxDomain { chain: g.chain_id, shard: g.shard_id };
    // The head cache off, tiny (evicting all the time) and at its default size.
    let head_cache_entries = [0, 5, DEFAULT_HEAD_CACHE_ENTRIES][seed as usize % 3];
    let config = ShardConfig { max_block_txs: 7, head_cache_entries, ..ShardConfig::default() };
    let open = || {
        let db = shardex_service::storage::open_db(dir.path()).expect("open sled");
        Shard::open(db, g.clone(), node.clone(), config.clone()).expect("open shard")
    };
    let mut shard = open();
    let mut consensus = SoloSequencer::new(node.clone(), domain);
    let users: Vec<Keypair> = (10u8..16).map(|i| Keypair::from_seed([i; 32])).collect();
    let mut model = Model { balances: BTreeMap::new(), nonces: BTreeMap::new(), deposited: 0, withdrawn: 0 };
    let mut next_nonce: BTreeMap<AccountId, u64> = BTreeMap::new();

    for step in 0..300 {
        let user = &users[rng.gen_range(0..users.len())];
        let by_authority = rng.gen_bool(0.4);
        let signer = if by_authority { &deposit } else { user };
        let counter = next_nonce.entry(signer.account()).or_default();
        // Mostly fresh nonces; sometimes a replay or an old one.
        let nonce = if *counter > 0 && rng.gen_bool(0.1) { rng.gen_range(0..*counter) } else { *counter };
        if nonce == *counter {
            *counter += 1;
        }
        // Random amounts, plus the boundaries: zero, the whole balance, one micro-dollar more.
        let balance = model.balances.get(&user.account()).copied().unwrap_or(0).unsigned_abs();
        let amount: u64 = match rng.gen_range(0..20) {
            0 => 0,
            1..=3 if !by_authority => balance,
            4 if !by_authority => balance + 1,
            _ => rng.gen_range(1..5_000_000),
        };
        let op = if by_authority {
            Op::Deposit(pb::Deposit { account: user.account().0.to_vec(), amount_micros: amount })
        } else {
            Op::Withdraw(pb::Withdraw { amount_micros: amount })
        };

        let expected = model.nonce_reject(&signer.account(), nonce).or_else(|| {
            if amount == 0 {
                Some(Reason::InvalidOp)
            } else if !by_authority && model.balances.get(&user.account()).copied().unwrap_or(0) < amount as i64 {
                Some(Reason::InsufficientCollateral)
            } else {
                None
            }
        });

        let tx = sign_tx(signer, domain, nonce, op);
        let bytes = prost::Message::encode_to_vec(&tx);
        let verified = decode_and_verify(&bytes, domain, DEFAULT_MAX_TX_BYTES).expect("well-formed");
        let mempool_before = shard.mempool_len();
        let got = shard.admit(verified, 1).expect("no node error").err().map(|r| r.reason);
        let got = if got == Some(Reason::DuplicateTx) { Some(Reason::NonceUsed) } else { got };
        assert_eq!(got, expected, "seed {seed} step {step}: admission verdict differs from the model");
        if got.is_some() {
            assert_eq!(
                shard.mempool_len(),
                mempool_before,
                "seed {seed} step {step}: a rejected tx entered the mempool"
            );
            continue;
        }
        model.use_nonce(signer.account(), nonce);
        if by_authority {
            *model.balances.entry(user.account()).or_default() += amount as i64;
            model.deposited += amount;
        } else {
            *model.balances.entry(user.account()).or_default() -= amount as i64;
            model.withdrawn += amount;
        }

        if rng.gen_bool(0.15) {
            while shard.mempool_len() > 0 {
                produce_one(&mut shard, &mut consensus).expect("block").expect("non-empty");
            }
            check(&shard, &model, &users, seed, step);
        }
    }
    while shard.mempool_len() > 0 {
        produce_one(&mut shard, &mut consensus).expect("block");
    }
    check(&shard, &model, &users, seed, 300);

    let head = shard.head().clone();
    drop(shard);
    let reopened = open();
    assert_eq!(reopened.head(), &head, "seed {seed}: reopen changed the head");
    check(&reopened, &model, &users, seed, 301);
}

fn check(shard: &Shard, model: &Model, users: &[Keypair], seed: u64, step: usize) {
    let mut sum = 0i64;
    for u in users {
        let rec = shard.view().account(&u.account(), None, false).expect("query").expect("head");
        let balance = rec.record.map_or(0, |r| r.collateral_micros);
        assert_eq!(
            balance,
            model.balances.get(&u.account()).copied().unwrap_or(0),
            "seed {seed} step {step}: balance of {}",
            u.account()
        );
        assert!(balance >= 0, "seed {seed} step {step}: negative collateral");
        sum += balance;
    }
    let totals = shard.view().market(false).expect("market").totals;
    assert_eq!(
        (totals.deposited_micros, totals.withdrawn_micros),
        (model.deposited, model.withdrawn),
        "seed {seed} step {step}: totals"
    );
    assert_eq!(sum as i128, model.deposited as i128 - model.withdrawn as i128, "seed {seed} step {step}: conservation");
    assert_eq!(totals.collateral_micros, sum, "seed {seed} step {step}: collateral total");
    let accounts: Vec<AccountId> = users.iter().map(Keypair::account).collect();
    support::ledger::check_ledger(shard, &accounts, &format!("seed {seed} step {step}"));
}

#[test]
fn shard_matches_reference_ledger() {
    let seeds: Vec<u64> = match std::env::var("SHARDEX_TEST_SEED") {
        Ok(s) => vec![s.parse().expect("SHARDEX_TEST_SEED is a u64")],
        Err(_) => (0..6).collect(),
    };
    for seed in seeds {
        run_seed(seed);
    }
}
