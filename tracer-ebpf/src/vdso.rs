//! Exact time. The vDSO answers time reads in user space, out of sight of
//! the syscall tracepoints, and this kernel refuses `bpf_probe_write_user`
//! (lockdown), so the kernel programs cannot hide the vDSO. The daemon
//! does it instead: at each exec of a process that an exact-time rule
//! covers, and at each fork of one (the child's memory is a copy made
//! before or after the parent's patch), `note_exec` asks it, through the
//! small, always-woken `EXEC_NOTIFY` ring, to turn the vDSO time functions
//! into syscalls, which the tracepoints then record like any other.
//!
//! The patch races the program's first time read, and that race is not
//! left to luck: the vDSO's clock data pages are mapped on demand, so a
//! process's first read of them faults, and `vvar_read` sees the fault. A
//! process patched in time never reads them (the patched functions make
//! syscalls); one that did has time reads its recording lacks, and a
//! `TIME_MISSED` record says so.
use aya_ebpf::{
    helpers::{bpf_get_current_pid_tgid, generated},
    macros::btf_tracepoint,
    programs::BtfTracePointContext,
};
use tracer_common::wire::{LossKind, RecordKind, TIME_MISSED, TimeRecord, TimeState};

use crate::maps::{EVENTS, EXEC_NOTIFY, TIME_STATE, config, count_loss};

/// `BPF_RB_FORCE_WAKEUP`: the daemon must see the exec at once.
const FORCE_WAKEUP: u64 = 2;

fn now() -> u64 {
    // SAFETY: helper without preconditions.
    unsafe { generated::bpf_ktime_get_ns() }
}

/// Process `pid` (started at `start_ns`, its vDSO at `vdso`) runs a new
/// image (`exec_ns`: now; 0 for a fork, which runs its parent's).
#[inline(never)]
pub fn note_exec(pid: u32, tid: u32, exec_ns: u64, start_ns: u64, vdso: u64) {
    let s = TimeState {
        exec_ns,
        start_ns,
        vdso,
        missed: 0,
        patched: 0,
    };
    let _ = TIME_STATE.insert(pid, s, 0);
    let r = TimeRecord {
        kind: RecordKind::Time as u32,
        flags: 0,
        ts_ns: now(),
        exec_ns,
        start_ns,
        pid,
        tid,
        reason: 0,
        _pad: 0,
        vdso,
    };
    if EXEC_NOTIFY.output::<TimeRecord>(&r, FORCE_WAKEUP).is_err() {
        count_loss(LossKind::Time, pid);
    }
}

/// A fork of a process the daemon was asked to patch: patched (or found
/// patched) in its turn. The fork of a process that ran before the daemon
/// is not: what its parent read cannot be known, and it is no replayable
/// recording's root (one that execs is patched then).
///
/// A fork of a process already patched has the patch (a patch that lands
/// between the kernel's copy of the memory and this hook would not be in
/// the child's copy: the child's own entry then still catches its reads of
/// the clock data), and needs no notice: the patcher's time goes to the
/// execs, which race their first time read.
#[inline(never)]
pub fn note_fork(parent: u32, child: u32, child_tid: u32, child_start: u64) {
    // SAFETY: read-only copy of the parent's entry.
    let Some(p) = (unsafe { TIME_STATE.get(parent) }).copied() else {
        return;
    };
    if p.patched == 0 {
        note_exec(child, child_tid, 0, child_start, p.vdso);
        return;
    }
    let s = TimeState {
        exec_ns: 0,
        start_ns: child_start,
        vdso: p.vdso,
        missed: 0,
        patched: 1,
    };
    let _ = TIME_STATE.insert(child, s, 0);
}

/// A user page fault anywhere: reported when it is a read of the vDSO's
/// data pages by a process the daemon was asked to patch, once per
/// process image.
#[btf_tracepoint(function = "page_fault_user")]
pub fn vvar_read(ctx: BtfTracePointContext) -> i32 {
    let id = bpf_get_current_pid_tgid();
    let (tgid, tid) = ((id >> 32) as u32, id as u32);
    let Some(s) = TIME_STATE.get_ptr_mut(tgid) else {
        return 0;
    };
    let below = config().map(|c| c.vvar_below).unwrap_or(0) as u64;
    let addr: u64 = ctx.arg(0);
    // SAFETY: this process's live entry; a racing fault of another thread
    // at worst sends a second record.
    let s = unsafe { &mut *s };
    if s.missed != 0 || s.vdso == 0 || addr >= s.vdso || addr < s.vdso.saturating_sub(below) {
        return 0;
    }
    s.missed = 1;
    let r = TimeRecord {
        kind: RecordKind::Time as u32,
        flags: TIME_MISSED,
        ts_ns: now(),
        exec_ns: s.exec_ns,
        start_ns: s.start_ns,
        pid: tgid,
        tid,
        reason: 0,
        _pad: 0,
        vdso: s.vdso,
    };
    if EVENTS.output::<TimeRecord>(&r, 0).is_err() {
        count_loss(LossKind::Time, tgid);
    }
    0
}
