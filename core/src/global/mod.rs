//! The global commitment (DESIGN.md §6): the epoch record the coordinator signs, the global trie of shard
//! entries, and the checks a client runs from a coordinator signature down to one account record.
//!
//! - [`epoch`]: encode, hash (keccak256 of the exact record bytes), sign and verify epoch records.
//! - [`trie`]: the global trie (key `keccak256(shard_id as 4 bytes BE)`, value the encoded `ShardEntry`),
//!   its root and inclusion proofs.
//! - [`verify`]: `verify_shard_inclusion`, `verify_inclusion` (epoch → entry → finalized header) and the one-call
//!   `verify_account_global`.

pub mod epoch;
pub mod trie;
pub mod verify;

pub use epoch::{encode_epoch, epoch_hash, sign_epoch, verify_epoch, VerifiedEpoch, GLOBAL_SIGNING_SHARD};
pub use trie::{build_global_trie, entry_from_header, global_root, shard_key, GlobalTrie};
pub use verify::{
    verify_account_global, verify_entry_under_root, verify_header_of_entry, verify_inclusion, verify_shard_inclusion,
    GlobalError, GloballyVerifiedAccount, VerifiedInclusion,
};
