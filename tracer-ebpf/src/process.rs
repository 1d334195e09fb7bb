//! Process lifecycle: fork, exec, exit and signal delivery.
//!
//! Task fields are read at offsets user space found in the kernel's BTF
//! (`OFFSETS`), since the Rust eBPF toolchain has no CO-RE relocations.
use core::ffi::c_void;

use aya_ebpf::{
    helpers::{bpf_get_current_comm, bpf_get_current_pid_tgid, bpf_get_current_uid_gid, generated},
    macros::{btf_tracepoint, tracepoint},
    programs::{BtfTracePointContext, TracePointContext},
};
use tracer_common::wire::{
    ARG_EXEC_ARGV, ARG_EXEC_AUXV, ARG_EXEC_CWD, ARG_EXEC_ENVP, ARG_EXEC_FILENAME, EXIT_GROUP_DEAD,
    ExecRecord, ExitRecord, FORK_THREAD, ForkRecord, LossKind, RULE_MATCH_PID, RecordKind,
    SignalRecord, Tracked,
};

use crate::{
    buffers::{self, PIECE_BYTES, PIECE_STRING, Piece, Work},
    filter::{VERDICT_EXACT_TIME, decide, verdict},
    maps::{
        EVENTS, EXEC_OLD_TID, INFLIGHT, INFLIGHT_ACTIVE, TRACKED, config, count_loss, inflight,
        offsets, slot,
    },
    mem::put,
    syscall::finish_exiting,
};

const NR_CLONE: i64 = 56;
const NR_FORK: i64 = 57;
const NR_VFORK: i64 = 58;
const NR_CLONE3: i64 = 435;
const SIGCHLD: u64 = 17;
const CLONE_VM: u64 = 0x100;
const CLONE_VFORK: u64 = 0x4000;

#[inline(always)]
pub fn read_kernel<T: Copy + Default>(addr: u64) -> T {
    let mut v = [T::default(); 1];
    // SAFETY: reads size_of::<T>() bytes of kernel memory into the stack.
    unsafe {
        generated::bpf_probe_read_kernel(
            v.as_mut_ptr() as *mut c_void,
            core::mem::size_of::<T>() as u32,
            addr as *const c_void,
        );
    }
    v[0]
}

#[inline(always)]
fn now() -> u64 {
    // SAFETY: helper without preconditions.
    unsafe { generated::bpf_ktime_get_ns() }
}

#[btf_tracepoint(function = "sched_process_fork")]
pub fn sched_process_fork(ctx: BtfTracePointContext) -> i32 {
    crate::fast::stage_flush();
    let Some(off) = offsets() else { return 0 };
    let child: u64 = ctx.arg(1);
    let child_tid: u32 = read_kernel(child + off.task_pid as u64);
    let child_pid: u32 = read_kernel(child + off.task_tgid as u64);
    let child_start: u64 = read_kernel(child + off.task_start_time as u64);
    let id = bpf_get_current_pid_tgid();
    let tgid = (id >> 32) as u32;
    let tid = id as u32;
    track_child(tgid, child_pid);
    let Some(v) = verdict(tgid) else {
        return 0;
    };
    if child_pid != tgid && v & VERDICT_EXACT_TIME != 0 {
        crate::vdso::note_fork(tgid, child_pid, child_tid, child_start);
    }
    let clone_flags = match inflight(tid) {
        Some(f) => match f.nr {
            NR_CLONE => f.args[0],
            NR_CLONE3 => {
                let mut v = [0u64; 1];
                // SAFETY: clone_args.flags is the first u64 of the user struct.
                unsafe {
                    generated::bpf_probe_read_user(
                        v.as_mut_ptr() as *mut c_void,
                        8,
                        f.args[0] as *const c_void,
                    )
                };
                v[0]
            }
            NR_FORK => SIGCHLD,
            NR_VFORK => CLONE_VM | CLONE_VFORK | SIGCHLD,
            _ => 0,
        },
        None => 0,
    };
    let Some(mut e) = EVENTS.reserve::<ForkRecord>(0) else {
        count_loss(LossKind::Fork, tgid);
        return 0;
    };
    e.write(ForkRecord {
        kind: RecordKind::Fork as u32,
        flags: if child_pid == tgid { FORK_THREAD } else { 0 },
        ts_ns: now(),
        clone_flags,
        child_start_ns: child_start,
        parent_pid: tgid,
        parent_tid: tid,
        child_pid,
        child_tid,
        uid: bpf_get_current_uid_gid() as u32,
        _pad: 0,
        comm: bpf_get_current_comm().unwrap_or([0u8; 16]),
    });
    e.submit(0);
    0
}

/// Pid rules follow descendants: a child of a tracked process is tracked
/// under the same rule.
#[inline(always)]
fn track_child(parent: u32, child: u32) {
    if parent == child {
        return;
    }
    let Some(cfg) = config() else { return };
    if cfg.track_descendants == 0 {
        return;
    }
    // SAFETY: read-only use of the value.
    if let Some(t) = unsafe { TRACKED.get(parent) } {
        let t = *t;
        let _ = TRACKED.insert(child, t, 0);
        return;
    }
    for i in 0..tracer_common::wire::MAX_RULES {
        if i as u32 >= cfg.rule_count {
            break;
        }
        let r = &cfg.rules[i];
        if r.matcher == RULE_MATCH_PID && r.value == parent as u64 {
            let _ = TRACKED.insert(
                child,
                Tracked {
                    rule: i as u32,
                    _pad: 0,
                },
                0,
            );
            return;
        }
    }
}

#[btf_tracepoint(function = "sched_process_exit")]
pub fn sched_process_exit(ctx: BtfTracePointContext) -> i32 {
    crate::fast::stage_flush();
    let id = bpf_get_current_pid_tgid();
    let tgid = (id >> 32) as u32;
    let tid = id as u32;
    let group_dead: u64 = ctx.arg(1);
    let group_dead = group_dead & 0xff != 0;
    if decide(tgid).is_none() {
        let _ = INFLIGHT.remove(tid);
        if group_dead {
            let _ = TRACKED.remove(tgid);
        }
        return 0;
    }
    finish_exiting(tid, tgid);
    let Some(off) = offsets() else { return 0 };
    let task: u64 = ctx.arg(0);
    let exit_code: u32 = read_kernel(task + off.task_exit_code as u64);
    let start: u64 = read_kernel(task + off.task_start_time as u64);
    if let Some(mut e) = EVENTS.reserve::<ExitRecord>(0) {
        e.write(ExitRecord {
            kind: RecordKind::Exit as u32,
            flags: if group_dead { EXIT_GROUP_DEAD } else { 0 },
            ts_ns: now(),
            start_ns: start,
            pid: tgid,
            tid,
            exit_code,
            _pad: 0,
            comm: bpf_get_current_comm().unwrap_or([0u8; 16]),
        });
        e.submit(0);
    } else {
        count_loss(LossKind::Exit, tgid);
    }
    if group_dead {
        let _ = TRACKED.remove(tgid);
    }
    0
}

#[btf_tracepoint(function = "signal_deliver")]
pub fn signal_deliver(ctx: BtfTracePointContext) -> i32 {
    crate::fast::stage_flush();
    let id = bpf_get_current_pid_tgid();
    let tgid = (id >> 32) as u32;
    if decide(tgid).is_none() {
        return 0;
    }
    let sig: u64 = ctx.arg(0);
    let info: u64 = ctx.arg(1);
    // kernel_siginfo: si_signo, si_errno, si_code, then the union whose
    // first member is the sender's pid for kill/tkill/queue, the address
    // for a fault.
    let (errno, code, field): (i32, i32, u64) = if info != 0 {
        (
            read_kernel(info + 4),
            read_kernel(info + 8),
            read_kernel(info + 16),
        )
    } else {
        (0, 0, 0)
    };
    let Some(mut e) = EVENTS.reserve::<SignalRecord>(0) else {
        count_loss(LossKind::Signal, tgid);
        return 0;
    };
    e.write(SignalRecord {
        kind: RecordKind::Signal as u32,
        signo: sig as u32,
        ts_ns: now(),
        pid: tgid,
        tid: id as u32,
        code,
        errno,
        field,
    });
    e.submit(0);
    0
}

/// What the exec record needs besides the buffers.
#[repr(C)]
pub struct ExecInfo {
    pub start: u64,
    pub arg_start: u64,
    pub env_start: u64,
}

/// At the exit of a successful exec: plans the new program's argv, envp
/// (user memory of the new stack) and auxv (the kernel's saved copy);
/// what the exec record needs goes to `w.exec`. False without offsets.
#[inline(never)]
pub fn plan_exec(w: &mut Work) -> bool {
    let Some(off) = offsets() else {
        return false;
    };
    // SAFETY: helper without preconditions.
    let task = unsafe { generated::bpf_get_current_task() };
    let mm: u64 = read_kernel(task + off.task_mm as u64);
    let start: u64 = read_kernel(task + off.task_start_time as u64);
    put(&mut w.exec.start, start);
    put(&mut w.exec.arg_start, 0);
    put(&mut w.exec.env_start, 0);
    if mm == 0 {
        return true;
    }
    let arg_start: u64 = read_kernel(mm + off.mm_arg_start as u64);
    let arg_end: u64 = read_kernel(mm + off.mm_arg_end as u64);
    let env_start: u64 = read_kernel(mm + off.mm_env_start as u64);
    let env_end: u64 = read_kernel(mm + off.mm_env_end as u64);
    let base = Piece {
        src: arg_start,
        total: arg_end.saturating_sub(arg_start),
        item: 0,
        arg: ARG_EXEC_ARGV,
        dir: 1,
        kernel: 0,
        kind: PIECE_BYTES,
    };
    buffers::add(w, base);
    buffers::add(
        w,
        Piece {
            src: env_start,
            total: env_end.saturating_sub(env_start),
            arg: ARG_EXEC_ENVP,
            ..base
        },
    );
    // The path the exec was asked for (AT_EXECFN's string, just above the
    // environment): the program's name even when its enter was filtered.
    buffers::add(
        w,
        Piece {
            src: env_end,
            arg: ARG_EXEC_FILENAME,
            kind: PIECE_STRING,
            ..base
        },
    );
    buffers::add(
        w,
        Piece {
            src: mm + off.mm_saved_auxv as u64,
            total: off.mm_saved_auxv_size as u64,
            arg: ARG_EXEC_AUXV,
            kernel: 1,
            ..base
        },
    );
    // Where a relative path of the exec was resolved from.
    if let Some((src, total)) = crate::exec_cwd::walk(task, off) {
        buffers::add(
            w,
            Piece {
                src,
                total,
                arg: ARG_EXEC_CWD,
                kernel: 1,
                ..base
            },
        );
    }
    put(&mut w.exec.arg_start, arg_start);
    put(&mut w.exec.env_start, env_start);
    true
}

/// The exec record, after its buffers.
#[inline(never)]
pub fn emit_exec(x: &ExecInfo, enter_ns: u64, tid: u32, old_tid: u32, tgid: u32) {
    let Some(mut e) = EVENTS.reserve::<ExecRecord>(0) else {
        count_loss(LossKind::Exec, tgid);
        return;
    };
    let r = e.as_mut_ptr();
    // SAFETY: r points at a reserved, exclusively owned ring slot.
    unsafe {
        (*r).kind = RecordKind::Exec as u32;
        (*r).flags = 0;
        (*r).enter_ns = enter_ns;
        (*r).ts_ns = now();
        (*r).start_ns = x.start;
        (*r).pid = tgid;
        (*r).tid = tid;
        (*r).old_tid = old_tid;
        (*r).uid = bpf_get_current_uid_gid() as u32;
        (*r).cgroup_id = generated::bpf_get_current_cgroup_id();
        (*r).arg_start = x.arg_start;
        (*r).env_start = x.env_start;
        generated::bpf_get_current_comm((*r).comm.as_mut_ptr() as *mut c_void, 16);
    }
    e.submit(0);
}

/// A recorded process has loaded a new program (the execve has not
/// returned yet). A non-leader thread that exec'd has just taken the
/// leader's tid: its syscall in progress moves with it, so that the
/// execve's exit finds its entry, and the exec record names the old tid.
///
/// For exact time, the daemon is asked to patch the new image's vDSO
/// (`vdso::note_exec`; `bpf_probe_write_user`, which could do it here, is
/// refused by this kernel's lockdown).
#[tracepoint(category = "sched", name = "sched_process_exec")]
pub fn sched_process_exec(ctx: TracePointContext) -> i32 {
    // SAFETY: `old_pid`, a 4-byte field of the record (offset 16 in the
    // tracepoint's format file).
    let old = unsafe { ctx.read_at::<i32>(16) }.unwrap_or(0) as u32;
    let id = bpf_get_current_pid_tgid();
    let tgid = (id >> 32) as u32;
    let tid = id as u32;
    let Some(v) = verdict(tgid) else {
        return 0;
    };
    // Here the new image, its vDSO included, is mapped, and the program
    // has not run yet: the patcher's race starts now.
    if v & VERDICT_EXACT_TIME != 0
        && let Some(off) = offsets()
    {
        // SAFETY: helper without preconditions.
        let task = unsafe { generated::bpf_get_current_task() };
        let start: u64 = read_kernel(task + off.task_start_time as u64);
        let mm: u64 = read_kernel(task + off.task_mm as u64);
        // The kernel puts AT_SYSINFO_EHDR (33) first in the auxv on x86_64.
        let auxv = mm + off.mm_saved_auxv as u64;
        let vdso = if mm != 0 && read_kernel::<u64>(auxv) == 33 {
            read_kernel::<u64>(auxv + 8)
        } else {
            0
        };
        crate::vdso::note_exec(tgid, tid, now(), start, vdso);
    }
    if old == tid || old == 0 {
        return 0;
    }
    follow_exec_thread(old, tid);
    let _ = EXEC_OLD_TID.insert(tid, old, 0);
    0
}

/// The thread that called the exec now returning in thread `tid` (itself
/// unless a non-leader thread exec'd); the note is consumed.
#[inline(always)]
pub fn exec_caller(tid: u32) -> u32 {
    // SAFETY: read-only copy of this thread's note.
    let old = unsafe { EXEC_OLD_TID.get(tid) }.copied();
    match old {
        Some(old) => {
            let _ = EXEC_OLD_TID.remove(tid);
            old
        }
        None => tid,
    }
}

/// Moves thread `old`'s syscall in progress (the execve) to `new`.
#[inline(always)]
fn follow_exec_thread(old: u32, new: u32) {
    if let Some(s) = slot()
        && s.tid == old
        && s.f.flags & INFLIGHT_ACTIVE != 0
    {
        s.tid = new;
        s.cg_tid = 0;
        return;
    }
    // SAFETY: read-only copy; the entry belongs to the thread running here.
    if let Some(f) = unsafe { INFLIGHT.get(old) }.copied() {
        let _ = INFLIGHT.insert(new, f, 0);
        let _ = INFLIGHT.remove(old);
    }
}

/// A task leaves the CPU: if it is inside a syscall, its in-flight entry
/// moves from the per-CPU slot to the shared map (see `maps::Slot`).
#[btf_tracepoint(function = "sched_switch")]
pub fn sched_switch(_ctx: BtfTracePointContext) -> i32 {
    crate::fast::stage_flush();
    if let Some(s) = crate::maps::slot() {
        crate::maps::spill(s);
        s.cg_tid = 0;
    }
    0
}
