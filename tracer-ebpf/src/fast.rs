//! The fast path: a syscall whose memory on each side is small (simple size
//! rules, everything within [`INLINE_MAX`]) is sent as ONE ring record, its
//! syscall record with the buffers inline (`RecordKind::SyscallInline`).
//!
//! The record is built in this CPU's slot (`Slot::rec`, followed by
//! `Slot::inl`): inputs are copied there at enter, outputs at exit, and the
//! whole is sent with one `bpf_ringbuf_output` of its exact size. No
//! `bpf_loop`: at most [`MAX_EFFECTS`] effects, unrolled. The write offset
//! lives in the slot (map memory), so the verifier sees an unknown, masked
//! scalar and checks each effect once instead of once per path.
//!
//! Whatever does not fit takes the general path (`buffers`), unchanged. If
//! inline inputs must leave the slot before the exit (the task is switched
//! out, or the outputs take the general path), they are sent first as
//! ordinary buffer records ([`demote`]), so the thread's order stays
//! buffers-before-syscall and the event is the same.
use core::{ffi::c_void, mem::size_of, ptr};

use aya_ebpf::{helpers::generated, macros::map, maps::PerCpuArray};
use tracer_common::{
    effects::SizeRule,
    wire::{
        BUFFER_FAULT, BUFFER_STRING, INLINE_MAX, InlineHeader, LossKind, MAX_EFFECTS, RecordKind,
        STAGE_MAX, SYSCALL_BUFFER_LOST, SYSCALL_TABLE_LEN, Stage, SysRecord, SyscallSpec,
        TaskRecord,
    },
};

use crate::{
    buffers,
    maps::{EVENTS, SYSCALLS, Slot, count_loss},
    mem::{copy, put},
    syscall::{arg_at, read_user_u32},
};

/// Fast-path records of this CPU not yet sent. They go to the ring as one
/// `Batch` record when the next would not fit, when the oldest is older
/// than [`STAGE_AGE_NS`], when the CPU switches tasks, and before any other
/// record this CPU sends ([`stage_flush`]): a thread's records keep their
/// order, since a thread changes CPU only through a context switch. The
/// daemon reads what is left here after detaching the programs.
#[map]
pub static STAGE: PerCpuArray<Stage> = PerCpuArray::with_max_entries(1, 0);

/// Oldest a staged record gets before its batch is sent (checked when the
/// CPU makes its next record, and at each context switch).
const STAGE_AGE_NS: u64 = 1_000_000;
const REC: usize = size_of::<SysRecord>();
const TASK: usize = size_of::<TaskRecord>();

const HDR: usize = size_of::<InlineHeader>();
const BPF_RB_NO_WAKEUP: u64 = 1;
/// Mask keeping an offset in the inline area inside its slack.
const OFF_MASK: usize = INLINE_MAX - 1;

#[inline(always)]
fn inl_len(s: &Slot) -> usize {
    // SAFETY: a field of the slot; volatile so that the verifier sees a
    // value loaded from map memory, not one it tracks along every path.
    unsafe { ptr::read_volatile(&s.inl_len) as usize }
}

/// The table's entry for `nr`, read in place (no copy of it per syscall).
#[inline(always)]
pub fn spec(nr: i64) -> Option<&'static SyscallSpec> {
    if !(0..SYSCALL_TABLE_LEN as i64).contains(&nr) {
        return None;
    }
    SYSCALLS.get(nr as u32)
}

/// Copies this side's buffers into the slot's inline area. False when one
/// does not fit or needs the general path; the caller then drops what this
/// call added (by restoring `inl_len`) and takes the general path.
#[inline(always)]
pub fn inline_side(
    s: &mut Slot,
    spec: &SyscallSpec,
    base: *mut u8,
    at_exit: bool,
    ret: i64,
    limit: u32,
) -> bool {
    let bit: u8 = if at_exit { 2 } else { 1 };
    let side = bit;
    for i in 0..MAX_EFFECTS {
        if i as u32 >= spec.count {
            break;
        }
        let e = spec.effects[i];
        if e.dir > 3 || e.dir & bit == 0 {
            continue;
        }
        let src = arg_at(&s.f.args, e.arg);
        if src == 0 {
            continue;
        }
        let size_arg = arg_at(&s.f.args, e.size_arg);
        let mut string = false;
        let size: u64 = match SizeRule::from_u8(e.rule) {
            Some(SizeRule::Const) => e.param as u64,
            Some(SizeRule::Arg) => size_arg,
            Some(SizeRule::ArgTimes) => {
                if size_arg > INLINE_MAX as u64 {
                    return false;
                }
                size_arg * e.param as u64
            }
            Some(SizeRule::Ret) => {
                if !at_exit || ret <= 0 {
                    continue;
                }
                ret as u64
            }
            Some(SizeRule::RetTimes) => {
                if !at_exit || ret <= 0 {
                    continue;
                }
                if ret > INLINE_MAX as i64 {
                    return false;
                }
                ret as u64 * e.param as u64
            }
            Some(SizeRule::CString) => {
                string = true;
                0
            }
            Some(SizeRule::PtrU32) => match read_user_u32(size_arg) {
                Some(l) => l as u64,
                None => continue,
            },
            Some(SizeRule::FdSet) => {
                let nfds = if size_arg > 1024 { 1024 } else { size_arg };
                nfds.div_ceil(64) * 8
            }
            None => continue,
            _ => return false,
        };
        if !put_inline(s, base, e.arg, side, src, size, string, limit) {
            return false;
        }
    }
    true
}

/// Appends one buffer (header and data) to the inline area.
#[inline(always)]
#[allow(clippy::too_many_arguments)]
fn put_inline(
    s: &mut Slot,
    base: *mut u8,
    arg: u8,
    dir: u8,
    src: u64,
    size: u64,
    string: bool,
    limit: u32,
) -> bool {
    let off = inl_len(s);
    if off > INLINE_MAX - HDR {
        return false;
    }
    let off = off & OFF_MASK & !7;
    let space = INLINE_MAX - HDR - off;
    let data = off + HDR;
    let mut flags: u16 = 0;
    let len: usize;
    let total: u64;
    // SAFETY (pointer arithmetic below): data < INLINE_MAX and every length
    // is masked below INLINE_MAX; `base` has 2 * INLINE_MAX bytes after it
    // (see `area`).
    let dst = unsafe { base.add(data) };
    if string {
        // SAFETY: at most `space` bytes into the area (see above).
        let r = unsafe {
            generated::bpf_probe_read_user_str(
                dst as *mut c_void,
                (space & OFF_MASK) as u32,
                src as *const c_void,
            )
        };
        if r < 0 {
            flags = BUFFER_STRING | BUFFER_FAULT;
            note_fault(s, dir);
            len = 0;
        } else {
            let r = r as usize;
            if r >= space {
                // Perhaps longer than the room left: the general path.
                return false;
            }
            flags = BUFFER_STRING;
            len = r & OFF_MASK;
        }
        total = len as u64;
    } else {
        if size > limit as u64 || size > space as u64 {
            return false;
        }
        let n = (size as usize) & OFF_MASK;
        // Zero the last word first, so the padding carries no stale bytes.
        // SAFETY: inside the area (see above); unaligned stores are fine here.
        unsafe { ptr::write_unaligned(dst.add(n & !7) as *mut u64, 0) };
        len = if n > 0 {
            // SAFETY: n bytes into the area (see above).
            let r = unsafe {
                generated::bpf_probe_read_user(dst as *mut c_void, n as u32, src as *const c_void)
            };
            if r < 0 {
                flags = BUFFER_FAULT;
                note_fault(s, dir);
                0
            } else {
                n
            }
        } else {
            0
        };
        total = size;
    }
    // SAFETY: off is 8-aligned and at most INLINE_MAX - HDR.
    let h = unsafe { &mut *(base.add(off) as *mut InlineHeader) };
    put(&mut h.arg, arg);
    put(&mut h.dir, dir);
    put(&mut h.flags, flags);
    put(&mut h.len, len as u32);
    put(&mut h.total_len, total);
    put(&mut s.inl_len, (data + len.next_multiple_of(8)) as u32);
    true
}

/// An input that could not be read at entry makes the exit read the inputs
/// again, by the general path (`BUFFER_AT_EXIT`): by then the kernel has
/// faulted their pages in.
#[inline(always)]
fn note_fault(s: &mut Slot, dir: u8) {
    if dir == 1 {
        s.f.flags |= crate::maps::INFLIGHT_INPUT_FAULT;
    }
}

/// Sends the inline buffers of the slot as ordinary buffer records (counted
/// in `f.buffers`) and empties the inline area.
#[inline(never)]
pub fn demote(s: &mut Slot) {
    stage_flush();
    let Some(st) = stage() else {
        put(&mut s.inl_len, 0);
        return;
    };
    let base = area(st, s);
    let mut off: usize = 0;
    let end = inl_len(s) & (2 * INLINE_MAX - 1);
    for _ in 0..MAX_EFFECTS {
        if off + HDR > end || off > INLINE_MAX - HDR {
            break;
        }
        let o = off & OFF_MASK & !7;
        // SAFETY: o is 8-aligned and inside the area.
        let h = unsafe { *(base.add(o) as *const InlineHeader) };
        let len = h.len as usize & OFF_MASK;
        // SAFETY: inside the area.
        let src = unsafe { base.add(o + HDR) } as u64;
        if buffers::emit_small(s.tid, s.f.enter_ns, &h, src) {
            s.f.buffers += 1;
        } else {
            count_loss(tracer_common::wire::LossKind::Buffer, s.tgid);
            s.f.flags |= SYSCALL_BUFFER_LOST;
        }
        off = o + HDR + len.next_multiple_of(8);
    }
    put(&mut s.inl_len, 0);
}

/// This CPU's stage.
#[inline(always)]
pub fn stage() -> Option<&'static mut Stage> {
    // SAFETY: per-CPU value; programs do not nest on one CPU.
    STAGE.get_ptr_mut(0).map(|p| unsafe { &mut *p })
}

/// Largest fast-path record.
const MAX_REC: usize = REC + INLINE_MAX;

/// Places the slot's record at the end of the stage (`Slot::pos`), first
/// sending the stage if the largest record would not fit, and saying who
/// the thread is if the stage has not said it yet.
#[inline(always)]
pub fn place(s: &mut Slot, st: &mut Stage, tid: u32, tgid: u32) {
    // SAFETY: a field of the map value (volatile: see `inl_len`).
    let mut len = unsafe { ptr::read_volatile(&st.hdr.len) } as usize;
    if len > STAGE_MAX - MAX_REC - TASK {
        stage_send(st, BPF_RB_NO_WAKEUP);
        len = 0;
    }
    if st.task_tid != tid {
        put_task(s, st, len, tid, tgid);
        len = (len & (STAGE_MAX - 1) & !7) + TASK;
        put(&mut st.hdr.len, len as u32);
        put(&mut st.task_tid, tid);
    }
    put(&mut s.pos, len as u32);
}

/// True when the slot's inline inputs are still where the record goes
/// (nothing sent the stage since the enter).
#[inline(always)]
pub fn in_place(s: &Slot, st: &Stage) -> bool {
    st.hdr.len == s.pos
}

/// Start of the slot's inline buffers: right after its record's place.
#[inline(always)]
pub fn area(st: &mut Stage, s: &Slot) -> *mut u8 {
    // SAFETY: a field of the slot (volatile: see `inl_len`).
    let pos = unsafe { ptr::read_volatile(&s.pos) } as usize & (STAGE_MAX - 1) & !7;
    // SAFETY: pos < STAGE_MAX; the data area is 2 * STAGE_MAX long, so the
    // record and 2 * INLINE_MAX bytes after it are inside.
    unsafe { st.data.as_mut_ptr().add(pos + REC) }
}

/// Sends the slot's syscall record with its inline buffers (into the stage,
/// after the `Task` record `place` put before it).
#[inline(always)]
pub fn emit(s: &mut Slot, st: &mut Stage, tid: u32, flags: u32, ret: i64, exit_ns: u64) {
    let n = inl_len(s) & (2 * INLINE_MAX - 1);
    // SAFETY: a field of the slot (volatile: see `inl_len`).
    let pos = unsafe { ptr::read_volatile(&s.pos) } as usize & (STAGE_MAX - 1) & !7;
    // SAFETY: pos < STAGE_MAX, 8-aligned; the record fits in the data area.
    let r = unsafe { &mut *(st.data.as_mut_ptr().add(pos) as *mut SysRecord) };
    put(&mut r.kind, RecordKind::Sys as u16);
    // The caller checked that the number and the buffer count fit.
    put(&mut r.nr, s.f.nr as u16);
    put(&mut r.tid, tid);
    put(&mut r.flags, flags);
    put(&mut r.buffers, s.f.buffers as u16);
    put(&mut r.inline_len, n as u16);
    put(&mut r.enter_ns, s.f.enter_ns);
    put(&mut r.exit_ns, exit_ns);
    put(&mut r.ret, ret);
    copy(&mut r.args, &s.f.args);
    let len = pos + REC + n;
    if st.first_ns == 0 {
        put(&mut st.first_ns, exit_ns);
    }
    put(&mut st.hdr.len, len as u32);
    put(&mut s.inl_len, 0);
    if len > STAGE_MAX - MAX_REC - TASK || exit_ns.wrapping_sub(st.first_ns) > STAGE_AGE_NS {
        stage_send(st, crate::maps::wake_flags(exit_ns));
    }
}

/// Forgets who the current thread is, so that its next record says it
/// again: after a syscall that may change its name or ids.
#[inline(always)]
pub fn forget_task(s: &mut Slot, st: &mut Stage) {
    put(&mut s.cg_tid, 0);
    put(&mut st.task_tid, 0);
}

/// Writes a `Task` record for the current thread at `at` in the stage. Its
/// cgroup, name and ids are cached in the slot until the next context
/// switch (the helpers cost more than the rest of a record).
#[inline(always)]
fn put_task(s: &mut Slot, st: &mut Stage, at: usize, tid: u32, tgid: u32) {
    if s.cg_tid != tid {
        // SAFETY: helper without preconditions.
        s.cgroup = unsafe { generated::bpf_get_current_cgroup_id() };
        s.uid_gid = aya_ebpf::helpers::bpf_get_current_uid_gid();
        let mut comm = [0u8; 16];
        crate::syscall::read_comm(&mut comm);
        put(
            &mut s.comm[0],
            u64::from_le_bytes([
                comm[0], comm[1], comm[2], comm[3], comm[4], comm[5], comm[6], comm[7],
            ]),
        );
        put(
            &mut s.comm[1],
            u64::from_le_bytes([
                comm[8], comm[9], comm[10], comm[11], comm[12], comm[13], comm[14], comm[15],
            ]),
        );
        s.cg_tid = tid;
    }
    let at = at & (STAGE_MAX - 1) & !7;
    // SAFETY: at < STAGE_MAX, 8-aligned; the record fits in the data area.
    let t = unsafe { &mut *(st.data.as_mut_ptr().add(at) as *mut TaskRecord) };
    put(&mut t.kind, RecordKind::Task as u16);
    put(&mut t._pad, 0);
    put(&mut t.tid, tid);
    put(&mut t.pid, tgid);
    put(&mut t.uid, s.uid_gid as u32);
    put(&mut t.gid, (s.uid_gid >> 32) as u32);
    put(&mut t._pad2, 0);
    put(&mut t.cgroup_id, s.cgroup);
    // SAFETY: the name is 16 bytes, 8-aligned in the record.
    copy(
        unsafe { &mut *(t.comm.as_mut_ptr() as *mut [u64; 2]) },
        &s.comm,
    );
}

/// Sends this CPU's staged records, if any: called before every other
/// record the CPU sends, and at each context switch.
#[inline(always)]
pub fn stage_flush() {
    if let Some(st) = stage()
        && st.hdr.len != 0
    {
        stage_send(st, BPF_RB_NO_WAKEUP);
    }
}

#[inline(never)]
fn stage_send(st: &mut Stage, wake: u64) {
    // SAFETY: a field of the map value (volatile: see `inl_len`).
    let len = unsafe { ptr::read_volatile(&st.hdr.len) } as usize & (2 * STAGE_MAX - 1);
    if len == 0 || len > STAGE_MAX {
        put(&mut st.hdr.len, 0);
        put(&mut st.task_tid, 0);
        put(&mut st.first_ns, 0);
        return;
    }
    put(&mut st.hdr.kind, RecordKind::Batch as u32);
    // SAFETY: the header is followed by the data; 8 + len bytes are inside.
    let rc = unsafe {
        generated::bpf_ringbuf_output(
            &EVENTS as *const _ as *mut c_void,
            &st.hdr as *const _ as *mut c_void,
            (size_of::<tracer_common::wire::BatchHeader>() + len) as u64,
            wake,
        )
    };
    if rc < 0 {
        count_batch_loss(st, len);
    }
    // The next batch says again who its threads are.
    put(&mut st.hdr.len, 0);
    put(&mut st.task_tid, 0);
    put(&mut st.first_ns, 0);
}

/// Counts each syscall record of a batch that could not be sent, per
/// process (the process of a thread is in its `Task` record). Under
/// `bpf_loop`, so that the verifier checks the body once.
#[inline(never)]
fn count_batch_loss(st: &mut Stage, len: usize) {
    put(&mut st.walk_off, 0);
    put(&mut st.walk_len, len as u32);
    put(&mut st.walk_pid, 0);
    // SAFETY: callback follows bpf_loop's contract; it takes no context.
    unsafe {
        generated::bpf_loop(
            (STAGE_MAX / REC + 1) as u32,
            walk_cb as *mut c_void,
            ptr::null_mut(),
            0,
        );
    }
}

extern "C" fn walk_cb(_i: u64, _ctx: *mut c_void) -> i64 {
    let Some(st) = stage() else { return 1 };
    // SAFETY: fields of the map value (volatile: see `inl_len`).
    let (off, len) = unsafe {
        (
            ptr::read_volatile(&st.walk_off) as usize,
            ptr::read_volatile(&st.walk_len) as usize,
        )
    };
    if off + TASK > len || off > STAGE_MAX - REC {
        return 1;
    }
    let o = off & (STAGE_MAX - 1) & !7;
    // SAFETY: o + REC is inside the data area; both records start with
    // their u16 kind.
    let p = unsafe { st.data.as_ptr().add(o) };
    if unsafe { *(p as *const u16) } == RecordKind::Task as u16 {
        // SAFETY: as above.
        put(&mut st.walk_pid, unsafe { (*(p as *const TaskRecord)).pid });
        put(&mut st.walk_off, (o + TASK) as u32);
    } else {
        count_loss(LossKind::Syscall, st.walk_pid);
        // SAFETY: as above.
        let n = unsafe { (*(p as *const SysRecord)).inline_len } as usize;
        put(
            &mut st.walk_off,
            (o + REC + (n & (2 * INLINE_MAX - 1))) as u32,
        );
    }
    0
}
