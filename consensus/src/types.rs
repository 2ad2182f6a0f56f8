//! The consensus engine's view of a shard: heights, validator addresses, block ids, validators and the
//! per-height validator set with its sticky-leader hint. All borsh-encodable (the WAL and the network carry
//! them); none holds anything the shard's own types do not already say.

use std::fmt;

use borsh::{BorshDeserialize, BorshSerialize};
use malachitebft_core_types as mc;
use shardex_core::{validators, AccountId, B256};

use crate::context::ShardCtx;

/// A block height.
#[derive(Clone, Copy, Default, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, BorshSerialize, BorshDeserialize)]
pub struct Height(pub u64);

impl fmt::Display for Height {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.0)
    }
}

impl mc::Height for Height {
    const ZERO: Self = Self(0);
    const INITIAL: Self = Self(1);

    fn increment_by(&self, n: u64) -> Self {
        Self(self.0.saturating_add(n))
    }

    fn decrement_by(&self, n: u64) -> Option<Self> {
        self.0.checked_sub(n).map(Self)
    }

    fn as_u64(&self) -> u64 {
        self.0
    }
}

/// A validator's consensus address: its 32-byte ed25519 public key, as listed in genesis.
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, BorshSerialize, BorshDeserialize)]
pub struct Address(pub [u8; 32]);

impl Address {
    /// The account id with the same key.
    pub fn account(&self) -> AccountId {
        AccountId(self.0)
    }
}

impl From<AccountId> for Address {
    fn from(a: AccountId) -> Self {
        Self(a.0)
    }
}

impl fmt::Display for Address {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", AccountId(self.0))
    }
}

impl fmt::Debug for Address {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Address({})", AccountId(self.0))
    }
}

impl mc::Address for Address {}

/// What consensus decides: a block, named by its hash (keccak256 of the exact header bytes). The block's
/// content travels as proposal parts; votes and proposals carry only this id.
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, BorshSerialize, BorshDeserialize)]
pub struct BlockId(pub [u8; 32]);

impl BlockId {
    /// The block hash.
    pub fn hash(&self) -> B256 {
        B256::from(self.0)
    }
}

impl From<B256> for BlockId {
    fn from(h: B256) -> Self {
        Self(h.0)
    }
}

impl fmt::Display for BlockId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", B256::from(self.0))
    }
}

impl fmt::Debug for BlockId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "BlockId({})", B256::from(self.0))
    }
}

impl mc::Value for BlockId {
    type Id = BlockId;

    fn id(&self) -> Self::Id {
        *self
    }
}

/// One validator as the engine sees it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Validator {
    address: Address,
    power: u64,
}

impl Validator {
    /// Its address (its key).
    pub fn key(&self) -> Address {
        self.address
    }

    /// Its voting power.
    pub fn power(&self) -> u64 {
        self.power
    }
}

impl mc::Validator<ShardCtx> for Validator {
    fn address(&self) -> &Address {
        &self.address
    }

    fn public_key(&self) -> &Address {
        &self.address
    }

    fn voting_power(&self) -> mc::VotingPower {
        self.power
    }
}

/// The validator set of one height: the genesis set in genesis order, and the index of the proposer of the
/// parent block. Round `r` of the height is proposed by validator `(leader + r) % n`: the leader stays while
/// it produces blocks and moves on only when a round fails (a sticky leader, so the transactions it admitted
/// and executed ahead of time stay useful).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ValidatorSet {
    validators: Vec<Validator>,
    leader: usize,
}

impl ValidatorSet {
    /// The set of `genesis` for a height whose parent was proposed by `parent_proposer` (None: genesis or a
    /// proposer outside the set, which starts from the first validator).
    pub fn new(genesis: &validators::ValidatorSet, parent_proposer: Option<&AccountId>) -> Self {
        let validators: Vec<Validator> =
            genesis.validators().iter().map(|v| Validator { address: v.key.into(), power: v.power }).collect();
        let leader = parent_proposer.and_then(|p| genesis.get(p)).map_or(0, |(index, _)| index);
        Self { validators, leader }
    }

    /// The proposer of `round` at this height.
    pub fn proposer(&self, round: u32) -> &Validator {
        let n = self.validators.len().max(1);
        let index = (self.leader + round as usize % n) % n;
        // Never empty: built from a validated genesis set.
        &self.validators[index]
    }

    /// The validators in genesis order.
    pub fn validators(&self) -> &[Validator] {
        &self.validators
    }
}

impl mc::ValidatorSet<ShardCtx> for ValidatorSet {
    fn count(&self) -> usize {
        self.validators.len()
    }

    fn total_voting_power(&self) -> mc::VotingPower {
        self.validators.iter().map(|v| v.power).sum()
    }

    fn get_by_address(&self, address: &Address) -> Option<&Validator> {
        self.validators.iter().find(|v| v.address == *address)
    }

    fn get_by_index(&self, index: usize) -> Option<&Validator> {
        self.validators.get(index)
    }
}

#[cfg(test)]
mod tests {
    use shardex_core::Keypair;

    use super::*;

    fn genesis(n: u8) -> validators::ValidatorSet {
        let keys: Vec<AccountId> = (1..=n).map(|i| Keypair::from_seed([i; 32]).account()).collect();
        validators::ValidatorSet::equal(&keys).expect("valid")
    }

    #[test]
    fn the_leader_sticks_and_rounds_rotate_from_it() {
        let g = genesis(4);
        let keys: Vec<AccountId> = g.keys().collect();
        let at_genesis = ValidatorSet::new(&g, None);
        assert_eq!(at_genesis.proposer(0).address.account(), keys[0]);
        // The parent was proposed by validator 2: it proposes again, and a failed round moves to 3, then 0.
        let after = ValidatorSet::new(&g, Some(&keys[2]));
        let order: Vec<AccountId> = (0..6).map(|r| after.proposer(r).address.account()).collect();
        assert_eq!(order, [keys[2], keys[3], keys[0], keys[1], keys[2], keys[3]]);
        // A huge round does not overflow.
        let _ = after.proposer(u32::MAX);
        // A parent proposer outside the set (genesis block: none) starts from the first validator.
        let stranger = Keypair::from_seed([9; 32]).account();
        assert_eq!(ValidatorSet::new(&g, Some(&stranger)).proposer(0).address.account(), keys[0]);
    }
}
