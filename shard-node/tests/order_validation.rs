//! Every malformed trading op is refused with a clear reason and leaves the state root unchanged.

mod support;

use shardex_core::{
    order::{limit_order, market_order},
    pb::{self, tx_body::Op, Side, TimeInForce},
    Keypair, Reason,
};
use support::inproc::Net;

const USD: u64 = 1_000_000;
const PRICE: u64 = 100_000_000_000;
const TICK: u64 = 100_000;

#[test]
fn malformed_orders_cancels_and_liquidations_are_refused_without_effect() {
    let oracle = Keypair::from_seed([2; 32]);
    let deposit = Keypair::from_seed([4; 32]);
    let mut net = Net::new(&oracle, &deposit, |g| g.market.trading.max_order_lots = 1_000);
    let (trader, other) = (Keypair::from_seed([60; 32]), Keypair::from_seed([61; 32]));
    for k in [&trader, &other] {
        net.run(&deposit, Op::Deposit(pb::Deposit { account: k.account().0.to_vec(), amount_micros: 10_000 * USD }))
            .expect("deposit");
    }
    let t = net.clock_ms;
    net.run(&oracle, Op::OracleUpdate(pb::OracleUpdate { price_micros: PRICE, timestamp_ms: t })).expect("oracle");
    net.run(&other, Op::PlaceOrder(limit_order(Side::Sell, PRICE + TICK, 5, TimeInForce::Gtc))).expect("resting ask");

    let gtc = |price| limit_order(Side::Buy, price, 1, TimeInForce::Gtc);
    let cases: Vec<(&str, Op, Reason)> = vec![
        ("side unspecified", Op::PlaceOrder(pb::PlaceOrder { side: 0, ..gtc(PRICE) }), Reason::InvalidOp),
        ("unknown side value", Op::PlaceOrder(pb::PlaceOrder { side: 9, ..gtc(PRICE) }), Reason::InvalidOp),
        ("order type unspecified", Op::PlaceOrder(pb::PlaceOrder { order_type: 0, ..gtc(PRICE) }), Reason::InvalidOp),
        (
            "time in force unspecified",
            Op::PlaceOrder(pb::PlaceOrder { time_in_force: 0, ..gtc(PRICE) }),
            Reason::InvalidOp,
        ),
        (
            "post-only market order",
            Op::PlaceOrder(pb::PlaceOrder {
                time_in_force: TimeInForce::PostOnly as i32,
                ..market_order(Side::Buy, 1)
            }),
            Reason::InvalidOp,
        ),
        ("zero size", Op::PlaceOrder(pb::PlaceOrder { size_lots: 0, ..gtc(PRICE) }), Reason::InvalidOp),
        ("above max size", Op::PlaceOrder(pb::PlaceOrder { size_lots: 1_001, ..gtc(PRICE) }), Reason::InvalidOp),
        ("zero price", Op::PlaceOrder(gtc(0)), Reason::InvalidOp),
        ("off the tick", Op::PlaceOrder(gtc(PRICE + 1)), Reason::InvalidOp),
        // The genesis band is 15%: a bid that would rest 20% below the mark, or an ask 20% above it, could hold
        // a price level at no risk.
        ("a bid resting beyond the band", Op::PlaceOrder(gtc(PRICE / 100 * 80)), Reason::InvalidOp),
        (
            "an ask resting beyond the band",
            Op::PlaceOrder(limit_order(Side::Sell, PRICE / 100 * 120, 1, TimeInForce::Gtc)),
            Reason::InvalidOp,
        ),
        (
            "a post-only bid beyond the band",
            Op::PlaceOrder(limit_order(Side::Buy, PRICE / 100 * 80, 1, TimeInForce::PostOnly)),
            Reason::InvalidOp,
        ),
        (
            "reduce-only without a position",
            Op::PlaceOrder(pb::PlaceOrder { reduce_only: true, ..gtc(PRICE) }),
            Reason::InvalidOp,
        ),
        (
            "post-only that would trade",
            Op::PlaceOrder(limit_order(Side::Buy, PRICE + TICK, 1, TimeInForce::PostOnly)),
            Reason::WouldCross,
        ),
        (
            "cancel of an unknown order",
            Op::CancelOrder(pb::CancelOrder { target: Some(pb::cancel_order::Target::OrderId(999)) }),
            Reason::InvalidOp,
        ),
        ("cancel without a target", Op::CancelOrder(pb::CancelOrder { target: None }), Reason::InvalidOp),
        ("cancel all with nothing resting", Op::CancelAll(pb::CancelAll {}), Reason::InvalidOp),
        (
            "cancel of an unknown client id",
            Op::CancelOrder(pb::CancelOrder { target: Some(pb::cancel_order::Target::ClientOrderId(7)) }),
            Reason::InvalidOp,
        ),
        (
            "cancel of someone else's order",
            Op::CancelOrder(pb::CancelOrder { target: Some(pb::cancel_order::Target::OrderId(1)) }),
            Reason::Unauthorized,
        ),
        (
            "liquidate a malformed account",
            Op::Liquidate(pb::Liquidate { account: vec![1, 2], max_size_lots: 0, series: Vec::new() }),
            Reason::InvalidOp,
        ),
        (
            "liquidate oneself",
            Op::Liquidate(pb::Liquidate { account: trader.account().0.to_vec(), max_size_lots: 0, series: Vec::new() }),
            Reason::InvalidOp,
        ),
        (
            "liquidate a healthy account",
            Op::Liquidate(pb::Liquidate { account: other.account().0.to_vec(), max_size_lots: 0, series: Vec::new() }),
            Reason::NotLiquidatable,
        ),
        (
            "oracle update from a trader",
            Op::OracleUpdate(pb::OracleUpdate { price_micros: PRICE, timestamp_ms: t + 1 }),
            Reason::Unauthorized,
        ),
        (
            "mode change from a trader",
            Op::SetMarketMode(pb::SetMarketMode { mode: 2, reason: String::new() }),
            Reason::Unauthorized,
        ),
    ];
    for (what, op, reason) in cases {
        let root = net.shard.head().state_root;
        let got = net.run(&trader, op).expect_err(what).reason;
        assert_eq!(got, reason, "{what}");
        assert_eq!(net.shard.head().state_root, root, "{what} changed state");
    }

    // Within the band an order rests; an IOC order never rests, so the band does not apply to it.
    net.run(&trader, Op::PlaceOrder(gtc(PRICE / 100 * 86))).expect("a bid 14% below the mark rests");
    net.run(&trader, Op::PlaceOrder(limit_order(Side::Buy, PRICE / 100 * 50, 1, TimeInForce::Ioc)))
        .expect("an IOC bid far below finds nothing and leaves");
    net.run(&trader, Op::CancelAll(pb::CancelAll {})).expect("cancel the resting bid");

    // A key that never deposited has nothing to change: its free no-op is refused, and writes no nonce.
    let fresh = Keypair::from_seed([62; 32]);
    let root = net.shard.head().state_root;
    let got = net.run(&fresh, Op::CancelAll(pb::CancelAll {})).expect_err("a fresh key's cancel-all").reason;
    assert_eq!(got, Reason::InvalidOp);
    assert_eq!(net.shard.head().state_root, root, "a fresh key's no-op changed state");
}

/// An account without equity is refused before its order reaches the book; one whose txs keep being refused
/// is refused unexecuted, `RATE_LIMITED`, after 64 refusals, until the next block.
#[test]
fn unfunded_orders_are_refused_early_and_repeated_refusals_are_rate_limited() {
    let oracle = Keypair::from_seed([2; 32]);
    let deposit = Keypair::from_seed([4; 32]);
    let mut net = Net::new(&oracle, &deposit, |_| {});
    let makers: Vec<Keypair> = (0..8u8).map(|i| Keypair::from_seed([90 + i; 32])).collect();
    for k in &makers {
        net.run(&deposit, Op::Deposit(pb::Deposit { account: k.account().0.to_vec(), amount_micros: 10_000 * USD }))
            .expect("deposit");
    }
    let t = net.clock_ms;
    net.run(&oracle, Op::OracleUpdate(pb::OracleUpdate { price_micros: PRICE, timestamp_ms: t })).expect("oracle");
    for (i, k) in makers.iter().enumerate() {
        let ask = limit_order(Side::Sell, PRICE + (i as u64 + 1) * TICK, 1, TimeInForce::Gtc);
        net.run(k, Op::PlaceOrder(ask)).expect("a maker's ask");
    }

    // A key with no collateral: its market buy would sweep every ask; it is refused with its equity (zero).
    let sweeper = Keypair::from_seed([99; 32]);
    let root = net.shard.head().state_root;
    let refused = net.submit(&sweeper, Op::PlaceOrder(market_order(Side::Buy, 8))).expect_err("unfunded");
    assert_eq!(refused.reason, Reason::InsufficientMargin, "{refused:?}");
    assert!(refused.message.contains("equity 0"), "{refused:?}");
    assert_eq!(net.shard.mempool_len(), 0);

    // 63 more refusals use the budget of 64; the next is refused without execution.
    for n in 1..64 {
        let r = net.submit(&sweeper, Op::PlaceOrder(market_order(Side::Buy, 8))).expect_err("refused");
        assert_ne!(r.reason, Reason::RateLimited, "refusal {n} is still executed");
    }
    let limited = net.submit(&sweeper, Op::PlaceOrder(market_order(Side::Buy, 8))).expect_err("limited");
    assert_eq!(limited.reason, Reason::RateLimited, "{limited:?}");
    assert_eq!(net.shard.head().state_root, root, "refusals changed state");

    // Others are not affected, and the next block restores the budget.
    net.run(&deposit, Op::Deposit(pb::Deposit { account: sweeper.account().0.to_vec(), amount_micros: 1_000 * USD }))
        .expect("another signer is admitted");
    net.run(&sweeper, Op::PlaceOrder(market_order(Side::Buy, 1))).expect("funded now, and executed again");
}

/// A side full of one-lot orders gives way to a better price: the worst level is evicted, its owner told
/// (`CANCEL_REASON_EVICTED`) and its margin freed; a price worse than every level is refused with nothing
/// changed. So cheap orders near the mark cannot shut new quotes out.
#[test]
fn a_full_book_side_gives_way_to_a_better_price() {
    let oracle = Keypair::from_seed([2; 32]);
    let deposit = Keypair::from_seed([4; 32]);
    let mut net = Net::new(&oracle, &deposit, |g| g.market.trading.max_price_levels = 8);
    let (spammer, maker) = (Keypair::from_seed([70; 32]), Keypair::from_seed([71; 32]));
    for k in [&spammer, &maker] {
        net.run(&deposit, Op::Deposit(pb::Deposit { account: k.account().0.to_vec(), amount_micros: 10_000 * USD }))
            .expect("deposit");
    }
    let t = net.clock_ms;
    net.run(&oracle, Op::OracleUpdate(pb::OracleUpdate { price_micros: PRICE, timestamp_ms: t })).expect("oracle");
    let bid = |ticks: u64| Op::PlaceOrder(limit_order(Side::Buy, PRICE - ticks * TICK, 1, TimeInForce::Gtc));
    for ticks in 2..=9 {
        net.run(&spammer, bid(ticks)).expect("one-lot bid");
    }
    let (bids, _) = net.shard.view().book_depth(100).expect("depth");
    assert_eq!(bids.len(), 8, "the bid side is full");

    let root = net.shard.head().state_root;
    let got = net.run(&maker, bid(10)).expect_err("worse than every level").reason;
    assert_eq!(got, Reason::InvalidOp);
    assert_eq!(net.shard.head().state_root, root, "a refused bid changed state");

    net.run(&maker, bid(1)).expect("a better price evicts the worst level");
    let block = net.shard.view().block(net.shard.head().height).expect("read").expect("block");
    let evicted: Vec<(Vec<u8>, u64)> = block.receipts[0]
        .events
        .iter()
        .filter_map(|e| match &e.kind {
            Some(pb::event::Kind::OrderCancelled(c)) if c.reason == pb::CancelReason::Evicted as i32 => {
                Some((e.account.clone(), c.lots))
            }
            _ => None,
        })
        .collect();
    assert_eq!(evicted, [(spammer.account().0.to_vec(), 1)]);
    let (bids, _) = net.shard.view().book_depth(100).expect("depth");
    let prices: Vec<u64> = bids.iter().map(|l| l.price_micros).collect();
    assert_eq!(prices, (1..=8).map(|t| PRICE - t * TICK).collect::<Vec<_>>(), "9 ticks down gave way to 1");
    let open = net.shard.view().open_orders(&spammer.account()).expect("orders").len();
    assert_eq!(open, 7, "the spammer's evicted order is gone from its records");
}

/// Every account with exposure needs `min_initial_margin_micros` of equity, however small its position or
/// order: a one-lot position (10 USD by size here) needs 50 USD, so the bounded positions per side and the
/// book's levels cost real margin to occupy. Without the floor, 40 USD would do.
#[test]
fn exposure_costs_at_least_the_margin_floor() {
    for (floor, opens) in [(50 * USD, false), (0, true)] {
        let oracle = Keypair::from_seed([2; 32]);
        let deposit = Keypair::from_seed([4; 32]);
        let mut net = Net::new(&oracle, &deposit, |g| g.market.trading.min_initial_margin_micros = floor);
        let (small, maker) = (Keypair::from_seed([72; 32]), Keypair::from_seed([73; 32]));
        for (k, usd) in [(&small, 40), (&maker, 10_000)] {
            let op = Op::Deposit(pb::Deposit { account: k.account().0.to_vec(), amount_micros: usd * USD });
            net.run(&deposit, op).expect("deposit");
        }
        let t = net.clock_ms;
        net.run(&oracle, Op::OracleUpdate(pb::OracleUpdate { price_micros: PRICE, timestamp_ms: t })).expect("oracle");
        net.run(&maker, Op::PlaceOrder(limit_order(Side::Sell, PRICE + TICK, 5, TimeInForce::Gtc))).expect("ask");

        let root = net.shard.head().state_root;
        let take = net.run(&small, Op::PlaceOrder(market_order(Side::Buy, 1)));
        let rest = net.run(&small, Op::PlaceOrder(limit_order(Side::Buy, PRICE - TICK, 1, TimeInForce::Gtc)));
        if opens {
            take.expect("without a floor 40 USD margins a one-lot long");
            rest.expect("and a one-lot bid");
        } else {
            assert_eq!(take.expect_err("below the floor").reason, Reason::InsufficientMargin);
            assert_eq!(rest.expect_err("below the floor").reason, Reason::InsufficientMargin);
            assert_eq!(net.shard.head().state_root, root, "refusals changed state");
            let op = Op::Deposit(pb::Deposit { account: small.account().0.to_vec(), amount_micros: 20 * USD });
            net.run(&deposit, op).expect("deposit");
            net.run(&small, Op::PlaceOrder(market_order(Side::Buy, 1))).expect("60 USD clears the floor");
        }
    }
}
