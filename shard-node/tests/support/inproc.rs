//! An in-process shard on a temporary sled with a controlled clock: txs are signed, verified and admitted
//! like the node does, and blocks are produced through the same propose → decide → apply seam. Every block
//! is replayed and compared, and after every block the ledger totals are checked against a scan of every
//! account the shard has seen and against the conservation identity (`support::ledger`).

use std::collections::BTreeMap;

use shardex_core::{
    genesis::{Authorities, Genesis},
    pb::tx_body::Op,
    tx::{decode_and_verify, sign_tx, TxDomain, DEFAULT_MAX_TX_BYTES},
    AccountId, ChainId, Keypair, ShardId,
};
use shardex_shard_node::{
    sequencer::{Consensus, SoloSequencer},
    shard::{Reject, Shard, ShardConfig},
};

use super::ledger::{check_ledger, Seen};

/// One shard with its consensus, nonces per signer and a clock in ms that tests advance.
pub struct Net {
    pub shard: Shard,
    consensus: SoloSequencer,
    pub domain: TxDomain,
    nonces: BTreeMap<AccountId, u64>,
    pub clock_ms: u64,
    /// Every account a tx or event of this shard named: the scan the ledger totals are checked against.
    pub seen: Seen,
    _dir: tempfile::TempDir,
}

impl Net {
    /// A BTC-PERP shard whose oracle and deposit keys are given and whose admin key is `[3; 32]`'s;
    /// `tweak` adjusts the genesis.
    pub fn new(oracle: &Keypair, deposit: &Keypair, tweak: impl FnOnce(&mut Genesis)) -> Self {
        let dir = tempfile::tempdir().expect("tempdir");
        let node = Keypair::from_seed([1; 32]);
        let admin = Keypair::from_seed([3; 32]);
        let authorities = Authorities { deposit: deposit.account(), oracle: oracle.account(), admin: admin.account() };
        let mut g = Genesis::example(authorities, node.account());
        (g.chain_id, g.shard_id) = (ChainId(8), ShardId(1));
        tweak(&mut g);
        let domain = TxDomain { chain: g.chain_id, shard: g.shard_id };
        let db = shardex_service::storage::open_db(dir.path()).expect("db");
        let shard = Shard::open(db, g, node.clone(), ShardConfig::default()).expect("open");
        Self {
            shard,
            consensus: SoloSequencer::new(node, domain),
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

    /// Submits and commits one op.
    pub fn run(&mut self, key: &Keypair, op: Op) -> Result<(), Reject> {
        let verdict = self.submit(key, op);
        self.block();
        verdict
    }
}
