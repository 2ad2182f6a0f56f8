//! The shardex wire contract: protobuf messages and gRPC services, generated at build time.
#![allow(missing_docs, clippy::all)]

pub mod codec;

pub use codec::REASON_METADATA_KEY;

/// `shardex.shard.v1`: transactions, state records, blocks and the Shard service.
pub mod shard {
    /// Version 1 of the shard package.
    pub mod v1 {
        tonic::include_proto!("shardex.shard.v1");
    }
}

/// `shardex.coordinator.v1`: epochs, shard entries and the Coordinator service.
pub mod coordinator {
    /// Version 1 of the coordinator package.
    pub mod v1 {
        tonic::include_proto!("shardex.coordinator.v1");
    }
}

/// `shardex.bridge.v1`: the relayer's message lifecycle, stream and status.
pub mod bridge {
    /// Version 1 of the bridge package.
    pub mod v1 {
        tonic::include_proto!("shardex.bridge.v1");
    }
}

/// Encoded `FileDescriptorSet` of every package, for gRPC server reflection.
pub const FILE_DESCRIPTOR_SET: &[u8] = include_bytes!(concat!(env!("OUT_DIR"), "/descriptor.bin"));
