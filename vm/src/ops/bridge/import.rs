//! Import of a coordinator-signed epoch: the signature is checked against the genesis coordinator key
//! (domain separated, this chain), the number must be above the latest imported, the epoch right after the
//! latest must name it as parent, and the root is kept for the last `IMPORTED_EPOCH_WINDOW` imports. An epoch
//! whose number was already imported with another hash is refused as a conflict, not as a harmless repeat:
//! the coordinator key signed two epochs under one number (a coordinator restored from an old store does).

use prost::Message;
use shardex_core::{
    bridge::{self, BridgeError, IMPORTED_EPOCH_WINDOW},
    coordpb,
    global::verify_epoch,
    pb,
};

use super::{coordinator_of, load_latest, Here};
use crate::{error::ExecError, records::load_record, view::TxScope};

/// Largest epoch record accepted, bytes (a real one is about 90).
pub const MAX_EPOCH_RECORD_BYTES: usize = 512;

/// Imports one epoch.
pub fn import(
    scope: &mut TxScope<'_>,
    market: &pb::MarketRecord,
    here: &Here,
    op: &pb::ImportGlobalCommitment,
) -> Result<Vec<pb::Event>, ExecError> {
    let coordinator = coordinator_of(market)?;
    if op.epoch_record.len() > MAX_EPOCH_RECORD_BYTES {
        return Err(BridgeError::Invalid(format!(
            "epoch record of {} bytes; at most {MAX_EPOCH_RECORD_BYTES}",
            op.epoch_record.len()
        ))
        .into());
    }
    scope.charge_signature();
    let signed = coordpb::SignedEpoch {
        record: op.epoch_record.clone(),
        signature: op.signature.clone(),
        coordinator: coordinator.0.to_vec(),
    };
    let epoch = verify_epoch(&signed, &coordinator, here.chain).map_err(BridgeError::BadEpoch)?;
    let number = epoch.record.number;
    let mut latest = load_latest(scope)?;
    if number <= latest.epoch {
        let seen: pb::ImportedCommitmentRecord =
            load_record(scope, &bridge::imported_epoch_key(number), "imported commitment")?;
        if seen.epoch == number && seen.epoch_hash != epoch.hash.as_slice() {
            return Err(BridgeError::InvalidProof(format!(
                "epoch {number} was imported with hash 0x{}, this record hashes to {}: the coordinator key signed two \
                 epochs with one number",
                hex::encode(&seen.epoch_hash),
                epoch.hash
            ))
            .into());
        }
        return Err(BridgeError::Duplicate(format!(
            "epoch {number} is not above the latest imported epoch {}",
            latest.epoch
        ))
        .into());
    }
    if latest.epoch > 0 && number == latest.epoch + 1 && epoch.record.parent_hash != latest.epoch_hash {
        return Err(BridgeError::InvalidProof(format!(
            "epoch {number} names parent 0x{}, but the imported epoch {} hashes to 0x{}: it does not extend the \
             chain of epochs this shard follows",
            hex::encode(&epoch.record.parent_hash),
            latest.epoch,
            hex::encode(&latest.epoch_hash)
        ))
        .into());
    }
    let one = pb::ImportedCommitmentRecord {
        epoch: number,
        global_root: epoch.global_root.to_vec(),
        epoch_hash: epoch.hash.to_vec(),
        retained_epochs: Vec::new(),
    };
    scope.write(bridge::imported_epoch_key(number), one.encode_to_vec());
    latest.retained_epochs.push(number);
    while latest.retained_epochs.len() > IMPORTED_EPOCH_WINDOW {
        let oldest = latest.retained_epochs.remove(0);
        scope.write(bridge::imported_epoch_key(oldest), Vec::new());
    }
    latest.epoch = number;
    latest.global_root = one.global_root;
    latest.epoch_hash = one.epoch_hash;
    scope.write(bridge::imported_latest_key(), latest.encode_to_vec());
    Ok(Vec::new())
}
