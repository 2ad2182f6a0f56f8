//! Liquidation always fits in a tx: an account cannot make itself too expensive to liquidate.
//!
//! - A target with 4,096 resting orders (the most genesis allows) is liquidated over several ops, each
//!   cancelling at most 128 of them; the last closes the position. Cancelling them all in one op would need
//!   more gas than a tx may use, so the account could never be liquidated.
//! - A bankrupt target beyond the insurance fund, facing 80 profitable opposite positions, is
//!   auto-deleveraged against at most 32 of them per op, across ops, until it is flat, without bad debt; the
//!   measured cost of an op, extended to the 8,192 positions per side genesis allows, fits a tx.
//!
//! Every block is replayed and the money conservation identity checked by the in-process harness.

mod support;

use shardex_core::{
    order::{limit_order, market_order},
    pb::{self, tx_body::Op, Side, TimeInForce},
    AccountId, Keypair,
};
use support::inproc::Net;

const USD: u64 = 1_000_000;
/// 100,000 USD per BTC.
const PRICE: u64 = 100_000_000_000;

fn deposit(net: &mut Net, authority: &Keypair, to: &AccountId, usd: u64) {
    net.run(authority, Op::Deposit(pb::Deposit { account: to.0.to_vec(), amount_micros: usd * USD })).expect("deposit");
}

fn oracle(net: &mut Net, key: &Keypair, price: u64) {
    net.clock_ms += 1_000;
    let t = net.clock_ms;
    net.run(key, Op::OracleUpdate(pb::OracleUpdate { price_micros: price, timestamp_ms: t })).expect("oracle");
}

/// The events of the only tx of the head block.
fn last_events(net: &Net) -> Vec<pb::Event> {
    let block = net.shard.view().block(net.shard.head().height).expect("no node error").expect("head block");
    assert_eq!(block.receipts.len(), 1, "one tx per block here");
    block.receipts[0].events.clone()
}

fn size_of(net: &Net, who: &AccountId) -> i64 {
    net.shard.view().position(who, false).expect("position").position.map_or(0, |p| p.size_lots)
}

fn liquidate(net: &mut Net, liquidator: &Keypair, target: &AccountId) -> (Vec<pb::Event>, u64) {
    net.run(
        liquidator,
        Op::Liquidate(pb::Liquidate { account: target.0.to_vec(), max_size_lots: 0, series: Vec::new() }),
    )
    .expect("every liquidation op fits");
    let block = net.shard.view().block(net.shard.head().height).expect("no node error").expect("head block");
    let gas = block.receipts[0].gas_used;
    (last_events(net), gas)
}

fn count(events: &[pb::Event], pick: impl Fn(&pb::event::Kind) -> bool) -> usize {
    events.iter().filter(|e| e.kind.as_ref().is_some_and(&pick)).count()
}

#[test]
fn an_account_with_the_most_resting_orders_is_liquidated_across_ops() {
    let (oracle_key, authority) = (Keypair::from_seed([2; 32]), Keypair::from_seed([4; 32]));
    let mut net = Net::new(&oracle_key, &authority, |g| g.market.trading.max_open_orders = 4_096);
    let (maker, target, liquidator) =
        (Keypair::from_seed([70; 32]), Keypair::from_seed([71; 32]), Keypair::from_seed([72; 32]));
    deposit(&mut net, &authority, &maker.account(), 1_000_000);
    deposit(&mut net, &authority, &target.account(), 45_000);
    deposit(&mut net, &authority, &liquidator.account(), 1_000_000);
    oracle(&mut net, &oracle_key, PRICE);

    // The target sells 4,100 lots to the maker, then rests 4,096 one-lot bids 10% below the mark (they reduce
    // its short if filled, so they need no margin).
    net.run(&maker, Op::PlaceOrder(limit_order(Side::Buy, PRICE, 4_100, TimeInForce::Gtc))).expect("maker bid");
    net.run(&target, Op::PlaceOrder(market_order(Side::Sell, 4_100))).expect("target short");
    for _ in 0..64 {
        for _ in 0..64 {
            net.submit(&target, Op::PlaceOrder(limit_order(Side::Buy, PRICE / 100 * 90, 1, TimeInForce::Gtc)))
                .expect("a resting bid");
        }
        net.block();
    }
    assert_eq!(net.shard.view().open_orders(&target.account()).expect("orders").len(), 4_096);

    // 6% up: equity 45,000 - 205 (fee) - 24,600 = 20,195 USD, below the 21,730 USD maintenance margin.
    oracle(&mut net, &oracle_key, PRICE / 100 * 106);
    let mut ops = Vec::new();
    while size_of(&net, &target.account()) != 0 {
        assert!(ops.len() < 40, "liquidation does not finish");
        ops.push(liquidate(&mut net, &liquidator, &target.account()));
    }
    let cancels: Vec<usize> =
        ops.iter().map(|(e, _)| count(e, |k| matches!(k, pb::event::Kind::OrderCancelled(_)))).collect();
    assert_eq!(cancels, vec![128; 32], "128 orders per op, oldest first");
    let liquidated: Vec<usize> =
        ops.iter().map(|(e, _)| count(e, |k| matches!(k, pb::event::Kind::Liquidated(_)))).collect();
    assert_eq!(&liquidated[..31], &[0; 31], "an op that leaves orders does nothing else");
    assert_eq!(liquidated[31], 2, "the last op liquidates (one event for each side)");
    assert!(net.shard.view().open_orders(&target.account()).expect("orders").is_empty());
    assert_eq!(size_of(&net, &liquidator.account()), -4_100, "the liquidator took the short over");
    let most = ops.iter().map(|(_, gas)| *gas).max().unwrap_or(0);
    assert!(most <= 1_000_000, "the heaviest op used {most} gas, over half the 2,000,000 a tx may use");
}

#[test]
fn a_bankrupt_account_is_deleveraged_against_at_most_32_positions_per_op() {
    let (oracle_key, authority) = (Keypair::from_seed([2; 32]), Keypair::from_seed([4; 32]));
    let mut net = Net::new(&oracle_key, &authority, |_| {});
    let (target, liquidator) = (Keypair::from_seed([80; 32]), Keypair::from_seed([81; 32]));
    let longs: Vec<Keypair> = (0..80u8).map(|i| Keypair::from_seed([100 + i; 32])).collect();
    deposit(&mut net, &authority, &target.account(), 1_000);
    deposit(&mut net, &authority, &liquidator.account(), 100_000);
    for chunk in longs.chunks(60) {
        for k in chunk {
            net.submit(
                &authority,
                Op::Deposit(pb::Deposit { account: k.account().0.to_vec(), amount_micros: 100 * USD }),
            )
            .expect("deposit");
        }
        net.block();
    }
    oracle(&mut net, &oracle_key, PRICE);
    net.run(&target, Op::PlaceOrder(limit_order(Side::Sell, PRICE, 80, TimeInForce::Gtc))).expect("target ask");
    for k in &longs {
        net.submit(k, Op::PlaceOrder(market_order(Side::Buy, 1))).expect("a one-lot long");
    }
    net.block();
    assert_eq!(size_of(&net, &target.account()), -80);

    // 14% up: the target's equity is 1,000 - 1.6 (fee) - 1,120 = -121.6 USD, beyond the empty insurance
    // fund: every long is profitable and deleveraged at the bankruptcy price.
    oracle(&mut net, &oracle_key, PRICE / 100 * 114);
    let mut per_op = Vec::new();
    let mut gas = Vec::new();
    while size_of(&net, &target.account()) != 0 {
        assert!(per_op.len() < 10, "deleveraging does not finish");
        let (events, used) = liquidate(&mut net, &liquidator, &target.account());
        per_op.push(count(&events, |k| matches!(k, pb::event::Kind::Deleveraged(_))));
        gas.push(used);
    }
    assert_eq!(per_op, vec![32, 32, 16], "at most 32 counterparties per op");
    assert!(longs.iter().all(|k| size_of(&net, &k.account()) == 0), "every long absorbed its lot");
    assert_eq!(size_of(&net, &liquidator.account()), 0, "the liquidator took nothing over");
    let fund = net.shard.view().market(false).expect("market").insurance;
    assert_eq!(fund.bad_debt_micros, 0, "{fund:?}");

    // The first op ranked 80 positions (all 256 index buckets read) and closed against 32. Ranking reads one
    // record per position, so at the genesis maximum of 8,192 per side the same op costs 8,112 reads more:
    // it must still fit the 2,000,000 gas a tx may use.
    let at_max_positions = gas[0] + (8_192 - 80) * 100;
    assert!(at_max_positions < 2_000_000, "{} gas measured, {at_max_positions} at 8,192 positions", gas[0]);
}
