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

/// Largest gRPC message a reader of the store can be sent: a batch of one
/// event as large as a frame holds (`frame::MAX_RAW`), with room for its
/// framing. The daemon's API bounds its messages by it (streams are cut
/// into much smaller messages; only one large event alone comes near it),
/// and clients accept up to it.
pub const MAX_MESSAGE: usize = frame::MAX_RAW + (1 << 20);
