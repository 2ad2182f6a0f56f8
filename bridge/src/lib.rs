//! shardex bridge: will relay cross-shard collateral messages proven against the coordinator's global
//! commitment (DESIGN.md §7). The crate holds no code yet; the ops it will submit are declared in
//! `shardex.shard.v1.TxBody`.
