//! Trading against a real `shard-node` over gRPC: an oracle feeder, a market maker quoting both sides, and
//! takers; positions, health, depth and proofs come back through the SDK; refusals carry their reasons.

mod support;

use std::time::Duration;

use shardex_client::{ShardClient, Wallet};
use shardex_core::{pb, AccountId, Reason, B256};
use support::{account, NodeProcess, TestKeys};
use tonic::Code;

const USD: u64 = 1_000_000;
const BTC_100K: u64 = 100_000_000_000;
const TICK: u64 = 100_000;
const FINAL: Duration = Duration::from_secs(15);

fn order(side: pb::Side, price: u64, lots: u64, tif: pb::TimeInForce, client_order_id: u64) -> pb::PlaceOrder {
    pb::PlaceOrder {
        side: side as i32,
        order_type: if price == 0 { pb::OrderType::Market } else { pb::OrderType::Limit } as i32,
        time_in_force: tif as i32,
        price_micros: price,
        size_lots: lots,
        reduce_only: false,
        client_order_id,
    }
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
    let (mm_key, mm) = account(91);
    let (taker_key, taker) = account(92);
    let (poor_key, poor) = account(93);

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
