//! The protocol buffer messages of tracer, generated from `proto/*.proto`.
//!
//! This crate owns the schemas and the generated code (messages, gRPC client
//! and server traits) and nothing else: no I/O, no logic.

pub mod v1 {
    include!(concat!(env!("OUT_DIR"), "/tracer.v1.rs"));
}

pub use v1::*;

/// The encoded descriptor set of every `.proto`, for gRPC server reflection.
pub const FILE_DESCRIPTOR_SET: &[u8] =
    include_bytes!(concat!(env!("OUT_DIR"), "/tracer_descriptor.bin"));
