//! Types shared by the kernel programs (`tracer-ebpf`) and user space.
//!
//! This crate owns two things and nothing else:
//! - [`wire`]: the `#[repr(C)]` records the eBPF programs put into the ring
//!   buffer and the configuration structs user space puts into maps. Every
//!   struct is plain data with explicit padding, so both sides agree on the
//!   layout byte for byte.
//! - [`effects`]: the syscall memory-effects table, the one place that says
//!   which user memory each x86_64 syscall reads (inputs, copied at
//!   `sys_enter`) and writes (outputs, copied at `sys_exit`). Capture encodes
//!   it into a BPF map ([`effects::encode`]); replay reads it directly.
//!
//! - [`vdso`] (feature `vdso`, std): the vDSO time functions and the
//!   syscall stubs that replace them, the same for the recorder (exact
//!   time) and the replayer (time answered from the recording).
//!
//! It is `no_std` so the eBPF crate can use it; the `user` feature adds the
//! `aya::Pod` impls user space needs to read and write maps.
#![no_std]

#[cfg(feature = "vdso")]
extern crate std;

pub mod effects;
#[cfg(feature = "vdso")]
pub mod vdso;
pub mod wire;
