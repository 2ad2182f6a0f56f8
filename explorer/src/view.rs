//! What the page shows, as one JSON document ([`Overview`]), and the pure updates the collectors apply to it.
//! Money is sent as exact strings (`12.000345 USD`), never as floating point.

use std::collections::{BTreeMap, VecDeque};

use serde::Serialize;
use shardex_core::{
    block::DecodedHeader,
    coordpb,
    money::Usd,
    option::series::SeriesId,
    pb::{self, event::Kind},
};
use shardex_proto::bridge::v1 as bpb;

/// Most option series whose Greeks are kept per shard.
pub const MAX_SERIES: usize = 64;

/// The whole page: every shard with its nodes, book and trades; the coordinator's epochs; the bridge.
#[derive(Debug, Clone, Serialize)]
pub struct Overview {
    /// The chain every shard's genesis names.
    pub chain_id: u64,
    /// Wall-clock time of this document, ms since the Unix epoch.
    pub now_ms: u64,
    /// Shards by id.
    pub shards: Vec<ShardView>,
    /// None when no coordinator is configured.
    pub coordinator: Option<CoordinatorView>,
    /// None when no relayer is configured.
    pub bridge: Option<BridgeView>,
}

/// One shard.
#[derive(Debug, Clone, Serialize)]
pub struct ShardView {
    /// Shard id.
    pub shard_id: u32,
    /// Market symbol.
    pub symbol: String,
    /// An options market.
    pub options: bool,
    /// Validators in its genesis set.
    pub validators: usize,
    /// Market mode at the last poll (`normal`, `post-only`, …).
    pub mode: String,
    /// The newest finalized block seen on the header stream.
    pub head: Option<BlockView>,
    /// Why the header stream is down, if it is.
    pub stream_error: Option<String>,
    /// Every node of the shard.
    pub nodes: Vec<NodeView>,
    /// Aggregated depth at `book.height`.
    pub book: BookView,
    /// Recent trades (taker side), newest first.
    pub trades: VecDeque<TradeView>,
    /// On an options market: each traded series' Black-76 price and Greeks, as the shard computed them.
    pub series: Vec<SeriesView>,
}

/// A finalized block.
#[derive(Debug, Clone, Serialize)]
pub struct BlockView {
    /// Height.
    pub height: u64,
    /// Block time, ms.
    pub time_ms: u64,
    /// Txs in it.
    pub txs: u32,
    /// The round it was decided in.
    pub round: u32,
    /// Its proposer's key (hex).
    pub proposer: String,
    /// Block hash (hex).
    pub hash: String,
    /// Validators whose precommits certify it.
    pub signatures: usize,
}

/// One node as its last status reported it.
#[derive(Debug, Clone, Default, Serialize)]
pub struct NodeView {
    /// gRPC endpoint.
    pub endpoint: String,
    /// `proposer`, `validator`, `follower` or `solo`; empty while unknown.
    pub role: String,
    /// Its key (hex).
    pub key: String,
    /// Its head.
    pub height: u64,
    /// The round consensus is in.
    pub round: u32,
    /// Rounds above 0 it saw since it started.
    pub round_changes: u64,
    /// Txs waiting in its mempool.
    pub mempool: u32,
    /// State root of its head (hex).
    pub state_root: String,
    /// Why it did not answer, if it did not.
    pub error: Option<String>,
}

/// Aggregated depth.
#[derive(Debug, Clone, Default, Serialize)]
pub struct BookView {
    /// Height of the book.
    pub height: u64,
    /// Best first.
    pub bids: Vec<LevelView>,
    /// Best first.
    pub asks: Vec<LevelView>,
}

/// One price level.
#[derive(Debug, Clone, Serialize)]
pub struct LevelView {
    /// Price, exact.
    pub price: String,
    /// Lots resting.
    pub lots: u64,
    /// Orders resting.
    pub orders: u32,
}

/// A fill, as its taker saw it.
#[derive(Debug, Clone, Serialize)]
pub struct TradeView {
    /// Block height.
    pub height: u64,
    /// Block time, ms.
    pub time_ms: u64,
    /// The taker's account (hex).
    pub account: String,
    /// `buy` or `sell` (the taker's side).
    pub side: &'static str,
    /// Lots filled.
    pub lots: u64,
    /// Fill price, exact.
    pub price: String,
    /// The option series (`EXPIRY_MS:STRIKE:call|put`), empty on a perpetual.
    pub series: String,
}

/// An option series' price and Greeks at some height.
#[derive(Debug, Clone, Serialize)]
pub struct SeriesView {
    /// `EXPIRY_MS:STRIKE:call|put`.
    pub series: String,
    /// Height the figures are from.
    pub height: u64,
    /// Black-76 price per unit, exact.
    pub price: String,
    /// Volatility at the strike, parts per million.
    pub vol_ppm: u32,
    /// Millionths.
    pub delta_ppm: i64,
    /// 10^-12 per USD of spot.
    pub gamma_e12: i64,
    /// Micro-USD per volatility point.
    pub vega_micros: i64,
    /// Micro-USD per day.
    pub theta_micros: i64,
}

/// The coordinator.
#[derive(Debug, Clone, Default, Serialize)]
pub struct CoordinatorView {
    /// gRPC endpoint.
    pub endpoint: String,
    /// Why it did not answer, if it did not.
    pub error: Option<String>,
    /// Recent epochs, newest first.
    pub epochs: VecDeque<EpochView>,
    /// Its view of each shard.
    pub shards: Vec<CoordShardView>,
}

/// One signed epoch.
#[derive(Debug, Clone, Serialize)]
pub struct EpochView {
    /// Epoch number.
    pub number: u64,
    /// Coordinator time, ms.
    pub time_ms: u64,
    /// Global root (hex).
    pub global_root: String,
    /// Shards whose entry changed since the parent.
    pub new_headers: u32,
    /// Its signature checked under the configured coordinator key.
    pub verified: bool,
    /// Shard id → the height the epoch commits.
    pub heights: BTreeMap<u32, u64>,
}

/// What the coordinator accepted of one shard.
#[derive(Debug, Clone, Serialize)]
pub struct CoordShardView {
    /// Shard id.
    pub shard_id: u32,
    /// Highest accepted header.
    pub accepted_height: u64,
    /// Blocks behind the shard's reported head.
    pub lag_blocks: u64,
    /// Following it.
    pub connected: bool,
    /// Headers it refused.
    pub rejected_headers: u64,
}

/// The relayer.
#[derive(Debug, Clone, Default, Serialize)]
pub struct BridgeView {
    /// gRPC endpoint.
    pub endpoint: String,
    /// Why it did not answer, if it did not.
    pub error: Option<String>,
    /// Messages delivered, acked, refunded since the relayer started.
    pub delivered: u64,
    /// Acked.
    pub acked: u64,
    /// Refunded.
    pub refunded: u64,
    /// Lock-to-credit p50 over its window, ms.
    pub latency_p50_ms: u64,
    /// p99.
    pub latency_p99_ms: u64,
    /// Recent messages, most recently changed first.
    pub messages: VecDeque<MessageView>,
}

/// One cross-shard message through locked → committed → delivered → acked (or refunded).
#[derive(Debug, Clone, Serialize)]
pub struct MessageView {
    /// Source shard.
    pub src: u32,
    /// Destination shard.
    pub dst: u32,
    /// Sequence on the source's outbox to `dst`.
    pub seq: u64,
    /// Amount, exact.
    pub amount: String,
    /// Recipient (hex).
    pub recipient: String,
    /// Latest stage: `locked`, `committed`, `delivered`, `acked` or `refunded`.
    pub stage: &'static str,
    /// Source height of the lock.
    pub locked_height: u64,
    /// First epoch committing the lock.
    pub committed_epoch: u64,
    /// Destination height of the credit.
    pub delivered_height: u64,
    /// Block time of delivery − block time of lock, ms (once delivered).
    pub lock_to_credit_ms: Option<u64>,
    /// Relayer time each stage was seen, ms, by stage name.
    pub seen_ms: BTreeMap<&'static str, u64>,
    /// The last failed attempt's reason, if any.
    pub last_error: String,
}

/// The name of a bridge stage.
pub fn stage_name(stage: i32) -> &'static str {
    match bpb::Stage::try_from(stage) {
        Ok(bpb::Stage::Locked) => "locked",
        Ok(bpb::Stage::Committed) => "committed",
        Ok(bpb::Stage::Delivered) => "delivered",
        Ok(bpb::Stage::Acked) => "acked",
        Ok(bpb::Stage::Refunded) => "refunded",
        Ok(bpb::Stage::Unspecified) | Err(_) => "unknown",
    }
}

/// An exact amount of micro-USD.
pub fn usd(micros: u64) -> String {
    Usd::from_micros(i64::try_from(micros).unwrap_or(i64::MAX)).to_string()
}

/// An exact signed amount of micro-USD.
pub fn usd_signed(micros: i64) -> String {
    Usd::from_micros(micros).to_string()
}

/// The role a node's status names: `proposer`, `validator`, `follower`, or `solo` for a set of one.
pub fn role(s: &pb::NodeStatus) -> &'static str {
    if s.role == "follower" {
        return "follower";
    }
    match (s.consensus_engine.as_str(), s.proposer == s.node_key) {
        ("malachite", true) => "proposer",
        ("malachite", false) => "validator",
        _ => "solo",
    }
}

/// The market mode's short name.
pub fn mode_name(mode: i32) -> &'static str {
    shardex_client::core::pb::MarketMode::try_from(mode).map_or("unknown", |m| match m {
        pb::MarketMode::Normal | pb::MarketMode::Unspecified => "normal",
        pb::MarketMode::PostOnly => "post-only",
        pb::MarketMode::ReduceOnly => "reduce-only",
        pb::MarketMode::SettlementOnly => "settlement-only",
    })
}

impl NodeView {
    /// The node at `endpoint` after a status answer.
    pub fn answered(endpoint: &str, s: &pb::NodeStatus) -> Self {
        Self {
            endpoint: endpoint.to_owned(),
            role: role(s).to_owned(),
            key: hex::encode(&s.node_key),
            height: s.height,
            round: s.consensus_round,
            round_changes: s.round_changes,
            mempool: s.mempool_txs,
            state_root: hex::encode(&s.state_root),
            error: None,
        }
    }

    /// The node at `endpoint` after a failed call; what it last reported is kept.
    pub fn failed(&mut self, error: String) {
        self.error = Some(error);
        self.role.clear();
    }
}

impl ShardView {
    /// A shard before anything was heard from it.
    pub fn new(shard_id: u32, symbol: String, options: bool, validators: usize, endpoints: &[String]) -> Self {
        Self {
            shard_id,
            symbol,
            options,
            validators,
            mode: String::new(),
            head: None,
            stream_error: None,
            nodes: endpoints.iter().map(|e| NodeView { endpoint: e.clone(), ..Default::default() }).collect(),
            book: BookView::default(),
            trades: VecDeque::new(),
            series: Vec::new(),
        }
    }

    /// Applies a finalized block: the head moves and its taker fills become trades (at most `keep`).
    /// Returns the accounts that took an option series in it (for their Greeks).
    pub fn apply_block(&mut self, header: &DecodedHeader, block: &pb::Block, keep: usize) -> Vec<Vec<u8>> {
        let h = &header.header;
        let round = block.header.as_ref().map_or(0, |f| f.round);
        let signatures = block.header.as_ref().map_or(0, |f| f.signatures.len());
        if self.head.as_ref().is_some_and(|head| head.height >= h.height) {
            return Vec::new();
        }
        self.head = Some(BlockView {
            height: h.height,
            time_ms: h.timestamp_ms,
            txs: h.tx_count,
            round,
            proposer: hex::encode(&h.proposer),
            hash: hex::encode(header.hash),
            signatures,
        });
        self.stream_error = None;
        let mut option_takers = Vec::new();
        for event in block.receipts.iter().flat_map(|r| &r.events) {
            let Some(Kind::OrderFilled(fill)) = &event.kind else { continue };
            if fill.is_maker {
                continue;
            }
            let series = SeriesId::from_bytes(&fill.series).map(|s| s.to_string()).unwrap_or_default();
            if !series.is_empty() && !option_takers.contains(&event.account) {
                option_takers.push(event.account.clone());
            }
            self.trades.push_front(TradeView {
                height: h.height,
                time_ms: h.timestamp_ms,
                account: hex::encode(&event.account),
                side: if fill.is_buy { "buy" } else { "sell" },
                lots: fill.lots,
                price: usd(fill.price_micros),
                series,
            });
        }
        self.trades.truncate(keep);
        option_takers
    }

    /// Keeps each series of `greeks` (newer figures replace older ones), at most [`MAX_SERIES`], in series
    /// order.
    pub fn apply_greeks(&mut self, greeks: &pb::GetGreeksResponse) {
        for g in &greeks.series {
            let Some(id) = SeriesId::from_bytes(&g.series) else { continue };
            let row = SeriesView {
                series: id.to_string(),
                height: greeks.height,
                price: usd(g.price_micros),
                vol_ppm: g.vol_ppm,
                delta_ppm: g.delta_ppm,
                gamma_e12: g.gamma_e12,
                vega_micros: g.vega_micros,
                theta_micros: g.theta_micros,
            };
            match self.series.iter().position(|s| s.series == row.series) {
                Some(i) if self.series[i].height <= row.height => self.series[i] = row,
                Some(_) => {}
                None if self.series.len() < MAX_SERIES => self.series.push(row),
                None => {}
            }
        }
        self.series.sort_by(|a, b| a.series.cmp(&b.series));
    }

    /// Replaces the book with `book`, unless it is older than the one shown.
    pub fn apply_book(&mut self, book: &pb::GetBookResponse) {
        if book.height < self.book.height {
            return;
        }
        let levels = |side: &[pb::BookLevel]| {
            side.iter()
                .map(|l| LevelView { price: usd(l.price_micros), lots: l.total_lots, orders: l.order_count })
                .collect()
        };
        self.book = BookView { height: book.height, bids: levels(&book.bids), asks: levels(&book.asks) };
    }
}

impl CoordinatorView {
    /// Adds an epoch (newest first, at most `keep`); an epoch already shown is replaced.
    pub fn apply_epoch(&mut self, epoch: EpochView, keep: usize) {
        self.epochs.retain(|e| e.number != epoch.number);
        let at = self.epochs.iter().position(|e| e.number < epoch.number).unwrap_or(self.epochs.len());
        self.epochs.insert(at, epoch);
        self.epochs.truncate(keep);
        self.error = None;
    }

    /// Applies the coordinator's status.
    pub fn apply_status(&mut self, s: &coordpb::CoordinatorStatus) {
        self.shards = s
            .shards
            .iter()
            .map(|x| CoordShardView {
                shard_id: x.shard_id,
                accepted_height: x.accepted_height,
                lag_blocks: x.lag_blocks,
                connected: x.connected,
                rejected_headers: x.rejected_headers,
            })
            .collect();
        self.error = None;
    }
}

impl BridgeView {
    /// Applies one lifecycle change: the message moves to the front (at most `keep` kept) and the stage's
    /// observation time is recorded.
    pub fn apply_lifecycle(&mut self, event: &bpb::LifecycleEvent, keep: usize) {
        let Some(m) = &event.message else { return };
        let stage = stage_name(m.stage);
        let mut seen_ms =
            match self.messages.iter().position(|x| (x.src, x.dst, x.seq) == (m.src_shard, m.dst_shard, m.seq)) {
                Some(i) => self.messages.remove(i).map(|x| x.seen_ms).unwrap_or_default(),
                None => BTreeMap::new(),
            };
        seen_ms.entry(stage).or_insert(event.time_ms);
        let delivered = m.delivered_time_ms > 0 && m.locked_time_ms > 0;
        self.messages.push_front(MessageView {
            src: m.src_shard,
            dst: m.dst_shard,
            seq: m.seq,
            amount: usd(m.amount_micros),
            recipient: hex::encode(&m.recipient),
            stage,
            locked_height: m.locked_height,
            committed_epoch: m.committed_epoch,
            delivered_height: m.delivered_height,
            lock_to_credit_ms: delivered.then(|| m.delivered_time_ms.saturating_sub(m.locked_time_ms)),
            seen_ms,
            last_error: m.last_error.clone(),
        });
        self.messages.truncate(keep);
    }

    /// Applies the relayer's status.
    pub fn apply_status(&mut self, s: &bpb::RelayerStatus) {
        self.delivered = s.delivered;
        self.acked = s.acked;
        self.refunded = s.refunded;
        self.latency_p50_ms = s.latency_p50_ms;
        self.latency_p99_ms = s.latency_p99_ms;
        self.error = None;
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use shardex_core::block::encode_header;

    fn block(height: u64, fills: Vec<(Vec<u8>, pb::OrderFilled)>) -> (DecodedHeader, pb::Block) {
        let header = pb::BlockHeader { height, timestamp_ms: 1_000 + height, tx_count: 1, ..Default::default() };
        let (bytes, hash) = encode_header(&header);
        let events =
            fills.into_iter().map(|(account, f)| pb::Event { account, kind: Some(Kind::OrderFilled(f)) }).collect();
        let fh = pb::FinalizedHeader { header: bytes, signatures: vec![], round: 2 };
        let block = pb::Block {
            header: Some(fh),
            receipts: vec![pb::Receipt { events, ..Default::default() }],
            ..Default::default()
        };
        (DecodedHeader { header, hash }, block)
    }

    fn fill(is_maker: bool, lots: u64, series: Vec<u8>) -> pb::OrderFilled {
        pb::OrderFilled { is_maker, is_buy: true, lots, price_micros: 100_000_500_001, series, ..Default::default() }
    }

    #[test]
    fn blocks_move_the_head_and_keep_taker_fills_newest_first() {
        let mut shard = ShardView::new(1, "BTC-PERP".into(), false, 4, &["http://a".into()]);
        let (h, b) = block(5, vec![(vec![1; 32], fill(true, 3, vec![])), (vec![2; 32], fill(false, 3, vec![]))]);
        assert!(shard.apply_block(&h, &b, 2).is_empty(), "no option takers on a perpetual");
        let head = shard.head.clone().expect("head");
        assert_eq!((head.height, head.round, head.time_ms), (5, 2, 1_005));
        assert_eq!(shard.trades.len(), 1, "the maker's side of a fill is not a second trade");
        assert_eq!(shard.trades[0].account, hex::encode([2; 32]));
        assert_eq!(shard.trades[0].price, "100000.500001 USD", "prices are exact");

        let (h6, b6) = block(6, vec![(vec![3; 32], fill(false, 1, vec![])), (vec![4; 32], fill(false, 2, vec![]))]);
        shard.apply_block(&h6, &b6, 2);
        let lots: Vec<u64> = shard.trades.iter().map(|t| t.lots).collect();
        assert_eq!(lots, [2, 1], "newest first, at most `keep`");

        // A block at or below the head (a reconnect replaying it) changes nothing.
        shard.apply_block(&h, &b, 2);
        assert_eq!((shard.head.as_ref().map(|h| h.height), shard.trades.len()), (Some(6), 2));
    }

    #[test]
    fn option_takers_are_returned_once_and_greeks_keep_the_newest_figures() {
        let series = SeriesId::parse("1767254400000:3000:call").expect("series");
        let mut shard = ShardView::new(3, "ETH-OPTIONS".into(), true, 1, &[]);
        let who = vec![7; 32];
        let (h, b) = block(
            9,
            vec![
                (who.clone(), fill(false, 1, series.to_bytes().to_vec())),
                (who.clone(), fill(false, 2, series.to_bytes().to_vec())),
            ],
        );
        assert_eq!(shard.apply_block(&h, &b, 10), vec![who]);
        assert_eq!(shard.trades[0].series, "1767254400000:3000:call");

        let row = |height, delta_ppm| pb::GetGreeksResponse {
            height,
            series: vec![pb::SeriesGreeks { series: series.to_bytes().to_vec(), delta_ppm, ..Default::default() }],
            ..Default::default()
        };
        shard.apply_greeks(&row(10, 500_000));
        shard.apply_greeks(&row(8, 100_000));
        assert_eq!((shard.series.len(), shard.series[0].delta_ppm), (1, 500_000), "an older answer is ignored");
        shard.apply_greeks(&row(11, 600_000));
        assert_eq!(shard.series[0].delta_ppm, 600_000);
    }

    #[test]
    fn messages_move_to_the_front_and_remember_when_each_stage_was_seen() {
        let mut bridge = BridgeView::default();
        let event = |seq, stage: bpb::Stage, time_ms, delivered_time_ms| bpb::LifecycleEvent {
            message: Some(bpb::MessageLifecycle {
                src_shard: 1,
                dst_shard: 2,
                seq,
                amount_micros: 1_000_000_000,
                stage: stage as i32,
                locked_time_ms: 500,
                delivered_time_ms,
                ..Default::default()
            }),
            time_ms,
        };
        bridge.apply_lifecycle(&event(1, bpb::Stage::Locked, 1_000, 0), 8);
        bridge.apply_lifecycle(&event(2, bpb::Stage::Locked, 1_010, 0), 8);
        bridge.apply_lifecycle(&event(1, bpb::Stage::Delivered, 1_400, 880), 8);
        let first = &bridge.messages[0];
        assert_eq!((first.seq, first.stage, first.amount.as_str()), (1, "delivered", "1000.000000 USD"));
        assert_eq!(first.seen_ms.get("locked"), Some(&1_000));
        assert_eq!(first.seen_ms.get("delivered"), Some(&1_400));
        assert_eq!(first.lock_to_credit_ms, Some(380));
        assert_eq!(bridge.messages.len(), 2, "one row per message");
        assert_eq!(bridge.messages[1].lock_to_credit_ms, None, "not delivered yet");
        bridge.apply_lifecycle(&event(3, bpb::Stage::Locked, 1_500, 0), 2);
        assert_eq!(bridge.messages.iter().map(|m| m.seq).collect::<Vec<_>>(), [3, 1]);
    }

    #[test]
    fn epochs_stay_newest_first_without_duplicates() {
        let mut coord = CoordinatorView::default();
        let epoch = |number| EpochView {
            number,
            time_ms: number,
            global_root: String::new(),
            new_headers: 1,
            verified: true,
            heights: BTreeMap::new(),
        };
        for n in [3, 5, 4, 5] {
            coord.apply_epoch(epoch(n), 3);
        }
        assert_eq!(coord.epochs.iter().map(|e| e.number).collect::<Vec<_>>(), [5, 4, 3]);
        coord.apply_epoch(epoch(6), 3);
        assert_eq!(coord.epochs.iter().map(|e| e.number).collect::<Vec<_>>(), [6, 5, 4]);
    }
}
