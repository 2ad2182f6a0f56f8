//! The option chain of an options market, in process: the admin lists series within the market's limits,
//! the oracle sets each expiry's volatility by strike, and every bad listing or update is refused with its
//! reason and changes nothing. A perpetual market lists nothing, and an options market trades no perpetual.

mod support;

use prost::Message;
use shardex_core::{
    genesis::{Genesis, OptionsParams},
    option::series::{self, OptionKind, SeriesId},
    order::limit_order,
    pb::{self, tx_body::Op, Side, TimeInForce},
    Keypair, Reason,
};
use support::inproc::Net;

const HOUR: u64 = 3_600_000;
const USD: u64 = 1_000_000;

fn options_genesis(g: &mut Genesis) {
    g.market.symbol = "ETH-OPTIONS".into();
    g.market.trading.funding_interval_ms = 0;
    g.market.options = Some(OptionsParams {
        max_expiries: 2,
        max_series_per_expiry: 3,
        max_vol_points: 4,
        ..OptionsParams::default()
    });
}

fn keys() -> (Keypair, Keypair) {
    (Keypair::from_seed([2; 32]), Keypair::from_seed([4; 32]))
}

/// The first two expiries on the hour that may be listed at `now` (at least an hour ahead).
fn expiries(now: u64) -> (u64, u64) {
    let first = (now + HOUR).div_ceil(HOUR) * HOUR;
    (first, first + 24 * HOUR)
}

fn list(expiry_ms: u64, strike_usd: u64, kind: OptionKind) -> Op {
    Op::ListSeries(pb::ListSeries { expiry_ms, strike_micros: strike_usd * USD, kind: kind.to_pb() as i32 })
}

fn vol(expiry_ms: u64, timestamp_ms: u64, points: &[(u64, u32)]) -> Op {
    let points = points.iter().map(|&(s, v)| pb::VolPoint { strike_micros: s * USD, vol_ppm: v }).collect();
    Op::VolUpdate(pb::VolUpdate { expiry_ms, timestamp_ms, points })
}

/// The record at `key` at the head, decoded (default when absent).
fn record<M: Message + Default>(net: &Net, key: alloy_primitives::B256) -> M {
    let proof = net.shard.view().prove_key(key, None).expect("no node error").expect("head is provable");
    M::decode(proof.value.as_slice()).expect("record decodes")
}

fn chain(net: &Net) -> pb::OptionChainRecord {
    record(net, series::chain_key())
}

fn expiry(net: &Net, expiry_ms: u64) -> pb::ExpiryRecord {
    record(net, series::expiry_key(expiry_ms))
}

fn refused(net: &mut Net, key: &Keypair, op: Op, reason: Reason, says: &str) {
    let root = net.shard.head().state_root;
    let e = net.run(key, op).expect_err("refused");
    assert_eq!(e.reason, reason, "{}", e.message);
    assert!(e.message.contains(says), "{:?} should say {says:?}", e.message);
    assert_eq!(net.shard.head().state_root, root, "a refused op changed state");
}

fn head_events(net: &Net) -> Vec<pb::event::Kind> {
    let block = net.shard.view().block(net.shard.head().height).expect("no node error").expect("head block");
    block.receipts.iter().flat_map(|r| r.events.iter().filter_map(|e| e.kind.clone())).collect()
}

#[test]
fn the_admin_lists_series_in_order_within_the_chain_limits() {
    let (oracle, deposit) = keys();
    let mut net = Net::new(&oracle, &deposit, options_genesis);
    let admin = Net::admin();
    let (e1, e2) = expiries(net.clock_ms);
    let market = net.shard.view().market(false).expect("market").market;
    assert_eq!(market.kind, pb::MarketKind::Options as i32);

    net.run(&admin, list(e2, 2_000, OptionKind::Put)).expect("first listing opens e2");
    assert_eq!(
        head_events(&net),
        vec![pb::event::Kind::SeriesListed(pb::SeriesListed {
            expiry_ms: e2,
            strike_micros: 2_000 * USD,
            kind: pb::OptionKind::Put as i32
        })]
    );
    for (strike, kind) in [(2_000, OptionKind::Call), (1_900, OptionKind::Put), (1_900, OptionKind::Call)] {
        net.run(&admin, list(e1, strike, kind)).expect("listed");
    }
    assert_eq!(chain(&net), pb::OptionChainRecord { expiries: vec![e1, e2], series_count: 4 });
    let refs = |s: &[(u64, OptionKind)]| {
        s.iter()
            .map(|&(k, kind)| pb::SeriesRef { strike_micros: k * USD, kind: kind.to_pb() as i32 })
            .collect::<Vec<_>>()
    };
    let want = refs(&[(1_900, OptionKind::Call), (1_900, OptionKind::Put), (2_000, OptionKind::Call)]);
    assert_eq!(expiry(&net, e1).series, want, "series in (strike, kind) order");
    let id = SeriesId { expiry_ms: e1, strike_micros: 1_900 * USD, kind: OptionKind::Put };
    let s: pb::SeriesRecord = record(&net, series::series_key(&id));
    assert_eq!((s.state, s.listed_ms), (pb::SeriesState::Active as i32, net.clock_ms));

    let trader = support::account(7).0;
    refused(&mut net, &trader, list(e2, 2_100, OptionKind::Call), Reason::Unauthorized, "admin key");
    refused(&mut net, &admin, list(e1, 1_900, OptionKind::Put), Reason::InvalidOp, "already listed");
    refused(&mut net, &admin, list(e1, 2_100, OptionKind::Call), Reason::InvalidOp, "already has 3 series");
    refused(&mut net, &admin, list(e2 + 24 * HOUR, 2_000, OptionKind::Call), Reason::InvalidOp, "2 live expiries");
    let off_tick = Op::ListSeries(pb::ListSeries { expiry_ms: e2, strike_micros: 2_000 * USD + 1, kind: 1 });
    refused(&mut net, &admin, off_tick, Reason::InvalidOp, "multiple of the tick");
    refused(&mut net, &admin, list(e1 - HOUR, 2_000, OptionKind::Call), Reason::InvalidOp, "after block time");
    refused(&mut net, &admin, list(e2 + 1, 2_000, OptionKind::Call), Reason::InvalidOp, "expiry step");
    let no_kind = Op::ListSeries(pb::ListSeries { expiry_ms: e2, strike_micros: 2_000 * USD, kind: 0 });
    refused(&mut net, &admin, no_kind, Reason::InvalidOp, "call or put");
    net.run(&admin, list(e2, 2_100, OptionKind::Call)).expect("the second expiry still has room");
    assert_eq!(chain(&net).series_count, 5);
}

#[test]
fn the_oracle_sets_an_expiry_volatility_by_strike_in_time_order() {
    let (oracle, deposit) = keys();
    let mut net = Net::new(&oracle, &deposit, options_genesis);
    let (e1, e2) = expiries(net.clock_ms);
    net.run(&Net::admin(), list(e1, 2_000, OptionKind::Call)).expect("listed");
    let t0 = net.clock_ms;
    net.run(&oracle, vol(e1, t0, &[(1_500, 900_000), (2_000, 700_000), (2_500, 750_000)])).expect("vol");
    assert_eq!(
        head_events(&net),
        vec![pb::event::Kind::VolUpdated(pb::VolUpdated {
            expiry_ms: e1,
            timestamp_ms: t0,
            points: 3,
            jump_ppm: 0,
            post_only_until_ms: 0
        })]
    );
    let stored = expiry(&net, e1);
    assert_eq!(stored.vol_timestamp_ms, t0);
    assert_eq!(series::vol_at(&stored.vol_points, 1_750 * USD), Some(800_000));
    assert_eq!(series::vol_at(&stored.vol_points, 3_000 * USD), Some(750_000));

    refused(&mut net, &Net::admin(), vol(e1, t0 + 1, &[(2_000, 1)]), Reason::Unauthorized, "oracle key");
    refused(&mut net, &oracle, vol(e2, t0 + 1, &[(2_000, 500_000)]), Reason::InvalidOp, "no listed series");
    refused(&mut net, &oracle, vol(e1, t0, &[(2_000, 500_000)]), Reason::InvalidOp, "later than");
    refused(&mut net, &oracle, vol(e1, t0 + 60_000, &[(2_000, 500_000)]), Reason::InvalidOp, "beyond block time");
    refused(&mut net, &oracle, vol(e1, t0 + 1, &[(2_000, 9_000)]), Reason::InvalidOp, "outside the market's");
    refused(&mut net, &oracle, vol(e1, t0 + 1, &[(2_000, 500_000), (1_000, 500_000)]), Reason::InvalidOp, "previous");
    refused(&mut net, &oracle, vol(e1, t0 + 1, &[]), Reason::InvalidOp, "0 volatility points");
    refused(&mut net, &oracle, vol(e1, t0 + 1, &[(1, 500_000); 5]), Reason::InvalidOp, "5 volatility points");

    // A later update replaces the points; at expiry the volatility is final.
    net.clock_ms += 1_000;
    net.run(&oracle, vol(e1, net.clock_ms, &[(2_000, 650_000)])).expect("replaced");
    assert_eq!(expiry(&net, e1).vol_points, vec![pb::VolPoint { strike_micros: 2_000 * USD, vol_ppm: 650_000 }]);
    assert_eq!(expiry(&net, e1).post_only_until_ms, 0, "a 25-point move is inside the 30-point band");
    // A 35-point jump trips the band: the expiry is post-only for the cooldown.
    net.clock_ms += 1_000;
    net.run(&oracle, vol(e1, net.clock_ms, &[(2_000, 1_000_000)])).expect("jump");
    let until = net.clock_ms + OptionsParams::default().vol_band_cooldown_ms;
    assert_eq!(expiry(&net, e1).post_only_until_ms, until);
    let jumped = pb::VolUpdated {
        expiry_ms: e1,
        timestamp_ms: net.clock_ms,
        points: 1,
        jump_ppm: 350_000,
        post_only_until_ms: until,
    };
    assert_eq!(head_events(&net), vec![pb::event::Kind::VolUpdated(jumped)]);
    net.clock_ms = e1;
    refused(&mut net, &oracle, vol(e1, e1, &[(2_000, 500_000)]), Reason::InvalidOp, "is reached");
}

#[test]
fn an_options_market_trades_no_perpetual_and_a_perpetual_market_lists_no_series() {
    let (oracle, deposit) = keys();
    let mut options = Net::new(&oracle, &deposit, options_genesis);
    let trader = support::account(9).0;
    let fund = Op::Deposit(pb::Deposit { account: trader.account().0.to_vec(), amount_micros: 10_000 * USD });
    options.run(&deposit, fund).expect("collateral is the same on every market");
    let order = Op::PlaceOrder(limit_order(Side::Buy, 2_000 * USD, 1, TimeInForce::Gtc));
    refused(&mut options, &trader, order, Reason::InvalidOp, "options market");
    let liquidate =
        Op::Liquidate(pb::Liquidate { account: trader.account().0.to_vec(), max_size_lots: 0, series: Vec::new() });
    refused(&mut options, &trader, liquidate, Reason::InvalidOp, "options market");

    let mut perp = Net::new(&oracle, &deposit, |_| {});
    let (e1, _) = expiries(perp.clock_ms);
    refused(&mut perp, &Net::admin(), list(e1, 2_000, OptionKind::Call), Reason::InvalidOp, "not an options market");
    let update = vol(e1, perp.clock_ms, &[(2_000, 500_000)]);
    refused(&mut perp, &oracle, update, Reason::InvalidOp, "not an options market");
}
