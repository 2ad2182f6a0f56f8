//! Targets of what clients and shards verify: signed txs, coordinator epochs with the global proof and the
//! shard's certified header under them, state proofs, history pages and bridge message answers.

use alloy_primitives::B256;
use prost::Message;
use shardex_core::{
    block::encode_header,
    bridge::verify_message_response,
    coordpb,
    global::{build_global_trie, shard_key, sign_epoch, verify_inclusion},
    hash::tx_hash,
    history::verify_history_page,
    pb::{self, tx_body::Op},
    proof::verify_pb_proof,
    tx::{decode_and_verify, sign_tx, TxDomain, DEFAULT_MAX_TX_BYTES},
    validators::ValidatorSet,
    vote::sign_precommit,
    AccountId, ChainId, Keypair, ShardId,
};

use super::{Outcome, Target};

const CHAIN: ChainId = ChainId(9);
const SHARD: ShardId = ShardId(3);
const DOMAIN: TxDomain = TxDomain { chain: CHAIN, shard: SHARD };

fn outcome<T, E>(r: &Result<T, E>) -> Outcome {
    if r.is_ok() {
        Outcome::Accepted
    } else {
        Outcome::Refused
    }
}

/// One tx of every op kind, signed.
pub fn every_op() -> Vec<Op> {
    let account = Keypair::from_seed([0x31; 32]).account().0.to_vec();
    vec![
        Op::Deposit(pb::Deposit { account: account.clone(), amount_micros: 5_000_000 }),
        Op::Withdraw(pb::Withdraw { amount_micros: 1_000_000 }),
        Op::PlaceOrder(shardex_core::order::limit_order(pb::Side::Buy, 100_000_000_000, 3, pb::TimeInForce::Gtc)),
        Op::PlaceOrder(shardex_core::order::market_order(pb::Side::Sell, 2)),
        Op::CancelOrder(pb::CancelOrder { target: Some(pb::cancel_order::Target::OrderId(1)) }),
        Op::CancelAll(pb::CancelAll {}),
        Op::OracleUpdate(pb::OracleUpdate { price_micros: 100_000_000_000, timestamp_ms: 1_700_000_000_000 }),
        Op::Liquidate(pb::Liquidate { account: account.clone(), max_size_lots: 0, series: Vec::new() }),
        Op::TransferOut(pb::TransferOut { dst_shard: 4, recipient: account, amount_micros: 1, expiry_epoch: 9 }),
        Op::DeliverMessage(pb::DeliverMessage { epoch: 3, message_proof: vec![vec![0xc0]], ..Default::default() }),
        Op::AckMessage(pb::AckMessage { epoch: 3, ..Default::default() }),
        Op::TimeoutRefund(pb::TimeoutRefund { dst_shard: 4, seq: 1, ..Default::default() }),
        Op::ImportGlobalCommitment(pb::ImportGlobalCommitment { epoch_record: vec![8, 9], signature: vec![0; 64] }),
        Op::SetMarketMode(pb::SetMarketMode { mode: 2, reason: "maintenance".into() }),
        Op::ListSeries(pb::ListSeries { expiry_ms: 1_700_006_400_000, strike_micros: 2_000_000_000, kind: 1 }),
        Op::VolUpdate(pb::VolUpdate {
            expiry_ms: 1_700_006_400_000,
            timestamp_ms: 1_700_000_000_000,
            points: vec![pb::VolPoint { strike_micros: 2_000_000_000, vol_ppm: 600_000 }],
        }),
        Op::SettleExpired(pb::SettleExpired {
            series: [&1_700_006_400_000u64.to_be_bytes()[..], &2_000_000_000u64.to_be_bytes(), &[2]].concat(),
            accounts: vec![vec![7; 32]],
        }),
        Op::SetSettlementPrice(pb::SetSettlementPrice {
            expiry_ms: 1_700_006_400_000,
            price_micros: 2_050_000_000,
            reason: "oracle outage".into(),
        }),
        Op::SetMarginMode(pb::SetMarginMode { portfolio: true }),
        Op::PlaceOrder(pb::PlaceOrder {
            series: [&1_700_006_400_000u64.to_be_bytes()[..], &2_000_000_000u64.to_be_bytes(), &[1]].concat(),
            ..shardex_core::order::limit_order(pb::Side::Sell, 10_000_000, 1_000, pb::TimeInForce::Gtc)
        }),
    ]
}

/// `decode_and_verify` on raw bytes: what a verified tx is must hold exactly.
pub struct TxTarget {
    key: Keypair,
}

impl TxTarget {
    /// The target.
    pub fn new() -> Self {
        Self { key: Keypair::from_seed([0x30; 32]) }
    }
}

impl Default for TxTarget {
    fn default() -> Self {
        Self::new()
    }
}

impl Target for TxTarget {
    fn name(&self) -> &'static str {
        "tx"
    }
    fn seeds(&self) -> Vec<Vec<u8>> {
        every_op()
            .into_iter()
            .enumerate()
            .map(|(n, op)| sign_tx(&self.key, DOMAIN, n as u64, op).encode_to_vec())
            .collect()
    }
    fn run(&mut self, data: &[u8]) -> Outcome {
        let verified = decode_and_verify(data, DOMAIN, DEFAULT_MAX_TX_BYTES);
        if let Ok(tx) = &verified {
            assert_eq!(tx.body().encode_to_vec(), tx.envelope().body, "a verified body is canonical");
            assert_eq!(tx.hash(), tx_hash(&tx.envelope().body), "the hash is of the exact body bytes");
            assert!(tx.op().is_some(), "a verified tx has an op");
            assert_eq!(tx.signer().0.as_slice(), tx.body().signer.as_slice());
        }
        outcome(&verified)
    }
}

/// A shard of four validators, its certified header at height 5, and a coordinator epoch committing it among
/// eight shards: the material every proof target starts from.
struct Fixture {
    validators: ValidatorSet,
    coordinator: AccountId,
    inclusion: coordpb::ShardInclusion,
    header: pb::FinalizedHeader,
}

impl Fixture {
    fn new() -> Self {
        let keys: Vec<Keypair> = (0x40u8..0x44).map(|s| Keypair::from_seed([s; 32])).collect();
        let validators =
            ValidatorSet::equal(&keys.iter().map(Keypair::account).collect::<Vec<_>>()).expect("four distinct keys");
        let header = pb::BlockHeader {
            chain_id: CHAIN.0,
            shard_id: SHARD.0,
            height: 5,
            parent_hash: vec![1; 32],
            timestamp_ms: 1_700_000_000_000,
            tx_root: vec![2; 32],
            receipts_root: vec![3; 32],
            state_root: vec![4; 32],
            last_imported_epoch: 0,
            proposer: keys[0].account().0.to_vec(),
            gas_used: 21_000,
            tx_count: 1,
            events_root: vec![6; 32],
        };
        let (bytes, hash) = encode_header(&header);
        let signatures = keys[..3].iter().map(|k| sign_precommit(k, (CHAIN, SHARD), 5, 0, &hash)).collect();
        let fh = pb::FinalizedHeader { header: bytes, signatures, round: 0 };
        let entries: Vec<coordpb::ShardEntry> = (1u32..=8)
            .map(|s| match s == SHARD.0 {
                true => {
                    coordpb::ShardEntry { shard_id: s, height: 5, block_hash: hash.to_vec(), state_root: vec![4; 32] }
                }
                false => coordpb::ShardEntry {
                    shard_id: s,
                    height: u64::from(s) * 10,
                    block_hash: vec![s as u8; 32],
                    state_root: vec![s as u8 + 1; 32],
                },
            })
            .collect();
        let trie = build_global_trie(&entries, Some(SHARD));
        let coordinator = Keypair::from_seed([0x50; 32]);
        let record = coordpb::EpochRecord {
            chain_id: CHAIN.0,
            number: 7,
            parent_hash: vec![7; 32],
            global_root: trie.root.to_vec(),
            time_ms: 1_700_000_000_500,
            new_headers: 1,
        };
        let (epoch, _) = sign_epoch(&coordinator, &record);
        let inclusion = coordpb::ShardInclusion {
            epoch: Some(epoch),
            entry: entries.into_iter().find(|e| e.shard_id == SHARD.0),
            proof: trie.proof.iter().map(|n| n.to_vec()).collect(),
            header: Some(fh.clone()),
        };
        Self { validators, coordinator: coordinator.account(), inclusion, header: fh }
    }
}

/// `verify_inclusion`: the coordinator's signature, the entry under the global root, the certified header.
pub struct InclusionTarget {
    fixture: Fixture,
}

impl InclusionTarget {
    /// The target.
    pub fn new() -> Self {
        Self { fixture: Fixture::new() }
    }
}

impl Default for InclusionTarget {
    fn default() -> Self {
        Self::new()
    }
}

impl Target for InclusionTarget {
    fn name(&self) -> &'static str {
        "inclusion"
    }
    fn seeds(&self) -> Vec<Vec<u8>> {
        vec![self.fixture.inclusion.encode_to_vec()]
    }
    fn run(&mut self, data: &[u8]) -> Outcome {
        let Ok(inclusion) = coordpb::ShardInclusion::decode(data) else { return Outcome::Refused };
        let f = &self.fixture;
        let verified = verify_inclusion(&inclusion, &f.coordinator, CHAIN, SHARD, &f.validators);
        if let Ok(v) = &verified {
            assert_eq!(v.entry.shard_id, SHARD.0, "an inclusion verifies only for its shard");
            assert_eq!(v.block_hash.as_slice(), v.entry.block_hash.as_slice());
        }
        outcome(&verified)
    }
}

/// `verify_pb_proof` on any key the proof names.
pub struct StateProofTarget {
    fixture: Fixture,
}

impl StateProofTarget {
    /// The target.
    pub fn new() -> Self {
        Self { fixture: Fixture::new() }
    }
}

impl Default for StateProofTarget {
    fn default() -> Self {
        Self::new()
    }
}

impl Target for StateProofTarget {
    fn name(&self) -> &'static str {
        "state_proof"
    }
    fn seeds(&self) -> Vec<Vec<u8>> {
        let inc = &self.fixture.inclusion;
        let entry = inc.entry.clone().unwrap_or_default();
        let root = coordpb::EpochRecord::decode(inc.epoch.clone().unwrap_or_default().record.as_slice())
            .map(|r| r.global_root)
            .unwrap_or_default();
        let present = pb::StateProof {
            height: 7,
            state_root: root.clone(),
            key: shard_key(SHARD).to_vec(),
            nodes: inc.proof.clone(),
            value: entry.encode_to_vec(),
        };
        // Shard 9 is not in the trie: the same nodes prove it absent.
        let absent = pb::StateProof { key: shard_key(ShardId(9)).to_vec(), value: Vec::new(), ..present.clone() };
        vec![present.encode_to_vec(), absent.encode_to_vec()]
    }
    fn run(&mut self, data: &[u8]) -> Outcome {
        let Ok(proof) = pb::StateProof::decode(data) else { return Outcome::Refused };
        let key = match <[u8; 32]>::try_from(proof.key.as_slice()) {
            Ok(k) => B256::from(k),
            Err(_) => shard_key(SHARD),
        };
        let verified = verify_pb_proof(&proof, key);
        if let Ok(value) = &verified {
            assert_eq!(
                value.as_deref().unwrap_or_default(),
                proof.value.as_slice(),
                "the proven value is the one sent"
            );
        }
        outcome(&verified)
    }
}

/// `verify_history_page` of an account's page.
pub struct HistoryTarget {
    fixture: Fixture,
    account: AccountId,
}

impl HistoryTarget {
    /// The target.
    pub fn new() -> Self {
        Self { fixture: Fixture::new(), account: Keypair::from_seed([0x31; 32]).account() }
    }
}

impl Default for HistoryTarget {
    fn default() -> Self {
        Self::new()
    }
}

impl Target for HistoryTarget {
    fn name(&self) -> &'static str {
        "history"
    }
    fn seeds(&self) -> Vec<Vec<u8>> {
        let page = pb::GetHistoryResponse {
            headers: vec![self.fixture.header.clone()],
            next_height: 6,
            head_height: 5,
            ..Default::default()
        };
        vec![page.encode_to_vec()]
    }
    fn run(&mut self, data: &[u8]) -> Outcome {
        let Ok(page) = pb::GetHistoryResponse::decode(data) else { return Outcome::Refused };
        let verified = verify_history_page(&page, Some(&self.account), CHAIN, SHARD, &self.fixture.validators);
        outcome(&verified)
    }
}

/// `verify_message_response`, both directions.
pub struct MessageTarget {
    fixture: Fixture,
}

impl MessageTarget {
    /// The target.
    pub fn new() -> Self {
        Self { fixture: Fixture::new() }
    }
}

impl Default for MessageTarget {
    fn default() -> Self {
        Self::new()
    }
}

impl Target for MessageTarget {
    fn name(&self) -> &'static str {
        "message"
    }
    /// The source side of message (shard 3 → 4, seq 1): escrow and message proven present under a state
    /// root, among other records (direction byte 0: outgoing, no header check).
    fn seeds(&self) -> Vec<Vec<u8>> {
        use alloy_trie::{proof::ProofRetainer, HashBuilder, Nibbles};
        use shardex_core::bridge::keys::{escrow_key, outbox_key};
        let escrow = pb::BridgeEscrowRecord { sender: vec![1; 32], amount_micros: 5, state: 1, ..Default::default() };
        let message = pb::OutboxMessage {
            src_shard: 3,
            dst_shard: 4,
            seq: 1,
            account: vec![2; 32],
            amount_micros: 5,
            expiry_epoch: 9,
            ..Default::default()
        };
        let (ek, mk) = (escrow_key(ShardId(4), 1), outbox_key(ShardId(4), 1));
        let mut leaves: Vec<(B256, Vec<u8>)> = vec![(ek, escrow.encode_to_vec()), (mk, message.encode_to_vec())];
        leaves.extend((0u8..6).map(|i| (B256::repeat_byte(i.wrapping_mul(41)), vec![i + 1; 20])));
        leaves.sort_by_key(|(k, _)| *k);
        let mut hb = HashBuilder::default()
            .with_proof_retainer(ProofRetainer::new(vec![Nibbles::unpack(ek), Nibbles::unpack(mk)]));
        for (k, v) in &leaves {
            hb.add_leaf(Nibbles::unpack(*k), v);
        }
        let root = hb.root();
        let nodes = hb.take_proof_nodes();
        let proof = |key: B256, value: &[u8]| pb::StateProof {
            height: 5,
            state_root: root.to_vec(),
            key: key.to_vec(),
            nodes: nodes.matching_nodes_sorted(&Nibbles::unpack(key)).into_iter().map(|(_, n)| n.to_vec()).collect(),
            value: value.to_vec(),
        };
        let resp = pb::GetMessageResponse {
            height: 5,
            state_root: root.to_vec(),
            proofs: vec![proof(ek, &escrow.encode_to_vec()), proof(mk, &message.encode_to_vec())],
            escrow: Some(escrow),
            message: Some(message),
            header: Some(self.fixture.header.clone()),
            ..Default::default()
        };
        let mut seed = vec![0];
        seed.extend(resp.encode_to_vec());
        vec![seed]
    }
    fn run(&mut self, data: &[u8]) -> Outcome {
        let Some((&direction, rest)) = data.split_first() else { return Outcome::Refused };
        let Ok(resp) = pb::GetMessageResponse::decode(rest) else { return Outcome::Refused };
        let validators = (direction & 2 != 0).then_some(&self.fixture.validators);
        let verified = verify_message_response(&resp, CHAIN, SHARD, ShardId(4), 1, direction & 1 != 0, validators);
        outcome(&verified)
    }
}
