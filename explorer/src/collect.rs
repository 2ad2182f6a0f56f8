//! The collectors: tasks that follow the network over gRPC and keep the [`Overview`] current.
//!
//! - every node's status (and each shard's market mode), the coordinator's and the relayer's status, every
//!   `view.poll_ms`;
//! - per shard, its finalized headers (`StreamHeaders`, from whichever of its nodes answers): each block's
//!   taker fills become trades, the book is read at that height, and on an options market the takers'
//!   series Greeks are read;
//! - the coordinator's epochs (`StreamEpochs`), each verified under its key, with the height it commits of
//!   every shard;
//! - the relayer's message lifecycles (`StreamLifecycle`).
//!
//! A stream that breaks is reopened (through the shard's next node) after a short pause; its error is shown
//! until then.

use std::{
    collections::BTreeMap,
    sync::{Arc, Mutex, MutexGuard},
    time::{Duration, SystemTime, UNIX_EPOCH},
};

use eyre::{bail, eyre, WrapErr};
use futures::StreamExt;
use prost::Message;
use shardex_client::{BridgeClient, CoordinatorClient, ShardClient};
use shardex_core::{
    block::decode_header,
    coordpb,
    genesis::Genesis,
    global::verify_epoch,
    pb::{self, StreamHeadersRequest},
    AccountId, ChainId,
};
use tokio::task::JoinHandle;

use crate::{
    config::{ExplorerConfig, ViewSection, MAX_SHARDS},
    view::{mode_name, BridgeView, CoordinatorView, EpochView, NodeView, Overview, ShardView},
};

/// Pause before a broken stream is reopened.
const RECONNECT_AFTER: Duration = Duration::from_millis(500);

/// One shard: its genesis and every node serving it.
#[derive(Debug, Clone)]
pub struct Shard {
    /// Its genesis (shard id, symbol, validator set).
    pub genesis: Genesis,
    /// Its nodes' gRPC endpoints, in config order.
    pub endpoints: Vec<String>,
}

/// What the explorer follows.
#[derive(Debug, Clone)]
pub struct Network {
    /// The chain.
    pub chain: ChainId,
    /// Shards by id.
    pub shards: Vec<Shard>,
    /// The coordinator's endpoint and key.
    pub coordinator: Option<(String, AccountId)>,
    /// The relayer's endpoint.
    pub relayer: Option<String>,
}

impl Network {
    /// Reads every shard's genesis and groups the configured nodes by shard (`group_shards`: one chain, one
    /// genesis per shard, no endpoint twice); shards in id order.
    pub fn from_config(cfg: &ExplorerConfig) -> eyre::Result<Self> {
        let mut shards: Vec<Shard> = shardex_service::config::group_shards(&cfg.shards)?
            .into_iter()
            .map(|g| Shard { genesis: g.genesis, endpoints: g.endpoints })
            .collect();
        shards.sort_by_key(|s| s.genesis.shard_id);
        if shards.len() > MAX_SHARDS {
            bail!("{} shards listed; at most {MAX_SHARDS}", shards.len());
        }
        let chain = shards.first().map(|s| s.genesis.chain_id).ok_or_else(|| eyre!("no shards listed"))?;
        let coordinator = match cfg.coordinator.endpoint.as_str() {
            "" => None,
            e => Some((e.to_owned(), AccountId::from_hex(cfg.coordinator.key.trim()).wrap_err("coordinator.key")?)),
        };
        let relayer = Some(cfg.relayer.endpoint.clone()).filter(|e| !e.is_empty());
        Ok(Self { chain, shards, coordinator, relayer })
    }
}

/// The explorer's state: what it follows and what it shows.
#[derive(Debug)]
pub struct Explorer {
    /// What is followed.
    pub net: Network,
    /// How much is kept, how often nodes are asked.
    pub view: ViewSection,
    overview: Mutex<Overview>,
}

/// Milliseconds since the Unix epoch.
pub fn now_ms() -> u64 {
    SystemTime::now().duration_since(UNIX_EPOCH).map_or(0, |d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX))
}

impl Explorer {
    /// An explorer of `net` that has heard nothing yet.
    pub fn new(net: Network, view: ViewSection) -> Self {
        let shards = net
            .shards
            .iter()
            .map(|s| {
                let m = &s.genesis.market;
                ShardView::new(
                    s.genesis.shard_id.0,
                    m.symbol.clone(),
                    m.options.is_some(),
                    s.genesis.validators.len(),
                    &s.endpoints,
                )
            })
            .collect();
        let overview = Overview {
            chain_id: net.chain.0,
            now_ms: 0,
            shards,
            coordinator: net
                .coordinator
                .as_ref()
                .map(|(endpoint, _)| CoordinatorView { endpoint: endpoint.clone(), ..Default::default() }),
            bridge: net
                .relayer
                .as_ref()
                .map(|endpoint| BridgeView { endpoint: endpoint.clone(), ..Default::default() }),
        };
        Self { net, view, overview: Mutex::new(overview) }
    }

    /// What the page shows now.
    pub fn snapshot(&self) -> Overview {
        let mut o = self.lock().clone();
        o.now_ms = now_ms();
        o
    }

    fn lock(&self) -> MutexGuard<'_, Overview> {
        // A collector that panicked mid-update left a consistent-enough view; keep serving it.
        self.overview.lock().unwrap_or_else(|p| p.into_inner())
    }

    fn shard(&self, i: usize, f: impl FnOnce(&mut ShardView)) {
        if let Some(s) = self.lock().shards.get_mut(i) {
            f(s);
        }
    }

    fn timeout(&self) -> Duration {
        Duration::from_millis(self.view.timeout_ms)
    }

    /// `work`, or an error once `view.timeout_ms` passed without its answer.
    async fn within<T>(&self, work: impl std::future::Future<Output = eyre::Result<T>>) -> eyre::Result<T> {
        tokio::time::timeout(self.timeout(), work).await.map_err(|_| eyre!("no answer in {:?}", self.timeout()))?
    }

    /// Starts every collector; they run until the returned handles are aborted.
    pub fn spawn(self: &Arc<Self>) -> Vec<JoinHandle<()>> {
        let mut tasks = vec![tokio::spawn(Arc::clone(self).poll())];
        for i in 0..self.net.shards.len() {
            tasks.push(tokio::spawn(Arc::clone(self).follow_shard(i)));
        }
        if self.net.coordinator.is_some() {
            tasks.push(tokio::spawn(Arc::clone(self).follow_epochs()));
        }
        if self.net.relayer.is_some() {
            tasks.push(tokio::spawn(Arc::clone(self).follow_bridge()));
        }
        tasks
    }

    /// Every `poll_ms`: each node's status, each shard's mode, the coordinator's and the relayer's status.
    async fn poll(self: Arc<Self>) {
        let mut clients: BTreeMap<String, ShardClient> = BTreeMap::new();
        let mut coordinator: Option<CoordinatorClient> = None;
        let mut relayer: Option<BridgeClient> = None;
        let mut tick = tokio::time::interval(Duration::from_millis(self.view.poll_ms));
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tick.tick().await;
            let me = &*self;
            for (i, shard) in me.net.shards.iter().enumerate() {
                let answers = futures::future::join_all(shard.endpoints.iter().map(|e| {
                    let cached = clients.get(e).cloned();
                    async move { (e.clone(), me.node_status(e, cached).await) }
                }))
                .await;
                for (e, answer) in &answers {
                    match answer {
                        Ok((client, _)) => clients.insert(e.clone(), client.clone()),
                        Err(_) => clients.remove(e),
                    };
                }
                // The market mode is shard state: one answering node is asked for it.
                let mode = match answers.iter().find_map(|(_, a)| a.as_ref().ok()) {
                    Some((client, _)) => {
                        let market = me.within(async { Ok(client.market(false).await?) }).await;
                        market.ok().and_then(|m| m.market).map(|m| m.mode)
                    }
                    None => None,
                };
                self.shard(i, |view| {
                    for ((endpoint, answer), node) in answers.iter().zip(view.nodes.iter_mut()) {
                        match answer {
                            Ok((_, status)) => *node = NodeView::answered(endpoint, status),
                            Err(e) => node.failed(format!("{e:#}")),
                        }
                    }
                    if let Some(m) = mode {
                        view.mode = mode_name(m).to_owned();
                    }
                });
            }
            if let Some((endpoint, _)) = &self.net.coordinator {
                match self.coordinator_status(endpoint, coordinator.take()).await {
                    Ok((client, s)) => {
                        coordinator = Some(client);
                        if let Some(c) = self.lock().coordinator.as_mut() {
                            c.apply_status(&s);
                        }
                    }
                    Err(e) => self.coordinator_error(format!("{e:#}")),
                }
            }
            if let Some(endpoint) = &self.net.relayer {
                match self.relayer_status(endpoint, relayer.take()).await {
                    Ok((client, s)) => {
                        relayer = Some(client);
                        if let Some(b) = self.lock().bridge.as_mut() {
                            b.apply_status(&s);
                        }
                    }
                    Err(e) => self.bridge_error(format!("{e:#}")),
                }
            }
        }
    }

    /// A node's status, through `cached` or a new connection.
    async fn node_status(
        &self,
        endpoint: &str,
        cached: Option<ShardClient>,
    ) -> eyre::Result<(ShardClient, pb::NodeStatus)> {
        let work = async {
            let client = match cached {
                Some(c) => c,
                None => ShardClient::connect(endpoint).await?,
            };
            let status = client.status().await?;
            eyre::Ok((client, status))
        };
        self.within(work).await
    }

    async fn coordinator_status(
        &self,
        endpoint: &str,
        cached: Option<CoordinatorClient>,
    ) -> eyre::Result<(CoordinatorClient, coordpb::CoordinatorStatus)> {
        let work = async {
            let client = match cached {
                Some(c) => c,
                None => CoordinatorClient::connect(endpoint).await?,
            };
            let status = client.status().await?;
            eyre::Ok((client, status))
        };
        self.within(work).await
    }

    async fn relayer_status(
        &self,
        endpoint: &str,
        cached: Option<BridgeClient>,
    ) -> eyre::Result<(BridgeClient, shardex_proto::bridge::v1::RelayerStatus)> {
        let work = async {
            let client = match cached {
                Some(c) => c,
                None => BridgeClient::connect(endpoint).await?,
            };
            let status = client.status().await?;
            eyre::Ok((client, status))
        };
        self.within(work).await
    }

    fn coordinator_error(&self, e: String) {
        if let Some(c) = self.lock().coordinator.as_mut() {
            c.error = Some(e);
        }
    }

    fn bridge_error(&self, e: String) {
        if let Some(b) = self.lock().bridge.as_mut() {
            b.error = Some(e);
        }
    }

    /// Follows shard `i`'s finalized headers through its nodes in turn.
    async fn follow_shard(self: Arc<Self>, i: usize) {
        let Some(shard) = self.net.shards.get(i) else { return };
        for endpoint in shard.endpoints.iter().cycle() {
            let e = self.stream_blocks(i, endpoint).await;
            let why = format!("{endpoint}: {:#}", e.err().unwrap_or_else(|| eyre!("the header stream ended")));
            tracing::debug!(shard = shard.genesis.shard_id.0, %why, "header stream down");
            self.shard(i, |v| v.stream_error = Some(why));
            tokio::time::sleep(RECONNECT_AFTER).await;
        }
    }

    /// Streams headers from `endpoint`, starting at its head (or after the head already shown); returns
    /// when the stream breaks.
    async fn stream_blocks(&self, i: usize, endpoint: &str) -> eyre::Result<()> {
        let client = self.within(async { Ok(ShardClient::connect(endpoint).await?) }).await?;
        let status = client.status().await?;
        let shown = self.lock().shards.get(i).and_then(|s| s.head.as_ref().map(|h| h.height));
        let from = shown.map_or(status.height.max(1), |h| h + 1);
        let mut stream = client.raw().stream_headers(StreamHeadersRequest { from_height: from }).await?.into_inner();
        while let Some(header) = stream.next().await {
            let header = header?;
            let decoded = decode_header(&header).map_err(|e| eyre!("undecodable header: {e}"))?;
            let height = decoded.header.height;
            let work = async {
                let block = client.block(height).await?;
                let book = client.book(self.view.book_levels).await?;
                eyre::Ok((block, book))
            };
            let (block, book) = self.within(work).await?;
            let mut option_takers = Vec::new();
            self.shard(i, |v| {
                option_takers = v.apply_block(&decoded, &block, self.view.trades);
                v.apply_book(&book);
            });
            for account in option_takers {
                let Ok(account) = AccountId::from_slice(&account) else { continue };
                // Greeks are best effort: a taker's read failing leaves the series as they were.
                if let Ok(Ok(g)) = tokio::time::timeout(self.timeout(), client.greeks(&account)).await {
                    self.shard(i, |v| v.apply_greeks(&g));
                }
            }
        }
        Ok(())
    }

    /// Follows the coordinator's epochs.
    async fn follow_epochs(self: Arc<Self>) {
        let Some((endpoint, key)) = self.net.coordinator.clone() else { return };
        loop {
            if let Err(e) = self.stream_epochs(&endpoint, &key).await {
                self.coordinator_error(format!("epoch stream: {e:#}"));
            }
            tokio::time::sleep(RECONNECT_AFTER).await;
        }
    }

    async fn stream_epochs(&self, endpoint: &str, key: &AccountId) -> eyre::Result<()> {
        let client = CoordinatorClient::connect(endpoint).await?;
        let shown = self.lock().coordinator.as_ref().and_then(|c| c.epochs.front().map(|e| e.number));
        let from = match shown {
            Some(n) => n + 1,
            None => match client.status().await?.latest {
                Some(latest) => verify_epoch(&latest, key, self.net.chain)?.record.number,
                None => 1,
            },
        };
        let mut stream = client.stream_epochs(from).await?;
        while let Some(signed) = stream.next().await {
            let signed = signed?;
            let (verified, record) = match verify_epoch(&signed, key, self.net.chain) {
                Ok(v) => (true, v.record),
                Err(e) => {
                    // Shown, marked unverified: a wrong key or a forged epoch must be visible, not hidden.
                    tracing::warn!(error = %e, "an epoch does not verify under the configured coordinator key");
                    match coordpb::EpochRecord::decode(signed.record.as_slice()) {
                        Ok(record) => (false, record),
                        Err(_) => continue,
                    }
                }
            };
            let mut heights = BTreeMap::new();
            for shard in &self.net.shards {
                let id = shard.genesis.shard_id.0;
                if let Ok(Ok(inclusion)) =
                    tokio::time::timeout(self.timeout(), client.inclusion(record.number, id)).await
                {
                    if let Some(entry) = inclusion.entry {
                        heights.insert(id, entry.height);
                    }
                }
            }
            let epoch = EpochView {
                number: record.number,
                time_ms: record.time_ms,
                global_root: hex::encode(&record.global_root),
                new_headers: record.new_headers,
                verified,
                heights,
            };
            if let Some(c) = self.lock().coordinator.as_mut() {
                c.apply_epoch(epoch, self.view.epochs);
            }
        }
        bail!("the coordinator ended the stream")
    }

    /// Follows the relayer's message lifecycles.
    async fn follow_bridge(self: Arc<Self>) {
        let Some(endpoint) = self.net.relayer.clone() else { return };
        loop {
            let run = async {
                let client = BridgeClient::connect(&endpoint).await?;
                let mut stream = client.stream_lifecycle().await?;
                while let Some(event) = stream.next().await {
                    let event = event?;
                    if let Some(b) = self.lock().bridge.as_mut() {
                        b.apply_lifecycle(&event, self.view.messages);
                    }
                }
                eyre::Ok(())
            };
            let why = match run.await {
                Ok(()) => "the relayer ended the lifecycle stream".to_owned(),
                Err(e) => format!("lifecycle stream: {e:#}"),
            };
            self.bridge_error(why);
            tokio::time::sleep(RECONNECT_AFTER).await;
        }
    }
}
