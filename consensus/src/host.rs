//! The host loop: answers every message of the engine, promptly, by asking the [`BlockApp`]. The engine is
//! serialized behind these replies, so nothing here waits on anything but the application's own work.
//!
//! - propose: this node's block for the height (the one it already built there, if any, never a second one),
//!   kept on disk before the engine hears of it, then streamed to the peers;
//! - validate: a peer's stream is reassembled, its proposer and signature checked, then re-executed by the
//!   application, which must rebuild a byte-identical header; a bad proposal gets a nil vote, never a crash;
//! - commit: the decided block with its certificate, durably, before the engine moves on;
//! - sync: decided blocks served to and taken from peers that lag, every certificate checked by the engine.

use std::{
    sync::Arc,
    time::{Duration, Instant},
};

use bytes::Bytes;
use malachitebft_app_channel::{
    app::streaming::StreamMessage,
    app::types::{
        core::{
            CommitCertificate, ExtendedCommitCertificate, ExtendedCommitSignature, HeightParams, LinearTimeouts, Round,
            Validity,
        },
        sync::RawDecidedValue,
        LocallyProposedValue, PeerId, ProposedValue,
    },
    AppMsg, Channels, NetworkMsg,
};
use malachitebft_core_consensus::VoteExtensionError;
use malachitebft_engine::host::{Next, SyncedValueOutcome};
use shardex_core::{block::Certificate, pb, validators, AccountId};
use tracing::{debug, error, info, warn};

use crate::{
    app::{AppError, AppHead, BlockApp, Verdict},
    context::ShardCtx,
    messages::{PartInit, Proposal, ProposalPart},
    signing::{ShardSigner, ShardVerifier, Signature},
    store::{fresh_init, ProposalStore, StoreError, StoredProposal},
    stream::{self, Assembled, CertifiedBody, Reassembler, StreamLimits},
    types::{Address, BlockId, Height, ValidatorSet},
};

/// One message of a proposal stream.
type PartMessage = StreamMessage<ProposalPart>;

/// Why the host stopped; the node stops with it.
#[derive(Debug, thiserror::Error)]
pub enum HostError {
    /// The application failed.
    #[error("application: {0}")]
    App(#[from] AppError),
    /// The proposal store failed.
    #[error(transparent)]
    Store(#[from] StoreError),
    /// The engine went away (it stopped, or hit a safety failure such as a WAL write error).
    #[error("the consensus engine stopped: {0}")]
    EngineGone(String),
    /// The engine decided a block this node never saw.
    #[error("decided block {id} at height {height} is unknown to this node")]
    UnknownDecision {
        /// Height.
        height: u64,
        /// The block.
        id: BlockId,
    },
}

/// Settings of the host loop.
#[derive(Clone, Debug)]
pub struct HostSettings {
    /// Consensus timeouts of every height.
    pub timeouts: LinearTimeouts,
    /// Least time per height (the block interval); None runs heights back to back.
    pub target_time: Option<Duration>,
    /// Longest a proposer waits for a first transaction before proposing an empty block.
    pub max_idle: Duration,
    /// Bounds of proposal streams.
    pub streams: StreamLimits,
    /// Most decided blocks served in one sync answer.
    pub max_sync_batch: u64,
    /// Most complete proposals for future heights kept until their height starts.
    pub max_pending_proposals: usize,
}

/// The host of one validator (or, without a signer, of a follower).
pub struct Host<A: BlockApp> {
    app: Arc<A>,
    genesis: validators::ValidatorSet,
    me: Address,
    signer: Option<ShardSigner>,
    verifier: ShardVerifier,
    store: ProposalStore,
    streams: Reassembler,
    pending: Vec<Assembled>,
    settings: HostSettings,
    height: Height,
    round: u32,
    nonce: u32,
}

impl<A: BlockApp> Host<A> {
    /// A host for `app` on the shard of `ctx` whose validators are `genesis`; `signer` is None on a follower.
    pub fn new(
        app: Arc<A>,
        ctx: ShardCtx,
        genesis: validators::ValidatorSet,
        me: AccountId,
        signer: Option<ShardSigner>,
        store: ProposalStore,
        settings: HostSettings,
    ) -> Self {
        Self {
            app,
            genesis,
            me: me.into(),
            signer,
            verifier: ShardVerifier::new(ctx),
            store,
            streams: Reassembler::new(settings.streams),
            pending: Vec::new(),
            settings,
            height: Height(0),
            round: 0,
            nonce: 0,
        }
    }

    fn params(&self, head: &AppHead) -> HeightParams<ShardCtx> {
        HeightParams::new(
            ValidatorSet::new(&self.genesis, head.proposer.as_ref()),
            self.settings.timeouts,
            self.settings.target_time,
        )
    }

    /// Serves the engine until it stops; returns why.
    pub async fn run(mut self, mut channels: Channels<ShardCtx>) -> HostError {
        while let Some(msg) = channels.consensus.recv().await {
            if let Err(e) = self.handle(msg, &channels).await {
                error!(target: "shard::consensus", error = %e, "consensus host stopping");
                return e;
            }
        }
        HostError::EngineGone("its channel closed".into())
    }

    async fn handle(&mut self, msg: AppMsg<ShardCtx>, channels: &Channels<ShardCtx>) -> Result<(), HostError> {
        match msg {
            AppMsg::ConsensusReady { reply } => {
                let head = self.app.head()?;
                self.height = Height(head.height + 1);
                info!(target: "shard::consensus", height = self.height.0, "consensus ready");
                let _ = reply.send((self.height, self.params(&head)));
            }
            AppMsg::StartedRound { height, round, proposer, role, reply_value } => {
                self.height = height;
                self.round = round.as_u32().unwrap_or(0);
                if self.round > 0 {
                    info!(target: "shard::consensus", height = height.0, round = self.round, %proposer, ?role, "round change: the previous proposer's block was not decided in time");
                } else {
                    debug!(target: "shard::consensus", height = height.0, %proposer, ?role, "round started");
                }
                self.app.started_round(height.0, self.round, proposer.account());
                self.validate_pending(height).await?;
                let seen = self
                    .store
                    .at(height)?
                    .into_iter()
                    .filter(|p| p.init.round == round)
                    .map(|p| proposed(height, &p, Validity::Valid))
                    .collect();
                let _ = reply_value.send(seen);
            }
            AppMsg::GetValue { height, round, timeout, reply } => {
                if let Some((value, parts)) = self.propose(height, round, timeout).await? {
                    let _ = reply.send(value);
                    for part in parts {
                        channels
                            .network
                            .send(NetworkMsg::PublishProposalPart(part))
                            .await
                            .map_err(|e| HostError::EngineGone(e.to_string()))?;
                    }
                }
            }
            AppMsg::ExtendVote { reply, .. } => {
                let _ = reply.send(None);
            }
            AppMsg::VerifyVoteExtensions { extensions, reply, .. } => {
                // shardex uses no vote extensions: any that arrives is refused.
                let verdicts =
                    extensions.into_iter().map(|(a, _)| (a, Err(VoteExtensionError::InvalidVoteExtension))).collect();
                let _ = reply.send(verdicts);
            }
            AppMsg::RestreamProposal { height, round, value_id, .. } => match self.store.get(height, &value_id)? {
                Some(p) => {
                    self.nonce = self.nonce.wrapping_add(1);
                    let id = stream::stream_id(height, round.as_u32().unwrap_or(0), self.nonce);
                    let parts = stream::parts(p.init, &p.body, p.signature, self.settings.streams.chunk_bytes);
                    for part in stream::messages(&id, parts) {
                        channels
                            .network
                            .send(NetworkMsg::PublishProposalPart(part))
                            .await
                            .map_err(|e| HostError::EngineGone(e.to_string()))?;
                    }
                }
                None => warn!(target: "shard::consensus", height = height.0, %value_id, "restream of a block not kept"),
            },
            AppMsg::GetHistoryMinHeight { reply } => {
                let _ = reply.send(Height(self.app.history_min_height()));
            }
            AppMsg::ReceivedProposalPart { from, published_by, part, reply } => {
                let value = self.received_part(published_by.unwrap_or(from), part).await?;
                let _ = reply.send(value);
            }
            AppMsg::Decided { certificate, reply, .. } => {
                self.commit(&certificate).await?;
                let _ = reply.send(());
            }
            AppMsg::Finalized { certificate, evidence, reply, .. } => {
                if !evidence.is_empty() {
                    warn!(target: "shard::consensus", height = certificate.height.0, ?evidence, "validators equivocated at this height");
                }
                let head = self.app.head()?;
                let next = Height(head.height + 1);
                let params = self.params(&head);
                let _ = reply.send(if head.height >= certificate.height.0 {
                    Next::Start(next, params)
                } else {
                    Next::Restart(certificate.height, params)
                });
            }
            AppMsg::GetDecidedValues { range, reply } => {
                let values = self.decided_values(range.start().0, range.end().0)?;
                let _ = reply.send(values);
            }
            AppMsg::ProcessSyncedValue { height, round, proposer, value_bytes, reply } => {
                let outcome = self.synced(height, round, proposer, &value_bytes).await?;
                let _ = reply.send(outcome);
            }
        }
        Ok(())
    }

    /// This node's proposal at (`height`, `round`): the block it already built at this height, else a new one.
    /// Kept on disk before the engine hears of it. None on a follower (the engine never asks one).
    async fn propose(
        &mut self,
        height: Height,
        round: Round,
        timeout: Duration,
    ) -> Result<
        Option<(
            LocallyProposedValue<ShardCtx>,
            Vec<malachitebft_app_channel::app::streaming::StreamMessage<crate::messages::ProposalPart>>,
        )>,
        HostError,
    > {
        let Some(signer) = self.signer.clone() else { return Ok(None) };
        let Some(r) = round.as_u32() else { return Ok(None) };
        let body = match self.store.own(height)? {
            Some(built) => built.body,
            None => {
                let idle = self.settings.max_idle.min(timeout / 2);
                self.app.build(height.0, Instant::now() + idle).await?
            }
        };
        let id = BlockId::from(body.hash());
        let proposal = Proposal { height, round, value: id, pol_round: Round::Nil, proposer: self.me };
        let signature = signer.sign_proposal_now(&proposal).unwrap_or(Signature([0; 64]));
        let init = fresh_init(height, round, self.me);
        let stored = StoredProposal { init: init.clone(), signature, body, own: true };
        self.store.put(height, &stored)?;
        debug!(target: "shard::consensus", height = height.0, round = r, block = %id, txs = stored.body.txs.len(), "proposing");
        self.nonce = self.nonce.wrapping_add(1);
        let parts = stream::parts(init, &stored.body, signature, self.settings.streams.chunk_bytes);
        let messages = stream::messages(&stream::stream_id(height, r, self.nonce), parts);
        Ok(Some((LocallyProposedValue::new(height, round, id), messages)))
    }

    async fn received_part(
        &mut self,
        publisher: PeerId,
        part: PartMessage,
    ) -> Result<Option<ProposedValue<ShardCtx>>, HostError> {
        let assembled = match self.streams.insert(publisher, part) {
            Ok(Some(a)) => a,
            Ok(None) => return Ok(None),
            Err(e) => {
                warn!(target: "shard::consensus", %publisher, error = %e, "proposal stream dropped");
                return Ok(None);
            }
        };
        let h = assembled.init.height;
        if h < self.height {
            return Ok(None);
        }
        if h > self.height {
            if self.pending.len() >= self.settings.max_pending_proposals {
                self.pending.remove(0);
            }
            self.pending.push(assembled);
            return Ok(None);
        }
        self.check(assembled).await
    }

    /// Checks a complete proposal for the current height: its proposer is the one of its round, it is signed
    /// by that proposer, and the application re-executes it to the same header.
    async fn check(&mut self, a: Assembled) -> Result<Option<ProposedValue<ShardCtx>>, HostError> {
        let Assembled { init, body, signature } = a;
        let id = BlockId::from(body.hash());
        let Some(round) = init.round.as_u32() else { return Ok(None) };
        let head = self.app.head()?;
        if head.height + 1 != init.height.0 {
            return Ok(None);
        }
        let expected = ValidatorSet::new(&self.genesis, head.proposer.as_ref()).proposer(round).key();
        if init.proposer != expected {
            warn!(target: "shard::consensus", height = init.height.0, round, proposer = %init.proposer, %expected, "proposal from a validator that is not the proposer of its round");
            return Ok(None);
        }
        let proposal = Proposal {
            height: init.height,
            round: init.round,
            value: id,
            pol_round: init.pol_round,
            proposer: init.proposer,
        };
        if !self.verifier.proposal_is_signed(&proposal, &signature, &init.proposer) {
            warn!(target: "shard::consensus", height = init.height.0, round, proposer = %init.proposer, "proposal stream with a bad signature");
            return Ok(None);
        }
        let verdict = self.app.validate(Some(init.proposer.account()), &body).await?;
        let validity = match &verdict {
            Verdict::Valid => {
                self.store.put(init.height, &StoredProposal { init: init.clone(), signature, body, own: false })?;
                Validity::Valid
            }
            Verdict::Invalid(why) => {
                warn!(target: "shard::consensus", height = init.height.0, round, block = %id, proposer = %init.proposer, reason = %why, "invalid proposal: voting nil");
                Validity::Invalid
            }
        };
        Ok(Some(ProposedValue {
            height: init.height,
            round: init.round,
            valid_round: init.pol_round,
            proposer: init.proposer,
            value: id,
            validity,
        }))
    }

    async fn validate_pending(&mut self, height: Height) -> Result<(), HostError> {
        let (now, later): (Vec<Assembled>, Vec<Assembled>) = std::mem::take(&mut self.pending)
            .into_iter()
            .filter(|a| a.init.height >= height)
            .partition(|a| a.init.height == height);
        self.pending = later;
        for a in now {
            self.check(a).await?;
        }
        Ok(())
    }

    async fn commit(&mut self, c: &CommitCertificate<ShardCtx>) -> Result<(), HostError> {
        let proposal = self
            .store
            .get(c.height, &c.value_id)?
            .ok_or(HostError::UnknownDecision { height: c.height.0, id: c.value_id })?;
        let mut signatures: Vec<pb::HeaderSignature> = c
            .commit_signatures
            .iter()
            .map(|s| pb::HeaderSignature { signer: s.address.0.to_vec(), signature: s.signature.0.to_vec() })
            .collect();
        signatures.sort_by(|a, b| a.signer.cmp(&b.signer));
        let certificate = Certificate { round: c.round.as_u32().unwrap_or(0), signatures };
        let started = Instant::now();
        self.app.commit(&proposal.body, certificate).await?;
        self.store.prune_through(c.height)?;
        debug!(
            target: "shard::consensus",
            height = c.height.0,
            round = c.round.as_u32().unwrap_or(0),
            block = %c.value_id,
            signers = c.commit_signatures.len(),
            txs = proposal.body.txs.len(),
            commit_ms = started.elapsed().as_secs_f64() * 1e3,
            "decided"
        );
        Ok(())
    }

    fn decided_values(&self, from: u64, to: u64) -> Result<Vec<RawDecidedValue<ShardCtx>>, HostError> {
        let to = to.min(from.saturating_add(self.settings.max_sync_batch.saturating_sub(1)));
        let mut out = Vec::new();
        for h in from..=to {
            let Some((body, cert)) = self.app.decided(h)? else { break };
            let id = BlockId::from(body.hash());
            let mut commit_signatures = Vec::with_capacity(cert.signatures.len());
            for s in &cert.signatures {
                let (Ok(address), Ok(signature)) =
                    (<[u8; 32]>::try_from(s.signer.as_slice()), <[u8; 64]>::try_from(s.signature.as_slice()))
                else {
                    continue;
                };
                commit_signatures.push(ExtendedCommitSignature {
                    address: Address(address),
                    signature: Signature(signature),
                    extension: None,
                });
            }
            let certificate = ExtendedCommitCertificate {
                height: Height(h),
                round: Round::new(cert.round),
                value_id: id,
                commit_signatures,
            };
            let bytes = borsh::to_vec(&CertifiedBody::new(body, &cert))
                .map_err(|e| AppError(format!("encoding block {h}: {e}")))?;
            out.push(RawDecidedValue::new(Bytes::from(bytes), certificate));
        }
        Ok(out)
    }

    async fn synced(
        &mut self,
        height: Height,
        round: Round,
        proposer: Address,
        bytes: &[u8],
    ) -> Result<SyncedValueOutcome<ShardCtx>, HostError> {
        let Ok(CertifiedBody { body, round: certified_round, signatures }) = borsh::from_slice::<CertifiedBody>(bytes)
        else {
            return Ok(SyncedValueOutcome::PeerFault);
        };
        if body.size_bytes() > self.settings.streams.max_block_bytes {
            return Ok(SyncedValueOutcome::PeerFault);
        }
        if self.app.head()?.height + 1 != height.0 {
            return Ok(SyncedValueOutcome::LocalTransientError);
        }
        let id = BlockId::from(body.hash());
        let certified = CertifiedBody { body, round: certified_round, signatures };
        let validity = match self.app.validate_certified(&certified.body, &certified.certificate()).await? {
            Verdict::Valid => {
                let init = PartInit { height, round, pol_round: Round::Nil, proposer };
                let stored = StoredProposal { init, signature: Signature([0; 64]), body: certified.body, own: false };
                self.store.put(height, &stored)?;
                Validity::Valid
            }
            Verdict::Invalid(why) => {
                warn!(target: "shard::consensus", height = height.0, block = %id, reason = %why, "a peer sent a synced block its certificate does not cover; asking another");
                return Ok(SyncedValueOutcome::PeerFault);
            }
        };
        Ok(SyncedValueOutcome::Verdict(ProposedValue {
            height,
            round,
            valid_round: Round::Nil,
            proposer,
            value: id,
            validity,
        }))
    }
}

fn proposed(height: Height, p: &StoredProposal, validity: Validity) -> ProposedValue<ShardCtx> {
    ProposedValue {
        height,
        round: p.init.round,
        valid_round: p.init.pol_round,
        proposer: p.init.proposer,
        value: p.id(),
        validity,
    }
}
