//! `sys_enter` / `sys_exit`: one complete event per finished syscall.
use core::ffi::c_void;

use aya_ebpf::{
    helpers::{bpf_get_current_pid_tgid, bpf_get_current_uid_gid, generated},
    macros::btf_tracepoint,
    programs::BtfTracePointContext,
};
use tracer_common::{
    effects::{
        self, BPF_QUERY_ARRAYS, BpfMemory, CmdSize, Direction, MAX_MMSGS, MMSG_ITEM_STRIDE,
        PrctlMemory, SizeRule, bpf_memory, cap_data_bytes, cmd_memory, ioctl_memory,
        perf_attr_bytes, prctl_memory,
    },
    wire::{
        LossKind, MAX_EFFECTS, MAX_IOVECS, NUM_ARGS, RecordKind, SPEC_HAS_IN, SPEC_HAS_OUT,
        SPEC_KNOWN, SYSCALL_BUFFER_LOST, SYSCALL_EFFECTS_UNKNOWN, SYSCALL_NO_ENTER,
        SYSCALL_NO_PAYLOAD, SYSCALL_TABLE_LEN, SyscallRecord, SyscallSpec,
    },
};

use crate::{
    buffers::{self, PIECE_AGAIN, PIECE_BYTES, PIECE_STRING, Piece, Work},
    fast,
    filter::decide,
    maps::{
        EVENTS, INFLIGHT, INFLIGHT_ACTIVE, INFLIGHT_INPUT_FAULT, INFLIGHT_PRIVATE, InFlight,
        NO_ENTER, SYSCALLS, Slot, config, count_loss, slot, spill,
    },
    mem::{copy, put},
    process::plan_exec,
};

const NR_EXECVE: i64 = 59;
const NR_EXECVEAT: i64 = 322;
const NR_EXIT: i64 = 60;
const NR_EXIT_GROUP: i64 = 231;

/// Byte offsets in x86_64 `struct pt_regs`: r10, r9, r8 are adjacent, and
/// so are dx, si, di; orig_ax holds the syscall number.
const OFF_R10: u64 = 7 * 8;
const OFF_DX: u64 = 12 * 8;
const OFF_ORIG_AX: u64 = 15 * 8;

/// Reads the six argument registers. The programs are BTF tracepoints, so
/// `regs` is a typed kernel pointer the verifier lets us load from directly
/// (no helper call per register).
#[inline(always)]
fn read_args(regs: *const u64, args: &mut [u64; NUM_ARGS]) {
    // SAFETY: regs is the tracepoint's `struct pt_regs *`; the offsets are
    // its di, si, dx, r10, r8 and r9 members.
    unsafe {
        put(&mut args[0], *regs.add((OFF_DX / 8 + 2) as usize));
        put(&mut args[1], *regs.add((OFF_DX / 8 + 1) as usize));
        put(&mut args[2], *regs.add((OFF_DX / 8) as usize));
        put(&mut args[3], *regs.add((OFF_R10 / 8) as usize));
        put(&mut args[4], *regs.add((OFF_R10 / 8 + 2) as usize));
        put(&mut args[5], *regs.add((OFF_R10 / 8 + 1) as usize));
    }
}

#[inline(always)]
fn now() -> u64 {
    // SAFETY: helper without preconditions.
    unsafe { generated::bpf_ktime_get_ns() }
}

#[inline(always)]
fn snapshot_limit() -> u32 {
    config().map(|c| c.snapshot_limit).unwrap_or(0)
}

/// The return trampoline of uretprobes (anyone's): the kernel's, not the
/// program's, so it is not recorded.
const NR_URETPROBE: i64 = 335;

#[btf_tracepoint(function = "sys_enter")]
pub fn sys_enter(ctx: BtfTracePointContext) -> i32 {
    let id = bpf_get_current_pid_tgid();
    let tgid = (id >> 32) as u32;
    let tid = id as u32;
    let Some(payload) = decide(tgid) else {
        return 0;
    };
    let regs: *const u64 = ctx.arg(0);
    let nr: i64 = ctx.arg(1);
    if nr == NR_URETPROBE {
        return 0;
    }
    // The entry is filled in place in this CPU's slot: building it on the
    // stack and copying costs a memcpy on every syscall.
    let Some(s) = slot() else { return 0 };
    if s.tid != tid {
        // Only possible if a switch was missed; keep the other task's entry.
        spill(s);
    }
    put(&mut s.tid, tid);
    put(&mut s.tgid, tgid);
    put(&mut s.inl_len, 0);
    let f = &mut s.f;
    put(&mut f.enter_ns, now());
    put(&mut f.nr, nr);
    put(&mut f.buffers, 0);
    put(
        &mut f.flags,
        INFLIGHT_ACTIVE | if payload { 0 } else { SYSCALL_NO_PAYLOAD },
    );
    read_args(regs, &mut f.args);
    if payload
        && let Some(spec) = fast::spec(nr)
        && spec.flags & (SPEC_KNOWN | SPEC_HAS_IN) == SPEC_KNOWN | SPEC_HAS_IN
    {
        let limit = snapshot_limit();
        if !enter_inline(s, spec, tid, tgid, limit) {
            // Too big or not simple: the general path.
            put(&mut s.inl_len, 0);
            enter_general(tid, tgid, &mut s.f, limit);
        }
    }
    0
}

/// Inputs inline in the staged record, if they fit. Not inlined, and
/// `enter_general` not called from here: the fast path's frame then stays
/// off the deepest call chain, which the verifier bounds to 512 bytes.
#[inline(never)]
fn enter_inline(s: &mut Slot, spec: &SyscallSpec, tid: u32, tgid: u32, limit: u32) -> bool {
    let Some(st) = fast::stage() else {
        return false;
    };
    fast::place(s, st, tid, tgid);
    let base = fast::area(st, s);
    fast::inline_side(s, spec, base, false, 0, limit)
}

/// Inputs through the general path (`buffers`).
#[inline(never)]
fn enter_general(tid: u32, tgid: u32, f: &mut InFlight, limit: u32) {
    fast::stage_flush();
    if let Some(w) = buffers::begin(tid, tgid, f.enter_ns, limit)
        && spec_of(f.nr, &mut w.spec)
        && has_inputs(&w.spec)
    {
        plan(w, &f.args, 0, PLAN_INPUTS);
        let (emitted, lost) = buffers::flush();
        // Set while the pieces were sent.
        let faulted = w.faulted != 0;
        put(&mut f.buffers, emitted);
        let mut fl = f.flags;
        if lost {
            fl |= SYSCALL_BUFFER_LOST;
        }
        if faulted {
            fl |= INFLIGHT_INPUT_FAULT;
        }
        put(&mut f.flags, fl);
    }
}

#[inline(always)]
fn has_inputs(spec: &SyscallSpec) -> bool {
    spec.count > 0
        && spec
            .effects
            .iter()
            .any(|e| e.dir & Direction::In as u8 != 0)
}

#[inline(always)]
fn has_outputs(spec: &SyscallSpec) -> bool {
    spec.count > 0
        && spec
            .effects
            .iter()
            .any(|e| e.dir & Direction::Out as u8 != 0)
}

/// Copies the effects of syscall `nr` into `out`; false when the table does
/// not know it. Copying (not returning a pointer-or-null) matters: LLVM turns
/// an optional map pointer into pointer masking, which the verifier rejects.
#[inline(always)]
pub fn spec_of(nr: i64, out: &mut SyscallSpec) -> bool {
    if !(0..SYSCALL_TABLE_LEN as i64).contains(&nr) {
        return false;
    }
    match SYSCALLS.get(nr as u32) {
        Some(s) if s.flags & SPEC_KNOWN != 0 => {
            copy(out, s);
            true
        }
        _ => false,
    }
}

#[btf_tracepoint(function = "sys_exit")]
pub fn sys_exit(ctx: BtfTracePointContext) -> i32 {
    let id = bpf_get_current_pid_tgid();
    let tgid = (id >> 32) as u32;
    let tid = id as u32;
    let ret: i64 = ctx.arg(1);
    let exit_ns = now();
    // Each source calls `finish` itself: one pointer chosen among map
    // values and the stack would be compiled into pointer masking, which
    // the verifier rejects.
    if let Some(s) = slot()
        && s.tid == tid
        && s.f.flags & INFLIGHT_ACTIVE != 0
    {
        s.f.flags &= !INFLIGHT_ACTIVE;
        if !finish_slot(s, tid, tgid, ret, exit_ns) {
            finish(tid, tgid, &s.f, ret, exit_ns);
        }
        return 0;
    }
    if let Some(h) = INFLIGHT.get_ptr_mut(tid) {
        // SAFETY: this thread's spilled entry; nothing else writes it now.
        let h = unsafe { &mut *h };
        if h.flags & INFLIGHT_ACTIVE != 0 {
            h.flags &= !INFLIGHT_ACTIVE;
            finish(tid, tgid, h, ret, exit_ns);
            let _ = INFLIGHT.remove(tid);
            return 0;
        }
    }
    // A task returning from clone, or a syscall that began before we
    // attached: record it with the registers we have now.
    let Some(payload) = decide(tgid) else {
        return 0;
    };
    let Some(f) = NO_ENTER.get_ptr_mut(0) else {
        return 0;
    };
    // SAFETY: this CPU's value; programs do not nest on one CPU.
    let f = unsafe { &mut *f };
    let regs: *const u64 = ctx.arg(0);
    put(&mut f.enter_ns, 0);
    put(&mut f.buffers, 0);
    put(
        &mut f.flags,
        SYSCALL_NO_ENTER | if payload { 0 } else { SYSCALL_NO_PAYLOAD },
    );
    read_args(regs, &mut f.args);
    // SAFETY: orig_ax of the tracepoint's pt_regs.
    put(&mut f.nr, unsafe { *regs.add((OFF_ORIG_AX / 8) as usize) }
        as i64);
    // An exit without its enter and without a syscall number: the
    // uretprobe trampoline returning (it leaves orig_ax at -1).
    if f.nr == NR_URETPROBE || f.nr < 0 {
        return 0;
    }
    finish(tid, tgid, f, ret, exit_ns);
    0
}

/// The exit of the syscall in this CPU's slot: one inline record when its
/// outputs are small (true), else false once inline inputs are sent first,
/// and the caller takes the general path. Not inlined, and `finish` not
/// called from here: the fast path's frame then stays off the deepest call
/// chain (finish, plan, the loop callbacks), which the verifier bounds to
/// 512 bytes of stack in all.
#[inline(never)]
fn finish_slot(s: &mut Slot, tid: u32, tgid: u32, ret: i64, exit_ns: u64) -> bool {
    let nr = s.f.nr;
    let exec_done = ret == 0 && (nr == NR_EXECVE || nr == NR_EXECVEAT);
    // What a compact record can carry; anything else takes the general path
    // (also inputs to read again, which are rare).
    let fits = (0..=0xffff).contains(&nr)
        && s.f.buffers <= 0xffff
        && s.f.flags & INFLIGHT_INPUT_FAULT == 0;
    if !exec_done
        && fits
        && let Some(st) = fast::stage()
    {
        if s.inl_len != 0 && !fast::in_place(s, st) {
            // The stage was sent during the syscall (a fork in it): its
            // inputs go first, as buffer records.
            fast::demote(s);
        }
        let mut flags = s.f.flags & !INFLIGHT_PRIVATE;
        if s.inl_len == 0 {
            if changes_identity(nr) {
                // The record says who the thread is after the call (a new
                // name shows on the prctl that set it).
                fast::forget_task(s, st);
            }
            fast::place(s, st, tid, tgid);
        }
        let Some(spec) = fast::spec(nr).filter(|sp| sp.flags & SPEC_KNOWN != 0) else {
            flags |= SYSCALL_EFFECTS_UNKNOWN;
            fast::emit(s, st, tid, flags, ret, exit_ns);
            return true;
        };
        let payload = flags & SYSCALL_NO_PAYLOAD == 0;
        if !(payload
            && (ret >= 0 || effects::writes_when_failed(nr, ret))
            && spec.flags & SPEC_HAS_OUT != 0)
        {
            fast::emit(s, st, tid, flags, ret, exit_ns);
            return true;
        }
        let before = s.inl_len;
        let base = fast::area(st, s);
        if fast::inline_side(s, spec, base, true, ret, snapshot_limit()) {
            fast::emit(s, st, tid, flags, ret, exit_ns);
            return true;
        }
        put(&mut s.inl_len, before);
    }
    if s.inl_len != 0 {
        fast::demote(s);
    }
    if exec_done {
        // A new program, a new name: not the cached one.
        s.cg_tid = 0;
    }
    false
}

/// What an ioctl request reads (at enter) or writes (at exit) at `argp`.
/// Not inlined: the planning functions are on the deepest call chain
/// (the verifier's 512-byte stack bound).
#[inline(never)]
fn ioctl_bytes(request: u64, argp: u64, at_exit: bool) -> u64 {
    let m = ioctl_memory(request, argp);
    (if at_exit { m.writes } else { m.reads }) as u64
}

/// Syscalls after which the thread's name or ids may differ: `prctl`
/// (PR_SET_NAME) and the `set*id` calls (each changes only the calling
/// thread's credentials).
#[inline(always)]
fn changes_identity(nr: i64) -> bool {
    matches!(nr, 105 | 106 | 113 | 114 | 117 | 119 | 122 | 123 | 157)
}

/// Emits the exit-side buffers and the syscall record.
#[inline(never)]
pub fn finish(tid: u32, tgid: u32, f: &InFlight, ret: i64, exit_ns: u64) {
    fast::stage_flush();
    let mut flags = f.flags & !INFLIGHT_PRIVATE;
    let mut buffers = f.buffers;
    let exec_done = ret == 0 && (f.nr == NR_EXECVE || f.nr == NR_EXECVEAT);
    let payload = flags & SYSCALL_NO_PAYLOAD == 0;
    // A non-leader thread's exec is recorded under the thread that made
    // the call (its entry's records are), the exec record under both.
    let new_tid = tid;
    let tid = if exec_done {
        crate::process::exec_caller(tid)
    } else {
        tid
    };
    // Inputs that faulted at entry are read again where the kernel has
    // faulted them in; not after an exec, whose memory is another program's.
    let again = payload && !exec_done && f.flags & INFLIGHT_INPUT_FAULT != 0;
    if let Some(w) = buffers::begin(tid, tgid, f.enter_ns, snapshot_limit()) {
        if !spec_of(f.nr, &mut w.spec) {
            flags |= SYSCALL_EFFECTS_UNKNOWN;
        } else {
            if again && has_inputs(&w.spec) {
                plan(w, &f.args, 0, PLAN_INPUTS_AGAIN);
            }
            if payload
                && (ret >= 0 || effects::writes_when_failed(f.nr, ret))
                && has_outputs(&w.spec)
            {
                plan(w, &f.args, ret, PLAN_OUTPUTS);
            }
        }
        let exec = exec_done && plan_exec(w);
        let (emitted, lost) = buffers::flush();
        buffers += emitted;
        if lost {
            flags |= SYSCALL_BUFFER_LOST;
        }
        if exec {
            crate::process::emit_exec(&w.exec, f.enter_ns, new_tid, tid, tgid);
        }
    }
    let Some(mut e) = EVENTS.reserve::<SyscallRecord>(0) else {
        count_loss(LossKind::Syscall, tgid);
        return;
    };
    let uid_gid = bpf_get_current_uid_gid();
    // Fields are written in place: the record is too big to build on the
    // small BPF stack first.
    let r = e.as_mut_ptr();
    // SAFETY: r points at a reserved, exclusively owned ring slot of the right size.
    unsafe {
        let r = &mut *r;
        put(&mut r.kind, RecordKind::Syscall as u32);
        put(&mut r.flags, flags);
        put(&mut r.enter_ns, f.enter_ns);
        put(&mut r.exit_ns, exit_ns);
        put(&mut r.cgroup_id, crate::maps::current_cgroup(new_tid));
        put(&mut r.nr, f.nr);
        copy(&mut r.args, &f.args);
        put(&mut r.ret, ret);
        put(&mut r.pid, tgid);
        put(&mut r.tid, tid);
        put(&mut r.uid, uid_gid as u32);
        put(&mut r.gid, (uid_gid >> 32) as u32);
        read_comm(&mut r.comm);
        put(&mut r.buffers, buffers);
        put(&mut r.inline_len, 0);
    }
    e.submit(crate::maps::wake_flags(exit_ns));
}

/// The current task's name, read at the offset BTF gave: one plain kernel
/// read, where `bpf_get_current_comm` measured about 200 ns here.
#[inline(always)]
pub fn read_comm(out: &mut [u8; 16]) {
    let Some(off) = crate::maps::offsets() else {
        return;
    };
    // SAFETY: current task pointer plus the BTF offset of its comm array;
    // a failed read zeroes the destination.
    unsafe {
        let task = generated::bpf_get_current_task();
        generated::bpf_probe_read_kernel(
            out.as_mut_ptr() as *mut c_void,
            16,
            (task + off.task_comm as u64) as *const c_void,
        );
    }
}

/// `exit` and `exit_group` never reach `sys_exit`: the task-exit hook calls
/// this to emit their record. Not inlined, and the entry copied into the
/// per-CPU scratch rather than the stack: the verifier bounds the stack of
/// the whole chain under the hook (finish, plan, loop callbacks) to 512.
#[inline(never)]
pub fn finish_exiting(tid: u32, tgid: u32) {
    if let Some(s) = slot()
        && s.tid == tid
        && s.f.flags & INFLIGHT_ACTIVE != 0
        && s.inl_len != 0
    {
        fast::demote(s);
    }
    let Some(scratch) = NO_ENTER.get_ptr_mut(0) else {
        return;
    };
    // SAFETY: this CPU's value; programs do not nest on one CPU.
    let scratch = unsafe { &mut *scratch };
    let mut found = false;
    if let Some(s) = slot()
        && s.tid == tid
        && s.f.flags & INFLIGHT_ACTIVE != 0
    {
        copy(scratch, &s.f);
        found = true;
    } else if let Some(h) = INFLIGHT.get_ptr_mut(tid) {
        // SAFETY: this thread's spilled entry; nothing else writes it now.
        let h = unsafe { &*h };
        if h.flags & INFLIGHT_ACTIVE != 0 {
            copy(scratch, h);
            found = true;
        }
    }
    let _ = INFLIGHT.remove(tid);
    if let Some(s) = slot()
        && s.tid == tid
    {
        s.f.flags &= !INFLIGHT_ACTIVE;
    }
    if found && (scratch.nr == NR_EXIT || scratch.nr == NR_EXIT_GROUP) {
        scratch.flags &= !INFLIGHT_ACTIVE;
        finish(tid, tgid, scratch, 0, now());
    }
}

#[inline(always)]
pub fn arg_at(args: &[u64; NUM_ARGS], i: u8) -> u64 {
    match i {
        0 => args[0],
        1 => args[1],
        2 => args[2],
        3 => args[3],
        4 => args[4],
        5 => args[5],
        _ => 0,
    }
}

#[inline(always)]
fn read_user_u64(addr: u64) -> Option<u64> {
    let mut v = [0u64; 1];
    // SAFETY: reads 8 bytes of user memory into the stack.
    let r = unsafe {
        generated::bpf_probe_read_user(v.as_mut_ptr() as *mut c_void, 8, addr as *const c_void)
    };
    if r < 0 { None } else { Some(v[0]) }
}

/// `n` (at most 8) consecutive user words into `w.words`, in one helper
/// call: all or none.
#[inline(always)]
fn read_user_words(w: &mut Work, addr: u64, n: u32) -> bool {
    let n = if n > 8 { 8 } else { n };
    // SAFETY: reads at most 64 bytes of user memory into the 64-byte array.
    let r = unsafe {
        generated::bpf_probe_read_user(
            w.words.as_mut_ptr() as *mut c_void,
            n * 8,
            addr as *const c_void,
        )
    };
    r >= 0
}

#[inline(always)]
pub fn read_user_u32(addr: u64) -> Option<u32> {
    let mut v = [0u32; 1];
    // SAFETY: reads 4 bytes of user memory into the stack.
    let r = unsafe {
        generated::bpf_probe_read_user(v.as_mut_ptr() as *mut c_void, 4, addr as *const c_void)
    };
    if r < 0 { None } else { Some(v[0]) }
}

#[inline(always)]
fn read_user_u8(addr: u64) -> Option<u8> {
    let mut v = [0u8; 1];
    // SAFETY: reads 1 byte of user memory into the stack.
    let r = unsafe {
        generated::bpf_probe_read_user(v.as_mut_ptr() as *mut c_void, 1, addr as *const c_void)
    };
    if r < 0 { None } else { Some(v[0]) }
}

/// What `plan` plans: the inputs at entry, the outputs at exit, or the
/// inputs again at exit (some faulted at entry).
const PLAN_INPUTS: u64 = 0;
const PLAN_OUTPUTS: u64 = 1;
const PLAN_INPUTS_AGAIN: u64 = 2;

/// Plans the buffers the spec names for this side of the syscall. Loops run
/// under `bpf_loop` with their state in the per-CPU plan, so the verifier
/// checks each body once.
#[inline(never)]
fn plan(w: &mut Work, args: &[u64; NUM_ARGS], ret: i64, what: u64) {
    copy(&mut w.args, args);
    put(&mut w.ret, ret);
    put(&mut w.planning, what);
    let count = w.spec.count;
    let n = if count > MAX_EFFECTS as u32 {
        MAX_EFFECTS as u32
    } else {
        count
    };
    // SAFETY: callback follows bpf_loop's contract; it takes no context.
    unsafe {
        generated::bpf_loop(n, effect_cb as *mut c_void, core::ptr::null_mut(), 0);
    }
}

extern "C" fn effect_cb(i: u64, _ctx: *mut c_void) -> i64 {
    let Some(w) = buffers::current() else {
        return 1;
    };
    plan_effect(w, (i as usize) & (MAX_EFFECTS - 1));
    0
}

#[inline(always)]
fn plan_effect(w: &mut Work, i: usize) {
    let e = w.spec.effects[i];
    let at_exit = w.planning == PLAN_OUTPUTS;
    let again = if w.planning == PLAN_INPUTS_AGAIN {
        PIECE_AGAIN
    } else {
        0
    };
    let ret = w.ret;
    let Some(dir) = Direction::from_u8(e.dir) else {
        return;
    };
    let wanted = if at_exit { dir.is_out() } else { dir.is_in() };
    if !wanted {
        return;
    }
    let ptr = arg_at(&w.args, e.arg);
    if ptr == 0 {
        return;
    }
    let size_arg = arg_at(&w.args, e.size_arg);
    // What this side records it as: InOut reads at enter are inputs.
    let side = if at_exit {
        Direction::Out
    } else {
        Direction::In
    } as u8;
    let piece = |total: u64| Piece {
        src: ptr,
        total,
        item: 0,
        arg: e.arg,
        dir: side,
        kernel: 0,
        kind: PIECE_BYTES | again,
    };
    let Some(rule) = SizeRule::from_u8(e.rule) else {
        return;
    };
    match rule {
        SizeRule::Const => buffers::add(w, piece(e.param as u64)),
        SizeRule::Arg => buffers::add(w, piece(size_arg)),
        SizeRule::ArgTimes => {
            let n = if size_arg > (1 << 20) {
                1 << 20
            } else {
                size_arg
            };
            buffers::add(w, piece(n * e.param as u64))
        }
        SizeRule::Ret => {
            if at_exit && ret > 0 {
                buffers::add(w, piece(ret as u64))
            }
        }
        SizeRule::RetTimes => {
            if at_exit && ret > 0 {
                let n = if ret > (1 << 20) { 1 << 20 } else { ret as u64 };
                buffers::add(w, piece(n * e.param as u64))
            }
        }
        SizeRule::CString => buffers::add(
            w,
            Piece {
                kind: PIECE_STRING | again,
                ..piece(0)
            },
        ),
        SizeRule::PtrU32 => {
            if let Some(len) = read_user_u32(size_arg) {
                buffers::add(w, piece(len as u64))
            }
        }
        SizeRule::Iovec => {
            let budget = if at_exit { ret as u64 } else { u64::MAX };
            plan_iovecs(w, piece(0), size_arg, budget, 0)
        }
        SizeRule::Msghdr => plan_msghdr(w, piece(0), ret, at_exit),
        SizeRule::Ioctl => {
            let n = ioctl_bytes(size_arg, ptr, at_exit);
            if n > 0 {
                buffers::add(w, piece(n))
            }
        }
        SizeRule::StringArray => plan_strings(w, piece(0)),
        SizeRule::FdSet => {
            let nfds = if size_arg > 1024 { 1024 } else { size_arg };
            buffers::add(w, piece(nfds.div_ceil(64) * 8))
        }
        SizeRule::Prctl => match prctl_memory(size_arg) {
            PrctlMemory::ReadsName if !at_exit => buffers::add(
                w,
                Piece {
                    kind: PIECE_STRING | again,
                    ..piece(0)
                },
            ),
            PrctlMemory::Writes(n) if at_exit => buffers::add(w, piece(n as u64)),
            PrctlMemory::WritesAuxv if at_exit && ret > 0 => {
                let room = arg_at(&w.args, 2);
                buffers::add(
                    w,
                    piece(if (ret as u64) < room {
                        ret as u64
                    } else {
                        room
                    }),
                )
            }
            _ => {}
        },
        SizeRule::Cmd => plan_cmd(w, piece(0), e.param, size_arg),
        SizeRule::RetPlus => {
            if at_exit && ret >= 0 {
                buffers::add(w, piece(ret as u64 + e.param as u64))
            }
        }
        SizeRule::Pages => buffers::add(w, piece(size_arg.div_ceil(4096))),
        SizeRule::CapData => {
            // The header's version says how many structs (read where the
            // kernel read it: at entry for capset, and at exit for capget,
            // whose header the kernel may have rewritten).
            if let Some(version) = read_user_u32(size_arg) {
                buffers::add(w, piece(cap_data_bytes(version) as u64))
            }
        }
        SizeRule::SelfIovec => {
            if at_exit && ret > 0 && arg_at(&w.args, 0) == w.tgid as u64 {
                plan_iovecs(w, piece(0), size_arg, ret as u64, 0)
            }
        }
        SizeRule::PerfEventAttr => {
            const E2BIG: i64 = -7;
            if !at_exit {
                if let Some(size) = read_user_u32(ptr + 4) {
                    buffers::add(w, piece(perf_attr_bytes(size) as u64))
                }
            } else if ret == E2BIG {
                // The kernel wrote its size at byte 4: type and size.
                buffers::add(w, piece(8))
            }
        }
        SizeRule::Mmsghdr => {
            if at_exit && ret > 0 {
                plan_mmsghdrs(w, piece(0), ret as u64)
            }
        }
        SizeRule::Bpf => plan_bpf(w, piece(0), size_arg),
        SizeRule::Fcntl => {
            // F_GETLK, F_SETLK, F_SETLKW and their OFD variants take a struct
            // flock; F_SETOWN_EX and F_GETOWN_EX a struct f_owner_ex, the
            // read-write hint commands a u64.
            if matches!(size_arg, 5..=7 | 36..=38) {
                buffers::add(w, piece(32))
            } else if matches!(size_arg, 15 | 16 | 1035..=1038) {
                buffers::add(w, piece(8))
            }
        }
    }
}

/// A command-multiplexed pointer ([`cmd_memory`]): what command `cmd` of
/// table `table` reads (planning inputs) or writes (outputs) at
/// `base.src`, and a seccomp filter's instructions after its
/// `struct sock_fprog` (item 1). Not inlined: on the deepest call chain.
#[inline(never)]
fn plan_cmd(w: &mut Work, base: Piece, table: u32, cmd: u64) {
    let at_exit = w.planning == PLAN_OUTPUTS;
    let m = cmd_memory(table, cmd, base.arg);
    let n = match if at_exit { m.writes } else { m.reads } {
        CmdSize::Const(n) => n as u64,
        CmdSize::RetUpTo(k) => {
            let room = arg_at(&w.args, k);
            let ret = w.ret;
            if ret <= 0 {
                0
            } else if (ret as u64) < room {
                ret as u64
            } else {
                room
            }
        }
        CmdSize::None | CmdSize::Unknown => 0,
    };
    if n > 0 {
        buffers::add(w, Piece { total: n, ..base });
    }
    // struct iovec: the bytes it says, iov_len as the kernel left it (the
    // snapshot limit bounds it, flagging what it cuts).
    if m.iovec && n >= 16 && read_user_words(w, base.src, 2) {
        let (src, total) = (w.words[0], w.words[1]);
        buffers::add(
            w,
            Piece {
                src,
                total,
                item: 1,
                ..base
            },
        );
    }
    if m.fprog
        && !at_exit
        && let (Some(len), Some(filter)) = (read_user_u32(base.src), read_user_u64(base.src + 8))
    {
        // struct sock_fprog: an unsigned short count of 8-byte
        // struct sock_filter instructions (BPF_MAXINSNS is 4096).
        buffers::add(
            w,
            Piece {
                src: filter,
                total: (len & 0xffff) as u64 * 8,
                item: 1,
                ..base
            },
        );
    }
}

/// `bpf`'s attr of `size` bytes (item 0), both sides, and at exit the
/// buffers its command writes through it ([`bpf_memory`]): a log when
/// its level is set (item 1), a query's arrays (items 1 to 4, of the
/// count the kernel wrote back). Pointers past `size` the kernel never
/// saw (it copies `size` bytes of the attr). Not inlined: on the deepest
/// call chain.
#[inline(never)]
fn plan_bpf(w: &mut Work, base: Piece, size: u64) {
    // Larger than a page the kernel refuses (E2BIG) unless zeros.
    let size = if size > 4096 { 4096 } else { size };
    buffers::add(
        w,
        Piece {
            total: size,
            ..base
        },
    );
    if w.planning != PLAN_OUTPUTS {
        return;
    }
    let attr = base.src;
    match bpf_memory(arg_at(&w.args, 0)) {
        BpfMemory::Log {
            level,
            size: len,
            buf,
            true_size,
        } => {
            if (buf as u64) + 8 <= size
                && let (Some(lv), Some(n), Some(p)) = (
                    read_user_u32(attr + level as u64),
                    read_user_u32(attr + len as u64),
                    read_user_u64(attr + buf as u64),
                )
                && lv != 0
                && p != 0
            {
                // The kernel wrote at most the true size it reports; an
                // attr too short for it (an older ABI) leaves the whole
                // buffer. A buffer whose first byte is not resident was
                // never written (a write faults the page in): a load that
                // logged nothing, into untouched .bss.
                let n = match (true_size as u64 + 4 <= size)
                    .then(|| read_user_u32(attr + true_size as u64))
                    .flatten()
                {
                    Some(t) if t < n => t,
                    _ => n,
                };
                if n == 0 || read_user_u8(p).is_none() {
                    return;
                }
                // The kernel writes the log from its start, so a page not
                // resident ends what it wrote (a log of one NUL).
                let next_page = (p | 4095) + 1;
                let n = if p + n as u64 > next_page && read_user_u8(next_page).is_none() {
                    (next_page - p) as u32
                } else {
                    n
                };
                buffers::add(
                    w,
                    Piece {
                        src: p,
                        total: n as u64,
                        item: 1,
                        ..base
                    },
                );
            }
        }
        BpfMemory::Query => {
            let Some(cnt) = read_user_u32(attr + 24) else {
                return;
            };
            for (i, off) in BPF_QUERY_ARRAYS.iter().enumerate() {
                let off = *off as u64;
                if off + 8 > size {
                    break;
                }
                // A null array asks for the count only.
                if let Some(p) = read_user_u64(attr + off)
                    && p != 0
                {
                    buffers::add(
                        w,
                        Piece {
                            src: p,
                            total: cnt as u64 * 4,
                            item: i as u32 + 1,
                            ..base
                        },
                    );
                }
            }
        }
        BpfMemory::Attr | BpfMemory::Unknown => {}
    }
}

/// recvmmsg's `count` received messages: the headers as one piece (item
/// 0), then each message's name, control buffer and iovecs' memory
/// (bounded by its msg_len), numbered as a msghdr capture's items plus
/// `MMSG_ITEM_STRIDE * (index + 1)`. One `bpf_loop` walks (message,
/// iovec) pairs, so the plan nests no deeper than a msghdr's. Messages or
/// iovecs past the bounds are counted lost, never silently left out.
#[inline(never)]
fn plan_mmsghdrs(w: &mut Work, base: Piece, count: u64) {
    const MMSGHDR: u64 = 64;
    let count = if count > 1024 { 1024 } else { count };
    buffers::add(
        w,
        Piece {
            total: count * MMSGHDR,
            item: 0,
            ..base
        },
    );
    let planned = if count > MAX_MMSGS as u64 {
        w.lost = 1;
        MAX_MMSGS as u64
    } else {
        count
    };
    w.arr_base = base;
    w.arr_count = planned;
    w.arr_budget = 0;
    // SAFETY: callback follows bpf_loop's contract; it takes no context.
    unsafe {
        generated::bpf_loop(
            planned as u32 * MAX_IOVECS,
            mmsg_cb as *mut c_void,
            core::ptr::null_mut(),
            0,
        );
    }
}

extern "C" fn mmsg_cb(j: u64, _ctx: *mut c_void) -> i64 {
    let Some(w) = buffers::current() else {
        return 1;
    };
    let i = j / MAX_IOVECS as u64;
    let k = j % MAX_IOVECS as u64;
    if i >= w.arr_count {
        return 1;
    }
    let base = w.arr_base;
    let m = base.src + i * 64;
    let item = (i as u32 + 1) * MMSG_ITEM_STRIDE;
    if k == 0 {
        // A new message: its name, control buffer and byte budget.
        w.arr_budget = 0;
        if !read_user_words(w, m, 8) {
            return 0;
        }
        let [name, namelen, _, _, ctl, ctllen, _, len] = w.words;
        let (namelen, len) = (namelen as u32, len as u32);
        buffers::add(
            w,
            Piece {
                src: name,
                total: namelen as u64,
                item: item + MSG_ITEM_NAME,
                ..base
            },
        );
        buffers::add(
            w,
            Piece {
                src: ctl,
                total: if ctllen > 4096 { 4096 } else { ctllen },
                item: item + MSG_ITEM_CONTROL,
                ..base
            },
        );
        w.arr_budget = len as u64;
    }
    if w.arr_budget == 0 {
        return 0;
    }
    let (Some(iov), Some(iovlen)) = (read_user_u64(m + 16), read_user_u64(m + 24)) else {
        return 0;
    };
    if k >= iovlen {
        return 0;
    }
    let at = iov + k * 16;
    let (Some(b), Some(l)) = (read_user_u64(at), read_user_u64(at + 8)) else {
        return 0;
    };
    let n = if l > w.arr_budget { w.arr_budget } else { l };
    buffers::add(
        w,
        Piece {
            src: b,
            total: n,
            item: item + MSG_ITEM_IOV + k as u32,
            ..base
        },
    );
    w.arr_budget -= n;
    if k + 1 == MAX_IOVECS as u64 && w.arr_budget > 0 {
        // Bytes in iovecs past the ones captured.
        w.lost = 1;
    }
    0
}

/// An iovec array: each element's memory, bounded in total by `budget`
/// (the return value for outputs). `base.item` is the first item number.
#[inline(never)]
fn plan_iovecs(w: &mut Work, base: Piece, count: u64, budget: u64, item_base: u32) {
    w.arr_base = Piece {
        item: item_base,
        ..base
    };
    w.arr_budget = budget;
    let count = if count > MAX_IOVECS as u64 {
        MAX_IOVECS
    } else {
        count as u32
    };
    // SAFETY: callback follows bpf_loop's contract; it takes no context.
    unsafe {
        generated::bpf_loop(count, iovec_cb as *mut c_void, core::ptr::null_mut(), 0);
    }
}

extern "C" fn iovec_cb(j: u64, _ctx: *mut c_void) -> i64 {
    let Some(w) = buffers::current() else {
        return 1;
    };
    if w.arr_budget == 0 {
        return 1;
    }
    let base = w.arr_base;
    let at = base.src + j * 16;
    if !read_user_words(w, at, 2) {
        return 1;
    }
    let (b, l) = (w.words[0], w.words[1]);
    let n = if l > w.arr_budget { w.arr_budget } else { l };
    buffers::add(
        w,
        Piece {
            src: b,
            total: n,
            item: base.item + j as u32,
            ..base
        },
    );
    w.arr_budget -= n;
    0
}

/// Most strings captured of an argv/envp array at syscall entry (the exec
/// record carries the complete argv and envp of a successful exec).
const MAX_STRINGS: u32 = 16;

/// A NULL-terminated array of strings (execve's argv and envp).
#[inline(never)]
fn plan_strings(w: &mut Work, base: Piece) {
    w.arr_base = base;
    // SAFETY: callback follows bpf_loop's contract; it takes no context.
    unsafe {
        generated::bpf_loop(
            MAX_STRINGS,
            string_cb as *mut c_void,
            core::ptr::null_mut(),
            0,
        );
    }
}

extern "C" fn string_cb(j: u64, _ctx: *mut c_void) -> i64 {
    let Some(w) = buffers::current() else {
        return 1;
    };
    let base = w.arr_base;
    let Some(s) = read_user_u64(base.src + j * 8) else {
        return 1;
    };
    if s == 0 {
        return 1;
    }
    buffers::add(
        w,
        Piece {
            src: s,
            item: j as u32,
            kind: base.kind | PIECE_STRING,
            ..base
        },
    );
    0
}

/// Items of a msghdr capture: 0 the header, 1 the name, 2 the control
/// buffer, 16 + n the n-th iovec's memory.
pub const MSG_ITEM_HEADER: u32 = 0;
pub const MSG_ITEM_NAME: u32 = 1;
pub const MSG_ITEM_CONTROL: u32 = 2;
pub const MSG_ITEM_IOV: u32 = 16;

#[inline(never)]
fn plan_msghdr(w: &mut Work, base: Piece, ret: i64, at_exit: bool) {
    let m = base.src;
    buffers::add(
        w,
        Piece {
            total: 56,
            item: MSG_ITEM_HEADER,
            ..base
        },
    );
    // One read of the six fields, into the plan: six reads into Options on
    // the stack pushed the chain under sys_exit past the verifier's bound.
    if !read_user_words(w, m, 6) {
        return;
    }
    let [name, namelen, iov, iovlen, ctl, ctllen, _, _] = w.words;
    let namelen = namelen as u32;
    buffers::add(
        w,
        Piece {
            src: name,
            total: namelen as u64,
            item: MSG_ITEM_NAME,
            ..base
        },
    );
    let ctllen = if ctllen > 4096 { 4096 } else { ctllen };
    buffers::add(
        w,
        Piece {
            src: ctl,
            total: ctllen,
            item: MSG_ITEM_CONTROL,
            ..base
        },
    );
    let budget: u64 = if at_exit { ret as u64 } else { u64::MAX };
    plan_iovecs(w, Piece { src: iov, ..base }, iovlen, budget, MSG_ITEM_IOV);
}
