//! Compiles `proto/rezef/v1/*.proto` (and the nodes' own `rezef/cluster/v1`) with protox (pure Rust, no `protoc` needed) and generates
//! the prost messages and tonic services, plus the descriptor set used by server reflection
//! and the proto3 JSON mapping.

use std::path::PathBuf;

use prost::Message;

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let root = PathBuf::from(std::env::var("CARGO_MANIFEST_DIR")?).join("../../proto");
    let files = [
        "events",
        "journey",
        "ingest",
        "journeys",
        "identities",
        "routing",
        "audit",
        "insights",
    ]
    .map(|name| format!("rezef/v1/{name}.proto"))
    .into_iter()
    .chain(["rezef/cluster/v1/partitions.proto".to_owned()])
    .map(|file| root.join(file))
    .collect::<Vec<_>>();
    let descriptors = protox::compile(&files, [&root])?;

    let out_dir = PathBuf::from(std::env::var("OUT_DIR")?);
    std::fs::write(
        out_dir.join("rezef_descriptor.bin"),
        descriptors.encode_to_vec(),
    )?;
    // Decoding errors are the caller's: INVALID_ARGUMENT (src/codec.rs).
    tonic_prost_build::configure()
        .codec_path("crate::codec::Codec")
        .compile_fds(descriptors)?;

    for file in &files {
        println!("cargo:rerun-if-changed={}", file.display());
    }
    Ok(())
}
