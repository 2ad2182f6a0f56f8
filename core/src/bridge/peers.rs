//! The validator sets of a shard's bridge peers as genesis state holds them (`BridgePeerRecord` at
//! namespace `0x17`, id = peer shard): written once from genesis `[[peers]]`, read by the VM for every
//! delivery, ack and refund, so the certificate a peer's header must carry is committed in the state root.

use crate::{
    pb,
    validators::{Validator, ValidatorSet, ValidatorSetError},
    AccountId,
};

/// The record holding `set`, in its genesis order.
pub fn peer_record(set: &ValidatorSet) -> pb::BridgePeerRecord {
    pb::BridgePeerRecord {
        validators: set
            .validators()
            .iter()
            .map(|v| pb::PeerValidator { key: v.key.0.to_vec(), power: v.power })
            .collect(),
    }
}

/// Why a stored peer record is not a validator set.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PeerRecordError {
    /// A key that is not 32 bytes.
    #[error("validator key of {0} bytes")]
    KeyLength(usize),
    /// The list is not a valid set (empty, too large, duplicate or invalid key, bad power).
    #[error(transparent)]
    Set(#[from] ValidatorSetError),
}

/// The validator set a record holds; None for an absent (empty) record: that shard is no peer.
pub fn peer_set(record: &pb::BridgePeerRecord) -> Result<Option<ValidatorSet>, PeerRecordError> {
    if record.validators.is_empty() {
        return Ok(None);
    }
    let validators = record
        .validators
        .iter()
        .map(|v| {
            let key = AccountId::from_slice(&v.key).map_err(|_| PeerRecordError::KeyLength(v.key.len()))?;
            Ok(Validator { key, power: v.power })
        })
        .collect::<Result<Vec<_>, PeerRecordError>>()?;
    Ok(Some(ValidatorSet::new(validators)?))
}

#[cfg(test)]
mod tests {
    use prost::Message;

    use super::*;
    use crate::Keypair;

    #[test]
    fn a_set_round_trips_through_its_record() {
        let set = ValidatorSet::new(vec![
            Validator { key: Keypair::from_seed([7; 32]).account(), power: 3 },
            Validator { key: Keypair::from_seed([5; 32]).account(), power: 1 },
        ])
        .expect("valid");
        let bytes = peer_record(&set).encode_to_vec();
        let back = pb::BridgePeerRecord::decode(bytes.as_slice()).expect("decodes");
        assert_eq!(peer_set(&back), Ok(Some(set)), "genesis order and powers are kept");
        assert_eq!(peer_set(&pb::BridgePeerRecord::default()), Ok(None), "absent record: no peer");
    }

    #[test]
    fn a_corrupt_record_is_an_error_not_a_set() {
        let short = pb::BridgePeerRecord { validators: vec![pb::PeerValidator { key: vec![1; 31], power: 1 }] };
        assert_eq!(peer_set(&short), Err(PeerRecordError::KeyLength(31)));
        let key = Keypair::from_seed([7; 32]).account().0.to_vec();
        let zero = pb::BridgePeerRecord { validators: vec![pb::PeerValidator { key, power: 0 }] };
        assert!(matches!(peer_set(&zero), Err(PeerRecordError::Set(ValidatorSetError::BadPower { .. }))));
    }
}
