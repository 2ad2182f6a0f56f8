//! Two-shard bridge helpers: a pure in-test coordinator that builds real epochs (global trie over the shards'
//! latest finalized headers, signed with `core::global`), and relayer steps that build import, deliver, ack
//! and refund ops with real proofs and the other shard's certified header read from the shards.

use prost::Message;
use shardex_core::{
    block::decode_header,
    bridge, coordpb,
    genesis::Peer,
    global::{build_global_trie, entry_from_header, sign_epoch},
    pb::{self, tx_body::Op},
    validators::ValidatorSet,
    ChainId, Keypair, ShardId, B256,
};

use super::inproc::Net;

/// The coordinator key of bridge tests.
pub fn coordinator_key() -> Keypair {
    Keypair::from_seed([0xc0; 32])
}

/// The `[[peers]]` entry of `shard` run by `validators` (power 1 each).
pub fn peer(shard: ShardId, validators: &[Keypair]) -> Peer {
    let keys: Vec<_> = validators.iter().map(Keypair::account).collect();
    Peer { shard_id: shard, validators: ValidatorSet::equal(&keys).expect("valid validator keys") }
}

/// A coordinator: numbers, links and signs epochs.
pub struct TestCoordinator {
    pub key: Keypair,
    chain: ChainId,
    number: u64,
    parent: B256,
    time_ms: u64,
}

/// One signed epoch and the entries it commits to.
#[derive(Clone)]
pub struct Epoch {
    pub number: u64,
    pub signed: coordpb::SignedEpoch,
    pub entries: Vec<coordpb::ShardEntry>,
}

impl TestCoordinator {
    pub fn new(key: Keypair, chain: ChainId) -> Self {
        Self { key, chain, number: 0, parent: B256::ZERO, time_ms: 1_700_000_000_000 }
    }

    /// The chain it signs for.
    pub fn chain(&self) -> ChainId {
        self.chain
    }

    /// The next epoch over the shards' latest headers (a shard enters with its first signed header).
    pub fn epoch(&mut self, shards: &[&Net]) -> Epoch {
        let mut entries = Vec::new();
        for net in shards {
            let head = net.shard.head().height;
            if head == 0 {
                continue;
            }
            let fh = net.shard.view().block(head).expect("block").and_then(|b| b.header).expect("head header");
            entries.push(entry_from_header(&decode_header(&fh).expect("header decodes")));
        }
        self.epoch_of(entries)
    }

    /// The next epoch over exactly `entries`, whatever they say: what a coordinator key alone can sign.
    pub fn epoch_of(&mut self, entries: Vec<coordpb::ShardEntry>) -> Epoch {
        self.number += 1;
        self.time_ms += 250;
        let record = coordpb::EpochRecord {
            chain_id: self.chain.0,
            number: self.number,
            parent_hash: self.parent.to_vec(),
            global_root: build_global_trie(&entries, None).root.to_vec(),
            time_ms: self.time_ms,
            new_headers: entries.len() as u32,
        };
        let (signed, hash) = sign_epoch(&self.key, &record);
        self.parent = hash;
        Epoch { number: self.number, signed, entries }
    }
}

impl Epoch {
    /// The op importing this epoch.
    pub fn import_op(&self) -> Op {
        Op::ImportGlobalCommitment(pb::ImportGlobalCommitment {
            epoch_record: self.signed.record.clone(),
            signature: self.signed.signature.clone(),
        })
    }

    /// `shard`'s entry (encoded), its proof under the global root and the height it commits.
    pub fn entry(&self, shard: ShardId) -> Option<(Vec<u8>, Vec<Vec<u8>>, u64)> {
        let entry = self.entries.iter().find(|e| e.shard_id == shard.0)?;
        let trie = build_global_trie(&self.entries, Some(shard));
        Some((entry.encode_to_vec(), trie.proof.iter().map(|n| n.to_vec()).collect(), entry.height))
    }
}

/// A proof of `key` on `net` at `height`.
pub fn prove(net: &Net, key: B256, height: u64) -> pb::StateProof {
    net.shard.view().prove_key(key, Some(height)).expect("no node error").expect("height retained")
}

/// Delivery of message `seq` from `src` to `dst`, proven under `epoch`; None when the epoch does not hold
/// the message yet.
pub fn deliver_op(src: &Net, epoch: &Epoch, dst: ShardId, seq: u64) -> Option<Op> {
    let (src_entry, header_proof, height) = epoch.entry(src.domain.shard)?;
    let proof = prove(src, bridge::outbox_key(dst, seq), height);
    if proof.value.is_empty() {
        return None;
    }
    let message = pb::OutboxMessage::decode(proof.value.as_slice()).expect("outbox record");
    Some(Op::DeliverMessage(pb::DeliverMessage {
        message: Some(message),
        src_entry,
        message_proof: proof.nodes,
        header_proof,
        epoch: epoch.number,
        src_header: Some(src.header(Some(height))),
    }))
}

/// The ack of message `seq` from `src`, written on `dst_net`, proven under `epoch`; None when not there yet.
pub fn ack_op(dst_net: &Net, epoch: &Epoch, src: ShardId, seq: u64) -> Option<Op> {
    let (dst_entry, header_proof, height) = epoch.entry(dst_net.domain.shard)?;
    let proof = prove(dst_net, bridge::ack_key(src, seq), height);
    if proof.value.is_empty() {
        return None;
    }
    let ack = pb::OutboxMessage::decode(proof.value.as_slice()).expect("ack record");
    Some(Op::AckMessage(pb::AckMessage {
        ack: Some(ack),
        dst_entry,
        ack_proof: proof.nodes,
        header_proof,
        epoch: epoch.number,
        dst_header: Some(dst_net.header(Some(height))),
    }))
}

/// The refund of message `seq` from `src` to `dst_net`'s shard, proven under `epoch` (the shard's imported
/// commitment and the absence of its receipt); the proofs are whatever the state holds, so a delivered
/// message yields a refund that must fail.
pub fn refund_op(dst_net: &Net, epoch: &Epoch, src: ShardId, seq: u64) -> Option<Op> {
    let (dst_entry, header_proof, height) = epoch.entry(dst_net.domain.shard)?;
    let imported = prove(dst_net, bridge::imported_latest_key(), height);
    let receipt = prove(dst_net, bridge::inbox_key(src, seq), height);
    Some(Op::TimeoutRefund(pb::TimeoutRefund {
        dst_shard: dst_net.domain.shard.0,
        seq,
        dst_entry,
        non_receipt_proof: receipt.nodes,
        header_proof,
        epoch: epoch.number,
        dst_imported: imported.value,
        imported_proof: imported.nodes,
        dst_header: Some(dst_net.header(Some(height))),
    }))
}

/// `fh`'s header bytes with a certificate of `signers`' precommits at round 0 (for forgeries: keys outside
/// the set, too few of them).
pub fn resigned(fh: &pb::FinalizedHeader, signers: &[&Keypair]) -> pb::FinalizedHeader {
    let decoded = decode_header(fh).expect("header decodes");
    let h = &decoded.header;
    let domain = (ChainId(h.chain_id), ShardId(h.shard_id));
    let signatures =
        signers.iter().map(|k| shardex_core::vote::sign_precommit(k, domain, h.height, 0, &decoded.hash)).collect();
    pb::FinalizedHeader { header: fh.header.clone(), signatures, round: 0 }
}

/// A state trie over `leaves` (built with alloy-trie's `HashBuilder`) and the proof of `target` in it: a
/// state no shard ever had, for forgeries.
pub fn made_up_state(leaves: &[(B256, Vec<u8>)], target: B256) -> (B256, Vec<Vec<u8>>) {
    use alloy_trie::{proof::ProofRetainer, HashBuilder, Nibbles};
    let mut sorted = leaves.to_vec();
    sorted.sort_by_key(|(k, _)| *k);
    let mut hb = HashBuilder::default().with_proof_retainer(ProofRetainer::new(vec![Nibbles::unpack(target)]));
    for (k, v) in &sorted {
        hb.add_leaf(Nibbles::unpack(*k), v);
    }
    let root = hb.root();
    let nodes = hb.take_proof_nodes().into_nodes_sorted().into_iter().map(|(_, n)| n.to_vec()).collect();
    (root, nodes)
}

/// A transfer-out op.
pub fn transfer_op(dst: ShardId, recipient: &shardex_core::AccountId, amount_micros: u64, expiry_epoch: u64) -> Op {
    Op::TransferOut(pb::TransferOut { dst_shard: dst.0, recipient: recipient.0.to_vec(), amount_micros, expiry_epoch })
}

/// The totals record of a shard.
pub fn totals(net: &Net) -> pb::LedgerTotalsRecord {
    net.shard.view().market(false).expect("market").totals
}

/// Checks per-shard conservation over `accounts` (every account holding money on the shard) and every
/// account the shard has seen: Σ collateral − Σ entry + fee pool + insurance + funding pool + escrowed =
/// deposited − withdrawn + in − out, the totals' sums equal to the scanned ones, and the escrowed total equal
/// to the accounts' escrow balances (`support::ledger`).
pub fn check_conservation(net: &Net, accounts: &[shardex_core::AccountId], context: &str) {
    let all: std::collections::BTreeSet<_> = accounts.iter().chain(&net.seen.0).copied().collect();
    super::ledger::check_ledger(&net.shard, &all, context);
}
