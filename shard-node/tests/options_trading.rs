//! Trading option series in process: premiums move from buyer to seller at the fill with fees to the pool,
//! positions are kept per series, and standard margin refuses a naked short the collateral cannot carry
//! while the same short inside a call spread needs only the spread's maximum loss. Withdrawals respect the
//! option margin. Every block is replayed and checked for conservation by the harness.

mod support;

use prost::Message;
use shardex_core::{
    genesis::{Genesis, OptionsParams},
    option::series::{self, OptionKind, SeriesId},
    order::{market_order, option_order},
    pb::{self, tx_body::Op, Side, TimeInForce},
    Keypair, Reason,
};
use support::inproc::Net;

const HOUR: u64 = 3_600_000;
const USD: u64 = 1_000_000;
/// 1,000 lots of 0.001: one unit of underlying.
const UNIT: u64 = 1_000;

fn options_genesis(g: &mut Genesis) {
    g.market.symbol = "ETH-OPTIONS".into();
    g.market.trading.funding_interval_ms = 0;
    g.market.options = Some(OptionsParams::default());
}

struct Market {
    net: Net,
    oracle: Keypair,
    deposit: Keypair,
    maker: Keypair,
    expiry: u64,
}

impl Market {
    /// An ETH options market at $2,000 with the 2,000 and 2,100 calls and the 2,000 put of the first
    /// listable expiry, 80% volatility, and a maker holding 100,000 USD.
    fn new() -> Self {
        Self::at(None)
    }

    /// As [`Market::new`], every block at `clock_and_expiry.0` and the series expiring at `.1` when given.
    fn at(clock_and_expiry: Option<(u64, u64)>) -> Self {
        let (oracle, deposit) = (Keypair::from_seed([2; 32]), Keypair::from_seed([4; 32]));
        let mut net = Net::new(&oracle, &deposit, options_genesis);
        let expiry = match clock_and_expiry {
            Some((clock, expiry)) => {
                net.clock_ms = clock;
                expiry
            }
            None => (net.clock_ms + HOUR).div_ceil(HOUR) * HOUR,
        };
        for (strike, kind) in [(2_000, OptionKind::Call), (2_100, OptionKind::Call), (2_000, OptionKind::Put)] {
            let op = pb::ListSeries { expiry_ms: expiry, strike_micros: strike * USD, kind: kind.to_pb() as i32 };
            net.run(&Net::admin(), Op::ListSeries(op)).expect("listed");
        }
        let now = net.clock_ms;
        net.run(&oracle, Op::OracleUpdate(pb::OracleUpdate { price_micros: 2_000 * USD, timestamp_ms: now }))
            .expect("spot");
        let points = vec![pb::VolPoint { strike_micros: 2_000 * USD, vol_ppm: 800_000 }];
        net.run(&oracle, Op::VolUpdate(pb::VolUpdate { expiry_ms: expiry, timestamp_ms: now, points })).expect("vol");
        let maker = support::account(40).0;
        let mut m = Self { net, oracle, deposit, maker, expiry };
        m.fund(&m.maker.clone(), 100_000 * USD);
        m
    }

    fn series(&self, strike_usd: u64, kind: OptionKind) -> SeriesId {
        SeriesId { expiry_ms: self.expiry, strike_micros: strike_usd * USD, kind }
    }

    fn fund(&mut self, who: &Keypair, micros: u64) {
        let op = Op::Deposit(pb::Deposit { account: who.account().0.to_vec(), amount_micros: micros });
        self.net.run(&self.deposit, op).expect("deposit");
    }

    fn quote(&mut self, s: &SeriesId, side: Side, premium_cents: u64, lots: u64) {
        let maker = self.maker.clone();
        let op = Op::PlaceOrder(option_order(s, side, premium_cents * 10_000, lots, TimeInForce::Gtc));
        self.net.run(&maker, op).expect("maker quote rests");
    }

    fn collateral(&self, who: &Keypair) -> i64 {
        let view = self.net.shard.view().account(&who.account(), None, false).expect("no node error");
        view.expect("head").record.unwrap_or_default().collateral_micros
    }

    fn position(&self, who: &Keypair, s: &SeriesId) -> pb::OptionPositionRecord {
        let key = series::position_key(&who.account(), s);
        let proof = self.net.shard.view().prove_key(key, None).expect("no node error").expect("head");
        pb::OptionPositionRecord::decode(proof.value.as_slice()).expect("decodes")
    }

    fn held(&self, who: &Keypair) -> Vec<Vec<u8>> {
        let key = series::account_series_key(&who.account());
        let proof = self.net.shard.view().prove_key(key, None).expect("no node error").expect("head");
        pb::AccountSeriesRecord::decode(proof.value.as_slice()).expect("decodes").series
    }

    fn fee_pool(&self) -> i64 {
        self.net.shard.view().market(false).expect("market").fee_pool.balance_micros as i64
    }
}

fn take(s: &SeriesId, side: Side, lots: u64) -> Op {
    Op::PlaceOrder(pb::PlaceOrder { series: s.to_bytes().to_vec(), ..market_order(side, lots) })
}

fn refused(m: &mut Market, key: &Keypair, op: Op, reason: Reason) -> String {
    let root = m.net.shard.head().state_root;
    let e = m.net.run(key, op).expect_err("refused");
    assert_eq!(e.reason, reason, "{}", e.message);
    assert_eq!(m.net.shard.head().state_root, root, "a refused op changed state");
    e.message
}

#[test]
fn a_fill_moves_the_premium_and_the_fees_and_opens_both_positions() {
    let mut m = Market::new();
    let call = m.series(2_000, OptionKind::Call);
    let alice = support::account(41).0;
    m.fund(&alice, 1_000 * USD);
    m.quote(&call, Side::Sell, 1_000, UNIT); // $10.00 for one ETH call
    let pool = m.fee_pool();
    m.net.run(&alice, take(&call, Side::Buy, UNIT)).expect("alice buys one call");
    // $10 premium; taker fee 5 bps = $0.005, maker fee 2 bps = $0.002.
    assert_eq!(m.collateral(&alice), (1_000 * USD - 10 * USD - 5_000) as i64);
    assert_eq!(m.collateral(&m.maker), (100_000 * USD + 10 * USD - 2_000) as i64);
    assert_eq!(m.fee_pool() - pool, 7_000);
    assert_eq!(m.position(&alice, &call), pb::OptionPositionRecord { size_lots: 1_000, premium_micros: 10_000_000 });
    assert_eq!(
        m.position(&m.maker, &call),
        pb::OptionPositionRecord { size_lots: -1_000, premium_micros: -10_000_000 }
    );
    assert_eq!(m.held(&alice), vec![call.to_bytes().to_vec()]);

    // The fill is reported with its series on both sides.
    let block = m.net.shard.view().block(m.net.shard.head().height).expect("no node error").expect("block");
    let fills: Vec<_> = block.receipts[0]
        .events
        .iter()
        .filter_map(|e| match &e.kind {
            Some(pb::event::Kind::OrderFilled(f)) => Some((f.is_maker, f.lots, f.position_lots, f.series.clone())),
            _ => None,
        })
        .collect();
    let id = call.to_bytes().to_vec();
    assert_eq!(fills, vec![(true, 1_000, -1_000, id.clone()), (false, 1_000, 1_000, id)]);

    // Selling it back closes the position and its series leaves the account's list.
    m.quote(&call, Side::Buy, 900, UNIT);
    m.net.run(&alice, take(&call, Side::Sell, UNIT)).expect("alice sells it back");
    assert_eq!(m.position(&alice, &call), pb::OptionPositionRecord::default());
    assert!(m.held(&alice).is_empty());
}

#[test]
fn a_naked_short_needs_margin_and_a_spread_only_its_maximum_loss() {
    let mut m = Market::new();
    let (c2000, c2100) = (m.series(2_000, OptionKind::Call), m.series(2_100, OptionKind::Call));
    m.quote(&c2000, Side::Buy, 900, 2 * UNIT); // bids $9.00 for the 2,000 call
    m.quote(&c2100, Side::Sell, 300, UNIT); // asks $3.00 for the 2,100 call

    // Carol has 150 USD: a naked short of the 2,000 call needs 15% of spot plus the mark (over 300 USD).
    let carol = support::account(42).0;
    m.fund(&carol, 150 * USD);
    let why = refused(&mut m, &carol, take(&c2000, Side::Sell, UNIT), Reason::InsufficientMargin);
    assert!(why.contains("requirement"), "{why}");

    // Bob, with the same 150 USD, buys the 2,100 call first: the short 2,000 call is then a spread whose
    // worst loss is 100 USD.
    let bob = support::account(43).0;
    m.fund(&bob, 150 * USD);
    m.net.run(&bob, take(&c2100, Side::Buy, UNIT)).expect("long the 2,100 call");
    m.net.run(&bob, take(&c2000, Side::Sell, UNIT)).expect("short the 2,000 call inside the spread");
    // 150 − 3 − 0.0015 + 9 − 0.0045.
    let collateral = 150 * USD as i64 - 3 * USD as i64 - 1_500 + 9 * USD as i64 - 4_500;
    assert_eq!(m.collateral(&bob), collateral);

    // He may take out all but the spread's 100 USD, and no more.
    let free = collateral - 100 * USD as i64;
    let too_much = Op::Withdraw(pb::Withdraw { amount_micros: free as u64 + 1 });
    refused(&mut m, &bob, too_much, Reason::InsufficientCollateral);
    m.net.run(&bob, Op::Withdraw(pb::Withdraw { amount_micros: free as u64 })).expect("free collateral");
    // Selling the long leg would leave a naked short: refused.
    m.quote(&c2100, Side::Buy, 200, UNIT);
    refused(&mut m, &bob, take(&c2100, Side::Sell, UNIT), Reason::InsufficientMargin);
}

#[test]
fn bad_option_orders_are_refused_with_their_reason() {
    let mut m = Market::new();
    let call = m.series(2_000, OptionKind::Call);
    let trader = support::account(44).0;
    m.fund(&trader, 10_000 * USD);
    let order = |s: &SeriesId, price: u64| Op::PlaceOrder(option_order(s, Side::Sell, price, UNIT, TimeInForce::Gtc));
    let why = refused(&mut m, &trader, order(&call, 2_000 * USD + 100_000), Reason::InvalidOp);
    assert!(why.contains("more than the option can be worth"), "{why}");
    let unlisted = m.series(2_050, OptionKind::Call);
    assert!(refused(&mut m, &trader, order(&unlisted, USD), Reason::InvalidOp).contains("not listed"));
    let short_id = Op::PlaceOrder(pb::PlaceOrder { series: vec![1; 5], ..market_order(Side::Buy, 1) });
    assert!(refused(&mut m, &trader, short_id, Reason::InvalidOp).contains("17-byte"));
    let off_tick = Op::PlaceOrder(option_order(&call, Side::Sell, 10 * USD + 1, UNIT, TimeInForce::Gtc));
    assert!(refused(&mut m, &trader, off_tick, Reason::InvalidOp).contains("tick"));

    // A second expiry without volatility cannot be priced, so its series cannot be traded yet.
    let later = m.expiry + 24 * HOUR;
    let op = pb::ListSeries { expiry_ms: later, strike_micros: 2_000 * USD, kind: 1 };
    m.net.run(&Net::admin(), Op::ListSeries(op)).expect("listed");
    let unpriced = SeriesId { expiry_ms: later, ..call };
    assert!(refused(&mut m, &trader, order(&unpriced, 10 * USD), Reason::StalePrice).contains("no volatility"));

    // At expiry, trading is closed.
    m.net.clock_ms = m.expiry;
    let now = m.net.clock_ms;
    let oracle = m.oracle.clone();
    m.net
        .run(&oracle, Op::OracleUpdate(pb::OracleUpdate { price_micros: 2_000 * USD, timestamp_ms: now }))
        .expect("spot");
    assert!(refused(&mut m, &trader, order(&call, 10 * USD), Reason::InvalidOp).contains("trading is closed"));

    // A series order on a perpetual market names no options market.
    let (oracle, deposit) = (Keypair::from_seed([2; 32]), Keypair::from_seed([4; 32]));
    let mut perp = Net::new(&oracle, &deposit, |_| {});
    let e = perp.run(&trader, order(&call, 10 * USD)).expect_err("refused");
    assert!(e.reason == Reason::InvalidOp && e.message.contains("not an options market"), "{}", e.message);
}

/// An expiry settles at the average oracle price over its window, fixed by the first price at or after it;
/// each side of a series is then settled by anyone, the longs paid the floor and the shorts charged the
/// ceiling of their intrinsic value through the funding pool, which keeps the rounding dust.
#[test]
fn an_expiry_settles_at_the_window_average_and_pays_every_position() {
    let mut m = Market::new();
    let (call, put) = (m.series(2_000, OptionKind::Call), m.series(2_000, OptionKind::Put));
    let (alice, bob, keeper) = (support::account(45).0, support::account(46).0, support::account(47).0);
    m.fund(&alice, 1_000 * USD);
    m.fund(&bob, 1_000 * USD);
    m.quote(&call, Side::Sell, 1_000, 1_001);
    m.quote(&put, Side::Sell, 1_000, UNIT);
    m.net.run(&alice, take(&call, Side::Buy, 1_001)).expect("alice long 1.001 calls");
    m.net.run(&bob, take(&put, Side::Buy, UNIT)).expect("bob long one put");
    let settle = |s: &SeriesId, who: &[&Keypair]| {
        let accounts = who.iter().map(|k| k.account().0.to_vec()).collect();
        Op::SettleExpired(pb::SettleExpired { series: s.to_bytes().to_vec(), accounts })
    };
    let why = refused(&mut m, &keeper, settle(&call, &[&alice]), Reason::InvalidOp);
    assert!(why.contains("no settlement price yet"), "{why}");

    // Spot 2,000 from before the window to its middle, then 2,100.000002: the average is 2,050.000001.
    let price = |m: &mut Market, at: u64, micros: u64| {
        m.net.clock_ms = at;
        let oracle = m.oracle.clone();
        m.net
            .run(&oracle, Op::OracleUpdate(pb::OracleUpdate { price_micros: micros, timestamp_ms: at }))
            .expect("spot");
    };
    let (window, expiry) = (OptionsParams::default().settle_window_ms, m.expiry);
    price(&mut m, expiry - window - 10_000, 2_000 * USD);
    m.net.clock_ms = expiry - window + 1_000;
    let why = refused(&mut m, &alice, take(&call, Side::Sell, 1), Reason::MarketMode);
    assert!(why.contains("settlement window"), "{why}");
    price(&mut m, expiry - window / 2, 2_100 * USD + 2);
    assert_eq!(settle_price(&m), 0, "not before the expiry");
    price(&mut m, expiry + 1_000, 2_300 * USD);
    assert_eq!(settle_price(&m), 2_050 * USD + 1);
    let block = m.net.shard.view().block(m.net.shard.head().height).expect("no node error").expect("block");
    let fixed = pb::ExpirySettled { expiry_ms: m.expiry, settle_price_micros: 2_050 * USD + 1 };
    assert!(block.receipts[0].events.iter().any(|e| e.kind == Some(pb::event::Kind::ExpirySettled(fixed))));
    let chain: pb::OptionChainRecord = {
        let proof = m.net.shard.view().prove_key(series::chain_key(), None).expect("read").expect("head");
        pb::OptionChainRecord::decode(proof.value.as_slice()).expect("decodes")
    };
    assert!(chain.expiries.is_empty() && chain.series_count == 0, "{chain:?}");

    // The call is 50.000001 in the money: 1,001 lots of 0.001 are worth 50,050,001.001 micro-USD.
    let (alice_before, maker_before) = (m.collateral(&alice), m.collateral(&m.maker));
    m.net.run(&keeper, settle(&call, &[&alice])).expect("alice settled first");
    assert_eq!(m.collateral(&alice) - alice_before, 50_050_001, "the long gets the floor");
    assert_eq!(funding_pool(&m), -50_050_001, "paid ahead of the short, from the pool");
    assert_eq!(m.position(&alice, &call), pb::OptionPositionRecord::default());
    let why = refused(&mut m, &keeper, settle(&call, &[&alice]), Reason::InvalidOp);
    assert!(why.contains("none of the accounts"), "{why}");
    refused(&mut m, &keeper, settle(&call, &[&bob, &bob]), Reason::InvalidOp);
    let maker = m.maker.clone();
    m.net.run(&keeper, settle(&call, &[&maker])).expect("the short settles");
    assert_eq!(m.collateral(&maker) - maker_before, -50_050_002, "the short pays the ceiling");
    assert_eq!(funding_pool(&m), 1, "one micro-USD of dust stays in the pool");
    // The put expired worthless: both sides close for nothing.
    m.net.run(&keeper, settle(&put, &[&bob, &maker])).expect("worthless put");
    assert!(m.held(&bob).is_empty() && m.held(&maker).is_empty());
    assert_eq!(funding_pool(&m), 1);
}

fn settle_price(m: &Market) -> u64 {
    let proof = m.net.shard.view().prove_key(series::expiry_key(m.expiry), None).expect("read").expect("head");
    pb::ExpiryRecord::decode(proof.value.as_slice()).expect("decodes").settle_price_micros
}

fn funding_pool(m: &Market) -> i64 {
    m.net.shard.view().market(false).expect("market").funding.pool_micros
}

/// A short call the market runs away from is liquidated: the liquidator takes the position over at the
/// mark, the account pays the premium and the penalty, split between liquidator and insurance fund.
#[test]
fn a_short_below_maintenance_is_taken_over_at_the_mark() {
    let mut m = Market::new();
    let call = m.series(2_000, OptionKind::Call);
    let (dave, liq) = (support::account(48).0, support::account(49).0);
    m.fund(&dave, 320 * USD);
    m.fund(&liq, 10_000 * USD);
    m.quote(&call, Side::Buy, 900, UNIT);
    m.net.run(&dave, take(&call, Side::Sell, UNIT)).expect("dave sells one call naked, just inside margin");
    let liquidate = |who: &Keypair, s: &SeriesId| {
        Op::Liquidate(pb::Liquidate {
            account: who.account().0.to_vec(),
            max_size_lots: 0,
            series: s.to_bytes().to_vec(),
        })
    };
    refused(&mut m, &liq, liquidate(&dave, &call), Reason::NotLiquidatable);

    // Spot 2,250: the call is 250 in the money; maintenance 7.5% of spot plus the mark exceeds 329 USD.
    m.net.clock_ms += 1_000;
    let now = m.net.clock_ms;
    let oracle = m.oracle.clone();
    m.net
        .run(&oracle, Op::OracleUpdate(pb::OracleUpdate { price_micros: 2_250 * USD, timestamp_ms: now }))
        .expect("up");
    let put = m.series(2_000, OptionKind::Put);
    let why = refused(&mut m, &liq, liquidate(&dave, &put), Reason::InvalidOp);
    assert!(why.contains("no position"), "{why}");
    let (dave_before, liq_before) = (m.collateral(&dave), m.collateral(&liq));
    let fund_before = m.net.shard.view().market(false).expect("market").insurance.balance_micros;
    m.net.run(&liq, liquidate(&dave, &call)).expect("liquidated");

    let block = m.net.shard.view().block(m.net.shard.head().height).expect("no node error").expect("block");
    let report = block.receipts[0]
        .events
        .iter()
        .find_map(|e| match &e.kind {
            Some(pb::event::Kind::Liquidated(l)) => Some(l.clone()),
            _ => None,
        })
        .expect("a liquidation report");
    assert_eq!((report.lots, report.series.clone()), (-1_000, call.to_bytes().to_vec()));
    assert!(report.price_micros > 250 * USD, "at least intrinsic: {}", report.price_micros);
    // One unit: the premium value is the mark. Penalty 1% of it, half to the liquidator.
    let value = report.price_micros as i64;
    assert_eq!(report.penalty_micros, (value + 99) / 100);
    assert_eq!(report.liquidator_reward_micros, report.penalty_micros / 2);
    assert_eq!(m.collateral(&dave), dave_before - value - report.penalty_micros);
    assert_eq!(m.collateral(&liq), liq_before + value + report.liquidator_reward_micros);
    let fund = m.net.shard.view().market(false).expect("market").insurance.balance_micros;
    assert_eq!(fund - fund_before, report.insurance_delta_micros);
    assert_eq!(m.position(&dave, &call), pb::OptionPositionRecord::default());
    assert_eq!(m.position(&liq, &call).size_lots, -1_000);
    assert!(m.held(&dave).is_empty());
}

/// The Greeks of a known portfolio, 30 days before expiry at spot 2,000 and 80% volatility: long two
/// 2,000 calls, short one 2,000 put. Per unit (Black-76 at 30 digits): call 182.596816, call delta
/// 0.545649, put delta −0.454350, gamma 0.000864012952 per USD, vega 2.272472 per point, theta −3.029963 a
/// day. The portfolio: delta 2·0.545649 + 0.454350 = 1.545648 units, and one unit's gamma, vega and theta.
#[test]
fn the_greeks_of_a_known_portfolio() {
    let clock = 1_700_002_800_000; // on the hour
    let mut m = Market::at(Some((clock, clock + 30 * 24 * HOUR)));
    let (call, put) = (m.series(2_000, OptionKind::Call), m.series(2_000, OptionKind::Put));
    let alice = support::account(50).0;
    m.fund(&alice, 5_000 * USD);
    m.quote(&call, Side::Sell, 19_000, 2 * UNIT);
    m.quote(&put, Side::Buy, 17_000, UNIT);
    m.net.run(&alice, take(&call, Side::Buy, 2 * UNIT)).expect("long two calls");
    m.net.run(&alice, take(&put, Side::Sell, UNIT)).expect("short one put");
    assert_eq!(m.net.shard.head().timestamp_ms, clock, "30 days to expiry, exactly");

    let g = m.net.shard.view().greeks(&alice.account()).expect("no node error").expect("an options market");
    assert_eq!((g.spot_micros, g.block_time_ms), (2_000 * USD, clock));
    let rows: Vec<_> =
        g.series.iter().map(|s| (s.series.clone(), s.position_lots, s.price_micros, s.vol_ppm, s.delta_ppm)).collect();
    assert_eq!(
        rows,
        vec![
            (call.to_bytes().to_vec(), 2_000, 182_596_815, 800_000, 545_649),
            (put.to_bytes().to_vec(), -1_000, 182_596_815, 800_000, -454_350),
        ]
    );
    for s in &g.series {
        assert_eq!((s.gamma_e12, s.vega_micros, s.theta_micros), (864_012_952, 2_272_472, -3_029_963));
    }
    assert_eq!(g.delta_micro_units, 1_545_648);
    assert_eq!((g.gamma_e12, g.vega_micros, g.theta_micros), (864_012_952, 2_272_472, -3_029_963));

    // A perpetual market has no Greeks.
    let (oracle, deposit) = (Keypair::from_seed([2; 32]), Keypair::from_seed([4; 32]));
    let perp = Net::new(&oracle, &deposit, |_| {});
    let refused = perp.shard.view().greeks(&alice.account()).expect("no node error").expect_err("perpetual");
    assert_eq!(refused.reason, Reason::InvalidOp);
}

/// An expiry whose volatility the oracle has not updated for `vol_max_age_ms` takes only reduce-only
/// orders until it does.
#[test]
fn a_stale_volatility_allows_only_reducing_orders() {
    let mut m = Market::new();
    let call = m.series(2_000, OptionKind::Call);
    let alice = support::account(51).0;
    m.fund(&alice, 2_000 * USD);
    m.quote(&call, Side::Sell, 1_000, 2 * UNIT);
    m.net.run(&alice, take(&call, Side::Buy, UNIT)).expect("fresh volatility: alice buys");
    m.quote(&call, Side::Buy, 900, UNIT);

    m.net.clock_ms += OptionsParams::default().vol_max_age_ms + 1_000;
    let (now, oracle) = (m.net.clock_ms, m.oracle.clone());
    m.net
        .run(&oracle, Op::OracleUpdate(pb::OracleUpdate { price_micros: 2_000 * USD, timestamp_ms: now }))
        .expect("spot");
    let why = refused(&mut m, &alice, take(&call, Side::Buy, UNIT), Reason::StalePrice);
    assert!(why.contains("reduce-only until the oracle updates it"), "{why}");
    let reduce = Op::PlaceOrder(pb::PlaceOrder {
        reduce_only: true,
        ..option_order(&call, Side::Sell, 9 * USD, UNIT, TimeInForce::Ioc)
    });
    m.net.run(&alice, reduce).expect("reducing is allowed");
    assert_eq!(m.position(&alice, &call).size_lots, 0);

    let points = vec![pb::VolPoint { strike_micros: 2_000 * USD, vol_ppm: 750_000 }];
    let update = pb::VolUpdate { expiry_ms: m.expiry, timestamp_ms: now, points };
    m.net.run(&oracle, Op::VolUpdate(update)).expect("fresh volatility");
    m.net.run(&alice, take(&call, Side::Buy, UNIT)).expect("buying again");
}

/// A volatility jump beyond the band makes the expiry post-only for the cooldown: orders that would trade
/// are refused, resting quotes are taken, and after the cooldown trading resumes.
#[test]
fn a_volatility_jump_makes_the_expiry_post_only_for_a_while() {
    let mut m = Market::new();
    let call = m.series(2_000, OptionKind::Call);
    let alice = support::account(52).0;
    m.fund(&alice, 2_000 * USD);
    m.quote(&call, Side::Sell, 1_000, UNIT);
    m.net.clock_ms += 1_000;
    let (now, oracle) = (m.net.clock_ms, m.oracle.clone());
    let points = vec![pb::VolPoint { strike_micros: 2_000 * USD, vol_ppm: 1_200_000 }];
    m.net.run(&oracle, Op::VolUpdate(pb::VolUpdate { expiry_ms: m.expiry, timestamp_ms: now, points })).expect("jump");
    let why = refused(&mut m, &alice, take(&call, Side::Buy, UNIT), Reason::MarketMode);
    assert!(why.contains("post-only until"), "{why}");
    let bid = Op::PlaceOrder(option_order(&call, Side::Buy, 5 * USD, UNIT, TimeInForce::PostOnly));
    m.net.run(&alice, bid).expect("a post-only bid rests");

    m.net.clock_ms += OptionsParams::default().vol_band_cooldown_ms;
    let now = m.net.clock_ms;
    m.net
        .run(&oracle, Op::OracleUpdate(pb::OracleUpdate { price_micros: 2_000 * USD, timestamp_ms: now }))
        .expect("spot");
    m.net.run(&alice, take(&call, Side::Buy, UNIT)).expect("after the cooldown alice buys");
}

/// When no oracle price comes at or after an expiry, the admin may fix its settlement price, but only once
/// the oracle's grace period has passed and only while the price is not fixed.
#[test]
fn the_admin_settles_an_expiry_the_oracle_left_unsettled_after_the_grace() {
    let mut m = Market::new();
    let call = m.series(2_000, OptionKind::Call);
    let alice = support::account(53).0;
    m.fund(&alice, 1_000 * USD);
    m.quote(&call, Side::Sell, 1_000, UNIT);
    m.net.run(&alice, take(&call, Side::Buy, UNIT)).expect("alice long one call");

    let expiry = m.expiry;
    let set = |price_usd: u64| {
        Op::SetSettlementPrice(pb::SetSettlementPrice {
            expiry_ms: expiry,
            price_micros: price_usd * USD,
            reason: "oracle outage".into(),
        })
    };
    let (early, price) = (set(2_100), set(2_100));
    let grace = OptionsParams::default().settle_grace_ms;
    m.net.clock_ms = m.expiry + 1_000;
    let why = refused(&mut m, &Net::admin(), early, Reason::InvalidOp);
    assert!(why.contains("the admin may only from"), "{why}");
    m.net.clock_ms = m.expiry + grace;
    refused(&mut m, &alice, set(2_100), Reason::Unauthorized);
    m.net.run(&Net::admin(), price).expect("the admin fixes the price");
    assert_eq!(settle_price(&m), 2_100 * USD);
    let why = refused(&mut m, &Net::admin(), set(2_200), Reason::InvalidOp);
    assert!(why.contains("already settles"), "{why}");

    let before = m.collateral(&alice);
    let settle = pb::SettleExpired { series: call.to_bytes().to_vec(), accounts: vec![alice.account().0.to_vec()] };
    m.net.run(&alice, Op::SettleExpired(settle)).expect("settled");
    assert_eq!(m.collateral(&alice) - before, 100 * USD as i64);
}

/// Portfolio margin, opted into per account: a calendar (short the near 2,000 call, long the next day's)
/// that the standard rules margin as a naked short is margined by the grid as hedged. In every scenario the
/// long call is worth at least the short one, so maintenance is the contingency (1% of spot per unit short:
/// 20 USD) plus one micro-USD (where both are worthless, the short is valued a micro-USD above its floor),
/// and initial 1.25 times that, rounded up. Withdrawals follow the same rules, and an account cannot
/// switch to rules its collateral does not meet.
#[test]
fn portfolio_margin_recognises_a_calendar_the_standard_rules_do_not() {
    let mut m = Market::new();
    let near = m.series(2_000, OptionKind::Call);
    let next = SeriesId { expiry_ms: m.expiry + 24 * HOUR, ..near };
    let op = pb::ListSeries { expiry_ms: next.expiry_ms, strike_micros: next.strike_micros, kind: 1 };
    m.net.run(&Net::admin(), Op::ListSeries(op)).expect("listed");
    let (now, oracle) = (m.net.clock_ms, m.oracle.clone());
    let points = vec![pb::VolPoint { strike_micros: 2_000 * USD, vol_ppm: 800_000 }];
    let vol = pb::VolUpdate { expiry_ms: next.expiry_ms, timestamp_ms: now, points };
    m.net.run(&oracle, Op::VolUpdate(vol)).expect("vol");
    m.quote(&next, Side::Sell, 4_000, UNIT); // $40 for the next day's call
    m.quote(&near, Side::Buy, 800, UNIT); // $8 for the near one

    let carol = support::account(51).0;
    m.fund(&carol, 200 * USD);
    m.net.run(&carol, take(&next, Side::Buy, UNIT)).expect("long the next day's call");
    let short = take(&near, Side::Sell, UNIT);
    let why = refused(&mut m, &carol, short.clone(), Reason::InsufficientMargin);
    assert!(why.contains("requirement"), "standard rules see a naked short: {why}");

    let mode = |portfolio| Op::SetMarginMode(pb::SetMarginMode { portfolio });
    m.net.run(&carol, mode(true)).expect("opts into portfolio margin");
    let block = m.net.shard.view().block(m.net.shard.head().height).expect("no node error").expect("block");
    let set = pb::MarginModeSet { portfolio: true, initial_micros: 0, maintenance_micros: 0 };
    assert!(block.receipts[0].events.iter().any(|e| e.kind == Some(pb::event::Kind::MarginModeSet(set))));
    assert!(refused(&mut m, &carol, mode(true), Reason::InvalidOp).contains("already uses portfolio"));
    m.net.run(&carol, short).expect("the short is hedged by the long");

    let health = |m: &Market| {
        let view = m.net.shard.view().position(&carol.account(), false).expect("no node error");
        view.health.expect("priced")
    };
    let h = health(&m);
    assert_eq!((h.maintenance_required_micros, h.initial_required_micros), (20_000_001, 25_000_002));
    assert!(!h.liquidatable);
    // 200 − 40 − 0.02 (taker fee) + 8 − 0.004.
    let collateral = (200 * USD - 40 * USD - 20_000 + 8 * USD - 4_000) as i64;
    assert_eq!((h.equity_micros, m.collateral(&carol)), (collateral, collateral));
    let free = (collateral - 25_000_002) as u64;
    refused(&mut m, &carol, Op::Withdraw(pb::Withdraw { amount_micros: free + 1 }), Reason::InsufficientCollateral);
    m.net.run(&carol, Op::Withdraw(pb::Withdraw { amount_micros: free - 100 * USD })).expect("within free collateral");

    // Back to the standard rules would need the naked short's margin: refused.
    let why = refused(&mut m, &carol, mode(false), Reason::InsufficientMargin);
    assert!(why.contains("requirement"), "{why}");

    // A market that offers no portfolio margin, and a perpetual market, refuse the op.
    let (oracle, deposit) = (Keypair::from_seed([2; 32]), Keypair::from_seed([4; 32]));
    let mut off = Net::new(&oracle, &deposit, |g| {
        options_genesis(g);
        g.market.options.as_mut().expect("options").pm_spot_shock_bps = 0;
    });
    let e = off.run(&carol, mode(true)).expect_err("refused");
    assert!(e.reason == Reason::InvalidOp && e.message.contains("offers no portfolio margin"), "{}", e.message);
    let mut perp = Net::new(&oracle, &deposit, |_| {});
    let e = perp.run(&carol, mode(true)).expect_err("refused");
    assert!(e.reason == Reason::InvalidOp && e.message.contains("not an options market"), "{}", e.message);
}
