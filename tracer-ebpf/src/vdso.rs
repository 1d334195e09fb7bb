//! Time calls the vDSO answers in user space: there is no syscall for the
//! tracepoints to see, and a replay that must show the times the program
//! saw needs them. With `--exact-time` the daemon attaches these to libc's
//! `clock_gettime` and `clock_getres` (the attach cookie is the syscall
//! number): each call of a recorded process becomes a syscall event
//! flagged `SYSCALL_FROM_VDSO`, with its output captured like the syscall's.
use aya_ebpf::{
    EbpfContext,
    helpers::{bpf_get_current_pid_tgid, generated},
    macros::{uprobe, uretprobe},
    programs::{ProbeContext, RetProbeContext},
};
use tracer_common::wire::{NUM_ARGS, SYSCALL_FROM_VDSO, SYSCALL_NO_PAYLOAD};

use crate::{
    filter::decide,
    maps::{INFLIGHT_WENT_TO_KERNEL, InFlight, VDSO_CALLS},
    syscall::finish,
};

fn now() -> u64 {
    // SAFETY: helper without preconditions.
    unsafe { generated::bpf_ktime_get_ns() }
}

#[uprobe]
pub fn time_enter(ctx: ProbeContext) -> u32 {
    let id = bpf_get_current_pid_tgid();
    let (tgid, tid) = ((id >> 32) as u32, id as u32);
    let Some(payload) = decide(tgid) else {
        return 0;
    };
    // SAFETY: helper on this program's own context.
    let nr = unsafe { generated::bpf_get_attach_cookie(ctx.as_ptr()) } as i64;
    let mut args = [0u64; NUM_ARGS];
    args[0] = ctx.arg(0).unwrap_or(0);
    args[1] = ctx.arg(1).unwrap_or(0);
    let f = InFlight {
        enter_ns: now(),
        nr,
        args,
        buffers: 0,
        flags: SYSCALL_FROM_VDSO | if payload { 0 } else { SYSCALL_NO_PAYLOAD },
    };
    let _ = VDSO_CALLS.insert(tid, f, 0);
    0
}

#[uretprobe]
pub fn time_exit(ctx: RetProbeContext) -> u32 {
    let id = bpf_get_current_pid_tgid();
    let (tgid, tid) = ((id >> 32) as u32, id as u32);
    let Some(p) = VDSO_CALLS.get_ptr(tid) else {
        return 0;
    };
    // SAFETY: p points at this thread's live map entry.
    let f = unsafe { &*p };
    if f.flags & INFLIGHT_WENT_TO_KERNEL == 0 {
        let ret: i64 = ctx.ret::<i32>() as i64;
        finish(tid, tgid, f, ret, now());
    }
    let _ = VDSO_CALLS.remove(tid);
    0
}
