//! The codec every generated shardex service and client uses: prost, except that bytes which do not decode
//! as the expected message are refused as the caller's fault — `InvalidArgument` with the machine-readable
//! reason `MALFORMED` in the `shardex-reason` metadata — instead of tonic's `Internal`.

use std::marker::PhantomData;

use prost::Message;
use tonic::{
    codec::{BufferSettings, Codec, DecodeBuf, Decoder},
    metadata::MetadataMap,
    Code, Status,
};
use tonic_prost::ProstEncoder;

/// Metadata key carrying the machine-readable reason of every refusal of every shardex server.
pub const REASON_METADATA_KEY: &str = "shardex-reason";

/// The reason of a message that does not decode (`shardex_core::Reason::Malformed`).
pub const MALFORMED_REASON: &str = "MALFORMED";

/// prost encoding, and decoding that refuses bad bytes with `InvalidArgument` / `MALFORMED`.
#[derive(Debug, Clone, Copy)]
pub struct ShardexCodec<T, U>(PhantomData<(T, U)>);

impl<T, U> Default for ShardexCodec<T, U> {
    fn default() -> Self {
        Self(PhantomData)
    }
}

impl<T, U> Codec for ShardexCodec<T, U>
where
    T: Message + Send + 'static,
    U: Message + Default + Send + 'static,
{
    type Encode = T;
    type Decode = U;
    type Encoder = ProstEncoder<T>;
    type Decoder = ShardexDecoder<U>;

    fn encoder(&mut self) -> Self::Encoder {
        ProstEncoder::new(BufferSettings::default())
    }

    fn decoder(&mut self) -> Self::Decoder {
        ShardexDecoder(PhantomData)
    }
}

/// Decodes one message; see [`ShardexCodec`].
#[derive(Debug, Clone, Copy)]
pub struct ShardexDecoder<U>(PhantomData<U>);

/// The status of bytes that do not decode as a `what`.
pub fn malformed(what: &str, error: impl std::fmt::Display) -> Status {
    let mut md = MetadataMap::new();
    md.insert(REASON_METADATA_KEY, tonic::metadata::MetadataValue::from_static(MALFORMED_REASON));
    Status::with_metadata(Code::InvalidArgument, format!("{MALFORMED_REASON}: the {what} does not decode: {error}"), md)
}

impl<U: Message + Default> Decoder for ShardexDecoder<U> {
    type Item = U;
    type Error = Status;

    fn decode(&mut self, buf: &mut DecodeBuf<'_>) -> Result<Option<U>, Status> {
        U::decode(buf).map(Some).map_err(|e| malformed("message", e))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_malformed_message_is_the_callers_fault_with_a_reason() {
        let status = malformed("message", "invalid wire type");
        assert_eq!(status.code(), Code::InvalidArgument);
        assert_eq!(status.metadata().get(REASON_METADATA_KEY).and_then(|v| v.to_str().ok()), Some("MALFORMED"));
        assert!(status.message().starts_with("MALFORMED: "), "{}", status.message());
    }
}
