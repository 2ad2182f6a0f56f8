//! Funding: when the book's mid trades above the oracle index, longs pay shorts at the next interval,
//! settled exactly when each position is next touched.

mod support;

use shardex_core::{
    order::limit_order,
    pb::{self, tx_body::Op, Side, TimeInForce},
    Keypair,
};
use support::inproc::Net;

const USD: u64 = 1_000_000;
const PRICE: u64 = 100_000_000_000;

fn limit(side: Side, price: u64, lots: u64) -> Op {
    Op::PlaceOrder(limit_order(side, price, lots, TimeInForce::Gtc))
}

fn collateral(net: &Net, k: &Keypair) -> i64 {
    net.shard.view().position(&k.account(), false).expect("position").account.expect("account").collateral_micros
}

#[test]
fn longs_pay_shorts_when_the_mid_is_above_the_index() {
    let oracle = Keypair::from_seed([2; 32]);
    let deposit = Keypair::from_seed([4; 32]);
    let mut net = Net::new(&oracle, &deposit, |g| {
        g.market.trading.funding_interval_ms = 1_000;
        g.market.trading.funding_clamp_bps = 50;
        g.market.trading.maker_fee_bps = 0;
        g.market.trading.taker_fee_bps = 0;
    });
    let (maker, taker) = (Keypair::from_seed([50; 32]), Keypair::from_seed([51; 32]));
    for k in [&maker, &taker] {
        net.run(&deposit, Op::Deposit(pb::Deposit { account: k.account().0.to_vec(), amount_micros: 10_000 * USD }))
            .expect("deposit");
    }
    let t = net.clock_ms;
    net.run(&oracle, Op::OracleUpdate(pb::OracleUpdate { price_micros: PRICE, timestamp_ms: t })).expect("oracle");
    // Asks at 100,300 and bids at 100,100: the mid, 100,200, is 200 USD over the index.
    net.run(&maker, limit(Side::Sell, PRICE + 300 * USD, 100)).expect("ask");
    net.run(&maker, limit(Side::Buy, PRICE + 100 * USD, 100)).expect("bid");
    net.run(&taker, limit(Side::Buy, PRICE + 300 * USD, 10)).expect("taker long 10");
    let (maker_before, taker_before) = (collateral(&net, &maker), collateral(&net, &taker));

    // Not yet an interval: nothing moves.
    net.clock_ms += 500;
    let t = net.clock_ms;
    net.run(&oracle, Op::OracleUpdate(pb::OracleUpdate { price_micros: PRICE, timestamp_ms: t })).expect("oracle");
    assert_eq!(net.shard.view().market(false).expect("m").funding.last_step, 0);

    // One interval later the index steps by 200 USD per BTC on a 0.001 BTC lot: 0.2 USD per lot.
    net.clock_ms += 600;
    let t = net.clock_ms;
    net.run(&oracle, Op::OracleUpdate(pb::OracleUpdate { price_micros: PRICE, timestamp_ms: t })).expect("oracle");
    let funding = net.shard.view().market(false).expect("m").funding;
    assert_eq!(funding.last_step, 200_000 * 1_000_000);
    let head = net.shard.head().height;
    let block = net.shard.view().block(head).expect("read").expect("block");
    assert!(block.block_events.iter().any(|e| matches!(&e.kind, Some(pb::event::Kind::FundingApplied(f)) if f.cumulative_index == funding.cumulative_index)));
    let last = funding.history.last().expect("history");
    assert_eq!((last.step, last.mid_micros, last.index_micros), (funding.last_step, PRICE + 200 * USD, PRICE));

    // Settled when touched: the long pays 10 × 0.2 = 2 USD, the short receives it.
    for k in [&maker, &taker] {
        net.run(k, Op::Withdraw(pb::Withdraw { amount_micros: USD })).expect("withdraw touches the position");
    }
    assert_eq!(collateral(&net, &taker), taker_before - 2 * USD as i64 - USD as i64);
    assert_eq!(collateral(&net, &maker), maker_before + 2 * USD as i64 - USD as i64);
    assert_eq!(net.shard.view().market(false).expect("m").funding.pool_micros, 0, "exact: nothing left in the pool");
}
