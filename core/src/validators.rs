//! A shard's validator set: the keys whose votes finalize its blocks, each with a voting power, as listed in
//! genesis. Quorum is more than two thirds of the total power, compared exactly in integers.

use serde::{Deserialize, Serialize};

use crate::ids::AccountId;

/// Most validators one shard may list: bounds the work of checking a certificate.
pub const MAX_VALIDATORS: usize = 128;

/// Largest voting power of one validator: with [`MAX_VALIDATORS`] the total stays far below `u64::MAX / 3`.
pub const MAX_VOTING_POWER: u64 = 1_000_000_000;

/// One validator: its ed25519 key (also its consensus address) and its voting power.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Validator {
    /// The key that signs its votes.
    pub key: AccountId,
    /// Its weight in every quorum, `1..=MAX_VOTING_POWER`.
    pub power: u64,
}

/// Why a list of validators is not a usable set.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ValidatorSetError {
    /// No validators.
    #[error("a validator set needs at least one validator")]
    Empty,
    /// More than [`MAX_VALIDATORS`].
    #[error("{0} validators, at most {MAX_VALIDATORS} are allowed")]
    TooMany(usize),
    /// A key listed twice.
    #[error("validator {0} is listed twice")]
    Duplicate(AccountId),
    /// A power of zero or above [`MAX_VOTING_POWER`].
    #[error("validator {key} has power {power}, expected 1..={MAX_VOTING_POWER}")]
    BadPower {
        /// The validator.
        key: AccountId,
        /// Its power.
        power: u64,
    },
    /// A key that is not an ed25519 public key, or one of small order, which cannot sign.
    #[error("validator key {0} is not an ed25519 public key that can sign (a curve point not of small order)")]
    BadKey(AccountId),
}

/// A validated, non-empty set of distinct validators in genesis order (the order proposers rotate in).
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize)]
#[serde(transparent)]
pub struct ValidatorSet {
    validators: Vec<Validator>,
}

impl<'de> Deserialize<'de> for ValidatorSet {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        Self::new(Vec::<Validator>::deserialize(d)?).map_err(serde::de::Error::custom)
    }
}

impl ValidatorSet {
    /// Checks `validators` (non-empty, bounded, distinct valid keys, bounded positive powers).
    pub fn new(validators: Vec<Validator>) -> Result<Self, ValidatorSetError> {
        if validators.is_empty() {
            return Err(ValidatorSetError::Empty);
        }
        if validators.len() > MAX_VALIDATORS {
            return Err(ValidatorSetError::TooMany(validators.len()));
        }
        for (i, v) in validators.iter().enumerate() {
            if !(1..=MAX_VOTING_POWER).contains(&v.power) {
                return Err(ValidatorSetError::BadPower { key: v.key, power: v.power });
            }
            if crate::signing::check_signer(&v.key).is_err() {
                return Err(ValidatorSetError::BadKey(v.key));
            }
            if validators[..i].iter().any(|w| w.key == v.key) {
                return Err(ValidatorSetError::Duplicate(v.key));
            }
        }
        Ok(Self { validators })
    }

    /// Every key with power 1: the usual set of equal operators.
    pub fn equal(keys: &[AccountId]) -> Result<Self, ValidatorSetError> {
        Self::new(keys.iter().map(|&key| Validator { key, power: 1 }).collect())
    }

    /// The validators in genesis order.
    pub fn validators(&self) -> &[Validator] {
        &self.validators
    }

    /// Number of validators.
    pub fn len(&self) -> usize {
        self.validators.len()
    }

    /// Never true: a set has at least one validator.
    pub fn is_empty(&self) -> bool {
        self.validators.is_empty()
    }

    /// The keys in genesis order.
    pub fn keys(&self) -> impl Iterator<Item = AccountId> + '_ {
        self.validators.iter().map(|v| v.key)
    }

    /// Position and entry of `key`, if it is in the set.
    pub fn get(&self, key: &AccountId) -> Option<(usize, &Validator)> {
        self.validators.iter().enumerate().find(|(_, v)| v.key == *key)
    }

    /// True when `key` is a validator.
    pub fn contains(&self, key: &AccountId) -> bool {
        self.get(key).is_some()
    }

    /// Sum of every validator's power.
    pub fn total_power(&self) -> u64 {
        // Bounded by MAX_VALIDATORS * MAX_VOTING_POWER: no overflow.
        self.validators.iter().map(|v| v.power).sum()
    }

    /// True when `power` is more than two thirds of the total: a quorum.
    pub fn is_quorum(&self, power: u64) -> bool {
        u128::from(power) * 3 > u128::from(self.total_power()) * 2
    }

    /// The least power that is a quorum.
    pub fn quorum_power(&self) -> u64 {
        self.total_power() * 2 / 3 + 1
    }

    /// True when `power` is more than one third of the total: enough to halt the set by withholding votes.
    pub fn is_one_third(&self, power: u64) -> bool {
        u128::from(power) * 3 > u128::from(self.total_power())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::Keypair;

    fn key(i: u8) -> AccountId {
        Keypair::from_seed([i; 32]).account()
    }

    #[test]
    fn quorum_is_more_than_two_thirds_of_power() {
        for (n, need) in [(1, 1), (2, 2), (3, 3), (4, 3), (5, 4), (7, 5), (10, 7)] {
            let keys: Vec<AccountId> = (1..=n).map(key).collect();
            let set = ValidatorSet::equal(&keys).expect("valid");
            assert_eq!(set.quorum_power(), need, "n = {n}");
            assert!(set.is_quorum(need) && !set.is_quorum(need - 1), "n = {n}");
        }
        let weighted = ValidatorSet::new(vec![
            Validator { key: key(1), power: 5 },
            Validator { key: key(2), power: 1 },
            Validator { key: key(3), power: 1 },
        ])
        .expect("valid");
        assert!(weighted.is_quorum(5), "5 of 7 is more than two thirds");
        assert!(!weighted.is_quorum(4));
        assert_eq!(weighted.quorum_power(), 5);
    }

    #[test]
    fn refuses_unusable_sets() {
        assert_eq!(ValidatorSet::new(vec![]), Err(ValidatorSetError::Empty));
        let dup = vec![Validator { key: key(1), power: 1 }, Validator { key: key(1), power: 2 }];
        assert_eq!(ValidatorSet::new(dup), Err(ValidatorSetError::Duplicate(key(1))));
        let zero = vec![Validator { key: key(1), power: 0 }];
        assert!(matches!(ValidatorSet::new(zero), Err(ValidatorSetError::BadPower { .. })));
        let huge = vec![Validator { key: key(1), power: MAX_VOTING_POWER + 1 }];
        assert!(matches!(ValidatorSet::new(huge), Err(ValidatorSetError::BadPower { .. })));
        let many: Vec<AccountId> = (0..=MAX_VALIDATORS as u16).map(|i| key((i % 251) as u8)).collect();
        assert!(ValidatorSet::equal(&many).is_err());
        // A 32-byte string that is not a curve point.
        let bogus = AccountId([2; 32]);
        assert!(ed25519_dalek::VerifyingKey::from_bytes(&bogus.0).is_err());
        assert_eq!(ValidatorSet::equal(&[bogus]), Err(ValidatorSetError::BadKey(bogus)));
        // The identity point: a small-order key anyone could "sign" for.
        let mut identity = AccountId([0; 32]);
        identity.0[0] = 1;
        assert_eq!(ValidatorSet::equal(&[identity]), Err(ValidatorSetError::BadKey(identity)));
    }

    #[test]
    fn toml_form_is_a_list_of_key_and_power_and_is_validated() {
        #[derive(Debug, Serialize, Deserialize, PartialEq)]
        struct Doc {
            validators: ValidatorSet,
        }
        let doc = Doc { validators: ValidatorSet::equal(&[key(1), key(2)]).expect("valid") };
        let text = toml::to_string(&doc).expect("serializes");
        assert!(text.contains("[[validators]]") && text.contains("power = 1"), "{text}");
        assert_eq!(toml::from_str::<Doc>(&text).expect("parses"), doc);
        let dup = text.replace(&key(2).to_hex(), &key(1).to_hex());
        let err = toml::from_str::<Doc>(&dup).expect_err("duplicate refused");
        assert!(err.to_string().contains("listed twice"), "{err}");
    }
}
