//! Steps 6 to 8 and 14 of the demo, on the network's options shard (skipped without one):
//! - 6: the admin lists calls and a put of the daily expiry and a call expiring within a minute; the oracle
//!   publishes spot and volatility; a market maker quotes every series at its Black-76 price ± 1 USD.
//! - 7: frank sells a call spread on 150 USD (margined at its 100 USD maximum loss) and buys the short-dated
//!   call; grace's naked short call is refused on 300 USD and accepted on 455; both accounts' Greeks.
//! - 8: spot rises 9%: the spread is still covered, the naked short is below maintenance and henry takes
//!   it over at the mark.
//! - 14 (after the other shards' steps, so the wait overlaps them): the short-dated call expires, the
//!   oracle's next price fixes its settlement at the window's average, and one `SettleExpired` pays frank
//!   and charges the market maker through the pool, which keeps no more than rounding dust.

use std::{path::Path, time::Duration};

use eyre::{ensure, eyre, WrapErr};
use shardex_client::{ShardClient, Wallet};
use shardex_core::{
    genesis::Genesis,
    option::series::{OptionKind, SeriesId},
    order::{market_order, option_order},
    pb::{self, tx_body::Op},
    AccountId, Keypair, Reason, Usd,
};

use super::{ensure_normal_mode, expect_reason, step, trader_key, usd, FINAL, USD};
use crate::{network::NodeEntry, now_ms, options};

/// Lots of one unit of underlying (the testnet's options lots are 0.01).
fn unit_lots(lot_size: u64) -> u64 {
    (1_000_000 / lot_size.max(1)).max(1)
}

/// The options story between step 8 and step 14: who holds what, and the short-dated series.
pub(super) struct OptionsDemo {
    node: NodeEntry,
    client: ShardClient,
    oracle: Wallet,
    mm: Wallet,
    frank: AccountId,
    expiring: SeriesId,
    spot_micros: u64,
}

/// Sizes and times of the story.
const SPOT_USD: u64 = 3_000;
/// The short-dated series expires at least this far after it is listed: step 7 trades it well before its
/// settlement window, and the steps in between take about as long.
const SHORT_TENOR_MS: u64 = 30_000;

/// Prints an options account's health: collateral against its option margin.
async fn show_health(client: &ShardClient, name: &str, who: &AccountId) -> eyre::Result<pb::AccountHealth> {
    let h = client.position(who, false).await?.health.ok_or_else(|| eyre!("no oracle price or volatility"))?;
    println!(
        "    {name}: collateral {}, initial margin {}, maintenance {}{}",
        Usd::from_micros(h.equity_micros),
        Usd::from_micros(h.initial_required_micros),
        Usd::from_micros(h.maintenance_required_micros),
        if h.liquidatable { "  LIQUIDATABLE" } else { "" }
    );
    Ok(h)
}

fn take(s: &SeriesId, side: pb::Side, lots: u64) -> pb::PlaceOrder {
    pb::PlaceOrder { series: s.to_bytes().to_vec(), ..market_order(side, lots) }
}

/// Steps 6 to 8 on the first options shard of `clients`; `None` (and a note) without one.
pub(super) async fn open(
    dir: &Path,
    clients: &[(NodeEntry, ShardClient, Genesis)],
    deposit_key: &Keypair,
    run: usize,
) -> eyre::Result<Option<OptionsDemo>> {
    let Some((node, client, genesis)) = clients.iter().find(|(_, _, g)| g.market.options.is_some()) else {
        step(6, "Options: listing, a spread, a naked short, Greeks, a liquidation, an expiry");
        println!("    skipped: the network has no options shard (`testnet up --shards BTC-PERP,ETH-OPTIONS`)");
        return Ok(None);
    };
    let (tick, lot_size) = (genesis.market.tick_size_micros, genesis.market.lot_size);
    let strike_tick = genesis.market.options.as_ref().map_or(1, |o| o.strike_tick_micros.max(1));
    let expiry_step = genesis.market.options.as_ref().map_or(1, |o| o.expiry_step_ms.max(1));
    let unit = unit_lots(lot_size);
    let keys = dir.join("keys");
    let mut admin = Wallet::new(Keypair::read_file(&keys.join("admin.key"))?, client).await?;
    let mut oracle = Wallet::new(Keypair::read_file(&keys.join("oracle.key"))?, client).await?;
    let spot = SPOT_USD * USD;
    let now = now_ms();
    let daily = options::daily_expiry_ms(now);
    let atm = spot / strike_tick * strike_tick;
    let otm = (spot + 100 * USD).div_ceil(strike_tick) * strike_tick;
    let call = |expiry_ms, strike_micros| SeriesId { expiry_ms, strike_micros, kind: OptionKind::Call };
    let (atm_call, cover) = (call(daily, atm), call(daily, otm));
    let put = SeriesId { kind: OptionKind::Put, ..atm_call };
    let expiring = call((now + SHORT_TENOR_MS).div_ceil(expiry_step) * expiry_step, atm);
    let series = [atm_call, cover, put, expiring];

    step(6, &format!("{}: the admin lists ETH options, the oracle prices them, a market maker quotes", node.name));
    client.wait_final(oracle.oracle_update(client, spot, now_ms()).await?, FINAL).await?;
    ensure_normal_mode(dir, client).await?;
    let new = options::list_and_price(client, &mut admin, &mut oracle, &series).await?;
    println!("    {new} new series; volatility {}% at every strike; spot {}", options::VOL_PPM / 10_000, usd(spot));
    let mm_key = trader_key(dir, &format!("options-mm-{run}"))?;
    let mut authority = Wallet::new(deposit_key.clone(), client).await?;
    client.wait_final(authority.deposit(client, &mm_key.account(), 1_000_000 * USD).await?, FINAL).await?;
    let mut mm = Wallet::new(mm_key, client).await?;
    let mut last = None;
    for s in &series {
        let (bid, ask) = options::quotes(options::price(s, spot, now_ms())?, USD, tick);
        println!("    {s:<26} bid {:>12} ask {:>12}  ({} lots each)", usd(bid), usd(ask), 10 * unit);
        for (side, price) in [(pb::Side::Buy, bid), (pb::Side::Sell, ask)] {
            let order = option_order(s, side, price, 10 * unit, pb::TimeInForce::Gtc);
            last = Some(mm.place_order(client, order).await?);
        }
    }
    if let Some(hash) = last {
        client.wait_final(hash, FINAL).await?;
    }

    step(7, "frank sells a call spread on 150 USD; grace sells a naked call; their Greeks");
    let (frank, grace, henry) = (
        trader_key(dir, &format!("frank-{run}"))?,
        trader_key(dir, &format!("grace-{run}"))?,
        trader_key(dir, &format!("henry-{run}"))?,
    );
    for (who, amount) in [(&frank, 150u64), (&grace, 300), (&henry, 5_000)] {
        client.wait_final(authority.deposit(client, &who.account(), amount * USD).await?, FINAL).await?;
    }
    // Long the higher strike, short the lower: the short call is covered, and the most the spread can lose
    // at expiry is the distance between the strikes.
    let mut frank_w = Wallet::new(frank.clone(), client).await?;
    frank_w.place_order(client, take(&cover, pb::Side::Buy, unit)).await?;
    let hash = frank_w.place_order(client, take(&atm_call, pb::Side::Sell, unit)).await?;
    client.wait_final(hash, FINAL).await.wrap_err("frank's spread")?;
    let width = otm - atm;
    println!("    frank: long {cover}, short {atm_call}: the short is covered, at most {} to lose", usd(width));
    let h = show_health(client, "frank", &frank.account()).await?;
    ensure!(
        h.maintenance_required_micros == width as i64,
        "a covered call spread needs its maximum loss {}, not {}",
        usd(width),
        Usd::from_micros(h.maintenance_required_micros)
    );
    let hash = frank_w.place_order(client, take(&expiring, pb::Side::Buy, unit)).await?;
    client.wait_final(hash, FINAL).await.wrap_err("frank's short-dated call")?;
    println!("    frank also buys one {expiring}, which expires within a minute");

    let mut grace_w = Wallet::new(grace.clone(), client).await?;
    let naked = grace_w.sign(client, Op::PlaceOrder(take(&atm_call, pb::Side::Sell, unit)));
    expect_reason("grace sells a naked call on 300 USD", client.submit(naked).await, Reason::InsufficientMargin)?;
    client.wait_final(authority.deposit(client, &grace.account(), 155 * USD).await?, FINAL).await?;
    let hash = grace_w.place_order(client, take(&atm_call, pb::Side::Sell, unit)).await?;
    client.wait_final(hash, FINAL).await.wrap_err("grace's naked call")?;
    println!("    with 455 USD, grace's naked call is accepted (15% of spot plus the mark)");
    show_health(client, "grace", &grace.account()).await?;
    for (name, who) in [("frank", frank.account()), ("grace", grace.account())] {
        let g = client.greeks(&who).await?;
        println!(
            "    {name} Greeks at height {}: delta {:+.4} ETH, gamma {:+.6}/USD, vega {:+.2} USD/pt, theta {:+.2} \
             USD/day",
            g.height,
            g.delta_micro_units as f64 / 1e6,
            g.gamma_e12 as f64 / 1e12,
            g.vega_micros as f64 / 1e6,
            g.theta_micros as f64 / 1e6
        );
    }

    let risen = spot / 100 * 109;
    step(8, &format!("Spot rises 9% to {}: the spread stays covered, the naked call does not", usd(risen)));
    client.wait_final(oracle.oracle_update(client, risen, now_ms()).await?, FINAL).await?;
    let f = show_health(client, "frank", &frank.account()).await?;
    ensure!(!f.liquidatable, "frank's spread is covered whatever the price");
    let g = show_health(client, "grace", &grace.account()).await?;
    ensure!(g.liquidatable, "grace's naked call should be below maintenance");
    let mut henry_w = Wallet::new(henry.clone(), client).await?;
    let liquidate =
        pb::Liquidate { account: grace.account().0.to_vec(), max_size_lots: 0, series: atm_call.to_bytes().to_vec() };
    let inc = client.wait_final(henry_w.submit(client, Op::Liquidate(liquidate)).await?, FINAL).await?;
    let report = super::liquidated(inc)?;
    println!(
        "    henry took grace's short of {} lots of {atm_call} over at {}: penalty {}, henry earns {}, insurance \
         fund {:+}",
        report.lots.unsigned_abs(),
        usd(report.price_micros),
        Usd::from_micros(report.penalty_micros),
        Usd::from_micros(report.liquidator_reward_micros),
        Usd::from_micros(report.insurance_delta_micros)
    );
    let after = show_health(client, "grace", &grace.account()).await?;
    ensure!(!after.liquidatable, "the liquidation did not close grace's risk");
    Ok(Some(OptionsDemo {
        node: node.clone(),
        client: client.clone(),
        oracle,
        mm,
        frank: frank.account(),
        expiring,
        spot_micros: risen,
    }))
}

/// Step 14: the short-dated series expires and settles.
pub(super) async fn settle(demo: Option<OptionsDemo>, keeper: &Keypair) -> eyre::Result<()> {
    let Some(mut d) = demo else { return Ok(()) };
    let client = &d.client;
    step(14, &format!("{}: the short-dated call {} expires and settles", d.node.name, d.expiring));
    let wait = d.expiring.expiry_ms.saturating_sub(now_ms()) + 500;
    if wait > 500 {
        println!("    waiting {:.1} s for the expiry", wait as f64 / 1e3);
    }
    tokio::time::sleep(Duration::from_millis(wait)).await;
    // The oracle's first price at or after the expiry fixes the settlement price.
    client.wait_final(d.oracle.oracle_update(client, d.spot_micros, now_ms()).await?, FINAL).await?;
    let settled = options::settlement_price(client, d.expiring.expiry_ms).await?;
    ensure!(settled != 0, "the oracle's price after the expiry did not fix its settlement price");
    println!("    settlement price {} (the oracle's average over the window before the expiry)", usd(settled));
    let (mm, frank) = (d.mm.account(), d.frank);
    let before =
        [client.account(&frank).await?, client.account(&mm).await?].map(|r| r.map_or(0, |r| r.collateral_micros));
    let mut keeper_w = Wallet::new(keeper.clone(), client).await?;
    let op =
        pb::SettleExpired { series: d.expiring.to_bytes().to_vec(), accounts: vec![frank.0.to_vec(), mm.0.to_vec()] };
    client.wait_final(keeper_w.submit(client, Op::SettleExpired(op)).await?, FINAL).await?;
    let after =
        [client.account(&frank).await?, client.account(&mm).await?].map(|r| r.map_or(0, |r| r.collateral_micros));
    let market = client.market(false).await?;
    let lot_size = market.market.as_ref().map_or(1, |m| m.lot_size);
    let value =
        u128::from(d.expiring.intrinsic_micros(settled)) * u128::from(unit_lots(lot_size)) * u128::from(lot_size)
            / 1_000_000;
    println!(
        "    frank is paid {}, the market maker (short) pays {}; the pool keeps {}",
        Usd::from_micros(after[0] - before[0]),
        Usd::from_micros(before[1] - after[1]),
        Usd::from_micros(market.funding.map_or(0, |f| f.pool_micros))
    );
    ensure!(
        (after[0] - before[0]) as u128 == value,
        "frank should be paid the intrinsic value {}",
        Usd::from_micros(value as i64)
    );
    ensure!(before[1] - after[1] >= after[0] - before[0], "the short paid less than the long received");
    // The market maker's quotes go, so the next run starts from an empty book.
    let hash = d.mm.cancel_all(client).await?;
    client.wait_final(hash, FINAL).await?;
    Ok(())
}
