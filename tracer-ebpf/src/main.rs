//! Kernel programs of tracer.
//!
//! - `sys_enter` / `sys_exit` (raw tracepoints): one complete event per
//!   finished syscall, with the user memory the effects table names.
//! - `sched_process_fork` / `sched_process_exit` / `signal_deliver` (BTF
//!   tracepoints): process lifecycle; exec is reported at the exit of a
//!   successful `execve`, where the new stack can be read.
//!
//! - exact time: at each exec and fork of an exact-time process, a notice
//!   asks the daemon to patch its vDSO time functions into syscalls, and
//!   `vvar_read` (BTF tracepoint `page_fault_user`) flags a read of the
//!   vDSO's clock data the patch came too late for (see `vdso`).
//!
//! Everything that user space can do instead (decoding, reassembly,
//! formatting) is left to it: these programs copy and count, nothing more.
//! Loss is never silent: a failed reservation bumps a per-CPU, per-kind
//! counter and the per-process loss map.
#![no_std]
#![no_main]

mod buffers;
mod exec_cwd;
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

/// The least a recorder of dd's syscalls with entry and exit times and
/// payloads must do: read the clock at entry and exit and copy the one byte
/// `read`/`write` move (their buffer is the
/// second argument). Nothing is kept or sent. `cargo xtask bench` runs it
/// to show how much of the recording's cost these helpers alone take
/// (`tracer-daemon --bench-bound`).
mod bound {
    use core::ffi::c_void;

    use aya_ebpf::{
        helpers::generated, macros::btf_tracepoint, macros::map, maps::PerCpuArray,
        programs::BtfTracePointContext,
    };

    /// Per CPU: the entry time, the buffer pointer, the exit time, the byte.
    #[map]
    static BOUND: PerCpuArray<[u64; 4]> = PerCpuArray::with_max_entries(1, 0);

    /// Index of `si` (the second argument) in x86_64 `struct pt_regs`.
    const REG_SI: usize = 13;

    #[btf_tracepoint(function = "sys_enter")]
    pub fn bound_enter(ctx: BtfTracePointContext) -> i32 {
        // SAFETY: helper without preconditions.
        let t = unsafe { generated::bpf_ktime_get_ns() };
        let regs: *const u64 = ctx.arg(0);
        if let Some(p) = BOUND.get_ptr_mut(0) {
            // SAFETY: this CPU's map value; regs is the tracepoint's pt_regs.
            unsafe {
                (*p)[0] = t;
                (*p)[1] = *regs.add(REG_SI);
            }
        }
        0
    }

    #[btf_tracepoint(function = "sys_exit")]
    pub fn bound_exit(_ctx: BtfTracePointContext) -> i32 {
        // SAFETY: helper without preconditions.
        let t = unsafe { generated::bpf_ktime_get_ns() };
        if let Some(p) = BOUND.get_ptr_mut(0) {
            // SAFETY: this CPU's map value; the read is of user memory
            // through the helper, which fails cleanly on a bad pointer.
            unsafe {
                (*p)[2] = t;
                generated::bpf_probe_read_user(
                    (*p).as_mut_ptr().add(3) as *mut c_void,
                    1,
                    (*p)[1] as *const c_void,
                );
            }
        }
        0
    }
}
