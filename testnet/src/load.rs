//! `testnet load`: signed orders at a fixed rate against a running testnet, measured end to end.
//!
//! Per shard: the deposit key funds a market maker and K takers; the oracle key publishes a price (again
//! every second, so it never goes stale); the market maker keeps deep two-sided quotes and tops them up as
//! they are consumed; the takers send IOC and GTC limit orders that cross the quotes, paced to the target
//! rate (split evenly over shards) and submitted with `SubmitBatch`. Orders are signed ahead of sending on
//! one thread per shard, which reports its own rate, so a reader can tell client signing from node limits.
//!
//! Final means in a flushed block: a follower per shard reads `StreamHeaders` and, for each header, the
//! block's receipts (`GetBlock`); a tx is final when the header of the block holding it arrives, and its
//! latency is that arrival minus the moment its batch was sent. Everything is bounded: tps × duration
//! orders, a drain of at most [`DRAIN`] afterwards, 127.0.0.1 endpoints only.

use std::{
    collections::{BTreeMap, HashMap},
    path::Path,
    sync::{
        atomic::{AtomicU64, Ordering},
        Arc, Mutex, MutexGuard,
    },
    time::{Duration, Instant},
};

use clap::Args;
use eyre::{bail, ensure, eyre, WrapErr};
use prost::Message;
use shardex_client::{ShardClient, Wallet};
use shardex_core::{
    genesis::Genesis,
    hash::{b256_from_slice, tx_hash},
    order::limit_order,
    pb::{self, tx_body::Op},
    tx::{sign_tx, TxDomain},
    AccountId, Keypair, B256,
};
use tokio::sync::mpsc;

use crate::network::{read_key, Network, NodeEntry};

/// Largest `--tps`.
const MAX_TPS: u64 = 100_000;
/// Largest `--duration`, seconds.
const MAX_DURATION_S: u64 = 300;
/// Largest `--accounts` per shard.
const MAX_ACCOUNTS: usize = 1024;
/// Largest `--batch` (the node's default `rpc.max_batch_txs`).
const MAX_BATCH: usize = 1024;
/// Largest `--lanes`.
const MAX_LANES: usize = 64;
/// Pacing granularity of a lane.
const PACE_TICK: Duration = Duration::from_millis(5);
/// Signed orders buffered per lane, in seconds of its rate (at least two batches).
const PRESIGN_S: f64 = 1.0;
/// How long to wait for the signers to fill their buffers before the clock starts.
const PRESIGN_WAIT: Duration = Duration::from_secs(5);
/// After the last batch, how long to wait for accepted orders to become final.
const DRAIN: Duration = Duration::from_secs(10);
/// Setup steps (deposits, first price, first quotes) must be final within this.
const SETUP_FINAL: Duration = Duration::from_secs(30);
/// Market-maker quote levels per side, one tick apart from the price outwards.
const QUOTE_LEVELS: u64 = 5;
/// Lots per quote level; a level below half of it is topped up.
const QUOTE_LOTS: u64 = 20_000;
/// How often the market maker checks its quotes.
const MM_REFRESH: Duration = Duration::from_millis(200);
/// How often the oracle price is republished (markets go stale after 10 s by default).
const ORACLE_EVERY: Duration = Duration::from_secs(1);
const USD: u64 = 1_000_000;
const TAKER_USD: u64 = 1_000_000;
const MAKER_USD: u64 = 100_000_000;
/// Txs per setup `SubmitBatch`.
const SETUP_BATCH: usize = 256;
/// Orders signed on an idle core before the run, as the reference signing rate.
const CALIBRATION_ORDERS: u64 = 2_000;
/// Clock ticks per second of `/proc/<pid>/stat` times (Linux's USER_HZ).
const CLOCK_TICKS_PER_S: f64 = 100.0;
/// Headers queued between the reader and the block fetcher of one shard.
const HEADER_QUEUE: usize = 4096;

/// `testnet load` flags.
#[derive(Debug, Clone, Args)]
pub struct LoadArgs {
    /// Target signed orders per second over all shards (split evenly).
    #[arg(long, default_value_t = 1_000)]
    pub tps: u64,
    /// Seconds of load.
    #[arg(long, default_value_t = 10)]
    pub duration: u64,
    /// Taker accounts per shard.
    #[arg(long, default_value_t = 16)]
    pub accounts: usize,
    /// Orders per `SubmitBatch`, at most.
    #[arg(long, default_value_t = 256)]
    pub batch: usize,
    /// Concurrent `SubmitBatch` calls per shard (at most one per taker). Each lane owns a fixed subset of
    /// the takers and waits for its previous batch, so every account's nonces reach the node in order.
    #[arg(long, default_value_t = 4)]
    pub lanes: usize,
}

impl LoadArgs {
    fn check(&self) -> eyre::Result<()> {
        ensure!((1..=MAX_TPS).contains(&self.tps), "--tps must be 1 to {MAX_TPS}");
        ensure!((1..=MAX_DURATION_S).contains(&self.duration), "--duration must be 1 to {MAX_DURATION_S} s");
        ensure!((1..=MAX_ACCOUNTS).contains(&self.accounts), "--accounts must be 1 to {MAX_ACCOUNTS}");
        ensure!((1..=MAX_BATCH).contains(&self.batch), "--batch must be 1 to {MAX_BATCH}");
        ensure!((1..=MAX_LANES).contains(&self.lanes), "--lanes must be 1 to {MAX_LANES}");
        Ok(())
    }
}

/// What one shard's load did, shared by its tasks.
#[derive(Default)]
struct Stats {
    sent: u64,
    accepted: u64,
    refused: BTreeMap<String, u64>,
    /// Orders in batches whose call failed as a whole.
    rpc_failed: u64,
    last_rpc_error: Option<String>,
    /// Accepted taker orders not yet seen in a block, with the time their batch was sent.
    pending: HashMap<B256, Instant>,
    finals: u64,
    /// Final taker orders that traded at least one lot.
    filled: u64,
    latencies_us: Vec<u32>,
    /// Per block: header arrival minus the block's timestamp (set when its production began), ms.
    header_delay_ms: Vec<u32>,
    blocks: u64,
    block_errors: u64,
    /// Time lanes had orders due but none signed yet.
    starved: Duration,
    quotes: u64,
    quotes_refused: u64,
    oracle_failed: u64,
}

fn lock(stats: &Mutex<Stats>) -> MutexGuard<'_, Stats> {
    stats.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
}

/// Counters of one signing thread.
#[derive(Default)]
struct SignerStats {
    signed: AtomicU64,
    busy_ns: AtomicU64,
}

/// A signed order and its hash (computed on the signing thread).
struct Signed {
    tx: pb::SignedTx,
    hash: B256,
}

/// The market as the load sees it.
#[derive(Debug, Clone, Copy)]
struct Market {
    price_micros: u64,
    tick_micros: u64,
}

impl Market {
    /// A plausible price for `symbol`, on the tick, with room for the quote levels below it.
    fn for_symbol(symbol: &str, tick_micros: u64) -> Self {
        let usd: u64 = match symbol {
            s if s.starts_with("BTC") => 100_000,
            s if s.starts_with("ETH") => 3_000,
            s if s.starts_with("SOL") => 150,
            _ => 100,
        };
        let floor = (QUOTE_LEVELS + 1) * tick_micros;
        let price = (usd * USD).max(floor * 10);
        Self { price_micros: price - price % tick_micros, tick_micros }
    }

    fn quote_price(&self, side: pb::Side, level: u64) -> u64 {
        match side {
            pb::Side::Sell => self.price_micros + level * self.tick_micros,
            _ => self.price_micros - level * self.tick_micros,
        }
    }
}

/// The `k`-th order of a taker: pairs of a buy and a sell of the same size (1–3 lots) so positions stay
/// near flat, priced through every quote level so they cross; one pair in four is GTC, the rest IOC. A GTC
/// order rests only if the market maker's side is empty.
fn taker_order(m: &Market, k: u64) -> pb::PlaceOrder {
    let side = if k.is_multiple_of(2) { pb::Side::Buy } else { pb::Side::Sell };
    let lots = 1 + (k / 2) % 3;
    let tif = if (k / 2) % 4 == 3 { pb::TimeInForce::Gtc } else { pb::TimeInForce::Ioc };
    let through = match side {
        pb::Side::Buy => pb::Side::Sell,
        _ => pb::Side::Buy,
    };
    limit_order(side, m.quote_price(through, QUOTE_LEVELS), lots, tif)
}

/// The orders that bring every quote level back to [`QUOTE_LOTS`], given the book.
fn missing_quotes(m: &Market, book: &pb::GetBookResponse) -> Vec<pb::PlaceOrder> {
    let mut orders = Vec::new();
    for level in 1..=QUOTE_LEVELS {
        for (side, levels) in [(pb::Side::Buy, &book.bids), (pb::Side::Sell, &book.asks)] {
            let price = m.quote_price(side, level);
            let have = levels.iter().find(|l| l.price_micros == price).map_or(0, |l| l.total_lots);
            if have < QUOTE_LOTS / 2 {
                orders.push(limit_order(side, price, QUOTE_LOTS - have, pb::TimeInForce::Gtc));
            }
        }
    }
    orders
}

/// Refuses endpoints that are not on 127.0.0.1.
fn loopback_only(node: &NodeEntry) -> eyre::Result<()> {
    let host = node.endpoint.strip_prefix("http://").and_then(|rest| rest.split(':').next());
    if host != Some("127.0.0.1") {
        bail!("{} is at {:?}; `testnet load` only drives nodes on 127.0.0.1", node.name, node.endpoint);
    }
    Ok(())
}

/// Submits setup `txs` in batches, every one of which must be accepted, and waits until the last is final
/// (blocks take the mempool in order, so then all are).
async fn submit_final(client: &ShardClient, txs: Vec<pb::SignedTx>, what: &str) -> eyre::Result<()> {
    let mut last = None;
    let mut txs = txs.into_iter().peekable();
    while txs.peek().is_some() {
        let chunk: Vec<pb::SignedTx> = txs.by_ref().take(SETUP_BATCH).collect();
        for r in client.submit_batch(chunk).await.wrap_err_with(|| format!("submitting {what}"))? {
            ensure!(r.accepted, "{what} refused: {} {}", r.reason, r.message);
            last = b256_from_slice(&r.tx_hash);
        }
    }
    if let Some(hash) = last {
        client.wait_final(hash, SETUP_FINAL).await.wrap_err_with(|| format!("{what} did not become final"))?;
    }
    Ok(())
}

/// One shard under load: what the report needs.
struct ShardLoad {
    name: String,
    pid: Option<u32>,
    client: ShardClient,
    market: Market,
    rate_per_s: f64,
    orders: u64,
    stats: Arc<Mutex<Stats>>,
    signer: Arc<SignerStats>,
}

/// The keys that act on a shard during the run.
struct Actors {
    takers: Vec<Keypair>,
    maker_key: Keypair,
    maker: Wallet,
    oracle: Wallet,
}

/// Funds a fresh market maker and fresh takers, publishes the price and places the first quotes.
async fn setup(node: &NodeEntry, dir: &Path, args: &LoadArgs, shards: usize) -> eyre::Result<(ShardLoad, Actors)> {
    loopback_only(node)?;
    let client = ShardClient::connect(&node.endpoint).await.wrap_err_with(|| format!("connecting to {}", node.name))?;
    let genesis = Genesis::from_toml(&std::fs::read_to_string(node.genesis_file())?)
        .wrap_err_with(|| format!("genesis of {}", node.name))?;
    let market = Market::for_symbol(&genesis.market.symbol, genesis.market.tick_size_micros);
    let keys = dir.join("keys");
    let mut deposit = Wallet::new(read_key(&keys.join("deposit.key"))?, &client).await?;
    let mut oracle = Wallet::new(read_key(&keys.join("oracle.key"))?, &client).await?;
    let maker_key = Keypair::generate();
    let mut maker = Wallet::with_nonce(maker_key.clone(), 0);
    let takers: Vec<Keypair> = (0..args.accounts).map(|_| Keypair::generate()).collect();

    let fund = |to: AccountId, usd: u64| Op::Deposit(pb::Deposit { account: to.0.to_vec(), amount_micros: usd * USD });
    let mut txs = vec![deposit.sign(&client, fund(maker.account(), MAKER_USD))];
    txs.extend(takers.iter().map(|t| deposit.sign(&client, fund(t.account(), TAKER_USD))));
    let price = Op::OracleUpdate(pb::OracleUpdate { price_micros: market.price_micros, timestamp_ms: crate::now_ms() });
    txs.push(oracle.sign(&client, price));
    submit_final(&client, txs, "deposits and the first price").await?;
    let quotes = missing_quotes(&market, &pb::GetBookResponse::default());
    let txs = quotes.into_iter().map(|o| maker.sign(&client, Op::PlaceOrder(o))).collect();
    submit_final(&client, txs, "market-maker quotes").await?;

    let rate_per_s = args.tps as f64 / shards as f64;
    let load = ShardLoad {
        name: node.name.clone(),
        pid: node.pid,
        client,
        market,
        rate_per_s,
        orders: (rate_per_s * args.duration as f64).round() as u64,
        stats: Arc::default(),
        signer: Arc::default(),
    };
    Ok((load, Actors { takers, maker_key, maker, oracle }))
}

/// Signs every taker order of a shard, round robin over the takers, into the lanes' buffers (taker `a`
/// always goes to lane `a % lanes`). Stops after `total` orders or when the lanes are gone.
fn sign_orders(
    takers: Vec<Keypair>,
    domain: TxDomain,
    market: Market,
    lanes: Vec<mpsc::Sender<Signed>>,
    total: u64,
    stats: Arc<SignerStats>,
) {
    let mut next = vec![0u64; takers.len()];
    for i in 0..total {
        let a = (i % takers.len() as u64) as usize;
        let start = Instant::now();
        let tx = sign_tx(&takers[a], domain, next[a], Op::PlaceOrder(taker_order(&market, next[a])));
        let hash = tx_hash(&tx.body);
        stats.busy_ns.fetch_add(start.elapsed().as_nanos() as u64, Ordering::Relaxed);
        stats.signed.fetch_add(1, Ordering::Relaxed);
        next[a] += 1;
        if lanes[a % lanes.len()].blocking_send(Signed { tx, hash }).is_err() {
            return;
        }
    }
}

/// Starts the shard's signing thread; returns the lanes' receivers.
fn start_signer(
    load: &ShardLoad,
    takers: Vec<Keypair>,
    args: &LoadArgs,
) -> eyre::Result<(Vec<mpsc::Receiver<Signed>>, std::thread::JoinHandle<()>, u64)> {
    let lanes = args.lanes.min(takers.len());
    let buffer = ((load.rate_per_s / lanes as f64 * PRESIGN_S) as usize).max(2 * args.batch);
    let (senders, receivers): (Vec<_>, Vec<_>) = (0..lanes).map(|_| mpsc::channel(buffer)).unzip();
    let (domain, market, total, stats) = (load.client.domain(), load.market, load.orders, load.signer.clone());
    let thread = std::thread::Builder::new()
        .name(format!("sign-{}", load.name))
        .spawn(move || sign_orders(takers, domain, market, senders, total, stats))
        .wrap_err("starting a signing thread")?;
    Ok((receivers, thread, total.min((buffer * lanes) as u64)))
}

/// Sends this lane's share of orders at `rate_per_s` from `start` until `end`, in batches of up to `batch`
/// (whatever is due at each tick, so low rates are not held back to fill a batch).
async fn lane(
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
        {
            let sent_at = Instant::now();
            let mut s = lock(&stats);
            s.sent += hashes.len() as u64;
            s.pending.extend(hashes.iter().map(|h| (*h, sent_at)));
        }
        let result = client.submit_batch(txs).await;
        let mut s = lock(&stats);
        match result {
            Ok(results) => {
                for r in results {
                    if r.accepted {
                        s.accepted += 1;
                        continue;
                    }
                    if let Some(h) = b256_from_slice(&r.tx_hash) {
                        s.pending.remove(&h);
                    }
                    *s.refused.entry(r.reason).or_default() += 1;
                }
            }
            Err(e) => {
                for h in &hashes {
                    s.pending.remove(h);
                }
                s.rpc_failed += hashes.len() as u64;
                s.last_rpc_error = Some(e.to_string());
            }
        }
    }
}

/// Aborts a task when dropped, so a helper task ends with the task that owns it.
struct AbortOnDrop(tokio::task::JoinHandle<()>);

impl Drop for AbortOnDrop {
    fn drop(&mut self) {
        self.0.abort();
    }
}

/// A header as it arrived: height, arrival time, and arrival minus the block timestamp in ms.
type Arrival = (u64, Instant, u32);

/// Reads `StreamHeaders` from `next_height` on and stamps each header with its arrival time at once;
/// resubscribes from the next height if the stream ends.
async fn read_headers(client: ShardClient, mut next_height: u64, out: mpsc::Sender<Arrival>) {
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
/// [`read_headers`], then each block's receipts are fetched (`GetBlock`) and matched by tx hash.
async fn follow(client: ShardClient, from_height: u64, stats: Arc<Mutex<Stats>>) {
    let (tx, mut headers) = mpsc::channel(HEADER_QUEUE);
    let _reader = AbortOnDrop(tokio::spawn(read_headers(client.clone(), from_height, tx)));
    while let Some((height, arrived, delay_ms)) = headers.recv().await {
        let block = client.block(height).await;
        let mut s = lock(&stats);
        s.header_delay_ms.push(delay_ms);
        let Ok(block) = block else {
            s.block_errors += 1;
            continue;
        };
        s.blocks += 1;
        for receipt in &block.receipts {
            let Some(sent_at) = b256_from_slice(&receipt.tx_hash).and_then(|h| s.pending.remove(&h)) else {
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
async fn market_maker(client: ShardClient, mut maker: Wallet, market: Market, stats: Arc<Mutex<Stats>>) {
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
async fn oracle_feed(client: ShardClient, mut oracle: Wallet, market: Market, stats: Arc<Mutex<Stats>>) {
    loop {
        tokio::time::sleep(ORACLE_EVERY).await;
        if oracle.oracle_update(&client, market.price_micros, crate::now_ms()).await.is_err() {
            lock(&stats).oracle_failed += 1;
        }
    }
}

/// Runs the load against the testnet in `dir` and prints the report. Fails if a shard accepted nothing or
/// nothing became final.
pub async fn run(dir: &Path, args: &LoadArgs) -> eyre::Result<()> {
    args.check()?;
    let net = Network::load(dir)?;
    ensure!(!net.nodes.is_empty(), "the network has no shards");
    let n = net.nodes.len();
    println!(
        "load: {} orders/s for {} s over {n} shard(s) ({:.0}/s each), {} takers per shard, batches of up to {}, \
         {} lanes per shard",
        args.tps,
        args.duration,
        args.tps as f64 / n as f64,
        args.accounts,
        args.batch,
        args.lanes.min(args.accounts)
    );
    let mut shards = Vec::new();
    let mut actors = Vec::new();
    for node in &net.nodes {
        let (load, a) = setup(node, dir, args, n).await.wrap_err_with(|| format!("setting up {}", node.name))?;
        println!(
            "  {}: funded a market maker and {} takers; price {}; {} quote levels of {} lots per side",
            load.name,
            a.takers.len(),
            shardex_core::Usd::from_micros(load.market.price_micros as i64),
            QUOTE_LEVELS,
            QUOTE_LOTS
        );
        shards.push(load);
        actors.push(a);
    }

    let reference_sign_rate = calibrate_signing(&shards[0]);
    // Sign ahead on one thread per shard, and let the buffers fill before the clock starts.
    let mut lanes_rx = Vec::new();
    let mut signers = Vec::new();
    let mut want = 0;
    for (load, a) in shards.iter().zip(actors.iter_mut()) {
        let (rx, thread, prefill) = start_signer(load, std::mem::take(&mut a.takers), args)?;
        lanes_rx.push(rx);
        signers.push(thread);
        want += prefill;
    }
    let deadline = Instant::now() + PRESIGN_WAIT;
    while signed(&shards) < want && Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(10)).await;
    }

    let mut heights = Vec::new();
    for load in &shards {
        heights.push(load.client.status().await.wrap_err_with(|| format!("status of {}", load.name))?.height + 1);
    }
    let cpu_before = cpu_snapshot(&shards);
    let start = Instant::now();
    let end = start + Duration::from_secs(args.duration);
    let mut lanes = Vec::new();
    let mut background = Vec::new();
    let mut makers = Vec::new();
    for (((load, a), rx), height) in shards.iter().zip(actors).zip(lanes_rx).zip(heights) {
        makers.push(a.maker_key);
        let lane_rate = load.rate_per_s / rx.len() as f64;
        for r in rx {
            lanes.push(tokio::spawn(lane(
                load.client.clone(),
                r,
                lane_rate,
                (start, end),
                args.batch,
                load.stats.clone(),
            )));
        }
        background.push(tokio::spawn(follow(load.client.clone(), height, load.stats.clone())));
        background.push(tokio::spawn(market_maker(load.client.clone(), a.maker, load.market, load.stats.clone())));
        background.push(tokio::spawn(oracle_feed(load.client.clone(), a.oracle, load.market, load.stats.clone())));
    }

    let mut progress = Progress { last: Instant::now(), last_accepted: 0 };
    while Instant::now() < end {
        tokio::time::sleep(Duration::from_secs(1).min(end.saturating_duration_since(Instant::now()))).await;
        progress.print(&shards, start, "");
    }
    for l in lanes {
        let _ = l.await;
    }
    let sent_s = start.elapsed().as_secs_f64();
    let cpu = cpu_snapshot(&shards).iter().zip(&cpu_before).map(|(after, before)| (after - before) / sent_s).collect();
    let drain_end = Instant::now() + DRAIN;
    while shards.iter().any(|s| !lock(&s.stats).pending.is_empty()) && Instant::now() < drain_end {
        tokio::time::sleep(Duration::from_millis(100)).await;
        if progress.last.elapsed() >= Duration::from_secs(1) {
            progress.print(&shards, start, " (draining)");
        }
    }
    for task in background {
        task.abort();
    }
    for thread in signers {
        let _ = thread.join();
    }
    for (load, key) in shards.iter().zip(makers) {
        withdraw_quotes(&load.client, key).await;
    }
    report(&shards, args, sent_s, start.elapsed(), &Client { cpu, reference_sign_rate })
}

/// Cancels the market maker's resting quotes so the next run starts from its own book (best effort: a
/// top-up still pending can take the nonce, so it tries twice).
async fn withdraw_quotes(client: &ShardClient, maker: Keypair) {
    for _ in 0..2 {
        let Ok(mut wallet) = Wallet::new(maker.clone(), client).await else { return };
        if let Ok(hash) = wallet.cancel_all(client).await {
            let _ = client.wait_final(hash, Duration::from_secs(5)).await;
            return;
        }
        tokio::time::sleep(Duration::from_millis(300)).await;
    }
}

/// Signs [`CALIBRATION_ORDERS`] taker orders on this thread before the load starts: the signing rate of
/// one otherwise idle core, to compare with the rate under load.
fn calibrate_signing(load: &ShardLoad) -> f64 {
    let key = Keypair::generate();
    let start = Instant::now();
    for k in 0..CALIBRATION_ORDERS {
        let tx = sign_tx(&key, load.client.domain(), k, Op::PlaceOrder(taker_order(&load.market, k)));
        std::hint::black_box(tx_hash(&tx.body));
    }
    CALIBRATION_ORDERS as f64 / start.elapsed().as_secs_f64()
}

/// CPU seconds (user + system) used so far by each shard's node process, then by this process (signing,
/// gRPC client, followers); 0 where unknown. Linux `/proc` only.
fn cpu_snapshot(shards: &[ShardLoad]) -> Vec<f64> {
    let cpu_s = |pid: &str| -> f64 {
        let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
        // Fields after the parenthesized command: state is 3rd overall, utime 14th, stime 15th.
        let fields: Vec<&str> = stat.rsplit(')').next().unwrap_or_default().split_whitespace().collect();
        let ticks = |i: usize| fields.get(i).and_then(|f| f.parse::<u64>().ok()).unwrap_or(0);
        (ticks(11) + ticks(12)) as f64 / CLOCK_TICKS_PER_S
    };
    let mut out: Vec<f64> = shards.iter().map(|s| s.pid.map_or(0.0, |p| cpu_s(&p.to_string()))).collect();
    out.push(cpu_s("self"));
    out
}

/// What the client side measured.
struct Client {
    /// Cores used while sending: one per shard's node, then this process.
    cpu: Vec<f64>,
    /// Orders/s one idle core signed before the run.
    reference_sign_rate: f64,
}

fn signed(shards: &[ShardLoad]) -> u64 {
    shards.iter().map(|s| s.signer.signed.load(Ordering::Relaxed)).sum()
}

/// The once-a-second progress line, summed over shards.
struct Progress {
    last: Instant,
    last_accepted: u64,
}

impl Progress {
    fn print(&mut self, shards: &[ShardLoad], start: Instant, note: &str) {
        let (mut sent, mut accepted, mut finals, mut failed) = (0, 0, 0, 0);
        let mut refused: BTreeMap<String, u64> = BTreeMap::new();
        for load in shards {
            let s = lock(&load.stats);
            (sent, accepted, finals, failed) =
                (sent + s.sent, accepted + s.accepted, finals + s.finals, failed + s.rpc_failed);
            for (reason, n) in &s.refused {
                *refused.entry(reason.clone()).or_default() += n;
            }
        }
        let rate = (accepted - self.last_accepted) as f64 / self.last.elapsed().as_secs_f64().max(1e-3);
        (self.last, self.last_accepted) = (Instant::now(), accepted);
        println!(
            "[{:>5.1}s] sent {sent} accepted {accepted} refused {}{} final {finals} | {rate:.0} accepted/s | signed {}{note}",
            start.elapsed().as_secs_f64(),
            refused.values().sum::<u64>() + failed,
            reasons(&refused, failed),
            signed(shards)
        );
    }
}

/// ` (REASON n, …)` or nothing.
fn reasons(refused: &BTreeMap<String, u64>, rpc_failed: u64) -> String {
    let mut parts: Vec<String> = refused.iter().map(|(r, n)| format!("{r} {n}")).collect();
    if rpc_failed > 0 {
        parts.push(format!("rpc-failed {rpc_failed}"));
    }
    if parts.is_empty() {
        String::new()
    } else {
        format!(" ({})", parts.join(", "))
    }
}

/// Nearest-rank percentile of sorted values (NaN when there are none).
fn percentile(sorted: &[u32], p: f64) -> f64 {
    if sorted.is_empty() {
        return f64::NAN;
    }
    let rank = ((p / 100.0) * sorted.len() as f64).ceil() as usize;
    f64::from(sorted[rank.clamp(1, sorted.len()) - 1])
}

fn report(shards: &[ShardLoad], args: &LoadArgs, sent_s: f64, total: Duration, client: &Client) -> eyre::Result<()> {
    println!(
        "\nresults ({sent_s:.1} s of sending, {:.1} s with the drain; final = header of the flushed block holding \
         the order arrived on StreamHeaders, matched by tx hash in GetBlock receipts)",
        total.as_secs_f64()
    );
    let mut failures = Vec::new();
    let (mut accepted_all, mut signed_all, mut busy_ns) = (0u64, 0u64, 0u64);
    for (i, load) in shards.iter().enumerate() {
        let mut s = lock(&load.stats);
        s.latencies_us.sort_unstable();
        s.header_delay_ms.sort_unstable();
        let lat = |p: f64| percentile(&s.latencies_us, p) / 1_000.0;
        let refused = s.refused.values().sum::<u64>() + s.rpc_failed;
        println!(
            "{}: accepted {:.1} orders/s (target {:.1}/s; sent {} of {}), refused {refused}{}, final {} ({:.1}% of \
             accepted; {:.1}% traded), latency p50 {:.1} ms p90 {:.1} ms p99 {:.1} ms max {:.1} ms",
            load.name,
            s.accepted as f64 / sent_s,
            load.rate_per_s,
            s.sent,
            load.orders,
            reasons(&s.refused, s.rpc_failed),
            s.finals,
            100.0 * s.finals as f64 / s.accepted.max(1) as f64,
            100.0 * s.filled as f64 / s.finals.max(1) as f64,
            lat(50.0),
            lat(90.0),
            lat(99.0),
            lat(100.0),
        );
        println!(
            "    node CPU {:.2} cores; blocks followed {} (unreadable {}), header arrived p50 {} ms p90 {} ms after \
             the block timestamp; not final after the drain {}; quote top-ups {} ({} refused); failed oracle \
             updates {}; lanes waited {} ms for signed orders",
            client.cpu.get(i).copied().unwrap_or(0.0),
            s.blocks,
            s.block_errors,
            percentile(&s.header_delay_ms, 50.0),
            percentile(&s.header_delay_ms, 90.0),
            s.pending.len(),
            s.quotes,
            s.quotes_refused,
            s.oracle_failed,
            s.starved.as_millis()
        );
        if let Some(e) = &s.last_rpc_error {
            println!("    last failed SubmitBatch: {e}");
        }
        if s.accepted == 0 {
            failures.push(format!("{} accepted no orders", load.name));
        } else if s.finals == 0 {
            failures.push(format!("no accepted order of {} became final", load.name));
        }
        accepted_all += s.accepted;
        signed_all += load.signer.signed.load(Ordering::Relaxed);
        busy_ns += load.signer.busy_ns.load(Ordering::Relaxed);
    }
    let busy_s = busy_ns as f64 / 1e9;
    println!(
        "total: accepted {:.1} orders/s of {} targeted ({} shard(s))",
        accepted_all as f64 / sent_s,
        args.tps,
        shards.len()
    );
    println!(
        "client signing: {signed_all} orders on {} thread(s), {:.0} orders/s per thread while signing under load \
         ({:.0}/s on an idle core before the run), busy {:.0}% of the sending time; load process CPU {:.2} cores",
        shards.len(),
        signed_all as f64 / busy_s.max(1e-9),
        client.reference_sign_rate,
        100.0 * busy_s / (sent_s * shards.len() as f64),
        client.cpu.last().copied().unwrap_or(0.0)
    );
    if failures.is_empty() {
        Ok(())
    } else {
        Err(eyre!(failures.join("; ")))
    }
}
