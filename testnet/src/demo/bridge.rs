//! Step 9 of the demo: collateral moved from one shard to another and used as margin there. A fresh trader
//! funded only on the first shard is refused an order on the second for lack of margin; she locks collateral
//! on the first shard for herself on the second (`TransferOut`), the demo follows the message through the
//! relayer (locked → committed → delivered → acked), checks both shards' records against their proofs, and
//! the same order is accepted on the second shard.

use std::{
    collections::BTreeMap,
    path::Path,
    time::{Duration, Instant},
};

use eyre::{bail, ensure, eyre, WrapErr};
use futures::{Stream, StreamExt};
use shardex_client::{BridgeClient, ClientError, ShardClient, Wallet};
use shardex_core::{
    genesis::Genesis,
    order::limit_order,
    pb::{self, tx_body::Op},
    AccountId, Keypair, Reason, ShardId, Usd,
};
use shardex_proto::bridge::v1 as bpb;

use super::{ensure_normal_mode, step, trader_key, usd, FINAL, USD};
use crate::{
    network::{reference_price_usd, Network, NodeEntry},
    now_ms, relayer,
};

/// What the trader is funded with on the first shard, and what she moves to the second.
const FUNDED_USD: u64 = 2_000;
const MOVED_USD: u64 = 1_000;
/// Notional of her order on the second shard: its initial margin (10%) needs the moved collateral.
const ORDER_NOTIONAL_USD: u64 = 5_000;
/// Epochs until the transfer expires (far away: the relayer delivers it within a second or so).
const EXPIRY_EPOCHS: u64 = 14_400;
/// How long the demo follows the message before it fails.
const FOLLOW: Duration = Duration::from_secs(30);
/// When the lifecycle stream is quiet this long, the demo asks the relayer for the message instead.
const ASK_AFTER: Duration = Duration::from_millis(500);

/// A message's id as (source, destination, seq).
type MessageKey = (u32, u32, u64);

/// Runs step 9 between the first two shards. Returns the trader to show in the proofs of steps 15 and 16,
/// or None when the step was skipped (one shard, or the bridge is off in an older network).
pub(super) async fn cross_shard_margin(
    dir: &Path,
    net: &Network,
    clients: &[(NodeEntry, ShardClient, Genesis)],
    deposit_key: &Keypair,
    expected: &mut BTreeMap<(u32, AccountId), i64>,
    run: usize,
) -> eyre::Result<Option<(String, AccountId)>> {
    let [(src_node, src, src_genesis), (dst_node, dst, dst_genesis), ..] = clients else {
        step(9, "Collateral moved from one shard to another and used as margin there");
        println!("    skipped: the network has one shard");
        return Ok(None);
    };
    step(
        9,
        &format!(
            "erin moves {MOVED_USD} USD of collateral from {} to {} and uses it as margin there",
            src_node.name, dst_node.name
        ),
    );
    let relayer_entry = match (&net.relayer, relayer::bridge_off_reason(net)?) {
        (_, Some(why)) => {
            println!("    skipped: bridge off ({why})");
            return Ok(None);
        }
        (None, None) => {
            println!("    skipped: the network has no relayer (`testnet down` then `testnet up` starts one)");
            return Ok(None);
        }
        (Some(r), None) => r,
    };
    let erin = trader_key(dir, &format!("erin-{run}"))?;
    let who = erin.account();
    for (node, client, _) in clients {
        let have = client.account(&who).await?.map_or(0, |r| r.collateral_micros);
        expected.insert((node.shard_id.0, who), have);
    }
    let (moved, funded) = (MOVED_USD * USD, FUNDED_USD * USD);

    let mut authority = Wallet::new(deposit_key.clone(), src).await?;
    src.wait_final(authority.deposit(src, &who, funded).await?, FINAL).await?;
    *expected.entry((src_node.shard_id.0, who)).or_default() += funded as i64;
    println!(
        "    erin {}… holds {} on {} and nothing on {}",
        &who.to_hex()[..8],
        usd(funded),
        src_node.name,
        dst_node.name
    );

    // A fresh price on the destination, so its margin check has a mark; a market a stale price left in
    // another mode (an earlier run) goes back to normal.
    let mut oracle = Wallet::new(Keypair::read_file(&dir.join("keys").join("oracle.key"))?, dst).await?;
    let price = reference_price(&dst_genesis.market.symbol, dst_genesis.market.tick_size_micros);
    dst.wait_final(oracle.oracle_update(dst, price, now_ms()).await?, FINAL).await?;
    ensure_normal_mode(dir, dst).await?;
    let lot_size = dst_genesis.market.lot_size.max(1);
    let lots = (u128::from(ORDER_NOTIONAL_USD * USD) * 1_000_000 / (u128::from(lot_size) * u128::from(price))).max(1);
    let lots = u64::try_from(lots).wrap_err("order size")?;
    let bid = price.saturating_sub(10 * dst_genesis.market.tick_size_micros.max(1));
    let order = || Op::PlaceOrder(limit_order(pb::Side::Buy, bid, lots, pb::TimeInForce::PostOnly));
    let what =
        format!("erin bids for {lots} lots @ {} (about {ORDER_NOTIONAL_USD} USD) on {}", usd(bid), dst_node.name);
    let mut erin_dst = Wallet::new(erin.clone(), dst).await?;
    expect_refusal(&what, erin_dst.submit(dst, order()).await, Reason::InsufficientMargin)?;

    // Subscribe before the lock, so no stage is missed.
    let bridge = BridgeClient::connect(&relayer_entry.endpoint).await.wrap_err("connecting to the relayer")?;
    let mut events = bridge.stream_lifecycle().await.wrap_err("subscribing to the relayer's lifecycle stream")?;
    let expiry_epoch = relayer::latest_epoch(net).await?.saturating_add(EXPIRY_EPOCHS);
    let transfer = Op::TransferOut(pb::TransferOut {
        dst_shard: dst_node.shard_id.0,
        recipient: who.0.to_vec(),
        amount_micros: moved,
        expiry_epoch,
    });
    let mut erin_src = Wallet::new(erin.clone(), src).await?;
    let sent = Instant::now();
    let hash = erin_src.submit(src, transfer).await?;
    let inc = src.wait_final(hash, FINAL).await?;
    let key = locked_message(&inc).ok_or_else(|| eyre!("the transfer's receipt names no message"))?;
    *expected.entry((src_node.shard_id.0, who)).or_default() -= moved as i64;
    *expected.entry((dst_node.shard_id.0, who)).or_default() += moved as i64;
    println!(
        "    TransferOut of {} final on {} in block {} (tx 0x{}…): message {}/{}/{}, expiry epoch {expiry_epoch}",
        usd(moved),
        src_node.name,
        inc.height,
        &hex::encode(hash)[..16],
        key.0,
        key.1,
        key.2
    );
    println!("    the relayer carries it (time since the transfer was sent):");
    follow(&bridge, &mut events, key, sent, (&src_node.name, &dst_node.name)).await?;

    // Both shards' records, each checked against its proof and a header certified by the shard's validators.
    let out = src
        .message(ShardId(key.1), key.2, false, true, Some(&src_genesis.validators))
        .await
        .wrap_err_with(|| format!("proving the escrow on {}", src_node.name))?;
    let escrow = out.escrow.ok_or_else(|| eyre!("{} has no escrow of the message", src_node.name))?;
    ensure!(escrow.state == pb::MessageState::Acked as i32, "the escrow on {} is not acked: {escrow:?}", src_node.name);
    let incoming = dst
        .message(ShardId(key.0), key.2, true, true, Some(&dst_genesis.validators))
        .await
        .wrap_err_with(|| format!("proving the receipt on {}", dst_node.name))?;
    let receipt = incoming.receipt.ok_or_else(|| eyre!("{} has no receipt of the message", dst_node.name))?;
    println!(
        "    proven: escrow ACKED on {} (locked at height {}, released at {}), receipt on {} (credited at height {})",
        src_node.name, escrow.locked_height, escrow.closed_height, dst_node.name, receipt.delivered_height
    );
    let credited = dst.account(&who).await?.map_or(0, |r| r.collateral_micros);
    ensure!(
        credited == moved as i64,
        "erin holds {} on {}, expected {}",
        Usd::from_micros(credited),
        dst_node.name,
        usd(moved)
    );

    // The same order, now backed by the moved collateral (the price republished, so it is fresh).
    dst.wait_final(oracle.oracle_update(dst, price, now_ms()).await?, FINAL).await?;
    let inc = dst.wait_final(erin_dst.submit(dst, order()).await.wrap_err_with(|| what.clone())?, FINAL).await?;
    let rests = inc.receipt.iter().flat_map(|r| r.events.iter()).find_map(|e| match &e.kind {
        Some(pb::event::Kind::OrderPlaced(o)) => Some(o.order_id),
        _ => None,
    });
    let order_id = rests.ok_or_else(|| eyre!("erin's order on {} did not rest", dst_node.name))?;
    let health = dst.position(&who, false).await?.health.unwrap_or_default();
    println!(
        "    accepted: order #{order_id} rests on {} (block {}); erin's collateral there {}, free {}",
        dst_node.name,
        inc.height,
        usd(moved),
        Usd::from_micros(health.free_collateral_micros)
    );
    Ok(Some(("erin".into(), who)))
}

/// The reference price of `symbol` ([`reference_price_usd`]), on the tick.
fn reference_price(symbol: &str, tick_micros: u64) -> u64 {
    let price = reference_price_usd(symbol) * USD;
    price - price % tick_micros.max(1)
}

/// Expects a refusal with `reason` and shows the node's message; anything else fails the demo.
fn expect_refusal<T>(what: &str, r: Result<T, ClientError>, reason: Reason) -> eyre::Result<()> {
    match r {
        Err(e) if e.reason() == Some(reason) => {
            println!("    refused as expected: {what} -> {reason}");
            if let ClientError::Rejected { message, .. } = &e {
                let prefix = format!("{reason}: ");
                println!("      the node says: {}", message.strip_prefix(&prefix).unwrap_or(message));
            }
            Ok(())
        }
        Err(e) => bail!("{what}: expected {reason}, got {e}"),
        Ok(_) => bail!("{what}: was accepted, expected {reason}"),
    }
}

/// The message a transfer-out's receipt locked.
fn locked_message(inc: &pb::tx_status::Included) -> Option<MessageKey> {
    inc.receipt.iter().flat_map(|r| r.events.iter()).find_map(|e| match &e.kind {
        Some(pb::event::Kind::BridgeMessageChanged(c)) => Some((c.src_shard, c.dst_shard, c.seq)),
        _ => None,
    })
}

/// Prints each stage of message `key` as the relayer reports it, from its lifecycle stream (or, when the
/// stream is quiet, its `GetMessage`), until the source acks it. A refund, or no ack within [`FOLLOW`], fails.
async fn follow<E>(
    bridge: &BridgeClient,
    events: &mut (impl Stream<Item = Result<bpb::LifecycleEvent, E>> + Unpin),
    key: MessageKey,
    sent: Instant,
    (src, dst): (&str, &str),
) -> eyre::Result<()> {
    let deadline = Instant::now() + FOLLOW;
    let mut shown = bpb::Stage::Unspecified;
    let mut stream_open = true;
    while shown != bpb::Stage::Acked {
        ensure!(
            Instant::now() < deadline,
            "message {}/{}/{} was not acked within {FOLLOW:?} (last stage {}); see `testnet logs relayer`",
            key.0,
            key.1,
            key.2,
            shown.as_str_name()
        );
        let next = if stream_open {
            tokio::time::timeout(ASK_AFTER, events.next()).await.ok()
        } else {
            tokio::time::sleep(ASK_AFTER).await;
            None
        };
        let (life, asked) = match next {
            Some(Some(Ok(ev))) => match ev.message {
                Some(m) if (m.src_shard, m.dst_shard, m.seq) == key => (m, false),
                _ => continue,
            },
            Some(Some(Err(_)) | None) => {
                stream_open = false;
                continue;
            }
            None => {
                let r = bridge.message(key.0, key.1, key.2).await.wrap_err("asking the relayer for the message")?;
                (r.lifecycle.unwrap_or_default(), true)
            }
        };
        let stage = bpb::Stage::try_from(life.stage).unwrap_or(bpb::Stage::Unspecified);
        if stage == bpb::Stage::Refunded {
            bail!("message {}/{}/{} was refunded instead of delivered", key.0, key.1, key.2);
        }
        // Every stage passed since the last line, so a report that skips one (an answer to the ask) still
        // shows the whole way.
        let passed = [bpb::Stage::Locked, bpb::Stage::Committed, bpb::Stage::Delivered, bpb::Stage::Acked];
        for at in passed.into_iter().filter(|at| shown < *at && *at <= stage) {
            let detail = match at {
                bpb::Stage::Locked => format!("escrowed on {src} at height {}", life.locked_height),
                bpb::Stage::Committed => format!("epoch {} commits {src} at or above the lock", life.committed_epoch),
                bpb::Stage::Delivered => format!(
                    "credited on {dst}{} (lock to credit {} ms in block time)",
                    if at == stage { format!(" at height {}", life.delivered_height) } else { String::new() },
                    life.delivered_time_ms.saturating_sub(life.locked_time_ms)
                ),
                _ => format!("escrow released on {src} at height {}", life.closed_height),
            };
            println!(
                "    +{:>5} ms  {:<9} {detail}{}",
                sent.elapsed().as_millis(),
                at.as_str_name().trim_start_matches("STAGE_"),
                if asked { " (asked the relayer)" } else { "" }
            );
        }
        shown = shown.max(stage);
    }
    Ok(())
}
