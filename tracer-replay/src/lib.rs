//! tracer-replay: re-executes a recorded process (its threads, and the
//! child processes its bundle holds) from its bundle under ptrace, so that
//! it runs as it ran when recorded, even where the files, peers and clock
//! it saw are gone. Across tasks, syscalls happen in the recorded order.
//!
//! Boundaries: this crate reads a decoded bundle ([`tracer_store::bundle`])
//! and drives the tracee; it never talks to a daemon. What runs for real
//! and what is answered from the recording is decided in [`policy`]; where
//! recorded buffers go in the tracee comes from the shared memory-effects
//! table ([`tracer_common::effects`]), through [`memory`]. Where the
//! program's image, stack and heap go is [`layout`] and [`stack`]; the
//! files it made itself and mapped are followed in [`made`].
//!
//! Nothing the replayed program does reaches the outside world: it runs
//! behind a seccomp filter that stops every syscall for the replayer, which
//! runs only address-space and task syscalls and answers the rest.
pub mod engine;
pub mod fds;
pub mod gdb;
pub mod layout;
pub mod made;
pub mod memory;
pub mod policy;
pub mod recording;
pub mod report;
pub mod stack;
pub mod tracee;
pub mod vdso;

pub use engine::{Options, replay};

/// Replays one process of a bundle under gdb: serves the gdb remote
/// protocol on `listen` (`HOST:PORT` or `unix:PATH`) and lets gdb drive.
pub fn debug(
    bundle: tracer_store::bundle::Bundle,
    opts: &Options,
    listen: &str,
) -> Result<Report, ReplayError> {
    let rec = recording::Recording::from_bundle(bundle, opts.pid)?;
    gdb::serve(&rec, opts, listen)
}
pub use report::{Outcome, Report};

use thiserror::Error;

/// What stops a replay before it can start or continue (a divergence is
/// not an error: it is an [`Outcome`]).
#[derive(Debug, Error)]
pub enum ReplayError {
    #[error("bad bundle: {0}")]
    Bundle(String),
    #[error("cannot start the program: {0}")]
    Launch(String),
    #[error("ptrace: {0}")]
    Ptrace(String),
    #[error("{0}")]
    Io(String),
}
