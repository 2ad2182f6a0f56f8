//! The running coordinator: storage, registry, key and the latest epoch, shared by the followers, the
//! epoch ticker and the RPC server.

use std::{
    collections::BTreeMap,
    sync::{Arc, RwLock},
    time::Duration,
};

use shardex_core::{coordpb, global::verify_epoch, AccountId, ChainId, Keypair, ShardId};
use tokio::sync::broadcast;
use tracing::{debug, info};

use crate::{
    epoch::{build_epoch, BuiltEpoch, EpochLink},
    error::{CoordinatorError, Result},
    follower::head_from_stored,
    registry::{now_ms, Registry, ShardView},
    store::Store,
};

/// Epochs buffered for live stream subscribers; a subscriber that lags re-reads from storage.
const EPOCH_BROADCAST: usize = 256;

/// Epoch production settings.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct EpochSettings {
    /// Time between epochs.
    pub interval: Duration,
    /// Epochs kept in storage (older ones and the headers only they referred to are pruned).
    pub retention_epochs: u64,
}

/// The latest published (durable) epoch with its entries.
#[derive(Debug, Clone)]
struct Latest {
    link: EpochLink,
    signed: coordpb::SignedEpoch,
    entries: BTreeMap<ShardId, coordpb::ShardEntry>,
}

/// Shared state of one coordinator process.
#[derive(Debug)]
pub struct Coordinator {
    /// Storage.
    pub store: Store,
    /// Followed shards.
    pub registry: Registry,
    /// The chain every shard belongs to.
    pub chain: ChainId,
    /// Epoch settings.
    pub settings: EpochSettings,
    key: Keypair,
    latest: RwLock<Option<Latest>>,
    epochs: broadcast::Sender<coordpb::SignedEpoch>,
}

impl Coordinator {
    /// Opens the coordinator over `store`: restores the latest epoch and every shard's accepted head, so
    /// the epoch chain and the followers continue where they stopped.
    pub fn open(
        store: Store,
        key: Keypair,
        chain: ChainId,
        mut views: Vec<ShardView>,
        max_recent_rejections: usize,
        settings: EpochSettings,
    ) -> Result<Arc<Self>> {
        for v in &mut views {
            v.held = store.held(v.spec.shard)?;
            v.equivocations = store.evidence(Some(v.spec.shard))?.len() as u64;
            if let Some(at) = v.held {
                tracing::warn!(target: "coordinator::follow", shard = v.spec.shard.0, at, "shard held since an equivocation: no header of it is accepted until an operator releases it (--release-shard)");
            }
            if let Some(fh) = store.head(v.spec.shard)? {
                let head = head_from_stored(&fh).map_err(|e| CoordinatorError::Corrupt(e.to_string()))?;
                v.reported_height = head.height;
                v.head = Some(head);
            }
        }
        let latest = match store.latest_number()? {
            None => None,
            Some(n) => {
                let signed = store.epoch(n)?.ok_or_else(|| CoordinatorError::Corrupt(format!("epoch {n} missing")))?;
                let epoch = verify_epoch(&signed, &key.account(), chain).map_err(|e| {
                    CoordinatorError::Corrupt(format!("stored epoch {n} does not verify with this key and chain: {e}"))
                })?;
                let entries = store.entries(n)?.unwrap_or_default();
                let link = EpochLink { number: n, hash: epoch.hash, time_ms: epoch.record.time_ms };
                info!(target: "coordinator::epoch", number = n, hash = %epoch.hash, "resuming the epoch chain");
                Some(Latest { link, signed, entries: entries.into_iter().map(|e| (ShardId(e.shard_id), e)).collect() })
            }
        };
        let (epochs, _) = broadcast::channel(EPOCH_BROADCAST);
        Ok(Arc::new(Self {
            store,
            registry: Registry::new(views, max_recent_rejections),
            chain,
            settings,
            key,
            latest: RwLock::new(latest),
            epochs,
        }))
    }

    /// The coordinator's public key.
    pub fn public_key(&self) -> AccountId {
        self.key.account()
    }

    /// The latest durable epoch.
    pub fn latest(&self) -> Option<coordpb::SignedEpoch> {
        self.latest.read().unwrap_or_else(|p| p.into_inner()).as_ref().map(|l| l.signed.clone())
    }

    /// The latest durable epoch's number (0 before the first).
    pub fn latest_number(&self) -> u64 {
        self.latest.read().unwrap_or_else(|p| p.into_inner()).as_ref().map_or(0, |l| l.link.number)
    }

    /// Live epochs, as they become durable.
    pub fn subscribe(&self) -> broadcast::Receiver<coordpb::SignedEpoch> {
        self.epochs.subscribe()
    }

    /// Builds, stores (flushed) and then publishes the next epoch.
    pub async fn produce_epoch(self: &Arc<Self>) -> Result<BuiltEpoch> {
        let number = self.latest_number() + 1;
        let span = tracing::info_span!(target: "coordinator::epoch", "epoch", number);
        tracing::Instrument::instrument(self.produce_epoch_inner(), span).await
    }

    async fn produce_epoch_inner(self: &Arc<Self>) -> Result<BuiltEpoch> {
        let (prev, prev_entries) = {
            let l = self.latest.read().unwrap_or_else(|p| p.into_inner());
            (l.as_ref().map(|l| l.link.clone()), l.as_ref().map(|l| l.entries.clone()).unwrap_or_default())
        };
        let entries = self.registry.entries();
        let started = std::time::Instant::now();
        let built = build_epoch(&self.key, self.chain, prev.as_ref(), &prev_entries, &entries, now_ms());
        let this = Arc::clone(self);
        let to_store = built.clone();
        tokio::task::spawn_blocking(move || this.store.commit_epoch(&to_store, this.settings.retention_epochs))
            .await
            .map_err(|e| CoordinatorError::Corrupt(format!("epoch commit task: {e}")))??;
        crate::metrics::epoch_committed(built.record.number, u64::from(built.record.new_headers), started.elapsed());
        debug!(
            target: "coordinator::epoch",
            number = built.record.number,
            shards = entries.len(),
            new_headers = built.record.new_headers,
            build_and_commit_us = started.elapsed().as_micros() as u64,
            "epoch committed"
        );
        *self.latest.write().unwrap_or_else(|p| p.into_inner()) =
            Some(Latest { link: built.link(), signed: built.signed.clone(), entries });
        let _ = self.epochs.send(built.signed.clone());
        Ok(built)
    }
}

/// Produces an epoch every `settings.interval` until a storage failure (returned: fatal).
pub async fn run_epochs(coord: Arc<Coordinator>) -> CoordinatorError {
    let mut tick = tokio::time::interval(coord.settings.interval);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tick.tick().await;
        if let Err(e) = coord.produce_epoch().await {
            tracing::error!(target: "coordinator::epoch", error = %e, "epoch could not be stored; stopping");
            return e;
        }
    }
}
