//! Refusals as gRPC statuses, the same on every shardex server: one code per reason (DESIGN.md §8), the
//! machine-readable reason in the `shardex-reason` metadata and as the prefix of the message.

use shardex_core::Reason;
use shardex_proto::REASON_METADATA_KEY;
use tonic::{metadata::MetadataMap, Code, Status};

/// The gRPC code for a reason.
pub fn code_of(reason: Reason) -> Code {
    match reason {
        Reason::Malformed
        | Reason::TxTooLarge
        | Reason::WrongChain
        | Reason::WrongShard
        | Reason::BadSignature
        | Reason::InvalidOp
        | Reason::BatchTooLarge
        | Reason::InvalidProof
        | Reason::ProofTooLarge => Code::InvalidArgument,
        Reason::Unauthorized => Code::PermissionDenied,
        Reason::NonceUsed | Reason::DuplicateTx | Reason::Duplicate => Code::AlreadyExists,
        Reason::InsufficientCollateral
        | Reason::GasLimit
        | Reason::OpNotEnabled
        | Reason::InsufficientMargin
        | Reason::StalePrice
        | Reason::MarketMode
        | Reason::WouldCross
        | Reason::NotLiquidatable
        | Reason::UnknownEpoch
        | Reason::MessageState
        | Reason::Expired
        | Reason::NotExpired => Code::FailedPrecondition,
        Reason::Overflow => Code::OutOfRange,
        Reason::MempoolFull | Reason::SlowConsumer | Reason::RateLimited => Code::ResourceExhausted,
        Reason::NotFound => Code::NotFound,
        Reason::Unavailable | Reason::NoLeader => Code::Unavailable,
    }
}

/// A refusal: the code of `reason`, the reason in metadata and as the message prefix.
pub fn refuse(reason: Reason, message: impl std::fmt::Display) -> Status {
    let mut md = MetadataMap::new();
    if let Ok(v) = reason.as_str().parse() {
        md.insert(REASON_METADATA_KEY, v);
    }
    Status::with_metadata(code_of(reason), format!("{reason}: {message}"), md)
}

/// The reason a status carries, if a shardex server refused it.
pub fn reason_of(status: &Status) -> Option<&str> {
    status.metadata().get(REASON_METADATA_KEY).and_then(|v| v.to_str().ok())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_refusal_carries_its_reason_in_metadata_and_message() {
        let status = refuse(Reason::NonceUsed, "nonce 7 was used");
        assert_eq!(status.code(), Code::AlreadyExists);
        assert_eq!(reason_of(&status), Some("NONCE_USED"));
        assert_eq!(status.message(), "NONCE_USED: nonce 7 was used");
    }

    #[test]
    fn the_codec_and_the_mapping_agree_on_malformed() {
        let decoded = shardex_proto::codec::malformed("tx", "bad wire type");
        let refused = refuse(Reason::Malformed, "x");
        assert_eq!(decoded.code(), refused.code());
        assert_eq!(reason_of(&decoded), reason_of(&refused));
        assert_eq!(Reason::Malformed.as_str(), shardex_proto::codec::MALFORMED_REASON);
    }
}
