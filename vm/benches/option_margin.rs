//! Cost of an account's option margin check: the requirement of an account holding positions in 32 series
//! over 4 expiries (long and short calls and puts) with 16 resting orders, read from state and marked with
//! Black-76, under the standard rules and under portfolio margin (each series priced in 15 scenarios).
//! `cold` prices every series (a block's first check of them: the block time moves every block, so each
//! block prices its series once); `block` is any later check in the block, which finds the prices memoized.
#![allow(missing_docs)] // criterion macros generate undocumented items

use std::collections::BTreeMap;

use alloy_primitives::B256;
use criterion::{criterion_group, criterion_main, Criterion};
use prost::Message;
use shardex_core::{
    genesis::{Authorities, Genesis},
    option::series::{self, OptionKind, SeriesId},
    pb, AccountId, Keypair, Lots, Price,
};
use shardex_vm::{
    book::{self, Book, BookLimits, NewOrder, Side},
    genesis_changes,
    ops::options::margin::{self, Marks},
    Changes, TxScope,
};

const USD: u64 = 1_000_000;
const NOW: u64 = 1_700_000_000_000;
const HOUR: u64 = 3_600_000;
const SPOT: Price = Price::from_micros(3_000 * USD);

fn state(account: &AccountId) -> (BTreeMap<B256, Vec<u8>>, pb::MarketRecord) {
    let k = |seed| Keypair::from_seed([seed; 32]).account();
    let genesis = Genesis::example_options(Authorities { deposit: k(1), oracle: k(2), admin: k(3) }, k(4));
    let market = genesis.market_record();
    let mut base: BTreeMap<B256, Vec<u8>> =
        genesis_changes(&genesis).into_iter().filter_map(|(key, v)| v.map(|v| (key, v))).collect();
    let mut held = Vec::new();
    for e in 0..4u64 {
        let expiry_ms = (NOW / HOUR + 24 * (e + 1) * 7) * HOUR;
        let points = (0..5)
            .map(|i| pb::VolPoint { strike_micros: (2_000 + 500 * i) * USD, vol_ppm: 900_000 - 50_000 * i as u32 })
            .collect();
        let mut refs = Vec::new();
        for i in 0..8u64 {
            let kind = if i % 2 == 0 { OptionKind::Call } else { OptionKind::Put };
            let s = SeriesId { expiry_ms, strike_micros: (2_600 + 100 * i) * USD, kind };
            refs.push(s.series_ref());
            base.insert(series::series_key(&s), pb::SeriesRecord { state: 1, ..Default::default() }.encode_to_vec());
            let lots = if i % 3 == 0 { 2_000 } else { -1_000 - 100 * i as i64 };
            let position = pb::OptionPositionRecord { size_lots: lots, premium_micros: 0 };
            base.insert(series::position_key(account, &s), position.encode_to_vec());
            held.push(s);
        }
        let expiry = pb::ExpiryRecord { series: refs, vol_timestamp_ms: NOW, vol_points: points, ..Default::default() };
        base.insert(series::expiry_key(expiry_ms), expiry.encode_to_vec());
    }
    held.sort();
    let list = pb::AccountSeriesRecord { series: held.iter().map(|s| s.to_bytes().to_vec()).collect() };
    base.insert(series::account_series_key(account), list.encode_to_vec());
    // 16 resting orders on 16 of the series, half buys and half sells.
    let limits = BookLimits {
        max_price_levels: 512,
        max_open_orders_per_account: 128,
        max_fills_per_order: 64,
        max_evicted_orders: 64,
    };
    let empty = Changes::new();
    let mut scope = TxScope::new(&base, &empty);
    for (i, s) in held.iter().take(16).enumerate() {
        let side = if i % 2 == 0 { Side::Buy } else { Side::Sell };
        let price = if side == Side::Buy { 10 * USD } else { 900 * USD };
        let new = NewOrder {
            book: Book::Series(*s),
            owner: *account,
            side,
            price: Price::from_micros(price),
            lots: Lots::new(500),
            client_order_id: 0,
            reduce_only: false,
            placed_height: 1,
        };
        book::rest(&mut scope, &new, &limits).expect("rests");
    }
    for (key, value) in scope.into_writes() {
        match value {
            Some(v) => base.insert(key, v),
            None => base.remove(&key),
        };
    }
    (base, market)
}

fn option_margin(c: &mut Criterion) {
    let account = AccountId([7; 32]);
    let (base, market) = state(&account);
    let p = market.options.expect("an options market");
    let empty = Changes::new();
    let mut group = c.benchmark_group("option_margin");
    // A new block time each iteration: nothing is memoized.
    let mut now = NOW;
    group.bench_function("cold_32_series_16_orders", |b| {
        b.iter(|| {
            now += 1;
            let mut scope = TxScope::new(&base, &empty);
            let mut marks = Marks::new(SPOT, now);
            margin::account(&mut scope, &market, &p, &account, &mut marks).expect("requirement")
        })
    });
    group.bench_function("block_32_series_16_orders", |b| {
        b.iter(|| {
            let mut scope = TxScope::new(&base, &empty);
            let mut marks = Marks::new(SPOT, NOW);
            margin::account(&mut scope, &market, &p, &account, &mut marks).expect("requirement")
        })
    });
    let shocks = series::shocks(&p).expect("the example market offers portfolio margin");
    group.bench_function("portfolio_cold_32_series_16_orders", |b| {
        b.iter(|| {
            now += 1;
            let mut scope = TxScope::new(&base, &empty);
            let mut marks = Marks::new(SPOT, now);
            margin::requirement(&mut scope, &market, &p, &account, &mut marks, Some(&shocks)).expect("requirement")
        })
    });
    group.bench_function("portfolio_block_32_series_16_orders", |b| {
        b.iter(|| {
            let mut scope = TxScope::new(&base, &empty);
            let mut marks = Marks::new(SPOT, NOW);
            margin::requirement(&mut scope, &market, &p, &account, &mut marks, Some(&shocks)).expect("requirement")
        })
    });
    group.finish();
}

criterion_group!(benches, option_margin);
criterion_main!(benches);
