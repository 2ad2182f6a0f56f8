//! Orders/s on an options market with 100 live series, without network or disk: `Shard::admit` executes
//! each order (series checks, matching on the series' book, premium and fee settlement, positions, and the
//! taker's option margin with Black-76 marks) exactly as the node does at admission. Signatures are
//! verified before the timed part; blocks are produced between chunks of orders, untimed.
//!
//! The market: 4 expiries (30 to 120 days out) of 25 series each (13 calls, 12 puts around spot 3,000),
//! 5 volatility points an expiry. Four makers each quote both sides of 25 series, deep. Sixteen takers send
//! 1-lot market orders that buy and then sell back one series after another, so every order fills and the
//! takers stay nearly flat. `ioc_fill_100_series` margins the takers by the standard rules,
//! `ioc_fill_100_series_portfolio` by portfolio margin (each series they touch priced in 15 scenarios).

#![allow(missing_docs)]

use std::{
    collections::HashMap,
    time::{Duration, Instant},
};

use criterion::{criterion_group, Criterion, Throughput};
use shardex_core::{
    genesis::{Authorities, Genesis, OptionsParams},
    option::series::{OptionKind, SeriesId},
    order::{market_order, option_order},
    pb::{self, tx_body::Op},
    tx::{decode_and_verify, sign_tx, TxDomain, VerifiedTx, DEFAULT_MAX_TX_BYTES},
    AccountId, Keypair,
};
use shardex_shard_node::{
    sequencer::{Consensus, SoloSequencer},
    shard::{Shard, ShardConfig},
};

const USD: u64 = 1_000_000;
const SPOT: u64 = 3_000 * USD;
const HOUR: u64 = 3_600_000;
const DAY: u64 = 24 * HOUR;
const CHUNK: u64 = 500;
const BLOCK_MS: u64 = 100;
const TAKERS: u8 = 16;
const MAKERS: usize = 4;
const MAKER_LOTS: u64 = 1_000_000;

fn key(seed: u8) -> Keypair {
    Keypair::from_seed([seed; 32])
}

struct Market {
    shard: Shard,
    consensus: SoloSequencer,
    domain: TxDomain,
    nonces: HashMap<AccountId, u64>,
    clock_ms: u64,
    series: Vec<SeriesId>,
    takers: Vec<Keypair>,
    i: u64,
    _dir: tempfile::TempDir,
}

impl Market {
    fn open(portfolio: bool) -> Self {
        let dir = tempfile::tempdir().expect("tempdir");
        let (node, deposit, oracle, admin) = (key(1), key(2), key(3), key(4));
        let authorities = Authorities { deposit: deposit.account(), oracle: oracle.account(), admin: admin.account() };
        let mut genesis = Genesis::example_options(authorities, node.account());
        // Spot and volatility are published once; they must not go stale while the bench runs.
        genesis.market.trading.oracle_max_age_ms = u64::MAX / 4;
        genesis.market.options = Some(OptionsParams { vol_max_age_ms: u64::MAX / 4, ..OptionsParams::default() });
        let domain = TxDomain { chain: genesis.chain_id, shard: genesis.shard_id };
        let db = sled::Config::new().path(dir.path()).open().expect("sled");
        let shard = Shard::open(db, genesis.clone(), node.clone(), ShardConfig::default()).expect("open shard");
        let clock_ms = (genesis.genesis_time_ms / HOUR + 1) * HOUR;
        let mut m = Self {
            shard,
            consensus: SoloSequencer::new(node, domain),
            domain,
            nonces: HashMap::new(),
            clock_ms,
            series: Vec::new(),
            takers: (0..TAKERS).map(|i| key(100 + i)).collect(),
            i: 0,
            _dir: dir,
        };
        m.submit(&oracle, Op::OracleUpdate(pb::OracleUpdate { price_micros: SPOT, timestamp_ms: clock_ms }));
        for e in 1..=4u64 {
            let expiry_ms = clock_ms + 30 * DAY * e;
            for i in 0..25u64 {
                let kind = if i % 2 == 0 { OptionKind::Call } else { OptionKind::Put };
                let s = SeriesId { expiry_ms, strike_micros: (2_400 + 50 * i) * USD, kind };
                let op = pb::ListSeries { expiry_ms, strike_micros: s.strike_micros, kind: kind.to_pb() as i32 };
                m.submit(&admin, Op::ListSeries(op));
                m.series.push(s);
            }
            let points = (0..5u64)
                .map(|p| pb::VolPoint { strike_micros: (2_400 + 300 * p) * USD, vol_ppm: 900_000 - 40_000 * p as u32 })
                .collect();
            m.submit(&oracle, Op::VolUpdate(pb::VolUpdate { expiry_ms, timestamp_ms: clock_ms, points }));
        }
        m.produce();
        for (k, chunk) in m.series.clone().chunks(25).enumerate() {
            let maker = key(10 + k as u8);
            m.fund(&deposit, &maker, 1_000_000_000);
            m.produce();
            for s in chunk {
                let strike_usd = s.strike_micros / USD;
                // Quotes around a rough value: wide enough never to cross, inside every premium bound.
                let (bid, ask) = (USD, (strike_usd.min(3_000) / 2) * USD);
                for (side, price) in [(pb::Side::Buy, bid), (pb::Side::Sell, ask)] {
                    m.submit(&maker, Op::PlaceOrder(option_order(s, side, price, MAKER_LOTS, pb::TimeInForce::Gtc)));
                }
            }
            m.produce();
        }
        assert_eq!(MAKERS * 25, m.series.len());
        for t in m.takers.clone() {
            m.fund(&deposit, &t, 10_000_000);
            if portfolio {
                m.submit(&t, Op::SetMarginMode(pb::SetMarginMode { portfolio: true }));
            }
        }
        m.produce();
        m
    }

    fn sign(&mut self, signer: &Keypair, op: Op) -> VerifiedTx {
        let nonce = self.nonces.entry(signer.account()).or_default();
        let tx = sign_tx(signer, self.domain, *nonce, op);
        *nonce += 1;
        decode_and_verify(&prost::Message::encode_to_vec(&tx), self.domain, DEFAULT_MAX_TX_BYTES).expect("verifies")
    }

    fn admit(&mut self, tx: VerifiedTx) {
        match self.shard.admit(tx, self.clock_ms) {
            Ok(Ok(())) => {}
            Ok(Err(reject)) => panic!("order refused: {reject}"),
            Err(e) => panic!("node error: {e}"),
        }
    }

    fn submit(&mut self, signer: &Keypair, op: Op) {
        let tx = self.sign(signer, op);
        self.admit(tx);
    }

    fn fund(&mut self, deposit: &Keypair, who: &Keypair, usd: u64) {
        self.submit(deposit, Op::Deposit(pb::Deposit { account: who.account().0.to_vec(), amount_micros: usd * USD }));
    }

    fn produce(&mut self) {
        while self.shard.mempool_len() > 0 {
            self.clock_ms += BLOCK_MS;
            let proposal = self.shard.propose().expect("propose").expect("a pending tx");
            let signatures = self.consensus.decide(&proposal).expect("decide");
            self.shard.apply(proposal, signatures).expect("apply");
        }
    }

    /// The next taker order: a 1-lot market buy of a series, then the same taker sells it back.
    fn next(&mut self) -> VerifiedTx {
        let taker = self.takers[(self.i % u64::from(TAKERS)) as usize].clone();
        let round = self.i / u64::from(TAKERS);
        self.i += 1;
        let s = self.series[(round / 2 % self.series.len() as u64) as usize];
        let side = if round.is_multiple_of(2) { pb::Side::Buy } else { pb::Side::Sell };
        self.sign(&taker, Op::PlaceOrder(pb::PlaceOrder { series: s.to_bytes().to_vec(), ..market_order(side, 1) }))
    }
}

fn run(m: &mut Market, iters: u64) -> Duration {
    let mut timed = Duration::ZERO;
    let mut left = iters;
    while left > 0 {
        let n = left.min(CHUNK);
        let orders: Vec<_> = (0..n).map(|_| m.next()).collect();
        for order in orders {
            let start = Instant::now();
            m.admit(order);
            timed += start.elapsed();
        }
        m.produce();
        left -= n;
    }
    timed
}

fn options_matching(c: &mut Criterion) {
    let mut group = c.benchmark_group("options_matching");
    group.throughput(Throughput::Elements(1)).sample_size(20).measurement_time(Duration::from_secs(8));
    let mut m = Market::open(false);
    group.bench_function("ioc_fill_100_series", |b| b.iter_custom(|iters| run(&mut m, iters)));
    let mut m = Market::open(true);
    group.bench_function("ioc_fill_100_series_portfolio", |b| b.iter_custom(|iters| run(&mut m, iters)));
    group.finish();
}

criterion_group!(benches, options_matching);

fn main() {
    benches();
    Criterion::default().configure_from_args().final_summary();
}
