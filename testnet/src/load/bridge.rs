//! Cross-shard transfers in a load (`--bridge-ratio`): bridge accounts funded on every shard send small
//! transfer-outs to themselves on the other shards, paced like the orders. The followers of the shards see
//! each lock (the transfer's own receipt, on the source) and each credit (the relayer's delivery, on the
//! destination); lock-to-credit is the arrival of the destination's header minus the arrival of the source's.

use std::collections::HashSet;

use shardex_proto::bridge::v1 as bpb;

use super::*;
use crate::{
    network::{Network, RelayerEntry},
    process, relayer,
};

/// Each transfer moves this much.
const TRANSFER_USD: u64 = 1;
/// What a bridge account gets on every shard.
pub(super) const BRIDGE_ACCOUNT_USD: u64 = 1_000_000;
/// Epochs until a transfer expires: far beyond any run, so nothing is refunded.
const EXPIRY_EPOCHS: u64 = 100_000;

/// A message's id as (source, destination, seq).
type MessageKey = (u32, u32, u64);

/// What the transfers did, shared by the senders and the followers of every shard.
#[derive(Default)]
pub(super) struct BridgeStats {
    /// The transfer-outs.
    sub: Submissions,
    /// Locked messages not yet seen credited, with the arrival of the lock's header.
    locked_at: HashMap<MessageKey, Instant>,
    /// Credits seen before their lock (the shards' followers run independently), with their arrival.
    credited_early: HashMap<MessageKey, Instant>,
    locked: u64,
    credited: u64,
    acked: u64,
    refunded: u64,
    /// Batch sent to the header of the lock's block, µs.
    submit_to_lock_us: Vec<u32>,
    /// Lock header arrival to credit header arrival, µs.
    lock_to_credit_us: Vec<u32>,
}

/// The bridge side of a load: its accounts, counters and the relayer it relies on.
pub(super) struct BridgeLoad {
    /// Accounts that send transfers, funded on every shard.
    pub accounts: Arc<Vec<Keypair>>,
    /// Their ids, to recognize their credits and acks among everything in a block.
    ids: HashSet<Vec<u8>>,
    pub stats: Mutex<BridgeStats>,
    relayer: RelayerEntry,
    relayer_before: bpb::RelayerStatus,
    /// Expiry epoch of every transfer.
    pub expiry_epoch: u64,
}

impl BridgeLoad {
    /// Checks the network can carry transfers (two shards, the relayer running and answering) and creates
    /// `accounts` bridge accounts.
    pub async fn prepare(net: &Network, accounts: usize) -> eyre::Result<Self> {
        let shards = net.shards().len();
        ensure!(shards >= 2, "--bridge-ratio needs at least two shards; this network has {shards}");
        if let Some(why) = relayer::bridge_off_reason(net)? {
            bail!("--bridge-ratio needs the bridge, which is off: {why}");
        }
        let entry = net
            .relayer
            .clone()
            .ok_or_else(|| eyre!("--bridge-ratio needs the relayer; `testnet down` then `testnet up` starts one"))?;
        ensure!(
            entry.pid.is_some_and(process::alive),
            "--bridge-ratio needs the relayer, which is not running; `testnet up` starts it"
        );
        let relayer_before = relayer::status(&entry).await.wrap_err_with(|| {
            format!("--bridge-ratio needs the relayer, which does not answer at {}", entry.endpoint)
        })?;
        let expiry_epoch = relayer::latest_epoch(net).await?.saturating_add(EXPIRY_EPOCHS);
        let keys: Vec<Keypair> = (0..accounts).map(|_| Keypair::generate()).collect();
        let ids = keys.iter().map(|k| k.account().0.to_vec()).collect();
        Ok(Self {
            accounts: Arc::new(keys),
            ids,
            stats: Mutex::default(),
            relayer: entry,
            relayer_before,
            expiry_epoch,
        })
    }

    /// Locks, credits and acks of the bridge accounts in `block` of `shard`, whose header arrived at `arrived`.
    pub fn observe_block(&self, shard: u32, block: &pb::Block, arrived: Instant) {
        let mut s = lock(&self.stats);
        for receipt in &block.receipts {
            let ours = b256_from_slice(&receipt.tx_hash).and_then(|h| s.sub.pending.remove(&h));
            for e in &receipt.events {
                let Some(pb::event::Kind::BridgeMessageChanged(c)) = &e.kind else { continue };
                let key = (c.src_shard, c.dst_shard, c.seq);
                let state = pb::MessageState::try_from(c.state).unwrap_or_default();
                if let (Some(sent_at), pb::MessageState::Locked) = (ours, state) {
                    s.locked += 1;
                    s.submit_to_lock_us.push(micros(arrived.saturating_duration_since(sent_at)));
                    match s.credited_early.remove(&key) {
                        Some(credit) => s.lock_to_credit_us.push(micros(credit.saturating_duration_since(arrived))),
                        None => {
                            s.locked_at.insert(key, arrived);
                        }
                    }
                    continue;
                }
                if !self.ids.contains(&e.account) {
                    continue;
                }
                match state {
                    pb::MessageState::Unspecified if c.delivered && c.dst_shard == shard => {
                        s.credited += 1;
                        match s.locked_at.remove(&key) {
                            Some(lock) => s.lock_to_credit_us.push(micros(arrived.saturating_duration_since(lock))),
                            None => {
                                s.credited_early.insert(key, arrived);
                            }
                        }
                    }
                    pb::MessageState::Acked if c.src_shard == shard => s.acked += 1,
                    pb::MessageState::Refunded if c.src_shard == shard => s.refunded += 1,
                    _ => {}
                }
            }
        }
    }

    /// Transfers accepted but not yet seen locked, or locked but not yet seen credited.
    pub fn in_flight(&self) -> usize {
        let s = lock(&self.stats);
        s.sub.pending.len() + s.locked_at.len()
    }

    /// `, transfers locked L credited C` for the progress line.
    pub fn progress(&self) -> String {
        let s = lock(&self.stats);
        format!(" | transfers sent {} locked {} credited {}", s.sub.sent, s.locked, s.credited)
    }

    /// The transfers' part of the report, then the relayer's own figures; a failure when none was credited.
    pub async fn report(&self, sent_s: f64) -> Option<String> {
        let failure = self.report_transfers(sent_s);
        self.report_relayer().await;
        failure
    }

    fn report_transfers(&self, sent_s: f64) -> Option<String> {
        let mut s = lock(&self.stats);
        s.submit_to_lock_us.sort_unstable();
        s.lock_to_credit_us.sort_unstable();
        let ms = |v: &[u32], p: f64| percentile(v, p) / 1_000.0;
        println!(
            "transfers: accepted {:.1}/s (sent {}, accepted {}, refused {}{}), locked {}, credited {}, acked {}, \
             refunded {}; not credited after the drain {} (not locked {}); lost with a killed node {}",
            s.sub.accepted as f64 / sent_s,
            s.sub.sent,
            s.sub.accepted,
            s.sub.refused.values().sum::<u64>() + s.sub.rpc_failed,
            reasons(&s.sub.refused, s.sub.rpc_failed),
            s.locked,
            s.credited,
            s.acked,
            s.refunded,
            s.locked_at.len() + s.sub.pending.len(),
            s.sub.pending.len(),
            s.sub.lost
        );
        println!(
            "    submit-to-lock p50 {:.1} ms p90 {:.1} ms p99 {:.1} ms; lock-to-credit p50 {:.1} ms p90 {:.1} ms \
             p99 {:.1} ms max {:.1} ms (lock header arrival on the source to credit header arrival on the \
             destination)",
            ms(&s.submit_to_lock_us, 50.0),
            ms(&s.submit_to_lock_us, 90.0),
            ms(&s.submit_to_lock_us, 99.0),
            ms(&s.lock_to_credit_us, 50.0),
            ms(&s.lock_to_credit_us, 90.0),
            ms(&s.lock_to_credit_us, 99.0),
            ms(&s.lock_to_credit_us, 100.0),
        );
        if let Some(e) = &s.sub.last_rpc_error {
            println!("    last failed SubmitBatch of transfers: {e}");
        }
        if s.sub.accepted == 0 {
            Some("no transfer was accepted".to_owned())
        } else if s.credited == 0 {
            Some("no transfer was credited; see `testnet logs relayer`".to_owned())
        } else {
            None
        }
    }

    async fn report_relayer(&self) {
        match relayer::status(&self.relayer).await {
            Ok(after) => {
                // Counters restart with the process (`testnet chaos` kills it): then they count from the restart.
                let zero = bpb::RelayerStatus::default();
                let pid_now = self.relayer.dir.parent().and_then(|d| Network::load(d).ok()).and_then(|n| n.relayer);
                let restarted = pid_now.is_some_and(|r| r.pid != self.relayer.pid)
                    || after.submitted < self.relayer_before.submitted;
                let (b, span) =
                    if restarted { (&zero, "since it restarted") } else { (&self.relayer_before, "during the run") };
                println!(
                    "relayer: delivered {} acked {} refunded {} {span}; txs {} submitted, {} duplicates; \
                     open now {} (locked {}, committed {}, delivered {}); its lock-to-credit p50 {} ms p99 {} ms over \
                     its last {} (block time); errors since its start: {}",
                    after.delivered.saturating_sub(b.delivered),
                    after.acked.saturating_sub(b.acked),
                    after.refunded.saturating_sub(b.refunded),
                    after.submitted.saturating_sub(b.submitted),
                    after.duplicates.saturating_sub(b.duplicates),
                    after.backlog.iter().map(|c| c.count).sum::<u64>(),
                    relayer::backlog(&after, bpb::Stage::Locked),
                    relayer::backlog(&after, bpb::Stage::Committed),
                    relayer::backlog(&after, bpb::Stage::Delivered),
                    after.latency_p50_ms,
                    after.latency_p99_ms,
                    after.latency_samples,
                    relayer::errors(&after)
                );
            }
            Err(e) => println!("relayer: no status ({e:#})"),
        }
    }
}

fn micros(d: Duration) -> u32 {
    u32::try_from(d.as_micros()).unwrap_or(u32::MAX)
}

/// Sends one shard's transfers at `rate_per_s` from `start` until `end`, in batches of up to `batch`, each
/// batch after the previous one returned (so every account's nonces reach the node in order): round robin
/// over the bridge accounts, each to itself on the next of the other shards.
pub(super) async fn send_transfers(
    client: ShardClient,
    bridge: Arc<BridgeLoad>,
    peers: Vec<u32>,
    rate_per_s: f64,
    (start, end): (Instant, Instant),
    batch: usize,
) {
    let accounts = Arc::clone(&bridge.accounts);
    if accounts.is_empty() || peers.is_empty() || rate_per_s <= 0.0 {
        return;
    }
    let domain = client.domain();
    let mut nonces = vec![0u64; accounts.len()];
    let mut sent = 0u64;
    loop {
        let now = Instant::now();
        if now >= end {
            return;
        }
        let due = (((now - start).as_secs_f64() * rate_per_s) as u64).saturating_sub(sent).min(batch as u64);
        if due == 0 {
            tokio::time::sleep(PACE_TICK).await;
            continue;
        }
        let mut txs = Vec::with_capacity(due as usize);
        let mut hashes = Vec::with_capacity(due as usize);
        for _ in 0..due {
            let k = (sent % accounts.len() as u64) as usize;
            let round = (sent / accounts.len() as u64) as usize;
            let key = &accounts[k];
            let op = Op::TransferOut(pb::TransferOut {
                dst_shard: peers[round % peers.len()],
                recipient: key.account().0.to_vec(),
                amount_micros: TRANSFER_USD * USD,
                expiry_epoch: bridge.expiry_epoch,
            });
            let tx = sign_tx(key, domain, nonces[k], op);
            nonces[k] += 1;
            sent += 1;
            hashes.push(tx_hash(&tx.body));
            txs.push(tx);
        }
        lock(&bridge.stats).sub.sending(&hashes);
        let result = client.submit_batch(txs).await;
        lock(&bridge.stats).sub.answered(&hashes, result);
    }
}

/// The accepted transfers not yet seen locked, with the time their batch was sent.
pub(super) fn pending(b: &BridgeLoad) -> HashMap<B256, Instant> {
    lock(&b.stats).sub.pending.clone()
}

/// Counts an accepted transfer no node knows as lost.
pub(super) fn mark_lost(b: &BridgeLoad, hash: &B256) {
    lock(&b.stats).sub.lose(hash);
}
