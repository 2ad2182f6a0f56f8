//! Import of a coordinator-signed epoch: the signature is checked against the genesis coordinator key
//! (domain separated, this chain), the number must be above the latest imported, and the root is kept for
//! the last `IMPORTED_EPOCH_WINDOW` imports.

use prost::Message;
use shardex_core::{
    bridge::{self, BridgeError, IMPORTED_EPOCH_WINDOW},
    coordpb,
    global::verify_epoch,
    pb,
};

use super::{coordinator_of, load_latest, Here};
use crate::vm::{error::ExecError, view::TxScope};

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
        return Err(BridgeError::Duplicate(format!(
            "epoch {number} is not above the latest imported epoch {}",
            latest.epoch
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
