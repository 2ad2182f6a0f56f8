//! The perpetuals engine in process: seeded random trading among a market maker and takers, with oracle
//! moves, deposits and withdrawals. After every block: money is conserved exactly
//! (Σ collateral − Σ entry notional + fee pool + insurance + funding pool + escrowed = deposited −
//! withdrawn + bridged in − bridged out), the ledger totals' Σ collateral and Σ entry notional equal the
//! sums over every account, positions net to zero, the book is
//! never crossed, and every accepted order that added risk left its account above initial margin.
//! Replay a failure with SHARDEX_TEST_SEED.

mod support;

use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use shardex_core::{
    order::{limit_order, market_order},
    pb::{self, tx_body::Op},
    perp::{health, MarketMath, Position},
    AccountId, Keypair, Lots, Price, Reason, Usd,
};
use shardex_shard_node::shard::Shard;
use support::inproc::Net;

const USD: i64 = 1_000_000;
/// 100,000 USD per BTC.
const PRICE_100K: u64 = 100_000_000_000;
const TICK: u64 = 100_000;
const STEPS: usize = 200;

fn limit(side: pb::Side, price: u64, lots: u64, tif: pb::TimeInForce) -> Op {
    Op::PlaceOrder(limit_order(side, price, lots, tif))
}

fn market(side: pb::Side, lots: u64) -> Op {
    Op::PlaceOrder(market_order(side, lots))
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Snapshot {
    collateral: i64,
    entry: i64,
    size: i64,
    open_buy: u64,
    open_sell: u64,
}

impl Snapshot {
    fn of(shard: &Shard, who: &AccountId) -> Self {
        let v = shard.view().position(who, false).expect("position");
        let p = v.position.unwrap_or_default();
        Self {
            collateral: v.account.map_or(0, |r| r.collateral_micros),
            entry: p.entry_notional_micros,
            size: p.size_lots,
            open_buy: v.open_orders.open_buy_lots,
            open_sell: v.open_orders.open_sell_lots,
        }
    }

    /// Lots held if every resting order on the worse side filled.
    fn risk(&self) -> u128 {
        let s = i128::from(self.size);
        (s + i128::from(self.open_buy)).unsigned_abs().max((s - i128::from(self.open_sell)).unsigned_abs())
    }
}

fn run_seed(seed: u64) {
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    let oracle = Keypair::from_seed([2; 32]);
    let deposit = Keypair::from_seed([4; 32]);
    let mut net = Net::new(&oracle, &deposit, |g| {
        g.market.trading.max_fills_per_order = 8;
        g.market.trading.max_open_orders = 16;
        g.market.trading.oracle_max_age_ms = u64::MAX / 4;
        g.market.trading.price_band_bps = 10_000;
        g.market.trading.funding_interval_ms = 200;
        g.market.trading.funding_clamp_bps = 50;
    });
    let traders: Vec<Keypair> = (20u8..25).map(|i| Keypair::from_seed([i; 32])).collect();
    let accounts: Vec<AccountId> = traders.iter().map(Keypair::account).collect();
    let math = MarketMath::new(1_000, 1_000, 500).expect("market");

    for k in &traders {
        let amount = rng.gen_range(2_000..50_000) as u64 * USD as u64;
        net.submit(&deposit, Op::Deposit(pb::Deposit { account: k.account().0.to_vec(), amount_micros: amount }))
            .expect("deposit");
    }
    let mut mark = PRICE_100K;
    net.submit(&oracle, Op::OracleUpdate(pb::OracleUpdate { price_micros: mark, timestamp_ms: net.clock_ms }))
        .expect("oracle");
    net.block();
    let (mut fills, mut refusals, mut liquidations) = (0usize, 0usize, 0usize);

    for step in 0..STEPS {
        net.clock_ms += 50;
        let who = rng.gen_range(0..traders.len());
        let before = Snapshot::of(&net.shard, &accounts[who]);
        let root_before = net.shard.head().state_root;
        let mut liquidation_target = None;
        let op = match rng.gen_range(0..10) {
            0 => {
                let moved = mark as i64 + rng.gen_range(-30i64..=30) * TICK as i64 * 10;
                mark = moved.max(TICK as i64 * 100) as u64;
                mark -= mark % TICK;
                Op::OracleUpdate(pb::OracleUpdate { price_micros: mark, timestamp_ms: net.clock_ms })
            }
            1 => Op::CancelAll(pb::CancelAll {}),
            2 => market(if rng.gen_bool(0.5) { pb::Side::Buy } else { pb::Side::Sell }, rng.gen_range(1..400)),
            3 => Op::Withdraw(pb::Withdraw { amount_micros: rng.gen_range(1..2_000) as u64 * USD as u64 }),
            4 => {
                let target = accounts[rng.gen_range(0..accounts.len())];
                liquidation_target = Some(target);
                Op::Liquidate(pb::Liquidate { account: target.0.to_vec(), max_size_lots: 0, series: Vec::new() })
            }
            5 if rng.gen_bool(0.2) => {
                // A crash or a spike: 5 to 15 percent.
                let pct = rng.gen_range(5..=15) as u64;
                mark = if rng.gen_bool(0.5) { mark - mark * pct / 100 } else { mark + mark * pct / 100 };
                mark -= mark % TICK;
                Op::OracleUpdate(pb::OracleUpdate { price_micros: mark, timestamp_ms: net.clock_ms })
            }
            _ => {
                let side = if rng.gen_bool(0.5) { pb::Side::Buy } else { pb::Side::Sell };
                let price = (mark as i64 + rng.gen_range(-20i64..=20) * TICK as i64).max(TICK as i64) as u64;
                let tif = match rng.gen_range(0..4) {
                    0 => pb::TimeInForce::Ioc,
                    1 => pb::TimeInForce::PostOnly,
                    _ => pb::TimeInForce::Gtc,
                };
                limit(side, price, rng.gen_range(1..600), tif)
            }
        };
        let is_order = matches!(op, Op::PlaceOrder(_));
        let signer = if matches!(op, Op::OracleUpdate(_)) { &oracle } else { &traders[who] };
        let verdict = net.submit(signer, op);
        net.block();
        match verdict {
            Ok(()) => {
                let after = Snapshot::of(&net.shard, &accounts[who]);
                fills += usize::from(after.size != before.size);
                if let Some(target) = liquidation_target {
                    liquidations += 1;
                    // Auto-deleveraging happens only once the insurance fund is used up.
                    let head = net.shard.head().height;
                    let block = net.shard.view().block(head).expect("block").expect("head block");
                    let adl = block
                        .receipts
                        .iter()
                        .flat_map(|r| &r.events)
                        .any(|e| matches!(e.kind, Some(pb::event::Kind::Deleveraged(_))));
                    if adl {
                        deleveragings(1);
                        let fund = net.shard.view().market(false).expect("market").insurance;
                        assert_eq!(fund.balance_micros, 0, "seed {seed} step {step}: ADL while the fund had money");
                    }
                    let t = Snapshot::of(&net.shard, &target);
                    assert_eq!(t.size, 0, "seed {seed} step {step}: a full liquidation left a position");
                    assert_eq!((t.open_buy, t.open_sell), (0, 0), "seed {seed} step {step}: liquidated orders left");
                }
                if is_order && after.risk() > before.risk() {
                    let pos = Position { size_lots: after.size, entry_notional: Usd::from_micros(after.entry) };
                    let (buys, sells) = (Lots::new(after.open_buy), Lots::new(after.open_sell));
                    let collateral = Usd::from_micros(after.collateral);
                    let h = health(&math, collateral, &pos, buys, sells, Price::from_micros(mark)).expect("health");
                    assert!(h.can_open, "seed {seed} step {step}: an order added risk beyond initial margin: {h:?}");
                }
            }
            Err(r) => {
                refusals += 1;
                assert_eq!(net.shard.head().state_root, root_before, "seed {seed} step {step}: refusal changed state");
                assert!(
                    matches!(
                        r.reason,
                        Reason::InsufficientMargin
                            | Reason::InsufficientCollateral
                            | Reason::WouldCross
                            | Reason::InvalidOp
                            | Reason::NotLiquidatable
                    ),
                    "seed {seed} step {step}: unexpected refusal {r}"
                );
            }
        }
        check(&net.shard, &accounts, seed, step);
    }
    assert!(fills > 10 && refusals > 3, "seed {seed}: too little happened (fills {fills}, refusals {refusals})");
    total_liquidations(liquidations);
}

/// Counts auto-deleveraging events across seeds.
fn deleveragings(n: usize) -> usize {
    use std::sync::atomic::{AtomicUsize, Ordering};
    static TOTAL: AtomicUsize = AtomicUsize::new(0);
    TOTAL.fetch_add(n, Ordering::SeqCst) + n
}

/// Counts funding steps seen across seeds.
fn funding_steps(n: usize) -> usize {
    use std::sync::atomic::{AtomicUsize, Ordering};
    static TOTAL: AtomicUsize = AtomicUsize::new(0);
    TOTAL.fetch_add(n, Ordering::SeqCst) + n
}

/// Counts liquidations across seeds, so the suite can require that some happened.
fn total_liquidations(n: usize) -> usize {
    use std::sync::atomic::{AtomicUsize, Ordering};
    static TOTAL: AtomicUsize = AtomicUsize::new(0);
    TOTAL.fetch_add(n, Ordering::SeqCst) + n
}

/// Invariants at the head.
fn check(shard: &Shard, accounts: &[AccountId], seed: u64, step: usize) {
    let snap: Vec<Snapshot> = accounts.iter().map(|a| Snapshot::of(shard, a)).collect();
    let size: i64 = snap.iter().map(|s| s.size).sum();
    assert_eq!(size, 0, "seed {seed} step {step}: positions do not net to zero");
    // The identity, and the totals' sums against this scan (the bridge terms are zero here: no coordinator).
    support::ledger::check_ledger(shard, accounts, &format!("seed {seed} step {step}"));
    let market = shard.view().market(false).expect("market");
    let fund = market.insurance;
    if market.funding.last_step != 0 {
        funding_steps(1);
    }
    assert!(fund.balance_micros >= 0, "seed {seed} step {step}: insurance fund below zero");
    let negative: u128 = snap.iter().map(|s| s.collateral.min(0).unsigned_abs() as u128).sum();
    assert!(
        negative <= u128::from(fund.bad_debt_micros),
        "seed {seed} step {step}: negative collateral beyond recorded bad debt"
    );
    for s in &snap {
        assert_eq!(s.size == 0, s.entry == 0, "seed {seed} step {step}: flat position with entry notional left");
    }
    let (bids, asks) = shard.view().book_depth(1).expect("book");
    if let (Some(b), Some(a)) = (bids.first(), asks.first()) {
        assert!(b.price_micros < a.price_micros, "seed {seed} step {step}: crossed book");
    }
}

#[test]
fn random_trading_conserves_money() {
    let seeds: Vec<u64> = match std::env::var("SHARDEX_TEST_SEED") {
        Ok(s) => vec![s.parse().expect("SHARDEX_TEST_SEED is a u64")],
        Err(_) => (0..8).collect(),
    };
    let all = seeds.len() > 1;
    for seed in seeds {
        run_seed(seed);
    }
    if all {
        assert!(total_liquidations(0) > 0, "no seed reached a liquidation: the test lost its teeth");
        assert!(funding_steps(0) > 0, "funding never moved: the test lost its teeth");
        eprintln!("liquidations {}, auto-deleveragings {}", total_liquidations(0), deleveragings(0));
    }
}
