//! `testnet load`: signed orders at a fixed rate against a running testnet, measured end to end.
//!
//! Per shard: the deposit key funds a market maker and K takers (up to 100,000, [`fund`]); the oracle key
//! publishes a price (again every second, so it never goes stale); the market maker keeps deep two-sided
//! quotes and tops them up as they are consumed; the takers send IOC and GTC limit orders that cross the
//! quotes, each taker a buy and then the sell that closes it, paced to the target rate (split evenly over
//! shards) and submitted with `SubmitBatch`. With `--prefill N`, every shard first holds N funded accounts
//! of fixed ids that no one trades, so the load runs over a state of that size. Orders are signed ahead of sending on
//! one thread per shard, which reports its own rate, so a reader can tell client signing from node limits;
//! with `--presign` every order is signed before the clock starts, so the client's CPU while sending is the
//! sending alone. The node's status gives its block staging and write times over the run, reported per block.
//!
//! Final means in a flushed block: a follower per shard reads `StreamHeaders` and, for each header, the
//! block's receipts (`GetBlock`); a tx is final when the header of the block holding it arrives, and its
//! latency is that arrival minus the moment its batch was sent. Everything is bounded: tps × duration
//! orders, a drain of at most [`DRAIN`] afterwards, 127.0.0.1 endpoints only.
//!
//! With `--bridge-ratio R`, that fraction of the txs are cross-shard transfers between bridge accounts funded
//! on every shard ([`bridge`]); the followers also time each transfer from its lock on the source to its
//! credit on the destination, and the report adds the relayer's own figures.

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
    option::series::SeriesId,
    order::{limit_order, option_order},
    pb::{self, tx_body::Op},
    tx::{sign_tx, TxDomain},
    AccountId, Keypair, B256,
};
use tokio::sync::mpsc;

use crate::network::{reference_price_usd, Network, NodeEntry};

mod bridge;
mod fund;
mod report;
mod setup;
mod tasks;

use bridge::{send_transfers, BridgeLoad, BRIDGE_ACCOUNT_USD};
use fund::{fund, prefill};
use report::*;
pub(crate) use setup::submit_final;
use setup::*;
use tasks::*;

/// Largest `--tps`.
const MAX_TPS: u64 = 100_000;
/// Largest `--duration`, seconds.
const MAX_DURATION_S: u64 = 300;
/// Largest `--accounts` per shard.
const MAX_ACCOUNTS: usize = 100_000;
/// Largest `--accounts` with `--bridge-ratio` (each is also a bridge account, funded on every shard).
const MAX_BRIDGE_ACCOUNTS: usize = 1024;
/// Largest `--prefill`.
const MAX_PREFILL: u64 = 2_000_000;
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
/// Most orders `--presign` holds (about 250 bytes each).
const MAX_PRESIGNED: u64 = 2_000_000;
/// How long `--presign` waits for every order to be signed (one core signs 30k to 50k a second).
const PRESIGN_ALL_WAIT: Duration = Duration::from_secs(180);
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
/// How long the follower keeps asking for a block whose header arrived.
const BLOCK_RETRY: Duration = Duration::from_secs(5);
/// Headers queued between the reader and the block fetcher of one shard.
const HEADER_QUEUE: usize = 4096;

/// `testnet load` flags.
#[derive(Debug, Clone, Args)]
pub struct LoadArgs {
    /// Target signed txs per second over all shards (split evenly): orders, and transfers with
    /// --bridge-ratio.
    #[arg(long, default_value_t = 1_000)]
    pub tps: u64,
    /// Seconds of load.
    #[arg(long, default_value_t = 10)]
    pub duration: u64,
    /// Taker accounts per shard (fresh keys each run, funded before the clock starts).
    #[arg(long, default_value_t = 16)]
    pub accounts: usize,
    /// Before the run, make every shard hold at least this many extra funded accounts (fixed ids; a later
    /// run reuses them and funds only what is missing), so the load runs over a state of that size.
    #[arg(long, default_value_t = 0)]
    pub prefill: u64,
    /// Orders per `SubmitBatch`, at most.
    #[arg(long, default_value_t = 256)]
    pub batch: usize,
    /// Concurrent `SubmitBatch` calls per shard (at most one per taker). Each lane owns a fixed subset of
    /// the takers and waits for its previous batch, so every account's nonces reach the node in order.
    #[arg(long, default_value_t = 4)]
    pub lanes: usize,
    /// Sign every order before the clock starts (at most 2,000,000), so that signing takes no CPU while the node
    /// is measured: what the node can take, rather than what one client core can sign beside it.
    #[arg(long)]
    pub presign: bool,
    /// Fraction of the txs that are cross-shard transfers (0.0 to 1.0) between load accounts funded on every
    /// shard; the rest are orders. Needs two shards and the relayer.
    #[arg(long, default_value_t = 0.0)]
    pub bridge_ratio: f64,
}

impl LoadArgs {
    /// Refuses flags out of range, naming the bound.
    pub fn check(&self) -> eyre::Result<()> {
        ensure!((1..=MAX_TPS).contains(&self.tps), "--tps must be 1 to {MAX_TPS}");
        ensure!((1..=MAX_DURATION_S).contains(&self.duration), "--duration must be 1 to {MAX_DURATION_S} s");
        ensure!((1..=MAX_ACCOUNTS).contains(&self.accounts), "--accounts must be 1 to {MAX_ACCOUNTS}");
        ensure!(
            self.bridge_ratio == 0.0 || self.accounts <= MAX_BRIDGE_ACCOUNTS,
            "--accounts must be at most {MAX_BRIDGE_ACCOUNTS} with --bridge-ratio"
        );
        ensure!(self.prefill <= MAX_PREFILL, "--prefill must be at most {MAX_PREFILL}");
        ensure!((1..=MAX_BATCH).contains(&self.batch), "--batch must be 1 to {MAX_BATCH}");
        ensure!((1..=MAX_LANES).contains(&self.lanes), "--lanes must be 1 to {MAX_LANES}");
        ensure!((0.0..=1.0).contains(&self.bridge_ratio), "--bridge-ratio must be 0.0 to 1.0");
        ensure!(
            !self.presign || self.tps.saturating_mul(self.duration) <= MAX_PRESIGNED,
            "--presign signs --tps × --duration orders ahead: at most {MAX_PRESIGNED}"
        );
        Ok(())
    }
}

/// What one shard's load did, shared by its tasks.
#[derive(Default)]
struct Stats {
    /// The taker orders.
    sub: Submissions,
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

fn lock<T>(stats: &Mutex<T>) -> MutexGuard<'_, T> {
    stats.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
}

/// What a sender's txs became; orders and transfers are counted the same way.
#[derive(Default)]
struct Submissions {
    sent: u64,
    accepted: u64,
    refused: BTreeMap<String, u64>,
    /// The first message of each refusal reason, so a report says why as well as how often.
    first_refusal: BTreeMap<String, String>,
    /// Txs in batches whose call failed as a whole.
    rpc_failed: u64,
    last_rpc_error: Option<String>,
    /// Accepted txs not yet seen in a block, with the time their batch was sent.
    pending: HashMap<B256, Instant>,
    /// Accepted txs no node knew during the drain (lost with a killed node's mempool).
    lost: u64,
}

impl Submissions {
    /// The batch of `hashes` is being sent now: pending until seen in a block or refused.
    fn sending(&mut self, hashes: &[B256]) {
        let sent_at = Instant::now();
        self.sent += hashes.len() as u64;
        self.pending.extend(hashes.iter().map(|h| (*h, sent_at)));
    }

    /// What `SubmitBatch` answered for the batch of `hashes`.
    fn answered(&mut self, hashes: &[B256], result: shardex_client::Result<Vec<pb::SubmitResult>>) {
        match result {
            Ok(results) => {
                for r in results {
                    if r.accepted {
                        self.accepted += 1;
                        continue;
                    }
                    if let Some(h) = b256_from_slice(&r.tx_hash) {
                        self.pending.remove(&h);
                    }
                    self.first_refusal.entry(r.reason.clone()).or_insert(r.message);
                    *self.refused.entry(r.reason).or_default() += 1;
                }
            }
            Err(e) => {
                for h in hashes {
                    self.pending.remove(h);
                }
                self.rpc_failed += hashes.len() as u64;
                self.last_rpc_error = Some(e.to_string());
            }
        }
    }

    /// Counts `hash` lost if it is still pending.
    fn lose(&mut self, hash: &B256) {
        if self.pending.remove(hash).is_some() {
            self.lost += 1;
        }
    }
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

/// The market as the load sees it: on a perpetual market the quotes sit around the oracle price; on an
/// options market around the Black-76 premium of one series.
#[derive(Debug, Clone, Copy)]
struct Market {
    /// What the oracle publishes, micro-USD.
    spot_micros: u64,
    /// Where the quotes centre: the spot, or the series' premium.
    price_micros: u64,
    tick_micros: u64,
    /// The series every order names on an options market.
    series: Option<SeriesId>,
}

impl Market {
    /// The reference price of `symbol` ([`reference_price_usd`]), on the tick, with room for the quote
    /// levels below it.
    fn for_symbol(symbol: &str, tick_micros: u64) -> Self {
        let floor = (QUOTE_LEVELS + 1) * tick_micros;
        let price = (reference_price_usd(symbol) * USD).max(floor * 10);
        let price = price - price % tick_micros;
        Self { spot_micros: price, price_micros: price, tick_micros, series: None }
    }

    /// Quotes around the premium `premium_micros` of `series` (on the tick, with room for the levels below).
    fn for_series(spot_micros: u64, series: SeriesId, premium_micros: u64, tick_micros: u64) -> Self {
        let floor = (QUOTE_LEVELS + 1) * tick_micros;
        let price = (premium_micros - premium_micros % tick_micros).max(floor);
        Self { spot_micros, price_micros: price, tick_micros, series: Some(series) }
    }

    fn quote_price(&self, side: pb::Side, level: u64) -> u64 {
        match side {
            pb::Side::Sell => self.price_micros + level * self.tick_micros,
            _ => self.price_micros - level * self.tick_micros,
        }
    }

    /// A limit order on this market (on the series, for options).
    fn order(&self, side: pb::Side, price_micros: u64, lots: u64, tif: pb::TimeInForce) -> pb::PlaceOrder {
        match &self.series {
            Some(s) => option_order(s, side, price_micros, lots, tif),
            None => limit_order(side, price_micros, lots, tif),
        }
    }

    /// What the quotes are around, for the setup line.
    fn describe(&self) -> String {
        let price = shardex_core::Usd::from_micros(self.price_micros as i64);
        match &self.series {
            Some(s) => format!(
                "series {s}, premium {price} at spot {}",
                shardex_core::Usd::from_micros(self.spot_micros as i64)
            ),
            None => format!("price {price}"),
        }
    }
}

/// One shard under load: what the report needs.
struct ShardLoad {
    name: String,
    /// Every validator of the shard (name, pid), for their CPU.
    validators: Vec<(String, Option<u32>)>,
    client: ShardClient,
    market: Market,
    /// Orders per second sent to this shard.
    rate_per_s: f64,
    orders: u64,
    /// Transfers per second sent from this shard.
    transfer_rate_per_s: f64,
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

/// Aborts a task when dropped, so a helper task ends with the task that owns it.
struct AbortOnDrop(tokio::task::JoinHandle<()>);

impl Drop for AbortOnDrop {
    fn drop(&mut self) {
        self.0.abort();
    }
}

/// A header as it arrived: height, arrival time, and arrival minus the block timestamp in ms.
type Arrival = (u64, Instant, u32);

/// Runs the load against the testnet in `dir` and prints the report. Fails if a shard accepted nothing or
/// nothing became final.
pub async fn run(dir: &Path, args: &LoadArgs) -> eyre::Result<()> {
    run_observed(dir, args, None).await
}

/// [`run`], notifying `started` when the setup (funding, first price and quotes) is final and the clock of
/// the measured run starts.
pub async fn run_observed(dir: &Path, args: &LoadArgs, started: Option<&tokio::sync::Notify>) -> eyre::Result<()> {
    args.check()?;
    let net = Network::load(dir)?;
    ensure!(!net.nodes.is_empty(), "the network has no shards");
    let n = net.shards().len();
    let bridge = match args.bridge_ratio > 0.0 {
        true => Some(Arc::new(BridgeLoad::prepare(&net, args.accounts).await?)),
        false => None,
    };
    println!(
        "load: {} txs/s for {} s over {n} shard(s) ({:.0}/s each), {} takers per shard, batches of up to {}, \
         {} lanes per shard",
        args.tps,
        args.duration,
        args.tps as f64 / n as f64,
        args.accounts,
        args.batch,
        args.lanes.min(args.accounts)
    );
    if let Some(b) = &bridge {
        println!(
            "  {:.0}% of them transfers of 1 USD between {} accounts funded on every shard (expiry epoch {})",
            100.0 * args.bridge_ratio,
            b.accounts.len(),
            b.expiry_epoch
        );
    }
    if args.prefill > 0 {
        for node in net.shards() {
            prefill_shard(node, dir, args.prefill).await.wrap_err_with(|| format!("prefilling {}", node.name))?;
        }
    }
    let mut shards = Vec::new();
    let mut actors = Vec::new();
    for node in net.shards() {
        let validators = net.validators_of(node.shard_id).iter().map(|v| (v.name.clone(), v.pid)).collect();
        let (load, a) = setup(node, validators, dir, args, n, bridge.as_deref())
            .await
            .wrap_err_with(|| format!("setting up {}", node.name))?;
        println!(
            "  {}: funded a market maker and {} takers; {}; {} quote levels of {} lots per side",
            load.name,
            a.takers.len(),
            load.market.describe(),
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
    let signing = Instant::now();
    let deadline = signing + if args.presign { PRESIGN_ALL_WAIT } else { PRESIGN_WAIT };
    while signed(&shards) < want && Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    if args.presign {
        let signed = signed(&shards);
        ensure!(signed >= want, "--presign: {signed} of {want} orders signed in {PRESIGN_ALL_WAIT:?}");
        println!("  signed all {signed} orders ahead in {:.1} s", signing.elapsed().as_secs_f64());
    }

    let mut heights = Vec::new();
    for load in &shards {
        heights.push(load.client.status().await.wrap_err_with(|| format!("status of {}", load.name))?.height + 1);
    }
    let work_before = work_snapshot(&shards).await;
    let cpu_before = cpu_snapshot(&shards);
    let start = Instant::now();
    if let Some(started) = started {
        started.notify_one();
    }
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
        background.push(tokio::spawn(follow(load.client.clone(), height, load.stats.clone(), bridge.clone())));
        if let Some(b) = &bridge {
            let me = load.client.domain().shard.0;
            let peers = net.shards().iter().map(|n| n.shard_id.0).filter(|s| *s != me).collect();
            let window = (start, end);
            let client = load.client.clone();
            lanes.push(tokio::spawn(send_transfers(
                client,
                b.clone(),
                peers,
                load.transfer_rate_per_s,
                window,
                args.batch,
            )));
        }
        background.push(tokio::spawn(market_maker(load.client.clone(), a.maker, load.market, load.stats.clone())));
        background.push(tokio::spawn(oracle_feed(load.client.clone(), a.oracle, load.market, load.stats.clone())));
    }

    let mut progress = Progress { last: Instant::now(), last_accepted: 0, bridge: bridge.clone() };
    while Instant::now() < end {
        tokio::time::sleep(Duration::from_secs(1).min(end.saturating_duration_since(Instant::now()))).await;
        progress.print(&shards, start, "");
    }
    for l in lanes {
        let _ = l.await;
    }
    let sent_s = start.elapsed().as_secs_f64();
    // A node restarted during the run (`testnet chaos`) has a new pid: its figure is unknown, not negative.
    let cpu = cpu_snapshot(&shards)
        .iter()
        .zip(&cpu_before)
        .map(|(after, before)| after.iter().zip(before).map(|(a, b)| (a - b).max(0.0) / sent_s).collect())
        .collect();
    let work = work_snapshot(&shards)
        .await
        .iter()
        .zip(&work_before)
        .map(|(a, b)| a.zip(*b).and_then(|(a, b)| a.since(&b)))
        .collect();
    let drain_end = Instant::now() + DRAIN;
    let in_flight = |shards: &[ShardLoad]| {
        shards.iter().any(|s| !lock(&s.stats).sub.pending.is_empty())
            || bridge.as_ref().is_some_and(|b| b.in_flight() > 0)
    };
    let mut probed = Instant::now();
    while in_flight(&shards) && Instant::now() < drain_end {
        tokio::time::sleep(Duration::from_millis(100)).await;
        if probed.elapsed() >= LOST_PROBE_EVERY {
            probe_lost(&shards, bridge.as_deref()).await;
            probed = Instant::now();
        }
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
    let client = Client { cpu, work, reference_sign_rate, presigned: args.presign };
    report(&shards, sent_s, start.elapsed(), &client, bridge.as_deref()).await
}

/// Makes the shard of `node` hold the prefill accounts `0..want` ([`fund::prefill_account`]), and says how many it
/// funded now.
async fn prefill_shard(node: &NodeEntry, dir: &Path, want: u64) -> eyre::Result<()> {
    loopback_only(node)?;
    let client = ShardClient::connect(&node.endpoint).await.wrap_err_with(|| format!("connecting to {}", node.name))?;
    let deposit = Keypair::read_file(&dir.join("keys").join("deposit.key"))?;
    let started = Instant::now();
    let funded = prefill(&client, &deposit, &node.name, want).await?;
    println!(
        "  {}: holds {want} prefill accounts ({funded} funded now in {:.1} s, {} from earlier runs)",
        node.name,
        started.elapsed().as_secs_f64(),
        want - funded
    );
    Ok(())
}

/// Accepted txs still pending this long into the drain are asked about.
const LOST_AGE: Duration = Duration::from_secs(1);
/// How often the drain asks, and how many txs per shard at most each time.
const LOST_PROBE_EVERY: Duration = Duration::from_millis(500);
const LOST_PROBE_TXS: usize = 128;

/// Accepted txs a node no longer knows were lost with its mempool when it was killed (`testnet chaos`):
/// they can never become final. Asks the node about the oldest pending orders of each shard, and every node
/// about the oldest pending transfers, and counts the unknown ones lost instead of waiting for them.
async fn probe_lost(shards: &[ShardLoad], bridge: Option<&BridgeLoad>) {
    let unknown = |st: &pb::TxStatus| matches!(st.status, Some(pb::tx_status::Status::Unknown(_)) | None);
    for load in shards {
        let hashes = oldest(&lock(&load.stats).sub.pending);
        for hash in hashes {
            if load.client.tx_status(hash).await.is_ok_and(|st| unknown(&st)) {
                lock(&load.stats).sub.lose(&hash);
            }
        }
    }
    let Some(bridge) = bridge else { return };
    let hashes = oldest(&bridge::pending(bridge));
    for hash in hashes {
        let mut known = false;
        for load in shards {
            known |= load.client.tx_status(hash).await.map_or(true, |st| !unknown(&st));
        }
        if !known {
            bridge::mark_lost(bridge, &hash);
        }
    }
}

/// Up to [`LOST_PROBE_TXS`] hashes sent at least [`LOST_AGE`] ago, oldest first.
fn oldest(pending: &HashMap<B256, Instant>) -> Vec<B256> {
    let mut old: Vec<(Instant, B256)> =
        pending.iter().filter(|(_, at)| at.elapsed() >= LOST_AGE).map(|(h, at)| (*at, *h)).collect();
    old.sort_unstable();
    old.into_iter().take(LOST_PROBE_TXS).map(|(_, h)| h).collect()
}

/// What the client side measured.
struct Client {
    /// Cores used while sending: per shard, one per validator; then this process (alone).
    cpu: Vec<Vec<f64>>,
    /// Per shard, the block work of the node the load talks to while sending (None: its status failed).
    work: Vec<Option<NodeWork>>,
    /// Orders/s one idle core signed before the run.
    reference_sign_rate: f64,
    /// Every order was signed before the clock started (`--presign`).
    presigned: bool,
}

/// The once-a-second progress line, summed over shards.
struct Progress {
    last: Instant,
    last_accepted: u64,
    bridge: Option<Arc<BridgeLoad>>,
}

impl Progress {
    fn print(&mut self, shards: &[ShardLoad], start: Instant, note: &str) {
        let (mut sent, mut accepted, mut finals, mut failed) = (0, 0, 0, 0);
        let mut refused: BTreeMap<String, u64> = BTreeMap::new();
        for load in shards {
            let s = lock(&load.stats);
            (sent, accepted, finals, failed) =
                (sent + s.sub.sent, accepted + s.sub.accepted, finals + s.finals, failed + s.sub.rpc_failed);
            for (reason, n) in &s.sub.refused {
                *refused.entry(reason.clone()).or_default() += n;
            }
        }
        let rate = (accepted - self.last_accepted) as f64 / self.last.elapsed().as_secs_f64().max(1e-3);
        (self.last, self.last_accepted) = (Instant::now(), accepted);
        println!(
            "[{:>5.1}s] sent {sent} accepted {accepted} refused {}{} final {finals} | {rate:.0} accepted/s | signed \
             {}{}{note}",
            start.elapsed().as_secs_f64(),
            refused.values().sum::<u64>() + failed,
            reasons(&refused, failed),
            signed(shards),
            self.bridge.as_ref().map_or(String::new(), |b| b.progress())
        );
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn args(tps: u64, duration: u64, presign: bool) -> LoadArgs {
        LoadArgs { tps, duration, accounts: 16, prefill: 0, batch: 256, lanes: 4, presign, bridge_ratio: 0.0 }
    }

    #[test]
    fn presign_is_bounded_by_the_orders_it_holds() {
        assert!(args(100_000, 20, true).check().is_ok(), "exactly the bound");
        let err = args(100_000, 21, true).check().expect_err("over the bound");
        assert!(err.to_string().contains("--presign signs --tps × --duration orders ahead"), "{err}");
        assert!(args(100_000, 21, false).check().is_ok(), "signing as it sends holds one second of orders");
    }
}
