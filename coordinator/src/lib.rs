//! shardex coordinator: will collect finalized shard headers and sign one global commitment per epoch
//! (DESIGN.md §6). The crate holds no code yet; the header finality check it will use lives in
//! `shardex_core::block::verify_finalized`.
