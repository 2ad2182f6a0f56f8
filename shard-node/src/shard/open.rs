//! Opening a shard: first start writes the genesis block; a restart resumes from the flushed head
//! after checking the state engine and the block log agree.

use alloy_primitives::B256;
use shardex_core::{block::encode_header, genesis::Genesis, hash::ordered_root, pb, tx::TxDomain, Keypair};
use tracing::info;

use super::{head_cache::HeadCache, Shard, ShardError};
use crate::{
    chain::{ChainStore, STORE_FORMAT},
    mempool::{Mempool, PendingLimits, RefusalBudget, RejectLog},
    state::StateEngine,
};
use shardex_vm::{genesis_changes, VmParams};

/// What a node is in its shard's consensus.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, serde::Serialize, serde::Deserialize, clap::ValueEnum)]
#[serde(rename_all = "lowercase")]
pub enum Role {
    /// A member of the genesis validator set: it admits, proposes and votes.
    #[default]
    Validator,
    /// A full node outside the set: it re-executes and commits every certified block, serves reads, and
    /// forwards submissions to the proposer; it signs nothing.
    Follower,
}

impl Role {
    /// `validator` or `follower`.
    pub fn as_str(self) -> &'static str {
        match self {
            Role::Validator => "validator",
            Role::Follower => "follower",
        }
    }
}

/// Default bound on a block's txs, receipts and begin-block events, bytes: half the default RPC message
/// limit, leaving room for the header and a certificate of up to 128 precommits (under 16 KiB).
pub const DEFAULT_MAX_BLOCK_BYTES: usize = 2 << 20;

/// Room a block's header and certificate need on top of its `max_block_bytes` in a `GetBlock` answer.
pub const BLOCK_ENVELOPE_BYTES: usize = 64 << 10;

/// Limits of block production and admission.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ShardConfig {
    /// What this node is in its shard.
    pub role: Role,
    /// Gas per block.
    pub block_gas_limit: u64,
    /// Txs per block.
    pub max_block_txs: usize,
    /// Encoded bytes of a block's txs, receipts and begin-block events; kept well below the RPC message
    /// limit so every block can be fetched.
    pub max_block_bytes: usize,
    /// Pending txs.
    pub mempool_max_txs: usize,
    /// Largest encoded tx, bytes.
    pub max_tx_bytes: usize,
    /// Heights kept provable below the head.
    pub retention_blocks: u64,
    /// Blocks kept: the last this many (at least `retention_blocks`, whose proofs carry their headers); 0
    /// keeps every block (an archive node).
    pub keep_blocks: u64,
    /// Recent rejections remembered for tx-status queries.
    pub reject_log_capacity: usize,
    /// Refused txs per signer between two blocks; past it the signer's txs are refused unexecuted
    /// (`RATE_LIMITED`) until the next block.
    pub max_refusals_per_signer: u32,
    /// How long an open block keeps taking txs after its timestamp, ms.
    pub max_open_block_ms: u64,
    /// Head-state values kept in memory for admission and re-execution (0: none, every read goes to storage).
    pub head_cache_entries: usize,
}

impl Default for ShardConfig {
    fn default() -> Self {
        Self {
            role: Role::Validator,
            block_gas_limit: 20_000_000,
            max_block_txs: 10_000,
            max_block_bytes: DEFAULT_MAX_BLOCK_BYTES,
            mempool_max_txs: 50_000,
            max_tx_bytes: shardex_core::tx::DEFAULT_MAX_TX_BYTES,
            retention_blocks: 256,
            keep_blocks: 0,
            reject_log_capacity: 10_000,
            max_refusals_per_signer: 64,
            max_open_block_ms: 1_000,
            head_cache_entries: super::DEFAULT_HEAD_CACHE_ENTRIES,
        }
    }
}

impl ShardConfig {
    /// The bounds of the pending queue.
    pub fn pending_limits(&self) -> PendingLimits {
        PendingLimits {
            max_txs: self.mempool_max_txs,
            max_block_txs: self.max_block_txs,
            block_gas_limit: self.block_gas_limit,
            block_max_bytes: self.max_block_bytes,
            max_open_ms: self.max_open_block_ms,
        }
    }
}

/// The genesis state root, computed from scratch with alloy-trie's `HashBuilder` (a reference independent
/// of the state engine).
pub fn genesis_root(genesis: &Genesis) -> B256 {
    let mut hb = alloy_trie::HashBuilder::default();
    for (key, value) in genesis_changes(genesis) {
        if let Some(value) = value {
            hb.add_leaf(alloy_trie::Nibbles::unpack(key), &value);
        }
    }
    hb.root()
}

/// The genesis block: height 0, unsigned, fully determined by the genesis file.
pub fn genesis_block(genesis: &Genesis, state_root: B256) -> (pb::Block, B256) {
    let empty: [Vec<u8>; 0] = [];
    let header = pb::BlockHeader {
        chain_id: genesis.chain_id.0,
        shard_id: genesis.shard_id.0,
        height: 0,
        parent_hash: B256::ZERO.to_vec(),
        timestamp_ms: genesis.genesis_time_ms,
        tx_root: ordered_root(&empty).to_vec(),
        receipts_root: ordered_root(&empty).to_vec(),
        events_root: ordered_root(&empty).to_vec(),
        state_root: state_root.to_vec(),
        ..Default::default()
    };
    let (bytes, hash) = encode_header(&header);
    let block =
        pb::Block { header: Some(pb::FinalizedHeader { header: bytes, ..Default::default() }), ..Default::default() };
    (block, hash)
}

impl Shard {
    /// Opens (or initializes) the shard stored in `db`.
    pub fn open(db: sled::Db, genesis: Genesis, key: Keypair, config: ShardConfig) -> Result<Self, ShardError> {
        match (config.role, genesis.validators.contains(&key.account())) {
            (Role::Validator, false) => {
                return Err(ShardError::Inconsistent(format!(
                    "node key {} is not in the genesis validator set (run it with consensus.role = follower)",
                    key.account()
                )))
            }
            (Role::Follower, true) => {
                return Err(ShardError::Inconsistent(format!(
                    "node key {} is a genesis validator: a follower needs a key of its own",
                    key.account()
                )))
            }
            _ => {}
        }
        let tree = db.open_tree("shard")?;
        let engine = StateEngine::open(tree.clone(), config.retention_blocks)?;
        let chain = ChainStore::new(tree.clone());
        let domain = TxDomain { chain: genesis.chain_id, shard: genesis.shard_id };

        let snapshot_base = chain.snapshot_base()?;
        if let Some((height, false)) = snapshot_base {
            return Err(ShardError::Inconsistent(format!(
                "a snapshot sync to height {height} was interrupted and left this store incomplete: delete the \
                 data directory and sync again"
            )));
        }
        match chain.store_format()? {
            Some(format) if format != STORE_FORMAT => {
                return Err(ShardError::Inconsistent(format!(
                    "the data directory is in store format {format} and this node reads format {STORE_FORMAT}: \
                     delete it and start again (the node syncs from genesis or a peer's snapshot)"
                )))
            }
            _ => {}
        }
        let head = match chain.head()? {
            Some(head) => {
                let (_, expected) = genesis_block(&genesis, genesis_root(&genesis));
                if chain.genesis_hash()? != Some(expected) {
                    return Err(ShardError::Inconsistent(
                        "the data directory was initialized with a different genesis".into(),
                    ));
                }
                let latest = engine.latest_version()?;
                if latest != Some(head.height) || engine.root(head.height)? != head.state_root {
                    return Err(ShardError::Inconsistent(format!(
                        "state engine at version {latest:?} does not match block head {} (root {})",
                        head.height, head.state_root
                    )));
                }
                info!(target: "shard::store", height = head.height, root = %head.state_root, "resumed from flushed head");
                head
            }
            None => {
                let mut batch = sled::Batch::default();
                let root = engine.stage(0, &genesis_changes(&genesis), &mut batch)?;
                if root != genesis_root(&genesis) {
                    return Err(ShardError::Inconsistent(format!(
                        "state engine genesis root {root} differs from the reference root {}",
                        genesis_root(&genesis)
                    )));
                }
                let (block, hash) = genesis_block(&genesis, root);
                chain.stage_block(&block, 0, &[], &mut batch);
                chain.stage_genesis_hash(&hash, &mut batch);
                tree.apply_batch(batch)?;
                db.flush()?;
                info!(target: "shard::store", root = %root, hash = %hash, "initialized genesis");
                ChainStore::head_of(&block)?
            }
        };

        let cache = std::sync::Arc::new(std::sync::Mutex::new(HeadCache::new(config.head_cache_entries, head.height)));
        Ok(Self {
            db,
            tree,
            engine,
            chain,
            mempool: Mempool::new(config.pending_limits(), head.height, head.timestamp_ms),
            rejected: RejectLog::new(config.reject_log_capacity),
            refusals: RefusalBudget::new(config.max_refusals_per_signer),
            genesis,
            domain,
            key,
            params: VmParams::default(),
            config,
            head,
            cache,
            timings: Default::default(),
            snapshot_base: snapshot_base.map(|(height, _)| height),
        })
    }
}

#[cfg(test)]
mod tests {
    use shardex_core::{genesis::Authorities, validators::ValidatorSet, AccountId};

    use super::*;

    fn fixed_genesis() -> Genesis {
        let authorities =
            Authorities { deposit: AccountId([1; 32]), oracle: AccountId([2; 32]), admin: AccountId([3; 32]) };
        Genesis::example(authorities, Keypair::from_seed([4; 32]).account())
    }

    /// Golden vector: an accidental change to record encoding, namespaces or header layout fails here.
    /// (The vectors last moved when the market record gained `bridge_retention_blocks`, field 35.)
    #[test]
    fn golden_genesis_root_and_hash() {
        let g = fixed_genesis();
        let root = genesis_root(&g);
        let mut keep_all = fixed_genesis();
        keep_all.bridge_retention_blocks = 0;
        assert_ne!(genesis_root(&keep_all), root, "the bridge retention is part of the genesis state");
        let (_, hash) = genesis_block(&g, root);
        assert_eq!(format!("{root:x}"), "5cbd6c50b2cc2ecbed22745dc8c0dbd38559f7785b58ae20c1298cbbef9ab3e3");
        assert_eq!(format!("{hash:x}"), "0dc81d85b49dfcf4913aeeaf38e60141e9d5859f1b61bb7d6279a6cc5ee302e9");
    }

    /// Golden vector with a coordinator key: it is part of the market record, so it moves the genesis root
    /// (and only a genesis that names one).
    #[test]
    fn golden_genesis_root_with_coordinator() {
        let mut g = fixed_genesis();
        g.coordinator = Some(Keypair::from_seed([0xc0; 32]).account());
        let root = genesis_root(&g);
        assert_ne!(root, genesis_root(&fixed_genesis()));
        assert_eq!(format!("{root:x}"), "c38c75ccab3285d1e38ec3ff07fd490399aede7f3583389a29099fc2f04adc8e");
    }

    /// Golden vector with bridge peers: each peer's validator set is a record of its own (namespace 0x17), so
    /// it moves the genesis root, and only a genesis that lists peers.
    #[test]
    fn golden_genesis_root_with_peers() {
        use shardex_core::{
            genesis::Peer,
            validators::{Validator, ValidatorSet},
            ShardId,
        };
        let mut g = fixed_genesis();
        g.coordinator = Some(Keypair::from_seed([0xc0; 32]).account());
        let with_coordinator = genesis_root(&g);
        let keys: Vec<AccountId> = (0x21u8..=0x24).map(|b| Keypair::from_seed([b; 32]).account()).collect();
        g.peers = vec![
            Peer { shard_id: ShardId(2), validators: ValidatorSet::equal(&keys).expect("valid keys") },
            Peer {
                shard_id: ShardId(3),
                validators: ValidatorSet::new(vec![Validator {
                    key: Keypair::from_seed([0x31; 32]).account(),
                    power: 5,
                }])
                .expect("valid key"),
            },
        ];
        let root = genesis_root(&g);
        assert_ne!(root, with_coordinator);
        assert_eq!(format!("{root:x}"), "4407d96f490782e946002e59f78ba3f55e6229d409238edafe6b6a0c1dbd5621");
    }

    #[test]
    fn engine_genesis_matches_reference_and_reopen_checks_genesis() {
        let dir = tempfile::tempdir().expect("tempdir");
        let g = fixed_genesis();
        let node = Keypair::from_seed([9; 32]);
        let mut g_with_node = g.clone();
        g_with_node.validators = ValidatorSet::equal(&[node.account()]).expect("valid key");
        let db = shardex_service::storage::open_db(dir.path()).expect("db");
        let shard = Shard::open(db.clone(), g_with_node.clone(), node.clone(), ShardConfig::default()).expect("open");
        assert_eq!(shard.head().state_root, genesis_root(&g_with_node));
        drop(shard);

        let mut other = g_with_node.clone();
        other.market.symbol = "ETH-PERP".into();
        let err = Shard::open(db.clone(), other, node.clone(), ShardConfig::default()).err().expect("refused");
        assert!(err.to_string().contains("different genesis"), "{err}");

        let stranger = Keypair::from_seed([8; 32]);
        let err =
            Shard::open(db.clone(), g_with_node.clone(), stranger, ShardConfig::default()).err().expect("refused");
        assert!(err.to_string().contains("not in the genesis validator set"), "{err}");

        // A store written before its layout was recorded (format 1) is refused, saying what to do.
        db.open_tree("shard").expect("tree").remove([0x19]).expect("remove");
        let err = Shard::open(db, g_with_node, node, ShardConfig::default()).err().expect("refused");
        assert!(err.to_string().contains("store format 1 and this node reads format 2"), "{err}");
    }
}
