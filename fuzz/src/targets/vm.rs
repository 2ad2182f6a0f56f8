//! Every VM op on a small seeded market: an input is one op, signed by one of a few keys (the authorities, a
//! market maker with resting quotes, a trader with a position, a fresh key), and admitted to a real shard.
//! Admission must never fail as a node error, a refused op must leave the mempool as it was, and every 32
//! admitted ops the pending block is sealed, replayed from its parent state (it must match what admission
//! executed) and committed. The shard is rebuilt from genesis every 2,048 inputs so state stays small.

use prost::Message;
use shardex_core::{
    block::Certificate,
    genesis::{Authorities, Genesis},
    order::limit_order,
    pb::{self, tx_body::Op, Side, TimeInForce},
    tx::{decode_and_verify, sign_tx, TxDomain, DEFAULT_MAX_TX_BYTES},
    vote::sign_precommit,
    ChainId, Keypair, ShardId,
};
use shardex_shard_node::shard::{Shard, ShardConfig};

use super::{codec::every_op, Outcome, Target};

const PRICE: u64 = 100_000_000_000;
const START_MS: u64 = 1_700_000_000_000;
const USD: u64 = 1_000_000;

/// Signers an input may pick: deposit, oracle, admin, maker, trader, fresh.
const SIGNERS: usize = 6;

/// A shard and the nonces of its signers.
struct Market {
    shard: Shard,
    nonces: [u64; SIGNERS],
    clock_ms: u64,
    admitted_since_block: usize,
    _dir: tempfile::TempDir,
}

/// The VM target.
pub struct VmTarget {
    keys: Vec<Keypair>,
    validator: Keypair,
    genesis: Genesis,
    domain: TxDomain,
    market: Option<Market>,
    inputs: u64,
}

impl VmTarget {
    /// The target.
    pub fn new() -> Self {
        let keys: Vec<Keypair> = (0x60u8..0x60 + SIGNERS as u8).map(|s| Keypair::from_seed([s; 32])).collect();
        let validator = Keypair::from_seed([0x6f; 32]);
        let authorities =
            Authorities { deposit: keys[0].account(), oracle: keys[1].account(), admin: keys[2].account() };
        let mut genesis = Genesis::example(authorities, validator.account());
        (genesis.chain_id, genesis.shard_id) = (ChainId(9), ShardId(3));
        let domain = TxDomain { chain: genesis.chain_id, shard: genesis.shard_id };
        Self { keys, validator, genesis, domain, market: None, inputs: 0 }
    }

    /// A fresh shard where the maker quotes both sides around the oracle price and the trader holds a long.
    fn seeded(&self) -> Market {
        let dir = tempfile::tempdir().expect("tempdir");
        let db = shardex_service::storage::open_db(dir.path()).expect("db");
        let shard =
            Shard::open(db, self.genesis.clone(), self.validator.clone(), ShardConfig::default()).expect("open");
        let mut m = Market { shard, nonces: [0; SIGNERS], clock_ms: START_MS, admitted_since_block: 0, _dir: dir };
        let (maker, trader) = (self.keys[3].account(), self.keys[4].account());
        let setup: Vec<(usize, Op)> = vec![
            (0, Op::Deposit(pb::Deposit { account: maker.0.to_vec(), amount_micros: 1_000_000 * USD })),
            (0, Op::Deposit(pb::Deposit { account: trader.0.to_vec(), amount_micros: 50_000 * USD })),
            (1, Op::OracleUpdate(pb::OracleUpdate { price_micros: PRICE, timestamp_ms: START_MS })),
            (3, Op::PlaceOrder(limit_order(Side::Buy, PRICE - 1_000_000, 50, TimeInForce::Gtc))),
            (3, Op::PlaceOrder(limit_order(Side::Sell, PRICE + 1_000_000, 50, TimeInForce::Gtc))),
            (4, Op::PlaceOrder(shardex_core::order::market_order(Side::Buy, 5))),
            (4, Op::PlaceOrder(limit_order(Side::Buy, PRICE - 2_000_000, 2, TimeInForce::Gtc))),
        ];
        for (signer, op) in setup {
            let outcome = self.admit(&mut m, signer, op);
            assert_eq!(outcome, Outcome::Accepted, "the seeded market is set up");
            self.commit(&mut m);
        }
        m
    }

    fn admit(&self, m: &mut Market, signer: usize, op: Op) -> Outcome {
        let nonce = m.nonces[signer];
        let bytes = sign_tx(&self.keys[signer], self.domain, nonce, op).encode_to_vec();
        // Ops whose fields make the tx too large or non-canonical are refused before execution.
        let Ok(tx) = decode_and_verify(&bytes, self.domain, DEFAULT_MAX_TX_BYTES) else { return Outcome::Refused };
        let before = m.shard.mempool_len();
        match m.shard.admit(tx, m.clock_ms) {
            Ok(Ok(())) => {
                assert_eq!(m.shard.mempool_len(), before + 1, "an admitted op is pending");
                m.nonces[signer] += 1;
                m.admitted_since_block += 1;
                Outcome::Accepted
            }
            Ok(Err(_)) => {
                assert_eq!(m.shard.mempool_len(), before, "a refused op changed the mempool");
                Outcome::Refused
            }
            Err(e) => panic!("admission failed as a node error: {e}"),
        }
    }

    /// Seals, replays and commits every pending block; the clock moves on.
    fn commit(&self, m: &mut Market) {
        while m.shard.mempool_len() > 0 {
            let proposal = m.shard.propose().expect("propose").expect("pending txs");
            let replayed = m.shard.replay(proposal.ctx(), proposal.txs()).expect("replay");
            assert_eq!(&replayed.writes, proposal.writes(), "admission and replay wrote differently");
            assert_eq!(replayed.receipts, proposal.receipts(), "admission and replay made different receipts");
            let domain = (self.domain.chain, self.domain.shard);
            let signature = sign_precommit(&self.validator, domain, proposal.header.height, 0, &proposal.hash);
            m.shard.apply(proposal, Certificate { round: 0, signatures: vec![signature] }).expect("commit");
        }
        m.admitted_since_block = 0;
        m.clock_ms += 250;
    }
}

impl Default for VmTarget {
    fn default() -> Self {
        Self::new()
    }
}

impl Target for VmTarget {
    fn name(&self) -> &'static str {
        "vm"
    }

    /// `[signer byte][TxBody bytes whose op field is the op]`, one seed per op kind and signer of interest.
    fn seeds(&self) -> Vec<Vec<u8>> {
        let mut seeds = Vec::new();
        for op in every_op() {
            for signer in [0u8, 1, 2, 3, 4, 5] {
                let mut seed = vec![signer];
                seed.extend(pb::TxBody { op: Some(op.clone()), ..Default::default() }.encode_to_vec());
                seeds.push(seed);
            }
        }
        seeds
    }

    fn run(&mut self, data: &[u8]) -> Outcome {
        let Some((&signer, rest)) = data.split_first() else { return Outcome::Refused };
        let Ok(body) = pb::TxBody::decode(rest) else { return Outcome::Refused };
        let Some(op) = body.op else { return Outcome::Refused };
        self.inputs += 1;
        let signer = usize::from(signer) % SIGNERS;
        let mut market = match self.market.take() {
            Some(m) if !self.inputs.is_multiple_of(2_048) => m,
            _ => self.seeded(),
        };
        market.clock_ms += 1;
        let outcome = self.admit(&mut market, signer, op);
        if market.admitted_since_block >= 32 {
            self.commit(&mut market);
        }
        self.market = Some(market);
        outcome
    }
}
