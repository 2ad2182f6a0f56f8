//! An in-process shard on a temporary sled with a controlled clock: txs are signed, verified and admitted
//! like the node does, and blocks are produced through the same propose → decide → apply seam. Every block
//! is replayed and compared, and after every block the ledger totals are checked against a scan of every
//! account the shard has seen and against the conservation identity (`support::ledger`).

use std::collections::BTreeMap;

use shardex_core::{
    block::Certificate,
    genesis::{Authorities, Genesis},
    pb::{self, tx_body::Op},
    tx::{decode_and_verify, sign_tx, TxDomain, DEFAULT_MAX_TX_BYTES},
    validators::ValidatorSet,
    vote::sign_precommit,
    AccountId, ChainId, Keypair, ShardId,
};
use shardex_shard_node::{
    runtime::NodeHandle,
    sequencer::{Consensus, ConsensusError},
    shard::{Proposal, Reject, Shard, ShardConfig},
};

use super::ledger::{check_ledger, Seen};

/// Decides every proposal at round 0 with the precommits of all its validators: the certificate a shard
/// of several validators commits when every one of them votes.
pub struct Committee {
    keys: Vec<Keypair>,
    domain: TxDomain,
}

impl Consensus for Committee {
    fn decide(&mut self, proposal: &Proposal) -> Result<Certificate, ConsensusError> {
        let domain = (self.domain.chain, self.domain.shard);
        let signatures =
            self.keys.iter().map(|k| sign_precommit(k, domain, proposal.header.height, 0, &proposal.hash)).collect();
        Ok(Certificate { round: 0, signatures })
    }
}

/// One shard with its consensus, nonces per signer and a clock in ms that tests advance.
pub struct Net {
    pub shard: Shard,
    consensus: Committee,
    pub domain: TxDomain,
    nonces: BTreeMap<AccountId, u64>,
    pub clock_ms: u64,
    /// Every account a tx or event of this shard named: the scan the ledger totals are checked against.
    pub seen: Seen,
    _dir: tempfile::TempDir,
}

impl Net {
    /// A BTC-PERP shard whose oracle and deposit keys are given and whose admin key is `[3; 32]`'s, run by
    /// the one validator [`Net::validator`]; `tweak` adjusts the genesis.
    pub fn new(oracle: &Keypair, deposit: &Keypair, tweak: impl FnOnce(&mut Genesis)) -> Self {
        Self::with_validators(oracle, deposit, &[Self::validator()], tweak)
    }

    /// The validator of shards made by [`Net::new`].
    pub fn validator() -> Keypair {
        Keypair::from_seed([1; 32])
    }

    /// As [`Net::new`], run by `validators` (power 1 each; the first is this node's key), every block
    /// certified by all of them.
    pub fn with_validators(
        oracle: &Keypair,
        deposit: &Keypair,
        validators: &[Keypair],
        tweak: impl FnOnce(&mut Genesis),
    ) -> Self {
        Self::with_config(oracle, deposit, validators, ShardConfig::default(), tweak)
    }

    /// As [`Net::with_validators`], the shard opened with `config`.
    pub fn with_config(
        oracle: &Keypair,
        deposit: &Keypair,
        validators: &[Keypair],
        config: ShardConfig,
        tweak: impl FnOnce(&mut Genesis),
    ) -> Self {
        let dir = tempfile::tempdir().expect("tempdir");
        let node = validators.first().expect("at least one validator").clone();
        let admin = Keypair::from_seed([3; 32]);
        let authorities = Authorities { deposit: deposit.account(), oracle: oracle.account(), admin: admin.account() };
        let mut g = Genesis::example(authorities, node.account());
        (g.chain_id, g.shard_id) = (ChainId(8), ShardId(1));
        g.validators = ValidatorSet::equal(&validators.iter().map(Keypair::account).collect::<Vec<_>>())
            .expect("valid validator keys");
        tweak(&mut g);
        let domain = TxDomain { chain: g.chain_id, shard: g.shard_id };
        let db = shardex_service::storage::open_db(dir.path()).expect("db");
        let shard = Shard::open(db, g, node.clone(), config).expect("open");
        Self {
            shard,
            consensus: Committee { keys: validators.to_vec(), domain },
            domain,
            nonces: BTreeMap::new(),
            clock_ms: 1_700_000_000_000,
            seen: Seen::default(),
            _dir: dir,
        }
    }

    /// The admin key of shards made by [`Net::new`].
    pub fn admin() -> Keypair {
        Keypair::from_seed([3; 32])
    }

    /// The finalized header of the block at `height` (the head's when None).
    pub fn header(&self, height: Option<u64>) -> pb::FinalizedHeader {
        let height = height.unwrap_or(self.shard.head().height);
        self.shard.view().block(height).expect("no node error").and_then(|b| b.header).expect("block retained")
    }

    /// Signs `op` with `key`'s next nonce and admits it at the current clock.
    pub fn submit(&mut self, key: &Keypair, op: Op) -> Result<(), Reject> {
        self.seen.op(key.account(), &op);
        let nonce = self.nonces.entry(key.account()).or_default();
        let tx = sign_tx(key, self.domain, *nonce, op);
        *nonce += 1;
        let bytes = prost::Message::encode_to_vec(&tx);
        let verified = decode_and_verify(&bytes, self.domain, DEFAULT_MAX_TX_BYTES).expect("well-formed");
        self.shard.admit(verified, self.clock_ms).expect("no node error")
    }

    /// Seals and commits every pending block. Each is first replayed from its parent state, as a replica
    /// would, and must match what admission executed: same writes, receipts and begin-block events. After
    /// each, the ledger totals must equal the scanned sums and conserve money (`support::ledger`).
    pub fn block(&mut self) {
        while self.shard.mempool_len() > 0 {
            let proposal = self.shard.propose().expect("propose").expect("pending txs");
            let replayed = self.shard.replay(proposal.ctx(), proposal.txs()).expect("replay");
            assert_eq!(
                &replayed.writes,
                proposal.writes(),
                "replayed writes differ at height {}",
                proposal.ctx().height
            );
            assert_eq!(replayed.receipts, proposal.receipts(), "replayed receipts differ");
            assert_eq!(replayed.block_events, proposal.block_events(), "replayed block events differ");
            self.seen.events(proposal.receipts(), proposal.block_events());
            let height = proposal.ctx().height;
            let signatures = self.consensus.decide(&proposal).expect("decide");
            self.shard.apply(proposal, signatures).expect("apply");
            check_ledger(&self.shard, &self.seen.0, &format!("after block {height}"));
        }
    }

    /// The shard as a running node holds it ([`NodeHandle`]), with the consensus that certifies its blocks and
    /// the directory of its store (deleted when dropped).
    pub fn into_node(self) -> (std::sync::Arc<NodeHandle>, Committee, tempfile::TempDir) {
        (NodeHandle::new(self.shard), self.consensus, self._dir)
    }

    /// Submits and commits one op.
    pub fn run(&mut self, key: &Keypair, op: Op) -> Result<(), Reject> {
        let verdict = self.submit(key, op);
        self.block();
        verdict
    }
}
