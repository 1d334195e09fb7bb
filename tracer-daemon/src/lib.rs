//! tracer-daemon: loads the kernel programs, drains their ring buffer,
//! turns records into events and persists them.
//!
//! Boundaries: the kernel side lives in `tracer-ebpf`, the record layouts and
//! the effects table in `tracer-common`, the schemas in `tracer-proto`. This
//! crate owns loading/attaching, the in-kernel filter configuration, the
//! drain loop, event assembly and where events go.
pub mod api;
pub mod assemble;
pub mod assembly;
pub mod bundle;
pub mod catchup;
pub mod config;
pub mod drain;
pub mod kernel_btf;
pub mod loader;
pub mod loss;
pub mod metrics;
pub mod notify;
pub mod peers;
pub mod persist;
pub mod run;
pub mod sink;
pub mod timepatch;
pub mod tree;
pub mod tsc;

/// The daemon's allocator (see main.rs) in the unit tests too, so that the
/// throughput test measures what the daemon does.
#[cfg(test)]
#[global_allocator]
static ALLOC: mimalloc::MiMalloc = mimalloc::MiMalloc;
