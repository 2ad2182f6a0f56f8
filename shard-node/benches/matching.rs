//! Orders/s through the VM's order path, without network or disk: `Shard::admit` executes each order
//! against head + pending state (validation, matching, per-fill settlement, resting, margin) exactly as
//! the node does at admission. Signatures are verified before the timed part (core's `signatures` bench
//! measures them); blocks are produced between chunks of orders, untimed, to keep the mempool bounded,
//! and their cost per order is reported on stderr.
//!
//! Scenarios: `ioc_fill_1_level` (a taker IOC order filled by one resting maker order), `rest_no_cross`
//! (a limit order that rests; the book grows to ~1,600 orders on 2 × 50 levels, then is cleared) and
//! `sweep_5_levels` (an IOC order that fills 5 makers on 5 levels; the levels are re-seeded, untimed,
//! before each sweep). Keys and every order are deterministic.

#![allow(missing_docs)]

use std::{
    collections::HashMap,
    time::{Duration, Instant},
};

use criterion::{criterion_group, Criterion, Throughput};
use shardex_core::{
    genesis::{Authorities, Genesis},
    order::limit_order,
    pb::{self, tx_body::Op},
    tx::{decode_and_verify, sign_tx, TxDomain, VerifiedTx, DEFAULT_MAX_TX_BYTES},
    AccountId, Keypair,
};
use shardex_shard_node::{
    sequencer::{Consensus, SoloSequencer},
    shard::{Shard, ShardConfig},
};

const USD: u64 = 1_000_000;
/// 100,000 USD per BTC: the oracle price, fixed for the whole run.
const MARK: u64 = 100_000_000_000;
const TICK: u64 = 100_000;
/// Orders admitted between two rounds of block production (one 100 ms block at 5k orders/s).
const CHUNK: u64 = 500;
/// Block interval of the simulated clock.
const BLOCK_MS: u64 = 100;
const TAKERS: u8 = 16;
/// Resting orders per account before `rest_no_cross` clears the book (the market allows 128).
const REST_PER_ACCOUNT: u64 = 100;
/// Price levels per side `rest_no_cross` spreads its orders over.
const REST_LEVELS: u64 = 50;
const SWEEP_LEVELS: u64 = 5;

fn key(seed: u8) -> Keypair {
    Keypair::from_seed([seed; 32])
}

fn limit(side: pb::Side, price_micros: u64, size_lots: u64, tif: pb::TimeInForce) -> Op {
    Op::PlaceOrder(limit_order(side, price_micros, size_lots, tif))
}

/// Alternating sides keep every account's position near flat, so margin never ends a run.
fn side_of(i: u64) -> pb::Side {
    if i.is_multiple_of(2) {
        pb::Side::Buy
    } else {
        pb::Side::Sell
    }
}

/// Where the block-production time went, reported once per scenario.
#[derive(Default)]
struct BlockCost {
    propose: Duration,
    apply: Duration,
    txs: u64,
    blocks: u64,
}

/// One market on a temporary sled with a fixed clock.
struct Market {
    shard: Shard,
    consensus: SoloSequencer,
    domain: TxDomain,
    deposit: Keypair,
    oracle: Keypair,
    nonces: HashMap<AccountId, u64>,
    clock_ms: u64,
    blocks: BlockCost,
    _dir: tempfile::TempDir,
}

impl Market {
    fn open() -> Self {
        let dir = tempfile::tempdir().expect("tempdir");
        let (node, deposit, oracle) = (key(1), key(2), key(3));
        let authorities =
            Authorities { deposit: deposit.account(), oracle: oracle.account(), admin: AccountId([4; 32]) };
        let mut genesis = Genesis::example(authorities, node.account());
        // The oracle price is published once; it must not go stale while the bench runs.
        genesis.market.trading.oracle_max_age_ms = u64::MAX / 4;
        let domain = TxDomain { chain: genesis.chain_id, shard: genesis.shard_id };
        let db = sled::Config::new().path(dir.path()).open().expect("sled");
        let shard = Shard::open(db, genesis.clone(), node.clone(), ShardConfig::default()).expect("open shard");
        let mut m = Self {
            shard,
            consensus: SoloSequencer::new(node, domain),
            domain,
            deposit,
            oracle,
            nonces: HashMap::new(),
            clock_ms: genesis.genesis_time_ms + 1_000,
            blocks: BlockCost::default(),
            _dir: dir,
        };
        let update = Op::OracleUpdate(pb::OracleUpdate { price_micros: MARK, timestamp_ms: m.clock_ms });
        let tx = m.sign(&m.oracle.clone(), update);
        m.admit(tx);
        m.produce();
        m
    }

    /// Signs and verifies `op` with the signer's next nonce (never timed).
    fn sign(&mut self, signer: &Keypair, op: Op) -> VerifiedTx {
        let nonce = self.nonces.entry(signer.account()).or_default();
        let tx = sign_tx(signer, self.domain, *nonce, op);
        *nonce += 1;
        decode_and_verify(&prost::Message::encode_to_vec(&tx), self.domain, DEFAULT_MAX_TX_BYTES).expect("verifies")
    }

    /// Admits `tx`; a refusal means the scenario is broken, not slow.
    fn admit(&mut self, tx: VerifiedTx) {
        match self.shard.admit(tx, self.clock_ms) {
            Ok(Ok(())) => {}
            Ok(Err(reject)) => panic!("order refused: {reject}"),
            Err(e) => panic!("node error: {e}"),
        }
    }

    fn fund(&mut self, who: &Keypair, usd: u64) {
        let op = Op::Deposit(pb::Deposit { account: who.account().0.to_vec(), amount_micros: usd * USD });
        let tx = self.sign(&self.deposit.clone(), op);
        self.admit(tx);
    }

    /// Produces blocks until the mempool is empty, timing propose (state root of the sealed block) and apply
    /// (one sled batch + flush) separately.
    fn produce(&mut self) {
        while self.shard.mempool_len() > 0 {
            self.clock_ms += BLOCK_MS;
            let t = Instant::now();
            let proposal = self.shard.propose().expect("propose").expect("a pending tx");
            let txs = proposal.header.tx_count;
            let signatures = self.consensus.decide(&proposal).expect("decide");
            let t_apply = Instant::now();
            self.shard.apply(proposal, signatures).expect("apply");
            self.blocks.propose += t_apply - t;
            self.blocks.apply += t_apply.elapsed();
            self.blocks.txs += u64::from(txs);
            self.blocks.blocks += 1;
        }
    }

    /// Lots resting at the best `levels` prices of each side.
    fn depth(&self, levels: usize) -> (Vec<pb::BookLevel>, Vec<pb::BookLevel>) {
        self.shard.view().book_depth(levels).expect("book depth")
    }

    fn report(&self, name: &str) {
        let b = &self.blocks;
        if b.txs == 0 {
            return;
        }
        let per = |d: Duration| d.as_secs_f64() * 1e6 / b.txs as f64;
        eprintln!(
            "{name}: block production over {} txs in {} blocks: propose {:.1} µs/tx, apply {:.1} µs/tx (untimed)",
            b.txs,
            b.blocks,
            per(b.propose),
            per(b.apply)
        );
    }
}

/// A benchmark scenario: untimed preparation, then the one order whose admission is timed.
trait Scenario {
    /// Untimed: keep the book in the shape the scenario needs before a chunk of orders.
    fn reseed(&mut self, m: &mut Market, chunk: u64);
    /// Untimed: orders to admit before the next timed order, and the timed order itself.
    fn next(&mut self, m: &mut Market) -> (Vec<VerifiedTx>, VerifiedTx);
}

/// A taker IOC order of 1 lot against one deep maker order per side at ±1 tick.
struct IocFill {
    maker: Keypair,
    takers: Vec<Keypair>,
    i: u64,
}

impl IocFill {
    const MAKER_LOTS: u64 = 1_000_000;

    fn new(m: &mut Market) -> Self {
        let maker = key(10);
        m.fund(&maker, 1_000_000_000);
        let takers: Vec<Keypair> = (0..TAKERS).map(|i| key(100 + i)).collect();
        for t in &takers {
            m.fund(t, 1_000_000);
        }
        m.produce();
        Self { maker, takers, i: 0 }
    }
}

impl Scenario for IocFill {
    fn reseed(&mut self, m: &mut Market, chunk: u64) {
        let (bids, asks) = m.depth(1);
        let lots = |l: &[pb::BookLevel]| l.first().map_or(0, |l| l.total_lots);
        for (side, price, have) in
            [(pb::Side::Buy, MARK - TICK, lots(&bids)), (pb::Side::Sell, MARK + TICK, lots(&asks))]
        {
            if have <= chunk {
                let tx = m.sign(&self.maker.clone(), limit(side, price, Self::MAKER_LOTS, pb::TimeInForce::Gtc));
                m.admit(tx);
            }
        }
        m.produce();
    }

    fn next(&mut self, m: &mut Market) -> (Vec<VerifiedTx>, VerifiedTx) {
        let side = side_of(self.i / u64::from(TAKERS));
        let taker = &self.takers[(self.i % u64::from(TAKERS)) as usize];
        self.i += 1;
        let price = if side == pb::Side::Buy { MARK + TICK } else { MARK - TICK };
        (Vec::new(), m.sign(taker, limit(side, price, 1, pb::TimeInForce::Ioc)))
    }
}

/// A 1-lot GTC order that rests below the bid or above the ask, on one of 50 levels per side.
struct RestNoCross {
    accounts: Vec<Keypair>,
    i: u64,
}

impl RestNoCross {
    fn new(m: &mut Market) -> Self {
        let accounts: Vec<Keypair> = (0..TAKERS).map(|i| key(150 + i)).collect();
        for a in &accounts {
            m.fund(a, 1_000_000);
        }
        m.produce();
        Self { accounts, i: 0 }
    }
}

impl Scenario for RestNoCross {
    fn reseed(&mut self, m: &mut Market, chunk: u64) {
        let per_account = self.i / u64::from(TAKERS);
        if per_account + chunk.div_ceil(u64::from(TAKERS)) > REST_PER_ACCOUNT {
            for a in self.accounts.clone() {
                let tx = m.sign(&a, Op::CancelAll(pb::CancelAll {}));
                m.admit(tx);
            }
            self.i = 0;
        }
        m.produce();
    }

    fn next(&mut self, m: &mut Market) -> (Vec<VerifiedTx>, VerifiedTx) {
        let n = self.i / u64::from(TAKERS);
        let account = &self.accounts[(self.i % u64::from(TAKERS)) as usize];
        self.i += 1;
        let side = side_of(n);
        let away = (1 + n / 2 % REST_LEVELS) * TICK;
        let price = if side == pb::Side::Buy { MARK - away } else { MARK + away };
        (Vec::new(), m.sign(account, limit(side, price, 1, pb::TimeInForce::Gtc)))
    }
}

/// An IOC order of 5 lots that fills 5 one-lot maker orders on the 5 best levels of one side.
struct Sweep {
    makers: Vec<Keypair>,
    takers: Vec<Keypair>,
    i: u64,
}

impl Sweep {
    fn new(m: &mut Market) -> Self {
        let makers: Vec<Keypair> = (0..SWEEP_LEVELS as u8).map(|i| key(200 + i)).collect();
        let takers: Vec<Keypair> = (0..TAKERS).map(|i| key(220 + i)).collect();
        for k in makers.iter().chain(&takers) {
            m.fund(k, 1_000_000);
        }
        m.produce();
        Self { makers, takers, i: 0 }
    }

    /// One maker order per level on `side`, maker k at k+1 ticks from the mark.
    fn quotes(&self, m: &mut Market, side: pb::Side) -> Vec<VerifiedTx> {
        (0..SWEEP_LEVELS)
            .map(|k| {
                let away = (k + 1) * TICK;
                let price = if side == pb::Side::Buy { MARK - away } else { MARK + away };
                m.sign(&self.makers[k as usize], limit(side, price, 1, pb::TimeInForce::Gtc))
            })
            .collect()
    }
}

impl Scenario for Sweep {
    fn reseed(&mut self, m: &mut Market, _chunk: u64) {
        m.produce();
    }

    fn next(&mut self, m: &mut Market) -> (Vec<VerifiedTx>, VerifiedTx) {
        let taker_side = side_of(self.i / u64::from(TAKERS));
        let taker = &self.takers[(self.i % u64::from(TAKERS)) as usize];
        self.i += 1;
        let maker_side = if taker_side == pb::Side::Buy { pb::Side::Sell } else { pb::Side::Buy };
        let quotes = self.quotes(m, maker_side);
        let away = SWEEP_LEVELS * TICK;
        let price = if taker_side == pb::Side::Buy { MARK + away } else { MARK - away };
        (quotes, m.sign(taker, limit(taker_side, price, SWEEP_LEVELS, pb::TimeInForce::Ioc)))
    }
}

/// Admits `iters` timed orders in chunks of [`CHUNK`], producing blocks between chunks. Only the admission
/// of each scenario's timed order counts.
fn run(m: &mut Market, scenario: &mut dyn Scenario, iters: u64) -> Duration {
    let mut timed = Duration::ZERO;
    let mut left = iters;
    while left > 0 {
        let n = left.min(CHUNK);
        scenario.reseed(m, n);
        let steps: Vec<_> = (0..n).map(|_| scenario.next(m)).collect();
        for (prep, order) in steps {
            for tx in prep {
                m.admit(tx);
            }
            let start = Instant::now();
            m.admit(order);
            timed += start.elapsed();
        }
        m.produce();
        left -= n;
    }
    timed
}

type Setup = fn(&mut Market) -> Box<dyn Scenario>;

/// Every scenario with its (untimed) setup.
fn scenarios() -> [(&'static str, Setup); 3] {
    [
        ("ioc_fill_1_level", |m| Box::new(IocFill::new(m))),
        ("rest_no_cross", |m| Box::new(RestNoCross::new(m))),
        ("sweep_5_levels", |m| Box::new(Sweep::new(m))),
    ]
}

fn matching(c: &mut Criterion) {
    let mut group = c.benchmark_group("matching");
    group.throughput(Throughput::Elements(1)).sample_size(20).measurement_time(Duration::from_secs(8));

    for (name, setup) in scenarios() {
        let mut m = Market::open();
        let mut scenario = setup(&mut m);
        group.bench_function(name, |b| b.iter_custom(|iters| run(&mut m, scenario.as_mut(), iters)));
        m.report(name);
    }
    group.finish();
}

criterion_group!(benches, matching);
/// `SHARDEX_BENCH_FIXED=N matching [scenario]`: admits exactly N timed orders per scenario (those whose name
/// contains `scenario`) without criterion and prints the time per order, so that a run does a fixed amount
/// of work and two builds can be compared by instruction count (e.g. under callgrind), which the machine's
/// load does not disturb. Otherwise the criterion benchmarks above.
fn main() {
    let Ok(n) = std::env::var("SHARDEX_BENCH_FIXED") else {
        benches();
        Criterion::default().configure_from_args().final_summary();
        return;
    };
    let n: u64 = n.parse().expect("SHARDEX_BENCH_FIXED is a number of orders");
    let which = std::env::args().skip(1).find(|a| !a.starts_with('-')).unwrap_or_default();
    for (name, setup) in scenarios() {
        if !name.contains(&which) {
            continue;
        }
        let mut m = Market::open();
        let mut scenario = setup(&mut m);
        let timed = run(&mut m, scenario.as_mut(), n);
        eprintln!("{name}: {n} orders, {:.3} µs/order", timed.as_secs_f64() * 1e6 / n as f64);
        m.report(name);
    }
}
