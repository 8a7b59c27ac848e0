//! Compiles `proto/rezef/v1/*.proto` with protox (pure Rust, no `protoc` needed) and generates
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
    ]
    .map(|name| root.join(format!("rezef/v1/{name}.proto")));
    let descriptors = protox::compile(&files, [&root])?;

    let out_dir = PathBuf::from(std::env::var("OUT_DIR")?);
    std::fs::write(
        out_dir.join("rezef_descriptor.bin"),
        descriptors.encode_to_vec(),
    )?;
    tonic_prost_build::configure().compile_fds(descriptors)?;

    for file in &files {
        println!("cargo:rerun-if-changed={}", file.display());
    }
    Ok(())
}
