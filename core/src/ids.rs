//! Identifiers: chains, shards and accounts.

use std::fmt;

use serde::{Deserialize, Serialize};

/// Identifies one shardex network; part of every signature domain.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(transparent)]
pub struct ChainId(pub u64);

/// Identifies one shard (one market) inside a chain; part of every signature domain.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(transparent)]
pub struct ShardId(pub u32);

impl fmt::Display for ChainId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.0)
    }
}

impl fmt::Display for ShardId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.0)
    }
}

/// An account: the 32-byte ed25519 public key that signs for it.
///
/// Only the bytes are kept; whether they are a valid curve point is checked where a signature is verified.
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct AccountId(pub [u8; 32]);

/// The bytes given for an account were not 32 long or not hex.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("an account id is 32 bytes (64 hex characters), got {0}")]
pub struct BadAccountId(pub String);

impl AccountId {
    /// Parses exactly 32 bytes.
    pub fn from_slice(bytes: &[u8]) -> Result<Self, BadAccountId> {
        <[u8; 32]>::try_from(bytes).map(Self).map_err(|_| BadAccountId(format!("{} bytes", bytes.len())))
    }

    /// Parses 64 hex characters, with or without a `0x` prefix.
    pub fn from_hex(s: &str) -> Result<Self, BadAccountId> {
        let s = s.trim();
        let digits = s.strip_prefix("0x").unwrap_or(s);
        let bytes = hex::decode(digits).map_err(|e| BadAccountId(format!("{s:?} ({e})")))?;
        Self::from_slice(&bytes)
    }

    /// Lower-case hex without prefix.
    pub fn to_hex(&self) -> String {
        hex::encode(self.0)
    }
}

impl fmt::Debug for AccountId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "AccountId({})", self.to_hex())
    }
}

impl fmt::Display for AccountId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.to_hex())
    }
}

impl Serialize for AccountId {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&self.to_hex())
    }
}

impl<'de> Deserialize<'de> for AccountId {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = String::deserialize(d)?;
        Self::from_hex(&s).map_err(serde::de::Error::custom)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hex_round_trip_and_rejects_wrong_length() {
        let id = AccountId([7; 32]);
        assert_eq!(AccountId::from_hex(&id.to_hex()), Ok(id));
        assert_eq!(AccountId::from_hex(&format!("0x{}", id.to_hex())), Ok(id));
        assert!(AccountId::from_hex("abcd").is_err());
        assert!(AccountId::from_hex(&"zz".repeat(32)).is_err());
        assert!(AccountId::from_slice(&[0; 31]).is_err());
    }
}
