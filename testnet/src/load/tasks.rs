//! The tasks that run during a load: sending lanes, the header follower, the market maker, the oracle.

use super::*;

/// Sends this lane's share of orders at `rate_per_s` from `start` until `end`, in batches of up to `batch`
/// (whatever is due at each tick, so low rates are not held back to fill a batch).
pub(super) async fn lane(
    client: ShardClient,
    mut signed: mpsc::Receiver<Signed>,
    rate_per_s: f64,
    (start, end): (Instant, Instant),
    batch: usize,
    stats: Arc<Mutex<Stats>>,
) {
    let mut sent = 0u64;
    loop {
        let now = Instant::now();
        if now >= end {
            return;
        }
        let due = (((now - start).as_secs_f64() * rate_per_s) as u64).saturating_sub(sent).min(batch as u64) as usize;
        if due == 0 {
            tokio::time::sleep(PACE_TICK).await;
            continue;
        }
        let mut orders = Vec::with_capacity(due);
        while orders.len() < due {
            match signed.try_recv() {
                Ok(s) => orders.push(s),
                Err(_) => break,
            }
        }
        if orders.is_empty() {
            let waited = Instant::now();
            match tokio::time::timeout(end.saturating_duration_since(waited), signed.recv()).await {
                Ok(Some(s)) => orders.push(s),
                Ok(None) | Err(_) => return,
            }
            lock(&stats).starved += waited.elapsed();
        }
        sent += orders.len() as u64;
        let hashes: Vec<B256> = orders.iter().map(|o| o.hash).collect();
        let txs: Vec<pb::SignedTx> = orders.into_iter().map(|o| o.tx).collect();
        lock(&stats).sub.sending(&hashes);
        let result = client.submit_batch(txs).await;
        lock(&stats).sub.answered(&hashes, result);
    }
}

/// Reads `StreamHeaders` from `next_height` on and stamps each header with its arrival time at once;
/// resubscribes from the next height if the stream ends.
pub(super) async fn read_headers(client: ShardClient, mut next_height: u64, out: mpsc::Sender<Arrival>) {
    loop {
        let mut rpc = client.raw();
        let mut stream = match rpc.stream_headers(pb::StreamHeadersRequest { from_height: next_height }).await {
            Ok(r) => r.into_inner(),
            Err(_) => {
                tokio::time::sleep(Duration::from_millis(100)).await;
                continue;
            }
        };
        while let Ok(Some(finalized)) = stream.message().await {
            let arrived = Instant::now();
            let Ok(header) = pb::BlockHeader::decode(finalized.header.as_slice()) else { continue };
            next_height = header.height + 1;
            let delay_ms = crate::now_ms().saturating_sub(header.timestamp_ms);
            if out.send((header.height, arrived, u32::try_from(delay_ms).unwrap_or(u32::MAX))).await.is_err() {
                return;
            }
        }
    }
}

/// Follows flushed blocks and marks the accepted orders they hold final: headers are stamped on arrival by
/// [`read_headers`], then each block's receipts are fetched (`GetBlock`) and matched by tx hash. With a
/// bridge load, the block's transfer locks, credits and acks go to it too.
/// The block at `height`, asked again for up to [`BLOCK_RETRY`] while the node fails to answer (it was
/// killed right after streaming the header, and restarts; the header says the block exists): a skipped
/// block would leave its txs pending until the end of the drain.
async fn block_with_retries(client: &ShardClient, height: u64) -> shardex_client::Result<pb::Block> {
    let deadline = Instant::now() + BLOCK_RETRY;
    loop {
        match client.block(height).await {
            Err(_) if Instant::now() < deadline => {
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
            other => return other,
        }
    }
}

pub(super) async fn follow(
    client: ShardClient,
    from_height: u64,
    stats: Arc<Mutex<Stats>>,
    bridge: Option<Arc<BridgeLoad>>,
) {
    let shard = client.domain().shard.0;
    let (tx, mut headers) = mpsc::channel(HEADER_QUEUE);
    let _reader = AbortOnDrop(tokio::spawn(read_headers(client.clone(), from_height, tx)));
    while let Some((height, arrived, delay_ms)) = headers.recv().await {
        let block = block_with_retries(&client, height).await;
        if let (Some(b), Ok(block)) = (&bridge, &block) {
            b.observe_block(shard, block, arrived);
        }
        let mut s = lock(&stats);
        s.header_delay_ms.push(delay_ms);
        let Ok(block) = block else {
            s.block_errors += 1;
            continue;
        };
        s.blocks += 1;
        for receipt in &block.receipts {
            let Some(sent_at) = b256_from_slice(&receipt.tx_hash).and_then(|h| s.sub.pending.remove(&h)) else {
                continue;
            };
            s.finals += 1;
            let us = arrived.saturating_duration_since(sent_at).as_micros();
            s.latencies_us.push(u32::try_from(us).unwrap_or(u32::MAX));
            let traded = receipt
                .events
                .iter()
                .any(|e| matches!(&e.kind, Some(pb::event::Kind::OrderFilled(f)) if !f.is_maker && f.lots > 0));
            s.filled += u64::from(traded);
        }
    }
}

/// Tops the quotes up every [`MM_REFRESH`], waiting for each top-up to be final before looking again.
pub(super) async fn market_maker(client: ShardClient, mut maker: Wallet, market: Market, stats: Arc<Mutex<Stats>>) {
    loop {
        tokio::time::sleep(MM_REFRESH).await;
        let Ok(book) = client.book((QUOTE_LEVELS * 3) as u32).await else { continue };
        let orders = missing_quotes(&market, &book);
        if orders.is_empty() {
            continue;
        }
        let txs: Vec<pb::SignedTx> = orders.into_iter().map(|o| maker.sign(&client, Op::PlaceOrder(o))).collect();
        let n = txs.len() as u64;
        let Ok(results) = client.submit_batch(txs).await else {
            lock(&stats).quotes_refused += n;
            continue;
        };
        let last = results.iter().filter(|r| r.accepted).filter_map(|r| b256_from_slice(&r.tx_hash)).next_back();
        {
            let mut s = lock(&stats);
            s.quotes += n;
            s.quotes_refused += results.iter().filter(|r| !r.accepted).count() as u64;
        }
        if let Some(hash) = last {
            let _ = client.wait_final(hash, Duration::from_secs(5)).await;
        }
    }
}

/// Republishes the price every [`ORACLE_EVERY`] with the current time.
pub(super) async fn oracle_feed(client: ShardClient, mut oracle: Wallet, market: Market, stats: Arc<Mutex<Stats>>) {
    loop {
        tokio::time::sleep(ORACLE_EVERY).await;
        if oracle.oracle_update(&client, market.spot_micros, crate::now_ms()).await.is_err() {
            lock(&stats).oracle_failed += 1;
        }
    }
}
