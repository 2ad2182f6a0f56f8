//! The shard as the consensus engine's application: the leader seals what it admitted (or an empty block
//! when idle), other validators re-execute its block and vote only for a byte-identical header, and the
//! decided block is written with its certificate exactly as the solo sequencer writes its own.

use std::{
    collections::HashMap,
    sync::{Arc, Mutex},
    time::{Duration, Instant},
};

use async_trait::async_trait;
use prost::Message;
use shardex_consensus::{AppError, AppHead, BlockApp, BlockBody, Verdict};
use shardex_core::{
    block::{verify_finalized, Certificate},
    hash::{b256_from_slice, ordered_root},
    pb,
    tx::{verify_all, TxDomain, VerifiedTx},
    validators::ValidatorSet,
    AccountId, B256,
};
use tracing::{debug, info_span, Instrument};

use super::Routing;
use crate::{
    runtime::{now_ms, NodeHandle},
    shard::{faults, Proposal, ReplayError, ShardError},
};
use shardex_vm::BlockCtx;

/// Txs per batch when pending txs are handed over to a new leader.
const HAND_OVER_BATCH: usize = 512;

/// How often an idle proposer looks for a first admitted tx.
const IDLE_POLL: Duration = Duration::from_millis(5);

/// Limits a validator applies to other validators' blocks.
#[derive(Debug, Clone, Copy)]
pub struct ValidationLimits {
    /// Largest encoded tx, bytes (as admission).
    pub max_tx_bytes: usize,
    /// How far ahead of this node's clock a block's timestamp may be, ms.
    pub max_future_ms: u64,
}

/// The shard behind the consensus engine.
pub struct ShardApp {
    node: Arc<NodeHandle>,
    validators: ValidatorSet,
    domain: TxDomain,
    limits: ValidationLimits,
    /// Staged blocks of the height in progress (this node's own and those it validated), by hash.
    candidates: Mutex<HashMap<B256, Proposal>>,
    routing: Arc<Routing>,
}

fn fatal(what: &str) -> impl Fn(ShardError) -> AppError + '_ {
    move |e| AppError(format!("{what}: {e}"))
}

fn joined<T>(r: Result<T, tokio::task::JoinError>) -> Result<T, AppError> {
    r.map_err(|e| AppError(format!("blocking task failed: {e}")))
}

impl ShardApp {
    /// The application over `node`, whose genesis lists `validators`.
    pub fn new(node: Arc<NodeHandle>, limits: ValidationLimits, routing: Arc<Routing>) -> Self {
        let (validators, domain) = {
            let shard = node.shard();
            (shard.genesis().validators.clone(), shard.domain())
        };
        Self { node, validators, domain, limits, candidates: Mutex::new(HashMap::new()), routing }
    }

    /// Sends txs this node had admitted, and another validator's block left out, to that block's proposer
    /// (the next height's leader), in the background; what it refuses or cannot take is dropped (its
    /// submitter sees it never become final, as with any node that fails).
    fn hand_over(&self, orphans: Vec<VerifiedTx>, leader: Option<AccountId>) {
        let Some(leader) = leader.filter(|l| *l != self.routing.leader.me()) else {
            let node = Arc::clone(&self.node);
            tokio::task::spawn_blocking(move || {
                let mut shard = node.shard();
                if let Err(e) = shard.readmit(orphans, now_ms()) {
                    tracing::error!(target: "shard::consensus", error = %e, "re-admitting pending txs failed");
                }
            });
            return;
        };
        let routing = Arc::clone(&self.routing);
        tokio::spawn(async move {
            let total = orphans.len();
            for chunk in orphans.chunks(HAND_OVER_BATCH) {
                let txs = chunk.iter().map(|t| t.envelope().clone()).collect();
                if let Err(e) = routing.forwarder.submit_batch(&leader, txs).await {
                    debug!(target: "shard::consensus", %leader, error = %e.message(), "handing pending txs over failed");
                    return;
                }
            }
            debug!(target: "shard::consensus", %leader, txs = total, "pending txs handed over to the leader");
        });
    }

    /// Prechecks and re-executes `body` on the head; keeps the staged block if it rebuilds the same header.
    async fn rebuild(
        &self,
        proposer: Option<AccountId>,
        body: &BlockBody,
        clock_bound: bool,
    ) -> Result<Verdict, AppError> {
        let (ctx, by, txs) = match self.precheck(proposer, body, clock_bound)? {
            Ok(checked) => checked,
            Err(why) => return Ok(Verdict::Invalid(why)),
        };
        if faults::diverges(ctx.height) {
            return Ok(Verdict::Invalid(format!(
                "re-execution rebuilds another header (state_root differs: {} injected at this height)",
                faults::ENV_DIVERGE_AT
            )));
        }
        let rebuilder = self.node.shard().rebuilder();
        let (domain, max_tx_bytes) = (self.domain, self.limits.max_tx_bytes);
        let rebuilt = joined(
            tokio::task::spawn_blocking(move || {
                // The signatures as batches, each tx with the verdict it would get alone.
                let txs = verify_all(txs, domain, max_tx_bytes)
                    .map_err(|(i, e)| ReplayError::Invalid(format!("tx {i}: {e}")))?;
                rebuilder.rebuild(ctx, by, txs)
            })
            .await,
        )?;
        let proposal = match rebuilt {
            Ok(p) => p,
            Err(ReplayError::Invalid(why)) => return Ok(Verdict::Invalid(why)),
            Err(ReplayError::Node(e)) => return Err(fatal("re-executing a proposed block")(e)),
        };
        if proposal.header_bytes != body.header {
            return Ok(Verdict::Invalid(format!(
                "re-execution rebuilds another header ({} differs)",
                difference(&body.header, &proposal.header)
            )));
        }
        self.candidates().insert(proposal.hash, proposal);
        Ok(Verdict::Valid)
    }

    fn candidates(&self) -> std::sync::MutexGuard<'_, HashMap<B256, Proposal>> {
        self.candidates.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// The cheap checks that need no execution: shape, chain, height, parent, proposer, time, and every tx's
    /// envelope decoding. Returns the block context, its proposer and its txs. `clock_bound` refuses a timestamp
    /// beyond this node's clock plus `max_future_ms`: a vote depends on it, but a certified block is
    /// final whatever this node's clock says (a node whose clock is behind must still follow).
    fn precheck(
        &self,
        proposer: Option<AccountId>,
        body: &BlockBody,
        clock_bound: bool,
    ) -> Result<Result<Prechecked, String>, AppError> {
        let head = self.node.shard().head().clone();
        let Ok(h) = pb::BlockHeader::decode(body.header.as_slice()) else {
            return Ok(Err("header does not decode".into()));
        };
        if h.chain_id != self.domain.chain.0 || h.shard_id != self.domain.shard.0 {
            return Ok(Err(format!("header is for chain {} shard {}", h.chain_id, h.shard_id)));
        }
        if h.height != head.height + 1 || b256_from_slice(&h.parent_hash) != Some(head.hash) {
            return Ok(Err(format!("height {} does not extend head {} ({})", h.height, head.height, head.hash)));
        }
        let Ok(by) = AccountId::from_slice(&h.proposer) else { return Ok(Err("proposer is not 32 bytes".into())) };
        if !self.validators.contains(&by) || proposer.is_some_and(|p| p != by) {
            return Ok(Err(format!("header names proposer {by}, not the validator that proposed it")));
        }
        let now = now_ms();
        let too_late = clock_bound && h.timestamp_ms > now.saturating_add(self.limits.max_future_ms);
        if h.timestamp_ms < head.timestamp_ms || too_late {
            return Ok(Err(format!(
                "timestamp {} outside [parent {}, now {now} + {} ms]",
                h.timestamp_ms, head.timestamp_ms, self.limits.max_future_ms
            )));
        }
        let mut txs = Vec::with_capacity(body.txs.len());
        for (i, bytes) in body.txs.iter().enumerate() {
            match pb::SignedTx::decode(bytes.as_slice()) {
                Ok(tx) => txs.push(tx),
                Err(why) => return Ok(Err(format!("tx {i}: malformed tx: envelope: {why}"))),
            }
        }
        Ok(Ok((BlockCtx { height: h.height, timestamp_ms: h.timestamp_ms }, by, txs)))
    }
}

/// A proposed block that passed [`ShardApp::precheck`]: its context, proposer and decoded txs, whose
/// signatures and limits are still to check (off the runtime, as batches).
type Prechecked = (BlockCtx, AccountId, Vec<pb::SignedTx>);

/// The body consensus carries for a staged proposal.
fn body_of(p: &Proposal) -> BlockBody {
    BlockBody { header: p.header_bytes.clone(), txs: p.txs().iter().map(|t| t.envelope().encode_to_vec()).collect() }
}

/// The error that stops a node on a certified block it cannot replay.
fn diverged(body: &BlockBody, height: u64, why: &str) -> AppError {
    AppError(format!(
        "certified block {} at height {height} does not replay on this node ({why}): this node diverged from its \
         validators (non-deterministic execution, or a faulty quorum) and stops rather than serve state the \
         network did not agree on",
        body.hash()
    ))
}

/// Names the first header field a rebuilt block disagrees on.
fn difference(proposed: &[u8], rebuilt: &pb::BlockHeader) -> String {
    let Ok(p) = pb::BlockHeader::decode(proposed) else { return "header bytes".into() };
    let fields: [(&str, bool); 7] = [
        ("state_root", p.state_root == rebuilt.state_root),
        ("receipts_root", p.receipts_root == rebuilt.receipts_root),
        ("tx_root", p.tx_root == rebuilt.tx_root),
        ("events_root", p.events_root == rebuilt.events_root),
        ("gas_used", p.gas_used == rebuilt.gas_used),
        ("last_imported_epoch", p.last_imported_epoch == rebuilt.last_imported_epoch),
        ("tx_count", p.tx_count == rebuilt.tx_count),
    ];
    fields.iter().find(|(_, same)| !same).map_or("header encoding", |(name, _)| name).to_owned()
}

#[async_trait]
impl BlockApp for ShardApp {
    fn head(&self) -> Result<AppHead, AppError> {
        let head = self.node.shard().head().clone();
        Ok(AppHead { height: head.height, hash: head.hash, proposer: head.proposer })
    }

    async fn build(&self, height: u64, deadline: Instant) -> Result<BlockBody, AppError> {
        let span = info_span!(target: "shard::consensus", "propose", height);
        self.build_block(height, deadline).instrument(span).await
    }

    async fn validate(&self, proposer: Option<AccountId>, body: &BlockBody) -> Result<Verdict, AppError> {
        let span = info_span!(target: "shard::consensus", "validate", height = header_height(body));
        self.rebuild(proposer, body, true).instrument(span).await
    }

    async fn validate_certified(&self, body: &BlockBody, certificate: &Certificate) -> Result<Verdict, AppError> {
        let span = info_span!(target: "shard::consensus", "sync_block", height = header_height(body));
        self.check_certified(body, certificate).instrument(span).await
    }

    async fn commit(&self, body: &BlockBody, certificate: Certificate) -> Result<(), AppError> {
        let span = info_span!(target: "shard::consensus", "commit", height = header_height(body));
        self.commit_block(body, certificate).instrument(span).await
    }

    fn decided(&self, height: u64) -> Result<Option<(BlockBody, Certificate)>, AppError> {
        self.decided_block(height)
    }

    fn history_min_height(&self) -> u64 {
        // A store synced from a snapshot, or pruned, holds blocks from its oldest on.
        self.node.head_view().oldest_block().unwrap_or(1)
    }

    fn started_round(&self, height: u64, round: u32, proposer: AccountId) {
        self.routing.leader.started(height, round, proposer);
    }
}

/// The height a proposed block's header names (0 when it does not decode: the checks then say why).
fn header_height(body: &BlockBody) -> u64 {
    pb::BlockHeader::decode(body.header.as_slice()).map_or(0, |h| h.height)
}

impl ShardApp {
    async fn build_block(&self, height: u64, deadline: Instant) -> Result<BlockBody, AppError> {
        let sealed = loop {
            {
                let mut shard = self.node.shard();
                let head = shard.head().height;
                if head + 1 != height {
                    return Err(AppError(format!("asked to build height {height} on head {head}")));
                }
                if let Some(sealed) = shard.seal().map_err(fatal("sealing a block"))? {
                    break sealed;
                }
                if Instant::now() >= deadline {
                    match shard.seal_empty(now_ms()).map_err(fatal("sealing an empty block"))? {
                        Some(sealed) => break sealed,
                        None => return Err(AppError(format!("nothing to seal at height {height}"))),
                    }
                }
            }
            tokio::time::sleep(IDLE_POLL).await;
        };
        let proposal =
            joined(tokio::task::spawn_blocking(move || sealed.stage()).await)?.map_err(fatal("staging a block"))?;
        let body = body_of(&proposal);
        debug!(target: "shard::consensus", height, txs = body.txs.len(), hash = %proposal.hash, "built");
        self.candidates().insert(proposal.hash, proposal);
        Ok(body)
    }

    async fn check_certified(&self, body: &BlockBody, certificate: &Certificate) -> Result<Verdict, AppError> {
        let fh = certificate.clone().finalize(body.header.clone());
        let decoded = match verify_finalized(&fh, self.domain.chain, self.domain.shard, &self.validators) {
            Ok(decoded) => decoded,
            Err(e) => return Ok(Verdict::Invalid(format!("its certificate does not verify: {e}"))),
        };
        if ordered_root(&body.txs).as_slice() != decoded.header.tx_root.as_slice() {
            return Ok(Verdict::Invalid("its txs are not the ones the certified header commits to".into()));
        }
        match self.rebuild(None, body, false).await? {
            Verdict::Valid => Ok(Verdict::Valid),
            Verdict::Invalid(why) => Err(diverged(body, decoded.header.height, &why)),
        }
    }

    async fn commit_block(&self, body: &BlockBody, certificate: Certificate) -> Result<(), AppError> {
        let fh = certificate.clone().finalize(body.header.clone());
        verify_finalized(&fh, self.domain.chain, self.domain.shard, &self.validators)
            .map_err(|e| AppError(format!("the engine's commit certificate does not verify: {e}")))?;
        let hash = body.hash();
        if !self.candidates().contains_key(&hash) {
            // Decided while this node was down or behind: rebuild it now; a certified block that does not
            // replay here means this node diverged from its validators.
            if let Verdict::Invalid(why) = self.rebuild(None, body, false).await? {
                let height = pb::BlockHeader::decode(body.header.as_slice()).map_or(0, |h| h.height);
                return Err(diverged(body, height, &why));
            }
        }
        let proposal =
            self.candidates().remove(&hash).ok_or_else(|| AppError(format!("decided block {hash} was not staged")))?;
        let node = Arc::clone(&self.node);
        let (committed, orphans) =
            joined(tokio::task::spawn_blocking(move || node.commit(proposal, certificate)).await)?
                .map_err(fatal("committing a decided block"))?;
        self.candidates().clear();
        self.routing.leader.committed(committed.height);
        if !orphans.is_empty() {
            let leader = self.node.shard().head().proposer;
            self.hand_over(orphans, leader);
        }
        Ok(())
    }

    fn decided_block(&self, height: u64) -> Result<Option<(BlockBody, Certificate)>, AppError> {
        if height == 0 {
            return Ok(None);
        }
        let block = self.node.head_view().block(height).map_err(fatal("reading a block"))?;
        Ok(block.and_then(|b| {
            let fh = b.header?;
            let txs = b.txs.iter().map(Message::encode_to_vec).collect();
            let certificate = Certificate::of(&fh);
            Some((BlockBody { header: fh.header, txs }, certificate))
        }))
    }
}
