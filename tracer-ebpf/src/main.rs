//! Kernel programs of tracer.
//!
//! - `sys_enter` / `sys_exit` (raw tracepoints): one complete event per
//!   finished syscall, with the user memory the effects table names.
//! - `sched_process_fork` / `sched_process_exit` / `signal_deliver` (BTF
//!   tracepoints): process lifecycle; exec is reported at the exit of a
//!   successful `execve`, where the new stack can be read.
//!
//! - `time_enter` / `time_exit` (uprobe and uretprobe on libc's
//!   `clock_gettime`, only with `--exact-time`): time calls the vDSO answers
//!   without a syscall, recorded as syscall events so that replay can give
//!   the program the exact times it saw.
//!
//! Everything that user space can do instead (decoding, reassembly,
//! formatting) is left to it: these programs copy and count, nothing more.
//! Loss is never silent: a failed reservation bumps a per-CPU, per-kind
//! counter and the per-process loss map.
#![no_std]
#![no_main]

mod buffers;
mod fast;
mod filter;
mod maps;
mod mem;
mod process;
mod syscall;
mod vdso;

#[cfg(not(test))]
#[panic_handler]
fn panic(_info: &core::panic::PanicInfo) -> ! {
    loop {}
}

#[unsafe(link_section = "license")]
#[unsafe(no_mangle)]
static LICENSE: [u8; 4] = *b"GPL\0";

/// Empty programs on syscall entry and exit: the cost floor the benchmark
/// compares recording with (`tracer-daemon --bench-floor`).
mod floor {
    use aya_ebpf::{macros::raw_tracepoint, programs::RawTracePointContext};

    #[raw_tracepoint(tracepoint = "sys_enter")]
    pub fn floor_enter(_ctx: RawTracePointContext) -> u32 {
        0
    }

    #[raw_tracepoint(tracepoint = "sys_exit")]
    pub fn floor_exit(_ctx: RawTracePointContext) -> u32 {
        0
    }
}
