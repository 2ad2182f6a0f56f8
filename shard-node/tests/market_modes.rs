//! Market modes: what each mode blocks, who may set them, the price-band circuit breaker tripping and
//! expiring, and the insurance-fund floor forcing reduce-only. Every transition is in the market record.

mod support;

use shardex_core::{
    order::{limit_order, market_order},
    pb::{self, tx_body::Op, MarketMode, ModeCause, Side, TimeInForce},
    Keypair, Reason,
};
use support::inproc::Net;

const USD: u64 = 1_000_000;
const PRICE: u64 = 100_000_000_000;
const TICK: u64 = 100_000;

fn order(side: Side, price: u64, lots: u64, tif: TimeInForce, reduce_only: bool) -> Op {
    let base = if price == 0 { market_order(side, lots) } else { limit_order(side, price, lots, tif) };
    Op::PlaceOrder(pb::PlaceOrder { reduce_only, ..base })
}

fn set_mode(mode: MarketMode) -> Op {
    Op::SetMarketMode(pb::SetMarketMode { mode: mode as i32, reason: "test".into() })
}

fn market(net: &Net) -> pb::MarketRecord {
    net.shard.view().market(false).expect("market").market
}

/// A market with a price, a maker quoting both sides and a taker holding a 5-lot long.
fn setup(tweak: impl FnOnce(&mut shardex_core::genesis::Genesis)) -> (Net, Keypair, Keypair, Keypair) {
    let oracle = Keypair::from_seed([2; 32]);
    let deposit = Keypair::from_seed([4; 32]);
    let mut net = Net::new(&oracle, &deposit, tweak);
    let (maker, taker) = (Keypair::from_seed([30; 32]), Keypair::from_seed([31; 32]));
    for k in [&maker, &taker] {
        let op = Op::Deposit(pb::Deposit { account: k.account().0.to_vec(), amount_micros: 100_000 * USD });
        net.run(&deposit, op).expect("deposit");
    }
    let clock = net.clock_ms;
    net.run(&oracle, Op::OracleUpdate(pb::OracleUpdate { price_micros: PRICE, timestamp_ms: clock })).expect("oracle");
    net.run(&maker, order(Side::Sell, PRICE + TICK, 100, TimeInForce::Gtc, false)).expect("ask");
    net.run(&maker, order(Side::Buy, PRICE - TICK, 100, TimeInForce::Gtc, false)).expect("bid");
    net.run(&taker, order(Side::Buy, 0, 5, TimeInForce::Ioc, false)).expect("taker long");
    (net, oracle, maker, taker)
}

fn refused(r: Result<(), shardex_shard_node::shard::Reject>) -> Reason {
    r.expect_err("refused").reason
}

#[test]
fn each_mode_blocks_what_it_must_and_only_the_admin_sets_modes() {
    let (mut net, _oracle, maker, taker) = setup(|_| {});
    let admin = Net::admin();
    assert_eq!(refused(net.run(&taker, set_mode(MarketMode::PostOnly))), Reason::Unauthorized);
    assert_eq!(refused(net.run(&admin, Op::SetMarketMode(pb::SetMarketMode::default()))), Reason::InvalidOp);

    // Post-only: only resting post-only orders.
    net.run(&admin, set_mode(MarketMode::PostOnly)).expect("post-only");
    let m = market(&net);
    assert_eq!((m.mode, m.mode_cause), (MarketMode::PostOnly as i32, ModeCause::Admin as i32));
    assert_eq!(refused(net.run(&taker, order(Side::Buy, 0, 1, TimeInForce::Ioc, false))), Reason::MarketMode);
    assert_eq!(
        refused(net.run(&taker, order(Side::Buy, PRICE - 2 * TICK, 1, TimeInForce::Gtc, false))),
        Reason::MarketMode
    );
    net.run(&taker, order(Side::Buy, PRICE - 2 * TICK, 1, TimeInForce::PostOnly, false)).expect("post-only rests");
    net.run(&taker, Op::CancelAll(pb::CancelAll {})).expect("cancels always allowed");

    // Reduce-only: only orders that shrink a position.
    net.run(&admin, set_mode(MarketMode::ReduceOnly)).expect("reduce-only");
    assert_eq!(refused(net.run(&taker, order(Side::Buy, 0, 1, TimeInForce::Ioc, false))), Reason::MarketMode);
    assert_eq!(
        refused(net.run(&maker, order(Side::Sell, PRICE + TICK, 1, TimeInForce::Gtc, false))),
        Reason::MarketMode
    );
    net.run(&taker, order(Side::Sell, 0, 2, TimeInForce::Ioc, true)).expect("reduce");
    let pos = net.shard.view().position(&taker.account(), false).expect("pos").position.expect("position");
    assert_eq!(pos.size_lots, 3);

    // Settlement-only: no orders at all; cancels and withdrawals still work.
    net.run(&admin, set_mode(MarketMode::SettlementOnly)).expect("settlement-only");
    assert_eq!(refused(net.run(&taker, order(Side::Sell, 0, 1, TimeInForce::Ioc, true))), Reason::MarketMode);
    net.run(&maker, Op::CancelAll(pb::CancelAll {})).expect("cancel");
    net.run(&maker, Op::Withdraw(pb::Withdraw { amount_micros: USD })).expect("withdraw");

    // Back to normal.
    net.run(&admin, set_mode(MarketMode::Normal)).expect("normal");
    net.run(&maker, order(Side::Sell, PRICE + TICK, 10, TimeInForce::Gtc, false)).expect("trading again");
}

#[test]
fn price_band_trips_post_only_and_expires_after_cooldown() {
    let (mut net, oracle, _maker, taker) = setup(|g| {
        g.market.trading.price_band_bps = 1_000;
        g.market.trading.band_cooldown_ms = 5_000;
        g.market.trading.oracle_max_age_ms = 60_000;
    });
    // 9% is inside a 10% band; another 2% from the same reference is outside.
    net.clock_ms += 1_000;
    let t = net.clock_ms;
    net.run(&oracle, Op::OracleUpdate(pb::OracleUpdate { price_micros: PRICE / 100 * 91, timestamp_ms: t }))
        .expect("inside");
    assert_eq!(market(&net).mode, MarketMode::Normal as i32);
    net.clock_ms += 1_000;
    let t = net.clock_ms;
    net.run(&oracle, Op::OracleUpdate(pb::OracleUpdate { price_micros: PRICE / 100 * 89, timestamp_ms: t }))
        .expect("outside");
    let m = market(&net);
    assert_eq!((m.mode, m.mode_cause), (MarketMode::PostOnly as i32, ModeCause::PriceBand as i32));
    assert_eq!(m.mode_until_ms, net.clock_ms + 5_000);
    assert_eq!(refused(net.run(&taker, order(Side::Sell, 0, 1, TimeInForce::Ioc, false))), Reason::MarketMode);

    // Before the cooldown ends nothing changes; after it, the next op returns the market to normal.
    net.clock_ms += 4_000;
    assert_eq!(refused(net.run(&taker, order(Side::Sell, 0, 1, TimeInForce::Ioc, false))), Reason::MarketMode);
    net.clock_ms += 1_000;
    net.run(&taker, order(Side::Sell, 0, 1, TimeInForce::Ioc, false)).expect("normal again");
    let m = market(&net);
    assert_eq!((m.mode, m.mode_cause), (MarketMode::Normal as i32, ModeCause::Expired as i32));

    // A mode set by the admin is not lowered by a rule.
    net.run(&Net::admin(), set_mode(MarketMode::ReduceOnly)).expect("admin");
    net.clock_ms += 1_000;
    let t = net.clock_ms;
    net.run(&oracle, Op::OracleUpdate(pb::OracleUpdate { price_micros: PRICE / 100 * 70, timestamp_ms: t }))
        .expect("crash");
    assert_eq!(market(&net).mode, MarketMode::ReduceOnly as i32);
}

#[test]
fn insurance_fund_below_floor_forces_reduce_only() {
    let (mut net, oracle, _maker, _taker) = setup(|g| {
        g.market.trading.insurance_floor_micros = 1_000 * USD;
        g.market.trading.price_band_bps = 10_000;
    });
    let deposit = Keypair::from_seed([4; 32]);
    let (lev, liq) = (Keypair::from_seed([40; 32]), Keypair::from_seed([41; 32]));
    net.run(&deposit, Op::Deposit(pb::Deposit { account: lev.account().0.to_vec(), amount_micros: 1_100 * USD }))
        .expect("d");
    net.run(&deposit, Op::Deposit(pb::Deposit { account: liq.account().0.to_vec(), amount_micros: 100_000 * USD }))
        .expect("d");
    net.run(&lev, order(Side::Buy, 0, 95, TimeInForce::Ioc, false)).expect("leveraged long");
    net.clock_ms += 1_000;
    let t = net.clock_ms;
    net.run(&oracle, Op::OracleUpdate(pb::OracleUpdate { price_micros: PRICE / 100 * 90, timestamp_ms: t }))
        .expect("crash");
    assert_eq!(market(&net).mode, MarketMode::Normal as i32);
    net.run(
        &liq,
        Op::Liquidate(pb::Liquidate { account: lev.account().0.to_vec(), max_size_lots: 0, series: Vec::new() }),
    )
    .expect("liquidate");
    let m = market(&net);
    assert_eq!((m.mode, m.mode_cause), (MarketMode::ReduceOnly as i32, ModeCause::InsuranceFloor as i32));
}

#[test]
fn a_stale_oracle_makes_the_market_reduce_only_until_a_fresh_price() {
    let (mut net, oracle, maker, taker) = setup(|g| {
        g.market.trading.oracle_max_age_ms = 5_000;
    });
    // Blocks keep coming (a deposit) but no price for longer than the maximum age.
    net.clock_ms += 6_000;
    let deposit = Keypair::from_seed([4; 32]);
    net.run(&deposit, Op::Deposit(pb::Deposit { account: maker.account().0.to_vec(), amount_micros: USD })).expect("d");
    let m = market(&net);
    assert_eq!((m.mode, m.mode_cause), (MarketMode::ReduceOnly as i32, ModeCause::OracleStale as i32));
    // The change is a block-level event, committed by the header's events root.
    let head = net.shard.head().height;
    let block = net.shard.view().block(head).expect("read").expect("block");
    assert!(
        block.block_events.iter().any(|e| matches!(&e.kind, Some(pb::event::Kind::MarketModeChanged(c)) if c.cause == ModeCause::OracleStale as i32)),
        "{:?}",
        block.block_events
    );
    let header = shardex_core::block::decode_header(block.header.as_ref().expect("header")).expect("decodes");
    let encoded: Vec<Vec<u8>> = block.block_events.iter().map(prost::Message::encode_to_vec).collect();
    assert_eq!(header.header.events_root, shardex_core::hash::ordered_root(&encoded).to_vec());
    assert_eq!(
        refused(net.run(&maker, order(Side::Sell, PRICE + TICK, 1, TimeInForce::Gtc, false))),
        Reason::MarketMode
    );

    // A fresh price returns the market to normal.
    let t = net.clock_ms;
    net.run(&oracle, Op::OracleUpdate(pb::OracleUpdate { price_micros: PRICE, timestamp_ms: t })).expect("fresh");
    let m = market(&net);
    assert_eq!((m.mode, m.mode_cause), (MarketMode::Normal as i32, ModeCause::Expired as i32));
    net.run(&taker, order(Side::Buy, 0, 1, TimeInForce::Ioc, false)).expect("trading again");
}
