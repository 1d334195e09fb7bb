//! tracer's segment files: framing, checksums, compression, index, reading,
//! writing and crash recovery. Used by the daemon to persist events and by
//! `tracectl` to read them offline. The format is documented in README.md.
//!
//! This crate does no policy (when to rotate, what to keep): that is the
//! daemon's. It never panics on input it did not write: every length is
//! checked before allocation and damage is reported with its offset.
pub mod bundle;
pub mod frame;
pub mod index;
pub mod segment;
pub mod store;
