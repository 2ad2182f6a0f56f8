//! An options market on a real `shard-node` over gRPC: the admin lists a series, the oracle publishes spot
//! and volatility, a maker and a taker trade it, margin refuses a naked short, and `GetGreeks` answers
//! figures a client recomputes from proven records; the `shardex greeks` CLI prints them.

mod support;

use std::{path::Path, process::Command, time::Duration};

use prost::Message;
use shardex_client::{ShardClient, Wallet};
use shardex_core::{
    genesis::OptionsParams,
    option::{
        black76::Inputs,
        greeks,
        series::{self, OptionKind, SeriesId},
    },
    order::{market_order, option_order},
    pb::{self, tx_body::Op},
    state_key::Namespace,
    Reason, B256,
};
use support::{account, NodeProcess, TestKeys};

const USD: u64 = 1_000_000;
const HOUR: u64 = 3_600_000;
const FINAL: Duration = Duration::from_secs(15);

async fn fin(client: &ShardClient, hash: B256) {
    client.wait_final(hash, FINAL).await.expect("final");
}

fn now_ms() -> u64 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).expect("clock").as_millis() as u64
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_options_market_over_grpc() {
    let dir = tempfile::tempdir().expect("tempdir");
    let keys = TestKeys::new(110);
    let mut genesis = keys.genesis(6, 1);
    genesis.market.symbol = "ETH-OPTIONS".into();
    genesis.market.trading.funding_interval_ms = 0;
    genesis.market.options = Some(OptionsParams::default());
    let node = NodeProcess::start(dir.path(), &genesis, &keys.node, &[]);
    let client = node.client().await;

    // Two hours ahead, on the hour.
    let expiry = (now_ms() + 2 * HOUR).div_ceil(HOUR) * HOUR;
    let call = SeriesId { expiry_ms: expiry, strike_micros: 2_000 * USD, kind: OptionKind::Call };
    let mut admin = Wallet::new(keys.admin.clone(), &client).await.expect("wallet");
    let list = pb::ListSeries { expiry_ms: expiry, strike_micros: call.strike_micros, kind: 1 };
    fin(&client, admin.submit(&client, Op::ListSeries(list)).await.expect("listed")).await;
    let mut oracle = Wallet::new(keys.oracle.clone(), &client).await.expect("wallet");
    fin(&client, oracle.oracle_update(&client, 2_000 * USD, now_ms()).await.expect("spot")).await;
    let points = vec![pb::VolPoint { strike_micros: 2_000 * USD, vol_ppm: 700_000 }];
    let vol = pb::VolUpdate { expiry_ms: expiry, timestamp_ms: now_ms(), points };
    fin(&client, oracle.submit(&client, Op::VolUpdate(vol)).await.expect("vol")).await;

    let ((maker_key, maker), (taker_key, taker), (poor_key, poor)) = (account(111), account(112), account(113));
    let mut deposit = Wallet::new(keys.deposit.clone(), &client).await.expect("wallet");
    for (who, usd) in [(maker, 50_000), (taker, 1_000), (poor, 100)] {
        fin(&client, deposit.deposit(&client, &who, usd * USD).await.expect("deposit")).await;
    }
    let mut maker_w = Wallet::new(maker_key, &client).await.expect("wallet");
    let ask = option_order(&call, pb::Side::Sell, 20 * USD, 3_000, pb::TimeInForce::Gtc);
    fin(&client, maker_w.place_order(&client, ask).await.expect("ask rests")).await;
    let bid = option_order(&call, pb::Side::Buy, 5 * USD, 3_000, pb::TimeInForce::Gtc);
    fin(&client, maker_w.place_order(&client, bid).await.expect("bid rests")).await;

    let mut taker_w = Wallet::new(taker_key, &client).await.expect("wallet");
    let buy = pb::PlaceOrder { series: call.to_bytes().to_vec(), ..market_order(pb::Side::Buy, 2_000) };
    fin(&client, taker_w.place_order(&client, buy).await.expect("taker buys two calls")).await;

    // A naked short the collateral cannot carry is refused with its reason.
    let mut poor_w = Wallet::new(poor_key.clone(), &client).await.expect("wallet");
    let sell = pb::PlaceOrder { series: call.to_bytes().to_vec(), ..market_order(pb::Side::Sell, 1_000) };
    let err = poor_w.place_order(&client, sell).await.expect_err("naked short refused");
    assert_eq!(err.reason(), Some(Reason::InsufficientMargin), "{err}");
    // Health on an options market is the option margin: a long needs nothing.
    let health = client.position(&taker, false).await.expect("position").health.expect("priced");
    let collateral = client.account(&taker).await.expect("account").expect("funded").collateral_micros;
    assert_eq!((health.equity_micros, health.initial_required_micros, health.liquidatable), (collateral, 0, false));

    // The Greeks, and the same figures recomputed from the proven expiry record at the answer's height.
    let g = client.greeks(&taker).await.expect("greeks");
    assert_eq!(g.series.len(), 1);
    let row = &g.series[0];
    assert_eq!((row.series.clone(), row.position_lots, row.vol_ppm), (call.to_bytes().to_vec(), 2_000, 700_000));
    assert!((400_000..700_000).contains(&row.delta_ppm), "near the money: {}", row.delta_ppm);
    let (_, value) = client.prove(Namespace::Expiry, &expiry.to_be_bytes(), g.height).await.expect("proven expiry");
    let record = pb::ExpiryRecord::decode(value.expect("listed").as_slice()).expect("decodes");
    let vol_ppm = series::vol_at(&record.vol_points, call.strike_micros).expect("volatility");
    let inputs = Inputs {
        forward_micros: g.spot_micros,
        strike_micros: call.strike_micros,
        vol_ppm,
        tau_ms: expiry - g.block_time_ms,
    };
    let mine = greeks::of(&inputs, OptionKind::Call).expect("in domain");
    assert_eq!(
        (row.price_micros, row.delta_ppm, row.gamma_e12, row.vega_micros, row.theta_micros),
        (mine.price_micros, mine.delta_ppm, mine.gamma_e12, mine.vega_micros, mine.theta_micros)
    );
    assert_eq!(g.delta_micro_units, 2 * mine.delta_ppm);

    // The CLI prints the same, and the chain from proven records.
    let shardex = shardex_test_support::sibling_bin(Path::new(env!("CARGO_BIN_EXE_shard-node")), "shardex");
    let out = Command::new(&shardex).args(["--node", node.endpoint(), "options", "list"]).output().expect("run");
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{text}{}", String::from_utf8_lossy(&out.stderr));
    assert!(text.contains(&format!("  {call}  (")) && text.contains("2000:70.00%"), "{text}");
    let out = Command::new(&shardex)
        .args(["--node", node.endpoint(), "greeks", &taker.to_string()])
        .output()
        .expect("run shardex");
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{text}{}", String::from_utf8_lossy(&out.stderr));
    let delta = format!("{}.{:06}", g.delta_micro_units / 1_000_000, g.delta_micro_units % 1_000_000);
    assert!(text.contains(&format!("total    delta {delta} units")), "{text}");
    assert!(text.contains("Call") && text.contains("70.00%"), "{text}");

    // The CLI opts an account into portfolio margin; the proven account record says so.
    let key_file = dir.path().join("poor.key");
    poor_key.write_file(&key_file).expect("key file");
    let out = Command::new(&shardex)
        .args(["--node", node.endpoint(), "options", "margin", "--key"])
        .arg(&key_file)
        .arg("portfolio")
        .output()
        .expect("run shardex");
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{text}{}", String::from_utf8_lossy(&out.stderr));
    assert!(text.contains("portfolio rules"), "{text}");
    let proven = client.account_proven(&poor, 0, Some(&genesis.validators)).await.expect("proven account");
    assert!(proven.record.expect("funded").portfolio_margin);
}
