//! Trading against a real `shard-node` over gRPC: an oracle feeder, a market maker quoting both sides, and
//! takers; positions, health, depth and proofs come back through the SDK; refusals carry their reasons.

mod support;

use std::time::Duration;

use shardex_client::{ShardClient, Wallet};
use shardex_core::{
    order::{limit_order, market_order},
    pb,
    validators::ValidatorSet,
    AccountId, Keypair, Reason, B256,
};
use support::{account, NodeProcess, TestKeys};
use tonic::Code;

const USD: u64 = 1_000_000;
const BTC_100K: u64 = 100_000_000_000;
const TICK: u64 = 100_000;
const FINAL: Duration = Duration::from_secs(15);

fn order(side: pb::Side, price: u64, lots: u64, tif: pb::TimeInForce, client_order_id: u64) -> pb::PlaceOrder {
    let base = if price == 0 { market_order(side, lots) } else { limit_order(side, price, lots, tif) };
    pb::PlaceOrder { client_order_id, ..base }
}

async fn fin(client: &ShardClient, hash: B256) -> pb::tx_status::Included {
    client.wait_final(hash, FINAL).await.expect("final")
}

fn now_ms() -> u64 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).expect("clock").as_millis() as u64
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn market_maker_takers_and_oracle_over_grpc() {
    let dir = tempfile::tempdir().expect("tempdir");
    let keys = TestKeys::new(90);
    let genesis = keys.genesis(4, 1);
    let node = NodeProcess::start(dir.path(), &genesis, &keys.node, &[]);
    let client = node.client().await;
    let (mm_key, mm) = account(191);
    let (taker_key, taker) = account(192);
    let (poor_key, poor) = account(193);

    let mut authority = Wallet::new(keys.deposit.clone(), &client).await.expect("wallet");
    for (who, usd) in [(mm, 100_000), (taker, 20_000), (poor, 50)] {
        fin(&client, authority.deposit(&client, &who, usd * USD).await.expect("deposit")).await;
    }

    // No oracle price yet: orders are refused, not guessed.
    let mut mm_w = Wallet::new(mm_key, &client).await.expect("wallet");
    let err =
        mm_w.place_order(&client, order(pb::Side::Buy, BTC_100K, 1, pb::TimeInForce::Gtc, 0)).await.expect_err("stale");
    assert_eq!((err.code(), err.reason()), (Some(Code::FailedPrecondition), Some(Reason::StalePrice)));

    let mut oracle = Wallet::new(keys.oracle.clone(), &client).await.expect("wallet");
    fin(&client, oracle.oracle_update(&client, BTC_100K, now_ms()).await.expect("oracle")).await;

    // The market maker quotes 3 levels each side around 100,000.
    for i in 1..=3u64 {
        let bid = order(pb::Side::Buy, BTC_100K - i * 10 * TICK, 10, pb::TimeInForce::PostOnly, 100 + i);
        let ask = order(pb::Side::Sell, BTC_100K + i * 10 * TICK, 10, pb::TimeInForce::PostOnly, 200 + i);
        mm_w.place_order(&client, bid).await.expect("bid");
        let h = mm_w.place_order(&client, ask).await.expect("ask");
        fin(&client, h).await;
    }
    let book = client.book(10).await.expect("book");
    assert_eq!(book.bids.len(), 3);
    assert_eq!(book.asks.len(), 3);
    assert_eq!(book.bids[0].price_micros, BTC_100K - 10 * TICK);
    assert_eq!(book.asks[0].price_micros, BTC_100K + 10 * TICK);

    // Idempotent placement: the same client order id again changes nothing.
    let again = order(pb::Side::Buy, BTC_100K - 10 * TICK, 10, pb::TimeInForce::PostOnly, 101);
    fin(&client, mm_w.place_order(&client, again).await.expect("idempotent")).await;
    assert_eq!(client.book(10).await.expect("book").bids[0].total_lots, 10);
    assert_eq!(client.open_orders(&mm).await.expect("orders").len(), 6);

    // A post-only order that would trade is refused.
    let crossing = order(pb::Side::Buy, BTC_100K + 10 * TICK, 1, pb::TimeInForce::PostOnly, 0);
    let err = mm_w.place_order(&client, crossing).await.expect_err("would cross");
    assert_eq!(err.reason(), Some(Reason::WouldCross));

    // The taker buys 15 lots at market: 10 at the best ask, 5 at the next.
    let mut taker_w = Wallet::new(taker_key, &client).await.expect("wallet");
    let inc = fin(
        &client,
        taker_w.place_order(&client, order(pb::Side::Buy, 0, 15, pb::TimeInForce::Ioc, 0)).await.expect("buy"),
    )
    .await;
    let fills: Vec<pb::OrderFilled> = inc
        .receipt
        .expect("receipt")
        .events
        .into_iter()
        .filter_map(|e| match e.kind {
            Some(pb::event::Kind::OrderFilled(f)) if !f.is_maker => Some(f),
            _ => None,
        })
        .collect();
    assert_eq!(
        fills.iter().map(|f| (f.price_micros, f.lots)).collect::<Vec<_>>(),
        vec![(BTC_100K + 10 * TICK, 10), (BTC_100K + 20 * TICK, 5)]
    );

    let p = client.position(&taker, true).await.expect("position with proofs");
    let pos = p.position.expect("position");
    assert_eq!(pos.size_lots, 15);
    // 10 lots at 100,001 + 5 at 100,002 USD/BTC, 1 lot = 0.001 BTC.
    assert_eq!(pos.entry_notional_micros, (10 * 100_001_000 + 5 * 100_002_000) as i64);
    let h = p.health.expect("health");
    // 15 lots = 0.015 BTC = 1,500 USD at the 100,000 mark: initial margin 10% = 150 USD, maintenance 75 USD.
    assert_eq!((h.initial_required_micros, h.maintenance_required_micros), (150 * USD as i64, 75 * USD as i64));
    // 20,000 USD backs it so well that no positive price liquidates it.
    assert!(!h.liquidatable && h.liquidation_price_micros == 0, "{h:?}");
    assert!(h.equity_micros < 20_000 * USD as i64 && h.equity_micros > 19_900 * USD as i64, "{h:?}");
    let mm_pos = client.position(&mm, false).await.expect("mm").position.expect("mm position");
    assert_eq!(mm_pos.size_lots, -15);

    // Too big for its margin: 50 USD of collateral cannot buy 10 lots (1,000 USD notional, 100 USD margin).
    let mut poor_w = Wallet::new(poor_key, &client).await.expect("wallet");
    let before = client.status().await.expect("status").state_root;
    let err =
        poor_w.place_order(&client, order(pb::Side::Buy, 0, 10, pb::TimeInForce::Ioc, 0)).await.expect_err("margin");
    assert_eq!((err.code(), err.reason()), (Some(Code::FailedPrecondition), Some(Reason::InsufficientMargin)));
    tokio::time::sleep(Duration::from_millis(100)).await;
    assert_eq!(client.status().await.expect("status").state_root, before);

    // Withdrawals respect margin: the taker cannot take out collateral backing its position.
    let free = client.position(&taker, false).await.expect("p").health.expect("h").free_collateral_micros as u64;
    let err = taker_w.withdraw(&client, free + 1).await.expect_err("above free");
    assert_eq!(err.reason(), Some(Reason::InsufficientCollateral));

    // The market maker cancels its remaining orders; the book empties on its side.
    fin(&client, mm_w.cancel_all(&client).await.expect("cancel all")).await;
    let book = client.book(10).await.expect("book");
    assert!(book.bids.is_empty() && book.asks.is_empty(), "{book:?}");
    assert!(client.open_orders(&mm).await.expect("orders").is_empty());

    // Someone else cannot cancel the market maker's orders.
    let h = mm_w
        .place_order(&client, order(pb::Side::Buy, BTC_100K - TICK, 1, pb::TimeInForce::Gtc, 0))
        .await
        .expect("bid");
    fin(&client, h).await;
    let id = client.open_orders(&mm).await.expect("orders")[0].order_id;
    let err = taker_w.cancel_order(&client, id).await.expect_err("not the owner");
    assert_eq!(err.reason(), Some(Reason::Unauthorized));
    let _: AccountId = poor;
}

/// The proven ledger (totals and pools, each under one state root that `validators` finalized) conserves
/// money, and its Σ collateral and Σ entry notional equal the sums over `accounts` (every account holding
/// money), read with proofs at the same height.
async fn assert_conserved(client: &ShardClient, accounts: &[AccountId], validators: &ValidatorSet) {
    let ledger = client.ledger(0, Some(validators)).await.expect("proven ledger");
    assert!(ledger.header_checked);
    ledger.check_conservation().expect("money conserved");
    let (mut collateral, mut entry) = (0i128, 0i128);
    for a in accounts {
        let p = client.position(a, true).await.expect("proven position");
        assert_eq!(p.height, ledger.height, "no block between the reads");
        collateral += i128::from(p.account.map_or(0, |r| r.collateral_micros));
        entry += i128::from(p.position.map_or(0, |r| r.entry_notional_micros));
    }
    assert_eq!(i128::from(ledger.totals.collateral_micros), collateral, "collateral total against the accounts");
    assert_eq!(i128::from(ledger.totals.entry_notional_micros), entry, "entry notional total against the positions");
}

/// A proven `GetMarket` answer verifies as fetched, at the head and at an earlier height, and is refused once
/// any pool, total or proof is altered, or against another validator set.
async fn assert_ledger_tampering_refused(client: &ShardClient, validators: &ValidatorSet) {
    use shardex_core::{ledger::verify_ledger_response, proof::ProofError};
    let (chain, shard) = (client.domain().chain, client.domain().shard);
    let fetch = |height| async move {
        client.raw().get_market(pb::GetMarketRequest { prove: true, height }).await.expect("market").into_inner()
    };
    let resp = fetch(0).await;
    let verified = verify_ledger_response(&resp, chain, shard, Some(validators)).expect("as fetched");
    verified.check_conservation().expect("conserved");
    let earlier = client.ledger(resp.height - 1, Some(validators)).await.expect("an earlier height");
    assert_eq!(earlier.height, resp.height - 1);
    earlier.check_conservation().expect("conserved at the earlier height too");
    let above = client.ledger(resp.height + 1_000, Some(validators)).await.expect_err("a height above the head");
    assert_eq!(above.reason(), Some(shardex_core::Reason::NotFound), "{above}");

    type Tamper = fn(&mut pb::GetMarketResponse);
    let tampers: [(&str, Tamper); 6] = [
        ("fee pool", |r| r.fee_pool.as_mut().expect("fee pool").balance_micros += 1),
        ("insurance fund", |r| r.insurance.as_mut().expect("insurance").balance_micros -= 1),
        ("funding pool", |r| r.funding.as_mut().expect("funding").pool_micros += 1),
        ("collateral total", |r| r.totals.as_mut().expect("totals").collateral_micros += 1),
        ("a proof of another record", |r| r.fee_pool_proof = r.insurance_proof.clone()),
        ("a missing proof", |r| r.funding_proof = None),
    ];
    for (what, tamper) in tampers {
        let mut bad = resp.clone();
        tamper(&mut bad);
        let err = verify_ledger_response(&bad, chain, shard, Some(validators)).expect_err(what);
        assert!(
            matches!(err, ProofError::RecordMismatch(_) | ProofError::WrongKey { .. } | ProofError::Missing),
            "{what}: {err}"
        );
    }
    let strangers = ValidatorSet::equal(&[Keypair::from_seed([0x5a; 32]).account()]).expect("valid key");
    let err = verify_ledger_response(&resp, chain, shard, Some(&strangers)).expect_err("another validator set");
    assert!(matches!(err, ProofError::Header(_)), "{err}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn price_crash_makes_accounts_liquidatable_and_liquidation_restores_solvency() {
    let dir = tempfile::tempdir().expect("tempdir");
    let keys = TestKeys::new(100);
    let genesis = keys.genesis(4, 2);
    let node = NodeProcess::start(dir.path(), &genesis, &keys.node, &[]);
    let client = node.client().await;
    let (mm_key, mm) = account(201);
    let (lev_key, lev) = account(202);
    let (degen_key, degen) = account(203);
    let (liq_key, liq) = account(204);
    let everyone = [mm, lev, degen, liq];
    let validators = ValidatorSet::equal(&[keys.node.account()]).expect("valid key");

    let mut authority = Wallet::new(keys.deposit.clone(), &client).await.expect("wallet");
    for (who, usd) in [(mm, 1_000_000), (lev, 1_000), (degen, 300), (liq, 100_000)] {
        fin(&client, authority.deposit(&client, &who, usd * USD).await.expect("deposit")).await;
    }
    let mut oracle = Wallet::new(keys.oracle.clone(), &client).await.expect("wallet");
    fin(&client, oracle.oracle_update(&client, BTC_100K, now_ms()).await.expect("oracle")).await;

    // Deep asks at 100,000 for the leveraged buyers.
    let mut mm_w = Wallet::new(mm_key, &client).await.expect("wallet");
    fin(
        &client,
        mm_w.place_order(&client, order(pb::Side::Sell, BTC_100K, 500, pb::TimeInForce::Gtc, 0)).await.expect("ask"),
    )
    .await;

    // lev buys 80 lots (8,000 USD) on 1,000 USD; degen buys 28 lots (2,800 USD) on 300 USD.
    let mut lev_w = Wallet::new(lev_key, &client).await.expect("wallet");
    fin(
        &client,
        lev_w.place_order(&client, order(pb::Side::Buy, 0, 80, pb::TimeInForce::Ioc, 0)).await.expect("lev buys"),
    )
    .await;
    let mut degen_w = Wallet::new(degen_key, &client).await.expect("wallet");
    fin(
        &client,
        degen_w.place_order(&client, order(pb::Side::Buy, 0, 28, pb::TimeInForce::Ioc, 0)).await.expect("degen buys"),
    )
    .await;
    assert_conserved(&client, &everyone, &validators).await;

    // Healthy accounts cannot be liquidated.
    let mut liq_w = Wallet::new(liq_key, &client).await.expect("wallet");
    let err = liq_w.liquidate(&client, &lev, 0).await.expect_err("healthy");
    assert_eq!((err.code(), err.reason()), (Some(Code::FailedPrecondition), Some(Reason::NotLiquidatable)));

    // The price crashes 9%: both are below maintenance, both still solvent.
    let crash = BTC_100K / 100 * 91;
    fin(&client, oracle.oracle_update(&client, crash, now_ms()).await.expect("crash")).await;
    let h = client.position(&lev, false).await.expect("lev").health.expect("health");
    assert!(h.liquidatable && h.equity_micros > 0, "{h:?}");
    assert!(h.liquidation_price_micros > crash && h.liquidation_price_micros < BTC_100K, "{h:?}");
    let d = client.position(&degen, false).await.expect("degen").health.expect("health");
    assert!(d.liquidatable && d.equity_micros > 0, "{d:?}");

    // The liquidator takes lev's position over at the mark and earns half the 1% penalty.
    let inc = fin(&client, liq_w.liquidate(&client, &lev, 0).await.expect("liquidate lev")).await;
    let report = inc
        .receipt
        .expect("receipt")
        .events
        .into_iter()
        .find_map(|e| match e.kind {
            Some(pb::event::Kind::Liquidated(l)) => Some(l),
            _ => None,
        })
        .expect("liquidation event");
    assert_eq!((report.lots, report.price_micros, report.bad_debt_micros), (80, crash, 0));
    // 1% of 80 lots at 91,000 = 72.8 USD; half to the liquidator, half to the fund.
    assert_eq!(
        (report.penalty_micros, report.liquidator_reward_micros, report.insurance_delta_micros),
        (72_800_000, 36_400_000, 36_400_000)
    );
    let after = client.position(&lev, false).await.expect("lev");
    assert_eq!(after.position.map_or(0, |p| p.size_lots), 0);
    assert!(after.account.expect("acct").collateral_micros > 0, "solvent after liquidation");
    assert_eq!(client.position(&liq, false).await.expect("liq").position.expect("pos").size_lots, 80);
    assert_conserved(&client, &everyone, &validators).await;

    // A further fall to 85,000 makes degen bankrupt: equity 298.6 - 420 = -121.4 USD, beyond the 36.4 USD
    // the fund holds. Auto-deleveraging closes degen's 28 lots against the most profitable opposite position
    // (the market maker's short) at the bankruptcy price, where degen's loss is exactly its collateral plus
    // the fund: 88,035.714286 USD. The fund is emptied, degen ends at zero, and no bad debt is left.
    let deeper = BTC_100K / 100 * 85;
    fin(&client, oracle.oracle_update(&client, deeper, now_ms()).await.expect("deeper")).await;
    let d = client.position(&degen, false).await.expect("degen").health.expect("health");
    assert!(d.liquidatable && d.equity_micros == -121_400_000, "{d:?}");
    let mm_before = client.position(&mm, false).await.expect("mm").position.expect("mm position").size_lots;
    let liq_before = client.position(&liq, false).await.expect("liq").position.expect("liq position").size_lots;
    let inc = fin(&client, liq_w.liquidate(&client, &degen, 0).await.expect("liquidate degen")).await;
    let events = inc.receipt.expect("receipt").events;
    let report = events
        .iter()
        .find_map(|e| match &e.kind {
            Some(pb::event::Kind::Liquidated(l)) => Some(l.clone()),
            _ => None,
        })
        .expect("liquidation event");
    let adl: Vec<pb::Deleveraged> = events
        .iter()
        .filter_map(|e| match &e.kind {
            Some(pb::event::Kind::Deleveraged(x)) if e.account == mm.0.to_vec() => Some(x.clone()),
            _ => None,
        })
        .collect();
    assert_eq!(adl.len(), 1, "{events:?}");
    assert_eq!((adl[0].lots, adl[0].price_micros), (-28, 88_035_714_286), "lots signed like the short it reduced");
    assert_eq!((report.lots, report.penalty_micros, report.bad_debt_micros), (0, 0, 0), "{report:?}");
    assert_eq!(report.insurance_delta_micros, -36_400_000);
    let m = client.market(false).await.expect("m");
    let fund = m.insurance.expect("fund");
    assert_eq!((fund.balance_micros, fund.bad_debt_micros), (0, 0));
    let degen_after = client.position(&degen, true).await.expect("degen with proofs");
    assert_eq!(degen_after.account.expect("acct").collateral_micros, 0);
    assert_eq!(degen_after.position.map_or(0, |p| p.size_lots), 0);
    assert_eq!(client.position(&mm, false).await.expect("mm").position.expect("p").size_lots, mm_before + 28);
    assert_eq!(client.position(&liq, false).await.expect("liq").position.expect("p").size_lots, liq_before);
    assert_conserved(&client, &everyone, &validators).await;

    // Every record is provable: the emptied insurance fund, the funding index and an order-free book side.
    use prost::Message;
    use shardex_core::state_key::Namespace;
    let (proof, value) = client.prove(Namespace::InsuranceFund, &[], 0).await.expect("fund proof");
    let proven = pb::InsuranceFundRecord::decode(value.unwrap_or_default().as_slice()).expect("decodes");
    assert_eq!(proven, fund);
    assert_eq!(proof.state_root, m.state_root);
    let (_, funding) = client.prove(Namespace::FundingIndex, &[], 0).await.expect("funding proof");
    assert!(funding.is_some());
    let err =
        client.raw().get_proof(pb::GetProofRequest { namespace: 99, id: vec![], height: 0 }).await.expect_err("bad ns");
    assert_eq!(err.code(), Code::InvalidArgument);
    assert_ledger_tampering_refused(&client, &validators).await;
}
