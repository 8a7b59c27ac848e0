//! Rezef's public gRPC contract, generated from `proto/rezef/v1`.
//!
//! Only the edges of the system touch these types: the server (`rezef-server`), the
//! adapter SDK (`rezef-adapter`) and the log record codec (`rezef-record`, because a log
//! record is a `rezef.v1.Event`). Everything inside works on the domain types of
//! `rezef-events`. Besides the generated code this crate holds the descriptor set (for gRPC
//! server reflection) and the proto3 JSON mapping used by `rezef publish` and `rezef replay`.

pub mod codec;
pub mod json;

/// The `rezef.v1` package: messages, enums, service clients and servers.
#[allow(clippy::all, missing_debug_implementations)]
pub mod v1 {
    tonic::include_proto!("rezef.v1");
}

/// `rezef.cluster.v1`: what the nodes of a cluster call on each other, never clients.
pub mod cluster {
    #[allow(clippy::all, missing_debug_implementations)]
    pub mod v1 {
        tonic::include_proto!("rezef.cluster.v1");
    }
}

/// The encoded `FileDescriptorSet` of every `rezef.v1` file, for server reflection and JSON.
pub const FILE_DESCRIPTOR_SET: &[u8] =
    include_bytes!(concat!(env!("OUT_DIR"), "/rezef_descriptor.bin"));
