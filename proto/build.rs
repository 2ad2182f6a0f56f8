//! Compiles the wire contract with protox (pure Rust, no system `protoc`).

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let files = [
        "proto/shardex/shard/v1/tx.proto",
        "proto/shardex/shard/v1/state.proto",
        "proto/shardex/shard/v1/header.proto",
        "proto/shardex/shard/v1/block.proto",
        "proto/shardex/shard/v1/shard.proto",
        "proto/shardex/coordinator/v1/coordinator.proto",
        "proto/shardex/bridge/v1/bridge.proto",
    ];
    for f in &files {
        println!("cargo:rerun-if-changed={f}");
    }
    let fds = protox::compile(files, ["proto"])?;
    let out = std::path::PathBuf::from(std::env::var("OUT_DIR")?);
    std::fs::write(out.join("descriptor.bin"), prost::Message::encode_to_vec(&fds))?;
    // Every service and client decodes with shardex's codec: bytes that are not the expected message are the
    // caller's fault (InvalidArgument, reason MALFORMED), not an internal error.
    tonic_prost_build::configure()
        .build_client(true)
        .build_server(true)
        .codec_path("crate::codec::ShardexCodec")
        .compile_fds(fds)?;
    Ok(())
}
