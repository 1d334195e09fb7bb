//! The protocol buffer messages of tracer, generated from `proto/*.proto`.
//!
//! This crate owns the schemas and nothing else: no I/O, no logic beyond
//! small helpers on the generated types.

pub mod v1 {
    include!(concat!(env!("OUT_DIR"), "/tracer.v1.rs"));
}

pub use v1::*;
